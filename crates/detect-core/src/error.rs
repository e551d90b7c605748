//! Why an image produced no detections: the core's typed errors. Adapters map each kind to
//! their own vocabulary (HTTP status, per-image status, exit code) in one place each; nothing
//! here knows a transport.

pub use crate::postprocess::PostprocessError;
pub use crate::preprocess::ImageError;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DetectError {
    /// The bytes are not a usable image (empty, unknown format, corrupt, too large).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The caller's options do not fit the model (e.g. a class ID it does not have).
    #[error(transparent)]
    Options(#[from] PostprocessError),
    /// tract failed to run the graph.
    #[error("inference failed: {0}")]
    Inference(String),
    /// A bug: a panic or a lost worker thread while processing this image.
    #[error("internal error while processing this image (a bug: please report it with the image)")]
    Internal,
}
