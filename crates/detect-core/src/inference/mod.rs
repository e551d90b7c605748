//! Stage 3: run the converted float graph with tract.

mod conv_int8;
mod depthwise;
mod elems;
mod parallel;

pub use conv_int8::vnni_available as int8_kernel_available;

use std::time::Instant;

use crate::timing::ms_since;

use tract_tflite::internal::*;

use crate::model::{ConvertedModel, ModelError};
use conv_int8::ConvInt8;
use depthwise::FusedDepthwise;
use tract_tflite::internal::tract_core::ops::cnn::{Conv, PaddingSpec};

/// An optimized tract plan for the float graph; `Send + Sync`, shared by all threads.
pub struct Inference {
    plan: Arc<TypedRunnableModel>,
    input_shape: [usize; 4],
}

/// Milliseconds spent loading the float graph into tract and optimizing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TractLoadTimings {
    pub load_ms: f64,
    pub optimize_ms: f64,
}

/// Raw model outputs for one image: `[anchors × 4]` box encodings, `[anchors × classes]` scores.
pub struct RawOutputs {
    pub encodings: Vec<f32>,
    pub scores: Vec<f32>,
}

impl Inference {
    /// Load and optimize. `threads` > 1 lets tract split matrix products over a thread pool.
    /// Takes the float model's bytes by value so they are freed as soon as tract has copied them.
    pub fn load(
        float_tflite: Vec<u8>,
        converted: &ConvertedModel,
        threads: usize,
    ) -> Result<(Self, TractLoadTimings), ModelError> {
        let tract_err = |stage: &str, e: TractError| ModelError::Tract(format!("{stage}: {e:?}"));
        let t = Instant::now();
        let tflite = tract_tflite::tflite();
        let proto = tflite
            .proto_model_for_read(&mut &float_tflite[..])
            .map_err(|e| tract_err("reading", e))?;
        drop(float_tflite);
        let mut model = tflite
            .model_for_proto_model(&proto)
            .map_err(|e| tract_err("reading", e))?;
        drop(proto);
        fuse_depthwise(&mut model, &converted.fused_depthwise)
            .map_err(|e| tract_err("fusing depthwise", e))?;
        use_int8_convs(&mut model, &converted.int8_convs)
            .map_err(|e| tract_err("placing the 8-bit convolutions", e))?;
        hand_off_u8(&mut model).map_err(|e| tract_err("handing 8-bit values between ops", e))?;
        let load_ms = ms_since(t);
        let t = Instant::now();
        let model = model
            .into_optimized()
            .map_err(|e| tract_err("optimizing", e))?;
        let mut options = RunOptions::default();
        if threads > 1 {
            options.executor = Some(tract_linalg::multithread::Executor::multithread(threads));
        }
        let plan = model
            .into_runnable_with_options(&options)
            .map_err(|e| tract_err("planning", e))?;
        let optimize_ms = ms_since(t);
        let input = &converted.input;
        let input_shape = [1, input.height, input.width, input.channels];
        Ok((
            Inference { plan, input_shape },
            TractLoadTimings {
                load_ms,
                optimize_ms,
            },
        ))
    }

    /// How many nodes of each op kind the optimized plan has (for profiling notes), and under
    /// "(8-bit outputs)" how many pass 8-bit values to the next op.
    pub fn op_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for node in self.plan.model().nodes() {
            *counts.entry(node.op().name().to_string()).or_insert(0) += 1;
            if node
                .outputs
                .iter()
                .any(|o| o.fact.datum_type == u8::datum_type())
            {
                *counts.entry("(8-bit outputs)".to_string()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Time each op kind over `runs` inferences of `input`: mean milliseconds per inference.
    pub fn profile(
        &self,
        input: &[f32],
        runs: usize,
    ) -> Result<std::collections::BTreeMap<String, f64>, String> {
        use tract_tflite::internal::tract_core::plan::{eval, SimpleState};
        let mut totals = std::collections::BTreeMap::<String, f64>::new();
        let mut state = SimpleState::new(&self.plan).map_err(|e| e.to_string())?;
        for _ in 0..runs.max(1) {
            let tensor = Tensor::from_shape(&self.input_shape, input).map_err(|e| e.to_string())?;
            state
                .run_plan_with_eval(
                    tvec!(tensor.into_tvalue()),
                    |ctx, op_state, node, inputs| {
                        let t = Instant::now();
                        let out = eval(ctx, op_state, node, inputs);
                        *totals.entry(node.op().name().to_string()).or_default() += ms_since(t);
                        out
                    },
                )
                .map_err(|e| format!("{e:?}"))?;
        }
        totals.values_mut().for_each(|v| *v /= runs.max(1) as f64);
        Ok(totals)
    }

    /// Run one image (NHWC float input of the model's size).
    pub fn run(&self, input: Vec<f32>) -> Result<RawOutputs, String> {
        let tensor = Tensor::from_shape(&self.input_shape, &input).map_err(|e| e.to_string())?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into_tvalue()))
            .map_err(|e| format!("{e:?}"))?;
        let take = |i: usize| -> Result<Vec<f32>, String> {
            let t = outputs
                .get(i)
                .ok_or_else(|| format!("the model produced no output {i}"))?;
            let plain = t.try_as_plain_ram().map_err(|e| e.to_string())?;
            Ok(plain.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec())
        };
        Ok(RawOutputs {
            encodings: take(0)?,
            scores: take(1)?,
        })
    }
}

/// Connect each convolution the conversion kept in 8 bits: its input (an extra graph output)
/// through one [`ConvInt8`] op to where its output was used (an extra graph input), then drop
/// the extra inputs and outputs.
fn use_int8_convs(model: &mut TypedModel, sites: &[crate::model::Int8ConvSite]) -> TractResult<()> {
    if sites.is_empty() {
        return Ok(());
    }
    let (inputs, outputs) = (model.input_outlets()?.len(), model.output_outlets()?.len());
    let real_inputs = inputs - sites.len();
    for site in sites {
        // Read the outlets afresh: an earlier patch may have replaced one (a convolution whose
        // input is another 8-bit convolution's output).
        let source = model.input_outlets()?[site.graph_input];
        let input = model.output_outlets()?[site.graph_output];
        let mut patch = TypedModelPatch::new(format!("8-bit {}", site.name));
        let tapped = patch.tap_model(model, input)?;
        let op = ConvInt8::new(&site.spec).with_context(|| site.name.clone())?;
        let out = patch.wire_node(format!("{}.int8", site.name), op, &[tapped])?[0];
        patch.shunt_outside(model, source, out)?;
        patch.apply(model)?;
    }
    ensure!(outputs >= 2, "the float graph has {outputs} outputs");
    let keep_inputs = model.input_outlets()?[..real_inputs].to_vec();
    let keep_outputs = model.output_outlets()?[..2].to_vec();
    model.set_input_outlets(&keep_inputs)?;
    model.select_output_outlets(&keep_outputs)?;
    Ok(())
}

/// The 8-bit quantization an op of ours reads its input with, if it can read 8-bit values.
fn u8_input_quant(node: &TypedNode) -> Option<crate::model::TensorQuant> {
    if let Some(conv) = node.op_as::<ConvInt8>() {
        Some(conv.input_quant())
    } else {
        node.op_as::<FusedDepthwise>()?.input_quant
    }
}

/// Where one of our ops feeds only ops of ours that read the same 8-bit quantization (the
/// model's own for that tensor), pass 8-bit values instead of f32: a quarter of the memory
/// traffic, and the rounding LiteRT applies there anyway.
fn hand_off_u8(model: &mut TypedModel) -> TractResult<()> {
    let outputs = model.output_outlets()?.to_vec();
    for id in model.eval_order()? {
        let node = model.node(id);
        let quant = if let Some(conv) = node.op_as::<ConvInt8>() {
            conv.output_quant()
        } else if let Some(dw) = node.op_as::<FusedDepthwise>() {
            dw.output_quant
        } else {
            continue;
        };
        let Some(quant) = quant else { continue };
        let outlet = OutletId::new(id, 0);
        let consumers = model.outlet_successors(outlet).to_vec();
        let all_ours = !consumers.is_empty()
            && !outputs.contains(&outlet)
            && consumers.iter().all(|inlet| {
                inlet.slot == 0 && u8_input_quant(model.node(inlet.node)) == Some(quant)
            });
        if !all_ours {
            continue;
        }
        switch_to_u8(model.node_mut(id), false)?;
        let shape = model.node(id).outputs[0].fact.shape.clone();
        model.node_mut(id).outputs[0].fact = u8::fact(shape);
        for inlet in consumers {
            switch_to_u8(model.node_mut(inlet.node), true)?;
        }
    }
    Ok(())
}

/// Make an op of ours read (`input`) or write 8-bit values.
fn switch_to_u8(node: &mut TypedNode, input: bool) -> TractResult<()> {
    node.op = if let Some(conv) = node.op_as::<ConvInt8>() {
        Box::new(if input {
            conv.with_u8_input()
        } else {
            conv.with_u8_output()
        })
    } else if let Some(dw) = node.op_as::<FusedDepthwise>() {
        Box::new(if input {
            dw.with_u8_input()
        } else {
            dw.with_u8_output()
        })
    } else {
        bail!("{} cannot pass 8-bit values", node.name)
    };
    Ok(())
}

/// Replace each depthwise `Conv` the conversion marked with one [`FusedDepthwise`] op.
fn fuse_depthwise(
    model: &mut TypedModel,
    marked: &std::collections::HashMap<String, crate::model::DepthwiseSite>,
) -> TractResult<()> {
    for (name, site) in marked {
        let node = model.node_by_name(name)?.clone();
        let conv = node
            .op_as::<Conv>()
            .with_context(|| format!("{name} is not a convolution"))?;
        let input = model
            .outlet_fact(node.inputs[0])?
            .shape
            .as_concrete()
            .map(|s| s.to_vec());
        let Some(input) = input.filter(|s| s.len() == 4) else {
            bail!("{name}: input shape is not concrete NHWC")
        };
        let konst = |i: usize| -> TractResult<Vec<f32>> {
            let fact = model.outlet_fact(node.inputs[i])?;
            let k = fact
                .konst
                .as_ref()
                .with_context(|| format!("{name}: input {i} is not constant"))?;
            Ok(k.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
        };
        let (kernel, bias) = (konst(1)?, konst(2)?);
        let ks = &conv.pool_spec.kernel_shape;
        let channels = input[3];
        ensure!(
            ks.len() == 2 && kernel.len() == ks[0] * ks[1] * channels && bias.len() == channels
        );
        let strides = conv.pool_spec.strides();
        let same = match conv.pool_spec.padding {
            PaddingSpec::SameUpper => true,
            PaddingSpec::Valid => false,
            ref other => bail!("{name}: padding {other:?}"),
        };
        let (oh, pt) = FusedDepthwise::geometry(input[1], ks[0], strides[0], same);
        let (ow, pl) = FusedDepthwise::geometry(input[2], ks[1], strides[1], same);
        let op = FusedDepthwise {
            in_hw: (input[1], input[2]),
            out_hw: (oh, ow),
            channels,
            kernel_hw: (ks[0], ks[1]),
            stride: (strides[0], strides[1]),
            pad_before: (pt, pl),
            kernel: Arc::new(kernel),
            bias: Arc::new(bias),
            clamp: site.clamp,
            input_quant: site.input_quant,
            output_quant: site.output_quant,
            u8_input: false,
            u8_output: false,
        };
        let patch = TypedModelPatch::replace_single_op(model, &node, &[node.inputs[0]], op)?;
        patch.apply(model)?;
    }
    Ok(())
}
