//! The AWS Lambda adapter: HTTP requests and S3 events in, the core's results out.
//! It knows the detector only through its public API, never tract.

pub mod handler;
pub mod logging;
pub mod request;
pub mod s3;
