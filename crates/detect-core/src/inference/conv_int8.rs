//! Convolutions in the model's own 8-bit arithmetic, put in place of tract's float matrix
//! products where the CPU has AVX-512 VNNI.
//!
//! Why: the regular convolutions are 735 of this model's 773 million multiply-adds (682 in 1x1
//! convolutions). tract runs them as f32 matrix products (16 multiply-adds per FMA
//! instruction); VNNI's `vpdpbusd` does 64 8-bit multiply-adds per instruction. The input is
//! quantized on the way in with the scale and zero point the model gives that tensor (the
//! values LiteRT computes with), the weights stay as the model stores them, and the output
//! leaves as f32 with bias and clamp applied, so the ops around it are unchanged. Kernels
//! larger than 1x1 gather each output pixel's input patch into a row first (im2col); padding
//! reads as the input zero point, i.e. real 0.
//!
//! For a patch `a` (unsigned 8-bit, zero point `za`) and output channel `o` (weights `w`, zero
//! point `zw`): `sum (a - za)(w - zw) = dot(a, w) - zw * sum(a) - za * sum(w - zw)`. The last
//! term is a per-channel constant folded into the bias; `sum(a)` is computed once per row.

use tract_tflite::internal::*;

use super::depthwise::FusedDepthwise;
#[cfg(target_arch = "x86_64")]
use super::elems::avx512::Elem;
use super::elems::{quantize_slice, In, NhwcIo, Out, OutElem};
use crate::model::{QuantizedConv, TensorQuant};

/// Rows (output pixels) per tile and 16-channel blocks per tile: 8 x 3 accumulators, 3 weight
/// vectors and a broadcast fit the 32 vector registers.
const MR: usize = 8;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const NB: usize = 3;

/// Whether this CPU runs the VNNI kernel (otherwise the portable code runs, correctly but slower
/// than tract's float kernels, so callers should keep those).
pub fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Geometry, weights and per-channel constants laid out for the kernel.
#[derive(Debug)]
struct Packed {
    in_hw: (usize, usize),
    out_hw: (usize, usize),
    kernel_hw: (usize, usize),
    stride: (usize, usize),
    pad_before: (usize, usize),
    cin: usize,
    /// Row length: kernel_h * kernel_w * cin rounded up to a multiple of 4 (the extra entries
    /// are 0 in the rows and the zero point in the weights, so they add nothing).
    k: usize,
    n: usize,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    n_blocks: usize,
    /// Whether rows are the quantized input itself (1x1, stride 1, cin a multiple of 4).
    direct: bool,
    /// The input tensor's quantization in the original model (rows are quantized with it).
    input_quant: TensorQuant,
    /// The output tensor's quantization in the original model, if 8-bit.
    output_quant: Option<TensorQuant>,
    /// Per block of 16 output channels, per group of 4 row entries, 64 bytes: lane `j` holds
    /// the 4 weights of channel `16 * block + j`. Channels past `n` are zero.
    weights: Vec<i8>,
    /// Per output channel (padded to whole blocks): `input_scale * weight_scale`,
    /// `-zw * input_scale * weight_scale` (times `sum(a)`), and
    /// `bias - input_scale * weight_scale * za * sum(w - zw)`.
    mult: Vec<f32>,
    sum_mult: Vec<f32>,
    offset: Vec<f32>,
    lo: f32,
    hi: f32,
}

/// The tract op: NHWC `[batch, h, w, cin]` in, NHWC `[batch, oh, ow, n]` out, each f32 or
/// the model's 8-bit values for that tensor.
#[derive(Debug, Clone)]
pub struct ConvInt8 {
    packed: Arc<Packed>,
    u8_input: bool,
    u8_output: bool,
}

impl PartialEq for ConvInt8 {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.packed, &other.packed)
            && self.u8_input == other.u8_input
            && self.u8_output == other.u8_output
    }
}

impl Eq for ConvInt8 {}

impl ConvInt8 {
    pub fn new(spec: &QuantizedConv) -> TractResult<Self> {
        let (cin, n) = (spec.in_channels, spec.out_channels);
        let (kh, kw) = spec.kernel_hw;
        let patch = kh * kw * cin;
        let k = patch.div_ceil(4) * 4;
        // Keeps |dot| + |zw * sum(a)| < 2^31: 2 * 255 * 128 * k.
        ensure!(patch > 0 && k <= 16384, "patch of {patch} values");
        ensure!(
            spec.weights.len() == patch * n
                && spec.weight_zero_points.len() == n
                && spec.weight_scales.len() == n
                && spec.bias.len() == n
                && spec.stride.0 > 0
                && spec.stride.1 > 0
                && (spec.same_padding || (kh <= spec.in_hw.0 && kw <= spec.in_hw.1)),
            "inconsistent convolution spec"
        );
        let (oh, pt) = FusedDepthwise::geometry(spec.in_hw.0, kh, spec.stride.0, spec.same_padding);
        let (ow, pl) = FusedDepthwise::geometry(spec.in_hw.1, kw, spec.stride.1, spec.same_padding);
        let n_blocks = n.div_ceil(16);
        let k4 = k / 4;
        let mut weights = vec![0i8; n_blocks * k4 * 64];
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
            }
            let colsum: i64 = row.iter().map(|&w| w as i64 - zw as i64).sum();
            let m = spec.input_scale as f64 * spec.weight_scales[o] as f64;
            mult[o] = m as f32;
            sum_mult[o] = (-(zw as f64) * m) as f32;
            offset[o] = (spec.bias[o] as f64 - m * za * colsum as f64) as f32;
        }
        let (lo, hi) = spec.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        Ok(ConvInt8 {
            packed: Arc::new(Packed {
                in_hw: spec.in_hw,
                out_hw: (oh, ow),
                kernel_hw: spec.kernel_hw,
                stride: spec.stride,
                pad_before: (pt, pl),
                cin,
                k,
                n,
                n_blocks,
                direct: spec.kernel_hw == (1, 1) && spec.stride == (1, 1) && cin % 4 == 0,
                input_quant: TensorQuant {
                    scale: spec.input_scale,
                    zero_point: spec.input_zero_point,
                },
                output_quant: spec.output_quant,
                weights,
                mult,
                sum_mult,
                offset,
                lo,
                hi,
            }),
            u8_input: false,
            u8_output: false,
        })
    }

    /// The quantization the input is read with (the model's for that tensor).
    pub fn input_quant(&self) -> TensorQuant {
        self.packed.input_quant
    }

    /// The model's quantization of the output tensor, if it is 8-bit.
    pub fn output_quant(&self) -> Option<TensorQuant> {
        self.packed.output_quant
    }

    /// The same op reading the input as 8-bit values (quantized as [`Self::input_quant`]).
    pub fn with_u8_input(&self) -> Self {
        ConvInt8 {
            u8_input: true,
            ..self.clone()
        }
    }

    /// The same op writing 8-bit values (quantized as [`Self::output_quant`]).
    pub fn with_u8_output(&self) -> Self {
        ConvInt8 {
            u8_output: self.packed.output_quant.is_some(),
            ..self.clone()
        }
    }

    /// f32 in and out: `input` is `[batch, h, w, cin]`, `output` `[batch, oh, ow, n]`.
    #[cfg(test)]
    pub fn compute(&self, input: &[f32], output: &mut [f32]) {
        self.compute_any(In::F32(input), Out::F32(output))
    }

    /// Any mix of f32 and 8-bit in and out. Large convolutions are split by rows over tract's
    /// thread pool when it has more than one thread.
    pub fn compute_any(&self, input: In, output: Out) {
        let p = &*self.packed;
        let (a, m) = rows(p, input);
        let sums: Vec<f32> = a
            .chunks_exact(p.k)
            .map(|r| r.iter().map(|&v| v as u32).sum::<u32>() as f32)
            .collect();
        let work = m * p.k * p.n;
        match output {
            Out::F32(y) => {
                assert!(y.len() == m * p.n);
                super::parallel::split_rows(m, MR, p.n, work, y, |r0, r1, out| {
                    gemm(p, &a, &sums, r0, r1, out)
                });
            }
            Out::U8(y) => {
                assert!(y.len() == m * p.n && p.output_quant.is_some());
                super::parallel::split_rows(m, MR, p.n, work, y, |r0, r1, out| {
                    gemm(p, &a, &sums, r0, r1, out)
                });
            }
        }
    }
}

/// Rows `r0..r1` of the product into `out` (those rows), with the fastest code this CPU runs.
#[cfg(target_arch = "x86_64")]
fn gemm<O: OutElem + Elem>(
    p: &Packed,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    out: &mut [O],
) {
    if vnni_available() {
        // Safety: the CPU has the features `vnni` is compiled for (checked just above); `a`
        // holds whole tiles of rows of length k, `sums` one entry per row, `out` rows r0..r1.
        unsafe { vnni::gemm(p, a, sums, r0, r1, out) };
    } else {
        gemm_portable(p, a, sums, r0, r1, out);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn gemm<O: OutElem>(p: &Packed, a: &[u8], sums: &[f32], r0: usize, r1: usize, out: &mut [O]) {
    gemm_portable(p, a, sums, r0, r1, out);
}

/// Output quantization as (1 / scale, zero point); (1, 0) for f32 outputs.
fn out_params(p: &Packed) -> (f32, f32) {
    p.output_quant
        .map_or((1.0, 0.0), |q| (1.0 / q.scale, q.zero_point as f32))
}

/// The matrix rows, one per output pixel (the quantized patch, zero-extended to k), padded
/// with zero rows to whole tiles; and the number of real rows. 8-bit input is used as it is.
fn rows(p: &Packed, input: In) -> (Vec<u8>, usize) {
    let (ih, iw) = p.in_hw;
    let (oh, ow) = p.out_hw;
    let image = ih * iw * p.cin;
    let len = match input {
        In::F32(x) => x.len(),
        In::U8(x) => x.len(),
    };
    let batch = len / image;
    assert!(len == batch * image);
    let m = batch * oh * ow;
    let mut a = vec![0u8; m.div_ceil(MR) * MR * p.k];
    if p.direct {
        match input {
            In::F32(x) => quantize_slice(x, p.input_quant, &mut a[..m * p.k]),
            In::U8(x) => a[..m * p.k].copy_from_slice(x),
        }
        return (a, m);
    }
    let (kh, kw) = p.kernel_hw;
    let (sh, sw) = p.stride;
    let (pt, pl) = p.pad_before;
    let c = p.cin;
    let pad = p.input_quant.zero_point as u8;
    let mut q = vec![0u8; image];
    for b in 0..batch {
        let q: &[u8] = match input {
            In::F32(x) => {
                quantize_slice(&x[b * image..][..image], p.input_quant, &mut q);
                &q
            }
            In::U8(x) => &x[b * image..][..image],
        };
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut a[((b * oh + oy) * ow + ox) * p.k..][..kh * kw * c];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let dst = &mut row[(ky * kw + kx) * c..][..c];
                        let (iy, ix) = (oy * sh + ky, ox * sw + kx);
                        if iy < pt || iy - pt >= ih || ix < pl || ix - pl >= iw {
                            dst.fill(pad);
                        } else {
                            dst.copy_from_slice(&q[((iy - pt) * iw + ix - pl) * c..][..c]);
                        }
                    }
                }
            }
        }
    }
    (a, m)
}

/// Plain Rust, any CPU: the same integer sums and float epilogue as the VNNI kernel, for
/// rows `r0..r1` into `output` (those rows).
fn gemm_portable<O: OutElem>(
    p: &Packed,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    output: &mut [O],
) {
    let k4 = p.k / 4;
    let (inv, zp) = out_params(p);
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

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{out_params, Elem, Packed, MR, NB};
    use std::arch::x86_64::*;

    /// Rows `r0..r1` (r0 a multiple of MR) into `output` (those rows).
    ///
    /// Safety: the CPU must have AVX-512 F, BW, VL and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn gemm<O: Elem>(
        p: &Packed,
        a: &[u8],
        sums: &[f32],
        r0: usize,
        r1: usize,
        output: &mut [O],
    ) {
        let tiles_end = r1.div_ceil(MR) * MR;
        // Whole tiles are read (the row buffer is padded to them); only rows < r1 are stored.
        assert!(r0.is_multiple_of(MR) && a.len() >= tiles_end * p.k && sums.len() >= tiles_end);
        assert!(output.len() == (r1 - r0) * p.n);
        let mut b0 = 0;
        while b0 < p.n_blocks {
            let blocks = (p.n_blocks - b0).min(NB);
            for m0 in (r0..tiles_end).step_by(MR) {
                match blocks {
                    3 => tile::<3, O>(p, a, sums, m0, (r0, r1), b0, output),
                    2 => tile::<2, O>(p, a, sums, m0, (r0, r1), b0, output),
                    _ => tile::<1, O>(p, a, sums, m0, (r0, r1), b0, output),
                }
            }
            b0 += blocks;
        }
    }

    /// One tile: rows `m0..m0 + MR` (stored if below `rows.1`, at `row - rows.0` in `out`),
    /// channel blocks `b0..b0 + T`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tile<const T: usize, O: Elem>(
        p: &Packed,
        a: &[u8],
        sums: &[f32],
        m0: usize,
        (first, end): (usize, usize),
        b0: usize,
        out: &mut [O],
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
        let (inv, zp) = out_params(p);
        let (inv, zp) = (_mm512_set1_ps(inv), _mm512_set1_ps(zp));
        for t in 0..T {
            let col = (b0 + t) * 16;
            let mult = _mm512_loadu_ps(p.mult.as_ptr().add(col));
            let sum_mult = _mm512_loadu_ps(p.sum_mult.as_ptr().add(col));
            let offset = _mm512_loadu_ps(p.offset.as_ptr().add(col));
            let valid = (p.n - col).min(16);
            let mask: __mmask16 = if valid == 16 {
                0xffff
            } else {
                (1u16 << valid) - 1
            };
            for (r, acc_r) in acc.iter().enumerate() {
                let row = m0 + r;
                if row >= end {
                    break;
                }
                let base = _mm512_fmadd_ps(_mm512_set1_ps(sums[row]), sum_mult, offset);
                let v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc_r[t]), mult, base);
                let y = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
                O::store(
                    out.as_mut_ptr().add((row - first) * p.n + col),
                    mask,
                    y,
                    inv,
                    zp,
                );
            }
        }
    }
}

impl Op for ConvInt8 {
    fn name(&self) -> StaticName {
        "ConvInt8".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let p = &self.packed;
        Ok(vec![format!(
            "{}x{} stride {:?} pad {:?}, {} -> {} channels, clamp [{}, {}]",
            p.kernel_hw.0, p.kernel_hw.1, p.stride, p.pad_before, p.cin, p.n, p.lo, p.hi
        )])
    }

    op_as_typed_op!();
}

impl ConvInt8 {
    fn io(&self) -> NhwcIo {
        let p = &self.packed;
        NhwcIo {
            name: "ConvInt8",
            in_hwc: (p.in_hw.0, p.in_hw.1, p.cin),
            out_hwc: (p.out_hw.0, p.out_hw.1, p.n),
            u8_input: self.u8_input,
            u8_output: self.u8_output,
        }
    }
}

impl EvalOp for ConvInt8 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let out = self.io().eval(&inputs[0], |x, y| self.compute_any(x, y))?;
        Ok(tvec!(out))
    }
}

impl TypedOp for ConvInt8 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.io().output_fact(inputs[0])?))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec with uneven channel counts (tails in row groups and channel blocks) and
    /// per-channel weight quantization.
    fn spec(
        (ih, iw, cin): (usize, usize, usize),
        kernel_hw: (usize, usize),
        stride: usize,
        same_padding: bool,
        n: usize,
        clamp: Option<(f32, f32)>,
    ) -> QuantizedConv {
        let patch = kernel_hw.0 * kernel_hw.1 * cin;
        QuantizedConv {
            in_hw: (ih, iw),
            kernel_hw,
            stride: (stride, stride),
            same_padding,
            in_channels: cin,
            out_channels: n,
            input_scale: 0.05,
            input_zero_point: 7,
            weights: (0..patch * n)
                .map(|i| ((i * 37 % 251) as i32 - 125) as i8)
                .collect(),
            weight_zero_points: (0..n).map(|o| (o as i32 % 9) - 4).collect(),
            weight_scales: (0..n).map(|o| 0.002 + o as f32 * 1e-4).collect(),
            bias: (0..n).map(|o| o as f32 * 0.03 - 1.0).collect(),
            clamp,
            output_quant: Some(TensorQuant {
                scale: 0.03,
                zero_point: 40,
            }),
        }
    }

    /// The convolution in f32 on the dequantized weights and the unquantized input, and for
    /// each output the bound of the input rounding error (half a step times sum |w|).
    fn float_reference(s: &QuantizedConv, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (ih, iw) = s.in_hw;
        let (kh, kw) = s.kernel_hw;
        let (c, n) = (s.in_channels, s.out_channels);
        let (oh, pt) = FusedDepthwise::geometry(ih, kh, s.stride.0, s.same_padding);
        let (ow, pl) = FusedDepthwise::geometry(iw, kw, s.stride.1, s.same_padding);
        let (mut y, mut bound) = (Vec::new(), Vec::new());
        for image in x.chunks_exact(ih * iw * c) {
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..n {
                        let (mut acc, mut sum_w) = (s.bias[o], 0.0);
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * s.stride.0 + ky) as isize - pt as isize;
                                let ix = (ox * s.stride.1 + kx) as isize - pl as isize;
                                for ci in 0..c {
                                    let wi = o * kh * kw * c + (ky * kw + kx) * c + ci;
                                    let w = s.weight_scales[o]
                                        * (s.weights[wi] as i32 - s.weight_zero_points[o]) as f32;
                                    sum_w += w.abs();
                                    if iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < ih
                                        && (ix as usize) < iw
                                    {
                                        acc +=
                                            image[((iy as usize) * iw + ix as usize) * c + ci] * w;
                                    }
                                }
                            }
                        }
                        if let Some((lo, hi)) = s.clamp {
                            acc = acc.max(lo).min(hi);
                        }
                        y.push(acc);
                        bound.push(0.5 * s.input_scale * sum_w + 1e-4 * acc.abs().max(1.0));
                    }
                }
            }
        }
        (y, bound)
    }

    /// Values on and between the quantization grid, inside [0, 255] after quantization.
    fn input(len: usize, s: &QuantizedConv, on_grid: bool) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let off = if on_grid { 0.0 } else { (i % 3) as f32 * 0.25 };
                s.input_scale * ((i * 53 % 241) as f32 - 7.0 + off)
            })
            .collect()
    }

    fn run(op: &ConvInt8, x: &[f32], portable: bool) -> Vec<f32> {
        let p = &*op.packed;
        let m = x.len() / (p.in_hw.0 * p.in_hw.1 * p.cin) * p.out_hw.0 * p.out_hw.1;
        let mut y = vec![f32::NAN; m * p.n];
        if portable {
            let (a, m) = rows(p, In::F32(x));
            let sums: Vec<f32> = a
                .chunks_exact(p.k)
                .map(|r| r.iter().map(|&v| v as u32).sum::<u32>() as f32)
                .collect();
            gemm_portable(p, &a, &sums, 0, m, &mut y);
        } else {
            op.compute(x, &mut y);
        }
        y
    }

    /// (input h, w, channels), kernel, stride, SAME, output channels, batch.
    type Case = (
        (usize, usize, usize),
        (usize, usize),
        usize,
        bool,
        usize,
        usize,
    );

    const CASES: &[Case] = &[
        ((1, 1, 4), (1, 1), 1, true, 1, 1),
        ((1, 13, 12), (1, 1), 1, true, 17, 1),
        ((5, 8, 96), (1, 1), 1, true, 24, 2),
        ((3, 3, 64), (1, 1), 1, true, 273, 1),
        ((10, 10, 160), (1, 1), 1, true, 48, 1),
        ((4, 5, 6), (1, 1), 1, true, 9, 1),
        ((6, 7, 8), (1, 1), 2, true, 16, 1),
        ((9, 11, 3), (3, 3), 2, true, 32, 2),
        ((5, 5, 20), (3, 3), 2, true, 40, 1),
        ((2, 2, 16), (3, 3), 2, true, 20, 1),
        ((6, 5, 8), (3, 3), 1, false, 5, 1),
    ];

    #[test]
    fn matches_the_float_convolution_within_quantization_error() {
        for (i, &(shape, kernel, stride, same, n, batch)) in CASES.iter().enumerate() {
            let clamp = [None, Some((0.0, 6.0)), Some((0.0, f32::INFINITY))][i % 3];
            let s = spec(shape, kernel, stride, same, n, clamp);
            let x = input(batch * shape.0 * shape.1 * shape.2, &s, false);
            let op = ConvInt8::new(&s).unwrap();
            let (want, bound) = float_reference(&s, &x);
            for portable in [false, true] {
                let y = run(&op, &x, portable);
                assert_eq!(y.len(), want.len());
                for (j, (a, b)) in y.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= bound[j],
                        "case {i} (portable {portable}): element {j}: {a} vs {b} (bound {})",
                        bound[j]
                    );
                }
            }
        }
    }

    #[test]
    fn on_the_grid_it_is_exact_and_both_code_paths_agree() {
        // Inputs on the quantization grid: the integer sums are exact, so the only difference
        // from f32 is rounding in the float steps.
        for &(shape, kernel, stride, same, n, batch) in CASES {
            let s = spec(shape, kernel, stride, same, n, Some((0.0, 6.0)));
            let x = input(batch * shape.0 * shape.1 * shape.2, &s, true);
            let op = ConvInt8::new(&s).unwrap();
            let (fast, portable) = (run(&op, &x, false), run(&op, &x, true));
            let (want, _) = float_reference(&s, &x);
            assert_eq!(fast, portable, "{shape:?} {kernel:?}");
            for (i, (a, b)) in fast.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{i}: {a} vs {b}");
                assert!((0.0..=6.0).contains(a));
            }
        }
    }

    #[test]
    fn rows_split_over_threads_give_the_same_output() {
        use tract_linalg::multithread::{multithread_tract_scope, Executor};
        // Large enough to be split (millions of multiply-adds), odd row count.
        for &(shape, kernel, stride) in &[((29, 31, 64), (1, 1), 1), ((41, 37, 8), (3, 3), 2)] {
            let s = spec(shape, kernel, stride, true, 96, Some((0.0, 6.0)));
            let x = input(shape.0 * shape.1 * shape.2, &s, false);
            let op = ConvInt8::new(&s).unwrap();
            let single = run(&op, &x, false);
            let multi = multithread_tract_scope(Executor::multithread(2), || run(&op, &x, false));
            assert_eq!(single, multi, "{shape:?} {kernel:?}");
        }
    }

    #[test]
    fn eight_bit_input_and_output_equal_quantizing_around_the_f32_op() {
        use super::super::elems::{dequantize, quantize_slice};
        for &(shape, kernel, stride, same, n, batch) in CASES {
            let s = spec(shape, kernel, stride, same, n, Some((0.0, 6.0)));
            let op = ConvInt8::new(&s).unwrap();
            let x = input(batch * shape.0 * shape.1 * shape.2, &s, false);
            let mut q = vec![0u8; x.len()];
            quantize_slice(&x, op.input_quant(), &mut q);
            let f32_out = run(&op, &dequantize(&q, op.input_quant()), false);
            let mut want = vec![0u8; f32_out.len()];
            quantize_slice(&f32_out, s.output_quant.unwrap(), &mut want);
            let u8_op = op.with_u8_input().with_u8_output();
            assert!(u8_op.u8_input && u8_op.u8_output);
            let mut got = vec![0u8; want.len()];
            u8_op.compute_any(In::U8(&q), Out::U8(&mut got));
            assert_eq!(got, want, "{shape:?} {kernel:?}");
            // And the portable code writes the same bytes.
            let p = &*u8_op.packed;
            let (a, m) = rows(p, In::U8(&q));
            let sums: Vec<f32> = a
                .chunks_exact(p.k)
                .map(|r| r.iter().map(|&v| v as u32).sum::<u32>() as f32)
                .collect();
            let mut portable = vec![0u8; want.len()];
            gemm_portable(p, &a, &sums, 0, m, &mut portable);
            assert_eq!(portable, want, "portable {shape:?} {kernel:?}");
        }
    }

    #[test]
    fn saturates_out_of_range_and_non_finite_inputs() {
        let s = spec((1, 1, 8), (1, 1), 1, true, 5, None);
        let op = ConvInt8::new(&s).unwrap();
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
        let (y, want) = (run(&op, &x, false), run(&op, &clamped, false));
        assert_eq!(y, want);
        assert_eq!(run(&op, &x, true), want);
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn rejects_inconsistent_specs() {
        let mut s = spec((2, 2, 8), (1, 1), 1, true, 5, None);
        s.in_channels = 6;
        assert!(ConvInt8::new(&s).is_err());
        let mut s = spec((2, 2, 8), (1, 1), 1, true, 5, None);
        s.bias.pop();
        assert!(ConvInt8::new(&s).is_err());
        let s = spec((2, 2, 8), (3, 3), 1, false, 5, None);
        assert!(
            ConvInt8::new(&s).is_err(),
            "VALID kernel larger than the input"
        );
    }
}
