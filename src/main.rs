//! `detect-lambda`: the AWS Lambda function (HTTP API, function URL, REST API, S3 trigger).
//! The model is loaded once, before the first invocation; everything else is in
//! `lambda_detect::handler`.

use std::sync::Arc;

use lambda_detect::{handler::App, logging};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let app = Arc::new(App::from_env().await?);
    lambda_http::run(lambda_http::service_fn(move |req| {
        let app = app.clone();
        async move { app.handle(req).await }
    }))
    .await
}
