//! `multipart/form-data` bodies (RFC 7578): the framing is read by the `multer` crate; which
//! parts are images, their ids, `filename*`, `Content-Transfer-Encoding` and the `options`
//! part are decided here (see the parent module's docs).
//!
//! `multer` reads a stream; the body is already complete in memory, so it is handed over as a
//! one-item stream and every future multer returns is ready at its first poll.

use std::convert::Infallible;

use futures_util::FutureExt as _;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use detect_core::detector::DetectOptions;

use super::b64::decode_base64;
use super::content_type::parse_header_value;
use super::error::{clip, ApiError};
use super::json_body::json_error;
use super::limits::RequestLimits;
use super::options::options_from_value;
use super::{too_many_images, ImageInput, ImageSource};

/// Longest part header block in a multipart body (names and values together).
const MAX_PART_HEADER_BYTES: usize = 16 * 1024;

/// Images and options of a multipart body.
pub(crate) fn parse_multipart_body(
    body: &[u8],
    boundary: &str,
    limits: &RequestLimits,
) -> Result<(Vec<ImageInput>, DetectOptions), ApiError> {
    let delimiter = format!("--{boundary}");
    if !contains(body, delimiter.as_bytes()) {
        return Err(malformed(format!("no `{delimiter}` delimiter found")));
    }
    read_parts(body, boundary, limits)
        .now_or_never()
        // Unreachable with a one-item stream; a clear error rather than a panic all the same.
        .unwrap_or_else(|| Err(malformed("the multipart reader stalled".into())))
}

fn malformed(why: String) -> ApiError {
    ApiError::bad_request(format!("malformed multipart/form-data body: {why}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One part: what its headers say, and its content.
struct Part {
    name: Option<String>,
    filename: Option<String>,
    /// Lower-cased media type without parameters; empty when absent.
    content_type: String,
    /// Lower-cased Content-Transfer-Encoding; empty when absent.
    transfer_encoding: String,
    content: Vec<u8>,
}

impl Part {
    fn is_file(&self) -> bool {
        self.filename.is_some()
            || self.content_type.starts_with("image/")
            || self.content_type == "application/octet-stream"
    }
}

async fn read_parts(
    body: &[u8],
    boundary: &str,
    limits: &RequestLimits,
) -> Result<(Vec<ImageInput>, DetectOptions), ApiError> {
    let stream = futures_util::stream::once(std::future::ready(Ok::<_, Infallible>(body.to_vec())));
    let mut reader = multer::Multipart::new(stream, boundary);
    let mut images = Vec::new();
    let mut options = None;
    let mut n = 0;
    loop {
        n += 1;
        let field = reader
            .next_field()
            .await
            .map_err(|e| framing_error(n, boundary, &e))?;
        let Some(field) = field else { break };
        let headers = part_headers(n, &field)?;
        let content = field
            .bytes()
            .await
            .map_err(|e| framing_error(n, boundary, &e))?
            .to_vec();
        let part = Part { content, ..headers };
        if part.is_file() {
            if part.filename.as_deref() == Some("") && part.content.is_empty() {
                continue; // a browser's file input with no file chosen
            }
            if images.len() == limits.max_images {
                return Err(too_many_images(limits));
            }
            images.push(image_from_part(part, images.len())?);
        } else if part.name.as_deref() == Some("options") {
            if options.is_some() {
                return Err(ApiError::bad_request(
                    "more than one `options` part in the multipart body",
                ));
            }
            options = Some(options_from_part(&part.content)?);
        }
        // Other text fields (`id` included) are ignored.
    }
    Ok((images, options.unwrap_or_default()))
}

/// multer's error for part `n`, in this API's words (multer does not say where it stopped
/// more precisely than this).
fn framing_error(n: usize, boundary: &str, e: &multer::Error) -> ApiError {
    let why = match e {
        multer::Error::IncompleteFieldData { .. } => format!(
            "part {n} is not followed by a boundary delimiter (the body must end with `--{boundary}--`)"
        ),
        multer::Error::ReadHeaderFailed(e) => format!("part {n}: malformed header line ({e})"),
        multer::Error::DecodeHeaderName { .. } | multer::Error::DecodeHeaderValue { .. } => {
            format!("part {n}: malformed header line")
        }
        multer::Error::IncompleteStream | multer::Error::IncompleteHeaders => format!(
            "incomplete at part {n}: a delimiter line must end in CRLF (then the part's headers \
             and an empty line) or in `--`, and the body must end with `--{boundary}--`"
        ),
        other => format!("part {n}: {other}"),
    };
    malformed(why)
}

/// The headers of part `n` that matter here (the content is filled in by the caller).
fn part_headers(n: usize, field: &multer::Field<'_>) -> Result<Part, ApiError> {
    let headers = field.headers();
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_PART_HEADER_BYTES {
        return Err(malformed(format!(
            "part {n}: headers longer than {MAX_PART_HEADER_BYTES} bytes"
        )));
    }
    // Values as bytes: browsers send file names in UTF-8, which `to_str` would refuse.
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let disposition = header("content-disposition")
        .ok_or_else(|| malformed(format!("part {n} has no Content-Disposition header")))?;
    // Parsed here, not by multer: it reads neither `filename*` nor backslash escapes.
    let (_, params) = parse_header_value(&disposition)
        .map_err(|e| malformed(format!("part {n}: malformed Content-Disposition: {e}")))?;
    let param = |wanted: &str| {
        params
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.clone())
    };
    let filename = param("filename*")
        .and_then(|v| decode_ext_value(&v))
        .or_else(|| param("filename"));
    let lower_essence = |v: Option<String>| {
        v.as_deref()
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    Ok(Part {
        name: param("name"),
        filename,
        content_type: lower_essence(header("content-type")),
        transfer_encoding: lower_essence(header("content-transfer-encoding")),
        content: Vec::new(),
    })
}

/// A file part as an image: id = file name, else part name, else `image-<index>`.
fn image_from_part(part: Part, index: usize) -> Result<ImageInput, ApiError> {
    let id = [&part.filename, &part.name]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| format!("image-{index}"));
    let data = match part.transfer_encoding.as_str() {
        "" | "binary" | "8bit" | "7bit" => part.content,
        "base64" => std::str::from_utf8(&part.content)
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
    Ok(ImageInput {
        id,
        source: ImageSource::Bytes(data),
    })
}

/// The `options` part: JSON options; blank means none.
fn options_from_part(content: &[u8]) -> Result<DetectOptions, ApiError> {
    if content.iter().all(u8::is_ascii_whitespace) {
        return Ok(DetectOptions::default());
    }
    let value: Value = serde_json::from_slice(content)
        .map_err(|e| json_error("JSON in the `options` part", &e))?;
    options_from_value(value, "options")
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
