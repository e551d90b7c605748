//! Convolution patches gathered into matrix rows (im2col) for the 8-bit GEMM: one row of `k`
//! values per output pixel, the kernel's taps in order with each tap's channels; a tap in the
//! padding reads the input zero point (real 0), the row's extension to `k` is 0.
//!
//! Why a writer of its own: the first convolution has 3 input channels, so its rows are built
//! from 3-value pieces; appending them one `extend_from_slice` at a time cost more than that
//! convolution's matrix product (~1 ms of an 8 ms inference). A kernel row whose columns all
//! lie inside the image is one contiguous run of the input and is copied whole, and a short
//! piece is written as one 16-byte move.

/// The geometry of one image's patches.
#[derive(Debug)]
pub struct Patches {
    pub in_hw: (usize, usize),
    pub out_hw: (usize, usize),
    pub kernel_hw: (usize, usize),
    pub stride: (usize, usize),
    pub pad_before: (usize, usize),
    /// Input channels.
    pub c: usize,
    /// Row length (at least the patch's values).
    pub k: usize,
    /// What a tap in the padding reads.
    pub pad: u8,
}

impl Patches {
    /// Append the rows of one image (`q`, its 8-bit values) to `out`.
    pub fn write(&self, q: &[u8], out: &mut RowWriter) {
        let ((ih, iw), (oh, ow)) = (self.in_hw, self.out_hw);
        let ((kh, kw), (sh, sw)) = (self.kernel_hw, self.stride);
        let ((pt, pl), c) = (self.pad_before, self.c);
        assert!(q.len() == ih * iw * c && self.k >= kh * kw * c);
        let (run, tail) = (kw * c, self.k - kh * kw * c);
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..kh {
                    let iy = oy * sh + ky;
                    if iy < pt || iy - pt >= ih {
                        out.fill(self.pad, run);
                        continue;
                    }
                    // Columns in padded coordinates: the image starts at `pl`.
                    let (row, left) = ((iy - pt) * iw, ox * sw);
                    if left >= pl && left - pl + kw <= iw {
                        out.copy(q, (row + left - pl) * c, run);
                        continue;
                    }
                    for ix in left..left + kw {
                        if ix < pl || ix - pl >= iw {
                            out.fill(self.pad, c);
                        } else {
                            out.copy(q, (row + ix - pl) * c, c);
                        }
                    }
                }
                out.fill(0, tail);
            }
        }
    }
}

/// Bytes appended up to a fixed length, a piece of up to 16 as one 16-byte move: the bytes
/// past a piece are garbage until the next piece overwrites them, so the buffer keeps 16 bytes
/// of room past the length and exposes only what was appended.
pub struct RowWriter {
    buf: Vec<u8>,
    len: usize,
    limit: usize,
}

/// Room past the last byte for a short piece's whole move.
const MOVE: usize = 16;

impl RowWriter {
    /// A writer for `limit` bytes.
    pub fn new(limit: usize) -> Self {
        RowWriter {
            buf: Vec::with_capacity(limit + MOVE),
            len: 0,
            limit,
        }
    }

    /// Append `src[at..at + n]`.
    #[inline(always)]
    pub fn copy(&mut self, src: &[u8], at: usize, n: usize) {
        let piece = &src[at..at + n];
        assert!(self.len + n <= self.limit);
        // Safety: the buffer has room for `limit + MOVE` bytes and `len + n <= limit`, so
        // `MOVE` bytes from `len` fit; the 16-byte read stays inside `src`.
        unsafe {
            let dst = self.buf.as_mut_ptr().add(self.len);
            if n <= MOVE && src.len() - at >= MOVE {
                std::ptr::copy_nonoverlapping(src.as_ptr().add(at), dst, MOVE);
            } else {
                std::ptr::copy_nonoverlapping(piece.as_ptr(), dst, n);
            }
        }
        self.len += n;
    }

    /// Append `n` copies of `v`.
    #[inline(always)]
    pub fn fill(&mut self, v: u8, n: usize) {
        assert!(self.len + n <= self.limit);
        // Safety: as in `copy`.
        unsafe {
            let dst = self.buf.as_mut_ptr().add(self.len);
            if n <= MOVE {
                std::ptr::copy_nonoverlapping([v; MOVE].as_ptr(), dst, MOVE);
            } else {
                std::ptr::write_bytes(dst, v, n);
            }
        }
        self.len += n;
    }

    /// What was appended, then zeros up to the limit.
    pub fn finish(mut self) -> Vec<u8> {
        // Safety: bytes `0..len` were written by the appends, each by its own piece (a later
        // piece's move starts where the earlier piece ended).
        unsafe { self.buf.set_len(self.len) };
        self.buf.resize(self.limit, 0);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_any_length_land_in_order_and_the_rest_is_zero() {
        let src: Vec<u8> = (1..=40).collect();
        let mut w = RowWriter::new(64);
        w.copy(&src, 0, 3); // short, 16-byte move
        w.fill(7, 2); // short fill
        w.copy(&src, 30, 9); // short, but too near the end of `src` for a 16-byte read
        w.copy(&src, 2, 20); // long
        w.fill(9, 17); // long fill
        let got = w.finish();
        let mut want: Vec<u8> = vec![1, 2, 3, 7, 7];
        want.extend(31..=39);
        want.extend(3..=22);
        want.extend([9; 17]);
        want.resize(64, 0);
        assert_eq!(got, want);
    }

    #[test]
    #[should_panic]
    fn appending_past_the_limit_panics() {
        let mut w = RowWriter::new(4);
        w.copy(&[1, 2, 3, 4, 5], 0, 5);
    }
}
