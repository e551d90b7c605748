//! The `detect-lambda` function: API Gateway / function-URL requests and S3 events in, the
//! core's results out. `request` parses HTTP requests, `events` recognises non-HTTP events,
//! `handler` runs both, `s3` talks to S3, `errors` maps core errors to statuses, `metrics` writes the
//! CloudWatch EMF line.
//! It knows the detector only through detect-core's public API, never tract.

pub mod errors;
pub mod events;
pub mod handler;
pub mod metrics;
pub mod request;
pub mod s3;
