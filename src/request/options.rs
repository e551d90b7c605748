//! Detection options: from the query string (every body form) and from JSON (`options` in a
//! JSON body or a multipart `options` part), and how the two are merged.

use serde::Deserialize;
use serde_json::{Map, Value};

use detect_core::detector::{ClassRef, DetectOptions};

use super::error::{clip, describe, ApiError};

/// Options accepted in the query string.
pub const QUERY_OPTIONS: [&str; 6] = [
    "min_score",
    "max_results",
    "iou_threshold",
    "classes",
    "exclude_classes",
    "regular_nms",
];

pub(crate) fn raw_image_id(query: &[(String, String)]) -> String {
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
pub(crate) fn parse_query_options(query: &[(String, String)]) -> Result<DetectOptions, ApiError> {
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

/// Body options win over query options, field by field.
pub(crate) fn merge_options(body: DetectOptions, query: DetectOptions) -> DetectOptions {
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

/// Deserializes options from JSON, with an error naming the offending field (`what` is the
/// prefix, e.g. `options`). Null means no options. serde (`deny_unknown_fields`) stays the
/// authority on names and types; fields are tried one at a time only to locate errors.
pub(crate) fn options_from_value(value: Value, what: &str) -> Result<DetectOptions, ApiError> {
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
