//! A small work queue for independent jobs: `n` jobs on `workers` scoped threads, each thread
//! taking the next index until none is left, the results handed back in index order. Used
//! where each job is a whole image (detection in a batch, an image sent to the function).

use std::sync::atomic::{AtomicUsize, Ordering};

/// `job(i)` for every `i < n`, on at most `workers` threads (at least one). Entry `i` is
/// `None` only if the thread that took job `i` panicked (its finished jobs are lost too); the
/// panic goes no further, so the caller decides what such a job reports.
pub fn map_in_order<R: Send>(
    n: usize,
    workers: usize,
    job: impl Fn(usize) -> R + Sync,
) -> Vec<Option<R>> {
    let workers = workers.clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        done.push((i, job(i)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut results: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for (i, r) in done.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
}

#[cfg(test)]
mod tests {
    use super::map_in_order;

    #[test]
    fn every_job_runs_once_and_comes_back_in_order() {
        for workers in [0, 1, 3, 64] {
            let out = map_in_order(100, workers, |i| i * i);
            assert_eq!(out, (0..100).map(|i| Some(i * i)).collect::<Vec<_>>());
        }
        assert!(map_in_order(0, 4, |i| i).is_empty());
    }

    #[test]
    fn a_panicking_worker_leaves_none_instead_of_unwinding() {
        let out = map_in_order(5, 1, |i| {
            assert!(i != 3, "job 3 fails");
            i
        });
        // One worker: jobs 0..3 were done by the thread that panicked, job 4 never ran.
        assert_eq!(out, vec![None; 5]);
    }
}
