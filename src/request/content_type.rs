//! Which body form a `Content-Type` names (JSON, raw image, multipart with its boundary), and
//! the header-parameter parser shared with multipart's `Content-Disposition`.

use super::error::{clip, ApiError, UNSUPPORTED_MEDIA_TYPE};

/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY_LEN: usize = 70;

const ACCEPTED_TYPES: &str =
    "application/json, multipart/form-data, image/* or application/octet-stream";

pub(crate) enum BodyForm {
    Json,
    Raw,
    Multipart { boundary: String },
}

pub(crate) fn body_form(content_type: Option<&str>, body: &[u8]) -> Result<BodyForm, ApiError> {
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
pub(crate) type Params = Vec<(String, String)>;

/// Splits a header value `main; a=b; c="d"` into `main` and its parameters (names
/// lower-cased, in order). Quoted strings may contain `;`; inside them `\"` and `\\`
/// unescape, and a backslash before anything else is kept as is (some browsers send
/// Windows paths unescaped). Parameters without `=` are ignored.
pub(crate) fn parse_header_value(s: &str) -> Result<(&str, Params), String> {
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
