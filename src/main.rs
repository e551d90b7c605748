//! `detect-lambda`: the AWS Lambda function (HTTP API, function URL, REST API, S3 trigger).
//! Sets up logging, loads the model once before the first invocation, then serves; everything
//! else is in `lambda_detect::handler`.

use std::sync::Arc;

use lambda_detect::handler::App;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // lambda_runtime's subscriber: AWS_LAMBDA_LOG_LEVEL (else RUST_LOG, else INFO) and
    // AWS_LAMBDA_LOG_FORMAT (JSON, else text), as Lambda's advanced logging controls set them.
    lambda_http::tracing::init_default_subscriber();
    Arc::new(App::from_env().await?).serve().await
}
