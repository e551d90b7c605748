//! A depthwise 3x3-style convolution for NHWC f32 with bias and the clamp (ReLU6) fused, put
//! in place of tract's generic depthwise op.
//!
//! Why: on x86_64 tract 0.23 runs channel-last depthwise convolutions with scalar code (it has
//! SIMD kernels for them only on arm64), and each one is followed by an unfused Max/Min pair.
//! Here the channel loop is the innermost, contiguous in input, kernel and output, so the
//! compiler vectorizes it; on x86_64 an AVX2 build of the same loop is chosen at run time.

use tract_tflite::internal::*;

/// Depthwise convolution with multiplier 1, batch-major NHWC, constant kernel and bias.
#[derive(Debug, Clone)]
pub struct FusedDepthwise {
    /// Input height, width; output height, width; channels.
    pub in_hw: (usize, usize),
    pub out_hw: (usize, usize),
    pub channels: usize,
    pub kernel_hw: (usize, usize),
    pub stride: (usize, usize),
    /// Zero padding before the first row / column.
    pub pad_before: (usize, usize),
    /// `[kh * kw * channels]`, tap-major: the channel vector of each tap is contiguous.
    pub kernel: Arc<Vec<f32>>,
    pub bias: Arc<Vec<f32>>,
    /// Output clamp (ReLU: (0, inf), ReLU6: (0, 6)).
    pub clamp: Option<(f32, f32)>,
}

impl PartialEq for FusedDepthwise {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.in_hw == other.in_hw
            && self.out_hw == other.out_hw
            && self.channels == other.channels
            && self.kernel_hw == other.kernel_hw
            && self.stride == other.stride
            && self.pad_before == other.pad_before
            && bits(&self.kernel) == bits(&other.kernel)
            && bits(&self.bias) == bits(&other.bias)
            && self.clamp.map(|(a, b)| (a.to_bits(), b.to_bits()))
                == other.clamp.map(|(a, b)| (a.to_bits(), b.to_bits()))
    }
}

impl Eq for FusedDepthwise {}

impl FusedDepthwise {
    /// Output rows/columns and the padding before them, as TFLite's SAME/VALID define them.
    pub fn geometry(input: usize, kernel: usize, stride: usize, same: bool) -> (usize, usize) {
        if same {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(input);
            (out, total / 2)
        } else {
            ((input.saturating_sub(kernel)) / stride + 1, 0)
        }
    }

    /// Compute one image: `input` is `[ih, iw, c]`, `output` is `[oh, ow, c]`.
    #[inline(always)]
    fn image(&self, input: &[f32], output: &mut [f32]) {
        let (ih, iw) = self.in_hw;
        let (oh, ow) = self.out_hw;
        let (kh, kw) = self.kernel_hw;
        let (sh, sw) = self.stride;
        let (pt, pl) = self.pad_before;
        let c = self.channels;
        for oy in 0..oh {
            for ox in 0..ow {
                let acc = &mut output[(oy * ow + ox) * c..][..c];
                acc.copy_from_slice(&self.bias);
                for ky in 0..kh {
                    let iy = oy * sh + ky;
                    if iy < pt || iy - pt >= ih {
                        continue;
                    }
                    let row = (iy - pt) * iw;
                    for kx in 0..kw {
                        let ix = ox * sw + kx;
                        if ix < pl || ix - pl >= iw {
                            continue;
                        }
                        let x = &input[(row + ix - pl) * c..][..c];
                        let w = &self.kernel[(ky * kw + kx) * c..][..c];
                        for ((a, &xv), &wv) in acc.iter_mut().zip(x).zip(w) {
                            *a += xv * wv;
                        }
                    }
                }
                if let Some((lo, hi)) = self.clamp {
                    for a in acc.iter_mut() {
                        *a = a.max(lo).min(hi);
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn image_avx2(&self, input: &[f32], output: &mut [f32]) {
        self.image(input, output)
    }

    /// Compute a batch, picking the widest vector build this CPU runs.
    pub fn compute(&self, input: &[f32], output: &mut [f32]) {
        let in_len = self.in_hw.0 * self.in_hw.1 * self.channels;
        let out_len = self.out_hw.0 * self.out_hw.1 * self.channels;
        for (x, y) in input
            .chunks_exact(in_len)
            .zip(output.chunks_exact_mut(out_len))
        {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                // Safety: the CPU supports AVX2, checked just above.
                unsafe { self.image_avx2(x, y) };
                continue;
            }
            self.image(x, y);
        }
    }
}

impl Op for FusedDepthwise {
    fn name(&self) -> StaticName {
        "FusedDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}x{} stride {:?} pad {:?} channels {} clamp {:?}",
            self.kernel_hw.0,
            self.kernel_hw.1,
            self.stride,
            self.pad_before,
            self.channels,
            self.clamp
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for FusedDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let batch = input.shape()[0];
        let shape = [batch, self.out_hw.0, self.out_hw.1, self.channels];
        let mut output = Tensor::zero::<f32>(&shape)?;
        {
            let x = input.try_as_plain_ram()?;
            let mut y = output.try_as_plain_ram_mut()?;
            self.compute(x.as_slice::<f32>()?, y.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for FusedDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = inputs[0].shape.to_tvec();
        ensure!(shape.len() == 4, "FusedDepthwise takes NHWC input");
        ensure!(
            shape[1] == self.in_hw.0.to_dim()
                && shape[2] == self.in_hw.1.to_dim()
                && shape[3] == self.channels.to_dim(),
            "FusedDepthwise built for {:?}x{} got {:?}",
            self.in_hw,
            self.channels,
            shape
        );
        Ok(tvec!(f32::fact([
            shape[0].clone(),
            self.out_hw.0.to_dim(),
            self.out_hw.1.to_dim(),
            self.channels.to_dim()
        ])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ih: usize,
        iw: usize,
        c: usize,
        stride: usize,
        same: bool,
        clamp: Option<(f32, f32)>,
    ) -> FusedDepthwise {
        let (oh, pt) = FusedDepthwise::geometry(ih, 3, stride, same);
        let (ow, pl) = FusedDepthwise::geometry(iw, 3, stride, same);
        FusedDepthwise {
            in_hw: (ih, iw),
            out_hw: (oh, ow),
            channels: c,
            kernel_hw: (3, 3),
            stride: (stride, stride),
            pad_before: (pt, pl),
            kernel: Arc::new(
                (0..9 * c)
                    .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                    .collect(),
            ),
            bias: Arc::new((0..c).map(|i| i as f32 / 10.0 - 0.5).collect()),
            clamp,
        }
    }

    #[test]
    fn tflite_same_and_valid_geometry() {
        // SAME: out = ceil(in / stride); the odd pad goes after.
        assert_eq!(FusedDepthwise::geometry(300, 3, 2, true), (150, 0));
        assert_eq!(FusedDepthwise::geometry(150, 3, 1, true), (150, 1));
        assert_eq!(FusedDepthwise::geometry(19, 3, 2, true), (10, 1));
        assert_eq!(FusedDepthwise::geometry(10, 3, 1, false), (8, 0));
    }

    #[test]
    fn matches_the_plain_definition() {
        for (ih, iw, c, stride, same, clamp) in [
            (7, 9, 5, 1, true, None),
            (8, 8, 19, 2, true, Some((0.0, 6.0))),
            (9, 7, 33, 2, true, Some((0.0, f32::INFINITY))),
            (10, 10, 8, 1, false, None),
        ] {
            let op = op(ih, iw, c, stride, same, clamp);
            let x: Vec<f32> = (0..ih * iw * c)
                .map(|i| ((i * 31 % 17) as f32 - 8.0) / 3.0)
                .collect();
            let mut y = vec![f32::NAN; op.out_hw.0 * op.out_hw.1 * c];
            op.compute(&x, &mut y);
            let want = reference(&op, &x);
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "case {ih}x{iw}x{c} s{stride}: {i}: {a} vs {b}"
                );
            }
            if let Some((lo, hi)) = clamp {
                assert!(y.iter().all(|v| (lo..=hi).contains(v)));
            }
        }
    }
}
