//! What a depthwise convolution kernel needs: geometry, f32 weights and bias, the fused clamp
//! and the model's 8-bit quantization of its input and output.

use std::sync::Arc;

use crate::model::TensorQuant;

/// Depthwise convolution with multiplier 1, batch-major NHWC, constant kernel and bias.
#[derive(Debug, Clone)]
pub struct Depthwise {
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
    /// The input's and output's 8-bit quantization in the original model, if known.
    pub input_quant: Option<TensorQuant>,
    pub output_quant: Option<TensorQuant>,
}

impl PartialEq for Depthwise {
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
            && self.input_quant == other.input_quant
            && self.output_quant == other.output_quant
    }
}

impl Eq for Depthwise {}

impl Depthwise {
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

    /// The taps inside the image for output pixel (oy, ox): (input offset, kernel offset).
    #[inline(always)]
    pub fn taps(&self, oy: usize, ox: usize, taps: &mut Vec<(usize, usize)>) {
        let (ih, iw) = self.in_hw;
        let (kh, kw) = self.kernel_hw;
        let (sh, sw) = self.stride;
        let (pt, pl) = self.pad_before;
        let c = self.channels;
        taps.clear();
        for ky in 0..kh {
            let iy = oy * sh + ky;
            if iy < pt || iy - pt >= ih {
                continue;
            }
            for kx in 0..kw {
                let ix = ox * sw + kx;
                if ix < pl || ix - pl >= iw {
                    continue;
                }
                taps.push((((iy - pt) * iw + ix - pl) * c, (ky * kw + kx) * c));
            }
        }
    }

    /// Values in one input / output image.
    pub fn image_lens(&self) -> (usize, usize) {
        let c = self.channels;
        (
            self.in_hw.0 * self.in_hw.1 * c,
            self.out_hw.0 * self.out_hw.1 * c,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tflite_same_and_valid_geometry() {
        // SAME: out = ceil(in / stride); the odd pad goes after.
        assert_eq!(Depthwise::geometry(300, 3, 2, true), (150, 0));
        assert_eq!(Depthwise::geometry(150, 3, 1, true), (150, 1));
        assert_eq!(Depthwise::geometry(19, 3, 2, true), (10, 1));
        assert_eq!(Depthwise::geometry(10, 3, 1, false), (8, 0));
    }
}
