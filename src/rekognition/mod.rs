//! Amazon Rekognition's `DetectLabels`, served by this function so an existing Rekognition
//! client (boto3, the AWS CLI, any AWS SDK) works by changing only its endpoint URL.
//!
//! Protocol: AWS JSON 1.1 — `POST` with `X-Amz-Target: RekognitionService.DetectLabels`
//! and a JSON body; errors are a 4xx/5xx status with `{"__type", "Message"}` (also in the
//! `X-Amzn-ErrorType` header). Any `POST` carrying `X-Amz-Target` on a path that is not
//! one of the native routes comes here, so API stage prefixes and function-URL paths work.
//!
//! The request is translated to a native `POST /api/detect` (raw image bytes, or a JSON S3
//! reference) and answered by [`App::handle_http`]: the S3 allow-list and input-prefix
//! rules, the limits and the detector are the native API's own. Its per-image result is
//! then reshaped ([`response`]) and its error statuses mapped to Rekognition's exceptions
//! ([`error`]).

pub mod error;
pub mod request;
pub mod response;

use lambda_http::http::HeaderMap;
use serde_json::{json, Value};

use crate::handler::{App, HttpReply};
use crate::request::route_for_path;
use detect_core::schema::ImageResult;
pub use error::{ErrorKind, RekognitionError};
use request::{ImageInput, LabelsRequest};

/// The one operation served.
pub const DETECT_LABELS_TARGET: &str = "RekognitionService.DetectLabels";
/// The protocol's content type, for requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The `X-Amz-Target` of a request this module answers: a `POST` with that header on a
/// path that is not a native route. `None` leaves the request to the native router.
pub fn target<'a>(method: &str, headers: &'a HeaderMap, path: &str) -> Option<&'a str> {
    if !method.eq_ignore_ascii_case("POST") || route_for_path(path).is_some() {
        return None;
    }
    headers.get("x-amz-target").and_then(|v| v.to_str().ok())
}

/// A reply in the protocol's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Echoed as `X-Amzn-RequestId` (clients show it in `ResponseMetadata`).
    pub request_id: String,
}

impl Reply {
    /// The `__type` of an error reply.
    pub fn error_type(&self) -> Option<&str> {
        self.body.get("__type").and_then(Value::as_str)
    }

    pub fn into_response(self) -> lambda_http::Response<lambda_http::Body> {
        let mut builder = lambda_http::Response::builder()
            .status(self.status)
            .header("content-type", CONTENT_TYPE)
            .header("x-amzn-requestid", self.request_id.as_str());
        if let Some(kind) = self.error_type() {
            builder = builder.header("x-amzn-errortype", kind);
        }
        let text = self.body.to_string();
        builder
            .body(lambda_http::Body::Text(text.clone()))
            .unwrap_or_else(|_| lambda_http::Response::new(lambda_http::Body::Text(text)))
    }
}

/// Answers one request whose `X-Amz-Target` is `target`.
pub async fn handle(app: &App, target: &str, body: &[u8], request_id: &str) -> Reply {
    let outcome = if target == DETECT_LABELS_TARGET {
        detect_labels(app, body, request_id).await
    } else {
        Err(RekognitionError::new(
            ErrorKind::UnknownOperation,
            format!(
                "operation {:?} is not supported; this endpoint serves {DETECT_LABELS_TARGET}",
                target.chars().take(100).collect::<String>()
            ),
        ))
    };
    let (status, body) = match outcome {
        Ok(body) => (200, body),
        Err(e) => {
            tracing::info!(request_id, error = e.kind.type_name(), message = %e.message, "rekognition error");
            (e.kind.status(), e.to_json())
        }
    };
    Reply {
        status,
        body,
        request_id: request_id.to_string(),
    }
}

async fn detect_labels(
    app: &App,
    body: &[u8],
    request_id: &str,
) -> Result<Value, RekognitionError> {
    let request = request::parse(body)?;
    let reply = native_detect(app, &request, request_id).await;
    let result = image_result(&reply)?;
    Ok(response::body(&result, &request, &model_version(&reply)))
}

/// The request as a native `POST /api/detect`: the score threshold is MinConfidence / 100;
/// label filters and MaxLabels apply to labels, so they are applied afterwards.
async fn native_detect(app: &App, request: &LabelsRequest, request_id: &str) -> HttpReply {
    let min_score = request.min_confidence / 100.0;
    match &request.image {
        ImageInput::Bytes(bytes) => {
            let query = [("min_score".to_string(), min_score.to_string())];
            app.handle_http(
                "POST",
                "/api/detect",
                Some("application/octet-stream"),
                bytes,
                &query,
                request_id,
            )
            .await
        }
        ImageInput::S3 {
            bucket,
            name,
            version,
        } => {
            let body = json!({
                "images": [{"id": name, "s3": {"bucket": bucket, "key": name, "version": version}}],
                "options": {"min_score": min_score},
            });
            app.handle_http(
                "POST",
                "/api/detect",
                Some("application/json"),
                body.to_string().as_bytes(),
                &[],
                request_id,
            )
            .await
        }
    }
}

/// The one image's result, or the Rekognition error for the native reply's failure.
fn image_result(reply: &HttpReply) -> Result<ImageResult, RekognitionError> {
    let first = reply.body["results"]
        .get(0)
        .and_then(|r| serde_json::from_value::<ImageResult>(r.clone()).ok());
    match first {
        Some(result) if result.ok() => Ok(result),
        Some(result) => Err(RekognitionError::from_image_status(
            result.status,
            result.error.unwrap_or_else(|| "the image failed".into()),
        )),
        None => {
            let message = reply.body["error"]["message"]
                .as_str()
                .unwrap_or("the request failed")
                .to_string();
            let kind = match reply.status {
                400 => ErrorKind::InvalidParameter,
                413 => ErrorKind::ImageTooLarge,
                _ => ErrorKind::InternalServerError,
            };
            Err(RekognitionError::new(kind, message))
        }
    }
}

/// `LabelModelVersion`: the model's file name without its extension.
fn model_version(reply: &HttpReply) -> String {
    let name = reply.body["model"]["name"].as_str().unwrap_or("unknown");
    name.strip_suffix(".tflite").unwrap_or(name).to_string()
}

#[cfg(test)]
pub(crate) mod tests;
