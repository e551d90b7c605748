//! Stage 3: run the converted float graph with tract.

use std::time::Instant;

use crate::timing::ms_since;

use tract_tflite::prelude::*;

use crate::model::{InputSpec, ModelError};

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
    pub fn load(
        float_tflite: &[u8],
        input: &InputSpec,
        threads: usize,
    ) -> Result<(Self, TractLoadTimings), ModelError> {
        let tract_err = |stage: &str, e: TractError| ModelError::Tract(format!("{stage}: {e:?}"));
        let t = Instant::now();
        let model = tract_tflite::tflite()
            .model_for_read(&mut &float_tflite[..])
            .map_err(|e| tract_err("reading", e))?;
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
        let input_shape = [1, input.height, input.width, input.channels];
        Ok((
            Inference { plan, input_shape },
            TractLoadTimings {
                load_ms,
                optimize_ms,
            },
        ))
    }

    /// How many nodes of each op kind the optimized plan has (for profiling notes).
    pub fn op_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for node in self.plan.model().nodes() {
            *counts.entry(node.op().name().to_string()).or_insert(0) += 1;
        }
        counts
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
