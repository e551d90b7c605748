//! A depthwise 3x3-style convolution for NHWC f32 with bias and the clamp (ReLU6) fused, put
//! in place of tract's generic depthwise op.
//!
//! Why: on x86_64 tract 0.23 runs channel-last depthwise convolutions with scalar code (it has
//! SIMD kernels for them only on arm64), and each one is followed by an unfused Max/Min pair.
//! Here the channel loop is the innermost, contiguous in input, kernel and output, so the
//! compiler vectorizes it; on x86_64 an AVX2 build of the same loop is chosen at run time.

use tract_tflite::internal::*;

#[cfg(target_arch = "x86_64")]
use super::elems::avx512::Elem;
use super::elems::{dequantize, quantize_slice, In, NhwcIo, Out};
use crate::model::TensorQuant;

/// Channels summed together in registers (one AVX-512 vector, two AVX2 vectors).
const LANES: usize = 16;

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
    /// The input's and output's 8-bit quantization in the original model, if known.
    pub input_quant: Option<TensorQuant>,
    pub output_quant: Option<TensorQuant>,
    /// Whether the input arrives / the output leaves as those 8-bit values instead of f32.
    pub u8_input: bool,
    pub u8_output: bool,
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
            && self.input_quant == other.input_quant
            && self.output_quant == other.output_quant
            && self.u8_input == other.u8_input
            && self.u8_output == other.u8_output
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

    /// The taps inside the image for output pixel (oy, ox): (input offset, kernel offset).
    #[inline(always)]
    fn taps(&self, oy: usize, ox: usize, taps: &mut Vec<(usize, usize)>) {
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

    /// Compute one image: `input` is `[ih, iw, c]`, `output` is `[oh, ow, c]`.
    #[inline(always)]
    fn image(&self, input: &[f32], output: &mut [f32]) {
        let (oh, ow) = self.out_hw;
        let (kh, kw) = self.kernel_hw;
        let c = self.channels;
        let mut taps: Vec<(usize, usize)> = Vec::with_capacity(kh * kw);
        for oy in 0..oh {
            for ox in 0..ow {
                self.taps(oy, ox, &mut taps);
                let out = &mut output[(oy * ow + ox) * c..][..c];
                // Blocks of LANES channels are summed in registers over all taps.
                let whole = c / LANES * LANES;
                for ch in (0..whole).step_by(LANES) {
                    let mut acc: [f32; LANES] = self.bias[ch..ch + LANES].try_into().unwrap();
                    for &(x0, w0) in &taps {
                        let x: &[f32; LANES] = input[x0 + ch..][..LANES].try_into().unwrap();
                        let w: &[f32; LANES] = self.kernel[w0 + ch..][..LANES].try_into().unwrap();
                        for l in 0..LANES {
                            acc[l] += x[l] * w[l];
                        }
                    }
                    if let Some((lo, hi)) = self.clamp {
                        for a in acc.iter_mut() {
                            *a = a.max(lo).min(hi);
                        }
                    }
                    out[ch..ch + LANES].copy_from_slice(&acc);
                }
                for ch in whole..c {
                    let mut acc = self.bias[ch];
                    for &(x0, w0) in &taps {
                        acc += input[x0 + ch] * self.kernel[w0 + ch];
                    }
                    if let Some((lo, hi)) = self.clamp {
                        acc = acc.max(lo).min(hi);
                    }
                    out[ch] = acc;
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn image_avx2(&self, input: &[f32], output: &mut [f32]) {
        self.image(input, output)
    }

    /// 3x3 kernels with AVX-512: per output row and 16-channel block, the nine weight vectors
    /// stay in registers while the row's pixels stream past; interior pixels skip edge checks.
    /// Input and output are f32 or 8-bit (dequantized on load, quantized on store).
    ///
    /// Safety: the CPU must have AVX-512 F, BW and VL; `input` must be one image, `output`
    /// its rows `oy0..oy1`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn image_3x3_avx512<I: Elem, O: Elem>(
        &self,
        input: &[I],
        oy0: usize,
        oy1: usize,
        output: &mut [O],
    ) {
        use std::arch::x86_64::*;
        let (ih, iw) = self.in_hw;
        let (oh, ow) = self.out_hw;
        let (sh, sw) = self.stride;
        let (pt, pl) = self.pad_before;
        let c = self.channels;
        assert!(self.kernel_hw == (3, 3));
        assert!(oy0 <= oy1 && oy1 <= oh);
        assert!(input.len() == ih * iw * c && output.len() == (oy1 - oy0) * ow * c);
        assert!(self.kernel.len() == 9 * c && self.bias.len() == c);
        let (lo, hi) = self.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        let deq = self.input_quant.unwrap_or(TensorQuant {
            scale: 1.0,
            zero_point: 0,
        });
        let (scale, offset) = (
            _mm512_set1_ps(deq.scale),
            _mm512_set1_ps(-(deq.zero_point as f32) * deq.scale),
        );
        let q = self.output_quant.unwrap_or(TensorQuant {
            scale: 1.0,
            zero_point: 0,
        });
        let (inv, zp) = (
            _mm512_set1_ps(1.0 / q.scale),
            _mm512_set1_ps(q.zero_point as f32),
        );
        let (x, w, b, y) = (
            input.as_ptr(),
            self.kernel.as_ptr(),
            self.bias.as_ptr(),
            output.as_mut_ptr(),
        );
        let load = |p: *const I, m| I::load(p, m, scale, offset);
        for oy in oy0..oy1 {
            // Input rows of the three kernel rows, None where they fall in the padding.
            let rows: [Option<usize>; 3] = std::array::from_fn(|ky| {
                let iy = oy * sh + ky;
                (iy >= pt && iy - pt < ih).then(|| iy - pt)
            });
            for ch in (0..c).step_by(16) {
                let m: __mmask16 = if ch + 16 <= c {
                    0xffff
                } else {
                    ((1u32 << (c - ch)) - 1) as u16
                };
                let wv: [__m512; 9] =
                    std::array::from_fn(|t| _mm512_maskz_loadu_ps(m, w.add(t * c + ch)));
                let bias = _mm512_maskz_loadu_ps(m, b.add(ch));
                for ox in 0..ow {
                    let mut acc = bias;
                    let left = ox * sw;
                    if left >= pl && left - pl + 2 < iw {
                        let ix = left - pl;
                        for (ky, row) in rows.iter().enumerate() {
                            if let Some(iy) = *row {
                                let p = x.add((iy * iw + ix) * c + ch);
                                acc = _mm512_fmadd_ps(load(p, m), wv[ky * 3], acc);
                                let p = p.add(c);
                                acc = _mm512_fmadd_ps(load(p, m), wv[ky * 3 + 1], acc);
                                let p = p.add(c);
                                acc = _mm512_fmadd_ps(load(p, m), wv[ky * 3 + 2], acc);
                            }
                        }
                    } else {
                        for (ky, row) in rows.iter().enumerate() {
                            let Some(iy) = *row else { continue };
                            for kx in 0..3 {
                                let ixp = left + kx;
                                if ixp < pl || ixp - pl >= iw {
                                    continue;
                                }
                                let p = x.add((iy * iw + ixp - pl) * c + ch);
                                acc = _mm512_fmadd_ps(load(p, m), wv[ky * 3 + kx], acc);
                            }
                        }
                    }
                    let v = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
                    O::store(y.add(((oy - oy0) * ow + ox) * c + ch), m, v, inv, zp);
                }
            }
        }
    }

    /// [`Self::image`] with AVX-512 intrinsics: one register per 16 channels, fused multiply-adds.
    ///
    /// Safety: the CPU must have AVX-512 F; `input` and `output` must be one image each.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn image_avx512(&self, input: &[f32], output: &mut [f32]) {
        use std::arch::x86_64::*;
        let (ih, iw) = self.in_hw;
        let (oh, ow) = self.out_hw;
        let (kh, kw) = self.kernel_hw;
        let c = self.channels;
        assert!(input.len() == ih * iw * c && output.len() == oh * ow * c);
        let (lo, hi) = self.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        let whole = c / 16 * 16;
        let mask: __mmask16 = ((1u32 << (c - whole)) - 1) as u16;
        let (x, w, b) = (input.as_ptr(), self.kernel.as_ptr(), self.bias.as_ptr());
        let mut taps: Vec<(usize, usize)> = Vec::with_capacity(kh * kw);
        for oy in 0..oh {
            for ox in 0..ow {
                self.taps(oy, ox, &mut taps);
                let out = output.as_mut_ptr().add((oy * ow + ox) * c);
                // Every offset below is a tap inside the image plus a channel below c.
                for ch in (0..whole).step_by(16) {
                    let mut acc = _mm512_loadu_ps(b.add(ch));
                    for &(x0, w0) in &taps {
                        let xv = _mm512_loadu_ps(x.add(x0 + ch));
                        acc = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w.add(w0 + ch)), acc);
                    }
                    let y = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
                    _mm512_storeu_ps(out.add(ch), y);
                }
                if whole < c {
                    let mut acc = _mm512_maskz_loadu_ps(mask, b.add(whole));
                    for &(x0, w0) in &taps {
                        let xv = _mm512_maskz_loadu_ps(mask, x.add(x0 + whole));
                        let wv = _mm512_maskz_loadu_ps(mask, w.add(w0 + whole));
                        acc = _mm512_fmadd_ps(xv, wv, acc);
                    }
                    let y = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
                    _mm512_mask_storeu_ps(out.add(whole), mask, y);
                }
            }
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

    /// Compute a batch of f32 images, picking the widest vector build this CPU runs.
    #[cfg(test)]
    pub fn compute(&self, input: &[f32], output: &mut [f32]) {
        self.compute_any(In::F32(input), Out::F32(output))
    }

    /// Compute a batch, f32 or 8-bit in and out. The AVX-512 3x3 kernel reads and writes 8-bit
    /// values directly; the other builds convert around the f32 code.
    pub fn compute_any(&self, input: In, output: Out) {
        #[cfg(target_arch = "x86_64")]
        if self.kernel_hw == (3, 3) && super::elems::avx512::available() {
            match (input, output) {
                (In::F32(x), Out::F32(y)) => self.batch_3x3_avx512(x, y),
                (In::F32(x), Out::U8(y)) => self.batch_3x3_avx512(x, y),
                (In::U8(x), Out::F32(y)) => self.batch_3x3_avx512(x, y),
                (In::U8(x), Out::U8(y)) => self.batch_3x3_avx512(x, y),
            }
            return;
        }
        let unit = TensorQuant {
            scale: 1.0,
            zero_point: 0,
        };
        let x: std::borrow::Cow<[f32]> = match input {
            In::F32(x) => x.into(),
            In::U8(q) => dequantize(q, self.input_quant.unwrap_or(unit)).into(),
        };
        match output {
            Out::F32(y) => self.compute_f32(&x, y),
            Out::U8(q) => {
                let mut y = vec![0f32; q.len()];
                self.compute_f32(&x, &mut y);
                quantize_slice(&y, self.output_quant.unwrap_or(unit), q);
            }
        }
    }

    /// The AVX-512 3x3 kernel over a batch, each image's rows split over tract's thread pool.
    #[cfg(target_arch = "x86_64")]
    fn batch_3x3_avx512<I: Elem, O: Elem>(&self, input: &[I], output: &mut [O]) {
        let (oh, ow) = self.out_hw;
        let in_len = self.in_hw.0 * self.in_hw.1 * self.channels;
        let out_len = oh * ow * self.channels;
        for (x, y) in input
            .chunks_exact(in_len)
            .zip(output.chunks_exact_mut(out_len))
        {
            let work = oh * ow * self.channels * 9;
            super::parallel::split_rows(oh, 1, ow * self.channels, work, y, |r0, r1, rows| {
                // Safety: the caller checked the CPU features; x is one image, rows holds its
                // output rows r0..r1.
                unsafe { self.image_3x3_avx512(x, r0, r1, rows) }
            });
        }
    }

    /// f32 in and out with the widest build of the generic kernel.
    fn compute_f32(&self, input: &[f32], output: &mut [f32]) {
        let in_len = self.in_hw.0 * self.in_hw.1 * self.channels;
        let out_len = self.out_hw.0 * self.out_hw.1 * self.channels;
        for (x, y) in input
            .chunks_exact(in_len)
            .zip(output.chunks_exact_mut(out_len))
        {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                // Safety: the CPU supports AVX-512 F, checked just above.
                unsafe { self.image_avx512(x, y) };
                continue;
            }
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
        let (oh, pt) = FusedDepthwise::geometry(ih, kh, stride, same);
        let (ow, pl) = FusedDepthwise::geometry(iw, kw, stride, same);
        FusedDepthwise {
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
            u8_input: false,
            u8_output: false,
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

    type Kernel = fn(&FusedDepthwise, &[f32], &mut [f32]);

    /// Every build of the kernel this CPU can run, by name.
    fn variants() -> Vec<(&'static str, Kernel)> {
        let mut v: Vec<(&'static str, Kernel)> = vec![
            ("portable", |op, x, y| op.image(x, y)),
            ("dispatch", |op, x, y| op.compute(x, y)),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // Safety: the CPU has AVX2 (checked above).
                v.push(("avx2", |op, x, y| unsafe { op.image_avx2(x, y) }));
            }
            if std::is_x86_feature_detected!("avx512f") {
                // Safety: the CPU has AVX-512 F (checked above).
                v.push(("avx512", |op, x, y| unsafe { op.image_avx512(x, y) }));
            }
            if crate::inference::elems::avx512::available() {
                // Safety: the CPU has AVX-512 F, BW and VL (checked above).
                v.push(("avx512 3x3", |op, x, y| {
                    if op.kernel_hw == (3, 3) {
                        unsafe { op.image_3x3_avx512(x, 0, op.out_hw.0, y) }
                    } else {
                        op.image(x, y)
                    }
                }));
            }
        }
        v
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
            for (variant, run) in variants() {
                let (ih, iw, c) = shape;
                let op = op(shape, kernel, stride, same, clamp);
                let x: Vec<f32> = (0..ih * iw * c)
                    .map(|i| ((i * 31 % 17) as f32 - 8.0) / 3.0)
                    .collect();
                let mut y = vec![f32::NAN; op.out_hw.0 * op.out_hw.1 * c];
                run(&op, &x, &mut y);
                let want = reference(&op, &x);
                for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{variant}, case {ih}x{iw}x{c} {kernel:?} s{stride}: {i}: {a} vs {b}"
                    );
                }
                if let Some((lo, hi)) = clamp {
                    assert!(y.iter().all(|v| (lo..=hi).contains(v)));
                }
            }
        }
    }

    #[test]
    fn rows_split_over_threads_give_the_same_output() {
        use tract_linalg::multithread::{multithread_tract_scope, Executor};
        let op = op((75, 75, 144), (3, 3), 2, true, Some((0.0, 6.0)));
        let x: Vec<f32> = (0..75 * 75 * 144)
            .map(|i| ((i * 31 % 17) as f32 - 8.0) / 3.0)
            .collect();
        let len = op.out_hw.0 * op.out_hw.1 * 144;
        let (mut single, mut multi) = (vec![f32::NAN; len], vec![f32::NAN; len]);
        op.compute(&x, &mut single);
        multithread_tract_scope(Executor::multithread(2), || op.compute(&x, &mut multi));
        assert_eq!(single, multi);
        assert!(single.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn eight_bit_input_and_output_match_quantizing_around_the_f32_op() {
        use crate::inference::elems::{dequantize, quantize_slice};
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
        for (shape, stride) in [((9, 7, 33), 2), ((12, 10, 96), 1), ((5, 5, 16), 2)] {
            let (ih, iw, c) = shape;
            let mut base = op(shape, (3, 3), stride, true, Some((0.0, 6.0)));
            base.input_quant = Some(qin);
            base.output_quant = Some(qout);
            let q: Vec<u8> = (0..ih * iw * c).map(|i| (i * 37 % 256) as u8).collect();
            let x = dequantize(&q, qin);
            let len = base.out_hw.0 * base.out_hw.1 * c;
            let mut y = vec![0f32; len];
            base.compute(&x, &mut y);
            let mut want = vec![0u8; len];
            quantize_slice(&y, qout, &mut want);
            let u8_op = FusedDepthwise {
                u8_input: true,
                u8_output: true,
                ..base.clone()
            };
            let mut got = vec![0u8; len];
            u8_op.compute_any(In::U8(&q), Out::U8(&mut got));
            // The same arithmetic; at most a rounding tie apart.
            let worst = got.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max();
            assert!(worst <= Some(1), "{shape:?}: {worst:?}");
            let mut got_f32 = vec![0f32; len];
            u8_op.compute_any(In::U8(&q), Out::F32(&mut got_f32));
            for (a, b) in got_f32.iter().zip(&y) {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}
