//! HTTP request parsing for the Lambda function: routing, body forms, options and limits.
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
//!   `Content-Transfer-Encoding: base64` on a file part is decoded.
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

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine as _, GeneralPurpose, GeneralPurposeConfig};
use percent_encoding::percent_decode_str;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use detect_core::detector::{ClassRef, DetectOptions};

/// Default body limit: 6 MiB, the synchronous Lambda invocation payload limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Default maximum number of images in one request.
pub const DEFAULT_MAX_IMAGES: usize = 20;
/// Longest S3 object key S3 accepts, in bytes.
pub const MAX_S3_KEY_BYTES: usize = 1024;
/// Longest bucket name accepted (S3's legacy limit; current names are at most 63).
pub const MAX_S3_BUCKET_BYTES: usize = 255;

/// Options accepted in the query string.
pub const QUERY_OPTIONS: [&str; 6] = [
    "min_score",
    "max_results",
    "iou_threshold",
    "classes",
    "exclude_classes",
    "regular_nms",
];

/// Longest part header block in a multipart body.
const MAX_PART_HEADER_BYTES: usize = 16 * 1024;
/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY_LEN: usize = 70;

const BAD_REQUEST: u16 = 400;
const NOT_FOUND: u16 = 404;
const METHOD_NOT_ALLOWED: u16 = 405;
const PAYLOAD_TOO_LARGE: u16 = 413;
const UNSUPPORTED_MEDIA_TYPE: u16 = 415;
const UNPROCESSABLE: u16 = 422;

const ACCEPTED_TYPES: &str =
    "application/json, multipart/form-data, image/* or application/octet-stream";

/// Limits enforced before any image is decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest accepted body, in bytes (413 above). Default 6 MiB.
    pub max_body_bytes: usize,
    /// Most images in one request (413 above). Default 20.
    pub max_images: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_images: DEFAULT_MAX_IMAGES,
        }
    }
}

impl RequestLimits {
    /// Defaults overridden by the `MAX_BODY_BYTES` and `MAX_IMAGES` environment variables.
    /// A value that is not a positive integer is ignored (the default stays).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`RequestLimits::from_env`] with the variables read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str, default: usize| {
            lookup(name)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        Self {
            max_body_bytes: read("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_images: read("MAX_IMAGES", DEFAULT_MAX_IMAGES),
        }
    }
}

/// An HTTP error answered as JSON `{"error": {"status": 400, "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(BAD_REQUEST, message)
    }

    /// The response body: `{"error": {"status": ..., "message": ...}}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "error": { "status": self.status, "message": self.message } })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The routes the function answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/detect`
    Detect,
    /// `GET /api/health`
    Health,
    /// `GET /api/openapi.json`
    OpenApi,
}

impl Route {
    pub const ALL: [Route; 3] = [Route::Detect, Route::Health, Route::OpenApi];

    /// The one method the route accepts (for an `Allow` header).
    pub fn method(self) -> &'static str {
        match self {
            Route::Detect => "POST",
            Route::Health | Route::OpenApi => "GET",
        }
    }

    /// The route's path, without any stage prefix.
    pub fn path(self) -> &'static str {
        match self {
            Route::Detect => "/api/detect",
            Route::Health => "/api/health",
            Route::OpenApi => "/api/openapi.json",
        }
    }
}

/// The route a path names, whatever the method: the path (query string and trailing
/// slashes ignored) ends with the route's path, so stage prefixes match.
pub fn route_for_path(path: &str) -> Option<Route> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_end_matches('/');
    Route::ALL
        .into_iter()
        .find(|r| path.ends_with(r.path()) || path == &r.path()[1..])
}

/// Routes a request: `POST /api/detect`, `GET /api/health` (see the module docs).
/// Unknown path → 404 listing the routes; known path, other method → 405.
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let Some(route) = route_for_path(path) else {
        let routes: Vec<String> = Route::ALL
            .iter()
            .map(|r| format!("{} {}", r.method(), r.path()))
            .collect();
        return Err(ApiError::new(
            NOT_FOUND,
            format!(
                "no route for path `{}`; routes: {}",
                clip(path, 200),
                routes.join(", ")
            ),
        ));
    };
    if method.eq_ignore_ascii_case(route.method()) {
        Ok(route)
    } else {
        Err(ApiError::new(
            METHOD_NOT_ALLOWED,
            format!(
                "method {} is not allowed on {}; use {}",
                clip(method, 20),
                route.path(),
                route.method()
            ),
        ))
    }
}

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

fn check_image_count(count: usize, limits: &RequestLimits) -> Result<(), ApiError> {
    if count == 0 {
        Err(ApiError::new(UNPROCESSABLE, "no images in the request"))
    } else if count > limits.max_images {
        Err(too_many_images(limits))
    } else {
        Ok(())
    }
}

fn too_many_images(limits: &RequestLimits) -> ApiError {
    ApiError::new(
        PAYLOAD_TOO_LARGE,
        format!("too many images: at most {} per request", limits.max_images),
    )
}

/// Body options win over query options, field by field.
fn merge_options(body: DetectOptions, query: DetectOptions) -> DetectOptions {
    // Exhaustive on purpose: a new option field must be merged here too.
    let DetectOptions {
        min_score,
        max_results,
        iou_threshold,
        classes,
        exclude_classes,
        regular_nms,
    } = body;
    DetectOptions {
        min_score: min_score.or(query.min_score),
        max_results: max_results.or(query.max_results),
        iou_threshold: iou_threshold.or(query.iou_threshold),
        classes: classes.or(query.classes),
        exclude_classes: exclude_classes.or(query.exclude_classes),
        regular_nms: regular_nms.or(query.regular_nms),
    }
}

// ---------------------------------------------------------------------------------------
// Content type

#[derive(Debug, PartialEq, Eq)]
enum BodyForm {
    Json,
    Raw,
    Multipart { boundary: String },
}

fn body_form(content_type: Option<&str>, body: &[u8]) -> Result<BodyForm, ApiError> {
    let Some(content_type) = content_type.map(str::trim).filter(|s| !s.is_empty()) else {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        return Ok(if first == Some(&b'{') {
            BodyForm::Json
        } else {
            BodyForm::Raw
        });
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", "json")) => Ok(BodyForm::Json),
        Some(("application", sub)) if sub.ends_with("+json") => Ok(BodyForm::Json),
        Some(("application", "octet-stream")) => Ok(BodyForm::Raw),
        Some(("image", sub)) if !sub.is_empty() => Ok(BodyForm::Raw),
        Some(("multipart", "form-data")) => Ok(BodyForm::Multipart {
            boundary: multipart_boundary(content_type)?,
        }),
        _ => Err(ApiError::new(
            UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type `{}`; send {ACCEPTED_TYPES}",
                clip(content_type, 100)
            ),
        )),
    }
}

fn multipart_boundary(content_type: &str) -> Result<String, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("multipart/form-data: {why}"));
    let (_, params) = parse_header_value(content_type)
        .map_err(|e| bad(format!("malformed Content-Type: {e}")))?;
    let boundary = params
        .into_iter()
        .find(|(name, _)| name == "boundary")
        .map(|(_, value)| value)
        .ok_or_else(|| bad("the content type has no boundary parameter".into()))?;
    let valid = !boundary.is_empty()
        && boundary.len() <= MAX_BOUNDARY_LEN
        && boundary.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !boundary.ends_with(' ');
    if !valid {
        return Err(bad(format!(
            "invalid boundary `{}`: 1 to {MAX_BOUNDARY_LEN} printable ASCII characters, not ending with a space",
            clip(&boundary, 80)
        )));
    }
    Ok(boundary)
}

/// Header parameters: lower-cased names and values, in order.
type Params = Vec<(String, String)>;

/// Splits a header value `main; a=b; c="d"` into `main` and its parameters (names
/// lower-cased, in order). Quoted strings may contain `;`; inside them `\"` and `\\`
/// unescape, and a backslash before anything else is kept as is (some browsers send
/// Windows paths unescaped). Parameters without `=` are ignored.
fn parse_header_value(s: &str) -> Result<(&str, Params), String> {
    let (main, mut rest) = match s.find(';') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let name = rest[..name_end].trim().to_ascii_lowercase();
        rest = &rest[name_end..];
        let Some(after_eq) = rest.strip_prefix('=') else {
            continue;
        };
        rest = after_eq.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut end = None;
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match quoted[i + 1..].chars().next() {
                        Some(escaped @ ('"' | '\\')) => {
                            value.push(escaped);
                            chars.next();
                        }
                        _ => value.push('\\'),
                    },
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| {
                format!(
                    "unterminated quoted string in parameter `{}`",
                    clip(&name, 40)
                )
            })?;
            // Anything between the closing quote and the next `;` is ignored.
            rest = quoted[end..].find(';').map_or("", |i| &quoted[end + i..]);
            value
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let value = rest[..end].trim().to_string();
            rest = &rest[end..];
            value
        };
        if !name.is_empty() {
            params.push((name, value));
        }
    }
    Ok((main.trim(), params))
}

// ---------------------------------------------------------------------------------------
// Query string

fn raw_image_id(query: &[(String, String)]) -> String {
    ["id", "image"]
        .iter()
        .find_map(|key| {
            query
                .iter()
                .find(|(k, v)| k == key && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "image-0".to_string())
}

/// Options from the query string. Unknown keys are errors (except `id` / `image` and empty
/// keys); `classes` / `exclude_classes` may repeat and accumulate; other options may not.
fn parse_query_options(query: &[(String, String)]) -> Result<DetectOptions, ApiError> {
    let mut options = DetectOptions::default();
    for (key, value) in query {
        let value = value.trim();
        match key.as_str() {
            "min_score" => set_once(&mut options.min_score, key, query_f32(key, value)?)?,
            "iou_threshold" => set_once(&mut options.iou_threshold, key, query_f32(key, value)?)?,
            "max_results" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| query_error(key, value, "must be a non-negative integer"))?;
                set_once(&mut options.max_results, key, n)?;
            }
            "regular_nms" => {
                let b = match value.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(query_error(key, value, "must be true, false, 1 or 0")),
                };
                set_once(&mut options.regular_nms, key, b)?;
            }
            "classes" => options
                .classes
                .get_or_insert_with(Vec::new)
                .extend(query_classes(key, value)?),
            "exclude_classes" => options
                .exclude_classes
                .get_or_insert_with(Vec::new)
                .extend(query_classes(key, value)?),
            "id" | "image" | "" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                "unknown query parameter `{}`; known options: {} (and `id` to name a raw image)",
                clip(other, 64),
                QUERY_OPTIONS.join(", ")
            )))
            }
        }
    }
    Ok(options)
}

fn query_error(key: &str, value: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "query parameter `{key}`: `{}` {why}",
        clip(value, 64)
    ))
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(ApiError::bad_request(format!(
            "query parameter `{key}` is given more than once"
        )));
    }
    Ok(())
}

fn query_f32(key: &str, value: &str) -> Result<f32, ApiError> {
    value
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| query_error(key, value, "is not a number"))
}

fn query_classes(key: &str, value: &str) -> Result<Vec<ClassRef>, ApiError> {
    let classes: Vec<ClassRef> = value
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| match c.parse::<usize>() {
            Ok(id) => ClassRef::Id(id),
            Err(_) => ClassRef::Name(c.to_string()),
        })
        .collect();
    if classes.is_empty() {
        return Err(query_error(
            key,
            value,
            "is empty: give comma-separated class labels or ids",
        ));
    }
    Ok(classes)
}

// ---------------------------------------------------------------------------------------
// JSON bodies

/// A JSON object's fields in body order, duplicates kept.
struct ObjectFields(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for ObjectFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = ObjectFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a JSON object: {\"images\": [...], \"options\": {...}} or {\"<file name>\": \"<base64>\", ...}",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectFields, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry::<String, Value>()? {
                    fields.push(field);
                }
                Ok(ObjectFields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

fn json_error(context: &str, e: &serde_json::Error) -> ApiError {
    let kind = match e.classify() {
        serde_json::error::Category::Data => "invalid",
        _ => "malformed",
    };
    ApiError::bad_request(format!("{kind} {context}: {e}"))
}

fn parse_json_body(
    body: &[u8],
    limits: &RequestLimits,
) -> Result<(Vec<ImageInput>, DetectOptions), ApiError> {
    let ObjectFields(fields) =
        serde_json::from_slice(body).map_err(|e| json_error("JSON body", &e))?;
    if fields.iter().any(|(k, _)| k == "images" || k == "options") {
        parse_images_form(fields, limits)
    } else {
        parse_legacy_form(fields, limits)
    }
}

/// `{"images": [...], "options": {...}}`
fn parse_images_form(
    fields: Vec<(String, Value)>,
    limits: &RequestLimits,
) -> Result<(Vec<ImageInput>, DetectOptions), ApiError> {
    let mut images = None;
    let mut options = None;
    for (key, value) in fields {
        let slot = match key.as_str() {
            "images" => &mut images,
            "options" => &mut options,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown top-level field `{}`; expected `images` and optionally `options`",
                    clip(other, 64)
                )))
            }
        };
        if slot.replace(value).is_some() {
            return Err(ApiError::bad_request(format!("duplicate field `{key}`")));
        }
    }
    let entries = match images {
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`images` must be an array, got {}",
                describe(&other)
            )))
        }
        None => {
            return Err(ApiError::bad_request(
                "missing field `images` (an array of {\"id\", \"data\" or \"s3\"} objects)",
            ))
        }
    };
    check_image_count(entries.len(), limits)?;
    let options = options_from_value(options.unwrap_or(Value::Null), "options")?;
    // Validate every entry before decoding any image.
    let pending = entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| image_entry(index, entry))
        .collect::<Result<Vec<_>, _>>()?;
    let images = pending
        .into_iter()
        .enumerate()
        .map(|(index, (id, source))| {
            let source = match source {
                PendingSource::Data(text) => {
                    ImageSource::Bytes(decode_base64(&text).map_err(|e| {
                        ApiError::bad_request(format!(
                            "image `{}` (images[{index}]): invalid base64: {e}",
                            clip(&id, 100)
                        ))
                    })?)
                }
                PendingSource::S3(s3) => ImageSource::S3(s3),
            };
            Ok(ImageInput { id, source })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((images, options))
}

enum PendingSource {
    Data(String),
    S3(S3Ref),
}

fn image_entry(index: usize, entry: Value) -> Result<(String, PendingSource), ApiError> {
    let at = format!("images[{index}]");
    let Value::Object(fields) = entry else {
        return Err(ApiError::bad_request(format!(
            "{at} must be an object with `id` and `data` (base64) or `s3`, got {}",
            describe(&entry)
        )));
    };
    let mut id = None;
    let mut data = None;
    let mut s3 = None;
    for (key, value) in fields {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("id", Value::String(s)) => id = Some(s),
            ("data", Value::String(s)) => data = Some(s),
            ("s3", Value::Object(o)) => s3 = Some(s3_ref(&at, o)?),
            ("id" | "data", other) => {
                return Err(ApiError::bad_request(format!(
                    "{at}.{key} must be a string, got {}",
                    describe(&other)
                )))
            }
            ("s3", other) => {
                return Err(ApiError::bad_request(format!(
                    "{at}.s3 must be an object {{\"bucket\", \"key\", \"version\"}}, got {}",
                    describe(&other)
                )))
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "{at}: unknown field `{}`; expected `id`, `data` or `s3`",
                    clip(other, 64)
                )))
            }
        }
    }
    let id = id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("image-{index}"));
    let source = match (data, s3) {
        (Some(data), None) => PendingSource::Data(data),
        (None, Some(s3)) => PendingSource::S3(s3),
        _ => {
            return Err(ApiError::bad_request(format!(
                "{at}: give exactly one of `data` (base64) or `s3` ({{\"bucket\", \"key\"}})"
            )))
        }
    };
    Ok((id, source))
}

fn s3_ref(at: &str, fields: Map<String, Value>) -> Result<S3Ref, ApiError> {
    let mut bucket = None;
    let mut key = None;
    let mut version = None;
    for (name, value) in fields {
        let slot = match name.as_str() {
            "bucket" => &mut bucket,
            "key" => &mut key,
            "version" => &mut version,
            other => {
                return Err(ApiError::bad_request(format!(
                "{at}.s3: unknown field `{}`; expected `bucket`, `key` and optionally `version`",
                clip(other, 64)
            )))
            }
        };
        match value {
            Value::Null => {}
            Value::String(s) => *slot = Some(s),
            other => {
                return Err(ApiError::bad_request(format!(
                    "{at}.s3.{name} must be a string, got {}",
                    describe(&other)
                )))
            }
        }
    }
    let bucket = bucket.unwrap_or_default();
    if bucket.is_empty() || bucket.len() > MAX_S3_BUCKET_BYTES {
        return Err(ApiError::bad_request(format!(
            "{at}.s3.bucket must be a non-empty string of at most {MAX_S3_BUCKET_BYTES} bytes"
        )));
    }
    let key = key.unwrap_or_default();
    if key.is_empty() || key.len() > MAX_S3_KEY_BYTES {
        return Err(ApiError::bad_request(format!(
            "{at}.s3.key must be a non-empty string of at most {MAX_S3_KEY_BYTES} bytes"
        )));
    }
    Ok(S3Ref {
        bucket,
        key,
        version: version.filter(|v| !v.is_empty()),
    })
}

/// `{"a.jpg": "<base64>", ...}`: ids are the keys, in body order.
fn parse_legacy_form(
    fields: Vec<(String, Value)>,
    limits: &RequestLimits,
) -> Result<(Vec<ImageInput>, DetectOptions), ApiError> {
    if let Some((key, value)) = fields.iter().find(|(_, v)| !v.is_string()) {
        return Err(ApiError::bad_request(format!(
            "expected {{\"images\": [...]}} or an object mapping file names to base64 strings; field `{}` is {}",
            clip(key, 64),
            describe(value)
        )));
    }
    check_image_count(fields.len(), limits)?;
    let images = fields
        .into_iter()
        .enumerate()
        .map(|(index, (name, value))| {
            let text = value.as_str().unwrap_or_default();
            let bytes = decode_base64(text).map_err(|e| {
                ApiError::bad_request(format!("image `{}`: invalid base64: {e}", clip(&name, 100)))
            })?;
            let id = if name.is_empty() {
                format!("image-{index}")
            } else {
                name
            };
            Ok(ImageInput {
                id,
                source: ImageSource::Bytes(bytes),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((images, DetectOptions::default()))
}

/// Deserializes options from JSON, with an error naming the offending field (`what` is the
/// prefix, e.g. `options`). Null means no options. serde (`deny_unknown_fields`) stays the
/// authority on names and types; fields are tried one at a time only to locate errors.
fn options_from_value(value: Value, what: &str) -> Result<DetectOptions, ApiError> {
    let fields = match value {
        Value::Null => return Ok(DetectOptions::default()),
        Value::Object(fields) => fields,
        other => {
            return Err(ApiError::bad_request(format!(
                "{what} must be a JSON object, got {}",
                describe(&other)
            )))
        }
    };
    for (name, field) in &fields {
        let single = Map::from_iter([(name.clone(), field.clone())]);
        if let Err(e) = DetectOptions::deserialize(Value::Object(single)) {
            return Err(ApiError::bad_request(option_error(what, name, field, &e)));
        }
    }
    DetectOptions::deserialize(Value::Object(fields))
        .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

fn option_error(what: &str, name: &str, field: &Value, e: &serde_json::Error) -> String {
    let message = e.to_string();
    if message.starts_with("unknown field") {
        return format!("{what}: {message}");
    }
    if message.contains("untagged enum ClassRef") {
        if let Value::Array(items) = field {
            if let Some((i, item)) = items
                .iter()
                .enumerate()
                .find(|(_, item)| ClassRef::deserialize(*item).is_err())
            {
                return format!(
                    "{what}.{name}[{i}]: expected a class label (string) or a class id (non-negative integer), got {}",
                    describe(item)
                );
            }
        }
    }
    format!("{what}.{name}: {message}")
}

/// A short description of a JSON value for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {}", clip(&n.to_string(), 40)),
        Value::String(s) => format!("string \"{}\"", clip(s, 40)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Base64

/// Standard alphabet (URL-safe characters are mapped onto it first), padding optional,
/// non-zero trailing bits tolerated.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes base64 in the standard or URL-safe alphabet, padded or not, ignoring ASCII
/// whitespace, optionally as a `data:<type>;base64,<data>` URL.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let payload = if text
        .as_bytes()
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"data:"))
    {
        let comma = text
            .find(',')
            .ok_or("data URL without a `,` before the data")?;
        let header = text[5..comma].trim_end().as_bytes();
        let is_base64 =
            header.len() >= 7 && header[header.len() - 7..].eq_ignore_ascii_case(b";base64");
        if !is_base64 {
            return Err("data URL is not base64 (`;base64,` missing)".into());
        }
        &text[comma + 1..]
    } else {
        text
    };
    let clean: Vec<u8> = payload
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    BASE64.decode(&clean).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// multipart/form-data

fn parse_multipart_body(
    body: &[u8],
    boundary: &str,
    limits: &RequestLimits,
) -> Result<(Vec<ImageInput>, DetectOptions), ApiError> {
    let malformed =
        |e: String| ApiError::bad_request(format!("malformed multipart/form-data body: {e}"));
    let mut parts = Multipart::new(body, boundary).map_err(malformed)?;
    let mut images = Vec::new();
    let mut options = None;
    while let Some(part) = parts.next_part().map_err(malformed)? {
        let is_file = part.filename.is_some()
            || part.content_type.starts_with("image/")
            || part.content_type == "application/octet-stream";
        if is_file {
            if part.filename.as_deref() == Some("") && part.content.is_empty() {
                continue; // a browser's file input with no file chosen
            }
            if images.len() == limits.max_images {
                return Err(too_many_images(limits));
            }
            let id = [&part.filename, &part.name]
                .into_iter()
                .flatten()
                .find(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("image-{}", images.len()));
            let data = match part.transfer_encoding.as_str() {
                "" | "binary" | "8bit" | "7bit" => part.content.to_vec(),
                "base64" => std::str::from_utf8(part.content)
                    .map_err(|_| "not ASCII".to_string())
                    .and_then(decode_base64)
                    .map_err(|e| {
                        ApiError::bad_request(format!(
                            "image `{}`: invalid base64 content: {e}",
                            clip(&id, 100)
                        ))
                    })?,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "image `{}`: unsupported Content-Transfer-Encoding `{}`",
                        clip(&id, 100),
                        clip(other, 40)
                    )))
                }
            };
            images.push(ImageInput {
                id,
                source: ImageSource::Bytes(data),
            });
        } else if part.name.as_deref() == Some("options") {
            if options.is_some() {
                return Err(ApiError::bad_request(
                    "more than one `options` part in the multipart body",
                ));
            }
            let parsed = if part.content.iter().all(u8::is_ascii_whitespace) {
                DetectOptions::default()
            } else {
                let value: Value = serde_json::from_slice(part.content)
                    .map_err(|e| json_error("JSON in the `options` part", &e))?;
                options_from_value(value, "options")?
            };
            options = Some(parsed);
        }
        // Other text fields (`id` included) are ignored.
    }
    Ok((images, options.unwrap_or_default()))
}

/// One part of a multipart body.
struct Part<'a> {
    name: Option<String>,
    filename: Option<String>,
    /// Lower-cased media type without parameters; empty when absent.
    content_type: String,
    /// Lower-cased Content-Transfer-Encoding; empty when absent.
    transfer_encoding: String,
    content: &'a [u8],
}

/// A synchronous RFC 7578 / RFC 2046 multipart reader over a complete body. Delimiters are
/// `CRLF--boundary` followed by `--` (close) or optional spaces/tabs and CRLF; anything before
/// the first delimiter (preamble) or after the close delimiter (epilogue) is ignored. A
/// candidate delimiter followed by anything else is part content. Work is linear in the body
/// size: the delimiter starts with the only CR it contains, so candidate comparisons never
/// overlap.
struct Multipart<'a> {
    body: &'a [u8],
    /// `\r\n--boundary`
    delimiter: Vec<u8>,
    /// Start of the next part's headers.
    pos: usize,
    done: bool,
    parts: usize,
}

impl<'a> Multipart<'a> {
    fn new(body: &'a [u8], boundary: &str) -> Result<Self, String> {
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        let mut reader = Self {
            body,
            delimiter,
            pos: 0,
            done: false,
            parts: 0,
        };
        // The first delimiter may open the body without its CRLF.
        let dash_boundary = &reader.delimiter[2..];
        let at_start = if body.starts_with(dash_boundary) {
            reader.delimiter_end(dash_boundary.len())
        } else {
            None
        };
        let opening = at_start.or_else(|| reader.next_delimiter(0).map(|(_, end)| end));
        let (pos, close) = opening.ok_or_else(|| format!("no `--{boundary}` delimiter found"))?;
        reader.pos = pos;
        reader.done = close;
        Ok(reader)
    }

    /// After the boundary text at `at`: the position after the delimiter line and whether it
    /// is the close delimiter, or `None` if this is not a delimiter.
    fn delimiter_end(&self, at: usize) -> Option<(usize, bool)> {
        let rest = &self.body[at..];
        if rest.starts_with(b"--") {
            return Some((at + 2, true));
        }
        let padding = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        rest[padding..]
            .starts_with(b"\r\n")
            .then_some((at + padding + 2, false))
    }

    /// The next real delimiter at or after `from`: (its start, (end of its line, close)).
    fn next_delimiter(&self, from: usize) -> Option<(usize, (usize, bool))> {
        let needle = &self.delimiter;
        let mut i = from;
        while i + needle.len() <= self.body.len() {
            let cr = i + self.body[i..].iter().position(|&b| b == b'\r')?;
            let candidate = &self.body[cr..];
            // Short-circuiting comparison: stops at the first mismatch (see the type docs).
            if candidate.len() >= needle.len() && needle.iter().zip(candidate).all(|(a, b)| a == b)
            {
                if let Some(end) = self.delimiter_end(cr + needle.len()) {
                    return Some((cr, end));
                }
            }
            i = cr + 1;
        }
        None
    }

    fn next_part(&mut self) -> Result<Option<Part<'a>>, String> {
        if self.done {
            return Ok(None);
        }
        self.parts += 1;
        let n = self.parts;
        let body = self.body;
        // Header lines up to an empty line; obsolete folding (leading space/tab) continues a header.
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut pos = self.pos;
        loop {
            if pos - self.pos > MAX_PART_HEADER_BYTES {
                return Err(format!(
                    "part {n}: headers longer than {MAX_PART_HEADER_BYTES} bytes"
                ));
            }
            let window = &body[pos..body.len().min(pos + MAX_PART_HEADER_BYTES + 2)];
            let line_len = window
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| format!("part {n}: headers not terminated by an empty line"))?;
            let line = String::from_utf8_lossy(&body[pos..pos + line_len]);
            pos += line_len + 2;
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                let (_, value) = headers
                    .last_mut()
                    .ok_or_else(|| format!("part {n}: header continuation without a header"))?;
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("part {n}: malformed header line `{}`", clip(&line, 60)))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let (content_end, (next, close)) = self.next_delimiter(pos).ok_or_else(|| {
            format!(
                "part {n} is not followed by a boundary delimiter (the body must end with `{}--`)",
                String::from_utf8_lossy(&self.delimiter[2..])
            )
        })?;
        self.pos = next;
        self.done = close;

        let header = |wanted: &str| {
            headers
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.as_str())
        };
        let disposition = header("content-disposition")
            .ok_or_else(|| format!("part {n} has no Content-Disposition header"))?;
        let (_, params) = parse_header_value(disposition)
            .map_err(|e| format!("part {n}: malformed Content-Disposition: {e}"))?;
        let param = |wanted: &str| {
            params
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.clone())
        };
        let filename = param("filename*")
            .and_then(|v| decode_ext_value(&v))
            .or_else(|| param("filename"));
        let lower_essence = |v: Option<&str>| {
            v.and_then(|v| v.split(';').next())
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        };
        Ok(Some(Part {
            name: param("name"),
            filename,
            content_type: lower_essence(header("content-type")),
            transfer_encoding: lower_essence(header("content-transfer-encoding")),
            content: &body[pos..content_end],
        }))
    }
}

/// An RFC 8187 extended parameter value `charset'language'percent-encoded`, or `None`.
fn decode_ext_value(value: &str) -> Option<String> {
    let mut fields = value.splitn(3, '\'');
    let (charset, _language, encoded) = (fields.next()?, fields.next()?, fields.next()?);
    let bytes: Vec<u8> = percent_decode_str(encoded).collect();
    Some(if charset.eq_ignore_ascii_case("iso-8859-1") {
        bytes.into_iter().map(char::from).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-jpeg";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRfake-png";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(ct: Option<&str>, body: &[u8]) -> Result<DetectRequest, ApiError> {
        parse_detect_request(ct, body, &[], &RequestLimits::default())
    }

    fn parse_json(json: &str) -> Result<DetectRequest, ApiError> {
        parse(Some("application/json"), json.as_bytes())
    }

    #[track_caller]
    fn assert_err(result: Result<DetectRequest, ApiError>, status: u16, needle: &str) {
        match result {
            Ok(req) => panic!("expected HTTP {status} containing {needle:?}, got {req:?}"),
            Err(e) => {
                assert_eq!(e.status, status, "{e}");
                assert!(
                    e.message.contains(needle),
                    "message {:?} lacks {needle:?}",
                    e.message
                );
            }
        }
    }

    fn bytes(img: &ImageInput) -> &[u8] {
        match &img.source {
            ImageSource::Bytes(b) => b,
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    // --- routes -------------------------------------------------------------------------

    #[test]
    fn routes_match_with_stage_prefix_and_trailing_slash() {
        assert_eq!(route("POST", "/api/detect"), Ok(Route::Detect));
        assert_eq!(route("GET", "/api/health"), Ok(Route::Health));
        assert_eq!(route("POST", "/prod/api/detect"), Ok(Route::Detect));
        assert_eq!(route("POST", "/api/detect/"), Ok(Route::Detect));
        assert_eq!(route("GET", "/stage/api/health//"), Ok(Route::Health));
        assert_eq!(route("post", "/api/detect?x=1"), Ok(Route::Detect));
    }

    #[test]
    fn unknown_path_is_404_listing_routes() {
        for path in ["/", "", "/api", "/api/detector", "/apiX/detect/more"] {
            let e = route("GET", path).unwrap_err();
            assert_eq!(e.status, 404, "{path}");
            assert!(e.message.contains("POST /api/detect"), "{}", e.message);
            assert!(e.message.contains("GET /api/health"), "{}", e.message);
        }
    }

    #[test]
    fn wrong_method_is_405_naming_the_allowed_one() {
        let e = route("GET", "/api/detect").unwrap_err();
        assert_eq!(e.status, 405);
        assert!(e.message.contains("use POST"), "{}", e.message);
        let e = route("POST", "/prod/api/health").unwrap_err();
        assert_eq!(e.status, 405);
        assert!(e.message.contains("use GET"), "{}", e.message);
        for method in ["OPTIONS", "HEAD", "PUT", "DELETE"] {
            assert_eq!(route(method, "/api/detect").unwrap_err().status, 405);
        }
    }

    // --- limits and errors --------------------------------------------------------------

    #[test]
    fn limits_default_and_env_overrides() {
        let d = RequestLimits::default();
        assert_eq!(d.max_body_bytes, 6 * 1024 * 1024);
        assert_eq!(d.max_images, 20);
        let l = RequestLimits::from_lookup(|name| match name {
            "MAX_BODY_BYTES" => Some(" 1000 ".into()),
            "MAX_IMAGES" => Some("3".into()),
            _ => None,
        });
        assert_eq!((l.max_body_bytes, l.max_images), (1000, 3));
        let l = RequestLimits::from_lookup(|name| match name {
            "MAX_BODY_BYTES" => Some("lots".into()),
            "MAX_IMAGES" => Some("0".into()),
            _ => None,
        });
        assert_eq!(l, RequestLimits::default());
    }

    #[test]
    fn api_error_json_shape() {
        let e = ApiError::new(413, "too big");
        assert_eq!(
            e.to_json(),
            serde_json::json!({"error": {"status": 413, "message": "too big"}})
        );
        assert_eq!(e.to_string(), "HTTP 413: too big");
    }

    // --- JSON ---------------------------------------------------------------------------

    #[test]
    fn json_base64_standard_with_options() {
        let body = format!(
            r#"{{"images": [{{"id": "cat.jpg", "data": "{}"}}], "options": {{"min_score": 0.4, "classes": ["person", 17], "regular_nms": true}}}}"#,
            b64(JPEG)
        );
        let req = parse(Some("Application/JSON; charset=UTF-8"), body.as_bytes()).unwrap();
        assert_eq!(req.images.len(), 1);
        assert_eq!(req.images[0].id, "cat.jpg");
        assert_eq!(bytes(&req.images[0]), JPEG);
        assert_eq!(req.options.min_score, Some(0.4));
        assert_eq!(
            req.options.classes,
            Some(vec![ClassRef::Name("person".into()), ClassRef::Id(17)])
        );
        assert_eq!(req.options.regular_nms, Some(true));
    }

    #[test]
    fn json_base64_url_safe_unpadded() {
        let data: &[u8] = &[0xfb, 0xff, 0xbf, 0x00, 0x3e];
        let std = b64(data);
        assert!(std.contains('+') && std.contains('/') && std.ends_with('='));
        let url = std.replace('+', "-").replace('/', "_").replace('=', "");
        let req = parse_json(&format!(r#"{{"images": [{{"data": "{url}"}}]}}"#)).unwrap();
        assert_eq!(bytes(&req.images[0]), data);
        assert_eq!(req.images[0].id, "image-0");
    }

    #[test]
    fn json_base64_data_url_and_whitespace() {
        let encoded = b64(PNG);
        let (a, b) = encoded.split_at(8);
        let body = format!(
            r#"{{"images": [{{"id": "u", "data": "data:image/png;base64,{encoded}"}},
                            {{"id": "w", "data": " {a}\r\n\t{b} \n"}},
                            {{"id": "e", "data": ""}}]}}"#
        );
        let req = parse_json(&body).unwrap();
        assert_eq!(bytes(&req.images[0]), PNG);
        assert_eq!(bytes(&req.images[1]), PNG);
        // Empty data is not a request error: that image fails on its own later.
        assert_eq!(req.images[2].source, ImageSource::Bytes(vec![]));
    }

    #[test]
    fn json_bad_base64_names_the_image() {
        assert_err(
            parse_json(
                r#"{"images": [{"id": "ok", "data": "QUJD"}, {"id": "bad.jpg", "data": "AB!D"}]}"#,
            ),
            400,
            "image `bad.jpg` (images[1]): invalid base64",
        );
        assert_err(
            parse_json(r#"{"images": [{"id": "t", "data": "data:text/plain,hello"}]}"#),
            400,
            "image `t` (images[0]): invalid base64: data URL is not base64",
        );
        assert_err(
            parse_json(r#"{"images": [{"id": "t", "data": "A"}]}"#),
            400,
            "invalid base64",
        );
    }

    #[test]
    fn json_s3_refs() {
        let body = r#"{"images": [
            {"data": "QUJD"},
            {"s3": {"bucket": "photos", "key": "2024/a b.jpg", "version": "v1"}},
            {"id": "x", "s3": {"bucket": "photos", "key": "k", "version": null}}
        ]}"#;
        let req = parse_json(body).unwrap();
        assert_eq!(req.images[0].source, ImageSource::Bytes(b"ABC".to_vec()));
        assert_eq!(req.images[1].id, "image-1");
        assert_eq!(
            req.images[1].source,
            ImageSource::S3(S3Ref {
                bucket: "photos".into(),
                key: "2024/a b.jpg".into(),
                version: Some("v1".into())
            })
        );
        assert_eq!(req.images[2].id, "x");
        assert!(matches!(&req.images[2].source, ImageSource::S3(s) if s.version.is_none()));
    }

    #[test]
    fn json_s3_ref_errors() {
        assert_err(
            parse_json(r#"{"images": [{"s3": {"bucket": "", "key": "k"}}]}"#),
            400,
            "images[0].s3.bucket must be a non-empty string",
        );
        assert_err(
            parse_json(r#"{"images": [{"s3": {"bucket": "b"}}]}"#),
            400,
            "images[0].s3.key must be a non-empty string",
        );
        let long = "k".repeat(1025);
        assert_err(
            parse_json(&format!(
                r#"{{"images": [{{"s3": {{"bucket": "b", "key": "{long}"}}}}]}}"#
            )),
            400,
            "at most 1024 bytes",
        );
        assert_err(
            parse_json(r#"{"images": [{"s3": {"bucket": "b", "key": 5}}]}"#),
            400,
            "images[0].s3.key must be a string",
        );
        assert_err(
            parse_json(r#"{"images": [{"s3": {"bucket": "b", "key": "k", "region": "x"}}]}"#),
            400,
            "unknown field `region`",
        );
        assert_err(
            parse_json(r#"{"images": [{"s3": "s3://b/k"}]}"#),
            400,
            "images[0].s3 must be an object",
        );
    }

    #[test]
    fn json_image_needs_exactly_one_source() {
        assert_err(
            parse_json(
                r#"{"images": [{"data": "QUJD"}, {"id": "both", "data": "QUJD", "s3": {"bucket": "b", "key": "k"}}]}"#,
            ),
            400,
            "images[1]: give exactly one of `data`",
        );
        assert_err(
            parse_json(r#"{"images": [{"id": "neither"}]}"#),
            400,
            "images[0]: give exactly one of",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD", "name": "x"}]}"#),
            400,
            "images[0]: unknown field `name`",
        );
        assert_err(
            parse_json(r#"{"images": ["QUJD"]}"#),
            400,
            "images[0] must be an object",
        );
        assert_err(
            parse_json(r#"{"images": [{"id": 7, "data": "QUJD"}]}"#),
            400,
            "images[0].id must be a string",
        );
    }

    #[test]
    fn json_legacy_form_keeps_order_and_takes_query_options() {
        let body = format!(
            r#"{{"z.jpg": "{}", "a.png": "data:image/png;base64,{}"}}"#,
            b64(JPEG),
            b64(PNG)
        );
        let query = q(&[("min_score", "0.7")]);
        let req = parse_detect_request(
            Some("application/json"),
            body.as_bytes(),
            &query,
            &RequestLimits::default(),
        )
        .unwrap();
        let ids: Vec<&str> = req.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["z.jpg", "a.png"]);
        assert_eq!(bytes(&req.images[0]), JPEG);
        assert_eq!(bytes(&req.images[1]), PNG);
        assert_eq!(req.options.min_score, Some(0.7));

        assert_err(
            parse_json(r#"{"a.jpg": "@@@"}"#),
            400,
            "image `a.jpg`: invalid base64",
        );
        assert_err(
            parse_json(r#"{"a.jpg": "QUJD", "b.jpg": 3}"#),
            400,
            "field `b.jpg` is number 3",
        );
    }

    #[test]
    fn json_zero_images_is_422() {
        assert_err(
            parse_json(r#"{"images": []}"#),
            422,
            "no images in the request",
        );
        assert_err(parse_json("{}"), 422, "no images in the request");
        assert_err(
            parse_json(r#"{"images": [], "options": {"min_score": 0.5}}"#),
            422,
            "no images",
        );
    }

    #[test]
    fn json_body_options_win_over_query_per_field() {
        let query = q(&[
            ("min_score", "0.1"),
            ("max_results", "5"),
            ("id", "ignored"),
        ]);
        let req = parse_detect_request(
            Some("application/json"),
            br#"{"images": [{"data": "QUJD"}], "options": {"min_score": 0.9}}"#,
            &query,
            &RequestLimits::default(),
        )
        .unwrap();
        assert_eq!(req.options.min_score, Some(0.9));
        assert_eq!(req.options.max_results, Some(5));
        assert_eq!(req.images[0].id, "image-0");
    }

    #[test]
    fn json_option_errors_name_the_field() {
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"min_scor": 0.5}}"#),
            400,
            "unknown field `min_scor`, expected one of",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"min_score": "high"}}"#),
            400,
            "options.min_score: invalid type: string \"high\"",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"max_results": -1}}"#),
            400,
            "options.max_results",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"max_results": 1e30}}"#),
            400,
            "options.max_results",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"classes": ["cat", 1.5]}}"#),
            400,
            "options.classes[1]: expected a class label (string) or a class id",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"regular_nms": "yes"}}"#),
            400,
            "options.regular_nms",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": [1]}"#),
            400,
            "options must be a JSON object",
        );
    }

    #[test]
    fn json_shape_errors() {
        assert_err(parse_json("[1, 2]"), 400, "expected a JSON object");
        assert_err(parse_json("42"), 400, "invalid type");
        assert_err(
            parse_json(r#"{"images": "QUJD"}"#),
            400,
            "`images` must be an array",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "extra": 1}"#),
            400,
            "unknown top-level field `extra`",
        );
        assert_err(
            parse_json(r#"{"options": {}}"#),
            400,
            "missing field `images`",
        );
        assert_err(
            parse_json(r#"{"images": [], "images": []}"#),
            400,
            "duplicate field `images`",
        );
    }

    #[test]
    fn malformed_json_is_400() {
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}"#),
            400,
            "malformed JSON body",
        );
        assert_err(parse_json("{'a': 1}"), 400, "malformed JSON body");
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}]} trailing"#),
            400,
            "malformed JSON body",
        );
        assert_err(
            parse(Some("application/json"), b"{\"a.jpg\": \"\xff\xfe\"}"),
            400,
            "malformed JSON body",
        );
        assert_err(
            parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"min_score": 1e400}}"#),
            400,
            "malformed JSON body",
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep =
            |open: &str, close: &str| format!("{}{}", open.repeat(10_000), close.repeat(10_000));
        assert_err(parse_json(&deep("[", "]")), 400, "JSON");
        let inner = deep("[", "]");
        assert_err(
            parse_json(&format!(r#"{{"images": {inner}}}"#)),
            400,
            "recursion limit exceeded",
        );
        let objects = deep("{\"a\":", "}");
        assert_err(
            parse_json(&format!(
                r#"{{"images": [{{"data": "QUJD"}}], "options": {objects}}}"#
            )),
            400,
            "recursion limit exceeded",
        );
        // Also through sniffing and the multipart options part.
        assert_err(
            parse(None, deep("{\"a\":", "}").as_bytes()),
            400,
            "recursion limit",
        );
    }

    // --- raw bodies and query options ---------------------------------------------------

    #[test]
    fn raw_jpeg_with_query_options() {
        let query = q(&[
            ("id", "photo.jpg"),
            ("min_score", "0.25"),
            ("max_results", "7"),
            ("iou_threshold", "0.5"),
            ("classes", "person, 3,traffic light"),
            ("classes", "dog"),
            ("exclude_classes", "0"),
            ("regular_nms", "TRUE"),
        ]);
        let req = parse_detect_request(Some("image/jpeg"), JPEG, &query, &RequestLimits::default())
            .unwrap();
        assert_eq!(req.images.len(), 1);
        assert_eq!(req.images[0].id, "photo.jpg");
        assert_eq!(bytes(&req.images[0]), JPEG);
        let o = &req.options;
        assert_eq!(o.min_score, Some(0.25));
        assert_eq!(o.max_results, Some(7));
        assert_eq!(o.iou_threshold, Some(0.5));
        assert_eq!(
            o.classes,
            Some(vec![
                ClassRef::Name("person".into()),
                ClassRef::Id(3),
                ClassRef::Name("traffic light".into()),
                ClassRef::Name("dog".into()),
            ])
        );
        assert_eq!(o.exclude_classes, Some(vec![ClassRef::Id(0)]));
        assert_eq!(o.regular_nms, Some(true));
    }

    #[test]
    fn octet_stream_and_other_image_types() {
        let req = parse_detect_request(
            Some("application/octet-stream"),
            PNG,
            &q(&[("image", "scan.png"), ("regular_nms", "0")]),
            &RequestLimits::default(),
        )
        .unwrap();
        assert_eq!(req.images[0].id, "scan.png");
        assert_eq!(req.options.regular_nms, Some(false));
        for ct in [
            "image/png",
            "image/webp",
            "IMAGE/GIF",
            "image/bmp",
            "image/tiff; x=y",
        ] {
            let req = parse(Some(ct), PNG).unwrap();
            assert_eq!(req.images[0].id, "image-0", "{ct}");
            assert_eq!(bytes(&req.images[0]), PNG);
        }
    }

    #[test]
    fn query_option_errors() {
        let parse_q = |pairs: &[(&str, &str)]| {
            parse_detect_request(
                Some("image/jpeg"),
                JPEG,
                &q(pairs),
                &RequestLimits::default(),
            )
        };
        let e = parse_q(&[("min_scor", "0.5")]).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("unknown query parameter `min_scor`"));
        assert!(e
            .message
            .contains("min_score, max_results, iou_threshold, classes"));
        assert_err(
            parse_q(&[("min_score", "high")]),
            400,
            "`min_score`: `high` is not a number",
        );
        assert_err(parse_q(&[("min_score", "NaN")]), 400, "`min_score`");
        assert_err(parse_q(&[("max_results", "-3")]), 400, "`max_results`");
        assert_err(parse_q(&[("iou_threshold", "")]), 400, "`iou_threshold`");
        assert_err(parse_q(&[("regular_nms", "maybe")]), 400, "`regular_nms`");
        assert_err(parse_q(&[("classes", " , ")]), 400, "`classes`");
        assert_err(
            parse_q(&[("min_score", "0.1"), ("min_score", "0.2")]),
            400,
            "given more than once",
        );
        // Query options are checked for JSON bodies too.
        assert_err(
            parse_detect_request(
                Some("application/json"),
                br#"{"images": [{"data": "QUJD"}]}"#,
                &q(&[("bogus", "1")]),
                &RequestLimits::default(),
            ),
            400,
            "unknown query parameter `bogus`",
        );
    }

    #[test]
    fn empty_body_is_400() {
        for ct in [Some("image/jpeg"), Some("application/json"), None] {
            assert_err(parse(ct, b""), 400, "empty body");
        }
        assert_err(
            parse(Some("multipart/form-data; boundary=x"), b""),
            400,
            "empty body",
        );
    }

    #[test]
    fn sniffing_without_content_type() {
        let body = format!(" \n{{\"images\": [{{\"data\": \"{}\"}}]}}", b64(JPEG));
        let req = parse(None, body.as_bytes()).unwrap();
        assert_eq!(bytes(&req.images[0]), JPEG);
        let req = parse(Some("  "), JPEG).unwrap();
        assert_eq!(bytes(&req.images[0]), JPEG);
        let req = parse(None, PNG).unwrap();
        assert_eq!(bytes(&req.images[0]), PNG);
        assert_err(parse(None, b"{not json"), 400, "malformed JSON body");
    }

    #[test]
    fn unsupported_content_type_is_415() {
        for ct in [
            "text/plain",
            "application/xml",
            "application/x-www-form-urlencoded",
            "multipart/mixed; boundary=x",
            "image",
            "garbage",
        ] {
            let e = parse(Some(ct), b"hello").unwrap_err();
            assert_eq!(e.status, 415, "{ct}");
            assert!(e.message.contains(ct), "{}", e.message);
            assert!(e.message.contains("application/json, multipart/form-data"));
        }
        assert!(parse(
            Some("application/vnd.api+json"),
            br#"{"images": [{"data": "QUJD"}]}"#
        )
        .is_ok());
    }

    #[test]
    fn body_over_limit_is_413_before_parsing() {
        let limits = RequestLimits {
            max_body_bytes: 10,
            max_images: 20,
        };
        for ct in [
            Some("image/jpeg"),
            Some("text/plain"),
            Some("application/json"),
            None,
        ] {
            let e = parse_detect_request(ct, &[0u8; 11], &[], &limits).unwrap_err();
            assert_eq!(e.status, 413);
            assert!(
                e.message.contains("11 bytes; the limit is 10 bytes"),
                "{}",
                e.message
            );
        }
        assert!(parse_detect_request(Some("image/jpeg"), &[1u8; 10], &[], &limits).is_ok());
    }

    #[test]
    fn too_many_images_is_413() {
        let limits = RequestLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_images: 2,
        };
        let three = r#"{"images": [{"data": "QUJD"}, {"data": "!!"}, {"data": "QUJD"}]}"#;
        let e = parse_detect_request(Some("application/json"), three.as_bytes(), &[], &limits)
            .unwrap_err();
        assert_eq!(e.status, 413, "counted before decoding: {e}");
        assert!(e.message.contains("at most 2"), "{}", e.message);
        let legacy = r#"{"a": "QUJD", "b": "QUJD", "c": "QUJD"}"#;
        let e = parse_detect_request(Some("application/json"), legacy.as_bytes(), &[], &limits)
            .unwrap_err();
        assert_eq!(e.status, 413);
        let two = r#"{"images": [{"data": "QUJD"}, {"data": "QUJD"}]}"#;
        assert!(
            parse_detect_request(Some("application/json"), two.as_bytes(), &[], &limits).is_ok()
        );
    }

    // --- multipart ----------------------------------------------------------------------

    fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (headers, content) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    #[test]
    fn multipart_two_files_and_options() {
        let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
        let mut body = b"This is a preamble.\r\n".to_vec();
        body.extend(multipart(
            boundary,
            &[
                (
                    "Content-Disposition: form-data; name=\"images\"; filename=\"cat.jpg\"\r\nContent-Type: image/jpeg",
                    JPEG,
                ),
                ("Content-Disposition: form-data; name=\"note\"", b"hello"),
                ("content-disposition: form-data; name=\"id\"", b"ignored"),
                (
                    "Content-Disposition: form-data; name=\"options\"\r\nContent-Type: application/json",
                    br#"{"min_score": 0.6, "classes": ["cat"]}"#,
                ),
                (
                    "Content-Disposition: form-data; name=\"images\"; filename=\"dog.png\"\r\nContent-Type: image/png",
                    PNG,
                ),
            ],
        ));
        body.extend_from_slice(b"an epilogue\r\n--not a boundary");
        let query = q(&[("min_score", "0.1"), ("max_results", "3")]);
        let ct = format!("multipart/form-data; boundary={boundary}");
        let req =
            parse_detect_request(Some(&ct), &body, &query, &RequestLimits::default()).unwrap();
        let ids: Vec<&str> = req.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["cat.jpg", "dog.png"]);
        assert_eq!(bytes(&req.images[0]), JPEG);
        assert_eq!(bytes(&req.images[1]), PNG);
        assert_eq!(req.options.min_score, Some(0.6));
        assert_eq!(req.options.max_results, Some(3));
        assert_eq!(
            req.options.classes,
            Some(vec![ClassRef::Name("cat".into())])
        );
    }

    #[test]
    fn multipart_quoted_boundary_and_escaped_filenames() {
        let boundary = "simple boundary:=(x)";
        let body = multipart(
            boundary,
            &[
                (
                    r#"Content-Disposition: form-data; name="f"; filename="my \"best\" shot; 1.jpg""#,
                    JPEG,
                ),
                (
                    "Content-Disposition: form-data; name=\"g\"; filename=\"x.jpg\"; filename*=UTF-8''na%C3%AFve.jpg",
                    PNG,
                ),
                (
                    r#"Content-Disposition: form-data; name=f; filename="C:\photos\win.jpg""#,
                    b"",
                ),
                ("Content-Disposition: form-data; name=\"raw\"\r\nContent-Type: application/octet-stream", b"bin"),
                ("Content-Disposition: form-data\r\nContent-Type: image/gif", b"GIF89a"),
                (
                    "Content-Disposition: form-data; name=\"b64\"; filename=\"e.jpg\"\r\nContent-Transfer-Encoding: base64",
                    b"QUJD\r\nREVG",
                ),
            ],
        );
        let ct = format!("multipart/form-data; charset=utf-8; boundary=\"{boundary}\"");
        let req = parse(Some(&ct), &body).unwrap();
        let ids: Vec<&str> = req.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "my \"best\" shot; 1.jpg",
                "naïve.jpg",
                r"C:\photos\win.jpg",
                "raw",
                "image-4",
                "e.jpg"
            ]
        );
        assert_eq!(bytes(&req.images[0]), JPEG);
        assert_eq!(bytes(&req.images[2]), b"", "empty file kept as empty bytes");
        assert_eq!(bytes(&req.images[3]), b"bin");
        assert_eq!(bytes(&req.images[5]), b"ABCDEF");
    }

    #[test]
    fn multipart_content_may_contain_boundary_lookalikes() {
        let boundary = "XyZ";
        let tricky: &[u8] = b"a\r\n--XyZabc\r\n--Xy\r\r\n--XyZ-x\rend";
        let body = multipart(
            boundary,
            &[(
                "Content-Disposition: form-data; name=\"a\"; filename=\"t.bin\"",
                tricky,
            )],
        );
        // Transport padding after a delimiter is allowed.
        let body = String::from_utf8(body)
            .unwrap()
            .replacen("--XyZ\r\n", "--XyZ  \t\r\n", 1);
        let req = parse(Some("multipart/form-data; boundary=XyZ"), body.as_bytes()).unwrap();
        assert_eq!(bytes(&req.images[0]), tricky);
    }

    #[test]
    fn multipart_skips_unselected_browser_file_inputs() {
        let body = multipart(
            "b",
            &[
                ("Content-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream", b""),
                ("Content-Disposition: form-data; name=\"file2\"; filename=\"x.jpg\"", JPEG),
            ],
        );
        let req = parse(Some("multipart/form-data; boundary=b"), &body).unwrap();
        assert_eq!(req.images.len(), 1);
        assert_eq!(req.images[0].id, "x.jpg");
    }

    #[test]
    fn multipart_without_files_is_422() {
        let body = multipart(
            "b",
            &[
                ("Content-Disposition: form-data; name=\"options\"", b"{}"),
                ("Content-Disposition: form-data; name=\"note\"", b"hi"),
            ],
        );
        assert_err(
            parse(Some("multipart/form-data; boundary=b"), &body),
            422,
            "no images",
        );
        assert_err(
            parse(Some("multipart/form-data; boundary=b"), b"--b--\r\n"),
            422,
            "no images",
        );
    }

    #[test]
    fn multipart_too_many_images_is_413() {
        let file = (
            "Content-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"",
            JPEG,
        );
        let body = multipart("b", &[file, file, file]);
        let limits = RequestLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_images: 2,
        };
        let e = parse_detect_request(Some("multipart/form-data; boundary=b"), &body, &[], &limits)
            .unwrap_err();
        assert_eq!(e.status, 413);
        assert!(e.message.contains("at most 2"), "{}", e.message);
    }

    #[test]
    fn multipart_options_errors() {
        let ct = Some("multipart/form-data; boundary=b");
        let file = (
            "Content-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"",
            JPEG,
        );
        fn opts(json: &[u8]) -> (&'static str, &[u8]) {
            ("Content-Disposition: form-data; name=\"options\"", json)
        }
        assert_err(
            parse(ct, &multipart("b", &[file, opts(br#"{"min_score": "x"}"#)])),
            400,
            "options.min_score",
        );
        assert_err(
            parse(ct, &multipart("b", &[file, opts(br#"{"nope": 1}"#)])),
            400,
            "unknown field `nope`",
        );
        assert_err(
            parse(ct, &multipart("b", &[file, opts(b"{oops")])),
            400,
            "malformed JSON in the `options` part",
        );
        assert_err(
            parse(ct, &multipart("b", &[opts(b"{}"), file, opts(b"{}")])),
            400,
            "more than one `options` part",
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_err(
            parse(ct, &multipart("b", &[file, opts(deep.as_bytes())])),
            400,
            "recursion limit",
        );
        // An empty options part means no options.
        let req = parse(ct, &multipart("b", &[file, opts(b" \r\n")])).unwrap();
        assert_eq!(req.options, DetectOptions::default());
    }

    #[test]
    fn bad_multipart_is_400() {
        let file = (
            "Content-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"",
            JPEG,
        );
        let good = multipart("b", &[file]);
        assert_err(
            parse(Some("multipart/form-data"), &good),
            400,
            "no boundary parameter",
        );
        assert_err(
            parse(Some("multipart/form-data; boundary=\"\""), &good),
            400,
            "invalid boundary",
        );
        assert_err(
            parse(
                Some(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
                &good,
            ),
            400,
            "invalid boundary",
        );
        assert_err(
            parse(Some("multipart/form-data; boundary=\"b"), &good),
            400,
            "unterminated quoted string",
        );
        let ct = Some("multipart/form-data; boundary=b");
        assert_err(
            parse(ct, b"just some text"),
            400,
            "no `--b` delimiter found",
        );
        assert_err(
            parse(ct, &good[..good.len() - 4]),
            400,
            "is not followed by a boundary delimiter",
        );
        assert_err(
            parse(ct, b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n"),
            400,
            "headers not terminated",
        );
        assert_err(
            parse(ct, b"--b\r\nno colon here\r\n\r\nx\r\n--b--"),
            400,
            "malformed header line",
        );
        assert_err(
            parse(ct, b"--b\r\nContent-Type: image/jpeg\r\n\r\nx\r\n--b--"),
            400,
            "no Content-Disposition",
        );
        assert_err(
            parse(
                ct,
                b"--b\r\nContent-Disposition: form-data; name=\"f\r\n\r\nx\r\n--b--",
            ),
            400,
            "malformed Content-Disposition",
        );
        assert_err(
            parse(
                ct,
                b"--b\r\nContent-Disposition: form-data; filename=a\r\nContent-Transfer-Encoding: base64\r\n\r\n!!\r\n--b--",
            ),
            400,
            "image `a`: invalid base64 content",
        );
        let huge_header = format!("--b\r\nX-Big: {}\r\n\r\nx\r\n--b--", "a".repeat(20_000));
        assert_err(parse(ct, huge_header.as_bytes()), 400, "headers");
    }

    #[test]
    fn garbage_never_panics() {
        // Deterministic pseudo-random bodies, and every truncation of a valid multipart body.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[u8] = b"{}[]\":,-b\r\n\\=; azAZ09+/_\xff\x00";
        let cts = [
            None,
            Some("application/json"),
            Some("image/jpeg"),
            Some("multipart/form-data; boundary=b"),
            Some("multipart/form-data; boundary=\"b\\\""),
        ];
        for _ in 0..3000 {
            let len = (next() % 200) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            for ct in cts {
                let _ = parse(ct, &body);
            }
        }
        let file = (
            "Content-Disposition: form-data; name=\"f\"; filename=\"a \\\"b\\\".jpg\"; filename*=UTF-8''%FF%",
            JPEG,
        );
        let opts = (
            "Content-Disposition: form-data; name=\"options\"",
            b"{\"classes\": [1]}" as &[u8],
        );
        let good = multipart("b", &[file, opts]);
        for end in 0..=good.len() {
            let _ = parse(Some("multipart/form-data; boundary=b"), &good[..end]);
            let _ = parse(Some("multipart/form-data; boundary=b"), &good[end..]);
        }
        let json = br#"{"images": [{"id": "\u00e9", "data": "data:image/png;base64,QUJD"}, {"s3": {"bucket": "b", "key": "k"}}], "options": {"classes": ["a", 1]}}"#;
        for end in 0..=json.len() {
            let _ = parse(Some("application/json"), &json[..end]);
        }
    }
}
