//! Convolutions in the model's own 8-bit arithmetic, put in place of tract's float matrix
//! products where the kernel set has a fast 8-bit GEMM.
//!
//! Why: the regular convolutions are 735 of this model's 773 million multiply-adds (682 in 1x1
//! convolutions). tract runs them as f32 matrix products (16 multiply-adds per AVX-512 FMA);
//! VNNI's `vpdpbusd` does 64 8-bit multiply-adds per instruction. The input is quantized on
//! the way in with the scale and zero point the model gives that tensor (the values LiteRT
//! computes with), the weights stay as the model stores them, and the output leaves as f32
//! with bias and clamp applied (or as the model's 8-bit values for the next op of ours), so
//! the ops around it are unchanged. Kernels larger than 1x1 gather each output pixel's input
//! patch into a row first (im2col); padding reads as the input zero point, i.e. real 0. The
//! product itself is [`PackedGemm`], run by the kernel set's GEMM.

use std::borrow::Cow;

use tract_tflite::internal::*;

use super::im2col::{Patches, RowWriter};
use super::io::{In, NhwcIo, Out};
use crate::inference::kernels::depthwise::Depthwise;
use crate::inference::kernels::gemm::{PackedGemm, MR};
use crate::inference::kernels::parallel::split_rows;
use crate::inference::kernels::quant::quantize_slice;
use crate::inference::kernels::KernelSet;
use crate::model::{QuantizedConv, TensorQuant};

/// Geometry, input quantization and the packed product.
#[derive(Debug)]
struct Packed {
    /// The geometry, stated once: also how rows are gathered when they are not `direct`.
    patches: Patches,
    /// Whether rows are the quantized input itself (1x1, stride 1, cin a multiple of 4).
    direct: bool,
    /// The input tensor's quantization in the original model (rows are quantized with it).
    input_quant: TensorQuant,
    gemm: PackedGemm,
}

/// The tract op: NHWC `[batch, h, w, cin]` in, NHWC `[batch, oh, ow, n]` out, each f32 or
/// the model's 8-bit values for that tensor.
#[derive(Debug, Clone)]
pub struct ConvInt8 {
    packed: Arc<Packed>,
    kernels: &'static KernelSet,
    u8_input: bool,
    u8_output: bool,
}

impl PartialEq for ConvInt8 {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.packed, &other.packed)
            && std::ptr::eq(self.kernels, other.kernels)
            && self.u8_input == other.u8_input
            && self.u8_output == other.u8_output
    }
}

impl Eq for ConvInt8 {}

impl ConvInt8 {
    /// The op for `spec`, computing with `kernels`.
    pub fn new(spec: &QuantizedConv, kernels: &'static KernelSet) -> TractResult<Self> {
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
        let (oh, pt) = Depthwise::geometry(spec.in_hw.0, kh, spec.stride.0, spec.same_padding);
        let (ow, pl) = Depthwise::geometry(spec.in_hw.1, kw, spec.stride.1, spec.same_padding);
        let gemm = PackedGemm::new(spec, kernels.wide_weights);
        Ok(ConvInt8 {
            packed: Arc::new(Packed {
                patches: Patches {
                    in_hw: spec.in_hw,
                    out_hw: (oh, ow),
                    kernel_hw: spec.kernel_hw,
                    stride: spec.stride,
                    pad_before: (pt, pl),
                    c: cin,
                    k: gemm.k,
                    pad: spec.input_zero_point as u8,
                },
                direct: spec.kernel_hw == (1, 1) && spec.stride == (1, 1) && cin % 4 == 0,
                input_quant: TensorQuant {
                    scale: spec.input_scale,
                    zero_point: spec.input_zero_point,
                },
                gemm,
            }),
            kernels,
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
        self.packed.gemm.output_quant
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
            u8_output: self.packed.gemm.output_quant.is_some(),
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
        let g = &p.gemm;
        let (a, m) = rows(p, self.kernels, input);
        let sums = g.row_sums(&a);
        let work = m * g.k * g.n;
        match output {
            Out::F32(y) => {
                assert!(y.len() == m * g.n);
                let gemm = self.kernels.gemm_f32;
                split_rows(m, MR, g.n, work, y, |r0, r1, out| {
                    gemm(g, &a, &sums, r0, r1, out)
                });
            }
            Out::U8(y) => {
                assert!(y.len() == m * g.n && g.output_quant.is_some());
                let gemm = self.kernels.gemm_u8;
                split_rows(m, MR, g.n, work, y, |r0, r1, out| {
                    gemm(g, &a, &sums, r0, r1, out)
                });
            }
        }
    }
}

/// The matrix rows, one per output pixel (the quantized patch, zero-extended to k), padded
/// with zero rows to whole tiles if the kernel set reads whole tiles; and the number of real
/// rows. 8-bit input is used as it is:
/// in place, when it is the rows already (a 1x1 convolution with stride 1) and the kernel set
/// reads no row past the last.
fn rows<'a>(p: &Packed, kernels: &KernelSet, input: In<'a>) -> (Cow<'a, [u8]>, usize) {
    let geometry = &p.patches;
    let (ih, iw) = geometry.in_hw;
    let (oh, ow) = geometry.out_hw;
    let k = geometry.k;
    let image = ih * iw * geometry.c;
    let len = match input {
        In::F32(x) => x.len(),
        In::U8(x) => x.len(),
    };
    let batch = len / image;
    assert!(len == batch * image);
    let m = batch * oh * ow;
    let rows = if kernels.reads_whole_tiles {
        m.div_ceil(MR) * MR
    } else {
        m
    };
    if p.direct {
        if let (In::U8(x), false) = (input, kernels.reads_whole_tiles) {
            return (Cow::Borrowed(x), m);
        }
        let mut a = vec![0u8; rows * k];
        match input {
            In::F32(x) => quantize_slice(kernels, x, p.input_quant, &mut a[..m * k]),
            In::U8(x) => a[..m * k].copy_from_slice(x),
        }
        return (Cow::Owned(a), m);
    }
    let mut rows_out = RowWriter::new(rows * k);
    let mut q = Vec::new();
    for b in 0..batch {
        let q: &[u8] = match input {
            In::F32(x) => {
                q.resize(image, 0);
                quantize_slice(kernels, &x[b * image..][..image], p.input_quant, &mut q);
                &q
            }
            In::U8(x) => &x[b * image..][..image],
        };
        geometry.write(q, &mut rows_out);
    }
    (Cow::Owned(rows_out.finish()), m)
}

impl Op for ConvInt8 {
    fn name(&self) -> StaticName {
        "ConvInt8".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (p, g) = (&self.packed.patches, &self.packed.gemm);
        Ok(vec![format!(
            "{}x{} stride {:?} pad {:?}, {} -> {} channels, clamp [{}, {}], {} kernels",
            p.kernel_hw.0,
            p.kernel_hw.1,
            p.stride,
            p.pad_before,
            p.c,
            g.n,
            g.lo,
            g.hi,
            self.kernels.isa
        )])
    }

    op_as_typed_op!();
}

impl ConvInt8 {
    fn io(&self) -> NhwcIo {
        let p = &self.packed.patches;
        NhwcIo {
            name: "ConvInt8",
            in_hwc: (p.in_hw.0, p.in_hw.1, p.c),
            out_hwc: (p.out_hw.0, p.out_hw.1, self.packed.gemm.n),
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
    use crate::inference::kernels::{sets_under_test, KernelSet};

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
        let (oh, pt) = Depthwise::geometry(ih, kh, s.stride.0, s.same_padding);
        let (ow, pl) = Depthwise::geometry(iw, kw, s.stride.1, s.same_padding);
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

    fn run(op: &ConvInt8, x: &[f32]) -> Vec<f32> {
        let p = &op.packed.patches;
        let m = x.len() / (p.in_hw.0 * p.in_hw.1 * p.c) * p.out_hw.0 * p.out_hw.1;
        let mut y = vec![f32::NAN; m * op.packed.gemm.n];
        op.compute(x, &mut y);
        y
    }

    /// The op on every kernel set under test, the portable one first.
    fn ops(s: &QuantizedConv) -> Vec<ConvInt8> {
        std::iter::once(KernelSet::portable())
            .chain(sets_under_test())
            .map(|set| ConvInt8::new(s, set).unwrap())
            .collect()
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
            let (want, bound) = float_reference(&s, &x);
            for op in ops(&s) {
                let y = run(&op, &x);
                assert_eq!(y.len(), want.len());
                for (j, (a, b)) in y.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= bound[j],
                        "case {i} ({:?}): element {j}: {a} vs {b} (bound {})",
                        op.kernels,
                        bound[j]
                    );
                }
            }
        }
    }

    #[test]
    fn on_the_grid_it_is_exact_and_every_kernel_set_agrees() {
        // Inputs on the quantization grid: the integer sums are exact, so the only difference
        // from f32 is rounding in the float steps.
        for &(shape, kernel, stride, same, n, batch) in CASES {
            let s = spec(shape, kernel, stride, same, n, Some((0.0, 6.0)));
            let x = input(batch * shape.0 * shape.1 * shape.2, &s, true);
            let (want, _) = float_reference(&s, &x);
            let all = ops(&s);
            let portable = run(&all[0], &x);
            for op in &all {
                let fast = run(op, &x);
                assert_eq!(fast, portable, "{:?} {shape:?} {kernel:?}", op.kernels);
                for (i, (a, b)) in fast.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{i}: {a} vs {b}");
                    assert!((0.0..=6.0).contains(a));
                }
            }
        }
    }

    #[test]
    fn every_kernel_set_is_bit_identical_to_portable_off_the_grid_and_in_8_bits() {
        for (i, &(shape, kernel, stride, same, n, batch)) in CASES.iter().enumerate() {
            let clamp = [None, Some((0.0, 6.0)), Some((0.0, f32::INFINITY))][i % 3];
            let s = spec(shape, kernel, stride, same, n, clamp);
            let x = input(batch * shape.0 * shape.1 * shape.2, &s, false);
            let all = ops(&s);
            let mut q = vec![0u8; x.len()];
            quantize_slice(KernelSet::portable(), &x, s.output_quant.unwrap(), &mut q);
            let want = run(&all[0], &x);
            let u8_run = |op: &ConvInt8| {
                let op = op.with_u8_input().with_u8_output();
                let mut y = vec![0u8; want.len()];
                op.compute_any(In::U8(&q), Out::U8(&mut y));
                y
            };
            let want_u8 = u8_run(&all[0]);
            for op in &all[1..] {
                assert_eq!(run(op, &x), want, "{:?} case {i}", op.kernels);
                assert_eq!(u8_run(op), want_u8, "{:?} case {i} (8-bit)", op.kernels);
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
            let all = ops(&s);
            let portable = run(&all[0], &x);
            for op in &all {
                let single = run(op, &x);
                let multi = multithread_tract_scope(Executor::multithread(2), || run(op, &x));
                assert_eq!(single, multi, "{:?} {shape:?} {kernel:?}", op.kernels);
                assert_eq!(single, portable, "{:?} {shape:?} {kernel:?}", op.kernels);
            }
        }
    }

    #[test]
    fn eight_bit_input_and_output_equal_quantizing_around_the_f32_op() {
        use crate::inference::kernels::quant::dequantize;
        for &(shape, kernel, stride, same, n, batch) in CASES {
            let s = spec(shape, kernel, stride, same, n, Some((0.0, 6.0)));
            for op in ops(&s) {
                let x = input(batch * shape.0 * shape.1 * shape.2, &s, false);
                let mut q = vec![0u8; x.len()];
                quantize_slice(op.kernels, &x, op.input_quant(), &mut q);
                let f32_out = run(&op, &dequantize(&q, op.input_quant()));
                let mut want = vec![0u8; f32_out.len()];
                quantize_slice(op.kernels, &f32_out, s.output_quant.unwrap(), &mut want);
                let u8_op = op.with_u8_input().with_u8_output();
                assert!(u8_op.u8_input && u8_op.u8_output);
                let mut got = vec![0u8; want.len()];
                u8_op.compute_any(In::U8(&q), Out::U8(&mut got));
                assert_eq!(got, want, "{:?} {shape:?} {kernel:?}", op.kernels);
            }
        }
    }

    #[test]
    fn saturates_out_of_range_and_non_finite_inputs() {
        let s = spec((1, 1, 8), (1, 1), 1, true, 5, None);
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
        for op in ops(&s) {
            let (y, want) = (run(&op, &x), run(&op, &clamped));
            assert_eq!(y, want, "{:?}", op.kernels);
            assert!(y.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn rejects_inconsistent_specs() {
        let mut s = spec((2, 2, 8), (1, 1), 1, true, 5, None);
        s.in_channels = 6;
        assert!(ConvInt8::new(&s, KernelSet::portable()).is_err());
        let mut s = spec((2, 2, 8), (1, 1), 1, true, 5, None);
        s.bias.pop();
        assert!(ConvInt8::new(&s, KernelSet::portable()).is_err());
        let s = spec((2, 2, 8), (3, 3), 1, false, 5, None);
        assert!(
            ConvInt8::new(&s, KernelSet::portable()).is_err(),
            "VALID kernel larger than the input"
        );
    }
}
