//! Pass `find-fusable-depthwise`: list the depthwise convolutions the inference stage runs as
//! one fused op (convolution, bias and clamp in a single pass over the data, optionally on
//! 8-bit values), and write them without their activation, which that op applies itself.

use tract_tflite::tflite;
use tract_tflite::tflite::{ActivationFunctionType as Act, BuiltinOperator as Op};

use super::activations::clamp_of;
use super::source::{name_of, quant8, shape_of, Source, Tensors};
use super::Plan;
use crate::model::{DepthwiseSite, ModelError};

/// Record a [`DepthwiseSite`] per fusable depthwise op, by output tensor name, with its clamp
/// (from the activation `restore-activations` found) and its input's and output's 8-bit
/// quantization.
pub(super) fn find_fusable_depthwise(source: &Source, plan: &mut Plan) -> Result<(), ModelError> {
    plan.requires(&["restore-activations"])?;
    for (i, op) in source.ops.iter().enumerate() {
        if op.code != Op::DEPTHWISE_CONV_2D {
            continue;
        }
        let constant = |i: usize| {
            op.inputs
                .get(i)
                .and_then(|&t| source.tensors.get(t).ok())
                .is_some_and(|t| source.constant(&t).is_some())
        };
        let weights_constant = constant(1) && constant(2);
        let act = plan.activations[i];
        if let Some(clamp) =
            fusable_depthwise(&op.op, &op.inputs, &source.tensors, weights_constant, act)?
        {
            let out = source.tensors.get(*op.outputs.first().unwrap_or(&-1))?;
            let site = DepthwiseSite {
                clamp,
                input_quant: quant8(&source.tensors.get(op.inputs[0])?),
                output_quant: quant8(&out),
            };
            plan.fused_depthwise.insert(name_of(&out), site);
            plan.activations[i] = Some(Act::NONE);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use tract_tflite::tflite::TensorType;

    use super::super::testing::{run, TinyModel, IMAGE};
    use super::*;

    /// A depthwise op on the image with a constant 3x3 kernel and bias.
    fn model(dilation: i32, out_quant: (f32, i64)) -> Vec<u8> {
        let mut m = TinyModel::ssd();
        let kernel = m.tensor(
            "k",
            TensorType::UINT8,
            &[1, 3, 3, 3],
            Some((0.01, 128)),
            Some(vec![130; 27]),
        );
        let bias = m.tensor(
            "b",
            TensorType::INT32,
            &[3],
            Some((0.01 / 128.0, 0)),
            Some(vec![0; 12]),
        );
        let out = m.tensor(
            "dw",
            TensorType::UINT8,
            &[1, 4, 4, 3],
            Some(out_quant),
            None,
        );
        m.depthwise(&[IMAGE, kernel, bias], &[out], Act::NONE, dilation);
        m.build()
    }

    #[test]
    fn a_plain_depthwise_is_fused_with_its_restored_clamp() {
        let bytes = model(1, (6.0 / 255.0, 0));
        let source = Source::parse(&bytes).unwrap();
        let plan = run(&source, &["restore-activations", "find-fusable-depthwise"]).unwrap();
        let site = plan.fused_depthwise["dw"];
        assert_eq!(site.clamp, Some((0.0, 6.0)));
        assert_eq!(site.input_quant.map(|q| q.zero_point), Some(128));
        assert_eq!(site.output_quant.map(|q| q.zero_point), Some(0));
        // The fused op clamps; the float op it replaces is written without activation.
        assert_eq!(plan.activations[0], Some(Act::NONE));
    }

    #[test]
    fn a_dilated_depthwise_stays_a_plain_op() {
        let bytes = model(2, (6.0 / 255.0, 0));
        let source = Source::parse(&bytes).unwrap();
        let plan = run(&source, &["restore-activations", "find-fusable-depthwise"]).unwrap();
        assert!(plan.fused_depthwise.is_empty());
        assert_eq!(plan.activations[0], Some(Act::RELU6));
    }

    #[test]
    fn needs_the_restored_activations() {
        let bytes = model(1, (0.1, 128));
        let source = Source::parse(&bytes).unwrap();
        assert!(run(&source, &["find-fusable-depthwise"]).is_err());
    }

    #[test]
    fn all_17_depthwise_ops_of_the_bundled_model_fuse() {
        let source = Source::parse(crate::model::EMBEDDED_MODEL).unwrap();
        let plan = run(&source, &["restore-activations", "find-fusable-depthwise"]).unwrap();
        let depthwise = source
            .ops
            .iter()
            .filter(|op| op.code == Op::DEPTHWISE_CONV_2D)
            .count();
        assert_eq!((plan.fused_depthwise.len(), depthwise), (17, 17));
        assert!(plan
            .fused_depthwise
            .values()
            .all(|s| s.clamp == Some((0.0, 6.0)) && s.input_quant.is_some()));
    }
}
