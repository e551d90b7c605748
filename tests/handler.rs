//! The Lambda handler's logic called directly, without the runtime or AWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use detect_core::{Detector, DetectorConfig, ModelSource};
use lambda_detect::handler::{App, AppConfig};
use lambda_detect::request::RequestLimits;
use lambda_detect::s3::{ObjectStore, S3Error, S3Event, StoreFuture};
use serde_json::json;

fn app() -> App {
    app_with(None)
}

fn app_with(store: Option<Arc<dyn ObjectStore>>) -> App {
    let detector = Detector::load(&ModelSource::Default, &DetectorConfig::default()).unwrap();
    let config = AppConfig {
        allowed_buckets: vec!["allowed".into()],
        input_prefix: None,
        results_prefix: "detections/".into(),
        results_bucket: None,
        request_limits: RequestLimits::default(),
        max_object_bytes: 1024,
        workers: 2,
    };
    App::new(Arc::new(detector), store, config, 123.0)
}

fn image(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn health_reports_cold_then_warm() {
    let app = app();
    let rt = rt();
    let first = rt.block_on(app.handle_http("GET", "/api/health", None, b"", &[], "r1"));
    assert_eq!(first.status, 200);
    assert_eq!(first.body["cold_start"], true);
    assert_eq!(first.body["init_ms"], 123.0);
    assert_eq!(first.body["model"]["labels"], 80);
    let second = rt.block_on(app.handle_http("GET", "/prod/api/health/", None, b"", &[], "r2"));
    assert_eq!(second.body["cold_start"], false);
}

/// Health polls (a deployment check, the evaluation waiting for the function) do not use up
/// the cold start of the first detection; the second detection is warm.
#[test]
fn health_checks_leave_the_first_detection_cold() {
    let app = app();
    let rt = rt();
    for id in ["h1", "h2"] {
        rt.block_on(app.handle_http("GET", "/api/health", None, b"", &[], id));
    }
    let detect = |id| {
        rt.block_on(app.handle_http(
            "POST",
            "/api/detect",
            Some("image/jpeg"),
            &image("chelsea.jpg"),
            &[],
            id,
        ))
    };
    let first = detect("d1");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["cold_start"], true);
    assert_eq!(detect("d2").body["cold_start"], false);
}

#[test]
fn detect_raw_image_with_summary() {
    let app = app();
    let query = vec![("min_score".to_string(), "0.4".to_string())];
    let reply = rt().block_on(app.handle_http(
        "POST",
        "/api/detect",
        Some("image/jpeg"),
        &image("chelsea.jpg"),
        &query,
        "req-1",
    ));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let b = &reply.body;
    assert_eq!(b["request_id"], "req-1");
    assert_eq!(b["results"][0]["detections"][0]["label"], "cat");
    assert_eq!(b["summary"]["images"], 1);
    assert_eq!(b["summary"]["succeeded"], 1);
    assert!(b["summary"]["avg_inference_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(b["model"]["input_width"], 300);
}

#[test]
fn s3_references_outside_the_allow_list_fail_per_image() {
    let app = app();
    let body = json!({"images": [
        {"id": "ok", "data": base64_of(&image("coffee.jpg"))},
        {"id": "denied", "s3": {"bucket": "not-allowed", "key": "x.jpg"}},
        {"id": "no-s3", "s3": {"bucket": "allowed", "key": "x.jpg"}},
    ]});
    let reply = rt().block_on(app.handle_http(
        "POST",
        "/api/detect",
        Some("application/json"),
        body.to_string().as_bytes(),
        &[],
        "r",
    ));
    assert_eq!(reply.status, 200);
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[1]["status"], 403);
    assert!(results[1]["error"].as_str().unwrap().contains("allow-list"));
    assert_eq!(
        results[2]["status"], 501,
        "no S3 client configured in this test"
    );
    assert_eq!(reply.body["summary"]["failed"], 2);
}

/// method, path, content type, body, expected status
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
);

#[test]
fn errors_have_statuses_and_json_messages() {
    let app = app();
    let rt = rt();
    let cases: Vec<Case> = vec![
        ("GET", "/nowhere", None, vec![], 404),
        ("GET", "/api/detect", None, vec![], 405),
        ("POST", "/api/detect", Some("text/plain"), b"hi".to_vec(), 415),
        ("POST", "/api/detect", Some("application/json"), b"{\"images\": [{\"data\": \"%%%\"}]}".to_vec(), 400),
        ("POST", "/api/detect", Some("application/json"), b"{\"images\": [], \"options\": {}}".to_vec(), 422),
        ("POST", "/api/detect", Some("application/json"), json!({"images": [{"data": base64_of(b"junk")}]}).to_string().into_bytes(), 422),
        ("POST", "/api/detect", Some("application/json"), json!({"images": [{"data": base64_of(&image("chelsea.jpg"))}], "options": {"classes": ["unicorn"]}}).to_string().into_bytes(), 400),
        ("POST", "/api/detect", Some("application/json"), json!({"images": [{"data": base64_of(&image("chelsea.jpg"))}], "options": {"min_score": 2.0}}).to_string().into_bytes(), 400),
        ("POST", "/api/detect", Some("image/png"), vec![0u8; 6 * 1024 * 1024 + 1], 413),
    ];
    for (method, path, ct, body, status) in cases {
        let reply = rt.block_on(app.handle_http(method, path, ct, &body, &[], "r"));
        assert_eq!(
            reply.status, status,
            "{method} {path} {ct:?}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["status"], status);
        assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn s3_events_skip_results_and_fail_without_s3() {
    let app = app();
    let event: S3Event = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3-multi.json"
    )))
    .unwrap();
    let outcome = rt().block_on(app.handle_s3_event(event, "r")).unwrap_err();
    let records = outcome["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[1]["key"], "incoming/my photo été.jpg",
        "keys are URL-decoded"
    );
    assert_eq!(records[2]["outcome"], "skipped");
    assert_eq!(records[0]["outcome"], "failed");
    assert_eq!(outcome["failed"], 2);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Objects in memory, keyed by (bucket, key): the S3 trigger without an S3 server.
#[derive(Default)]
struct MemoryStore(Mutex<HashMap<(String, String), Vec<u8>>>);

impl MemoryStore {
    fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let objects = self.0.lock().unwrap();
        objects.get(&(bucket.to_string(), key.to_string())).cloned()
    }
}

impl ObjectStore for MemoryStore {
    fn fetch<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        _version: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<u8>> {
        let found = self.get(bucket, key).ok_or_else(|| {
            S3Error::new(404, format!("s3://{bucket}/{key}: no such object"), false)
        });
        Box::pin(async move { found })
    }

    fn put_json<'a>(&'a self, bucket: &'a str, key: &'a str, body: Vec<u8>) -> StoreFuture<'a, ()> {
        let mut objects = self.0.lock().unwrap();
        objects.insert((bucket.to_string(), key.to_string()), body);
        Box::pin(async { Ok(()) })
    }
}

#[test]
fn s3_trigger_reads_and_writes_through_the_object_store() {
    let store = Arc::new(MemoryStore::default());
    let bucket = "lambda-detect-local";
    store.0.lock().unwrap().insert(
        (bucket.into(), "incoming/my photo été.jpg".into()),
        image("chelsea.jpg"),
    );
    let app = app_with(Some(store.clone()));
    let event: S3Event = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3-multi.json"
    )))
    .unwrap();
    // incoming/coffee.jpg is not in the store: that record fails, the others do not.
    let outcome = rt().block_on(app.handle_s3_event(event, "r")).unwrap_err();
    let records = outcome["records"].as_array().unwrap();
    assert_eq!(records[0]["outcome"], "failed");
    assert!(records[0]["reason"]
        .as_str()
        .unwrap()
        .contains("no such object"));
    assert_eq!(records[1]["outcome"], "written");
    assert_eq!(records[2]["outcome"], "skipped");
    let written = store
        .get(bucket, "detections/incoming/my photo été.jpg.json")
        .expect("the result object");
    let result: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(result["source"]["key"], "incoming/my photo été.jpg");
    let labels: Vec<&str> = result["detections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["label"].as_str())
        .collect();
    assert!(labels.contains(&"cat"), "{result}");
}
