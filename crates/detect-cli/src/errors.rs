//! The one place the CLI maps errors to what it reports: the per-image `status` of the shared
//! result schema (the same numbers the function answers with) and the process exit code.

use detect_core::error::{DetectError, ImageError};

/// Exit code: every image failed (or none was given).
pub const EXIT_NO_IMAGE: u8 = 1;
/// Exit code: bad arguments or a model that cannot be loaded.
pub const EXIT_USAGE: u8 = 2;

/// Per-image status of a file that could not be read.
pub const UNREADABLE_STATUS: u16 = 400;

/// Per-image status of a core error: the input's fault (4xx) or ours (500).
pub fn image_status(e: &DetectError) -> u16 {
    match e {
        DetectError::Image(ImageError::Empty) | DetectError::Options(_) => 400,
        DetectError::Image(ImageError::UnsupportedFormat) => 415,
        DetectError::Image(ImageError::TooManyPixels { .. } | ImageError::TooLarge) => 413,
        DetectError::Image(ImageError::Corrupt(_)) => 422,
        DetectError::Inference(_) | DetectError::Internal => 500,
    }
}
