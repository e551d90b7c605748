//! Fuzz harnesses for lambda-detect, one function per cargo-fuzz target.
//!
//! Shared by the libFuzzer targets (fuzz/fuzz_targets/, run by scripts/fuzz.sh) and by the
//! main package's tests/fuzz_regressions.rs, which includes this file and replays the seed
//! corpora and every saved crash input through the same functions under `cargo test`.
//!
//! Each harness feeds untrusted bytes to the code that parses them and checks a few
//! invariants besides "no panic": parse errors carry the documented statuses, accepted
//! requests respect the limits, decoded images respect the pixel limit.

use detect_core::model::{convert, InputQuantization, InputSpec};
use detect_core::preprocess::{decode, decode_for, probe, to_input, ImageLimits};
use lambda_detect::events::Event;
use lambda_detect::handler::result_key;
use lambda_detect::request::{parse_detect_request, route, RequestLimits};
use lambda_detect::s3::{decode_key, is_image_key, is_s3_event, S3Event};

/// Content types of the HTTP target, picked by the low nibble of the first input byte. The
/// index one past the end means "the first line of the body is the content type". Multipart
/// seeds use the fixed boundary `XBOUNDARY`.
pub const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/vnd.api+json"),
    Some("image/jpeg"),
    Some("application/octet-stream"),
    Some("multipart/form-data; boundary=XBOUNDARY"),
    Some("multipart/form-data; boundary=\"XBOUNDARY\"; charset=utf-8"),
    Some("multipart/form-data"),
    Some("text/plain"),
];

/// Error statuses `parse_detect_request` may answer (module docs of src/request/mod.rs).
const PARSE_STATUSES: &[u16] = &[400, 413, 415, 422];
/// Error messages echo parts of the input only clipped; none should come near this.
const MAX_MESSAGE_BYTES: usize = 4096;

/// HTTP target. Input: one selector byte (low nibble: content type from [`CONTENT_TYPES`];
/// high bit: small limits, 512-byte body and 2 images), then a request line
/// `METHOD PATH?QUERY` up to the first `\n`, then the body. The query is split on `&` and
/// `=` (pairs as the runtime hands them over, already decoded).
pub fn http_request(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = split_line(rest);
    let head = String::from_utf8_lossy(head);
    let (method, target) = head.split_once(' ').unwrap_or(("POST", &head));
    let query_string = target.split_once('?').map_or("", |(_, q)| q);
    let query: Vec<(String, String)> = query_string
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), v.to_string())
        })
        .collect();

    match route(method, target) {
        Ok(_) => {}
        Err(e) => {
            assert!(matches!(e.status, 404 | 405), "route: {e}");
            assert!(
                e.message.len() <= MAX_MESSAGE_BYTES,
                "route message too long"
            );
        }
    }

    let index = (selector & 0x0f) as usize % (CONTENT_TYPES.len() + 1);
    let (content_type, body) = match CONTENT_TYPES.get(index) {
        Some(ct) => (ct.map(str::to_string), body),
        None => {
            let (line, body) = split_line(body);
            (Some(String::from_utf8_lossy(line).into_owned()), body)
        }
    };
    let limits = if selector & 0x80 != 0 {
        RequestLimits {
            max_body_bytes: 512,
            max_images: 2,
        }
    } else {
        RequestLimits::default()
    };
    match parse_detect_request(content_type.as_deref(), body, &query, &limits) {
        Ok(request) => {
            assert!(body.len() <= limits.max_body_bytes);
            assert!(!request.images.is_empty());
            assert!(request.images.len() <= limits.max_images);
        }
        Err(e) => {
            assert!(PARSE_STATUSES.contains(&e.status), "parse: {e}");
            assert!(
                e.message.len() <= MAX_MESSAGE_BYTES,
                "parse message of {} bytes",
                e.message.len()
            );
        }
    }
}

fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

/// S3 event target: the input through `Event::parse` (where the function recognises event
/// kinds); as JSON → `is_s3_event`, `S3Event`, each record's key through `decode_key`,
/// `is_image_key` and `result_key`; and the input as one raw event key.
pub fn s3_event(data: &[u8]) {
    let _ = Event::parse(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = is_s3_event(&value);
        if let Ok(event) = serde_json::from_value::<S3Event>(value) {
            for record in &event.records {
                check_key(record.s3.object.key.as_deref().unwrap_or_default());
            }
        }
    }
    if let Ok(event) = serde_json::from_slice::<S3Event>(data) {
        for record in &event.records {
            check_key(record.s3.object.key.as_deref().unwrap_or_default());
        }
    }
    check_key(&String::from_utf8_lossy(data));
}

fn check_key(raw: &str) {
    let Ok(key) = decode_key(raw) else {
        return;
    };
    // `+` → space and `%XX` → one byte never make a key longer.
    assert!(key.len() <= raw.len());
    let _ = is_image_key(&key);
    if let Ok(result) = result_key("detections/", &key) {
        assert!(result.starts_with("detections/") && result.ends_with(".json"));
        assert!(result.len() <= 1024);
    }
}

/// Limits of the image target: small enough that the fuzzer never runs out of memory.
pub const FUZZ_IMAGE_LIMITS: ImageLimits = ImageLimits {
    max_pixels: 4_000_000,
    max_alloc: 64 * 1024 * 1024,
};

/// Image target: `probe`; `decode_for` (the detector's path: a JPEG twice the input's size or
/// more is decoded at a reduced scale) and `decode` under [`FUZZ_IMAGE_LIMITS`]; `to_input` to a
/// 24x16 input.
pub fn image_decode(data: &[u8]) {
    let _ = probe(data);
    let spec = InputSpec {
        name: "input".into(),
        height: 16,
        width: 24,
        channels: 3,
        quantization: InputQuantization {
            scale: 1.0 / 127.5,
            zero_point: 127.5,
        },
    };
    if let Ok(decoded) = decode_for(data, &FUZZ_IMAGE_LIMITS, &spec) {
        let pixels = decoded.width as u64 * decoded.height as u64;
        assert!(pixels > 0 && pixels <= FUZZ_IMAGE_LIMITS.max_pixels);
        let (w, h) = decoded.image.dimensions();
        assert!(w > 0 && h > 0 && w <= decoded.width && h <= decoded.height);
        check_input(&to_input(&decoded.image, &spec));
    }
    let Ok(image) = decode(data, &FUZZ_IMAGE_LIMITS) else {
        return;
    };
    let pixels = image.width() as u64 * image.height() as u64;
    assert!(pixels > 0 && pixels <= FUZZ_IMAGE_LIMITS.max_pixels);
    check_input(&to_input(&image, &spec));
}

fn check_input(input: &[f32]) {
    assert_eq!(input.len(), 16 * 24 * 3);
    assert!(input.iter().all(|v| (-1.001..=1.001).contains(v)));
}

/// Model target: the TFLite → float conversion (no tract loading, to keep executions fast).
pub fn model_convert(data: &[u8]) {
    if let Ok(model) = convert(data) {
        assert!(!model.float_tflite.is_empty());
    }
    let options = detect_core::model::ConvertOptions { int8_convs: true };
    if let Ok(model) = detect_core::model::convert_with(data, &options) {
        assert!(!model.float_tflite.is_empty());
        for site in &model.int8_convs {
            assert!(site.graph_input >= 1 && site.graph_output >= 2);
        }
    }
}
