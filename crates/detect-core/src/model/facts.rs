//! What the rest of the pipeline needs to know about the converted model: how the preprocess
//! feeds the input, and where the 8-bit kernels take over from tract. Plain data, no TFLite
//! types, so the preprocess and the kernels depend on these and not on the flatbuffer rewrite.

/// How the float input relates to 8-bit pixels: `real = scale * (pixel - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputQuantization {
    pub scale: f32,
    pub zero_point: f32,
}

/// The graph input as the preprocess must feed it.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub quantization: InputQuantization,
}

/// An 8-bit tensor's quantization, `real = scale * (q - zero_point)`, with `q` unsigned
/// (int8 tensors: zero point + 128).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorQuant {
    pub scale: f32,
    pub zero_point: i32,
}

/// A depthwise convolution for the fused op: its clamp, and its input's and output's 8-bit
/// quantization in the original model (so 8-bit values can be handed between ops).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthwiseSite {
    pub clamp: Option<(f32, f32)>,
    pub input_quant: Option<TensorQuant>,
    pub output_quant: Option<TensorQuant>,
}

/// Where an 8-bit convolution sits in the converted model.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8ConvSite {
    /// The output tensor's name.
    pub name: String,
    /// Index of the stand-in graph input that carries the convolution's output.
    pub graph_input: usize,
    /// Index of the extra graph output that exposes the convolution's input.
    pub graph_output: usize,
    pub spec: QuantizedConv,
}

/// A convolution in the model's own 8-bit arithmetic: for the input patch `a` of an output
/// pixel (unsigned 8-bit; padding reads as the zero point) and output channel `o`,
/// `y[o] = clamp(input_scale * weight_scales[o] *
/// sum_k (a[k] - input_zero_point) * (weights[o][k] - weight_zero_points[o]) + bias[o])`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedConv {
    /// Input height and width (NHWC).
    pub in_hw: (usize, usize),
    pub kernel_hw: (usize, usize),
    pub stride: (usize, usize),
    /// TFLite SAME padding (else VALID).
    pub same_padding: bool,
    pub in_channels: usize,
    pub out_channels: usize,
    pub input_scale: f32,
    /// Zero point of the input as unsigned 8-bit values (for int8 tensors: zero point + 128).
    pub input_zero_point: i32,
    /// `[out_channels][kernel_h][kernel_w][in_channels]`, as signed 8-bit values (uint8 weights
    /// are shifted by -128 together with their zero points, which leaves every difference
    /// unchanged).
    pub weights: Vec<i8>,
    pub weight_zero_points: Vec<i32>,
    pub weight_scales: Vec<f32>,
    pub bias: Vec<f32>,
    /// Output clamp (ReLU: (0, inf), ReLU6: (0, 6)).
    pub clamp: Option<(f32, f32)>,
    /// The output tensor's quantization in the original model, if it is 8-bit.
    pub output_quant: Option<TensorQuant>,
}
