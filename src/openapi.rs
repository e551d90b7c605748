//! The API's OpenAPI 3.1 document (`docs/openapi.json`, the one copy), embedded in the
//! binary and served at `GET /api/openapi.json`. The tests below hold it to the code: every
//! route, query option, option field and Rekognition error type, and real responses of
//! every status validated against the document's schemas.

use std::sync::LazyLock;

use serde_json::Value;

const DOCUMENT: &str = include_str!("../docs/openapi.json");

static PARSED: LazyLock<Value> = LazyLock::new(|| {
    // The document is checked by the tests; a broken one still answers, as an error text.
    serde_json::from_str(DOCUMENT).unwrap_or_else(
        |e| serde_json::json!({"error": {"status": 500, "message": format!("invalid OpenAPI document: {e}")}}),
    )
});

/// The parsed document.
pub fn document() -> &'static Value {
    &PARSED
}

#[cfg(test)]
mod tests;
