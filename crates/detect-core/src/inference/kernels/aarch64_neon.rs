//! arm64 kernels for the 8-bit convolutions' matrix product: the same integer dot products
//! and the same f32 epilogue as the portable GEMM, so the outputs are bit-identical.
//!
//! Three kernel sets, chosen by the table in `kernels/mod.rs`:
//! - `neon-i8mm` (Graviton3/4): `usmmla` multiplies a 2x8 block of unsigned activations by an
//!   8x2 block of signed weights, 32 multiply-adds per instruction, no sign correction.
//! - `neon-dotprod` (Graviton2 and later): `sdot` by element, 16 multiply-adds per instruction.
//!   `sdot` is signed x signed, so activations enter as `a - 128` (one `eor` per 16 bytes) and
//!   `128 * sum(w)` per channel is added back, exactly, in integers.
//! - `neon` (any arm64): `smull` + `sadalp` widening, with the same correction; about as slow
//!   as f32, so that set keeps the convolutions in f32 (`int8_convs: false`) and the kernel
//!   exists for correctness tests and old cores.
//!
//! All read the weights in the layout the x86 kernels use (per block of 16 channels, per group
//! of 4 row entries, 64 bytes: channel `j`'s 4 weights at `4 j`), one 16-channel block at a time
//! with 4 rows per tile. `sdot`'s and `usmmla`'s intrinsics are not stable in Rust, so those
//! two instructions are inline assembly; everything else is `std::arch::aarch64`. The three
//! sets share the 3x3 depthwise kernel and quantization of `aarch64_depthwise.rs`; other
//! depthwise shapes run the portable loop.

use std::arch::aarch64::*;
use std::arch::asm;

use super::gemm::PackedGemm as Packed;
use super::quant::OutElem;
use super::{aarch64_depthwise, portable, Isa, KernelSet};

/// Rows per tile. The row buffer is padded to whole multiples of the caller's tile (8 rows), so
/// every 4-row tile starting at a multiple of 4 lies inside it.
const ROWS: usize = 4;
/// The plain NEON kernel keeps two accumulators per 4 channels: 2 rows fill the registers.
const NEON_ROWS: usize = 2;

/// The three sets. Safety of the `unsafe` calls in their entry points: a set is only handed
/// out on a CPU with its features (`KernelSet::for_isa`), and the kernels check the slice
/// bounds themselves ([`check_bounds`]).
pub static I8MM: KernelSet = KernelSet {
    isa: Isa::NeonI8mm,
    int8_convs: true,
    wide_weights: false,
    reads_whole_tiles: true,
    gemm_f32: |p, a, s, r0, r1, out| unsafe { gemm_i8mm(p, a, s, r0, r1, out) },
    gemm_u8: |p, a, s, r0, r1, out| unsafe { gemm_i8mm(p, a, s, r0, r1, out) },
    quantize: aarch64_depthwise::quantize,
    depthwise: portable::depthwise_image,
    depthwise_3x3: Some(aarch64_depthwise::DEPTHWISE_3X3),
};

pub static DOTPROD: KernelSet = KernelSet {
    isa: Isa::NeonDotprod,
    int8_convs: true,
    wide_weights: false,
    reads_whole_tiles: true,
    gemm_f32: |p, a, s, r0, r1, out| unsafe { gemm_dotprod(p, a, s, r0, r1, out) },
    gemm_u8: |p, a, s, r0, r1, out| unsafe { gemm_dotprod(p, a, s, r0, r1, out) },
    quantize: aarch64_depthwise::quantize,
    depthwise: portable::depthwise_image,
    depthwise_3x3: Some(aarch64_depthwise::DEPTHWISE_3X3),
};

pub static NEON: KernelSet = KernelSet {
    isa: Isa::Neon,
    int8_convs: false,
    wide_weights: false,
    reads_whole_tiles: true,
    gemm_f32: |p, a, s, r0, r1, out| unsafe { gemm_neon(p, a, s, r0, r1, out) },
    gemm_u8: |p, a, s, r0, r1, out| unsafe { gemm_neon(p, a, s, r0, r1, out) },
    quantize: aarch64_depthwise::quantize,
    depthwise: portable::depthwise_image,
    depthwise_3x3: Some(aarch64_depthwise::DEPTHWISE_3X3),
};

/// The bounds every kernel relies on: whole tiles of rows in `a`, one sum per stored row and
/// an output of exactly rows `r0..r1`.
fn check_bounds<O>(p: &Packed, a: &[u8], sums: &[f32], r0: usize, r1: usize, out: &[O]) {
    let tiles_end = r1.div_ceil(ROWS) * ROWS;
    assert!(r0.is_multiple_of(ROWS) && r0 <= r1);
    assert!(a.len() >= tiles_end * p.k && sums.len() >= r1);
    assert!(out.len() == (r1 - r0) * p.n);
    assert!(p.k.is_multiple_of(4) && p.weights.len() >= p.n_blocks * p.k * 16);
    assert!(p.mult.len() >= p.n_blocks * 16);
    assert!(p.sum_mult.len() >= p.n_blocks * 16 && p.offset.len() >= p.n_blocks * 16);
}

/// `sdot acc.4s, w.16b, a.4b[LANE]`: each channel lane of `acc` gains the dot product of its 4
/// signed weights in `w` with the 4 signed bytes of `a`'s 32-bit lane `LANE`.
macro_rules! sdot_lane {
    ($acc:expr, $w:expr, $a:expr, $lane:literal) => {{
        let mut acc: int32x4_t = $acc;
        asm!(
            concat!("sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[", $lane, "]"),
            acc = inout(vreg) acc,
            w = in(vreg) $w,
            a = in(vreg) $a,
            options(pure, nomem, nostack, preserves_flags)
        );
        acc
    }};
}

/// `usmmla acc.4s, a.16b, w.16b`: `acc` (2x2, row-major) gains the product of `a` (2 rows of
/// 8 unsigned bytes) and `w` (2 columns of 8 signed bytes).
#[inline]
#[target_feature(enable = "neon,i8mm")]
unsafe fn usmmla(acc: int32x4_t, a: uint8x16_t, w: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    asm!(
        "usmmla {acc:v}.4s, {a:v}.16b, {w:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        w = in(vreg) w,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

/// Four values quantized as [`quantize`](super::quant::quantize) does, as 16-bit lanes: fused
/// multiply-add, clamp to [0, 255] (maxnm turns NaN into 0, as the scalar clamp + cast does),
/// round half to even; in range, so narrowing is exact.
///
/// Safety: NEON.
#[inline(always)]
pub unsafe fn quantize4(v: float32x4_t, inv: float32x4_t, zp: float32x4_t) -> uint16x4_t {
    let v = vfmaq_f32(zp, v, inv);
    let v = vminnmq_f32(vmaxnmq_f32(v, vdupq_n_f32(0.0)), vdupq_n_f32(255.0));
    vmovn_u32(vcvtnq_u32_f32(v))
}

/// An output element the epilogue can store from f32 vectors.
pub trait Store: OutElem {
    /// Store the first `valid` (at most 16) of the 16 values in `y`; 8-bit outputs are
    /// quantized as [`quantize`](super::quant::quantize) does.
    ///
    /// Safety: NEON; `p` valid for `valid` elements.
    unsafe fn store16(p: *mut Self, y: [float32x4_t; 4], valid: usize, inv: f32, zp: f32);
}

impl Store for f32 {
    #[inline]
    unsafe fn store16(p: *mut f32, y: [float32x4_t; 4], valid: usize, _: f32, _: f32) {
        if valid == 16 {
            for (v, y) in y.iter().enumerate() {
                vst1q_f32(p.add(4 * v), *y);
            }
        } else {
            let mut t = [0f32; 16];
            for (v, y) in y.iter().enumerate() {
                vst1q_f32(t.as_mut_ptr().add(4 * v), *y);
            }
            std::ptr::copy_nonoverlapping(t.as_ptr(), p, valid);
        }
    }
}

impl Store for u8 {
    #[inline]
    unsafe fn store16(p: *mut u8, y: [float32x4_t; 4], valid: usize, inv: f32, zp: f32) {
        let (inv, zp) = (vdupq_n_f32(inv), vdupq_n_f32(zp));
        let q = y.map(|y| quantize4(y, inv, zp));
        let bytes = vcombine_u8(
            vmovn_u16(vcombine_u16(q[0], q[1])),
            vmovn_u16(vcombine_u16(q[2], q[3])),
        );
        if valid == 16 {
            vst1q_u8(p, bytes);
        } else {
            let mut t = [0u8; 16];
            vst1q_u8(t.as_mut_ptr(), bytes);
            std::ptr::copy_nonoverlapping(t.as_ptr(), p, valid);
        }
    }
}

/// The epilogue for one row and one block of 16 channels starting at `col`: `dots` are the
/// exact integer dot products; bias, row-sum term, scale and clamp as in `gemm_portable`
/// (same fused operations in the same order), then stored.
///
/// Safety: NEON; `out` valid for the block's channels below `n`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn finish_row<O: Store>(
    p: &Packed,
    dots: [int32x4_t; 4],
    sum: f32,
    col: usize,
    out: *mut O,
) {
    let (inv, zp) = p.out_params();
    let (lo, hi) = (vdupq_n_f32(p.lo), vdupq_n_f32(p.hi));
    let sum = vdupq_n_f32(sum);
    let mut y = [vdupq_n_f32(0.0); 4];
    for (v, (y, dot)) in y.iter_mut().zip(dots).enumerate() {
        let c = col + 4 * v;
        let base = vfmaq_f32(
            vld1q_f32(p.offset.as_ptr().add(c)),
            sum,
            vld1q_f32(p.sum_mult.as_ptr().add(c)),
        );
        let x = vfmaq_f32(base, vcvtq_f32_s32(dot), vld1q_f32(p.mult.as_ptr().add(c)));
        *y = vminnmq_f32(vmaxnmq_f32(x, lo), hi);
    }
    O::store16(out, y, (p.n - col).min(16), inv, zp);
}

/// Per channel of block `b`, `128 * sum(w)` over the whole row length: what `sdot` on
/// `a - 128` misses. |sum| <= 128 * 16384, so the product fits i32.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn block_correction(p: &Packed, b: usize) -> [int32x4_t; 4] {
    let k4 = p.k / 4;
    let w = p.weights.as_ptr().add(b * k4 * 64);
    let mut acc = [vdupq_n_s32(0); 4];
    for g in 0..k4 {
        for (v, acc) in acc.iter_mut().enumerate() {
            // 16 weights = 4 channels x 4 entries: pairs to i16, then pairs of those into the
            // channel's i32 lane.
            let wv = vld1q_s8(w.add(g * 64 + v * 16));
            *acc = vpadalq_s16(*acc, vpaddlq_s8(wv));
        }
    }
    for s in acc.iter_mut() {
        *s = vshlq_n_s32::<7>(*s);
    }
    acc
}

/// The output pointer for `row` and channel `col`, if the row is one to store.
#[inline]
fn out_ptr<O>(
    out: &mut [O],
    p: &Packed,
    (r0, r1): (usize, usize),
    row: usize,
    col: usize,
) -> Option<*mut O> {
    (row < r1).then(|| out[(row - r0) * p.n + col..].as_mut_ptr())
}

/// Dot-product kernel: rows `r0..r1` into `out` (those rows).
///
/// Safety: the CPU must have NEON and the dot product extension.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn gemm_dotprod<O: Store>(
    p: &Packed,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    out: &mut [O],
) {
    check_bounds(p, a, sums, r0, r1, out);
    let k4 = p.k / 4;
    for b in 0..p.n_blocks {
        let correction = block_correction(p, b);
        let w = p.weights.as_ptr().add(b * k4 * 64);
        for m0 in (r0..r1).step_by(ROWS) {
            let rows = a.as_ptr().add(m0 * p.k);
            let mut acc = [[vdupq_n_s32(0); 4]; ROWS];
            let flip = vdupq_n_u8(0x80);
            // 16 row entries (4 groups) per step, one lane of the row register per group.
            let mut g = 0;
            while g < k4 {
                let groups = (k4 - g).min(4);
                let mut av = [vdupq_n_s8(0); ROWS];
                for (r, av) in av.iter_mut().enumerate() {
                    let x = load_groups(rows.add(r * p.k + g * 4), groups);
                    *av = vreinterpretq_s8_u8(veorq_u8(x, flip));
                }
                macro_rules! group {
                    ($lane:literal) => {
                        if $lane < groups {
                            let wv = load_weight_group(w, g + $lane);
                            for (acc_r, av) in acc.iter_mut().zip(&av) {
                                for (acc, wv) in acc_r.iter_mut().zip(&wv) {
                                    *acc = sdot_lane!(*acc, *wv, *av, $lane);
                                }
                            }
                        }
                    };
                }
                group!(0);
                group!(1);
                group!(2);
                group!(3);
                g += groups;
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let row = m0 + r;
                if let Some(o) = out_ptr(out, p, (r0, r1), row, b * 16) {
                    let mut dots = [vdupq_n_s32(0); 4];
                    for (v, dot) in dots.iter_mut().enumerate() {
                        *dot = vaddq_s32(acc_r[v], correction[v]);
                    }
                    finish_row(p, dots, sums[row], b * 16, o);
                }
            }
        }
    }
}

/// Plain NEON kernel (any arm64): `smull` products of `a - 128` and the weights, pairwise
/// accumulated into i32 (`sadalp`); rows `r0..r1` into `out` (those rows).
///
/// Safety: the CPU must have NEON (every arm64 Linux CPU does).
#[target_feature(enable = "neon")]
pub unsafe fn gemm_neon<O: Store>(
    p: &Packed,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    out: &mut [O],
) {
    check_bounds(p, a, sums, r0, r1, out);
    let k4 = p.k / 4;
    for b in 0..p.n_blocks {
        let correction = block_correction(p, b);
        let w = p.weights.as_ptr().add(b * k4 * 64);
        for m0 in (r0..r1).step_by(NEON_ROWS) {
            let rows = a.as_ptr().add(m0 * p.k);
            // Per row and 4-channel vector: lanes (c0, c0, c1, c1) from the low half of each
            // product and (c2, c2, c3, c3) from the high half; pairs are added at the end.
            let mut lo = [[vdupq_n_s32(0); 4]; NEON_ROWS];
            let mut hi = [[vdupq_n_s32(0); 4]; NEON_ROWS];
            for g in 0..k4 {
                let wv = load_weight_group(w, g);
                for r in 0..NEON_ROWS {
                    let x = (rows.add(r * p.k + g * 4) as *const u32).read_unaligned();
                    let av = vreinterpretq_s8_u32(vdupq_n_u32(x ^ 0x8080_8080));
                    for v in 0..4 {
                        let pl = vmull_s8(vget_low_s8(av), vget_low_s8(wv[v]));
                        let ph = vmull_high_s8(av, wv[v]);
                        lo[r][v] = vpadalq_s16(lo[r][v], pl);
                        hi[r][v] = vpadalq_s16(hi[r][v], ph);
                    }
                }
            }
            for r in 0..NEON_ROWS {
                let row = m0 + r;
                if let Some(o) = out_ptr(out, p, (r0, r1), row, b * 16) {
                    let mut dots = [vdupq_n_s32(0); 4];
                    for (v, dot) in dots.iter_mut().enumerate() {
                        *dot = vaddq_s32(vpaddq_s32(lo[r][v], hi[r][v]), correction[v]);
                    }
                    finish_row(p, dots, sums[row], b * 16, o);
                }
            }
        }
    }
}

/// Matrix-multiply kernel: rows `r0..r1` into `out` (those rows). Pairs of rows times pairs of
/// channels, 8 row entries per `usmmla`, 16 per step.
///
/// Safety: the CPU must have NEON and the 8-bit matrix multiply extension.
#[target_feature(enable = "neon,i8mm")]
pub unsafe fn gemm_i8mm<O: Store>(
    p: &Packed,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    out: &mut [O],
) {
    check_bounds(p, a, sums, r0, r1, out);
    let k4 = p.k / 4;
    for b in 0..p.n_blocks {
        let w = p.weights.as_ptr().add(b * k4 * 64);
        for m0 in (r0..r1).step_by(ROWS) {
            let rows = a.as_ptr().add(m0 * p.k);
            // acc[pair][q]: rows (2 pair, 2 pair + 1) x channels (2 q, 2 q + 1), row-major.
            let mut acc = [[vdupq_n_s32(0); 8]; ROWS / 2];
            let mut g = 0;
            while g < k4 {
                let groups = (k4 - g).min(4);
                // Per row pair, entries 0-7 and 8-15 of both rows: (row 0 | row 1) halves.
                let mut ap = [[vdupq_n_u8(0); 2]; ROWS / 2];
                for (pair, ap) in ap.iter_mut().enumerate() {
                    let x0 =
                        vreinterpretq_u64_u8(load_groups(rows.add(2 * pair * p.k + g * 4), groups));
                    let x1 = vreinterpretq_u64_u8(load_groups(
                        rows.add((2 * pair + 1) * p.k + g * 4),
                        groups,
                    ));
                    *ap = [
                        vreinterpretq_u8_u64(vzip1q_u64(x0, x1)),
                        vreinterpretq_u8_u64(vzip2q_u64(x0, x1)),
                    ];
                }
                for half in 0..groups.div_ceil(2) {
                    // Groups g + 2 half and (if present) the next: weights for 8 entries; a
                    // missing second group reads as zeros, like the activations past the row.
                    let first = g + 2 * half;
                    let g0 = load_weight_group(w, first);
                    let g1 = if first + 1 < g + groups {
                        load_weight_group(w, first + 1)
                    } else {
                        [vdupq_n_s8(0); 4]
                    };
                    for v in 0..4 {
                        // Channels (4v, 4v+1) and (4v+2, 4v+3), each with its 8 entries.
                        let (x0, x1) = (vreinterpretq_s32_s8(g0[v]), vreinterpretq_s32_s8(g1[v]));
                        let wq = [
                            vreinterpretq_s8_s32(vzip1q_s32(x0, x1)),
                            vreinterpretq_s8_s32(vzip2q_s32(x0, x1)),
                        ];
                        for (acc_p, ap) in acc.iter_mut().zip(&ap) {
                            for (h, wq) in wq.iter().enumerate() {
                                acc_p[2 * v + h] = usmmla(acc_p[2 * v + h], ap[half], *wq);
                            }
                        }
                    }
                }
                g += groups;
            }
            for (pair, acc_p) in acc.iter().enumerate() {
                for half in 0..2 {
                    let row = m0 + 2 * pair + half;
                    if let Some(o) = out_ptr(out, p, (r0, r1), row, b * 16) {
                        let mut dots = [vdupq_n_s32(0); 4];
                        for (v, dot) in dots.iter_mut().enumerate() {
                            let x0 = vreinterpretq_s64_s32(acc_p[2 * v]);
                            let x1 = vreinterpretq_s64_s32(acc_p[2 * v + 1]);
                            let r = if half == 0 {
                                vzip1q_s64(x0, x1)
                            } else {
                                vzip2q_s64(x0, x1)
                            };
                            *dot = vreinterpretq_s32_s64(r);
                        }
                        finish_row(p, dots, sums[row], b * 16, o);
                    }
                }
            }
        }
    }
}

/// 16 bytes of a row: `groups` (1 to 4) groups of 4 entries from `src`, zeros after them.
///
/// Safety: `src` valid for `4 * groups` bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_groups(src: *const u8, groups: usize) -> uint8x16_t {
    if groups == 4 {
        vld1q_u8(src)
    } else {
        let mut t = [0u8; 16];
        std::ptr::copy_nonoverlapping(src, t.as_mut_ptr(), groups * 4);
        vld1q_u8(t.as_ptr())
    }
}

/// Weight group `g` of a block (16 channels x 4 entries) as 4 vectors of 4 channels.
///
/// Safety: `w` is a block's weights with more than `g` groups.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_weight_group(w: *const i8, g: usize) -> [int8x16_t; 4] {
    let x = vld1q_s8_x4(w.add(g * 64));
    [x.0, x.1, x.2, x.3]
}

#[cfg(test)]
mod tests {
    use super::super::sets_under_test;
    use super::*;
    use crate::model::QuantizedConv;

    #[test]
    fn extreme_values_keep_exact_integer_sums() {
        // a = 0 (a - 128 = -128) against w = -128 over a long row: the largest products and
        // sums the sign correction has to carry exactly.
        let (cin, n, m) = (1152, 20, 8);
        let spec = QuantizedConv {
            in_hw: (2, 4),
            kernel_hw: (1, 1),
            stride: (1, 1),
            same_padding: true,
            in_channels: cin,
            out_channels: n,
            input_scale: 0.031,
            input_zero_point: 131,
            weights: vec![-128; cin * n],
            weight_zero_points: vec![0; n],
            weight_scales: vec![0.0011; n],
            bias: vec![0.5; n],
            clamp: None,
            output_quant: None,
        };
        let p = Packed::new(&spec, false);
        for fill in [0u8, 255] {
            let a = vec![fill; m * p.k];
            let sums = p.row_sums(&a);
            let mut want = vec![0f32; m * n];
            portable::gemm(&p, &a, &sums, 0, m, &mut want);
            for set in sets_under_test() {
                let mut got = vec![f32::NAN; m * n];
                (set.gemm_f32)(&p, &a, &sums, 0, m, &mut got);
                assert_eq!(got, want, "{} with inputs {fill}", set.isa);
            }
        }
    }
}
