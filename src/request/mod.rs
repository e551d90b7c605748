//! HTTP request parsing for the Lambda function: routing, body forms, options and limits,
//! one concern per submodule (`route`, `limits`, `error`, `content_type`, `options`,
//! `json_body`, `b64`, `multipart`).
//!
//! Pure: plain inputs (method, path, content type, body bytes, decoded query pairs) in,
//! a [`DetectRequest`] or an [`ApiError`] out. No runtime, no AWS, no image decoding, so
//! every rule here is unit-tested without Lambda.
//!
//! # Routes ([`route`])
//!
//! `POST /api/detect` and `GET /api/health`. The path is matched on its ending, so a REST
//! API stage prefix (`/prod/api/detect`) and trailing slashes are accepted. An unknown path
//! is a 404 listing the routes; a known path with any other method (HEAD and OPTIONS
//! included: CORS preflight is not handled here) is a 405 naming the allowed method.
//! Method names are compared case-insensitively.
//!
//! # Body forms of `POST /api/detect` ([`parse_detect_request`])
//!
//! Checked in this order: body size (413, before anything is parsed), content type (415),
//! empty body (400), query-string options (400), then the body itself.
//!
//! * `application/json` (also `application/*+json`; parameters such as `charset` ignored):
//!   `{"images": [{"id": "...", "data": "<base64>"} | {"id": "...", "s3": {"bucket": "...",
//!   "key": "...", "version": "..."}}], "options": {...}}`. `id` is optional (missing, null
//!   or empty → `image-<index>`); each image has exactly one of `data` / `s3`. Base64 may use
//!   the standard or the URL-safe alphabet (or a mix), with or without padding, with ASCII
//!   whitespace anywhere, and may be a `data:<type>;base64,` URL. Unknown fields (top level,
//!   image entry, S3 reference, options) are errors. The legacy form, an object mapping file
//!   names to base64 strings (`{"a.jpg": "<b64>"}`), is recognised when there is neither an
//!   `images` nor an `options` key; its ids are the keys, in body order.
//! * `image/*` and `application/octet-stream`: the raw body is one image, whose id is the
//!   query parameter `id` (or `image`), else `image-0`.
//! * `multipart/form-data; boundary=...` (RFC 7578): every part with a `filename` parameter,
//!   or with an `image/*` / `application/octet-stream` content type, is an image, with id =
//!   filename, else the part name, else `image-<index>`. A part named `options` holds JSON
//!   options (an empty one means none). Other text parts, `id` included, are ignored. A file
//!   part with `filename=""` and no content (a browser's unselected file input) is skipped.
//!   `Content-Transfer-Encoding: base64` on a file part is decoded. The framing (delimiters,
//!   transport padding, preamble and epilogue, part headers) is read by the `multer` crate; a
//!   part's content must not contain `CRLF--boundary` (RFC 2046 forbids it; it ends the part).
//! * No content type: JSON if the first non-whitespace byte is `{`, else a raw image.
//!
//! Options can also come from the query string (`min_score`, `max_results`,
//! `iou_threshold`, `classes`, `exclude_classes` as comma-separated labels or ids,
//! `regular_nms` as true/false/1/0) for every body form; options given in the body (JSON
//! `options`, multipart `options` part) win field by field. `id` and `image` are accepted
//! and ignored unless the body is a raw image. Only parsing happens here: value ranges and
//! labels are checked later by `Detector::resolve_options`.
//!
//! Duplicate image ids are allowed and kept as given: images are identified by their
//! position, ids are labels for the caller. An image whose data decodes to nothing stays in
//! the request as empty bytes (it fails on its own later, not the whole request).

mod b64;
mod content_type;
mod error;
mod json_body;
mod limits;
mod multipart;
mod options;
mod route;
#[cfg(test)]
mod tests;

use detect_core::detector::DetectOptions;

pub use error::ApiError;
pub use limits::{
    RequestLimits, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IMAGES, MAX_S3_BUCKET_BYTES,
    MAX_S3_KEY_BYTES,
};
pub use options::QUERY_OPTIONS;
pub use route::{route, route_for_path, Route};

use content_type::{body_form, BodyForm};
use error::{PAYLOAD_TOO_LARGE, UNPROCESSABLE};
use json_body::parse_json_body;
use multipart::parse_multipart_body;
use options::{merge_options, parse_query_options, raw_image_id};

/// An S3 object to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Ref {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Encoded image bytes (JPEG, PNG, ...), possibly empty.
    Bytes(Vec<u8>),
    /// An object to fetch from S3.
    S3(S3Ref),
}

/// One image of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInput {
    /// The caller's id (file name, part name, JSON `id`, or `image-<index>`); not unique.
    pub id: String,
    pub source: ImageSource,
}

/// A parsed `POST /api/detect`: at least one image, at most `max_images`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectRequest {
    pub images: Vec<ImageInput>,
    /// Body options merged over query-string options, field by field.
    pub options: DetectOptions,
}

/// Parses a `POST /api/detect` body (see the module docs for the forms and statuses).
/// `content_type` is the raw header value; `query` holds decoded query pairs.
pub fn parse_detect_request(
    content_type: Option<&str>,
    body: &[u8],
    query: &[(String, String)],
    limits: &RequestLimits,
) -> Result<DetectRequest, ApiError> {
    if body.len() > limits.max_body_bytes {
        return Err(ApiError::new(
            PAYLOAD_TOO_LARGE,
            format!(
                "request body is {} bytes; the limit is {} bytes",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let form = body_form(content_type, body)?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty body: send an image, JSON or multipart/form-data",
        ));
    }
    let query_options = parse_query_options(query)?;
    let (images, body_options) = match form {
        BodyForm::Json => parse_json_body(body, limits)?,
        BodyForm::Raw => (
            vec![ImageInput {
                id: raw_image_id(query),
                source: ImageSource::Bytes(body.to_vec()),
            }],
            DetectOptions::default(),
        ),
        BodyForm::Multipart { boundary } => parse_multipart_body(body, &boundary, limits)?,
    };
    check_image_count(images.len(), limits)?;
    Ok(DetectRequest {
        images,
        options: merge_options(body_options, query_options),
    })
}

pub(crate) fn check_image_count(count: usize, limits: &RequestLimits) -> Result<(), ApiError> {
    if count == 0 {
        Err(ApiError::new(UNPROCESSABLE, "no images in the request"))
    } else if count > limits.max_images {
        Err(too_many_images(limits))
    } else {
        Ok(())
    }
}

pub(crate) fn too_many_images(limits: &RequestLimits) -> ApiError {
    ApiError::new(
        PAYLOAD_TOO_LARGE,
        format!("too many images: at most {} per request", limits.max_images),
    )
}
