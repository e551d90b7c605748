//! JSON bodies: `{"images": [...], "options": {...}}` with base64 data or S3 references, and
//! the legacy `{"<file name>": "<base64>"}` form (see the parent module's docs).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use detect_core::detector::DetectOptions;

use super::b64::decode_base64;
use super::error::{clip, describe, ApiError};
use super::limits::{RequestLimits, MAX_S3_BUCKET_BYTES, MAX_S3_KEY_BYTES};
use super::options::options_from_value;
use super::{check_image_count, ImageInput, ImageSource, S3Ref};

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

pub(crate) fn json_error(context: &str, e: &serde_json::Error) -> ApiError {
    let kind = match e.classify() {
        serde_json::error::Category::Data => "invalid",
        _ => "malformed",
    };
    ApiError::bad_request(format!("{kind} {context}: {e}"))
}

pub(crate) fn parse_json_body(
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
