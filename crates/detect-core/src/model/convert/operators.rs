//! Pass `check-operators`: refuse, up front and by name, any op the rewrite cannot carry over.

use tract_tflite::tflite::BuiltinOperator as Op;

use super::source::{name_of, op_name, Source};
use super::Plan;
use crate::model::{ModelError, POSTPROCESS_OP};

/// Builtin ops the rewrite knows how to carry over (their options are copied field by field).
pub(super) const SUPPORTED_OPS: &[Op] = &[
    Op::CONV_2D,
    Op::DEPTHWISE_CONV_2D,
    Op::ADD,
    Op::CONCATENATION,
    Op::RESHAPE,
    Op::LOGISTIC,
    Op::AVERAGE_POOL_2D,
    Op::MAX_POOL_2D,
];

/// Whether an op is the SSD postprocess op the conversion cuts off.
pub(super) fn is_postprocess(code: Op, custom: &Option<String>) -> bool {
    code == Op::CUSTOM && custom.as_deref() == Some(POSTPROCESS_OP)
}

/// Every op other than the postprocess must be a [`SUPPORTED_OPS`] one, with every tensor index
/// present and in range: an unknown op would be dropped silently by the writer, and later
/// passes index tensors freely once this has held.
pub(super) fn check_operators(source: &Source, _plan: &mut Plan) -> Result<(), ModelError> {
    for (i, op) in source.ops.iter().enumerate() {
        if is_postprocess(op.code, &op.custom) {
            continue;
        }
        if !SUPPORTED_OPS.contains(&op.code) {
            let output = op
                .outputs
                .first()
                .and_then(|&o| source.tensors.get(o).ok())
                .map(|t| name_of(&t))
                .unwrap_or_default();
            return Err(ModelError::unsupported(format!(
                "operator #{i} ({}, output tensor '{output}') is not supported; supported: {}",
                op_name(op.code, &op.custom),
                SUPPORTED_OPS
                    .iter()
                    .filter_map(|o| o.variant_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if op
            .inputs
            .iter()
            .chain(&op.outputs)
            .any(|&t| t < 0 || t as usize >= source.tensors.len())
        {
            return Err(ModelError::unsupported(format!(
                "operator {} has an optional or out-of-range tensor index",
                op_name(op.code, &None)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, TinyModel};
    use super::*;

    #[test]
    fn the_bundled_model_has_only_supported_ops() {
        let source = Source::parse(crate::model::EMBEDDED_MODEL).unwrap();
        assert!(run(&source, &["check-operators"]).is_ok());
    }

    #[test]
    fn an_unsupported_op_is_named_with_its_output() {
        let mut model = TinyModel::ssd();
        model.op(Op::MUL, &[0, 0], &[0]);
        let bytes = model.build();
        let source = Source::parse(&bytes).unwrap();
        let err = run(&source, &["check-operators"]).unwrap_err().to_string();
        assert!(err.contains("MUL") && err.contains("'image'"), "{err}");
    }

    #[test]
    fn an_out_of_range_tensor_index_is_an_error() {
        let mut model = TinyModel::ssd();
        model.op(Op::LOGISTIC, &[0], &[99]);
        let bytes = model.build();
        let source = Source::parse(&bytes).unwrap();
        let err = run(&source, &["check-operators"]).unwrap_err().to_string();
        assert!(err.contains("out-of-range tensor index"), "{err}");
    }
}
