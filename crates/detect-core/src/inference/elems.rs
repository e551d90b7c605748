//! Tensors between the project's own ops are f32, or the original model's 8-bit values where
//! both ops can use them (a quarter of the memory traffic): the slices, the one rounding rule,
//! and the AVX-512 loads and stores for both.

use tract_tflite::internal::*;

use crate::model::TensorQuant;

/// Geometry and element types of an NHWC op of ours (one image shape in, one out).
pub struct NhwcIo {
    pub name: &'static str,
    pub in_hwc: (usize, usize, usize),
    pub out_hwc: (usize, usize, usize),
    pub u8_input: bool,
    pub u8_output: bool,
}

impl NhwcIo {
    /// The output fact, after checking the input's shape and element type.
    pub fn output_fact(&self, input: &TypedFact) -> TractResult<TypedFact> {
        let shape = input.shape.to_tvec();
        let (h, w, c) = self.in_hwc;
        ensure!(
            shape.len() == 4
                && shape[1] == h.to_dim()
                && shape[2] == w.to_dim()
                && shape[3] == c.to_dim(),
            "{} built for {h}x{w}x{c} got {shape:?}",
            self.name
        );
        let want = if self.u8_input {
            u8::datum_type()
        } else {
            f32::datum_type()
        };
        ensure!(
            input.datum_type == want,
            "{} input is {:?}",
            self.name,
            input.datum_type
        );
        let (oh, ow, oc) = self.out_hwc;
        let shape = [shape[0].clone(), oh.to_dim(), ow.to_dim(), oc.to_dim()];
        Ok(if self.u8_output {
            u8::fact(shape)
        } else {
            f32::fact(shape)
        })
    }

    /// Evaluate: check the input, allocate the output, and let `compute` fill all of it.
    pub fn eval(&self, input: &TValue, compute: impl FnOnce(In, Out)) -> TractResult<TValue> {
        let shape = input.shape();
        let (h, w, c) = self.in_hwc;
        ensure!(
            shape.len() == 4 && shape[1..] == [h, w, c],
            "{} built for {h}x{w}x{c} got {shape:?}",
            self.name
        );
        let (oh, ow, oc) = self.out_hwc;
        let out_shape = [shape[0], oh, ow, oc];
        // Safety: every op of ours writes each output element before anything reads it.
        let mut output = unsafe {
            if self.u8_output {
                Tensor::uninitialized::<u8>(&out_shape)?
            } else {
                Tensor::uninitialized::<f32>(&out_shape)?
            }
        };
        {
            let x = input.try_as_plain_ram()?;
            let mut y = output.try_as_plain_ram_mut()?;
            let x = if self.u8_input {
                In::U8(x.as_slice::<u8>()?)
            } else {
                In::F32(x.as_slice::<f32>()?)
            };
            let y = if self.u8_output {
                Out::U8(y.as_slice_mut::<u8>()?)
            } else {
                Out::F32(y.as_slice_mut::<f32>()?)
            };
            compute(x, y);
        }
        Ok(output.into_tvalue())
    }
}

/// An op's input.
#[derive(Clone, Copy)]
pub enum In<'a> {
    F32(&'a [f32]),
    U8(&'a [u8]),
}

/// An op's output.
pub enum Out<'a> {
    F32(&'a mut [f32]),
    U8(&'a mut [u8]),
}

/// The model's quantization of one value, saturating (NaN → 0). Every code path rounds with it
/// (or with the same steps in vector form: fused multiply-add, clamp, round half to even).
#[inline(always)]
pub fn quantize(x: f32, inv_scale: f32, zero_point: f32) -> u8 {
    // NaN stays NaN through clamp and casts to 0.
    x.mul_add(inv_scale, zero_point)
        .clamp(0.0, 255.0)
        .round_ties_even() as u8
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
    q.iter()
        .map(|&v| (v as f32).mul_add(quant.scale, offset))
        .collect()
}

/// Quantize `x` into `out` (same length), 16 values at a time where the CPU allows.
pub fn quantize_slice(x: &[f32], quant: TensorQuant, out: &mut [u8]) {
    assert!(x.len() == out.len());
    let (inv, zp) = (1.0 / quant.scale, quant.zero_point as f32);
    #[cfg(target_arch = "x86_64")]
    let done = if avx512::available() {
        // Safety: the CPU has the features (checked just above); the lengths are equal.
        unsafe { avx512::quantize_whole_vectors(x, inv, zp, out) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (q, &v) in out[done..].iter_mut().zip(&x[done..]) {
        *q = quantize(v, inv, zp);
    }
}

#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use std::arch::x86_64::*;

    /// Whether the CPU has what these loads and stores need.
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
    }

    /// Quantize the first `x.len() / 16 * 16` values into `out` with [`Elem::store`]; returns
    /// how many.
    ///
    /// Safety: AVX-512 F, BW and VL; `out` at least as long as `x`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn quantize_whole_vectors(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) -> usize {
        assert!(out.len() >= x.len());
        let (inv, zp) = (_mm512_set1_ps(inv), _mm512_set1_ps(zp));
        let whole = x.len() / 16 * 16;
        for i in (0..whole).step_by(16) {
            let v = _mm512_loadu_ps(x.as_ptr().add(i));
            u8::store(out.as_mut_ptr().add(i), 0xffff, v, inv, zp);
        }
        whole
    }

    /// 16 lanes of an element type, to and from f32 vectors.
    pub trait Elem: Copy + Send + Sync + 'static {
        /// Load up to 16 values (lanes outside `m` are 0) as f32; 8-bit values are dequantized
        /// as `q * scale + offset` (`offset = -zero_point * scale`).
        ///
        /// Safety: AVX-512 F, BW and VL; `p` valid for the lanes in `m`.
        unsafe fn load(p: *const Self, m: __mmask16, scale: __m512, offset: __m512) -> __m512;

        /// Store the lanes in `m`; 8-bit values are quantized as `round(v * inv + zero_point)`
        /// clamped to 0..=255.
        ///
        /// Safety: AVX-512 F, BW and VL; `p` valid for the lanes in `m`.
        unsafe fn store(p: *mut Self, m: __mmask16, v: __m512, inv: __m512, zero_point: __m512);
    }

    impl Elem for f32 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn load(p: *const f32, m: __mmask16, _: __m512, _: __m512) -> __m512 {
            _mm512_maskz_loadu_ps(m, p)
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn store(p: *mut f32, m: __mmask16, v: __m512, _: __m512, _: __m512) {
            _mm512_mask_storeu_ps(p, m, v)
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
        unsafe fn store(p: *mut u8, m: __mmask16, v: __m512, inv: __m512, zero_point: __m512) {
            // max(x, 0) returns 0 for NaN (the second operand), as `quantize` does.
            let v = _mm512_fmadd_ps(v, inv, zero_point);
            let v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(255.0));
            _mm512_mask_cvtepi32_storeu_epi8(p as *mut i8, m, _mm512_cvtps_epi32(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let q = TensorQuant {
            scale: 0.5,
            zero_point: 10,
        };
        let x = [0.0, 0.25, 0.75, -5.0, -6.0, 200.0, f32::NAN, f32::INFINITY];
        let mut out = [0u8; 8];
        quantize_slice(&x, q, &mut out);
        // 0.25 / 0.5 = 0.5 → 0 (even), 0.75 / 0.5 = 1.5 → 2.
        assert_eq!(out, [10, 10, 12, 0, 0, 255, 0, 255]);
        let back = dequantize(&out, q);
        assert_eq!(back[..3], [0.0, 0.0, 1.0]);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_loads_and_stores_match_the_scalar_rule() {
        use std::arch::x86_64::*;
        if !avx512::available() {
            return;
        }
        use avx512::Elem;
        let q = TensorQuant {
            scale: 0.023,
            zero_point: 131,
        };
        let x: Vec<f32> = (0..16).map(|i| (i as f32 - 6.0) * 0.41).collect();
        let mut want = [0u8; 16];
        quantize_slice(&x, q, &mut want);
        let mut got = [0u8; 16];
        let mut back = [0f32; 16];
        // Safety: the CPU has the features (checked above); 16 lanes fit the arrays, 13 stored.
        unsafe {
            let v = _mm512_loadu_ps(x.as_ptr());
            let (inv, zp) = (
                _mm512_set1_ps(1.0 / q.scale),
                _mm512_set1_ps(q.zero_point as f32),
            );
            u8::store(got.as_mut_ptr(), 0x1fff, v, inv, zp);
            let (s, off) = (
                _mm512_set1_ps(q.scale),
                _mm512_set1_ps(-(q.zero_point as f32) * q.scale),
            );
            let d = u8::load(want.as_ptr(), 0xffff, s, off);
            f32::store(back.as_mut_ptr(), 0xffff, d, inv, zp);
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
