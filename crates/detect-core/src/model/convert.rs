//! Quantized SSD TFLite model → float32 TFLite model that stock tract-tflite can load.
//!
//! tract-tflite 0.23 cannot run the quantized Coral model (mixed-scale quantized ADD and
//! CONCATENATION, LOGISTIC keeping its input's quantization, the CUSTOM postprocess op), and
//! its op registry is private. So we rewrite the flatbuffer instead: every quantized tensor
//! becomes FLOAT32 with its constants dequantized, the activations that only the quantized
//! output ranges expressed are restored as fused RELU/RELU6, and the
//! `TFLite_Detection_PostProcess` op is cut off; its inputs (box encodings and class scores)
//! become the graph outputs and its anchors and options are returned for the Rust postprocess.

use flatbuffers::{FlatBufferBuilder, ForwardsUOffset, UnionWIPOffset, Vector, WIPOffset};
use tract_tflite::tflite;
use tract_tflite::tflite::{
    ActivationFunctionType as Act, BuiltinOperator as Op, BuiltinOptions, TensorType,
};

use super::postprocess_options::{parse_postprocess_options, POSTPROCESS_OP};
use super::ModelError;
use crate::postprocess::{Anchor, PostprocessParams};

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

/// Counts that tell what the conversion did (logged, and checked by tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversionStats {
    pub operators: usize,
    pub dequantized_constants: usize,
    pub relu_restored: usize,
    pub relu6_restored: usize,
    /// 1x1 convolutions kept in 8 bits for the integer kernel.
    pub int8_convs: usize,
}

/// Output of [`convert`]: a float model for tract plus what the postprocess needs.
pub struct ConvertedModel {
    pub float_tflite: Vec<u8>,
    pub input: InputSpec,
    pub anchors: Vec<Anchor>,
    pub params: PostprocessParams,
    /// Number of classes in the score output, background column included.
    pub score_columns: usize,
    /// Depthwise convolutions (by output tensor name) written without their activation, with
    /// the clamp it implies, for the inference stage to run as one fused op.
    pub fused_depthwise: std::collections::HashMap<String, DepthwiseSite>,
    /// Convolutions kept in 8 bits for the integer kernel, in graph order. They are not in the
    /// float model: each one's output is an extra graph input there, and its input an extra
    /// graph output, for the inference stage to connect through the 8-bit op.
    pub int8_convs: Vec<Int8ConvSite>,
    pub stats: ConversionStats,
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

/// What the conversion may keep in 8 bits instead of converting to float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Hand convolutions with 8-bit weights and activations to the integer kernel
    /// ([`ConvertedModel::quantized_convs`]); only worth it where that kernel is fast.
    pub int8_convs: bool,
}

/// Where an 8-bit convolution sits in the float model.
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
    /// `[out_channels][kernel_h][kernel_w][in_channels]`, as signed 8-bit values (uint8 weights are shifted by -128
    /// together with their zero points, which leaves every difference unchanged).
    pub weights: Vec<i8>,
    pub weight_zero_points: Vec<i32>,
    pub weight_scales: Vec<f32>,
    pub bias: Vec<f32>,
    /// Output clamp (ReLU: (0, inf), ReLU6: (0, 6)).
    pub clamp: Option<(f32, f32)>,
    /// The output tensor's quantization in the original model, if it is 8-bit.
    pub output_quant: Option<TensorQuant>,
}

/// Builtin ops the rewrite knows how to carry over (their options are copied field by field).
const SUPPORTED_OPS: &[Op] = &[
    Op::CONV_2D,
    Op::DEPTHWISE_CONV_2D,
    Op::ADD,
    Op::CONCATENATION,
    Op::RESHAPE,
    Op::LOGISTIC,
    Op::AVERAGE_POOL_2D,
    Op::MAX_POOL_2D,
];

fn op_code(
    model: &tflite::Model,
    op: &tflite::Operator,
) -> Result<(Op, Option<String>), ModelError> {
    let codes = model
        .operator_codes()
        .ok_or_else(|| ModelError::invalid("the model has no operator codes"))?;
    let index = op.opcode_index() as usize;
    if index >= codes.len() {
        return Err(ModelError::invalid(format!(
            "operator code index {index} out of range"
        )));
    }
    let code = codes.get(index);
    // Newer files store codes > 127 in builtin_code; the deprecated i8 field is a placeholder.
    let builtin = if code.deprecated_builtin_code() as i32 == Op::PLACEHOLDER_FOR_GREATER_OP_CODES.0
    {
        code.builtin_code()
    } else {
        Op(code.deprecated_builtin_code() as i32)
    };
    Ok((builtin, code.custom_code().map(str::to_string)))
}

fn op_name(op: Op, custom: &Option<String>) -> String {
    match custom {
        Some(c) if op == Op::CUSTOM => format!("CUSTOM {c}"),
        _ => op
            .variant_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("builtin #{}", op.0)),
    }
}

struct Tensors<'a> {
    list: Vector<'a, ForwardsUOffset<tflite::Tensor<'a>>>,
}

impl<'a> Tensors<'a> {
    fn get(&self, index: i32) -> Result<tflite::Tensor<'a>, ModelError> {
        if index < 0 || index as usize >= self.list.len() {
            return Err(ModelError::invalid(format!(
                "tensor index {index} out of range"
            )));
        }
        Ok(self.list.get(index as usize))
    }
}

fn name_of(t: &tflite::Tensor) -> String {
    t.name().unwrap_or("<unnamed>").to_string()
}

/// Per-tensor or per-axis quantization, as far as float conversion needs it.
struct Quant {
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    axis: usize,
}

fn quantization(t: &tflite::Tensor) -> Option<Quant> {
    let q = t.quantization()?;
    let scales: Vec<f32> = q.scale()?.iter().collect();
    if scales.is_empty() {
        return None;
    }
    let zero_points: Vec<i64> = match q.zero_point() {
        Some(z) if !z.is_empty() => z.iter().collect(),
        _ => vec![0; scales.len()],
    };
    Some(Quant {
        scales,
        zero_points,
        axis: q.quantized_dimension().max(0) as usize,
    })
}

fn shape_of(t: &tflite::Tensor) -> Result<Vec<usize>, ModelError> {
    let shape = t
        .shape()
        .map(|s| s.iter().collect::<Vec<i32>>())
        .unwrap_or_default();
    shape
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                ModelError::unsupported(format!(
                    "tensor '{}' has a dynamic or negative dimension {d}",
                    name_of(t)
                ))
            })
        })
        .collect()
}

/// Raw little-endian values of a constant tensor, widened to f64 so one path serves all types.
fn raw_values(t: &tflite::Tensor, data: &[u8]) -> Result<Vec<f64>, ModelError> {
    fn chunks<const N: usize, T>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        data.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect()
    }
    let ty = t.type_();
    let values = match ty {
        TensorType::UINT8 => data.iter().map(|&v| v as f64).collect(),
        TensorType::INT8 => data.iter().map(|&v| v as i8 as f64).collect(),
        TensorType::INT16 => chunks::<2, _>(data, |b| i16::from_le_bytes(b) as f64),
        TensorType::INT32 => chunks::<4, _>(data, |b| i32::from_le_bytes(b) as f64),
        TensorType::INT64 => chunks::<8, _>(data, |b| i64::from_le_bytes(b) as f64),
        TensorType::FLOAT32 => chunks::<4, _>(data, |b| f32::from_le_bytes(b) as f64),
        other => {
            return Err(ModelError::unsupported(format!(
                "constant tensor '{}' has type {}, which the float conversion cannot read",
                name_of(t),
                other.variant_name().unwrap_or("unknown")
            )))
        }
    };
    Ok(values)
}

fn element_size(ty: TensorType) -> Option<usize> {
    match ty {
        TensorType::UINT8 | TensorType::INT8 => Some(1),
        TensorType::INT16 => Some(2),
        TensorType::INT32 | TensorType::FLOAT32 => Some(4),
        TensorType::INT64 => Some(8),
        _ => None,
    }
}

/// Dequantize a constant tensor to f32 (`real = scale * (q - zero_point)`, per axis if needed).
fn dequantize(t: &tflite::Tensor, data: &[u8], q: &Quant) -> Result<Vec<f32>, ModelError> {
    let shape = shape_of(t)?;
    let count: usize = shape.iter().product();
    let size = element_size(t.type_()).unwrap_or(0);
    if size == 0 || data.len() != count * size {
        return Err(ModelError::invalid(format!(
            "constant tensor '{}' holds {} bytes, its shape {:?} needs {}",
            name_of(t),
            data.len(),
            shape,
            count * size.max(1)
        )));
    }
    let channels = q.scales.len();
    // The common case, 8-bit per-tensor: a 256-entry table instead of arithmetic per element.
    if channels == 1 && matches!(t.type_(), TensorType::UINT8 | TensorType::INT8) {
        let signed = t.type_() == TensorType::INT8;
        let (s, z) = (q.scales[0] as f64, q.zero_points[0] as f64);
        let table: Vec<f32> = (0..=255u8)
            .map(|b| {
                let v = if signed { b as i8 as f64 } else { b as f64 };
                (s * (v - z)) as f32
            })
            .collect();
        return Ok(data.iter().map(|&b| table[b as usize]).collect());
    }
    let raw = raw_values(t, data)?;
    if channels == 1 {
        let (s, z) = (q.scales[0] as f64, q.zero_points[0] as f64);
        return Ok(raw.iter().map(|&v| (s * (v - z)) as f32).collect());
    }
    // Per-axis: the channel of element i is its index along `axis`.
    if q.axis >= shape.len() || shape[q.axis] != channels || q.zero_points.len() != channels {
        return Err(ModelError::invalid(format!(
            "tensor '{}' has {} per-axis scales that do not match axis {} of shape {:?}",
            name_of(t),
            channels,
            q.axis,
            shape
        )));
    }
    let inner: usize = shape[q.axis + 1..].iter().product();
    Ok(raw
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / inner) % channels;
            (q.scales[c] as f64 * (v - q.zero_points[c] as f64)) as f32
        })
        .collect())
}

/// The activation a quantized output range implies. The Coral model fuses no activation;
/// its ReLU6 exists only as an output range of [0, 6] (zero point at the bottom of the range).
fn implied_activation(t: &tflite::Tensor) -> Act {
    let Some(q) = quantization(t) else {
        return Act::NONE;
    };
    if q.scales.len() != 1 {
        return Act::NONE;
    }
    let (qmin, qmax) = match t.type_() {
        TensorType::UINT8 => (0.0, 255.0),
        TensorType::INT8 => (-128.0, 127.0),
        _ => return Act::NONE,
    };
    let zp = q.zero_points[0] as f32;
    if zp != qmin {
        return Act::NONE;
    }
    let top = q.scales[0] * (qmax - zp);
    // One quantization step of tolerance: a range ending at 6 is a clipped ReLU6.
    if (top - 6.0).abs() <= q.scales[0] {
        Act::RELU6
    } else {
        Act::RELU
    }
}

/// Rebuild one operator's builtin options, with `act` as the fused activation where it has one.
fn copy_options<'fb>(
    fbb: &mut FlatBufferBuilder<'fb>,
    op: &tflite::Operator,
    code: Op,
    act: Option<Act>,
) -> Result<(BuiltinOptions, Option<WIPOffset<UnionWIPOffset>>), ModelError> {
    let missing = || {
        ModelError::invalid(format!(
            "operator {:?} lacks its options",
            code.variant_name()
        ))
    };
    let pick = |own: Act| act.unwrap_or(own);
    Ok(match code {
        Op::CONV_2D => {
            let o = op
                .builtin_options_as_conv_2_doptions()
                .ok_or_else(missing)?;
            let args = tflite::Conv2DOptionsArgs {
                padding: o.padding(),
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                fused_activation_function: pick(o.fused_activation_function()),
                dilation_w_factor: o.dilation_w_factor(),
                dilation_h_factor: o.dilation_h_factor(),
            };
            let off = tflite::Conv2DOptions::create(fbb, &args);
            (BuiltinOptions::Conv2DOptions, Some(off.as_union_value()))
        }
        Op::DEPTHWISE_CONV_2D => {
            let o = op
                .builtin_options_as_depthwise_conv_2_doptions()
                .ok_or_else(missing)?;
            let args = tflite::DepthwiseConv2DOptionsArgs {
                padding: o.padding(),
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                depth_multiplier: o.depth_multiplier(),
                fused_activation_function: pick(o.fused_activation_function()),
                dilation_w_factor: o.dilation_w_factor(),
                dilation_h_factor: o.dilation_h_factor(),
            };
            let off = tflite::DepthwiseConv2DOptions::create(fbb, &args);
            (
                BuiltinOptions::DepthwiseConv2DOptions,
                Some(off.as_union_value()),
            )
        }
        Op::ADD => {
            let own = op
                .builtin_options_as_add_options()
                .map(|o| o.fused_activation_function())
                .unwrap_or(Act::NONE);
            let args = tflite::AddOptionsArgs {
                fused_activation_function: pick(own),
                pot_scale_int16: false,
            };
            let off = tflite::AddOptions::create(fbb, &args);
            (BuiltinOptions::AddOptions, Some(off.as_union_value()))
        }
        Op::CONCATENATION => {
            let o = op
                .builtin_options_as_concatenation_options()
                .ok_or_else(missing)?;
            let args = tflite::ConcatenationOptionsArgs {
                axis: o.axis(),
                fused_activation_function: pick(o.fused_activation_function()),
            };
            let off = tflite::ConcatenationOptions::create(fbb, &args);
            (
                BuiltinOptions::ConcatenationOptions,
                Some(off.as_union_value()),
            )
        }
        Op::RESHAPE => match op.builtin_options_as_reshape_options() {
            Some(o) => {
                let new_shape = o
                    .new_shape()
                    .map(|s| fbb.create_vector(&s.iter().collect::<Vec<i32>>()));
                let off =
                    tflite::ReshapeOptions::create(fbb, &tflite::ReshapeOptionsArgs { new_shape });
                (BuiltinOptions::ReshapeOptions, Some(off.as_union_value()))
            }
            None => (BuiltinOptions::NONE, None),
        },
        Op::AVERAGE_POOL_2D | Op::MAX_POOL_2D => {
            let o = op
                .builtin_options_as_pool_2_doptions()
                .ok_or_else(missing)?;
            let args = tflite::Pool2DOptionsArgs {
                padding: o.padding(),
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                filter_width: o.filter_width(),
                filter_height: o.filter_height(),
                fused_activation_function: pick(o.fused_activation_function()),
            };
            let off = tflite::Pool2DOptions::create(fbb, &args);
            (BuiltinOptions::Pool2DOptions, Some(off.as_union_value()))
        }
        _ => (BuiltinOptions::NONE, None),
    })
}

fn has_fused_activation(code: Op) -> bool {
    matches!(
        code,
        Op::CONV_2D
            | Op::DEPTHWISE_CONV_2D
            | Op::ADD
            | Op::CONCATENATION
            | Op::AVERAGE_POOL_2D
            | Op::MAX_POOL_2D
    )
}

/// Convert a (quantized or float) SSD TFLite model with a `TFLite_Detection_PostProcess` op,
/// everything to float.
pub fn convert(bytes: &[u8]) -> Result<ConvertedModel, ModelError> {
    convert_with(bytes, &ConvertOptions::default())
}

/// [`convert`], keeping what `options` allow in 8 bits.
pub fn convert_with(bytes: &[u8], options: &ConvertOptions) -> Result<ConvertedModel, ModelError> {
    let model = tflite::root_as_model(bytes)
        .map_err(|e| ModelError::invalid(format!("not a TFLite flatbuffer: {e}")))?;
    let subgraphs = model
        .subgraphs()
        .ok_or_else(|| ModelError::invalid("no subgraphs"))?;
    if subgraphs.is_empty() {
        return Err(ModelError::invalid("no subgraphs"));
    }
    let graph = subgraphs.get(0);
    let tensors = Tensors {
        list: graph
            .tensors()
            .ok_or_else(|| ModelError::invalid("the graph has no tensors"))?,
    };
    let operators = graph
        .operators()
        .ok_or_else(|| ModelError::invalid("the graph has no operators"))?;
    let buffers = model
        .buffers()
        .ok_or_else(|| ModelError::invalid("the model has no buffers"))?;
    let buffer_data = |t: &tflite::Tensor| -> Option<&[u8]> {
        let index = t.buffer() as usize;
        if index == 0 || index >= buffers.len() {
            return None;
        }
        buffers
            .get(index)
            .data()
            .map(|d| d.bytes())
            .filter(|d| !d.is_empty())
    };

    // Locate the postprocess op and check every other op is one we can carry over.
    let mut postprocess = None;
    for (i, op) in operators.iter().enumerate() {
        let (code, custom) = op_code(&model, &op)?;
        if code == Op::CUSTOM && custom.as_deref() == Some(POSTPROCESS_OP) {
            if postprocess.is_some() {
                return Err(ModelError::unsupported(format!(
                    "more than one {POSTPROCESS_OP} op"
                )));
            }
            postprocess = Some(op);
        } else if !SUPPORTED_OPS.contains(&code) {
            let output = op
                .outputs()
                .and_then(|o| o.iter().next())
                .and_then(|o| tensors.get(o).ok())
                .map(|t| name_of(&t))
                .unwrap_or_default();
            return Err(ModelError::unsupported(format!(
                "operator #{i} ({}, output tensor '{output}') is not supported; supported: {}",
                op_name(code, &custom),
                SUPPORTED_OPS
                    .iter()
                    .filter_map(|o| o.variant_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let postprocess = postprocess.ok_or_else(|| {
        ModelError::unsupported(format!(
            "the model has no {POSTPROCESS_OP} op: only SSD-style detection models are supported"
        ))
    })?;
    let pp_inputs: Vec<i32> = postprocess
        .inputs()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if pp_inputs.len() != 3 {
        return Err(ModelError::invalid(format!(
            "{POSTPROCESS_OP} takes 3 inputs (boxes, scores, anchors), found {}",
            pp_inputs.len()
        )));
    }
    let params = parse_postprocess_options(
        postprocess
            .custom_options()
            .map(|v| v.bytes())
            .unwrap_or_default(),
    )?;

    // Anchors: a constant [N, 4] tensor (yc, xc, h, w), quantized or float.
    let anchor_tensor = tensors.get(pp_inputs[2])?;
    let anchor_data = buffer_data(&anchor_tensor).ok_or_else(|| {
        ModelError::unsupported(format!(
            "anchors tensor '{}' is not a constant",
            name_of(&anchor_tensor)
        ))
    })?;
    let anchor_values = match quantization(&anchor_tensor) {
        Some(q) => dequantize(&anchor_tensor, anchor_data, &q)?,
        None if anchor_tensor.type_() == TensorType::FLOAT32 => {
            raw_values(&anchor_tensor, anchor_data)?
                .into_iter()
                .map(|v| v as f32)
                .collect()
        }
        None => {
            return Err(ModelError::unsupported(
                "anchors are neither float nor quantized",
            ))
        }
    };
    let anchor_shape = shape_of(&anchor_tensor)?;
    if anchor_shape.len() != 2 || anchor_shape[1] != 4 || anchor_values.len() != anchor_shape[0] * 4
    {
        return Err(ModelError::invalid(format!(
            "anchors have shape {anchor_shape:?}, expected [N, 4]"
        )));
    }
    let anchors: Vec<Anchor> = anchor_values
        .chunks_exact(4)
        .map(|a| Anchor {
            yc: a[0],
            xc: a[1],
            h: a[2],
            w: a[3],
        })
        .collect();

    // The two postprocess inputs must be [1, N, 4] and [1, N, classes].
    let boxes_shape = shape_of(&tensors.get(pp_inputs[0])?)?;
    let scores_shape = shape_of(&tensors.get(pp_inputs[1])?)?;
    let n = anchors.len();
    if boxes_shape.last() != Some(&4) || boxes_shape.iter().product::<usize>() != n * 4 {
        return Err(ModelError::invalid(format!(
            "box encodings have shape {boxes_shape:?}, expected [1, {n}, 4]"
        )));
    }
    let score_columns = *scores_shape.last().unwrap_or(&0);
    if score_columns == 0 || scores_shape.iter().product::<usize>() != n * score_columns {
        return Err(ModelError::invalid(format!(
            "class scores have shape {scores_shape:?}, expected [1, {n}, classes]"
        )));
    }
    if score_columns != params.num_classes + 1 && score_columns != params.num_classes {
        return Err(ModelError::invalid(format!(
            "scores have {score_columns} columns but the postprocess expects {} classes",
            params.num_classes
        )));
    }

    // Graph input.
    let inputs: Vec<i32> = graph
        .inputs()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if inputs.len() != 1 {
        return Err(ModelError::unsupported(format!(
            "the model has {} inputs, expected 1 image",
            inputs.len()
        )));
    }
    let input_tensor = tensors.get(inputs[0])?;
    let input_shape = shape_of(&input_tensor)?;
    if input_shape.len() != 4 || input_shape[0] != 1 || input_shape[3] != 3 {
        return Err(ModelError::unsupported(format!(
            "input '{}' has shape {input_shape:?}, expected [1, height, width, 3]",
            name_of(&input_tensor)
        )));
    }
    let input_quantization = match (input_tensor.type_(), quantization(&input_tensor)) {
        (TensorType::UINT8 | TensorType::INT8, Some(q)) if q.scales.len() == 1 => {
            // An int8 input holds pixel-128; fold that into the zero point so the preprocess
            // always works on 0..=255 pixels.
            let shift = if input_tensor.type_() == TensorType::INT8 {
                128.0
            } else {
                0.0
            };
            InputQuantization {
                scale: q.scales[0],
                zero_point: q.zero_points[0] as f32 + shift,
            }
        }
        // A float model: SSD MobileNet's float convention, (x - 127.5) / 127.5.
        (TensorType::FLOAT32, None) => InputQuantization {
            scale: 1.0 / 127.5,
            zero_point: 127.5,
        },
        (ty, _) => {
            return Err(ModelError::unsupported(format!(
                "input '{}' has type {:?}, expected uint8/int8 quantized or float32",
                name_of(&input_tensor),
                ty.variant_name()
            )))
        }
    };
    let input = InputSpec {
        name: name_of(&input_tensor),
        height: input_shape[1],
        width: input_shape[2],
        channels: 3,
        quantization: input_quantization,
    };

    // Convolutions that stay in 8 bits: found first, so their weights are never converted.
    let mut int8_ops = std::collections::HashMap::new();
    if options.int8_convs {
        let mut uses = vec![0usize; tensors.list.len()];
        for op in operators.iter() {
            for t in op
                .inputs()
                .map(|v| v.iter().collect::<Vec<i32>>())
                .unwrap_or_default()
            {
                if t >= 0 && (t as usize) < uses.len() {
                    uses[t as usize] += 1;
                }
            }
        }
        for (i, op) in operators.iter().enumerate() {
            if op_code(&model, &op)?.0 != Op::CONV_2D {
                continue;
            }
            let op_inputs: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
            let outputs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
            let (Some(&out), 3) = (outputs.first(), op_inputs.len()) else {
                continue;
            };
            // Weights and bias used by this op alone (so nothing else needs them in float).
            if op_inputs[1..]
                .iter()
                .any(|&t| t < 0 || uses.get(t as usize) != Some(&1))
            {
                continue;
            }
            let implied = implied_activation(&tensors.get(out)?);
            let act = (implied != Act::NONE).then_some(implied);
            if let Some(spec) = int8_conv_spec(&op, &op_inputs, &tensors, &buffer_data, act)? {
                int8_ops.insert(i, spec);
            }
        }
    }
    let int8_constants: std::collections::HashSet<i32> = int8_ops
        .keys()
        .flat_map(|&i| {
            let op = operators.get(i);
            let inputs: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
            inputs.into_iter().skip(1)
        })
        .collect();

    // Rewrite.
    let mut stats = ConversionStats::default();
    let mut fbb = FlatBufferBuilder::with_capacity(bytes.len() * 4 + 1024);
    let mut new_buffers = vec![tflite::Buffer::create(
        &mut fbb,
        &tflite::BufferArgs { data: None },
    )];
    let mut new_tensors = Vec::with_capacity(tensors.list.len());
    for (i, t) in tensors.list.iter().enumerate() {
        if i as i32 == pp_inputs[2] || int8_constants.contains(&(i as i32)) {
            // The anchors feed only the postprocess op, which is gone; the 8-bit convolutions'
            // weights and biases stay with them.
            let name = fbb.create_string(&name_of(&t));
            new_tensors.push(tflite::Tensor::create(
                &mut fbb,
                &tflite::TensorArgs {
                    name: Some(name),
                    ..Default::default()
                },
            ));
            continue;
        }
        let quant = quantization(&t);
        let shape = t
            .shape()
            .map(|s| s.iter().collect::<Vec<i32>>())
            .unwrap_or_default();
        let (ty, data) = match (&quant, buffer_data(&t)) {
            (Some(q), Some(data)) => {
                stats.dequantized_constants += 1;
                (
                    TensorType::FLOAT32,
                    Some(f32_bytes(&dequantize(&t, data, q)?)),
                )
            }
            (Some(_), None) => (TensorType::FLOAT32, None),
            // Unquantized constants (e.g. RESHAPE's int32 shape) keep their type: tract reads them.
            (None, Some(data)) => (t.type_(), Some(data.to_vec())),
            (None, None) => match t.type_() {
                TensorType::FLOAT32 => (TensorType::FLOAT32, None),
                TensorType::UINT8 | TensorType::INT8 => (TensorType::FLOAT32, None),
                other => (other, None),
            },
        };
        let buffer = match data {
            Some(bytes) => {
                let v = fbb.create_vector(&bytes);
                new_buffers.push(tflite::Buffer::create(
                    &mut fbb,
                    &tflite::BufferArgs { data: Some(v) },
                ));
                (new_buffers.len() - 1) as u32
            }
            None => 0,
        };
        let shape = fbb.create_vector(&shape);
        let name = fbb.create_string(&name_of(&t));
        new_tensors.push(tflite::Tensor::create(
            &mut fbb,
            &tflite::TensorArgs {
                shape: Some(shape),
                type_: ty,
                buffer,
                name: Some(name),
                ..Default::default()
            },
        ));
    }

    let mut codes = Vec::new();
    let mut code_index = std::collections::HashMap::new();
    let mut fused_depthwise = std::collections::HashMap::new();
    let mut int8_convs = Vec::new();
    let mut graph_inputs = inputs.clone();
    let mut graph_outputs = vec![pp_inputs[0], pp_inputs[1]];
    let mut new_ops = Vec::new();
    for (op_index, op) in operators.iter().enumerate() {
        let (code, _) = op_code(&model, &op)?;
        if code == Op::CUSTOM {
            continue;
        }
        let index = *code_index.entry(code.0).or_insert_with(|| {
            codes.push(code);
            codes.len() - 1
        });
        let outputs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
        let op_inputs: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
        if op_inputs
            .iter()
            .chain(&outputs)
            .any(|&t| t < 0 || t as usize >= tensors.list.len())
        {
            return Err(ModelError::unsupported(format!(
                "operator {} has an optional or out-of-range tensor index",
                op_name(code, &None)
            )));
        }
        let mut act = None;
        if has_fused_activation(code) {
            let out = tensors.get(*outputs.first().unwrap_or(&-1))?;
            let implied = implied_activation(&out);
            if implied != Act::NONE {
                match implied {
                    Act::RELU6 => stats.relu6_restored += 1,
                    _ => stats.relu_restored += 1,
                }
                act = Some(implied);
            }
        }
        if code == Op::DEPTHWISE_CONV_2D {
            let constant = |i: usize| {
                op_inputs
                    .get(i)
                    .and_then(|&t| tensors.get(t).ok())
                    .is_some_and(|t| buffer_data(&t).is_some())
            };
            let weights_constant = constant(1) && constant(2);
            if let Some(clamp) =
                fusable_depthwise(&op, &op_inputs, &tensors, weights_constant, act)?
            {
                let out = tensors.get(outputs[0])?;
                let site = DepthwiseSite {
                    clamp,
                    input_quant: quant8(&tensors.get(op_inputs[0])?),
                    output_quant: quant8(&out),
                };
                fused_depthwise.insert(name_of(&out), site);
                act = Some(Act::NONE);
            }
        }
        if let Some(spec) = int8_ops.remove(&op_index) {
            let graph_output = match graph_outputs.iter().position(|&t| t == op_inputs[0]) {
                Some(at) => at,
                None => {
                    graph_outputs.push(op_inputs[0]);
                    graph_outputs.len() - 1
                }
            };
            graph_inputs.push(outputs[0]);
            int8_convs.push(Int8ConvSite {
                name: name_of(&tensors.get(outputs[0])?),
                graph_input: graph_inputs.len() - 1,
                graph_output,
                spec,
            });
            stats.int8_convs += 1;
            stats.operators += 1;
            continue;
        }
        let (options_type, options) = copy_options(&mut fbb, &op, code, act)?;
        let inputs = fbb.create_vector(&op_inputs);
        let outputs = fbb.create_vector(&outputs);
        new_ops.push(tflite::Operator::create(
            &mut fbb,
            &tflite::OperatorArgs {
                opcode_index: index as u32,
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type: options_type,
                builtin_options: options,
                ..Default::default()
            },
        ));
        stats.operators += 1;
    }
    let codes: Vec<_> = codes
        .iter()
        .map(|&code| {
            tflite::OperatorCode::create(
                &mut fbb,
                &tflite::OperatorCodeArgs {
                    deprecated_builtin_code: code.0.min(Op::PLACEHOLDER_FOR_GREATER_OP_CODES.0)
                        as i8,
                    builtin_code: code,
                    version: 1,
                    custom_code: None,
                },
            )
        })
        .collect();

    let tensors_v = fbb.create_vector(&new_tensors);
    let ops_v = fbb.create_vector(&new_ops);
    let inputs_v = fbb.create_vector(&graph_inputs);
    let outputs_v = fbb.create_vector(&graph_outputs);
    let subgraph_name = fbb.create_string("float");
    let subgraph = tflite::SubGraph::create(
        &mut fbb,
        &tflite::SubGraphArgs {
            tensors: Some(tensors_v),
            inputs: Some(inputs_v),
            outputs: Some(outputs_v),
            operators: Some(ops_v),
            name: Some(subgraph_name),
        },
    );
    let subgraphs_v = fbb.create_vector(&[subgraph]);
    let codes_v = fbb.create_vector(&codes);
    let buffers_v = fbb.create_vector(&new_buffers);
    let description = fbb.create_string("float32 rebuild by lambda-detect");
    let root = tflite::Model::create(
        &mut fbb,
        &tflite::ModelArgs {
            version: 3,
            operator_codes: Some(codes_v),
            subgraphs: Some(subgraphs_v),
            description: Some(description),
            buffers: Some(buffers_v),
            ..Default::default()
        },
    );
    tflite::finish_model_buffer(&mut fbb, root);

    Ok(ConvertedModel {
        float_tflite: {
            // Take the builder's buffer rather than copying it: the float model is ~24 MB.
            let (mut buffer, start) = fbb.collapse();
            buffer.drain(..start);
            buffer
        },
        input,
        anchors,
        params,
        score_columns,
        stats,
        fused_depthwise,
        int8_convs,
    })
}

/// Whether a depthwise op can run as the fused depthwise kernel (multiplier 1, no dilation,
/// constant kernel and bias, an activation that is a clamp); if so, the clamp.
fn fusable_depthwise(
    op: &tflite::Operator,
    inputs: &[i32],
    tensors: &Tensors,
    weights_constant: bool,
    act: Option<Act>,
) -> Result<Option<Option<(f32, f32)>>, ModelError> {
    let Some(o) = op.builtin_options_as_depthwise_conv_2_doptions() else {
        return Ok(None);
    };
    if inputs.len() != 3 || o.dilation_h_factor() != 1 || o.dilation_w_factor() != 1 {
        return Ok(None);
    }
    let input = shape_of(&tensors.get(inputs[0])?)?;
    let kernel = tensors.get(inputs[1])?;
    let kernel_shape = shape_of(&kernel)?;
    if input.len() != 4
        || kernel_shape.len() != 4
        || kernel_shape[3] != input[3]
        || kernel_shape[0] != 1
    {
        return Ok(None);
    }
    if !weights_constant {
        return Ok(None);
    }
    Ok(clamp_of(act.unwrap_or(o.fused_activation_function())))
}

/// An 8-bit activation tensor's quantization, if it has one scale and a zero point in range.
fn quant8(t: &tflite::Tensor) -> Option<TensorQuant> {
    let shift = match t.type_() {
        TensorType::UINT8 => 0,
        TensorType::INT8 => 128,
        _ => return None,
    };
    let q = quantization(t)?;
    let zero_point = q.zero_points[0] + shift;
    (q.scales.len() == 1
        && q.scales[0].is_finite()
        && q.scales[0] > 0.0
        && (0..=255).contains(&zero_point))
    .then_some(TensorQuant {
        scale: q.scales[0],
        zero_point: zero_point as i32,
    })
}

/// The clamp an activation stands for, if it is one.
fn clamp_of(act: Act) -> Option<Option<(f32, f32)>> {
    match act {
        Act::NONE => Some(None),
        Act::RELU => Some(Some((0.0, f32::INFINITY))),
        Act::RELU6 => Some(Some((0.0, 6.0))),
        Act::RELU_N1_TO_1 => Some(Some((-1.0, 1.0))),
        _ => None,
    }
}

/// Whether a CONV_2D is one the 8-bit kernel can run (no dilation, 8-bit input with one scale,
/// constant 8-bit weights quantized per tensor or per output channel, constant int32 bias, an
/// activation that is a clamp); if so, its spec.
fn int8_conv_spec<'a>(
    op: &tflite::Operator,
    inputs: &[i32],
    tensors: &Tensors<'a>,
    buffer_data: &dyn Fn(&tflite::Tensor<'a>) -> Option<&'a [u8]>,
    act: Option<Act>,
) -> Result<Option<QuantizedConv>, ModelError> {
    let Some(o) = op.builtin_options_as_conv_2_doptions() else {
        return Ok(None);
    };
    if inputs.len() != 3
        || o.stride_h() < 1
        || o.stride_w() < 1
        || o.dilation_h_factor() != 1
        || o.dilation_w_factor() != 1
    {
        return Ok(None);
    }
    let same_padding = match o.padding() {
        tflite::Padding::SAME => true,
        tflite::Padding::VALID => false,
        _ => return Ok(None),
    };
    let Some(clamp) = clamp_of(act.unwrap_or(o.fused_activation_function())) else {
        return Ok(None);
    };
    let (input, kernel, bias) = (
        tensors.get(inputs[0])?,
        tensors.get(inputs[1])?,
        tensors.get(inputs[2])?,
    );
    let kernel_shape = shape_of(&kernel)?;
    let input_shape = shape_of(&input)?;
    let eight_bit = |t: &tflite::Tensor| matches!(t.type_(), TensorType::UINT8 | TensorType::INT8);
    if kernel_shape.len() != 4
        || input_shape.len() != 4
        || input_shape[3] != kernel_shape[3]
        || kernel_shape[1..].contains(&0)
        || (!same_padding && (kernel_shape[1] > input_shape[1] || kernel_shape[2] > input_shape[2]))
        || !eight_bit(&kernel)
        || bias.type_() != TensorType::INT32
    {
        return Ok(None);
    }
    let (out_channels, in_channels) = (kernel_shape[0], kernel_shape[3]);
    let patch = kernel_shape[1] * kernel_shape[2] * in_channels;
    // The input's 8-bit quantization (one scale, zero point in range): what it is quantized with.
    let (Some(qi), Some(qw), Some(qb)) =
        (quant8(&input), quantization(&kernel), quantization(&bias))
    else {
        return Ok(None);
    };
    let (Some(w), Some(b)) = (buffer_data(&kernel), buffer_data(&bias)) else {
        return Ok(None);
    };
    let per_channel = qw.scales.len() == out_channels && qw.axis == 0;
    if !(qw.scales.len() == 1 || per_channel)
        || qw.zero_points.len() != qw.scales.len()
        || w.len() != out_channels * patch
    {
        return Ok(None);
    }
    // Unsigned weights are shifted into the signed range; so are their zero points.
    let w_shift = if kernel.type_() == TensorType::UINT8 {
        128
    } else {
        0
    };
    let weights: Vec<i8> = if w_shift == 128 {
        w.iter().map(|&v| (v ^ 0x80) as i8).collect()
    } else {
        w.iter().map(|&v| v as i8).collect()
    };
    let channel = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    let zp = |i: usize| -> i64 {
        if qw.zero_points.len() == 1 {
            qw.zero_points[0]
        } else {
            qw.zero_points[i]
        }
    };
    let bias = dequantize(&bias, b, &qb)?;
    let weight_zero_points: Vec<i64> = (0..out_channels).map(|i| zp(i) - w_shift).collect();
    // Zero points outside the 8-bit range (a malformed model) could overflow the i32 sums.
    if bias.len() != out_channels || weight_zero_points.iter().any(|z| !(-128..=127).contains(z)) {
        return Ok(None);
    }
    Ok(Some(QuantizedConv {
        in_hw: (input_shape[1], input_shape[2]),
        kernel_hw: (kernel_shape[1], kernel_shape[2]),
        stride: (o.stride_h() as usize, o.stride_w() as usize),
        same_padding,
        in_channels,
        out_channels,
        input_scale: qi.scale,
        input_zero_point: qi.zero_point,
        weights,
        weight_zero_points: weight_zero_points.iter().map(|&z| z as i32).collect(),
        weight_scales: (0..out_channels).map(|i| channel(&qw.scales, i)).collect(),
        bias,
        clamp,
        output_quant: match op.outputs().and_then(|o| o.iter().next()) {
            Some(out) => quant8(&tensors.get(out)?),
            None => None,
        },
    }))
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
