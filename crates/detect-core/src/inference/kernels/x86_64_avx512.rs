//! AVX-512 kernels (F, BW, VL and VNNI): the 8-bit GEMM on `vpdpbusd` (64 8-bit
//! multiply-adds per instruction), the depthwise convolutions, and the 16-lane 8-bit loads and
//! stores they share. Reached only through [`SET`], which is handed out only on CPUs that run
//! it: that is what the safe wrappers' `unsafe` blocks rely on.

use std::arch::x86_64::*;

use super::depthwise::{Depthwise, PaddedRows, SlotLayout};
use super::gemm::{PackedGemm, MR};
use super::quant::{Bounds, InElem};
use super::{Depthwise3x3, Isa, KernelSet};

/// 16-channel blocks per GEMM tile: 8 rows x 3 blocks of accumulators, 3 weight vectors and a
/// broadcast fit the 32 vector registers.
const NB: usize = 3;

/// Output pixels the 3x3 depthwise kernel computes at once (independent accumulators hide the
/// fused multiply-add's latency).
const PIXELS: usize = 4;

pub static SET: KernelSet = KernelSet {
    isa: Isa::Avx512Vnni,
    int8_convs: true,
    wide_weights: false,
    reads_whole_tiles: false,
    gemm_f32: gemm::<f32>,
    gemm_u8: gemm::<u8>,
    quantize,
    depthwise,
    depthwise_3x3: Some(Depthwise3x3 {
        f32_f32: depthwise_3x3_rows::<f32, f32>,
        f32_u8: depthwise_3x3_rows::<f32, u8>,
        u8_f32: depthwise_3x3_rows::<u8, f32>,
        u8_u8: depthwise_3x3_rows::<u8, u8>,
    }),
};

// The safe entry points of the table. Safety of each `unsafe` block: `SET` is only handed out
// on CPUs with AVX-512 F, BW, VL and VNNI (`KernelSet::for_isa`); the callee checks its slice
// lengths with assertions.

fn gemm<O: Elem>(p: &PackedGemm, a: &[u8], sums: &[f32], r0: usize, r1: usize, out: &mut [O]) {
    unsafe { gemm_vnni(p, a, sums, r0, r1, out) }
}

fn quantize(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) -> usize {
    unsafe { quantize_whole_vectors(x, inv, zp, out) }
}

fn depthwise(dw: &Depthwise, input: &[f32], output: &mut [f32]) {
    unsafe { depthwise_image_avx512(dw, input, output) }
}

fn depthwise_3x3_rows<I: Elem, O: Elem>(
    dw: &Depthwise,
    input: &[I],
    oy0: usize,
    oy1: usize,
    output: &mut [O],
) {
    unsafe { depthwise_3x3(dw, input, oy0, oy1, output) }
}

/// Quantize the first `x.len() / 16 * 16` values into `out` with [`Elem::store`]; returns
/// how many.
///
/// Safety: AVX-512 F, BW and VL; `out` at least as long as `x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn quantize_whole_vectors(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) -> usize {
    assert!(out.len() >= x.len());
    let b = Bounds16::new(Bounds::new(f32::NEG_INFINITY, f32::INFINITY, inv, zp));
    let whole = x.len() / 16 * 16;
    for i in (0..whole).step_by(16) {
        let v = _mm512_loadu_ps(x.as_ptr().add(i));
        u8::store(out.as_mut_ptr().add(i), 0xffff, v, &b);
    }
    whole
}

/// 16 lanes of an element type, to and from f32 vectors.
pub trait Elem: InElem {
    /// Load up to 16 values (lanes outside `m` are 0) as f32; 8-bit values are dequantized
    /// as `q * scale + offset` (`offset = -zero_point * scale`).
    ///
    /// Safety: AVX-512 F, BW and VL; `p` valid for the lanes in `m`.
    unsafe fn load(p: *const Self, m: __mmask16, scale: __m512, offset: __m512) -> __m512;

    /// Clamp `v` to `b`'s `lo..=hi` and store the lanes in `m`; 8-bit values are quantized
    /// as `round(v * inv + zero_point)` clamped to 0..=255, rounding half to even (both clamps
    /// in one, in the quantized range: [`Bounds`]).
    ///
    /// Safety: AVX-512 F, BW and VL; `p` valid for the lanes in `m`.
    unsafe fn store(p: *mut Self, m: __mmask16, v: __m512, b: &Bounds16);

    /// [`Elem::store`] for up to four vectors of one row, `v[t]` at `p + 16 t`: the
    /// first `valid` values.
    ///
    /// Safety: AVX-512 F, BW and VL; `p` valid for `valid` values.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn store_row<const T: usize>(p: *mut Self, valid: usize, v: [__m512; T], b: &Bounds16) {
        store_each(p, valid, v, b)
    }
}

/// [`Elem::store_row`] one vector at a time.
///
/// Safety: AVX-512 F, BW and VL; `p` valid for `valid` values.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store_each<E: Elem, const T: usize>(
    p: *mut E,
    valid: usize,
    v: [__m512; T],
    b: &Bounds16,
) {
    for (t, v) in v.into_iter().enumerate() {
        if valid > t * 16 {
            E::store(p.add(t * 16), lanes(valid - t * 16), v, b);
        }
    }
}

/// `round(v * inv + zero_point)` clamped to `q_lo..=q_hi` (inside 0..=255) as 32-bit integers:
/// `min(q_hi, x)` keeps NaN (the second operand), `max(NaN, q_lo)` gives `q_lo`, as [`Bounds`]
/// requires.
///
/// Safety: AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn quantized(v: __m512, b: &Bounds16) -> __m512i {
    let x = _mm512_fmadd_ps(v, b.inv, b.zero_point);
    _mm512_cvtps_epi32(_mm512_max_ps(_mm512_min_ps(b.q_hi, x), b.q_lo))
}

/// [`Bounds`] in vectors.
pub struct Bounds16 {
    lo: __m512,
    hi: __m512,
    inv: __m512,
    zero_point: __m512,
    q_lo: __m512,
    q_hi: __m512,
}

impl Bounds16 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new(b: Bounds) -> Self {
        Bounds16 {
            lo: _mm512_set1_ps(b.lo),
            hi: _mm512_set1_ps(b.hi),
            inv: _mm512_set1_ps(b.inv),
            zero_point: _mm512_set1_ps(b.zero_point),
            q_lo: _mm512_set1_ps(b.q_lo),
            q_hi: _mm512_set1_ps(b.q_hi),
        }
    }
}

impl Elem for f32 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load(p: *const f32, m: __mmask16, _: __m512, _: __m512) -> __m512 {
        _mm512_maskz_loadu_ps(m, p)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn store(p: *mut f32, m: __mmask16, v: __m512, b: &Bounds16) {
        _mm512_mask_storeu_ps(p, m, _mm512_min_ps(_mm512_max_ps(v, b.lo), b.hi))
    }
}

impl Elem for u8 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load(p: *const u8, m: __mmask16, scale: __m512, offset: __m512) -> __m512 {
        let q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p as *const i8));
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), scale, offset)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn store(p: *mut u8, m: __mmask16, v: __m512, b: &Bounds16) {
        _mm512_mask_cvtepi32_storeu_epi8(p as *mut i8, m, quantized(v, b))
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn store_row<const T: usize>(p: *mut u8, valid: usize, v: [__m512; T], b: &Bounds16) {
        if T > 4 {
            return store_each(p, valid, v, b);
        }
        // One packed store instead of a narrowing store per vector: the packs saturate
        // 0..=255 unchanged and leave, per 128-bit lane i, the 4-value groups i of each vector
        // in turn; the permutation puts each vector's groups back together.
        let q: [__m512i; 4] = std::array::from_fn(|t| {
            if t < T {
                quantized(v[t], b)
            } else {
                _mm512_setzero_si512()
            }
        });
        let bytes = _mm512_packus_epi16(
            _mm512_packus_epi32(q[0], q[1]),
            _mm512_packus_epi32(q[2], q[3]),
        );
        let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        let bytes = _mm512_permutexvar_epi32(order, bytes);
        let n = valid.min(T * 16);
        let m: __mmask64 = if n == 64 { !0 } else { (1u64 << n) - 1 };
        _mm512_mask_storeu_epi8(p as *mut i8, m, bytes);
    }
}

/// Rows `r0..r1` into `output` (those rows). Tiles read MR whole rows: a last partial tile is
/// read from a zero-padded copy of its rows, so `a` need not be padded.
///
/// Safety: the CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_vnni<O: Elem>(
    p: &PackedGemm,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    output: &mut [O],
) {
    assert!(a.len() >= r1 * p.k && sums.len() >= r1);
    assert!(output.len() == (r1 - r0) * p.n);
    let whole_end = r0 + (r1 - r0) / MR * MR;
    let mut tail = vec![0u8; if whole_end < r1 { MR * p.k } else { 0 }];
    tail[..(r1 - whole_end) * p.k].copy_from_slice(&a[whole_end * p.k..r1 * p.k]);
    let mut b0 = 0;
    while b0 < p.n_blocks {
        let blocks = (p.n_blocks - b0).min(NB);
        for m0 in (r0..r1).step_by(MR) {
            let rows = if m0 < whole_end {
                a.as_ptr().add(m0 * p.k)
            } else {
                tail.as_ptr()
            };
            match blocks {
                3 => tile::<3, O>(p, rows, sums, m0, (r0, r1), b0, output),
                2 => tile::<2, O>(p, rows, sums, m0, (r0, r1), b0, output),
                _ => tile::<1, O>(p, rows, sums, m0, (r0, r1), b0, output),
            }
        }
        b0 += blocks;
    }
}

/// One tile: MR rows of `p.k` values at `rows` (row `m0` first; stored if below `rows.1`, at
/// `row - rows.0` in `out`), channel blocks `b0..b0 + T`.
///
/// Safety: as [`gemm_vnni`]; `rows` valid for MR rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<const T: usize, O: Elem>(
    p: &PackedGemm,
    rows: *const u8,
    sums: &[f32],
    m0: usize,
    (first, end): (usize, usize),
    b0: usize,
    out: &mut [O],
) {
    let k4 = p.k / 4;
    // Built lane by lane: an array-repeat initializer became a 1.5 KiB memset per tile.
    let mut acc: [[__m512i; T]; MR] =
        std::array::from_fn(|_| std::array::from_fn(|_| _mm512_setzero_si512()));
    let w = p.weights.as_ptr().add(b0 * k4 * 64);
    for kk in 0..k4 {
        let mut wv = [_mm512_setzero_si512(); T];
        for (t, v) in wv.iter_mut().enumerate() {
            *v = _mm512_loadu_si512(w.add((t * k4 + kk) * 64) as *const _);
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let px = (rows.add(r * p.k + kk * 4) as *const i32).read_unaligned();
            let av = _mm512_set1_epi32(px);
            for t in 0..T {
                acc_r[t] = _mm512_dpbusd_epi32(acc_r[t], av, wv[t]);
            }
        }
    }
    let bounds = Bounds16::new(p.bounds());
    let col = b0 * 16;
    let load = |v: &[f32], t: usize| _mm512_loadu_ps(v.as_ptr().add(col + t * 16));
    let mult: [__m512; T] = std::array::from_fn(|t| load(&p.mult, t));
    let sum_mult: [__m512; T] = std::array::from_fn(|t| load(&p.sum_mult, t));
    let offset: [__m512; T] = std::array::from_fn(|t| load(&p.offset, t));
    let valid = (p.n - col).min(T * 16);
    for (r, acc_r) in acc.iter().enumerate() {
        let row = m0 + r;
        if row >= end {
            break;
        }
        let sum = _mm512_set1_ps(sums[row]);
        let v: [__m512; T] = std::array::from_fn(|t| {
            let base = _mm512_fmadd_ps(sum, sum_mult[t], offset[t]);
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc_r[t]), mult[t], base)
        });
        let dst = out.as_mut_ptr().add((row - first) * p.n + col);
        O::store_row(dst, valid, v, &bounds);
    }
}

/// 3x3 kernels with AVX-512: per output row and 16-channel block, the nine weight vectors
/// stay in registers while the row's pixels stream past, [`PIXELS`] at a time. Input and
/// output are f32 or 8-bit; input rows come from [`PaddedRows`] (8-bit ones dequantized once;
/// blocked, so a pixel's taps are fixed offsets; the padding as zeros, so no pixel needs edge
/// checks), 8-bit output is quantized on store.
///
/// Safety: the CPU must have AVX-512 F, BW and VL; `input` must be one image, `output`
/// its rows `oy0..oy1`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn depthwise_3x3<I: Elem, O: Elem>(
    dw: &Depthwise,
    input: &[I],
    oy0: usize,
    oy1: usize,
    output: &mut [O],
) {
    let params = dw.params_3x3(input, oy0, oy1, output);
    let (ow, c) = (dw.out_hw.1, dw.channels);
    let bounds = Bounds16::new(params.bounds());
    let mut padded = PaddedRows::new(dw, input, 16, c.div_ceil(16));
    let layout = padded.layout();
    let fill = |src: &[I], dst: &mut [f32], l: SlotLayout| {
        fill_blocks(src, dst, l, c, params.scale, params.offset)
    };
    let (w, b, y) = (dw.kernel.as_ptr(), dw.bias.as_ptr(), output.as_mut_ptr());
    for oy in oy0..oy1 {
        let x = padded.get(dw.rows_3x3(oy), fill);
        for block in 0..layout.blocks {
            let ch = block * 16;
            let m = lanes(c - ch);
            let run = Run {
                rows: x.map(|r| r.add(layout.at(block, 0))),
                weights: std::array::from_fn(|t| _mm512_maskz_loadu_ps(m, w.add(t * c + ch))),
                bias: _mm512_maskz_loadu_ps(m, b.add(ch)),
                out: y.add((oy - oy0) * ow * c + ch),
                c,
                m,
            };
            // The stride as a constant where it is one, so the taps' offsets are.
            match dw.stride.1 {
                1 => run.row(1, ow, &bounds),
                2 => run.row(2, ow, &bounds),
                sx => run.row(sx, ow, &bounds),
            }
        }
    }
}

/// The mask of the first `n` of 16 lanes (all of them from 16 on).
#[inline]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as u16
    }
}

/// One output row of one 16-channel block of [`depthwise_3x3`]: the block's input rows (at
/// column 0), its nine weights and bias, its first output, its lanes.
struct Run<O> {
    rows: [*const f32; 3],
    weights: [__m512; 9],
    bias: __m512,
    out: *mut O,
    c: usize,
    m: __mmask16,
}

impl<O: Elem> Run<O> {
    /// The row's `ow` pixels, [`PIXELS`] at a time, then one at a time.
    ///
    /// Safety: AVX-512 F, BW and VL; `rows` and `out` valid for the row.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn row(&self, stride: usize, ow: usize, bounds: &Bounds16) {
        let mut ox = 0;
        while ox + PIXELS <= ow {
            self.pixels::<PIXELS>(ox, stride, bounds);
            ox += PIXELS;
        }
        for ox in ox..ow {
            self.pixels::<1>(ox, stride, bounds);
        }
    }

    /// Pixels `ox..ox + N`: `N` independent chains of nine fused multiply-adds in kernel order
    /// (independent chains hide the latency), clamp, store.
    ///
    /// Safety: AVX-512 F, BW and VL; as [`Run::row`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn pixels<const N: usize>(&self, ox: usize, stride: usize, bounds: &Bounds16) {
        let mut acc = [self.bias; N];
        for (ky, row) in self.rows.iter().enumerate() {
            let p = row.add(ox * stride * 16);
            for kx in 0..3 {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let v = _mm512_loadu_ps(p.add((j * stride + kx) * 16));
                    *acc = _mm512_fmadd_ps(v, self.weights[ky * 3 + kx], *acc);
                }
            }
        }
        let out = self.out.add(ox * self.c);
        for (j, acc) in acc.into_iter().enumerate() {
            O::store(out.add(j * self.c), self.m, acc, bounds);
        }
    }
}

/// Convert a row of input (`c` channels per pixel) into its [`PaddedRows`] slot as
/// [`Elem::load`] does (8-bit values dequantized, f32 copied); lanes past the channels keep
/// what the masked load gives (no output lane reads them).
///
/// Safety: AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn fill_blocks<I: Elem>(
    src: &[I],
    dst: &mut [f32],
    l: SlotLayout,
    c: usize,
    scale: f32,
    offset: f32,
) {
    let iw = src.len() / c;
    assert!(src.len() == iw * c && l.lanes == 16 && l.blocks == c.div_ceil(16));
    assert!(l.lead + iw <= l.width && dst.len() == l.values());
    let (vs, vo) = (_mm512_set1_ps(scale), _mm512_set1_ps(offset));
    for block in 0..l.blocks {
        let m = lanes(c - block * 16);
        let d = dst.as_mut_ptr().add(l.at(block, l.lead));
        let s = src.as_ptr().add(block * 16);
        let row = |m: __mmask16| {
            for x in 0..iw {
                _mm512_storeu_ps(d.add(x * 16), I::load(s.add(x * c), m, vs, vo));
            }
        };
        // A constant full mask lets the load fold into the widening (one instruction, not two).
        if m == 0xffff {
            row(0xffff)
        } else {
            row(m)
        }
    }
}

/// The portable depthwise kernel with AVX-512 intrinsics: one register per 16 channels,
/// fused multiply-adds.
///
/// Safety: the CPU must have AVX-512 F; `input` and `output` must be one image each.
#[target_feature(enable = "avx512f")]
unsafe fn depthwise_image_avx512(dw: &Depthwise, input: &[f32], output: &mut [f32]) {
    let (ih, iw) = dw.in_hw;
    let (oh, ow) = dw.out_hw;
    let (kh, kw) = dw.kernel_hw;
    let c = dw.channels;
    assert!(input.len() == ih * iw * c && output.len() == oh * ow * c);
    let (lo, hi) = dw.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
    let whole = c / 16 * 16;
    let mask: __mmask16 = ((1u32 << (c - whole)) - 1) as u16;
    let (x, w, b) = (input.as_ptr(), dw.kernel.as_ptr(), dw.bias.as_ptr());
    let mut taps: Vec<(usize, usize)> = Vec::with_capacity(kh * kw);
    for oy in 0..oh {
        for ox in 0..ow {
            dw.taps(oy, ox, &mut taps);
            let out = output.as_mut_ptr().add((oy * ow + ox) * c);
            // Every offset below is a tap inside the image plus a channel below c.
            for ch in (0..whole).step_by(16) {
                let mut acc = _mm512_loadu_ps(b.add(ch));
                for &(x0, w0) in &taps {
                    let xv = _mm512_loadu_ps(x.add(x0 + ch));
                    acc = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w.add(w0 + ch)), acc);
                }
                let y = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
                _mm512_storeu_ps(out.add(ch), y);
            }
            if whole < c {
                let mut acc = _mm512_maskz_loadu_ps(mask, b.add(whole));
                for &(x0, w0) in &taps {
                    let xv = _mm512_maskz_loadu_ps(mask, x.add(x0 + whole));
                    let wv = _mm512_maskz_loadu_ps(mask, w.add(w0 + whole));
                    acc = _mm512_fmadd_ps(xv, wv, acc);
                }
                let y = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
                _mm512_mask_storeu_ps(out.add(whole), mask, y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn vector_loads_and_stores_match_the_scalar_rule() {
        use super::*;
        use crate::inference::kernels::quant::{dequantize, quantize_slice};
        use crate::inference::kernels::{Isa, KernelSet};
        use crate::model::TensorQuant;
        // Fails, not skips, on a CPU without the set: run it where the set runs.
        KernelSet::for_isa(Isa::Avx512Vnni).expect("this test needs AVX-512 VNNI");
        let q = TensorQuant {
            scale: 0.023,
            zero_point: 131,
        };
        let x: Vec<f32> = (0..16).map(|i| (i as f32 - 6.0) * 0.41).collect();
        let mut want = [0u8; 16];
        quantize_slice(KernelSet::portable(), &x, q, &mut want);
        let mut got = [0u8; 16];
        let mut back = [0f32; 16];
        // Safety: the CPU has the features (checked above); 16 lanes fit the arrays, 13 stored.
        unsafe {
            let v = _mm512_loadu_ps(x.as_ptr());
            let unclamped = Bounds::new(
                f32::NEG_INFINITY,
                f32::INFINITY,
                1.0 / q.scale,
                q.zero_point as f32,
            );
            let b = Bounds16::new(unclamped);
            u8::store(got.as_mut_ptr(), 0x1fff, v, &b);
            let (s, off) = (
                _mm512_set1_ps(q.scale),
                _mm512_set1_ps(-(q.zero_point as f32) * q.scale),
            );
            let d = u8::load(want.as_ptr(), 0xffff, s, off);
            f32::store(back.as_mut_ptr(), 0xffff, d, &b);
        }
        assert_eq!(got[..13], want[..13]);
        assert_eq!(
            got[13..],
            [0, 0, 0],
            "lanes outside the mask are not written"
        );
        assert_eq!(back.to_vec(), dequantize(&want, q));
    }
}
