//! Plain Rust kernels for any CPU: the reference the SIMD builds are tested against.

use super::depthwise::Depthwise;
use super::gemm::PackedGemm;
use super::quant::OutElem;

/// Channels summed together in registers by [`depthwise_image`] (one AVX-512 vector, two AVX2
/// vectors when the compiler vectorizes it).
const LANES: usize = 16;

/// Rows `r0..r1` of the 8-bit product into `output` (those rows): the same integer sums and
/// float epilogue (fused multiply-adds, clamp, the one rounding rule) as the SIMD kernels.
pub fn gemm<O: OutElem>(
    p: &PackedGemm,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    output: &mut [O],
) {
    let k4 = p.k / 4;
    let (inv, zp) = p.out_params();
    for row in r0..r1 {
        let ar = &a[row * p.k..][..p.k];
        for o in 0..p.n {
            let block = &p.weights[(o / 16) * k4 * 64..][..k4 * 64];
            let mut dot = 0i32;
            for (kk, &av) in ar.iter().enumerate() {
                dot += av as i32 * block[(kk / 4) * 64 + (o % 16) * 4 + kk % 4] as i32;
            }
            let base = sums[row].mul_add(p.sum_mult[o], p.offset[o]);
            let y = (dot as f32).mul_add(p.mult[o], base).max(p.lo).min(p.hi);
            output[(row - r0) * p.n + o] = O::from_f32(y, inv, zp);
        }
    }
}

/// One f32 image of a depthwise convolution: `input` is `[ih, iw, c]`, `output` `[oh, ow, c]`.
/// The channel loop is the innermost, contiguous in input, kernel and output, so the compiler
/// vectorizes it (wider when inlined into a `#[target_feature]` function).
#[inline(always)]
pub fn depthwise_image(dw: &Depthwise, input: &[f32], output: &mut [f32]) {
    let (oh, ow) = dw.out_hw;
    let (kh, kw) = dw.kernel_hw;
    let c = dw.channels;
    let mut taps: Vec<(usize, usize)> = Vec::with_capacity(kh * kw);
    for oy in 0..oh {
        for ox in 0..ow {
            dw.taps(oy, ox, &mut taps);
            let out = &mut output[(oy * ow + ox) * c..][..c];
            // Blocks of LANES channels are summed in registers over all taps.
            let whole = c / LANES * LANES;
            for ch in (0..whole).step_by(LANES) {
                let mut acc: [f32; LANES] = dw.bias[ch..ch + LANES].try_into().unwrap();
                for &(x0, w0) in &taps {
                    let x: &[f32; LANES] = input[x0 + ch..][..LANES].try_into().unwrap();
                    let w: &[f32; LANES] = dw.kernel[w0 + ch..][..LANES].try_into().unwrap();
                    for l in 0..LANES {
                        acc[l] += x[l] * w[l];
                    }
                }
                if let Some((lo, hi)) = dw.clamp {
                    for a in acc.iter_mut() {
                        *a = a.max(lo).min(hi);
                    }
                }
                out[ch..ch + LANES].copy_from_slice(&acc);
            }
            for ch in whole..c {
                let mut acc = dw.bias[ch];
                for &(x0, w0) in &taps {
                    acc += input[x0 + ch] * dw.kernel[w0 + ch];
                }
                if let Some((lo, hi)) = dw.clamp {
                    acc = acc.max(lo).min(hi);
                }
                out[ch] = acc;
            }
        }
    }
}
