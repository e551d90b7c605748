//! 1x1 convolutions in the model's own 8-bit arithmetic, put in place of tract's float matrix
//! products where the CPU has AVX-512 VNNI.
//!
//! Why: 1x1 convolutions are 682 of this model's 773 million multiply-adds. tract runs them as
//! f32 matrix products (16 multiply-adds per FMA instruction); VNNI's `vpdpbusd` does 64 8-bit
//! multiply-adds per instruction. The input is quantized on the way in with the scale and zero
//! point the model gives that tensor (the values LiteRT computes with), the weights stay as the
//! model stores them, and the output leaves as f32 with bias and clamp applied, so the ops
//! around it are unchanged.
//!
//! For pixel `a` (unsigned 8-bit, zero point `za`) and output channel `o` (weights `w`, zero
//! point `zw`): `sum (a - za)(w - zw) = dot(a, w) - zw * sum(a) - za * sum(w - zw)`. The last
//! term is a per-channel constant folded into the bias; `sum(a)` is computed once per pixel.

use tract_tflite::internal::*;

use crate::model::QuantizedPointwise;

/// Pixels per tile and 16-channel blocks per tile: 8 x 3 accumulators, 3 weight vectors and a
/// broadcast pixel fit the 32 vector registers.
const MR: usize = 8;
const NB: usize = 3;

/// Whether this CPU runs the VNNI kernel (otherwise the portable code runs, correctly but slower
/// than tract's float kernels, so callers should keep those).
pub fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Weights and per-channel constants laid out for the kernel.
#[derive(Debug)]
struct Packed {
    k: usize,
    n: usize,
    n_blocks: usize,
    input_scale_inv: f32,
    input_zero_point: f32,
    /// Per block of 16 output channels, per group of 4 input channels, 64 bytes: lane `j`
    /// holds the 4 weights of channel `16 * block + j`. Channels past `n` are zero.
    weights: Vec<i8>,
    /// Per output channel (padded to whole blocks): `-zw`, `input_scale * weight_scale`, and
    /// `bias - input_scale * weight_scale * za * sum(w - zw)`.
    zfix: Vec<i32>,
    mult: Vec<f32>,
    offset: Vec<f32>,
    lo: f32,
    hi: f32,
}

/// The tract op: NHWC f32 `[.., k]` in, NHWC f32 `[.., n]` out.
#[derive(Debug, Clone)]
pub struct PointwiseInt8 {
    packed: Arc<Packed>,
}

impl PartialEq for PointwiseInt8 {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.packed, &other.packed)
    }
}

impl Eq for PointwiseInt8 {}

impl PointwiseInt8 {
    pub fn new(spec: &QuantizedPointwise) -> TractResult<Self> {
        let (k, n) = (spec.in_channels, spec.out_channels);
        // Keeps |dot| + |zw * sum(a)| < 2^31: 2 * 255 * 128 * k.
        ensure!(k > 0 && k % 4 == 0 && k <= 16384, "input channels {k}");
        ensure!(
            spec.weights.len() == k * n
                && spec.weight_zero_points.len() == n
                && spec.weight_scales.len() == n
                && spec.bias.len() == n,
            "inconsistent 1x1 convolution spec"
        );
        let n_blocks = n.div_ceil(16);
        let k4 = k / 4;
        let mut weights = vec![0i8; n_blocks * k4 * 64];
        let mut zfix = vec![0i32; n_blocks * 16];
        let mut mult = vec![0f32; n_blocks * 16];
        let mut offset = vec![0f32; n_blocks * 16];
        let za = spec.input_zero_point as f64;
        for o in 0..n {
            let row = &spec.weights[o * k..][..k];
            let zw = spec.weight_zero_points[o];
            for (kk, &w) in row.iter().enumerate() {
                weights[(o / 16) * k4 * 64 + (kk / 4) * 64 + (o % 16) * 4 + kk % 4] = w;
            }
            let colsum: i64 = row.iter().map(|&w| w as i64 - zw as i64).sum();
            let m = spec.input_scale as f64 * spec.weight_scales[o] as f64;
            zfix[o] = -zw;
            mult[o] = m as f32;
            offset[o] = (spec.bias[o] as f64 - m * za * colsum as f64) as f32;
        }
        let (lo, hi) = spec.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        Ok(PointwiseInt8 {
            packed: Arc::new(Packed {
                k,
                n,
                n_blocks,
                input_scale_inv: 1.0 / spec.input_scale,
                input_zero_point: spec.input_zero_point as f32,
                weights,
                zfix,
                mult,
                offset,
                lo,
                hi,
            }),
        })
    }

    /// `input` is `[m, k]` (pixels × input channels), `output` `[m, n]`.
    pub fn compute(&self, input: &[f32], output: &mut [f32]) {
        let p = &*self.packed;
        let m = input.len() / p.k;
        assert!(input.len() == m * p.k && output.len() == m * p.n);
        #[cfg(target_arch = "x86_64")]
        if vnni_available() {
            // Safety: the CPU has the features `vnni` is compiled for (checked just above);
            // the slice lengths were checked against m, k and n.
            unsafe { vnni::compute(p, input, output, m) };
            return;
        }
        compute_portable(p, input, output, m);
    }
}

/// The model's quantization of one input value, saturating (NaN → 0). Both code paths agree.
#[inline(always)]
fn quantize(x: f32, inv_scale: f32, zero_point: f32) -> u8 {
    // NaN stays NaN through clamp and casts to 0.
    x.mul_add(inv_scale, zero_point)
        .clamp(0.0, 255.0)
        .round_ties_even() as u8
}

/// Plain Rust, any CPU: the same integer arithmetic as the VNNI kernel.
fn compute_portable(p: &Packed, input: &[f32], output: &mut [f32], m: usize) {
    let k4 = p.k / 4;
    let mut a = vec![0u8; p.k];
    for row in 0..m {
        for (q, &x) in a.iter_mut().zip(&input[row * p.k..][..p.k]) {
            *q = quantize(x, p.input_scale_inv, p.input_zero_point);
        }
        let sum_a: i32 = a.iter().map(|&v| v as i32).sum();
        for o in 0..p.n {
            let block = &p.weights[(o / 16) * k4 * 64..][..k4 * 64];
            let mut dot = 0i32;
            for (kk, &av) in a.iter().enumerate() {
                dot += av as i32 * block[(kk / 4) * 64 + (o % 16) * 4 + kk % 4] as i32;
            }
            let v = (dot + p.zfix[o] * sum_a) as f32;
            output[row * p.n + o] = v.mul_add(p.mult[o], p.offset[o]).max(p.lo).min(p.hi);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{quantize, Packed, MR, NB};
    use std::arch::x86_64::*;

    /// Safety: the CPU must have AVX-512 F, BW and VNNI; `input` holds `m * k` values and
    /// `output` `m * n`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn compute(p: &Packed, input: &[f32], output: &mut [f32], m: usize) {
        let m_pad = m.div_ceil(MR) * MR;
        // Rows past m stay zero so whole tiles can be read; their results are not stored.
        let mut a = vec![0u8; m_pad * p.k];
        quantize_all(p, input, &mut a[..m * p.k]);
        let sums: Vec<i32> = a
            .chunks_exact(p.k)
            .map(|r| r.iter().map(|&v| v as i32).sum())
            .collect();
        let mut b0 = 0;
        while b0 < p.n_blocks {
            let blocks = (p.n_blocks - b0).min(NB);
            for m0 in (0..m_pad).step_by(MR) {
                match blocks {
                    3 => tile::<3>(p, &a, &sums, m0, m, b0, output),
                    2 => tile::<2>(p, &a, &sums, m0, m, b0, output),
                    _ => tile::<1>(p, &a, &sums, m0, m, b0, output),
                }
            }
            b0 += blocks;
        }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn quantize_all(p: &Packed, input: &[f32], a: &mut [u8]) {
        let inv = _mm512_set1_ps(p.input_scale_inv);
        let zp = _mm512_set1_ps(p.input_zero_point);
        let (zero, top) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
        let whole = input.len() / 16 * 16;
        for i in (0..whole).step_by(16) {
            let x = _mm512_loadu_ps(input.as_ptr().add(i));
            // max(x, 0) returns 0 for NaN (the second operand), as the portable code does.
            let v = _mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(x, inv, zp), zero), top);
            let q = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v));
            _mm_storeu_si128(a.as_mut_ptr().add(i) as *mut __m128i, q);
        }
        for i in whole..input.len() {
            a[i] = quantize(input[i], p.input_scale_inv, p.input_zero_point);
        }
    }

    /// One tile: pixels `m0..m0 + MR`, channel blocks `b0..b0 + T`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile<const T: usize>(
        p: &Packed,
        a: &[u8],
        sums: &[i32],
        m0: usize,
        m: usize,
        b0: usize,
        out: &mut [f32],
    ) {
        let k4 = p.k / 4;
        let mut acc = [[_mm512_setzero_si512(); T]; MR];
        let rows = a.as_ptr().add(m0 * p.k);
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
        let (lo, hi) = (_mm512_set1_ps(p.lo), _mm512_set1_ps(p.hi));
        for t in 0..T {
            let col = (b0 + t) * 16;
            let zfix = _mm512_loadu_si512(p.zfix.as_ptr().add(col) as *const _);
            let mult = _mm512_loadu_ps(p.mult.as_ptr().add(col));
            let offset = _mm512_loadu_ps(p.offset.as_ptr().add(col));
            let valid = (p.n - col).min(16);
            let mask: __mmask16 = if valid == 16 {
                0xffff
            } else {
                (1u16 << valid) - 1
            };
            for (r, acc_r) in acc.iter().enumerate() {
                let row = m0 + r;
                if row >= m {
                    break;
                }
                let fix = _mm512_mullo_epi32(zfix, _mm512_set1_epi32(sums[row]));
                let v = _mm512_cvtepi32_ps(_mm512_add_epi32(acc_r[t], fix));
                let y = _mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(v, mult, offset), lo), hi);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(row * p.n + col), mask, y);
            }
        }
    }
}

impl Op for PointwiseInt8 {
    fn name(&self) -> StaticName {
        "PointwiseInt8".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let p = &self.packed;
        Ok(vec![format!(
            "1x1 {} -> {} channels, clamp [{}, {}]",
            p.k, p.n, p.lo, p.hi
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseInt8 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let mut shape: TVec<usize> = input.shape().into();
        ensure!(
            shape.last() == Some(&self.packed.k),
            "PointwiseInt8 input {shape:?}"
        );
        *shape.last_mut().unwrap() = self.packed.n;
        // Safety: `compute` writes every element (each pixel's n channels) before it is read.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        {
            let x = input.try_as_plain_ram()?;
            let mut y = output.try_as_plain_ram_mut()?;
            self.compute(x.as_slice::<f32>()?, y.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PointwiseInt8 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape = inputs[0].shape.to_tvec();
        ensure!(
            shape.last() == Some(&self.packed.k.to_dim()),
            "PointwiseInt8 built for {} input channels got {:?}",
            self.packed.k,
            shape
        );
        *shape.last_mut().unwrap() = self.packed.n.to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec with uneven channel counts (tails in k groups and n blocks), per-channel weights.
    fn spec(k: usize, n: usize, clamp: Option<(f32, f32)>) -> QuantizedPointwise {
        QuantizedPointwise {
            in_channels: k,
            out_channels: n,
            input_scale: 0.05,
            input_zero_point: 7,
            weights: (0..k * n)
                .map(|i| ((i * 37 % 251) as i32 - 125) as i8)
                .collect(),
            weight_zero_points: (0..n).map(|o| (o as i32 % 9) - 4).collect(),
            weight_scales: (0..n).map(|o| 0.002 + o as f32 * 1e-4).collect(),
            bias: (0..n).map(|o| o as f32 * 0.03 - 1.0).collect(),
            clamp,
        }
    }

    /// The convolution in f32 on the dequantized weights and the unquantized input.
    fn float_reference(s: &QuantizedPointwise, x: &[f32]) -> Vec<f32> {
        let (k, n) = (s.in_channels, s.out_channels);
        let mut y = Vec::new();
        for px in x.chunks_exact(k) {
            for o in 0..n {
                let mut acc = s.bias[o];
                for (kk, &xv) in px.iter().enumerate() {
                    let w = s.weight_scales[o]
                        * (s.weights[o * k + kk] as i32 - s.weight_zero_points[o]) as f32;
                    acc += xv * w;
                }
                if let Some((lo, hi)) = s.clamp {
                    acc = acc.max(lo).min(hi);
                }
                y.push(acc);
            }
        }
        y
    }

    fn input(m: usize, k: usize, s: &QuantizedPointwise) -> Vec<f32> {
        // Values on and between the quantization grid, inside [0, 255] after quantization.
        (0..m * k)
            .map(|i| s.input_scale * (((i * 53 % 241) as f32) - 7.0 + (i % 3) as f32 * 0.25))
            .collect()
    }

    #[test]
    fn matches_the_float_convolution_within_quantization_error() {
        for (m, k, n, clamp) in [
            (1, 4, 1, None),
            (13, 12, 17, Some((0.0, 6.0))),
            (37, 96, 24, None),
            (9, 64, 273, Some((0.0, f32::INFINITY))),
            (100, 160, 48, None),
        ] {
            let s = spec(k, n, clamp);
            let x = input(m, k, &s);
            let op = PointwiseInt8::new(&s).unwrap();
            let mut y = vec![f32::NAN; m * n];
            op.compute(&x, &mut y);
            let want = float_reference(&s, &x);
            // Input rounding error: at most half a step per input, times sum |w|.
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                let o = i % n;
                let sum_w: f32 = (0..k)
                    .map(|kk| {
                        s.weight_scales[o]
                            * (s.weights[o * k + kk] as i32 - s.weight_zero_points[o]).abs() as f32
                    })
                    .sum();
                let bound = 0.5 * s.input_scale * sum_w + 1e-4 * b.abs().max(1.0);
                assert!(
                    (a - b).abs() <= bound,
                    "m {m} k {k} n {n}: element {i}: {a} vs {b} (bound {bound})"
                );
            }
        }
    }

    #[test]
    fn on_the_grid_it_is_exact_and_both_code_paths_agree() {
        // Inputs exactly on the quantization grid: the integer sums are exact, so the only
        // difference from f32 is the final rounding.
        let (m, k, n) = (21, 40, 35);
        let s = spec(k, n, Some((0.0, 6.0)));
        let x: Vec<f32> = (0..m * k)
            .map(|i| s.input_scale * ((i * 29 % 256) as f32 - s.input_zero_point as f32))
            .collect();
        let op = PointwiseInt8::new(&s).unwrap();
        let mut fast = vec![f32::NAN; m * n];
        op.compute(&x, &mut fast);
        let mut portable = vec![f32::NAN; m * n];
        compute_portable(&op.packed, &x, &mut portable, m);
        let want = float_reference(&s, &x);
        for i in 0..m * n {
            assert!((fast[i] - portable[i]).abs() <= 1e-5 * want[i].abs().max(1.0));
            assert!(
                (fast[i] - want[i]).abs() <= 1e-4 * want[i].abs().max(1.0),
                "{i}: {} vs {}",
                fast[i],
                want[i]
            );
            assert!((0.0..=6.0).contains(&fast[i]));
        }
    }

    #[test]
    fn saturates_out_of_range_and_non_finite_inputs() {
        let s = spec(8, 5, None);
        let op = PointwiseInt8::new(&s).unwrap();
        let big = s.input_scale * 1000.0;
        let x = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -big,
            big,
            0.0,
            1e30,
            -1e30,
        ];
        // Same as feeding the clamped values: NaN and -inf as the bottom, +inf as the top.
        let lo = -s.input_scale * s.input_zero_point as f32;
        let hi = s.input_scale * (255 - s.input_zero_point) as f32;
        let clamped = [lo, hi, lo, lo, hi, 0.0, hi, lo];
        let (mut y, mut want) = (vec![0.0; 5], vec![0.0; 5]);
        op.compute(&x, &mut y);
        op.compute(&clamped, &mut want);
        assert_eq!(y, want);
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn rejects_inconsistent_specs() {
        let mut s = spec(8, 5, None);
        s.in_channels = 6;
        assert!(PointwiseInt8::new(&s).is_err());
        let mut s = spec(8, 5, None);
        s.bias.pop();
        assert!(PointwiseInt8::new(&s).is_err());
    }
}
