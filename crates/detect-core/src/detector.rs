//! The pipeline in one object: load once, then detect in any number of images from any
//! number of threads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::timing::ms_since;

use serde::{Deserialize, Serialize};

use crate::error::DetectError;
use crate::inference::{Inference, Isa, KernelError, KernelSet};
use crate::labels::Labels;
use crate::model::{
    convert_with, ConversionStats, ConvertOptions, InputSpec, ModelError, ModelSource,
};
use crate::postprocess::{self, Anchor, FilterOptions, PostprocessParams};
use crate::preprocess::{self, ImageLimits};
use crate::schema::{Detection, ImageOutcome, NormalizedBox, PixelBox, Timings};
use crate::work_queue::map_in_order;

/// Default minimum score of a reported detection.
pub const DEFAULT_MIN_SCORE: f32 = 0.5;

#[derive(Clone, Debug)]
pub struct DetectorConfig {
    /// Threads tract may use inside one inference (1 = single-threaded kernels).
    pub threads: usize,
    pub limits: ImageLimits,
    /// Run the convolutions in 8 bits where the kernel set has a fast 8-bit GEMM; `false`
    /// keeps every convolution in f32.
    pub int8: bool,
    /// The kernel set to compute with; `None`: the process's choice (`DETECT_ISA`, by default
    /// the best this CPU runs).
    pub isa: Option<Isa>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threads: 1,
            limits: ImageLimits::default(),
            int8: true,
            isa: None,
        }
    }
}

/// What was loaded, for health checks and reports.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub input_width: usize,
    pub input_height: usize,
    pub labels: usize,
    pub anchors: usize,
    pub classes: usize,
    pub max_detections: usize,
    pub nms_iou_threshold: f32,
    pub use_regular_nms: bool,
    pub operators: usize,
    pub relu6_restored: usize,
    pub relu_restored: usize,
    /// Convolutions running in 8 bits (0: all in f32).
    pub int8_convolutions: usize,
    /// The kernel set the project's ops compute with (e.g. "avx512vnni", "avx2", "portable").
    pub kernels: String,
}

/// Why a detector could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The kernel set asked for (`DETECT_ISA` or the config) is unknown or not for this CPU.
    #[error(transparent)]
    Kernels(#[from] KernelError),
}

/// Where start-up time went, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LoadTimings {
    pub read_ms: f64,
    pub convert_ms: f64,
    pub tract_load_ms: f64,
    pub optimize_ms: f64,
    pub total_ms: f64,
}

/// A class named by ID or by label, as users write them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassRef {
    Id(usize),
    Name(String),
}

/// Options a caller may set per request (CLI flags, JSON `options`, query string).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectOptions {
    pub min_score: Option<f32>,
    pub max_results: Option<usize>,
    pub iou_threshold: Option<f32>,
    pub classes: Option<Vec<ClassRef>>,
    pub exclude_classes: Option<Vec<ClassRef>>,
    pub regular_nms: Option<bool>,
}

/// A bad option: the message says which and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionsError(pub String);

pub struct Detector {
    name: String,
    inference: Inference,
    input: InputSpec,
    anchors: Vec<Anchor>,
    params: PostprocessParams,
    labels: Labels,
    limits: ImageLimits,
    stats: ConversionStats,
    load_timings: LoadTimings,
}

impl Detector {
    /// Read, convert, load and optimize the model. Slow (tens to hundreds of ms): do it once.
    pub fn load(source: &ModelSource, config: &DetectorConfig) -> Result<Self, LoadError> {
        let start = Instant::now();
        let kernels = match config.isa {
            Some(isa) => KernelSet::for_isa(isa)?,
            None => KernelSet::selected()?,
        };
        let files = source.read()?;
        let read_ms = ms_since(start);
        let t = Instant::now();
        let options = ConvertOptions {
            int8_convs: config.int8 && kernels.int8_convs,
        };
        let mut converted = convert_with(&files.bytes, &options)?;
        let float_tflite = std::mem::take(&mut converted.float_tflite);
        let convert_ms = ms_since(t);
        // tract asserts on some malformed graphs; a bad model file must be an error, not a crash.
        let (inference, tract) = catch_unwind(AssertUnwindSafe(|| {
            Inference::load(float_tflite, &converted, config.threads.max(1), kernels)
        }))
        .map_err(|_| {
            ModelError::Tract("tract panicked while loading the converted graph".into())
        })??;
        let load_timings = LoadTimings {
            read_ms,
            convert_ms,
            tract_load_ms: tract.load_ms,
            optimize_ms: tract.optimize_ms,
            total_ms: ms_since(start),
        };
        Ok(Detector {
            name: files.name,
            inference,
            input: converted.input,
            anchors: converted.anchors,
            params: converted.params,
            labels: files.labels,
            limits: config.limits,
            stats: converted.stats,
            load_timings,
        })
    }

    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            name: self.name.clone(),
            input_width: self.input.width,
            input_height: self.input.height,
            labels: self.labels.len(),
            anchors: self.anchors.len(),
            classes: self.params.num_classes,
            max_detections: self.params.max_detections,
            nms_iou_threshold: self.params.nms_iou_threshold,
            use_regular_nms: self.params.use_regular_nms,
            operators: self.stats.operators,
            relu6_restored: self.stats.relu6_restored,
            relu_restored: self.stats.relu_restored,
            int8_convolutions: self.stats.int8_convs,
            kernels: self.inference.kernels().isa.name().to_string(),
        }
    }

    pub fn load_timings(&self) -> LoadTimings {
        self.load_timings
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    pub fn limits(&self) -> &ImageLimits {
        &self.limits
    }

    /// Check user options against this model and its labels (min_score defaults to 0.5).
    pub fn resolve_options(&self, options: &DetectOptions) -> Result<FilterOptions, OptionsError> {
        let classes = |list: &[ClassRef]| -> Result<Vec<usize>, OptionsError> {
            list.iter()
                .map(|c| {
                    let id = match c {
                        ClassRef::Id(id) => Some(*id),
                        ClassRef::Name(name) => self.labels.resolve(name),
                    };
                    id.filter(|&id| id < self.params.num_classes).ok_or_else(|| {
                        OptionsError(format!(
                            "unknown class {c:?}: give a label from the model's label file (e.g. \"person\") or an ID below {}",
                            self.params.num_classes
                        ))
                    })
                })
                .collect()
        };
        let min_score = options.min_score.unwrap_or(DEFAULT_MIN_SCORE);
        if !(0.0..=1.0).contains(&min_score) {
            return Err(OptionsError(format!(
                "min_score must be between 0 and 1, got {min_score}"
            )));
        }
        if let Some(iou) = options.iou_threshold {
            if !(0.0..=1.0).contains(&iou) {
                return Err(OptionsError(format!(
                    "iou_threshold must be between 0 and 1, got {iou}"
                )));
            }
        }
        if options.max_results == Some(0) {
            return Err(OptionsError("max_results must be at least 1".into()));
        }
        Ok(FilterOptions {
            min_score: Some(min_score),
            max_results: options.max_results,
            iou_threshold: options.iou_threshold,
            allowed_classes: options.classes.as_deref().map(classes).transpose()?,
            denied_classes: options
                .exclude_classes
                .as_deref()
                .map(classes)
                .transpose()?
                .unwrap_or_default(),
            regular_nms: options.regular_nms,
        })
    }

    /// Decode and preprocess only: the model input for an encoded image (for benchmarks).
    pub fn preprocess(&self, bytes: &[u8]) -> Result<Vec<f32>, preprocess::ImageError> {
        let decoded = preprocess::decode_for(bytes, &self.limits, &self.input)?;
        Ok(preprocess::to_input(&decoded.image, &self.input))
    }

    /// Op kinds of the optimized tract plan and their counts.
    pub fn plan_op_counts(&self) -> std::collections::BTreeMap<String, usize> {
        self.inference.op_counts()
    }

    /// Mean milliseconds per inference spent in each op kind, over `runs` runs on a mid-grey
    /// image (for profiling notes).
    pub fn profile(&self, runs: usize) -> Result<std::collections::BTreeMap<String, f64>, String> {
        let input = vec![0.0; self.input.height * self.input.width * self.input.channels];
        self.inference.profile(&input, runs)
    }

    /// Inference only, on an input from [`Detector::preprocess`] (for benchmarks).
    pub fn infer(&self, input: Vec<f32>) -> Result<crate::inference::RawOutputs, String> {
        self.inference.run(input)
    }

    /// Detect objects in one encoded image. Never panics: a failure is the outcome's error.
    pub fn detect(&self, id: &str, bytes: &[u8], options: &FilterOptions) -> ImageOutcome {
        let start = Instant::now();
        let mut outcome = ImageOutcome {
            id: id.to_string(),
            width: None,
            height: None,
            result: Err(DetectError::Internal),
            timings_ms: Timings::default(),
        };
        // A panic leaves `result` at Internal and keeps what was known before it.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.detect_into(&mut outcome, bytes, options)
        }));
        outcome.timings_ms.total = ms_since(start);
        outcome
    }

    fn detect_into(&self, outcome: &mut ImageOutcome, bytes: &[u8], options: &FilterOptions) {
        let timings = &mut outcome.timings_ms;
        let t = Instant::now();
        let decoded = preprocess::decode_for(bytes, &self.limits, &self.input);
        timings.decode = ms_since(t);
        let preprocess::Decoded {
            image,
            width,
            height,
        } = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                outcome.result = Err(e.into());
                return;
            }
        };
        (outcome.width, outcome.height) = (Some(width), Some(height));
        let t = Instant::now();
        let input = preprocess::to_input(&image, &self.input);
        drop(image);
        timings.preprocess = ms_since(t);
        let t = Instant::now();
        let raw = self.inference.run(input);
        timings.inference = ms_since(t);
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                outcome.result = Err(DetectError::Inference(e));
                return;
            }
        };
        let t = Instant::now();
        let found = postprocess::detect(
            &raw.encodings,
            &raw.scores,
            &self.anchors,
            &self.params,
            options,
        );
        timings.postprocess = ms_since(t);
        outcome.result = match found {
            Ok(found) => Ok(found
                .iter()
                .map(|d| self.to_detection(d, width, height))
                .collect()),
            Err(e) => Err(e.into()),
        };
    }

    fn to_detection(&self, d: &postprocess::RawDetection, width: u32, height: u32) -> Detection {
        let clip = |v: f32| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        let bbox = NormalizedBox {
            xmin: clip(d.bbox.xmin),
            ymin: clip(d.bbox.ymin),
            xmax: clip(d.bbox.xmax),
            ymax: clip(d.bbox.ymax),
        };
        let px = |v: f32, size: u32| (v * size as f32).round() as u32;
        let (x0, y0) = (px(bbox.xmin, width), px(bbox.ymin, height));
        let (x1, y1) = (px(bbox.xmax, width).max(x0), px(bbox.ymax, height).max(y0));
        Detection {
            class_id: d.class_id,
            label: self.labels.name(d.class_id),
            score: d.score,
            bbox,
            box_px: PixelBox {
                x: x0,
                y: y0,
                width: x1 - x0,
                height: y1 - y0,
            },
        }
    }

    /// Detect in many images using `workers` threads (each runs whole images), results in input order.
    pub fn detect_batch<S: AsRef<str> + Sync, B: AsRef<[u8]> + Sync>(
        &self,
        images: &[(S, B)],
        options: &FilterOptions,
        workers: usize,
    ) -> Vec<ImageOutcome> {
        let results = map_in_order(images.len(), workers, |i| {
            let (id, bytes) = &images[i];
            self.detect(id.as_ref(), bytes.as_ref(), options)
        });
        results
            .into_iter()
            .zip(images)
            .map(|(r, (id, _))| {
                r.unwrap_or_else(|| ImageOutcome {
                    id: id.as_ref().to_string(),
                    width: None,
                    height: None,
                    result: Err(DetectError::Internal),
                    timings_ms: Timings::default(),
                })
            })
            .collect()
    }
}
