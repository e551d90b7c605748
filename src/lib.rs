//! The `detect-lambda` function: API Gateway / function-URL requests, S3 events, SQS batches of
//! S3 notifications and S3 Batch Operations tasks in, the core's results out. It knows the
//! detector only through detect-core's public API, never tract.

pub mod batch;
pub mod errors;
pub mod handler;
pub mod logging;
pub mod queue;
pub mod request;
pub mod s3;
