//! Lenient base64 for image data: standard or URL-safe alphabet, padded or not, whitespace
//! anywhere, optionally a `data:` URL.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine as _, GeneralPurpose, GeneralPurposeConfig};

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
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
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
