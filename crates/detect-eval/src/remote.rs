//! `detect files --endpoint`: the same files through the function over HTTP (local `cargo
//! lambda watch` or a deployed API), answered as the same [`ImageResult`]s the in-process
//! run prints. One raw image per request (`?id=` names it, options go in the query), a few
//! requests in flight; an HTTP error (API Gateway's 403 for a missing or bad signature, the
//! function's 413 or 415, …) becomes that image's status and message.

use std::path::PathBuf;
use std::time::Duration;

use detect_core::schema::Timings;
use detect_core::work_queue::map_in_order;
use detect_core::ImageResult;
use serde_json::Value;

use super::client::{agent, build_request, exchange, query_escape, Encoding, Exchange};
use super::sigv4::Signer;

/// Where and how to send.
pub struct RemoteConfig {
    /// The detect URL (…/api/detect).
    pub endpoint: String,
    /// Detection options as query parameters (`min_score`, `classes`, …; see docs/API.md).
    pub query: Vec<(String, String)>,
    pub signer: Option<Signer>,
    /// Requests in flight.
    pub concurrency: usize,
    pub timeout: Duration,
    /// The status of a file that cannot be read (the caller's choice, as for in-process runs).
    pub unreadable_status: u16,
}

/// Status given to an image whose request got no HTTP answer (refused, reset, timed out).
pub const NO_ANSWER_STATUS: u16 = 0;

/// One result per file, in file order; `progress(1)` after each.
pub fn detect_remote(
    files: &[(String, PathBuf)],
    cfg: &RemoteConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<ImageResult> {
    let endpoint = with_query(&cfg.endpoint, &cfg.query);
    let agent = agent(cfg.timeout);
    let results = map_in_order(files.len(), cfg.concurrency, |i| {
        let (id, path) = &files[i];
        let result = match std::fs::read(path) {
            Err(e) => failed(id, cfg.unreadable_status, format!("cannot read file: {e}")),
            Ok(bytes) => {
                let images = vec![(id.clone(), bytes)];
                let (url, ct, body) = build_request(&endpoint, Encoding::Binary, &images);
                match exchange(&agent, &url, &ct, &[], cfg.signer.as_ref(), &body) {
                    Ok(ex) => result_of(id, &ex),
                    Err(e) => failed(id, NO_ANSWER_STATUS, e),
                }
            }
        };
        progress(1);
        result
    });
    results
        .into_iter()
        .zip(files)
        .map(|(r, (id, _))| {
            r.unwrap_or_else(|| failed(id, 500, "internal error: the sending thread failed".into()))
        })
        .collect()
}

/// `endpoint` with the options appended to its query string.
fn with_query(endpoint: &str, query: &[(String, String)]) -> String {
    let mut url = endpoint.to_string();
    for (i, (k, v)) in query.iter().enumerate() {
        let sep = if i == 0 && !endpoint.contains('?') {
            '?'
        } else {
            '&'
        };
        url.push(sep);
        url.push_str(&query_escape(k));
        url.push('=');
        url.push_str(&query_escape(v));
    }
    url
}

fn failed(id: &str, status: u16, message: String) -> ImageResult {
    ImageResult::failed(id, status, message, Timings::default())
}

/// The image's result from the function's answer: its `results[0]` on success, else the
/// HTTP status with the message of the function's error body (`{"error": {"message"}}`) or
/// of API Gateway's (`{"message"}`), or the start of a body in neither shape.
fn result_of(id: &str, ex: &Exchange) -> ImageResult {
    let body: Value = serde_json::from_str(&ex.body).unwrap_or(Value::Null);
    if (200..300).contains(&ex.status) {
        let first = body["results"].get(0).cloned().unwrap_or(Value::Null);
        return match serde_json::from_value::<ImageResult>(first) {
            Ok(mut r) => {
                r.id = id.to_string();
                r
            }
            Err(e) => failed(
                id,
                502,
                format!("HTTP {}: not a detect response ({e})", ex.status),
            ),
        };
    }
    let message = body["error"]["message"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .or_else(|| body["Message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| ex.body.chars().take(200).collect());
    failed(id, ex.status, format!("HTTP {}: {message}", ex.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(status: u16, body: &str) -> Exchange {
        Exchange {
            status,
            body: body.into(),
            headers_ms: 1.0,
            rtt_ms: 2.0,
        }
    }

    #[test]
    fn options_are_escaped_into_the_query() {
        let q = vec![
            ("min_score".to_string(), "0.5".to_string()),
            ("classes".to_string(), "person,traffic light".to_string()),
        ];
        assert_eq!(
            with_query("http://h/api/detect", &q),
            "http://h/api/detect?min_score=0.5&classes=person%2Ctraffic%20light"
        );
        assert_eq!(
            with_query("http://h/x?a=1", &q[..1]),
            "http://h/x?a=1&min_score=0.5"
        );
    }

    #[test]
    fn a_success_keeps_the_detections_under_our_id() {
        let body = r#"{"results":[{"id":"image-0","status":200,"error":null,"width":4,"height":3,
            "detections":[{"label":"cat","class_id":16,"score":0.9,
              "box":{"ymin":0.1,"xmin":0.2,"ymax":0.8,"xmax":0.9},
              "box_px":{"x":1,"y":0,"width":3,"height":2}}],
            "timings_ms":{"decode":1.0,"preprocess":1.0,"inference":5.0,"postprocess":0.5,"total":7.5}}]}"#;
        let r = result_of("dir/cat.jpg", &ex(200, body));
        assert_eq!((r.id.as_str(), r.status), ("dir/cat.jpg", 200), "{r:?}");
        assert_eq!(r.detections.len(), 1);
        assert_eq!(r.detections[0].label, "cat");
    }

    #[test]
    fn errors_carry_the_status_and_the_message_of_either_shape() {
        let gw = result_of(
            "a.jpg",
            &ex(403, r#"{"message":"Missing Authentication Token"}"#),
        );
        assert_eq!(gw.status, 403);
        assert_eq!(
            gw.error.as_deref(),
            Some("HTTP 403: Missing Authentication Token")
        );
        let native = result_of(
            "a.jpg",
            &ex(415, r#"{"error":{"status":415,"message":"not an image"}}"#),
        );
        assert_eq!(native.status, 415);
        assert_eq!(native.error.as_deref(), Some("HTTP 415: not an image"));
        let garbage = result_of("a.jpg", &ex(502, "Bad Gateway"));
        assert_eq!(garbage.error.as_deref(), Some("HTTP 502: Bad Gateway"));
        let not_detect = result_of("a.jpg", &ex(200, r#"{"ok":true}"#));
        assert_eq!(not_detect.status, 502);
    }
}
