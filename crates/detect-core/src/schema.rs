//! The one result schema every output of the project uses: the CLI's JSON, the HTTP API's
//! `results`, and the result objects the S3 trigger writes.

use serde::{Deserialize, Serialize};

use crate::error::DetectError;

/// Box in normalized image coordinates, clipped to [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormalizedBox {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
}

/// Box in pixels of the original (EXIF-oriented) image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Class ID as in the label file (COCO: 0 = person).
    pub class_id: usize,
    pub label: String,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: NormalizedBox,
    pub box_px: PixelBox,
}

/// Milliseconds spent in each stage for one image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub decode: f64,
    pub preprocess: f64,
    pub inference: f64,
    pub postprocess: f64,
    pub total: f64,
}

/// One image as the core saw it: its detections, or the typed reason it has none. Adapters
/// turn it into the shared [`ImageResult`], choosing the per-image status of each error.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageOutcome {
    pub id: String,
    /// Size of the decoded, EXIF-oriented image (unknown when decoding failed).
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub result: Result<Vec<Detection>, DetectError>,
    pub timings_ms: Timings,
}

impl ImageOutcome {
    pub fn ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The shared result schema; `status_of` is the adapter's status for each error kind.
    pub fn into_result(self, status_of: impl FnOnce(&DetectError) -> u16) -> ImageResult {
        let (status, error, detections) = match self.result {
            Ok(detections) => (200, None, detections),
            Err(e) => (status_of(&e), Some(e.to_string()), Vec::new()),
        };
        ImageResult {
            id: self.id,
            status,
            error,
            width: self.width,
            height: self.height,
            detections,
            timings_ms: self.timings_ms,
        }
    }
}

/// The result for one image: `status` 200 with detections, or an error status and message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageResult {
    pub id: String,
    pub status: u16,
    pub error: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub detections: Vec<Detection>,
    pub timings_ms: Timings,
}

impl ImageResult {
    pub fn ok(&self) -> bool {
        self.status == 200
    }

    /// A failed image: no detections, the status and message of the error.
    pub fn failed(
        id: impl Into<String>,
        status: u16,
        error: impl Into<String>,
        timings_ms: Timings,
    ) -> Self {
        ImageResult {
            id: id.into(),
            status,
            error: Some(error.into()),
            width: None,
            height: None,
            detections: Vec::new(),
            timings_ms,
        }
    }
}
