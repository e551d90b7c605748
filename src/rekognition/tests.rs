//! DetectLabels end to end through the real detector (no runtime, no S3 server).

use std::sync::{Arc, LazyLock};

use base64::engine::{general_purpose::STANDARD, Engine as _};
use serde_json::{json, Value};

use super::*;
use crate::handler::AppConfig;
use crate::request::RequestLimits;
use detect_core::{Detector, DetectorConfig, ModelSource};

static DETECTOR: LazyLock<Arc<Detector>> = LazyLock::new(|| {
    Arc::new(Detector::load(&ModelSource::Default, &DetectorConfig::default()).expect("model"))
});

/// An app with the real model; bucket `allowed` is allowed but no S3 client is configured.
pub(crate) fn test_app() -> App {
    let config = AppConfig {
        allowed_buckets: vec!["allowed".into()],
        input_prefix: Some("incoming/".into()),
        results_prefix: "detections/".into(),
        results_bucket: None,
        request_limits: RequestLimits::default(),
        max_object_bytes: 1024 * 1024,
        workers: 1,
    };
    App::new(DETECTOR.clone(), None, config, 1.0)
}

pub(crate) fn image(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn bytes_request(name: &str, extra: Value) -> Value {
    let mut body = json!({"Image": {"Bytes": STANDARD.encode(image(name))}});
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}

pub(crate) fn call(app: &App, target: &str, body: &Value) -> Reply {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(handle(app, target, body.to_string().as_bytes(), "req-1"))
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["Labels"]
        .as_array()
        .unwrap_or_else(|| panic!("no Labels: {}", reply.body))
        .iter()
        .map(|l| l["Name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn finds_the_cat_with_a_box_and_percent_confidence() {
    let reply = call(
        &test_app(),
        DETECT_LABELS_TARGET,
        &bytes_request("chelsea.jpg", json!({})),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(names(&reply), ["Cat"]);
    let cat = &reply.body["Labels"][0];
    let confidence = cat["Confidence"].as_f64().unwrap();
    assert!(confidence > 55.0 && confidence <= 100.0, "{confidence}");
    let bbox = &cat["Instances"][0]["BoundingBox"];
    for key in ["Width", "Height", "Left", "Top"] {
        let v = bbox[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert_eq!(
        reply.body["LabelModelVersion"],
        "mobilenet_ssd_v2_coco_quant_postprocess"
    );
    assert!(reply.body.get("ImageProperties").is_none());
    assert_eq!(reply.request_id, "req-1");
}

#[test]
fn min_confidence_max_labels_and_filters_change_the_answer() {
    let app = test_app();
    let low = call(
        &app,
        DETECT_LABELS_TARGET,
        &bytes_request("coffee.jpg", json!({"MinConfidence": 30})),
    );
    let low_names = names(&low);
    assert!(low_names.contains(&"Cup".to_string()), "{low_names:?}");
    assert!(low_names.len() >= 2, "{low_names:?}");
    let high = call(
        &app,
        DETECT_LABELS_TARGET,
        &bytes_request("coffee.jpg", json!({"MinConfidence": 99.9})),
    );
    assert!(names(&high).len() < low_names.len(), "{:?}", names(&high));
    let one = call(
        &app,
        DETECT_LABELS_TARGET,
        &bytes_request("coffee.jpg", json!({"MinConfidence": 30, "MaxLabels": 1})),
    );
    assert_eq!(names(&one), low_names[..1]);
    let only = call(
        &app,
        DETECT_LABELS_TARGET,
        &bytes_request(
            "coffee.jpg",
            json!({"MinConfidence": 30, "Settings": {"GeneralLabels": {"LabelInclusionFilters": ["Dining Table"]}}}),
        ),
    );
    assert_eq!(names(&only), ["Dining Table"]);
    let without = call(
        &app,
        DETECT_LABELS_TARGET,
        &bytes_request(
            "coffee.jpg",
            json!({"MinConfidence": 30, "Settings": {"GeneralLabels": {"LabelExclusionFilters": ["Cup"]}}}),
        ),
    );
    assert!(!names(&without).contains(&"Cup".to_string()));
}

#[test]
fn image_properties_only_when_asked() {
    let reply = call(
        &test_app(),
        DETECT_LABELS_TARGET,
        &bytes_request(
            "chelsea.jpg",
            json!({"Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"]}),
        ),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["ImageProperties"], json!({}));
    assert_eq!(names(&reply), ["Cat"]);
}

#[test]
fn errors_have_the_rekognition_types() {
    let app = test_app();
    let type_of = |target: &str, body: Value| {
        let reply = call(&app, target, &body);
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.body["Message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        reply.error_type().unwrap().to_string()
    };
    let corrupt = json!({"Image": {"Bytes": STANDARD.encode(b"this is not an image")}});
    assert_eq!(
        type_of(DETECT_LABELS_TARGET, corrupt),
        "InvalidImageFormatException"
    );
    let broken_png = json!({"Image": {"Bytes": STANDARD.encode(b"\x89PNG\r\n\x1a\n garbage")}});
    assert_eq!(
        type_of(DETECT_LABELS_TARGET, broken_png),
        "InvalidImageFormatException"
    );
    assert_eq!(
        type_of(DETECT_LABELS_TARGET, json!({"Image": {}})),
        "InvalidParameterException"
    );
    let denied = json!({"Image": {"S3Object": {"Bucket": "other", "Name": "incoming/a.jpg"}}});
    assert_eq!(
        type_of(DETECT_LABELS_TARGET, denied),
        "AccessDeniedException"
    );
    let outside = json!({"Image": {"S3Object": {"Bucket": "allowed", "Name": "private/a.jpg"}}});
    assert_eq!(
        type_of(DETECT_LABELS_TARGET, outside),
        "AccessDeniedException"
    );
    let no_s3 = json!({"Image": {"S3Object": {"Bucket": "allowed", "Name": "incoming/a.jpg"}}});
    assert_eq!(
        type_of(DETECT_LABELS_TARGET, no_s3),
        "InvalidS3ObjectException"
    );
    let big = json!({"Image": {"Bytes": STANDARD.encode(vec![0u8; request::MAX_IMAGE_BYTES + 1])}});
    assert_eq!(type_of(DETECT_LABELS_TARGET, big), "ImageTooLargeException");
    assert_eq!(
        type_of("RekognitionService.DetectFaces", json!({})),
        "UnknownOperationException"
    );
}

#[test]
fn only_posts_with_a_target_off_the_native_routes_come_here() {
    let mut headers = HeaderMap::new();
    assert_eq!(target("POST", &headers, "/"), None);
    headers.insert("x-amz-target", DETECT_LABELS_TARGET.parse().unwrap());
    assert_eq!(target("POST", &headers, "/"), Some(DETECT_LABELS_TARGET));
    assert_eq!(
        target("post", &headers, "/prod/"),
        Some(DETECT_LABELS_TARGET)
    );
    assert_eq!(target("GET", &headers, "/"), None);
    assert_eq!(target("POST", &headers, "/api/detect"), None);
}

#[test]
fn error_replies_carry_the_protocol_headers() {
    let reply = call(&test_app(), DETECT_LABELS_TARGET, &json!({"Image": {}}));
    let response = reply.into_response();
    assert_eq!(response.status(), 400);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
    assert_eq!(header("content-type"), CONTENT_TYPE);
    assert_eq!(header("x-amzn-errortype"), "InvalidParameterException");
    assert_eq!(header("x-amzn-requestid"), "req-1");
}
