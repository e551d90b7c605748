//! The 8-bit convolution as a matrix product: rows are quantized input patches (unsigned
//! 8-bit, the model's zero point), columns the output channels (the model's signed 8-bit
//! weights and per-channel zero points); every kernel set sums the same integers and applies
//! the same float epilogue, so their outputs are bit-identical.
//!
//! For a patch `a` (zero point `za`) and output channel `o` (weights `w`, zero point `zw`):
//! `sum (a - za)(w - zw) = dot(a, w) - zw * sum(a) - za * sum(w - zw)`. The last term is a
//! per-channel constant folded into the bias; `sum(a)` is computed once per row.

use super::quant::Bounds;
use crate::model::{QuantizedConv, TensorQuant};

/// Rows (output pixels) per tile of the widest kernel; row buffers are padded to whole tiles
/// of it and work is split between threads at multiples of it.
pub const MR: usize = 8;

/// Weights and per-channel constants laid out for the kernels.
#[derive(Debug)]
pub struct PackedGemm {
    /// Row length: kernel_h * kernel_w * cin rounded up to a multiple of 4 (the extra entries
    /// are 0 in the rows and the zero point in the weights, so they add nothing).
    pub k: usize,
    pub n: usize,
    /// Blocks of 16 output channels.
    pub n_blocks: usize,
    /// The output tensor's quantization in the original model, if 8-bit.
    pub output_quant: Option<TensorQuant>,
    /// Per block of 16 output channels, per group of 4 row entries, 64 bytes: lane `j` holds
    /// the 4 weights of channel `16 * block + j`. Channels past `n` are zero.
    pub weights: Vec<i8>,
    /// The same weights as 16-bit pairs for `vpmaddwd` (empty unless asked for): per block of
    /// 8 channels, per pair of row entries, 8 lanes of 2 values.
    pub weights16: Vec<i16>,
    /// Per output channel (padded to whole blocks): `input_scale * weight_scale`,
    /// `-zw * input_scale * weight_scale` (times `sum(a)`), and
    /// `bias - input_scale * weight_scale * za * sum(w - zw)`.
    pub mult: Vec<f32>,
    pub sum_mult: Vec<f32>,
    pub offset: Vec<f32>,
    pub lo: f32,
    pub hi: f32,
}

impl PackedGemm {
    /// Pack a checked spec (`weights` holds `out_channels` rows of `kh * kw * cin`); `wide`
    /// adds the 16-bit layout.
    pub fn new(spec: &QuantizedConv, wide: bool) -> Self {
        let n = spec.out_channels;
        let patch = spec.kernel_hw.0 * spec.kernel_hw.1 * spec.in_channels;
        let k = patch.div_ceil(4) * 4;
        let n_blocks = n.div_ceil(16);
        let k4 = k / 4;
        let mut weights = vec![0i8; n_blocks * k4 * 64];
        let mut weights16 = vec![0i16; if wide { n_blocks * 2 * k * 8 } else { 0 }];
        let mut mult = vec![0f32; n_blocks * 16];
        let mut sum_mult = vec![0f32; n_blocks * 16];
        let mut offset = vec![0f32; n_blocks * 16];
        let za = spec.input_zero_point as f64;
        for o in 0..n {
            let row = &spec.weights[o * patch..][..patch];
            let zw = spec.weight_zero_points[o];
            for kk in 0..k {
                let w = row.get(kk).copied().unwrap_or(zw as i8);
                weights[(o / 16) * k4 * 64 + (kk / 4) * 64 + (o % 16) * 4 + kk % 4] = w;
                if wide {
                    weights16[(o / 8) * k * 8 + (kk / 2) * 16 + (o % 8) * 2 + kk % 2] = w as i16;
                }
            }
            let colsum: i64 = row.iter().map(|&w| w as i64 - zw as i64).sum();
            let m = spec.input_scale as f64 * spec.weight_scales[o] as f64;
            mult[o] = m as f32;
            sum_mult[o] = (-(zw as f64) * m) as f32;
            offset[o] = (spec.bias[o] as f64 - m * za * colsum as f64) as f32;
        }
        let (lo, hi) = spec.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        PackedGemm {
            k,
            n,
            n_blocks,
            output_quant: spec.output_quant,
            weights,
            weights16,
            mult,
            sum_mult,
            offset,
            lo,
            hi,
        }
    }

    /// Output quantization as (1 / scale, zero point); (1, 0) for f32 outputs.
    pub fn out_params(&self) -> (f32, f32) {
        self.output_quant
            .map_or((1.0, 0.0), |q| (1.0 / q.scale, q.zero_point as f32))
    }

    /// The clamp and output quantization of a store.
    pub fn bounds(&self) -> Bounds {
        let (inv, zp) = self.out_params();
        Bounds::new(self.lo, self.hi, inv, zp)
    }

    /// `sum(a)` of each row of length `k`.
    pub fn row_sums(&self, a: &[u8]) -> Vec<f32> {
        a.chunks_exact(self.k).map(|r| row_sum(r) as f32).collect()
    }
}

/// The sum of a row's values: 16 at a time with `psadbw` (SSE2, every x86_64 CPU has it), which
/// the compiler does not find by itself, then 8 and 4 at a time (rows are whole groups of 4:
/// no byte-by-byte tail for the model's 24- and 28-value rows), one at a time elsewhere.
#[cfg(target_arch = "x86_64")]
#[inline]
fn row_sum(row: &[u8]) -> u32 {
    use std::arch::x86_64::*;
    let n = row.len();
    let p = row.as_ptr();
    let mut i = 0;
    // Safety: SSE2 is part of x86_64; each load reads 16, 8 or 4 bytes inside `row`.
    let total = unsafe {
        let mut acc = _mm_setzero_si128();
        while i + 16 <= n {
            let v = _mm_loadu_si128(p.add(i) as *const __m128i);
            acc = _mm_add_epi64(acc, _mm_sad_epu8(v, _mm_setzero_si128()));
            i += 16;
        }
        if i + 8 <= n {
            let v = _mm_loadl_epi64(p.add(i) as *const __m128i);
            acc = _mm_add_epi64(acc, _mm_sad_epu8(v, _mm_setzero_si128()));
            i += 8;
        }
        if i + 4 <= n {
            let v = _mm_cvtsi32_si128((p.add(i) as *const i32).read_unaligned());
            acc = _mm_add_epi64(acc, _mm_sad_epu8(v, _mm_setzero_si128()));
            i += 4;
        }
        (_mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc))) as u32
    };
    total + row[i..].iter().map(|&v| v as u32).sum::<u32>()
}

#[cfg(not(target_arch = "x86_64"))]
fn row_sum(row: &[u8]) -> u32 {
    row.iter().map(|&v| v as u32).sum()
}

#[cfg(test)]
mod tests {
    use super::row_sum;

    #[test]
    fn row_sums_count_every_value_of_any_length() {
        for len in [
            0, 1, 4, 8, 12, 15, 16, 17, 20, 24, 27, 28, 31, 144, 1280, 2304,
        ] {
            let row: Vec<u8> = (0..len).map(|i| (255 - i * 7 % 256) as u8).collect();
            let want: u32 = row.iter().map(|&v| v as u32).sum();
            assert_eq!(row_sum(&row), want, "length {len}");
        }
        assert_eq!(row_sum(&[255; 2304]), 255 * 2304);
    }
}
