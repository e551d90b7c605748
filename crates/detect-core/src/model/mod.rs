//! Stage 1 of the pipeline: get the model bytes (embedded or from a file), convert them to a
//! graph tract can run (float ops, with the convolutions the 8-bit kernels take over split out;
//! see [`convert`]), and read the labels.
//!
//! [`facts`] holds what the later stages need to know about the converted model (input
//! quantization, the 8-bit and fused sites); it depends on nothing else here.

mod convert;
mod facts;
mod postprocess_options;

use std::path::{Path, PathBuf};

pub use convert::{convert, convert_with, ConversionStats, ConvertOptions, ConvertedModel};
pub use facts::{
    DepthwiseSite, InputQuantization, InputSpec, Int8ConvSite, QuantizedConv, TensorQuant,
};
pub use postprocess_options::{parse_postprocess_options, POSTPROCESS_OP};

use crate::labels::{Labels, LabelsError};

/// File name of the bundled model (SSD MobileNet V2 COCO, quantized, Coral).
pub const EMBEDDED_MODEL_NAME: &str = "mobilenet_ssd_v2_coco_quant_postprocess.tflite";

/// The bundled model and labels, embedded so a Lambda bootstrap needs no other file.
/// `build.rs` checks they were fetched (scripts/fetch-model.sh) before this compiles.
pub const EMBEDDED_MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
));
pub const EMBEDDED_LABELS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/coco_labels.txt"
));

/// Environment variables that point the detector at another model / label file.
pub const MODEL_PATH_ENV: &str = "LAMBDA_DETECT_MODEL";
pub const LABELS_PATH_ENV: &str = "LAMBDA_DETECT_LABELS";

/// Why a model could not be loaded. Messages name the tensor or op and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model: {0}")]
    Invalid(String),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("cannot read {path}: {source} (check the path given by --model or {MODEL_PATH_ENV})")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid label file: {0}")]
    Labels(String),
    #[error("tract could not load the converted model: {0}")]
    Tract(String),
}

impl From<LabelsError> for ModelError {
    fn from(e: LabelsError) -> Self {
        ModelError::Labels(e.0)
    }
}

impl ModelError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        ModelError::Invalid(msg.into())
    }
    pub(crate) fn unsupported(msg: impl Into<String>) -> Self {
        ModelError::Unsupported(msg.into())
    }
}

/// Where the model comes from.
#[derive(Clone, Debug, Default)]
pub enum ModelSource {
    /// The bundled SSD MobileNet V2 COCO model, or the files named by
    /// `LAMBDA_DETECT_MODEL` / `LAMBDA_DETECT_LABELS` when set.
    #[default]
    Default,
    /// A TFLite file and its label file.
    Files { model: PathBuf, labels: PathBuf },
}

/// Model bytes and label text, plus a name for reports.
pub struct ModelFiles {
    pub name: String,
    pub bytes: std::borrow::Cow<'static, [u8]>,
    pub labels: Labels,
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl ModelSource {
    /// Resolve the environment overrides of [`ModelSource::Default`].
    pub fn from_env() -> Self {
        match (
            std::env::var_os(MODEL_PATH_ENV),
            std::env::var_os(LABELS_PATH_ENV),
        ) {
            (Some(model), Some(labels)) => ModelSource::Files {
                model: model.into(),
                labels: labels.into(),
            },
            (Some(model), None) => {
                // A label file beside the model, or the COCO labels.
                let model = PathBuf::from(model);
                let labels = model.with_file_name("coco_labels.txt");
                ModelSource::Files { model, labels }
            }
            _ => ModelSource::Default,
        }
    }

    pub fn read(&self) -> Result<ModelFiles, ModelError> {
        match self {
            ModelSource::Default => Ok(ModelFiles {
                name: EMBEDDED_MODEL_NAME.to_string(),
                bytes: std::borrow::Cow::Borrowed(EMBEDDED_MODEL),
                labels: Labels::parse(EMBEDDED_LABELS)?,
            }),
            ModelSource::Files { model, labels } => {
                let text = String::from_utf8(read(labels)?).map_err(|_| {
                    ModelError::Labels(format!("{} is not UTF-8 text", labels.display()))
                })?;
                Ok(ModelFiles {
                    name: model
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| model.display().to_string()),
                    bytes: std::borrow::Cow::Owned(read(model)?),
                    labels: Labels::parse(&text)?,
                })
            }
        }
    }
}
