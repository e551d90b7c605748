//! Quantized SSD TFLite model → a TFLite model that stock tract-tflite can load, plus what
//! the project's own kernels and the Rust postprocess need.
//!
//! tract-tflite 0.23 cannot run the quantized Coral model (mixed-scale quantized ADD and
//! CONCATENATION, LOGISTIC keeping its input's quantization, the CUSTOM postprocess op), and
//! its op registry is private. So we rewrite the flatbuffer instead. The rewrite is a list of
//! named passes ([`PASSES`]), run in order; each reads the source model and records its
//! decisions in a [`Plan`], and [`write::write_model`] then builds the new flatbuffer from it:
//!
//! 1. `check-operators`: every op is one the rewrite can carry over, with tensor indices in range.
//! 2. `cut-postprocess`: `TFLite_Detection_PostProcess` is cut off; its box and score inputs
//!    become the graph outputs, its anchors and options go to the Rust postprocess.
//! 3. `read-input`: the image input's size and pixel quantization, for the preprocess.
//! 4. `restore-activations`: the ReLU/ReLU6 that only the quantized output ranges expressed
//!    become fused activations again (the float ops would not clip otherwise).
//! 5. `find-fusable-depthwise`: depthwise convolutions the fused depthwise op can run are
//!    written without their activation and listed with their clamp and 8-bit quantization.
//! 6. `split-int8-convs` (only with [`ConvertOptions::int8_convs`]): convolutions the 8-bit
//!    kernel can run leave the graph; each one's input becomes an extra graph output and its
//!    output an extra graph input, for the inference stage to connect through the kernel.
//! 7. `dequantize-constants`: every other quantized tensor becomes FLOAT32, its constants
//!    dequantized.
//!
//! The result is a mixed graph: tract runs the float ops, the 8-bit kernels the rest.

mod activations;
mod depthwise;
mod dequantize;
mod input;
mod int8_conv;
mod operators;
mod postprocess;
mod source;
mod write;

use std::collections::{HashMap, HashSet};

use tract_tflite::tflite::ActivationFunctionType as Act;

use super::ModelError;
use crate::model::{DepthwiseSite, InputSpec, Int8ConvSite};
use crate::postprocess::{Anchor, PostprocessParams};
use dequantize::TensorFate;
use source::Source;

/// Counts that tell what the conversion did (logged, and checked by tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversionStats {
    pub operators: usize,
    pub dequantized_constants: usize,
    pub relu_restored: usize,
    pub relu6_restored: usize,
    /// Convolutions kept in 8 bits for the integer kernel.
    pub int8_convs: usize,
}

/// Output of [`convert`]: a model for tract plus what the kernels and the postprocess need.
pub struct ConvertedModel {
    /// The rewritten TFLite model for tract: float ops on FLOAT32 tensors (unquantized
    /// constants such as RESHAPE's int32 shape keep their type), without the postprocess op
    /// and the 8-bit convolutions.
    pub float_tflite: Vec<u8>,
    pub input: InputSpec,
    pub anchors: Vec<Anchor>,
    pub params: PostprocessParams,
    /// Number of classes in the score output, background column included.
    pub score_columns: usize,
    /// Depthwise convolutions (by output tensor name) written without their activation, with
    /// the clamp it implies, for the inference stage to run as one fused op.
    pub fused_depthwise: HashMap<String, DepthwiseSite>,
    /// Convolutions kept in 8 bits for the integer kernel, in graph order. They are not in the
    /// float model: each one's output is an extra graph input there, and its input an extra
    /// graph output, for the inference stage to connect through the 8-bit op.
    pub int8_convs: Vec<Int8ConvSite>,
    pub stats: ConversionStats,
}

/// What the conversion may keep in 8 bits instead of converting to float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Hand convolutions with 8-bit weights and activations to the integer kernel
    /// ([`ConvertedModel::int8_convs`]); only worth it where that kernel is fast.
    pub int8_convs: bool,
}

/// The postprocess op's share of the model, taken by `cut-postprocess`.
#[derive(Debug)]
struct CutPostprocess {
    /// Operator index of the op, left out of the rewritten graph.
    op: usize,
    anchors: Vec<Anchor>,
    params: PostprocessParams,
    score_columns: usize,
}

/// The passes' decisions about the source model, from which the new flatbuffer is written.
#[derive(Debug)]
struct Plan {
    options: ConvertOptions,
    postprocess: Option<CutPostprocess>,
    input: Option<InputSpec>,
    /// Graph inputs and outputs by tensor index: the image, then the 8-bit convolutions'
    /// outputs; the boxes and scores, then the 8-bit convolutions' inputs.
    graph_inputs: Vec<i32>,
    graph_outputs: Vec<i32>,
    /// Per operator: the fused activation to write instead of the op's own, if any.
    activations: Vec<Option<Act>>,
    /// Tensors written as empty placeholders: only a removed op reads them.
    dropped_tensors: HashSet<i32>,
    fused_depthwise: HashMap<String, DepthwiseSite>,
    /// Operator indices of the 8-bit convolutions, left out of the rewritten graph.
    int8_ops: HashSet<usize>,
    int8_convs: Vec<Int8ConvSite>,
    /// Per tensor: what it becomes in the rewritten model.
    tensors: Vec<TensorFate>,
    stats: ConversionStats,
    /// Names of the passes that have run, in order.
    ran: Vec<&'static str>,
}

impl Plan {
    fn new(source: &Source, options: ConvertOptions) -> Self {
        Plan {
            options,
            postprocess: None,
            input: None,
            graph_inputs: Vec::new(),
            graph_outputs: Vec::new(),
            activations: vec![None; source.ops.len()],
            dropped_tensors: HashSet::new(),
            fused_depthwise: HashMap::new(),
            int8_ops: HashSet::new(),
            int8_convs: Vec::new(),
            tensors: Vec::new(),
            stats: ConversionStats::default(),
            ran: Vec::new(),
        }
    }

    /// Error unless every pass in `passes` has run: a pass reads what they decided.
    fn requires(&self, passes: &[&str]) -> Result<(), ModelError> {
        match passes.iter().find(|p| !self.ran.contains(p)) {
            Some(missing) => Err(not_run(missing)),
            None => Ok(()),
        }
    }
}

fn not_run(pass: &str) -> ModelError {
    ModelError::invalid(format!("the conversion pass '{pass}' has not run"))
}

/// One named step of the rewrite.
struct Pass {
    name: &'static str,
    run: fn(&Source, &mut Plan) -> Result<(), ModelError>,
}

/// The rewrite, in order. Later passes read what earlier ones decided (each checks with
/// [`Plan::requires`]): `split-int8-convs` appends to the graph inputs and outputs that
/// `read-input` and `cut-postprocess` start, and uses the activations `restore-activations`
/// found; `dequantize-constants` skips the tensors the cuts dropped.
const PASSES: &[Pass] = &[
    Pass {
        name: "check-operators",
        run: operators::check_operators,
    },
    Pass {
        name: "cut-postprocess",
        run: postprocess::cut_postprocess,
    },
    Pass {
        name: "read-input",
        run: input::read_input,
    },
    Pass {
        name: "restore-activations",
        run: activations::restore_activations,
    },
    Pass {
        name: "find-fusable-depthwise",
        run: depthwise::find_fusable_depthwise,
    },
    Pass {
        name: "split-int8-convs",
        run: int8_conv::split_int8_convs,
    },
    Pass {
        name: "dequantize-constants",
        run: dequantize::dequantize_constants,
    },
];

/// Convert a (quantized or float) SSD TFLite model with a `TFLite_Detection_PostProcess` op,
/// everything to float.
pub fn convert(bytes: &[u8]) -> Result<ConvertedModel, ModelError> {
    convert_with(bytes, &ConvertOptions::default())
}

/// [`convert`], keeping what `options` allow in 8 bits.
pub fn convert_with(bytes: &[u8], options: &ConvertOptions) -> Result<ConvertedModel, ModelError> {
    let source = Source::parse(bytes)?;
    let plan = run_passes(&source, *options, PASSES)?;
    write::write_model(&source, plan)
}

fn run_passes(
    source: &Source,
    options: ConvertOptions,
    passes: &[Pass],
) -> Result<Plan, ModelError> {
    let mut plan = Plan::new(source, options);
    for pass in passes {
        (pass.run)(source, &mut plan)?;
        plan.ran.push(pass.name);
    }
    Ok(plan)
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EMBEDDED_MODEL;

    #[test]
    fn passes_run_in_the_documented_order() {
        let names: Vec<_> = PASSES.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "check-operators",
                "cut-postprocess",
                "read-input",
                "restore-activations",
                "find-fusable-depthwise",
                "split-int8-convs",
                "dequantize-constants",
            ]
        );
    }

    #[test]
    fn writing_without_the_cut_or_the_input_is_an_error() {
        let source = Source::parse(EMBEDDED_MODEL).unwrap();
        let plan = run_passes(&source, ConvertOptions::default(), &PASSES[..1]).unwrap();
        assert!(write::write_model(&source, plan).is_err());
    }
}
