//! A depthwise convolution for NHWC f32 with bias and the clamp (ReLU6) fused, put in place
//! of tract's generic depthwise op.
//!
//! Why: on x86_64 tract 0.23 runs channel-last depthwise convolutions with scalar code (it has
//! SIMD kernels for them only on arm64), and each one is followed by an unfused Max/Min pair.
//! The kernel set computes it: a 3x3 kernel that reads and writes 8-bit values directly where
//! the set has one (every set but the portable one), otherwise its f32 loop with 8-bit values
//! converted around it.

use std::borrow::Cow;

use tract_tflite::internal::*;

use super::io::{In, NhwcIo, Out};
use crate::inference::kernels::depthwise::Depthwise;
use crate::inference::kernels::parallel::split_rows;
use crate::inference::kernels::quant::{dequantize, quantize_slice};
use crate::inference::kernels::{Depthwise3x3Fn, KernelSet};
use crate::model::TensorQuant;

/// The tract op: the convolution, the kernel set that computes it, and whether its input
/// arrives / its output leaves as the model's 8-bit values instead of f32.
#[derive(Debug, Clone)]
pub struct FusedDepthwise {
    pub dw: Depthwise,
    pub kernels: &'static KernelSet,
    pub u8_input: bool,
    pub u8_output: bool,
}

impl PartialEq for FusedDepthwise {
    fn eq(&self, other: &Self) -> bool {
        self.dw == other.dw
            && std::ptr::eq(self.kernels, other.kernels)
            && self.u8_input == other.u8_input
            && self.u8_output == other.u8_output
    }
}

impl Eq for FusedDepthwise {}

impl std::ops::Deref for FusedDepthwise {
    type Target = Depthwise;
    fn deref(&self) -> &Depthwise {
        &self.dw
    }
}

const UNIT: TensorQuant = TensorQuant {
    scale: 1.0,
    zero_point: 0,
};

impl FusedDepthwise {
    /// f32 in and out, computed with `kernels`.
    pub fn new(dw: Depthwise, kernels: &'static KernelSet) -> Self {
        FusedDepthwise {
            dw,
            kernels,
            u8_input: false,
            u8_output: false,
        }
    }

    /// The same op reading its input as 8-bit values (quantized as `input_quant`).
    pub fn with_u8_input(&self) -> Self {
        FusedDepthwise {
            u8_input: self.input_quant.is_some(),
            ..self.clone()
        }
    }

    /// The same op writing 8-bit values (quantized as `output_quant`).
    pub fn with_u8_output(&self) -> Self {
        FusedDepthwise {
            u8_output: self.output_quant.is_some(),
            ..self.clone()
        }
    }

    /// Compute a batch of f32 images.
    #[cfg(test)]
    pub fn compute(&self, input: &[f32], output: &mut [f32]) {
        self.compute_any(In::F32(input), Out::F32(output))
    }

    /// Compute a batch, f32 or 8-bit in and out: with the set's 3x3 kernel for 3x3 kernels
    /// if it has one, otherwise with its f32 loop.
    pub fn compute_any(&self, input: In, output: Out) {
        if let (Some(k), (3, 3)) = (self.kernels.depthwise_3x3, self.kernel_hw) {
            match (input, output) {
                (In::F32(x), Out::F32(y)) => self.batch_3x3(k.f32_f32, x, y),
                (In::F32(x), Out::U8(y)) => self.batch_3x3(k.f32_u8, x, y),
                (In::U8(x), Out::F32(y)) => self.batch_3x3(k.u8_f32, x, y),
                (In::U8(x), Out::U8(y)) => self.batch_3x3(k.u8_u8, x, y),
            }
            return;
        }
        let x: Cow<[f32]> = match input {
            In::F32(x) => x.into(),
            In::U8(q) => dequantize(q, self.input_quant.unwrap_or(UNIT)).into(),
        };
        match output {
            Out::F32(y) => self.compute_f32(&x, y),
            Out::U8(q) => {
                let mut y = vec![0f32; q.len()];
                self.compute_f32(&x, &mut y);
                quantize_slice(self.kernels, &y, self.output_quant.unwrap_or(UNIT), q);
            }
        }
    }

    /// A 3x3 kernel over a batch, each image's rows split over tract's thread pool.
    fn batch_3x3<I: Sync, O: Send>(
        &self,
        rows: Depthwise3x3Fn<I, O>,
        input: &[I],
        output: &mut [O],
    ) {
        let (oh, ow) = self.out_hw;
        let (in_len, out_len) = self.image_lens();
        for (x, y) in input
            .chunks_exact(in_len)
            .zip(output.chunks_exact_mut(out_len))
        {
            let work = oh * ow * self.channels * 9;
            split_rows(oh, 1, ow * self.channels, work, y, |r0, r1, out| {
                rows(&self.dw, x, r0, r1, out)
            });
        }
    }

    /// f32 in and out with the set's f32 loop, image by image.
    fn compute_f32(&self, input: &[f32], output: &mut [f32]) {
        let (in_len, out_len) = self.image_lens();
        for (x, y) in input
            .chunks_exact(in_len)
            .zip(output.chunks_exact_mut(out_len))
        {
            (self.kernels.depthwise)(&self.dw, x, y);
        }
    }
}

impl Op for FusedDepthwise {
    fn name(&self) -> StaticName {
        "FusedDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}x{} stride {:?} pad {:?} channels {} clamp {:?}, {} kernels",
            self.kernel_hw.0,
            self.kernel_hw.1,
            self.stride,
            self.pad_before,
            self.channels,
            self.clamp,
            self.kernels.isa
        )])
    }

    op_as_typed_op!();
}

impl FusedDepthwise {
    fn io(&self) -> NhwcIo {
        NhwcIo {
            name: "FusedDepthwise",
            in_hwc: (self.in_hw.0, self.in_hw.1, self.channels),
            out_hwc: (self.out_hw.0, self.out_hw.1, self.channels),
            u8_input: self.u8_input,
            u8_output: self.u8_output,
        }
    }
}

impl EvalOp for FusedDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let out = self.io().eval(&inputs[0], |x, y| self.compute_any(x, y))?;
        Ok(tvec!(out))
    }
}

impl TypedOp for FusedDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.io().output_fact(inputs[0])?))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::kernels::quant::{InElem, OutElem};
    use crate::inference::kernels::{sets_under_test, KernelSet};

    /// The plain definition of a depthwise convolution, for comparison.
    fn reference(op: &FusedDepthwise, x: &[f32]) -> Vec<f32> {
        let (ih, iw) = op.in_hw;
        let (oh, ow) = op.out_hw;
        let c = op.channels;
        let mut y = vec![0.0; oh * ow * c];
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut s = op.bias[ch];
                    for ky in 0..op.kernel_hw.0 {
                        for kx in 0..op.kernel_hw.1 {
                            let iy = (oy * op.stride.0 + ky) as isize - op.pad_before.0 as isize;
                            let ix = (ox * op.stride.1 + kx) as isize - op.pad_before.1 as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < ih && (ix as usize) < iw {
                                let v = x[((iy as usize) * iw + ix as usize) * c + ch];
                                s += v * op.kernel[(ky * op.kernel_hw.1 + kx) * c + ch];
                            }
                        }
                    }
                    if let Some((lo, hi)) = op.clamp {
                        s = s.max(lo).min(hi);
                    }
                    y[(oy * ow + ox) * c + ch] = s;
                }
            }
        }
        y
    }

    fn op(
        (ih, iw, c): (usize, usize, usize),
        (kh, kw): (usize, usize),
        stride: usize,
        same: bool,
        clamp: Option<(f32, f32)>,
    ) -> FusedDepthwise {
        let (oh, pt) = Depthwise::geometry(ih, kh, stride, same);
        let (ow, pl) = Depthwise::geometry(iw, kw, stride, same);
        let dw = Depthwise {
            in_hw: (ih, iw),
            out_hw: (oh, ow),
            channels: c,
            kernel_hw: (kh, kw),
            stride: (stride, stride),
            pad_before: (pt, pl),
            kernel: Arc::new(
                (0..kh * kw * c)
                    .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                    .collect(),
            ),
            bias: Arc::new((0..c).map(|i| i as f32 / 10.0 - 0.5).collect()),
            clamp,
            input_quant: None,
            output_quant: None,
        };
        FusedDepthwise::new(dw, KernelSet::portable())
    }

    /// The kernel sets to run: portable first, then every set under test.
    fn sets() -> Vec<&'static KernelSet> {
        std::iter::once(KernelSet::portable())
            .chain(sets_under_test())
            .collect()
    }

    #[test]
    fn matches_the_plain_definition() {
        for (shape, kernel, stride, same, clamp) in [
            ((7, 9, 5), (3, 3), 1, true, None),
            ((8, 8, 19), (3, 3), 2, true, Some((0.0, 6.0))),
            ((9, 7, 33), (3, 3), 2, true, Some((0.0, f32::INFINITY))),
            ((10, 10, 8), (3, 3), 1, false, None),
            ((3, 4, 32), (3, 3), 1, true, Some((0.0, 6.0))),
            ((11, 6, 21), (5, 5), 2, true, Some((0.0, 6.0))),
            ((6, 5, 16), (1, 3), 1, false, None),
        ] {
            for set in sets() {
                let (ih, iw, c) = shape;
                let op = FusedDepthwise {
                    kernels: set,
                    ..op(shape, kernel, stride, same, clamp)
                };
                let x: Vec<f32> = (0..ih * iw * c)
                    .map(|i| ((i * 31 % 17) as f32 - 8.0) / 3.0)
                    .collect();
                let mut y = vec![f32::NAN; op.out_hw.0 * op.out_hw.1 * c];
                op.compute(&x, &mut y);
                let want = reference(&op, &x);
                for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{set:?}, case {ih}x{iw}x{c} {kernel:?} s{stride}: {i}: {a} vs {b}"
                    );
                }
                if let Some((lo, hi)) = clamp {
                    assert!(y.iter().all(|v| (lo..=hi).contains(v)));
                }
            }
        }
    }

    /// The scalar rule of the 3x3 kernels, row by row: bias, one fused multiply-add per tap in
    /// kernel order, clamp, the one rounding rule.
    fn scalar_3x3<I: InElem, O: OutElem + Default + Clone>(dw: &Depthwise, x: &[I]) -> Vec<O> {
        let (oh, ow) = dw.out_hw;
        let row_len = ow * dw.channels;
        let mut y = vec![O::default(); oh * row_len];
        let params = dw.params_3x3(x, 0, oh, &y);
        for (oy, row) in y.chunks_exact_mut(row_len).enumerate() {
            dw.row_3x3_tail(x, oy, 0, &params, row);
        }
        y
    }

    /// Every SIMD set's 3x3 kernel computes exactly the scalar rule, f32 and 8-bit in and out,
    /// edges and channel tails included, with and without a clamp, with NaN, infinities and
    /// -0.0 in f32 input: every CPU gets the same values (f32 compared bit for bit).
    #[test]
    fn three_by_three_kernels_compute_the_scalar_rule_exactly() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let simd = sets_under_test()
            .into_iter()
            .filter(|set| set.isa != crate::inference::kernels::Isa::Portable);
        let clamps = [Some((0.0, 6.0)), None, Some((0.0, f32::INFINITY))];
        for set in simd {
            let k = set
                .depthwise_3x3
                .unwrap_or_else(|| panic!("{set:?} has no 3x3 depthwise kernel"));
            for (((ih, iw, c), stride, same), clamp) in [
                ((9, 7, 33), 2, true),
                ((12, 10, 96), 1, true),
                ((5, 6, 13), 1, true),
                ((4, 4, 8), 2, true),
                ((2, 3, 3), 1, true),
                // Rows wide enough for several groups of pixels computed together, and a tail.
                ((6, 21, 24), 2, true),
                ((3, 19, 16), 1, true),
                // VALID padding (slots as wide as the row, not the taps), stride 3 (the
                // kernels' general stride), one output column with a one-channel tail.
                ((6, 8, 24), 2, false),
                ((7, 10, 20), 3, true),
                ((3, 2, 17), 2, true),
            ]
            .into_iter()
            .flat_map(|case| clamps.map(|clamp| (case, clamp)))
            {
                let mut op = op((ih, iw, c), (3, 3), stride, same, clamp);
                op.dw.input_quant = Some(TensorQuant {
                    scale: 0.05,
                    zero_point: 7,
                });
                // A zero point that puts the clamp's 0 at 131 (its quantized lower bound).
                op.dw.output_quant = Some(TensorQuant {
                    scale: 0.03,
                    zero_point: 131,
                });
                let dw = &op.dw;
                let q: Vec<u8> = (0..ih * iw * c).map(|i| (i * 37 % 256) as u8).collect();
                let mut x: Vec<f32> = q.iter().map(|&v| v as f32 * 0.013 - 0.7).collect();
                let special = [
                    f32::NAN,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    -0.0,
                    1e30,
                    -1e30,
                ];
                for (i, v) in special.into_iter().enumerate() {
                    let at = (i * 7919) % x.len();
                    x[at] = v;
                }
                let oh = dw.out_hw.0;
                let case = format!("{set:?} {ih}x{iw}x{c} s{stride} same {same} {clamp:?}");
                let mut f = vec![f32::NAN; oh * dw.out_hw.1 * c];
                (k.f32_f32)(dw, &x, 0, oh, &mut f);
                let want = scalar_3x3::<f32, f32>(dw, &x);
                assert_eq!(bits(&f), bits(&want), "{case} f32 → f32");
                (k.u8_f32)(dw, &q, 0, oh, &mut f);
                let want = scalar_3x3::<u8, f32>(dw, &q);
                assert_eq!(bits(&f), bits(&want), "{case} u8 → f32");
                let mut b = vec![0u8; f.len()];
                (k.f32_u8)(dw, &x, 0, oh, &mut b);
                assert_eq!(b, scalar_3x3::<f32, u8>(dw, &x), "{case} f32 → u8");
                (k.u8_u8)(dw, &q, 0, oh, &mut b);
                assert_eq!(b, scalar_3x3::<u8, u8>(dw, &q), "{case} u8 → u8");
                // Rows computed in two calls are the rows of one call.
                let mut halves = vec![0u8; b.len()];
                let (top, bottom) = halves.split_at_mut(oh / 2 * dw.out_hw.1 * c);
                (k.u8_u8)(dw, &q, 0, oh / 2, top);
                (k.u8_u8)(dw, &q, oh / 2, oh, bottom);
                assert_eq!(halves, b, "{case} split rows");
            }
        }
    }

    #[test]
    fn rows_split_over_threads_give_the_same_output() {
        use tract_linalg::multithread::{multithread_tract_scope, Executor};
        let x: Vec<f32> = (0..75 * 75 * 144)
            .map(|i| ((i * 31 % 17) as f32 - 8.0) / 3.0)
            .collect();
        for set in sets() {
            let op = FusedDepthwise {
                kernels: set,
                ..op((75, 75, 144), (3, 3), 2, true, Some((0.0, 6.0)))
            };
            let len = op.out_hw.0 * op.out_hw.1 * 144;
            let (mut single, mut multi) = (vec![f32::NAN; len], vec![f32::NAN; len]);
            op.compute(&x, &mut single);
            multithread_tract_scope(Executor::multithread(2), || op.compute(&x, &mut multi));
            assert_eq!(single, multi, "{set:?}");
            assert!(single.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn eight_bit_input_and_output_match_quantizing_around_the_f32_op() {
        let (qin, qout) = (
            TensorQuant {
                scale: 0.05,
                zero_point: 7,
            },
            TensorQuant {
                scale: 6.0 / 255.0,
                zero_point: 0,
            },
        );
        for ((shape, stride), set) in [((9, 7, 33), 2), ((12, 10, 96), 1), ((5, 5, 16), 2)]
            .into_iter()
            .flat_map(|case| sets().into_iter().map(move |set| (case, set)))
        {
            let (ih, iw, c) = shape;
            let mut base = op(shape, (3, 3), stride, true, Some((0.0, 6.0)));
            base.dw.input_quant = Some(qin);
            base.dw.output_quant = Some(qout);
            base.kernels = set;
            let q: Vec<u8> = (0..ih * iw * c).map(|i| (i * 37 % 256) as u8).collect();
            let x = dequantize(&q, qin);
            let len = base.out_hw.0 * base.out_hw.1 * c;
            let mut y = vec![0f32; len];
            base.compute(&x, &mut y);
            let mut want = vec![0u8; len];
            quantize_slice(set, &y, qout, &mut want);
            let u8_op = FusedDepthwise {
                u8_input: true,
                u8_output: true,
                ..base.clone()
            };
            let mut got = vec![0u8; len];
            u8_op.compute_any(In::U8(&q), Out::U8(&mut got));
            // The same arithmetic; at most a rounding tie apart.
            let worst = got.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max();
            assert!(worst <= Some(1), "{set:?} {shape:?}: {worst:?}");
            let mut got_f32 = vec![0f32; len];
            u8_op.compute_any(In::U8(&q), Out::F32(&mut got_f32));
            for (a, b) in got_f32.iter().zip(&y) {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}
