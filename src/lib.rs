//! The `detect-lambda` function: API Gateway / function-URL requests, S3 events, SQS batches of
//! S3 notifications and S3 Batch Operations tasks in, the core's results out. `request` parses
//! HTTP requests, `events` recognises the other event kinds (`queue` and `batch` answer theirs),
//! `handler` runs them, `s3` talks to S3, `errors` maps core errors to statuses, `metrics`
//! writes the CloudWatch EMF line, `rekognition` answers Rekognition's DetectLabels and
//! `openapi` serves the API's OpenAPI document. It knows the detector only through
//! detect-core's public API, never tract.

pub mod batch;
pub mod errors;
pub mod events;
pub mod handler;
pub mod metrics;
pub mod openapi;
pub mod queue;
pub mod rekognition;
pub mod request;
pub mod s3;
