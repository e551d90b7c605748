//! Read access to the source TFLite flatbuffer: the first subgraph's tensors and operators,
//! constant data, quantization and shapes, each bounds-checked so a broken file is an error.

use flatbuffers::{ForwardsUOffset, Vector};
use tract_tflite::tflite;
use tract_tflite::tflite::{BuiltinOperator as Op, TensorType};

use crate::model::{ModelError, TensorQuant};

/// One operator of the source graph, with its code resolved and its tensor lists read once.
pub(super) struct SourceOp<'a> {
    pub op: tflite::Operator<'a>,
    pub code: Op,
    pub custom: Option<String>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
}

/// The model being converted.
pub(super) struct Source<'a> {
    pub graph: tflite::SubGraph<'a>,
    pub tensors: Tensors<'a>,
    pub ops: Vec<SourceOp<'a>>,
    buffers: Vector<'a, ForwardsUOffset<tflite::Buffer<'a>>>,
    /// Size of the file, to size the output buffer.
    pub file_len: usize,
}

impl<'a> Source<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ModelError> {
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
        let ops = operators
            .iter()
            .map(|op| {
                let (code, custom) = op_code(&model, &op)?;
                Ok(SourceOp {
                    code,
                    custom,
                    inputs: op.inputs().map(|v| v.iter().collect()).unwrap_or_default(),
                    outputs: op.outputs().map(|v| v.iter().collect()).unwrap_or_default(),
                    op,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Source {
            graph,
            tensors,
            ops,
            buffers,
            file_len: bytes.len(),
        })
    }

    /// The data of a constant tensor; `None` for activations (buffer 0 or empty).
    pub fn constant(&self, t: &tflite::Tensor<'a>) -> Option<&'a [u8]> {
        let index = t.buffer() as usize;
        if index == 0 || index >= self.buffers.len() {
            return None;
        }
        self.buffers
            .get(index)
            .data()
            .map(|d| d.bytes())
            .filter(|d| !d.is_empty())
    }
}

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

/// A readable operator name for messages ("CONV_2D", "CUSTOM TFLite_Detection_PostProcess").
pub(super) fn op_name(op: Op, custom: &Option<String>) -> String {
    match custom {
        Some(c) if op == Op::CUSTOM => format!("CUSTOM {c}"),
        _ => op
            .variant_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("builtin #{}", op.0)),
    }
}

/// The graph's tensor table, indexed with the i32 indices operators use.
pub(super) struct Tensors<'a> {
    pub list: Vector<'a, ForwardsUOffset<tflite::Tensor<'a>>>,
}

impl<'a> Tensors<'a> {
    pub fn get(&self, index: i32) -> Result<tflite::Tensor<'a>, ModelError> {
        if index < 0 || index as usize >= self.list.len() {
            return Err(ModelError::invalid(format!(
                "tensor index {index} out of range"
            )));
        }
        Ok(self.list.get(index as usize))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }
}

pub(super) fn name_of(t: &tflite::Tensor) -> String {
    t.name().unwrap_or("<unnamed>").to_string()
}

/// Per-tensor or per-axis quantization, as far as conversion needs it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Quant {
    pub scales: Vec<f32>,
    pub zero_points: Vec<i64>,
    pub axis: usize,
}

pub(super) fn quantization(t: &tflite::Tensor) -> Option<Quant> {
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

/// An 8-bit activation tensor's quantization, if it has one scale and a zero point in range.
pub(super) fn quant8(t: &tflite::Tensor) -> Option<TensorQuant> {
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

pub(super) fn shape_of(t: &tflite::Tensor) -> Result<Vec<usize>, ModelError> {
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
