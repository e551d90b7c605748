//! lambda-detect: SSD MobileNet V2 COCO object detection on tract-tflite.
//!
//! The pipeline, in the order an image goes through it:
//! [`model`] (load + convert the TFLite file) → [`preprocess`] (decode, orient, resize,
//! normalize) → [`inference`] (tract) → [`postprocess`] (anchor decoding, NMS, labels),
//! tied together by [`detector::Detector`], which returns the shared [`schema`].

pub mod annotate;
pub mod detector;
pub mod eval;
pub mod inference;
pub mod labels;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod model;
pub mod postprocess;
pub mod preprocess;
pub mod schema;
pub mod timing;

pub use detector::{DetectOptions, Detector, DetectorConfig};
pub use model::ModelSource;
pub use schema::ImageResult;
