//! arm64 kernels around the depthwise convolution, shared by the three arm64 sets (NEON is part
//! of every arm64 CPU): the 3x3 kernel reading and writing f32 or the model's 8-bit values
//! directly, and whole-vector quantization.
//!
//! Why: without a 3x3 kernel, every depthwise convolution between two 8-bit convolutions
//! dequantizes its whole input into a new f32 tensor, runs the f32 loop, and quantizes the
//! result value by value; this kernel dequantizes on load and quantizes on store instead, with
//! the nine weight vectors of a channel block kept in registers. It takes the scalar rule's
//! steps in their order (bias, one fused multiply-add per tap inside the image in kernel order,
//! clamp, the one rounding rule); the x86 kernels add the padding as zero taps, which gives
//! the same values (`depthwise::PaddedRows` says when: always for 8-bit input).

use std::arch::aarch64::*;

use super::aarch64_neon::quantize4;
use super::depthwise::Depthwise;
use super::quant::{InElem, OutElem};
use super::Depthwise3x3;

/// Channels per block: two 4-lane vectors, so two independent accumulator chains per pixel.
const BLOCK: usize = 8;

pub const DEPTHWISE_3X3: Depthwise3x3 = Depthwise3x3 {
    f32_f32: depthwise_3x3_rows::<f32, f32>,
    f32_u8: depthwise_3x3_rows::<f32, u8>,
    u8_f32: depthwise_3x3_rows::<u8, f32>,
    u8_u8: depthwise_3x3_rows::<u8, u8>,
};

// Safety of the `unsafe` blocks below: NEON is in every arm64 CPU (the aarch64 targets enable
// it), and the callees check their slice lengths with assertions.

fn depthwise_3x3_rows<I: Elem8, O: Elem8>(
    dw: &Depthwise,
    input: &[I],
    oy0: usize,
    oy1: usize,
    output: &mut [O],
) {
    unsafe { depthwise_3x3(dw, input, oy0, oy1, output) }
}

/// Quantize the first `x.len() / 8 * 8` values into `out` with [`Elem8::store`]; returns how
/// many (the caller rounds the rest with the scalar rule).
pub fn quantize(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) -> usize {
    assert!(out.len() >= x.len());
    let whole = x.len() / BLOCK * BLOCK;
    unsafe {
        let (inv, zp) = (vdupq_n_f32(inv), vdupq_n_f32(zp));
        for i in (0..whole).step_by(BLOCK) {
            let p = x.as_ptr().add(i);
            let v = [vld1q_f32(p), vld1q_f32(p.add(4))];
            u8::store(out.as_mut_ptr().add(i), v, inv, zp);
        }
    }
    whole
}

/// Eight lanes of an element type as two f32 vectors.
pub trait Elem8: InElem + OutElem {
    /// Load 8 values as f32; 8-bit values are dequantized as `q * scale + offset` with one
    /// rounding (as [`InElem::to_f32`]).
    ///
    /// Safety: NEON; `p` valid for 8 values.
    unsafe fn load(p: *const Self, scale: float32x4_t, offset: float32x4_t) -> [float32x4_t; 2];

    /// Store 8 values; 8-bit values are quantized as [`quantize`](super::quant::quantize)
    /// does.
    ///
    /// Safety: NEON; `p` valid for 8 values.
    unsafe fn store(p: *mut Self, v: [float32x4_t; 2], inv: float32x4_t, zero_point: float32x4_t);
}

impl Elem8 for f32 {
    #[inline(always)]
    unsafe fn load(p: *const f32, _: float32x4_t, _: float32x4_t) -> [float32x4_t; 2] {
        [vld1q_f32(p), vld1q_f32(p.add(4))]
    }

    #[inline(always)]
    unsafe fn store(p: *mut f32, v: [float32x4_t; 2], _: float32x4_t, _: float32x4_t) {
        vst1q_f32(p, v[0]);
        vst1q_f32(p.add(4), v[1]);
    }
}

impl Elem8 for u8 {
    #[inline(always)]
    unsafe fn load(p: *const u8, scale: float32x4_t, offset: float32x4_t) -> [float32x4_t; 2] {
        let wide = vmovl_u8(vld1_u8(p));
        let q = [
            vmovl_u16(vget_low_u16(wide)),
            vmovl_u16(vget_high_u16(wide)),
        ];
        q.map(|q| vfmaq_f32(offset, vcvtq_f32_u32(q), scale))
    }

    #[inline(always)]
    unsafe fn store(p: *mut u8, v: [float32x4_t; 2], inv: float32x4_t, zero_point: float32x4_t) {
        let q = v.map(|v| quantize4(v, inv, zero_point));
        vst1_u8(p, vmovn_u16(vcombine_u16(q[0], q[1])));
    }
}

/// `acc + x * w` per lane of both halves, fused.
#[inline(always)]
unsafe fn fma2(
    acc: [float32x4_t; 2],
    x: [float32x4_t; 2],
    w: [float32x4_t; 2],
) -> [float32x4_t; 2] {
    [vfmaq_f32(acc[0], x[0], w[0]), vfmaq_f32(acc[1], x[1], w[1])]
}

/// 3x3 depthwise rows `oy0..oy1` of one image: per output row and 8-channel block the nine
/// weight vector pairs stay in registers while the row's pixels stream past; interior pixels
/// skip edge checks; channels past the last whole block take the same steps one at a time.
///
/// Safety: NEON.
unsafe fn depthwise_3x3<I: Elem8, O: Elem8>(
    dw: &Depthwise,
    input: &[I],
    oy0: usize,
    oy1: usize,
    output: &mut [O],
) {
    let params = dw.params_3x3(input, oy0, oy1, output);
    let (iw, ow, c) = (dw.in_hw.1, dw.out_hw.1, dw.channels);
    let (lo, hi) = (vdupq_n_f32(params.lo), vdupq_n_f32(params.hi));
    let (scale, offset) = (vdupq_n_f32(params.scale), vdupq_n_f32(params.offset));
    let (inv, zp) = (vdupq_n_f32(params.inv), vdupq_n_f32(params.zero_point));
    let (x, w, y) = (input.as_ptr(), dw.kernel.as_ptr(), output.as_mut_ptr());
    let pair = |p: *const f32| [vld1q_f32(p), vld1q_f32(p.add(4))];
    let whole = c / BLOCK * BLOCK;
    for oy in oy0..oy1 {
        let rows = dw.rows_3x3(oy);
        for ch in (0..whole).step_by(BLOCK) {
            let wv: [[float32x4_t; 2]; 9] = std::array::from_fn(|t| pair(w.add(t * c + ch)));
            let bias = pair(dw.bias.as_ptr().add(ch));
            for ox in 0..ow {
                let mut acc = bias;
                if let Some(ix) = dw.interior_column_3x3(ox) {
                    for (ky, row) in rows.iter().enumerate() {
                        if let Some(iy) = *row {
                            let p = x.add((iy * iw + ix) * c + ch);
                            acc = fma2(acc, I::load(p, scale, offset), wv[ky * 3]);
                            let p = p.add(c);
                            acc = fma2(acc, I::load(p, scale, offset), wv[ky * 3 + 1]);
                            let p = p.add(c);
                            acc = fma2(acc, I::load(p, scale, offset), wv[ky * 3 + 2]);
                        }
                    }
                } else {
                    for (x0, t) in dw.taps_3x3(rows, ox) {
                        acc = fma2(acc, I::load(x.add(x0 + ch), scale, offset), wv[t]);
                    }
                }
                // max before min, as the scalar `max(lo).min(hi)`; maxnm keeps lo for NaN.
                let v = acc.map(|a| vminnmq_f32(vmaxnmq_f32(a, lo), hi));
                O::store(y.add(((oy - oy0) * ow + ox) * c + ch), v, inv, zp);
            }
        }
        let out_row = &mut output[(oy - oy0) * ow * c..][..ow * c];
        dw.row_3x3_tail(input, oy, whole, &params, out_row);
    }
}
