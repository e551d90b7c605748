//! Pass `cut-postprocess`: take `TFLite_Detection_PostProcess` out of the graph.
//!
//! tract cannot run the CUSTOM op; the Rust postprocess does its work instead. Its box and
//! score inputs become the graph outputs, and its anchors (a constant) and options go with the
//! converted model.

use tract_tflite::tflite::TensorType;

use super::dequantize::{dequantize, raw_values};
use super::operators::is_postprocess;
use super::source::{name_of, quantization, shape_of, Source};
use super::{CutPostprocess, Plan};
use crate::model::{parse_postprocess_options, ModelError, POSTPROCESS_OP};
use crate::postprocess::Anchor;

/// Find the one postprocess op, read its options and anchors, and check its inputs have the
/// shapes the Rust postprocess expects ([1, N, 4] boxes, [1, N, classes] scores, N anchors).
pub(super) fn cut_postprocess(source: &Source, plan: &mut Plan) -> Result<(), ModelError> {
    let mut found = None;
    for (i, op) in source.ops.iter().enumerate() {
        if is_postprocess(op.code, &op.custom) {
            if found.is_some() {
                return Err(ModelError::unsupported(format!(
                    "more than one {POSTPROCESS_OP} op"
                )));
            }
            found = Some(i);
        }
    }
    let index = found.ok_or_else(|| {
        ModelError::unsupported(format!(
            "the model has no {POSTPROCESS_OP} op: only SSD-style detection models are supported"
        ))
    })?;
    let op = &source.ops[index];
    let pp_inputs = &op.inputs;
    if pp_inputs.len() != 3 {
        return Err(ModelError::invalid(format!(
            "{POSTPROCESS_OP} takes 3 inputs (boxes, scores, anchors), found {}",
            pp_inputs.len()
        )));
    }
    let params = parse_postprocess_options(
        op.op
            .custom_options()
            .map(|v| v.bytes())
            .unwrap_or_default(),
    )?;
    let anchors = read_anchors(source, pp_inputs[2])?;
    let score_columns = check_box_and_score_shapes(source, pp_inputs, anchors.len())?;
    if score_columns != params.num_classes + 1 && score_columns != params.num_classes {
        return Err(ModelError::invalid(format!(
            "scores have {score_columns} columns but the postprocess expects {} classes",
            params.num_classes
        )));
    }
    plan.graph_outputs = vec![pp_inputs[0], pp_inputs[1]];
    // The anchors feed only the postprocess op, which is gone.
    plan.dropped_tensors.insert(pp_inputs[2]);
    plan.postprocess = Some(CutPostprocess {
        op: index,
        anchors,
        params,
        score_columns,
    });
    Ok(())
}

/// Anchors: a constant [N, 4] tensor (yc, xc, h, w), quantized or float.
fn read_anchors(source: &Source, tensor: i32) -> Result<Vec<Anchor>, ModelError> {
    let anchor_tensor = source.tensors.get(tensor)?;
    let anchor_data = source.constant(&anchor_tensor).ok_or_else(|| {
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
    Ok(anchor_values
        .chunks_exact(4)
        .map(|a| Anchor {
            yc: a[0],
            xc: a[1],
            h: a[2],
            w: a[3],
        })
        .collect())
}

/// The two postprocess inputs must be [1, N, 4] and [1, N, classes]; returns the classes.
fn check_box_and_score_shapes(
    source: &Source,
    pp_inputs: &[i32],
    n: usize,
) -> Result<usize, ModelError> {
    let boxes_shape = shape_of(&source.tensors.get(pp_inputs[0])?)?;
    let scores_shape = shape_of(&source.tensors.get(pp_inputs[1])?)?;
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
    Ok(score_columns)
}

#[cfg(test)]
mod tests {
    use tract_tflite::tflite::TensorType;

    use super::super::testing::{run, TinyModel, ANCHORS, BOXES, SCORES};
    use super::*;

    #[test]
    fn cuts_the_op_and_exposes_boxes_and_scores() {
        let bytes = TinyModel::ssd().build();
        let source = Source::parse(&bytes).unwrap();
        let plan = run(&source, &["cut-postprocess"]).unwrap();
        let cut = plan.postprocess.unwrap();
        assert_eq!(cut.op, 0);
        assert_eq!(cut.score_columns, 3);
        assert_eq!(cut.params.num_classes, 2);
        assert_eq!(plan.graph_outputs, [BOXES, SCORES]);
        assert!(plan.dropped_tensors.contains(&ANCHORS));
        let a = cut.anchors[1];
        assert_eq!((a.yc, a.xc, a.h, a.w), (0.75, 0.5, 0.5, 1.0));
    }

    #[test]
    fn the_bundled_model_has_1917_anchors_and_91_score_columns() {
        let source = Source::parse(crate::model::EMBEDDED_MODEL).unwrap();
        let cut = run(&source, &["cut-postprocess"])
            .unwrap()
            .postprocess
            .unwrap();
        assert_eq!(cut.anchors.len(), 1917);
        assert_eq!(cut.score_columns, 91);
        assert_eq!(cut.op, source.ops.len() - 1);
    }

    #[test]
    fn scores_that_do_not_match_the_anchors_are_an_error() {
        let mut model = TinyModel::ssd();
        // Three anchors for two boxes.
        let anchors = model.tensor(
            "more anchors",
            TensorType::UINT8,
            &[3, 4],
            Some((0.25, 0)),
            Some(vec![1; 12]),
        );
        model.set_postprocess_inputs(&[BOXES, SCORES, anchors]);
        let bytes = model.build();
        let source = Source::parse(&bytes).unwrap();
        let err = run(&source, &["cut-postprocess"]).unwrap_err().to_string();
        assert!(err.contains("box encodings have shape"), "{err}");
    }

    #[test]
    fn a_model_without_the_op_is_refused() {
        let mut model = TinyModel::ssd();
        model.remove_postprocess();
        let bytes = model.build();
        let source = Source::parse(&bytes).unwrap();
        let err = run(&source, &["cut-postprocess"]).unwrap_err().to_string();
        assert!(err.contains("only SSD-style"), "{err}");
    }
}
