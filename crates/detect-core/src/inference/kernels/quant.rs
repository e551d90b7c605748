//! The one rounding rule every kernel quantizes with, and the way back to f32.

use super::KernelSet;
use crate::model::TensorQuant;

/// The model's quantization of one value, saturating (NaN → 0). Every code path rounds with it
/// (or with the same steps in vector form: fused multiply-add, clamp, round half to even).
#[inline(always)]
pub fn quantize(x: f32, inv_scale: f32, zero_point: f32) -> u8 {
    // NaN stays NaN through clamp and casts to 0.
    x.mul_add(inv_scale, zero_point)
        .clamp(0.0, 255.0)
        .round_ties_even() as u8
}

/// A kernel's clamp and output quantization, with the clamp carried into the quantized range
/// for the vector stores: `quantize(v.max(lo).min(hi), inv, zero_point)` equals
/// `v.mul_add(inv, zero_point)` clamped to `[q_lo, q_hi]`, then rounded, where `q_lo` and
/// `q_hi` are `lo` and `hi` taken through the same multiply-add and clamped to 0..=255. Why
/// equal: the multiply-add is monotone in `v` (`inv > 0`, one rounding), a clamp commutes with
/// a monotone map, and two clamps in a row are one; NaN gives `q_lo` on both sides (the clamp's
/// `max` returns `lo`, the vector `max` the bound). An 8-bit store then takes two clamps, not
/// four.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub lo: f32,
    pub hi: f32,
    pub inv: f32,
    pub zero_point: f32,
    pub q_lo: f32,
    pub q_hi: f32,
}

impl Bounds {
    /// The bounds of clamp `lo..=hi` (`lo <= hi`) and quantization (`inv`, `zero_point`).
    pub fn new(lo: f32, hi: f32, inv: f32, zero_point: f32) -> Self {
        debug_assert!(lo <= hi && inv > 0.0);
        let q = |x: f32| x.mul_add(inv, zero_point).clamp(0.0, 255.0);
        Bounds {
            lo,
            hi,
            inv,
            zero_point,
            q_lo: q(lo),
            q_hi: q(hi),
        }
    }
}

/// An input element: f32 as given, or an 8-bit value dequantized as `q * scale + offset`
/// (`offset = -zero_point * scale`) with one rounding, as the vector loads do.
pub trait InElem: Copy + Send + Sync + 'static {
    fn to_f32(self, scale: f32, offset: f32) -> f32;
}

impl InElem for f32 {
    #[inline(always)]
    fn to_f32(self, _: f32, _: f32) -> f32 {
        self
    }
}

impl InElem for u8 {
    #[inline(always)]
    fn to_f32(self, scale: f32, offset: f32) -> f32 {
        (self as f32).mul_add(scale, offset)
    }
}

/// An output element: f32 as computed, or quantized with [`quantize`].
pub trait OutElem: Copy + Send + Sync + 'static {
    fn from_f32(y: f32, inv_scale: f32, zero_point: f32) -> Self;
}

impl OutElem for f32 {
    #[inline(always)]
    fn from_f32(y: f32, _: f32, _: f32) -> f32 {
        y
    }
}

impl OutElem for u8 {
    #[inline(always)]
    fn from_f32(y: f32, inv_scale: f32, zero_point: f32) -> u8 {
        quantize(y, inv_scale, zero_point)
    }
}

/// 8-bit values back to f32 (`scale * (q - zero_point)`, as `q * scale - zero_point * scale`
/// with one rounding, like the vector loads).
pub fn dequantize(q: &[u8], quant: TensorQuant) -> Vec<f32> {
    let offset = -(quant.zero_point as f32) * quant.scale;
    q.iter().map(|&v| v.to_f32(quant.scale, offset)).collect()
}

/// Quantize `x` into `out` (same length), whole vectors with `kernels`, the rest one by one.
pub fn quantize_slice(kernels: &KernelSet, x: &[f32], quant: TensorQuant, out: &mut [u8]) {
    assert!(x.len() == out.len());
    let (inv, zp) = (1.0 / quant.scale, quant.zero_point as f32);
    let done = (kernels.quantize)(x, inv, zp, out);
    for (q, &v) in out[done..].iter_mut().zip(&x[done..]) {
        *q = quantize(v, inv, zp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clamp_carried_into_the_quantized_range_gives_the_same_values() {
        let values = [
            -1e30,
            -7.0,
            -0.0,
            0.0,
            1e-7,
            0.3,
            2.5,
            5.99,
            6.0,
            6.01,
            100.0,
            1e30,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        for (lo, hi) in [
            (0.0, 6.0),
            (f32::NEG_INFINITY, f32::INFINITY),
            (0.0, f32::INFINITY),
        ] {
            for (inv, zp) in [(1.0 / 0.0235, 0.0), (1.0 / 0.17, 131.0), (40.0, 255.0)] {
                let b = Bounds::new(lo, hi, inv, zp);
                for v in values {
                    let want = quantize(v.max(lo).min(hi), inv, zp);
                    let x = v.mul_add(inv, zp);
                    // The vector form: min(q_hi, x) keeps NaN, max(NaN, q_lo) is q_lo.
                    let x = if x.is_nan() { x } else { x.min(b.q_hi) };
                    let x = if x.is_nan() { b.q_lo } else { x.max(b.q_lo) };
                    assert_eq!(x.round_ties_even() as u8, want, "{v} in {lo}..{hi}");
                }
            }
        }
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let q = TensorQuant {
            scale: 0.5,
            zero_point: 10,
        };
        let x = [0.0, 0.25, 0.75, -5.0, -6.0, 200.0, f32::NAN, f32::INFINITY];
        let mut out = [0u8; 8];
        quantize_slice(KernelSet::portable(), &x, q, &mut out);
        // 0.25 / 0.5 = 0.5 → 0 (even), 0.75 / 0.5 = 1.5 → 2.
        assert_eq!(out, [10, 10, 12, 0, 0, 255, 0, 255]);
        let back = dequantize(&out, q);
        assert_eq!(back[..3], [0.0, 0.0, 1.0]);
        // Every kernel set rounds the same way, on whole vectors and tails.
        let long: Vec<f32> = (0..77).map(|i| (i as f32 - 30.0) * 0.37 + 0.125).collect();
        let mut want = vec![0u8; long.len()];
        quantize_slice(KernelSet::portable(), &long, q, &mut want);
        for set in super::super::sets_under_test() {
            let mut got = vec![0u8; long.len()];
            quantize_slice(set, &long, q, &mut got);
            assert_eq!(got, want, "{set:?}");
            let mut short = [0u8; 8];
            quantize_slice(set, &x, q, &mut short);
            assert_eq!(short, out, "{set:?}");
        }
    }
}
