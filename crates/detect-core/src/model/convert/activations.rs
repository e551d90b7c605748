//! Pass `restore-activations`: bring back the ReLU/ReLU6 that only the quantized output ranges
//! expressed.
//!
//! The Coral model fuses no activation: an 8-bit output whose range starts at 0 clips at 0 (and
//! at 6 when the range ends there) by construction. Once the tensors are float nothing clips,
//! so the activation must be written into the op again.

use tract_tflite::tflite;
use tract_tflite::tflite::{ActivationFunctionType as Act, BuiltinOperator as Op, TensorType};

use super::source::{quantization, Source};
use super::Plan;
use crate::model::ModelError;

/// Record, per op with a fused activation, the activation its output range implies, and count
/// them in the stats (whether the op stays in float or later goes to the 8-bit kernel).
pub(super) fn restore_activations(source: &Source, plan: &mut Plan) -> Result<(), ModelError> {
    for (i, op) in source.ops.iter().enumerate() {
        if !has_fused_activation(op.code) {
            continue;
        }
        let out = source.tensors.get(*op.outputs.first().unwrap_or(&-1))?;
        let implied = implied_activation(&out);
        if implied != Act::NONE {
            match implied {
                Act::RELU6 => plan.stats.relu6_restored += 1,
                _ => plan.stats.relu_restored += 1,
            }
            plan.activations[i] = Some(implied);
        }
    }
    Ok(())
}

/// Ops whose options carry a fused activation.
pub(super) fn has_fused_activation(code: Op) -> bool {
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

/// The activation a quantized output range implies: ReLU6 for a range of [0, 6] (zero point at
/// the bottom of the range), ReLU for another range starting at 0, else none.
pub(super) fn implied_activation(t: &tflite::Tensor) -> Act {
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

/// The clamp an activation stands for, if it is one: `Some(None)` for no activation,
/// `None` for an activation that is not a clamp.
pub(super) fn clamp_of(act: Act) -> Option<Option<(f32, f32)>> {
    match act {
        Act::NONE => Some(None),
        Act::RELU => Some(Some((0.0, f32::INFINITY))),
        Act::RELU6 => Some(Some((0.0, 6.0))),
        Act::RELU_N1_TO_1 => Some(Some((-1.0, 1.0))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, TinyModel, IMAGE};
    use super::*;

    #[test]
    fn output_ranges_imply_activations() {
        let mut model = TinyModel::ssd();
        let cases = [
            (TensorType::UINT8, 6.0 / 255.0, 0, Act::RELU6),
            (TensorType::INT8, 6.0 / 255.0, -128, Act::RELU6),
            (TensorType::UINT8, 0.1, 0, Act::RELU),
            (TensorType::UINT8, 6.0 / 255.0, 1, Act::NONE),
            (TensorType::INT8, 0.1, 0, Act::NONE),
        ];
        let first =
            cases.map(|(ty, scale, zp, _)| model.tensor("t", ty, &[1], Some((scale, zp)), None))[0];
        model.tensor("float", TensorType::FLOAT32, &[1], None, None);
        let bytes = model.build();
        let source = Source::parse(&bytes).unwrap();
        for (i, (_, _, _, expected)) in cases.iter().enumerate() {
            let t = source.tensors.get(first + i as i32).unwrap();
            assert_eq!(implied_activation(&t), *expected, "case {i}");
        }
        let float = source.tensors.get(first + cases.len() as i32).unwrap();
        assert_eq!(implied_activation(&float), Act::NONE);
    }

    #[test]
    fn restores_the_activation_of_an_op_whose_output_clips() {
        let mut model = TinyModel::ssd();
        let relu6 = model.tensor(
            "relu6",
            TensorType::UINT8,
            &[1, 4, 4, 3],
            Some((6.0 / 255.0, 0)),
            None,
        );
        let plain = model.tensor(
            "plain",
            TensorType::UINT8,
            &[1, 4, 4, 3],
            Some((0.1, 128)),
            None,
        );
        model.op(Op::ADD, &[IMAGE, IMAGE], &[relu6]);
        model.op(Op::ADD, &[IMAGE, IMAGE], &[plain]);
        model.op(Op::LOGISTIC, &[plain], &[relu6]);
        let bytes = model.build();
        let source = Source::parse(&bytes).unwrap();
        let plan = run(&source, &["restore-activations"]).unwrap();
        assert_eq!(plan.activations[..3], [Some(Act::RELU6), None, None]);
        assert_eq!(
            (plan.stats.relu6_restored, plan.stats.relu_restored),
            (1, 0)
        );
    }

    #[test]
    fn the_bundled_model_gets_40_relu6_and_3_relu_back() {
        let source = Source::parse(crate::model::EMBEDDED_MODEL).unwrap();
        let plan = run(&source, &["restore-activations"]).unwrap();
        assert_eq!(
            (plan.stats.relu6_restored, plan.stats.relu_restored),
            (40, 3)
        );
        assert_eq!(plan.activations.iter().flatten().count(), 43);
    }

    #[test]
    fn clamps() {
        assert_eq!(clamp_of(Act::RELU6), Some(Some((0.0, 6.0))));
        assert_eq!(clamp_of(Act::NONE), Some(None));
        assert_eq!(clamp_of(Act::TANH), None);
    }
}
