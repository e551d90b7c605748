//! The one place the function maps the core's typed errors to HTTP statuses: the per-image
//! `status` of results (HTTP responses and S3 result objects alike).

use detect_core::error::{DetectError, ImageError};

/// Per-image status of a core error: the client's fault (4xx) or ours (500).
pub fn image_status(e: &DetectError) -> u16 {
    match e {
        DetectError::Image(ImageError::Empty) => 400,
        DetectError::Image(ImageError::UnsupportedFormat) => 415,
        DetectError::Image(ImageError::TooManyPixels { .. } | ImageError::TooLarge) => 413,
        DetectError::Image(ImageError::Corrupt(_)) => 422,
        DetectError::Options(_) => 400,
        DetectError::Inference(_) | DetectError::Internal => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_faults_are_4xx_and_ours_500() {
        assert_eq!(image_status(&ImageError::Empty.into()), 400);
        assert_eq!(image_status(&ImageError::UnsupportedFormat.into()), 415);
        assert_eq!(image_status(&ImageError::TooLarge.into()), 413);
        assert_eq!(image_status(&ImageError::Corrupt("x".into()).into()), 422);
        assert_eq!(image_status(&DetectError::Inference("x".into())), 500);
        assert_eq!(image_status(&DetectError::Internal), 500);
    }
}
