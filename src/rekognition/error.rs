//! Errors in the AWS JSON 1.1 shape: an HTTP status, `__type` and `Message`, as
//! Rekognition's clients (botocore, the AWS SDKs) parse them into typed exceptions.

use serde_json::{json, Value};

/// Every error the Rekognition route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A request field is missing, malformed or out of range.
    InvalidParameter,
    /// The bytes are not an image the detector can decode.
    InvalidImageFormat,
    /// The image (or the body carrying it) is over a size limit.
    ImageTooLarge,
    /// The S3 object does not exist or S3 is not configured for the function.
    InvalidS3Object,
    /// The bucket or key is outside what the function may read (allow-list, input prefix).
    AccessDenied,
    /// S3 is slow, throttling or unreachable: worth retrying (clients back off on this one).
    Throttling,
    /// A bug or a failed inference.
    InternalServerError,
    /// An `X-Amz-Target` other than `RekognitionService.DetectLabels`.
    UnknownOperation,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::InvalidParameter,
        ErrorKind::InvalidImageFormat,
        ErrorKind::ImageTooLarge,
        ErrorKind::InvalidS3Object,
        ErrorKind::AccessDenied,
        ErrorKind::Throttling,
        ErrorKind::InternalServerError,
        ErrorKind::UnknownOperation,
    ];

    /// The `__type` clients map to an exception class.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "InvalidParameterException",
            ErrorKind::InvalidImageFormat => "InvalidImageFormatException",
            ErrorKind::ImageTooLarge => "ImageTooLargeException",
            ErrorKind::InvalidS3Object => "InvalidS3ObjectException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::InternalServerError => "InternalServerError",
            ErrorKind::UnknownOperation => "UnknownOperationException",
        }
    }

    /// HTTP status: 400 for everything the caller can act on (botocore's legacy retry rule
    /// for ThrottlingException expects 400), 500 only for our own faults.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalServerError => 500,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekognitionError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RekognitionError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RekognitionError {
            kind,
            message: message.into(),
        }
    }

    /// `{"__type": "...", "Message": "..."}`
    pub fn to_json(&self) -> Value {
        json!({ "__type": self.kind.type_name(), "Message": self.message })
    }

    /// The error for a failed image of the native pipeline, from its per-image status
    /// (see `crate::errors::image_status` and the S3 fetch's statuses).
    pub fn from_image_status(status: u16, message: impl Into<String>) -> Self {
        let kind = match status {
            400 | 415 | 422 => ErrorKind::InvalidImageFormat,
            413 => ErrorKind::ImageTooLarge,
            403 => ErrorKind::AccessDenied,
            404 | 501 => ErrorKind::InvalidS3Object,
            502..=504 => ErrorKind::Throttling,
            _ => ErrorKind::InternalServerError,
        };
        RekognitionError::new(kind, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_image_statuses_map_to_rekognition_exceptions() {
        let kind = |s| RekognitionError::from_image_status(s, "m").kind;
        assert_eq!(kind(415), ErrorKind::InvalidImageFormat);
        assert_eq!(kind(422), ErrorKind::InvalidImageFormat);
        assert_eq!(kind(400), ErrorKind::InvalidImageFormat);
        assert_eq!(kind(413), ErrorKind::ImageTooLarge);
        assert_eq!(kind(403), ErrorKind::AccessDenied);
        assert_eq!(kind(404), ErrorKind::InvalidS3Object);
        assert_eq!(kind(501), ErrorKind::InvalidS3Object);
        assert_eq!(kind(502), ErrorKind::Throttling);
        assert_eq!(kind(504), ErrorKind::Throttling);
        assert_eq!(kind(500), ErrorKind::InternalServerError);
    }

    #[test]
    fn body_and_status_follow_the_protocol() {
        let e = RekognitionError::new(ErrorKind::Throttling, "slow");
        assert_eq!(e.to_json()["__type"], "ThrottlingException");
        assert_eq!(e.to_json()["Message"], "slow");
        assert_eq!(e.kind.status(), 400);
        assert_eq!(ErrorKind::InternalServerError.status(), 500);
    }
}
