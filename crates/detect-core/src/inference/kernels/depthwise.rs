//! What a depthwise convolution kernel needs: geometry, f32 weights and bias, the fused clamp
//! and the model's 8-bit quantization of its input and output.

use std::sync::Arc;

use super::quant::{Bounds, InElem, OutElem};
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
    /// Never -0.0 (the graph adds +0.0 to every value): the x86 kernels take the padding as
    /// zero taps, which would turn a -0.0 sum into +0.0 ([`PaddedRows`]).
    pub bias: Arc<Vec<f32>>,
    /// Output clamp (ReLU: (0, inf), ReLU6: (0, 6)).
    pub clamp: Option<(f32, f32)>,
    /// The input's and output's 8-bit quantization in the original model, if known.
    pub input_quant: Option<TensorQuant>,
    pub output_quant: Option<TensorQuant>,
}

/// The scalar constants of a 3x3 kernel call: clamp bounds, the input's dequantization
/// (`q * scale + offset`) and the output's quantization (1 / scale, zero point); identities
/// where a side is f32.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub lo: f32,
    pub hi: f32,
    pub scale: f32,
    pub offset: f32,
    pub inv: f32,
    pub zero_point: f32,
}

impl Params {
    /// The clamp and output quantization of a store.
    pub fn bounds(&self) -> Bounds {
        Bounds::new(self.lo, self.hi, self.inv, self.zero_point)
    }
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

    /// Input rows read by the three kernel rows of a 3x3 kernel's output row `oy` (None where
    /// they fall in the padding).
    #[inline]
    pub fn rows_3x3(&self, oy: usize) -> [Option<usize>; 3] {
        let (ih, _) = self.in_hw;
        let (pt, _) = self.pad_before;
        std::array::from_fn(|ky| {
            let iy = oy * self.stride.0 + ky;
            (iy >= pt && iy - pt < ih).then(|| iy - pt)
        })
    }

    /// The input column of output column `ox`'s first tap, when all three of its columns lie
    /// inside the image (the arm64 kernel's path without edge checks).
    #[inline]
    pub fn interior_column_3x3(&self, ox: usize) -> Option<usize> {
        let left = ox * self.stride.1;
        let pl = self.pad_before.1;
        (left >= pl && left - pl + 2 < self.in_hw.1).then(|| left - pl)
    }

    /// The taps of a 3x3 kernel's output column `ox` inside the image, in kernel order, for the
    /// input rows `rows` ([`Self::rows_3x3`]): (offset of the input pixel, tap index 0..9).
    #[inline]
    pub fn taps_3x3(
        &self,
        rows: [Option<usize>; 3],
        ox: usize,
    ) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (iw, pl, c) = (self.in_hw.1, self.pad_before.1, self.channels);
        let left = ox * self.stride.1;
        rows.into_iter().enumerate().flat_map(move |(ky, row)| {
            (0..3).filter_map(move |kx| {
                let iy = row?;
                let ix = left + kx;
                (ix >= pl && ix - pl < iw).then(|| ((iy * iw + ix - pl) * c, ky * 3 + kx))
            })
        })
    }

    /// The constants of a 3x3 kernel call, after checking the slices it is handed: one image
    /// in, output rows `oy0..oy1` out.
    pub fn params_3x3<I, O>(&self, input: &[I], oy0: usize, oy1: usize, output: &[O]) -> Params {
        let (ih, iw) = self.in_hw;
        let (oh, ow) = self.out_hw;
        let c = self.channels;
        assert!(self.kernel_hw == (3, 3));
        assert!(oy0 <= oy1 && oy1 <= oh);
        assert!(input.len() == ih * iw * c && output.len() == (oy1 - oy0) * ow * c);
        assert!(self.kernel.len() == 9 * c && self.bias.len() == c);
        debug_assert!(
            self.bias.iter().all(|b| b.to_bits() != (-0.0f32).to_bits()),
            "a -0.0 bias (see Depthwise::bias)"
        );
        let unit = TensorQuant {
            scale: 1.0,
            zero_point: 0,
        };
        let (lo, hi) = self.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let deq = self.input_quant.unwrap_or(unit);
        let q = self.output_quant.unwrap_or(unit);
        Params {
            lo,
            hi,
            scale: deq.scale,
            offset: -(deq.zero_point as f32) * deq.scale,
            inv: 1.0 / q.scale,
            zero_point: q.zero_point as f32,
        }
    }

    /// Channels `ch0..` of output row `oy` (`out_row`, the whole row) of a 3x3 kernel, one at
    /// a time: what the vector kernels do past their last whole vector, in the same steps
    /// (bias, then one fused multiply-add per tap in kernel order, clamp, store).
    pub fn row_3x3_tail<I: InElem, O: OutElem>(
        &self,
        input: &[I],
        oy: usize,
        ch0: usize,
        params: &Params,
        out_row: &mut [O],
    ) {
        let c = self.channels;
        let rows = self.rows_3x3(oy);
        for ch in ch0..c {
            for ox in 0..self.out_hw.1 {
                let mut acc = self.bias[ch];
                for (x0, t) in self.taps_3x3(rows, ox) {
                    let v = input[x0 + ch].to_f32(params.scale, params.offset);
                    acc = v.mul_add(self.kernel[t * c + ch], acc);
                }
                let v = acc.max(params.lo).min(params.hi);
                out_row[ox * c + ch] = O::from_f32(v, params.inv, params.zero_point);
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

/// The input rows of a 3x3 kernel as f32, laid out for vector loads with the padding made
/// real. Each row is converted (8-bit dequantized, f32 copied) into a slot of channel blocks,
/// each block the row's pixels one after another, `lanes` channels each ([`SlotLayout`]): a
/// pixel group's taps are then fixed offsets from one pointer per row. Zero columns lie before
/// and after the row and a row above or below the image reads an all-zero slot, so every
/// output pixel takes all nine taps with no edge checks. A zero tap adds ±0, which leaves a
/// sum unchanged unless the sum is -0.0: it starts from the bias, never -0.0
/// ([`Depthwise::bias`]), and can become -0.0 later only through a product that underflows
/// (f32 input in the subnormal range; dequantized 8-bit input cannot), where these kernels give
/// +0.0 and the scalar rule, which skips the padding, -0.0. Otherwise the sums are the scalar
/// rule's. The weights are finite (the graph checks), so a zero tap never makes a NaN. Each
/// row is converted once while consecutive output rows read it (a row feeds up to nine taps of
/// up to three output rows). Used by the x86 kernels.
#[cfg(target_arch = "x86_64")]
pub struct PaddedRows<'a, I> {
    input: &'a [I],
    /// Values per input row (width x channels).
    row_len: usize,
    layout: SlotLayout,
    /// Three row slots, then the zero slot.
    slots: Vec<f32>,
    tags: [Option<usize>; 3],
}

/// Where a row's values sit in a [`PaddedRows`] slot.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub struct SlotLayout {
    /// Channels per block (the kernel's vector width) and blocks per slot.
    pub lanes: usize,
    pub blocks: usize,
    /// Columns per block, padding included, and zero columns before the row's first.
    pub width: usize,
    pub lead: usize,
}

#[cfg(target_arch = "x86_64")]
impl SlotLayout {
    /// The index of channel block `block`'s first lane at column `column` (0: the padding's
    /// first).
    #[inline(always)]
    pub fn at(&self, block: usize, column: usize) -> usize {
        (block * self.width + column) * self.lanes
    }

    /// Values per slot.
    pub fn values(&self) -> usize {
        self.blocks * self.width * self.lanes
    }
}

#[cfg(target_arch = "x86_64")]
impl<'a, I: InElem> PaddedRows<'a, I> {
    /// Slots for the rows of one image of `dw`'s input: channel blocks `0..blocks` of `lanes`
    /// channels (the last block's lanes past the channels are left to `fill`).
    pub fn new(dw: &Depthwise, input: &'a [I], lanes: usize, blocks: usize) -> Self {
        let (iw, pl) = (dw.in_hw.1, dw.pad_before.1);
        // Columns up to the last output pixel's last tap, and at least the whole row.
        let width = ((dw.out_hw.1 - 1) * dw.stride.1 + 3).max(pl + iw);
        let layout = SlotLayout {
            lanes,
            blocks,
            width,
            lead: pl,
        };
        PaddedRows {
            input,
            row_len: iw * dw.channels,
            layout,
            slots: vec![0f32; 4 * layout.values()],
            tags: [None; 3],
        }
    }

    pub fn layout(&self) -> SlotLayout {
        self.layout
    }

    /// Pointers to input rows `rows` ([`Depthwise::rows_3x3`]; None reads zeros) at block 0,
    /// column 0: output pixel `ox`'s tap `kx` is column `ox * stride + kx`. Valid until the
    /// next call. `fill(src, slot, layout)` converts one row into the slot's columns
    /// `lead..lead + in_width` (the kernel's vector code, so the values equal its loads).
    #[inline(always)]
    pub fn get(
        &mut self,
        rows: [Option<usize>; 3],
        mut fill: impl FnMut(&[I], &mut [f32], SlotLayout),
    ) -> [*const f32; 3] {
        let (n, len) = (self.row_len, self.layout.values());
        // Slot 3 is the zero slot.
        let mut slots = [3; 3];
        for (ky, row) in rows.iter().enumerate() {
            let Some(iy) = *row else { continue };
            slots[ky] = match self.tags.iter().position(|&t| t == Some(iy)) {
                Some(slot) => slot,
                None => {
                    // A slot no row of this call needs: three slots, at most three rows.
                    let free = (0..3)
                        .find(|&s| self.tags[s].is_none_or(|t| !rows.contains(&Some(t))))
                        .expect("a free row slot");
                    let dst = &mut self.slots[free * len..][..len];
                    fill(&self.input[iy * n..][..n], dst, self.layout);
                    self.tags[free] = Some(iy);
                    free
                }
            };
        }
        // The pointers are taken after the last fill, from one borrow of the slots.
        let base = self.slots.as_ptr();
        slots.map(|slot| base.wrapping_add(slot * len))
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
