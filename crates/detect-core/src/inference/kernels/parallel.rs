//! Splitting the project's own kernels over tract's thread pool (the one `--threads` sets up
//! for tract's matrix products), so one image uses every thread asked for.

use tract_linalg::multithread::{current_tract_executor, Executor};

/// Below this many multiply-adds an op stays on the calling thread: handing work to the pool
/// costs more than it saves.
const MIN_PARALLEL_WORK: usize = 1 << 21;

/// Compute rows `0..m` of an output with `width` values per row: `run(r0, r1, rows)` fills
/// rows `r0..r1`. With a multithreaded tract executor and at least [`MIN_PARALLEL_WORK`]
/// (`work`, in multiply-adds), the rows are split into one contiguous range per pool thread,
/// each starting at a multiple of `align`, the last one computed on the calling thread (one
/// hand-off per op, not one per part); otherwise `run` covers them all on this thread.
pub fn split_rows<T, F>(m: usize, align: usize, width: usize, work: usize, output: &mut [T], run: F)
where
    T: Send,
    F: Fn(usize, usize, &mut [T]) + Sync,
{
    let pool = match current_tract_executor() {
        Executor::MultiThread(pool)
            if work >= MIN_PARALLEL_WORK && pool.current_num_threads() > 1 =>
        {
            pool
        }
        _ => return run(0, m, output),
    };
    let per = m
        .div_ceil(pool.current_num_threads())
        .div_ceil(align.max(1))
        * align.max(1);
    pool.in_place_scope(|s| {
        let run = &run;
        let mut rest = output;
        let mut r0 = 0;
        while r0 < m {
            let r1 = (r0 + per).min(m);
            let (rows, tail) = std::mem::take(&mut rest).split_at_mut((r1 - r0) * width);
            rest = tail;
            if r1 == m {
                run(r0, r1, rows);
            } else {
                s.spawn(move |_| run(r0, r1, rows));
            }
            r0 = r1;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_linalg::multithread::multithread_tract_scope;

    fn fill(r0: usize, r1: usize, rows: &mut [f32]) {
        assert_eq!(rows.len(), (r1 - r0) * 3);
        for (i, v) in rows.iter_mut().enumerate() {
            *v = (r0 * 3 + i) as f32;
        }
    }

    #[test]
    fn every_row_is_written_once_in_place_single_or_multithreaded() {
        for (m, align, work) in [
            (1, 8, usize::MAX),
            (37, 8, usize::MAX),
            (100, 1, usize::MAX),
            (5, 8, 0),
        ] {
            let want: Vec<f32> = (0..m * 3).map(|i| i as f32).collect();
            let mut single = vec![f32::NAN; m * 3];
            split_rows(m, align, 3, work, &mut single, fill);
            assert_eq!(single, want);
            let mut multi = vec![f32::NAN; m * 3];
            multithread_tract_scope(Executor::multithread(3), || {
                split_rows(m, align, 3, work, &mut multi, |r0, r1, rows| {
                    assert!(r0 % align == 0);
                    fill(r0, r1, rows)
                })
            });
            assert_eq!(multi, want);
        }
    }
}
