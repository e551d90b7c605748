//! The HTTP error answered as JSON, the statuses request parsing uses, and the helpers that
//! keep echoed input in error messages short.

use std::fmt;

use serde_json::Value;

pub(crate) const BAD_REQUEST: u16 = 400;
pub(crate) const NOT_FOUND: u16 = 404;
pub(crate) const METHOD_NOT_ALLOWED: u16 = 405;
pub(crate) const PAYLOAD_TOO_LARGE: u16 = 413;
pub(crate) const UNSUPPORTED_MEDIA_TYPE: u16 = 415;
pub(crate) const UNPROCESSABLE: u16 = 422;

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

/// A short description of a JSON value for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {}", clip(&n.to_string(), 40)),
        Value::String(s) => format!("string \"{}\"", clip(s, 40)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_json_shape() {
        let e = ApiError::new(413, "too big");
        assert_eq!(
            e.to_json(),
            serde_json::json!({"error": {"status": 413, "message": "too big"}})
        );
        assert_eq!(e.to_string(), "HTTP 413: too big");
    }
}
