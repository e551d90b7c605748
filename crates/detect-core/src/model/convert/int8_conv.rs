//! Pass `split-int8-convs`: take the convolutions the 8-bit kernel can run out of the float
//! graph, with their weights still in 8 bits.
//!
//! Each one leaves the graph: its input becomes an extra graph output (once, even when several
//! convolutions read it) and its output an extra graph input, for the inference stage to
//! connect through the kernel. Its weights and bias are written as empty placeholders, which
//! is what makes the float model a fraction of its size.

use tract_tflite::tflite;
use tract_tflite::tflite::{ActivationFunctionType as Act, BuiltinOperator as Op, TensorType};

use super::activations::clamp_of;
use super::dequantize::dequantize;
use super::source::{name_of, quant8, quantization, shape_of, Source};
use super::Plan;
use crate::model::{Int8ConvSite, ModelError, QuantizedConv};

/// Find the convolutions to split out (only with [`super::ConvertOptions::int8_convs`]) and
/// record each one's [`Int8ConvSite`], in graph order.
pub(super) fn split_int8_convs(source: &Source, plan: &mut Plan) -> Result<(), ModelError> {
    plan.requires(&["cut-postprocess", "read-input", "restore-activations"])?;
    if !plan.options.int8_convs {
        return Ok(());
    }
    let uses = tensor_uses(source);
    for (i, op) in source.ops.iter().enumerate() {
        if op.code != Op::CONV_2D {
            continue;
        }
        let (Some(&out), 3) = (op.outputs.first(), op.inputs.len()) else {
            continue;
        };
        // Weights and bias used by this op alone (so nothing else needs them in float).
        if op.inputs[1..]
            .iter()
            .any(|&t| t < 0 || uses.get(t as usize) != Some(&1))
        {
            continue;
        }
        let Some(spec) = int8_conv_spec(source, &op.op, &op.inputs, plan.activations[i])? else {
            continue;
        };
        let graph_output = match plan.graph_outputs.iter().position(|&t| t == op.inputs[0]) {
            Some(at) => at,
            None => {
                plan.graph_outputs.push(op.inputs[0]);
                plan.graph_outputs.len() - 1
            }
        };
        plan.graph_inputs.push(out);
        plan.int8_convs.push(Int8ConvSite {
            name: name_of(&source.tensors.get(out)?),
            graph_input: plan.graph_inputs.len() - 1,
            graph_output,
            spec,
        });
        plan.dropped_tensors.extend(&op.inputs[1..]);
        plan.int8_ops.insert(i);
        plan.stats.int8_convs += 1;
    }
    Ok(())
}

/// How many ops read each tensor.
fn tensor_uses(source: &Source) -> Vec<usize> {
    let mut uses = vec![0usize; source.tensors.len()];
    for op in &source.ops {
        for &t in &op.inputs {
            if t >= 0 && (t as usize) < uses.len() {
                uses[t as usize] += 1;
            }
        }
    }
    uses
}

/// Whether a CONV_2D is one the 8-bit kernel can run (no dilation, 8-bit input with one scale,
/// constant 8-bit weights quantized per tensor or per output channel, constant int32 bias, an
/// activation that is a clamp); if so, its spec.
fn int8_conv_spec(
    source: &Source,
    op: &tflite::Operator,
    inputs: &[i32],
    act: Option<Act>,
) -> Result<Option<QuantizedConv>, ModelError> {
    let tensors = &source.tensors;
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
    let (Some(w), Some(b)) = (source.constant(&kernel), source.constant(&bias)) else {
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

#[cfg(test)]
mod tests {
    use super::super::testing::{run_with, TinyModel, IMAGE};
    use super::super::ConvertOptions;
    use super::*;

    const ALL: &[&str] = &[
        "cut-postprocess",
        "read-input",
        "restore-activations",
        "split-int8-convs",
    ];
    const INT8: ConvertOptions = ConvertOptions { int8_convs: true };

    /// A 1x1 convolution of the image to two ReLU6 channels; returns (kernel, bias, output).
    fn add_conv(m: &mut TinyModel, kernel: Option<i32>) -> (i32, i32, i32) {
        let kernel = kernel.unwrap_or_else(|| {
            let weights = vec![128, 129, 130, 127, 126, 255];
            m.tensor(
                "k",
                TensorType::UINT8,
                &[2, 1, 1, 3],
                Some((0.01, 128)),
                Some(weights),
            )
        });
        let bias: Vec<u8> = [256i32, -128]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bias = m.tensor(
            "b",
            TensorType::INT32,
            &[2],
            Some((0.01 / 128.0, 0)),
            Some(bias),
        );
        let out = m.tensor(
            "conv",
            TensorType::UINT8,
            &[1, 4, 4, 2],
            Some((6.0 / 255.0, 0)),
            None,
        );
        m.conv(&[IMAGE, kernel, bias], &[out], 1, Act::NONE);
        (kernel, bias, out)
    }

    #[test]
    fn splits_a_conv_out_with_its_8_bit_arithmetic() {
        let mut m = TinyModel::ssd();
        let (kernel, bias, out) = add_conv(&mut m, None);
        let bytes = m.build();
        let source = Source::parse(&bytes).unwrap();
        let plan = run_with(&source, INT8, ALL).unwrap();
        let [site] = &plan.int8_convs[..] else {
            panic!("one site expected, got {:?}", plan.int8_convs);
        };
        // The image goes out after boxes and scores; the conv's output comes in after the image.
        assert_eq!(
            (site.name.as_str(), site.graph_input, site.graph_output),
            ("conv", 1, 2)
        );
        assert_eq!(plan.graph_inputs, [IMAGE, out]);
        assert_eq!(plan.graph_outputs[2], IMAGE);
        let spec = &site.spec;
        assert_eq!(spec.weights, [0, 1, 2, -1, -2, 127]);
        assert_eq!(spec.weight_zero_points, [0, 0]);
        assert!((spec.bias[0] - 0.02).abs() < 1e-6 && (spec.bias[1] + 0.01).abs() < 1e-6);
        assert_eq!(
            (spec.input_zero_point, spec.in_hw, spec.kernel_hw),
            (128, (4, 4), (1, 1))
        );
        assert_eq!(spec.clamp, Some((0.0, 6.0)));
        assert!(plan.dropped_tensors.contains(&kernel) && plan.dropped_tensors.contains(&bias));
        assert_eq!(plan.stats.int8_convs, 1);
    }

    #[test]
    fn nothing_is_split_unless_asked() {
        let mut m = TinyModel::ssd();
        add_conv(&mut m, None);
        let bytes = m.build();
        let source = Source::parse(&bytes).unwrap();
        let plan = run_with(&source, ConvertOptions::default(), ALL).unwrap();
        assert!(plan.int8_convs.is_empty() && plan.int8_ops.is_empty());
    }

    #[test]
    fn shared_weights_stay_in_float() {
        let mut m = TinyModel::ssd();
        let (kernel, _, _) = add_conv(&mut m, None);
        add_conv(&mut m, Some(kernel));
        let bytes = m.build();
        let source = Source::parse(&bytes).unwrap();
        let plan = run_with(&source, INT8, ALL).unwrap();
        assert!(plan.int8_convs.is_empty());
    }

    #[test]
    fn all_55_convs_of_the_bundled_model_split_out() {
        let source = Source::parse(crate::model::EMBEDDED_MODEL).unwrap();
        let plan = run_with(&source, INT8, ALL).unwrap();
        assert_eq!((plan.int8_convs.len(), plan.int8_ops.len()), (55, 55));
        // Weights and bias of each.
        assert_eq!(plan.dropped_tensors.len(), 1 + 2 * 55);
    }
}
