//! The `detect-lambda` function: API Gateway / function-URL requests and S3 events in, the
//! core's results out. It knows the detector only through detect-core's public API, never tract.

pub mod errors;
pub mod handler;
pub mod logging;
pub mod openapi;
pub mod rekognition;
pub mod request;
pub mod s3;
