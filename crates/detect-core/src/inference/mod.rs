//! Stage 3: run the converted model: tract plans the float graph, with the project's own ops
//! (8-bit convolutions, fused depthwise convolutions) wired in, computing with one kernel set.
//!
//! [`ops`] holds the tract `Op` wrappers, [`graph`] the rewrites that put them in place, and
//! [`kernels`] the arithmetic (portable and SIMD builds) and the table that picks one.

mod graph;
pub mod kernels;
mod ops;

pub use kernels::{Isa, KernelError, KernelSet};

use std::time::Instant;

use crate::timing::ms_since;

use tract_tflite::internal::*;

use crate::model::{ConvertedModel, ModelError};

/// An optimized tract plan for the float graph; `Send + Sync`, shared by all threads.
pub struct Inference {
    plan: Arc<TypedRunnableModel>,
    input_shape: [usize; 4],
    kernels: &'static KernelSet,
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
    /// Load and optimize, the project's ops computing with `kernels`. `threads` > 1 lets tract
    /// split matrix products over a thread pool. Takes the float model's bytes by value so they
    /// are freed as soon as tract has copied them.
    pub fn load(
        float_tflite: Vec<u8>,
        converted: &ConvertedModel,
        threads: usize,
        kernels: &'static KernelSet,
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
        graph::fuse_depthwise(&mut model, &converted.fused_depthwise, kernels)
            .map_err(|e| tract_err("fusing depthwise", e))?;
        graph::use_int8_convs(&mut model, &converted.int8_convs, kernels)
            .map_err(|e| tract_err("placing the 8-bit convolutions", e))?;
        graph::hand_off_u8(&mut model)
            .map_err(|e| tract_err("handing 8-bit values between ops", e))?;
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
            Inference {
                plan,
                input_shape,
                kernels,
            },
            TractLoadTimings {
                load_ms,
                optimize_ms,
            },
        ))
    }

    /// The kernel set the project's ops compute with.
    pub fn kernels(&self) -> &'static KernelSet {
        self.kernels
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
