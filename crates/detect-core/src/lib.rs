//! detect-core: SSD MobileNet V2 COCO object detection on tract-tflite and the project's own
//! 8-bit kernels. Knows no AWS and no HTTP: adapters (the Lambda function, the CLI, the
//! evaluation client) map its typed errors to their own statuses.
//!
//! The pipeline, in the order an image goes through it:
//! [`model`] (load + convert the TFLite file) → [`preprocess`] (decode, orient, resize,
//! normalize) → [`inference`] (tract graph + 8-bit kernels) → [`postprocess`] (anchor decoding,
//! NMS, labels), tied together by [`detector::Detector`], which returns the shared [`schema`].

pub mod detector;
pub mod error;
pub mod inference;
pub mod labels;
pub mod model;
pub mod postprocess;
pub mod preprocess;
pub mod schema;
pub mod timing;
pub mod work_queue;

pub use detector::{DetectOptions, Detector, DetectorConfig};
pub use error::DetectError;
pub use model::ModelSource;
pub use schema::{ImageOutcome, ImageResult};
