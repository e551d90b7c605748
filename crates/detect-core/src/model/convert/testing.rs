//! Test support: tiny hand-built TFLite models, and running a chosen subset of the passes.

use flatbuffers::FlatBufferBuilder;
use tract_tflite::tflite;
use tract_tflite::tflite::{
    ActivationFunctionType as Act, BuiltinOperator as Op, BuiltinOptions, TensorType,
};

use super::source::Source;
use super::{ConvertOptions, Plan, PASSES};
use crate::model::{ModelError, POSTPROCESS_OP};

/// Run the passes named in `names` (in [`PASSES`] order), with default options.
pub(super) fn run(source: &Source, names: &[&str]) -> Result<Plan, ModelError> {
    run_with(source, ConvertOptions::default(), names)
}

pub(super) fn run_with(
    source: &Source,
    options: ConvertOptions,
    names: &[&str],
) -> Result<Plan, ModelError> {
    let mut plan = Plan::new(source, options);
    for pass in PASSES.iter().filter(|p| names.contains(&p.name)) {
        (pass.run)(source, &mut plan)?;
        plan.ran.push(pass.name);
    }
    Ok(plan)
}

struct TensorDef {
    name: String,
    ty: TensorType,
    shape: Vec<i32>,
    /// Scales, zero points, quantized axis.
    quant: Option<(Vec<f32>, Vec<i64>, i32)>,
    data: Option<Vec<u8>>,
}

enum Options {
    None,
    Conv { stride: i32, act: Act },
    Depthwise { act: Act, dilation: i32 },
    Custom(Vec<u8>),
}

struct OpDef {
    code: Op,
    custom: Option<&'static str>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    options: Options,
}

/// A model built tensor by tensor and op by op.
pub(super) struct TinyModel {
    tensors: Vec<TensorDef>,
    ops: Vec<OpDef>,
    inputs: Vec<i32>,
}

/// The tensor indices of [`TinyModel::ssd`].
pub(super) const IMAGE: i32 = 0;
pub(super) const BOXES: i32 = 1;
pub(super) const SCORES: i32 = 2;
pub(super) const ANCHORS: i32 = 3;

/// Postprocess options for two classes (so three score columns with the background).
pub(super) fn postprocess_options() -> Vec<u8> {
    let mut b = flexbuffers::Builder::default();
    let mut m = b.start_map();
    m.push("max_detections", 10);
    m.push("max_classes_per_detection", 1);
    m.push("num_classes", 2);
    for k in ["y_scale", "x_scale", "h_scale", "w_scale"] {
        m.push(k, 5.0f32);
    }
    m.push("nms_score_threshold", 0.1f32);
    m.push("nms_iou_threshold", 0.5f32);
    m.end_map();
    b.view().to_vec()
}

impl TinyModel {
    /// The smallest model the conversion accepts: a uint8 [1, 4, 4, 3] image input
    /// (scale 1/128, zero point 128), box encodings [1, 2, 4], scores [1, 2, 3], two quantized
    /// anchors, and the postprocess op reading them. Ops added later come before it.
    pub fn ssd() -> Self {
        let mut m = TinyModel {
            tensors: Vec::new(),
            ops: Vec::new(),
            inputs: vec![IMAGE],
        };
        m.tensor(
            "image",
            TensorType::UINT8,
            &[1, 4, 4, 3],
            Some((1.0 / 128.0, 128)),
            None,
        );
        m.tensor(
            "boxes",
            TensorType::UINT8,
            &[1, 2, 4],
            Some((0.1, 128)),
            None,
        );
        m.tensor(
            "scores",
            TensorType::UINT8,
            &[1, 2, 3],
            Some((1.0 / 256.0, 0)),
            None,
        );
        // (yc, xc, h, w) = (0.25, 0.5, 0.5, 1.0) and (0.75, 0.5, 0.5, 1.0), at scale 1/4.
        let anchors = vec![1, 2, 2, 4, 3, 2, 2, 4];
        m.tensor(
            "anchors",
            TensorType::UINT8,
            &[2, 4],
            Some((0.25, 0)),
            Some(anchors),
        );
        m.ops.push(OpDef {
            code: Op::CUSTOM,
            custom: Some(POSTPROCESS_OP),
            inputs: vec![BOXES, SCORES, ANCHORS],
            outputs: Vec::new(),
            options: Options::Custom(postprocess_options()),
        });
        m
    }

    /// Add a per-tensor quantized (or, with `quant: None`, plain) tensor; returns its index.
    pub fn tensor(
        &mut self,
        name: &str,
        ty: TensorType,
        shape: &[i32],
        quant: Option<(f32, i64)>,
        data: Option<Vec<u8>>,
    ) -> i32 {
        let quant = quant.map(|(s, z)| (vec![s], vec![z], 0));
        self.tensor_per_axis(name, ty, shape, quant, data)
    }

    pub fn tensor_per_axis(
        &mut self,
        name: &str,
        ty: TensorType,
        shape: &[i32],
        quant: Option<(Vec<f32>, Vec<i64>, i32)>,
        data: Option<Vec<u8>>,
    ) -> i32 {
        self.tensors.push(TensorDef {
            name: name.to_string(),
            ty,
            shape: shape.to_vec(),
            quant,
            data,
        });
        self.tensors.len() as i32 - 1
    }

    /// Point the postprocess op (the last op) at other tensors.
    pub fn set_postprocess_inputs(&mut self, inputs: &[i32]) {
        if let Some(op) = self.ops.last_mut() {
            op.inputs = inputs.to_vec();
        }
    }

    /// Drop the postprocess op (the last op).
    pub fn remove_postprocess(&mut self) {
        self.ops.pop();
    }

    fn push(&mut self, def: OpDef) {
        // Before the postprocess op, as in a real model.
        let at = self.ops.len().saturating_sub(1);
        self.ops.insert(at, def);
    }

    /// An op without options.
    pub fn op(&mut self, code: Op, inputs: &[i32], outputs: &[i32]) {
        self.push(OpDef {
            code,
            custom: None,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options: Options::None,
        });
    }

    /// A SAME-padded CONV_2D.
    pub fn conv(&mut self, inputs: &[i32], outputs: &[i32], stride: i32, act: Act) {
        self.push(OpDef {
            code: Op::CONV_2D,
            custom: None,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options: Options::Conv { stride, act },
        });
    }

    /// A SAME-padded, stride-1 DEPTHWISE_CONV_2D with multiplier 1.
    pub fn depthwise(&mut self, inputs: &[i32], outputs: &[i32], act: Act, dilation: i32) {
        self.push(OpDef {
            code: Op::DEPTHWISE_CONV_2D,
            custom: None,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options: Options::Depthwise { act, dilation },
        });
    }

    pub fn build(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let mut buffers = vec![tflite::Buffer::create(
            &mut fbb,
            &tflite::BufferArgs { data: None },
        )];
        let mut tensors = Vec::new();
        for t in &self.tensors {
            let buffer = match &t.data {
                Some(d) => {
                    let data = Some(fbb.create_vector(d));
                    buffers.push(tflite::Buffer::create(
                        &mut fbb,
                        &tflite::BufferArgs { data },
                    ));
                    buffers.len() as u32 - 1
                }
                None => 0,
            };
            let quantization = t.quant.as_ref().map(|(s, z, axis)| {
                let (scale, zero_point) = (Some(fbb.create_vector(s)), Some(fbb.create_vector(z)));
                tflite::QuantizationParameters::create(
                    &mut fbb,
                    &tflite::QuantizationParametersArgs {
                        scale,
                        zero_point,
                        quantized_dimension: *axis,
                        ..Default::default()
                    },
                )
            });
            let (shape, name) = (
                Some(fbb.create_vector(&t.shape)),
                Some(fbb.create_string(&t.name)),
            );
            tensors.push(tflite::Tensor::create(
                &mut fbb,
                &tflite::TensorArgs {
                    shape,
                    type_: t.ty,
                    buffer,
                    name,
                    quantization,
                    ..Default::default()
                },
            ));
        }
        let mut codes: Vec<(Op, Option<&str>)> = Vec::new();
        let mut ops = Vec::new();
        for op in &self.ops {
            let key = (op.code, op.custom);
            let index = codes.iter().position(|c| *c == key).unwrap_or_else(|| {
                codes.push(key);
                codes.len() - 1
            });
            let (options_type, options, custom) = match &op.options {
                Options::None => (BuiltinOptions::NONE, None, None),
                Options::Conv { stride, act } => {
                    let args = tflite::Conv2DOptionsArgs {
                        padding: tflite::Padding::SAME,
                        stride_w: *stride,
                        stride_h: *stride,
                        fused_activation_function: *act,
                        dilation_w_factor: 1,
                        dilation_h_factor: 1,
                    };
                    let o = tflite::Conv2DOptions::create(&mut fbb, &args);
                    (
                        BuiltinOptions::Conv2DOptions,
                        Some(o.as_union_value()),
                        None,
                    )
                }
                Options::Depthwise { act, dilation } => {
                    let args = tflite::DepthwiseConv2DOptionsArgs {
                        padding: tflite::Padding::SAME,
                        stride_w: 1,
                        stride_h: 1,
                        depth_multiplier: 1,
                        fused_activation_function: *act,
                        dilation_w_factor: *dilation,
                        dilation_h_factor: *dilation,
                    };
                    let o = tflite::DepthwiseConv2DOptions::create(&mut fbb, &args);
                    (
                        BuiltinOptions::DepthwiseConv2DOptions,
                        Some(o.as_union_value()),
                        None,
                    )
                }
                Options::Custom(bytes) => {
                    (BuiltinOptions::NONE, None, Some(fbb.create_vector(bytes)))
                }
            };
            let (inputs, outputs) = (
                Some(fbb.create_vector(&op.inputs)),
                Some(fbb.create_vector(&op.outputs)),
            );
            ops.push(tflite::Operator::create(
                &mut fbb,
                &tflite::OperatorArgs {
                    opcode_index: index as u32,
                    inputs,
                    outputs,
                    builtin_options_type: options_type,
                    builtin_options: options,
                    custom_options: custom,
                    ..Default::default()
                },
            ));
        }
        let codes: Vec<_> = codes
            .iter()
            .map(|&(code, custom)| {
                let custom_code = custom.map(|c| fbb.create_string(c));
                tflite::OperatorCode::create(
                    &mut fbb,
                    &tflite::OperatorCodeArgs {
                        deprecated_builtin_code: code.0 as i8,
                        builtin_code: code,
                        version: 1,
                        custom_code,
                    },
                )
            })
            .collect();
        let tensors = Some(fbb.create_vector(&tensors));
        let operators = Some(fbb.create_vector(&ops));
        let inputs = Some(fbb.create_vector(&self.inputs));
        let outputs = Some(fbb.create_vector(&[BOXES, SCORES]));
        let subgraph = tflite::SubGraph::create(
            &mut fbb,
            &tflite::SubGraphArgs {
                tensors,
                inputs,
                outputs,
                operators,
                name: None,
            },
        );
        let subgraphs = Some(fbb.create_vector(&[subgraph]));
        let operator_codes = Some(fbb.create_vector(&codes));
        let buffers = Some(fbb.create_vector(&buffers));
        let root = tflite::Model::create(
            &mut fbb,
            &tflite::ModelArgs {
                version: 3,
                operator_codes,
                subgraphs,
                buffers,
                ..Default::default()
            },
        );
        tflite::finish_model_buffer(&mut fbb, root);
        fbb.finished_data().to_vec()
    }
}
