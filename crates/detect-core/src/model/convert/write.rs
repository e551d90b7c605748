//! Writing the rewritten model: a new flatbuffer built from the source and the passes' plan.
//!
//! Tensors keep their indices (a dropped one stays as a named placeholder), so operators and
//! graph inputs/outputs carry over unchanged; removed ops are left out and every kept op gets
//! its options rebuilt with the activation the plan chose.

use std::collections::HashMap;

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};
use tract_tflite::tflite;
use tract_tflite::tflite::{ActivationFunctionType as Act, BuiltinOperator as Op, BuiltinOptions};

use super::dequantize::{tensor_data, TensorFate};
use super::source::{name_of, Source};
use super::{not_run, ConvertedModel, Plan};
use crate::model::ModelError;

/// Build the converted model. Needs the cut postprocess and the input spec; the order in which
/// the flatbuffer is written is fixed, so a given model always converts to the same bytes.
pub(super) fn write_model(source: &Source, mut plan: Plan) -> Result<ConvertedModel, ModelError> {
    let postprocess = plan
        .postprocess
        .take()
        .ok_or_else(|| not_run("cut-postprocess"))?;
    let input = plan.input.take().ok_or_else(|| not_run("read-input"))?;
    plan.requires(&["dequantize-constants"])?;
    let mut fbb = FlatBufferBuilder::with_capacity(source.file_len * 4 + 1024);
    let (tensors, buffers) = write_tensors(&mut fbb, source, &plan.tensors)?;
    let (ops, codes) = write_operators(&mut fbb, source, &mut plan, postprocess.op)?;

    let tensors_v = fbb.create_vector(&tensors);
    let ops_v = fbb.create_vector(&ops);
    let inputs_v = fbb.create_vector(&plan.graph_inputs);
    let outputs_v = fbb.create_vector(&plan.graph_outputs);
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
    let buffers_v = fbb.create_vector(&buffers);
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
        anchors: postprocess.anchors,
        params: postprocess.params,
        score_columns: postprocess.score_columns,
        stats: plan.stats,
        fused_depthwise: plan.fused_depthwise,
        int8_convs: plan.int8_convs,
    })
}

type Tables<'fb, T> = Vec<WIPOffset<T>>;

/// Every tensor, in source order, per its fate; returns the tensors and the buffers (buffer 0
/// is the empty one activations point at).
fn write_tensors<'fb>(
    fbb: &mut FlatBufferBuilder<'fb>,
    source: &Source,
    fates: &[TensorFate],
) -> Result<
    (
        Tables<'fb, tflite::Tensor<'fb>>,
        Tables<'fb, tflite::Buffer<'fb>>,
    ),
    ModelError,
> {
    let mut buffers = vec![tflite::Buffer::create(
        fbb,
        &tflite::BufferArgs { data: None },
    )];
    let mut tensors = Vec::with_capacity(source.tensors.len());
    for (t, fate) in source.tensors.list.iter().zip(fates) {
        if *fate == TensorFate::Dropped {
            let name = fbb.create_string(&name_of(&t));
            tensors.push(tflite::Tensor::create(
                fbb,
                &tflite::TensorArgs {
                    name: Some(name),
                    ..Default::default()
                },
            ));
            continue;
        }
        let shape = t
            .shape()
            .map(|s| s.iter().collect::<Vec<i32>>())
            .unwrap_or_default();
        let (ty, data) = tensor_data(source, &t, fate)?;
        let buffer = match data {
            Some(bytes) => {
                let v = fbb.create_vector(&bytes);
                buffers.push(tflite::Buffer::create(
                    fbb,
                    &tflite::BufferArgs { data: Some(v) },
                ));
                (buffers.len() - 1) as u32
            }
            None => 0,
        };
        let shape = fbb.create_vector(&shape);
        let name = fbb.create_string(&name_of(&t));
        tensors.push(tflite::Tensor::create(
            fbb,
            &tflite::TensorArgs {
                shape: Some(shape),
                type_: ty,
                buffer,
                name: Some(name),
                ..Default::default()
            },
        ));
    }
    Ok((tensors, buffers))
}

/// Every op but the removed ones (the postprocess op, the 8-bit convolutions), with the plan's
/// activation; returns the ops and the operator codes they index, counted in the stats.
fn write_operators<'fb>(
    fbb: &mut FlatBufferBuilder<'fb>,
    source: &Source,
    plan: &mut Plan,
    postprocess: usize,
) -> Result<
    (
        Tables<'fb, tflite::Operator<'fb>>,
        Tables<'fb, tflite::OperatorCode<'fb>>,
    ),
    ModelError,
> {
    let mut codes = Vec::new();
    let mut code_index = HashMap::new();
    let mut ops = Vec::new();
    for (i, op) in source.ops.iter().enumerate() {
        if i == postprocess {
            continue;
        }
        // Codes are numbered in order of first use, the 8-bit convolutions' included.
        let index = *code_index.entry(op.code.0).or_insert_with(|| {
            codes.push(op.code);
            codes.len() - 1
        });
        plan.stats.operators += 1;
        if plan.int8_ops.contains(&i) {
            continue;
        }
        let (options_type, options) = copy_options(fbb, &op.op, op.code, plan.activations[i])?;
        let inputs = fbb.create_vector(&op.inputs);
        let outputs = fbb.create_vector(&op.outputs);
        ops.push(tflite::Operator::create(
            fbb,
            &tflite::OperatorArgs {
                opcode_index: index as u32,
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type: options_type,
                builtin_options: options,
                ..Default::default()
            },
        ));
    }
    let codes = codes
        .iter()
        .map(|&code| {
            tflite::OperatorCode::create(
                fbb,
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
    Ok((ops, codes))
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

#[cfg(test)]
mod tests {
    use tract_tflite::tflite::TensorType;

    use super::super::testing::{TinyModel, ANCHORS, BOXES, IMAGE, SCORES};
    use super::super::{convert_with, ConvertOptions};
    use super::*;

    /// The tiny model with one ADD whose output range is ReLU6 and one 1x1 convolution.
    fn tiny() -> Vec<u8> {
        let mut m = TinyModel::ssd();
        let relu6 = (6.0 / 255.0, 0);
        let sum = m.tensor("sum", TensorType::UINT8, &[1, 4, 4, 3], Some(relu6), None);
        m.op(Op::ADD, &[IMAGE, IMAGE], &[sum]);
        let kernel = m.tensor(
            "k",
            TensorType::UINT8,
            &[3, 1, 1, 3],
            Some((0.01, 128)),
            Some(vec![129; 9]),
        );
        let bias = m.tensor(
            "b",
            TensorType::INT32,
            &[3],
            Some((0.01 / 128.0, 0)),
            Some(vec![0; 12]),
        );
        let out = m.tensor("conv", TensorType::UINT8, &[1, 4, 4, 3], Some(relu6), None);
        m.conv(&[sum, kernel, bias], &[out], 1, Act::NONE);
        m.build()
    }

    #[test]
    fn writes_a_float_graph_without_the_cut_ops() {
        let bytes = tiny();
        let converted = convert_with(&bytes, &ConvertOptions::default()).unwrap();
        let model = tflite::root_as_model(&converted.float_tflite).unwrap();
        let graph = model.subgraphs().unwrap().get(0);
        let ops = graph.operators().unwrap();
        assert_eq!(ops.len(), 2, "ADD and CONV_2D, not the postprocess");
        let add = ops.get(0).builtin_options_as_add_options().unwrap();
        assert_eq!(add.fused_activation_function(), Act::RELU6);
        let tensors = graph.tensors().unwrap();
        assert!(tensors.iter().all(|t| t.type_() == TensorType::FLOAT32));
        assert!(
            tensors.get(ANCHORS as usize).shape().is_none(),
            "anchors are a placeholder"
        );
        let outputs: Vec<i32> = graph.outputs().unwrap().iter().collect();
        assert_eq!(outputs, [BOXES, SCORES]);
        assert_eq!(converted.stats.operators, 2);
        assert_eq!(converted.stats.dequantized_constants, 2);
        assert_eq!(converted.stats.relu6_restored, 2);
    }

    #[test]
    fn the_8_bit_conv_leaves_the_graph_but_counts_as_an_operator() {
        let bytes = tiny();
        let converted = convert_with(&bytes, &ConvertOptions { int8_convs: true }).unwrap();
        let model = tflite::root_as_model(&converted.float_tflite).unwrap();
        let graph = model.subgraphs().unwrap().get(0);
        assert_eq!(graph.operators().unwrap().len(), 1);
        let inputs: Vec<i32> = graph.inputs().unwrap().iter().collect();
        assert_eq!(inputs.len(), 2, "the image and the conv's stand-in");
        assert_eq!(
            graph.outputs().unwrap().len(),
            3,
            "boxes, scores, the conv's input"
        );
        assert_eq!(
            (converted.stats.operators, converted.stats.int8_convs),
            (2, 1)
        );
        assert_eq!(converted.stats.dequantized_constants, 0);
    }

    #[test]
    fn converting_twice_gives_the_same_bytes() {
        let bytes = tiny();
        let options = ConvertOptions { int8_convs: true };
        let (a, b) = (
            convert_with(&bytes, &options).unwrap(),
            convert_with(&bytes, &options).unwrap(),
        );
        assert_eq!(a.float_tflite, b.float_tflite);
    }
}
