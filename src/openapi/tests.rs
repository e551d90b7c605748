//! The document against the code: routes, query options, option fields and error types
//! compared both ways, and real responses of every documented status validated against the
//! document's schemas (and every status a case produces must be documented).

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::{general_purpose::STANDARD, Engine as _};
use serde_json::{json, Value};

use super::document;
use crate::errors::image_status;
use crate::handler::HttpReply;
use crate::rekognition::tests::{bytes_request, call, image, test_app};
use crate::rekognition::{ErrorKind, DETECT_LABELS_TARGET};
use crate::request::{Route, QUERY_OPTIONS};
use detect_core::error::{DetectError, ImageError, PostprocessError};
use detect_core::DetectOptions;

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follows one `$ref` inside the document.
fn resolve(value: &Value) -> &Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => document()
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {pointer}")),
        None => value,
    }
}

fn schema(name: &str) -> &'static Value {
    &document()["components"]["schemas"][name]
}

/// Validates `instance` against `schema`, resolving `$ref`s inside the document.
fn check(schema: &Value, instance: &Value, what: &str) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\nbody: {instance}");
}

/// The documented response of an operation for a status: (schema, media type).
fn response_schema(path: &str, method: &str, status: u16) -> Option<(&'static Value, String)> {
    let response = document()["paths"][path][method]["responses"].get(status.to_string())?;
    let content = resolve(response)["content"].as_object()?;
    let (media, body) = content.iter().next()?;
    Some((&body["schema"], media.clone()))
}

#[test]
fn document_is_openapi_3_1() {
    assert!(document()["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(document()["paths"].is_object());
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let mut documented: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in document()["paths"].as_object().unwrap() {
        for method in keys(item) {
            documented.insert((path.clone(), method));
        }
    }
    let mut routed: BTreeSet<(String, String)> = Route::ALL
        .iter()
        .map(|r| (r.path().to_string(), r.method().to_ascii_lowercase()))
        .collect();
    routed.insert(("/".into(), "post".into()));
    assert_eq!(documented, routed);
    let params = &document()["paths"]["/"]["post"]["parameters"][0];
    assert_eq!(params["name"], "X-Amz-Target");
    assert_eq!(params["schema"]["enum"], json!([DETECT_LABELS_TARGET]));
}

#[test]
fn query_options_and_option_fields_match_the_code() {
    let documented: BTreeSet<String> = document()["paths"]["/api/detect"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected: BTreeSet<String> = QUERY_OPTIONS.iter().map(|s| s.to_string()).collect();
    expected.extend(["id".to_string(), "image".to_string()]);
    assert_eq!(documented, expected);
    let fields = keys(&serde_json::to_value(DetectOptions::default()).unwrap());
    assert_eq!(keys(&schema("Options")["properties"]), fields);
}

#[test]
fn error_types_match_the_code() {
    let documented: BTreeSet<String> = schema("AwsError")["properties"]["__type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let code: BTreeSet<String> = ErrorKind::ALL
        .iter()
        .map(|k| k.type_name().to_string())
        .collect();
    assert_eq!(documented, code);
    // Each status an error kind has is a documented response of the route.
    for kind in ErrorKind::ALL {
        assert!(
            response_schema("/", "post", kind.status()).is_some(),
            "{kind:?}"
        );
    }
    // Per-image statuses of every core error kind are in the result schema.
    let statuses = schema("ImageResult")["properties"]["status"]["enum"].clone();
    let errors = [
        DetectError::Image(ImageError::Empty),
        DetectError::Image(ImageError::UnsupportedFormat),
        DetectError::Image(ImageError::TooLarge),
        DetectError::Image(ImageError::Corrupt("x".into())),
        DetectError::Options(PostprocessError::InvalidValue {
            name: "x",
            value: "y".into(),
            allowed: "z",
        }),
        DetectError::Inference("x".into()),
        DetectError::Internal,
    ];
    for e in errors {
        let status = json!(image_status(&e));
        assert!(statuses.as_array().unwrap().contains(&status), "{status}");
    }
}

#[test]
fn the_rekognition_request_schema_lists_what_the_parser_accepts() {
    // Every documented field, in two requests (Bytes and S3Object exclude each other).
    let filters = json!(["Cat"]);
    let settings = json!({
        "GeneralLabels": {
            "LabelInclusionFilters": filters, "LabelExclusionFilters": filters,
            "LabelCategoryInclusionFilters": filters, "LabelCategoryExclusionFilters": filters
        },
        "ImageProperties": {"MaxDominantColors": 3}
    });
    let full = |image: Value| json!({"Image": image, "MaxLabels": 5, "MinConfidence": 60, "Features": ["GENERAL_LABELS"], "Settings": settings});
    let requests = [
        full(json!({"Bytes": "aGk="})),
        full(json!({"S3Object": {"Bucket": "abc", "Name": "k", "Version": "1"}})),
    ];
    let mut used = BTreeSet::new();
    for request in &requests {
        check(schema("DetectLabelsRequest"), request, "request");
        crate::rekognition::request::parse(request.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{request}: {e:?}"));
        object_paths(request, "", &mut used);
    }
    let mut documented = BTreeSet::new();
    schema_paths(schema("DetectLabelsRequest"), "", &mut documented);
    assert_eq!(used, documented);
}

fn object_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(fields) = value {
        for (k, v) in fields {
            let path = format!("{prefix}/{k}");
            object_paths(v, &path, out);
            out.insert(path);
        }
    }
}

fn schema_paths(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let schema = resolve(schema);
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            let path = format!("{prefix}/{k}");
            schema_paths(v, &path, out);
            out.insert(path);
        }
    }
}

/// One request to the native router.
struct Case {
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    query: Vec<(String, String)>,
}

fn native(
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
) -> Case {
    Case {
        method,
        path,
        content_type,
        body,
        query: Vec::new(),
    }
}

fn multipart(name: &str) -> (Vec<u8>, &'static str) {
    let mut body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend(image(name));
    body.extend(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{\"min_score\": 0.3}\r\n--XyZ--\r\n");
    (body, "multipart/form-data; boundary=XyZ")
}

#[test]
fn real_responses_of_every_documented_status_validate() {
    let app = test_app();
    let cat = STANDARD.encode(image("chelsea.jpg"));
    let (form, form_type) = multipart("coffee.jpg");
    let json_body = |v: Value| v.to_string().into_bytes();
    let many: serde_json::Map<String, Value> = (0..21)
        .map(|i| (format!("{i}.jpg"), json!("aGk=")))
        .collect();
    let mut raw = native(
        "POST",
        "/api/detect",
        Some("image/jpeg"),
        image("chelsea.jpg"),
    );
    raw.query = vec![
        ("min_score".into(), "0.3".into()),
        ("id".into(), "cat".into()),
    ];
    let cases = vec![
        raw,
        native(
            "POST",
            "/api/detect",
            Some("application/octet-stream"),
            image("coffee.jpg"),
        ),
        native(
            "POST",
            "/api/detect",
            Some("application/json"),
            json_body(json!({"images": [
            {"id": "cat", "data": cat},
            {"id": "denied", "s3": {"bucket": "other", "key": "incoming/a.jpg"}},
            {"s3": {"bucket": "allowed", "key": "incoming/a.jpg"}},
            {"id": "bad", "data": STANDARD.encode(b"not an image")}
        ], "options": {"min_score": 0.4, "classes": ["cat", 17]}})),
        ),
        native(
            "POST",
            "/api/detect",
            Some("application/json"),
            json_body(json!({"chelsea.jpg": cat})),
        ),
        native("POST", "/api/detect", Some(form_type), form),
        native(
            "POST",
            "/api/detect",
            Some("application/json"),
            b"{not json".to_vec(),
        ),
        native(
            "POST",
            "/api/detect",
            Some("application/json"),
            json_body(Value::Object(many)),
        ),
        native("POST", "/api/detect", Some("text/plain"), b"hello".to_vec()),
        native(
            "POST",
            "/api/detect",
            Some("application/json"),
            json_body(json!({"images": []})),
        ),
        native(
            "POST",
            "/api/detect",
            Some("image/png"),
            b"not a png".to_vec(),
        ),
        native("GET", "/api/health", None, Vec::new()),
        native("GET", "/api/openapi.json", None, Vec::new()),
        native("GET", "/nowhere", None, Vec::new()),
        native(
            "POST",
            "/",
            Some("application/x-amz-json-1.1"),
            b"{}".to_vec(),
        ),
        native("GET", "/api/detect", None, Vec::new()),
        native("POST", "/api/health", None, Vec::new()),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut produced: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    for case in cases {
        let HttpReply { status, body } = rt.block_on(app.handle_http(
            case.method,
            case.path,
            case.content_type,
            &case.body,
            &case.query,
            "req",
        ));
        let what = format!("{} {} -> {status}", case.method, case.path);
        let method = case.method.to_ascii_lowercase();
        let schema = match response_schema(case.path, &method, status) {
            Some((schema, media)) => {
                assert_eq!(media, "application/json", "{what}");
                schema
            }
            // Router errors for undocumented (path, method) pairs are shared responses.
            None => {
                let name = match status {
                    404 => "NotFound",
                    405 => "MethodNotAllowed",
                    _ => panic!("{what}: status not documented\n{body}"),
                };
                &document()["components"]["responses"][name]["content"]["application/json"]
                    ["schema"]
            }
        };
        check(schema, &body, &what);
        produced
            .entry((case.path.to_string(), method))
            .or_default()
            .insert(status);
    }

    let rekognition = [
        (
            DETECT_LABELS_TARGET,
            bytes_request(
                "coffee.jpg",
                json!({"MinConfidence": 30, "Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"]}),
            ),
        ),
        (
            DETECT_LABELS_TARGET,
            json!({"Image": {"Bytes": STANDARD.encode(b"junk")}}),
        ),
        (
            DETECT_LABELS_TARGET,
            json!({"Image": {"S3Object": {"Bucket": "other", "Name": "a"}}}),
        ),
        ("RekognitionService.DetectText", json!({})),
    ];
    for (target, request) in rekognition {
        let reply = call(&app, target, &request);
        let what = format!("{target} -> {}", reply.status);
        let (schema, media) = response_schema("/", "post", reply.status)
            .unwrap_or_else(|| panic!("{what}: status not documented"));
        assert_eq!(media, crate::rekognition::CONTENT_TYPE, "{what}");
        check(schema, &reply.body, &what);
        produced
            .entry(("/".into(), "post".into()))
            .or_default()
            .insert(reply.status);
    }

    // The other way round: every documented status was produced by a case above, except
    // InternalServerError, which only a bug or a failed inference produces.
    for (path, item) in document()["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in keys(&operation["responses"]) {
                let status: u16 = status.parse().unwrap();
                if (path.as_str(), status) == ("/", 500) {
                    continue;
                }
                let got = produced.get(&(path.clone(), method.clone()));
                assert!(
                    got.is_some_and(|s| s.contains(&status)),
                    "{method} {path} {status} is documented but no case produced it: {got:?}"
                );
            }
        }
    }
    for name in ["NotFound", "MethodNotAllowed"] {
        assert!(
            document()["components"]["responses"][name].is_object(),
            "{name}"
        );
    }
}
