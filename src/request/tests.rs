//! Tests of the entry point, [`parse_detect_request`], for every body form.

use base64::Engine as _;

use super::*;
use detect_core::detector::ClassRef;

const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-jpeg";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRfake-png";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(ct: Option<&str>, body: &[u8]) -> Result<DetectRequest, ApiError> {
    parse_detect_request(ct, body, &[], &RequestLimits::default())
}

fn parse_json(json: &str) -> Result<DetectRequest, ApiError> {
    parse(Some("application/json"), json.as_bytes())
}

#[track_caller]
fn assert_err(result: Result<DetectRequest, ApiError>, status: u16, needle: &str) {
    match result {
        Ok(req) => panic!("expected HTTP {status} containing {needle:?}, got {req:?}"),
        Err(e) => {
            assert_eq!(e.status, status, "{e}");
            assert!(
                e.message.contains(needle),
                "message {:?} lacks {needle:?}",
                e.message
            );
        }
    }
}

fn bytes(img: &ImageInput) -> &[u8] {
    match &img.source {
        ImageSource::Bytes(b) => b,
        other => panic!("expected bytes, got {other:?}"),
    }
}

// --- JSON ---------------------------------------------------------------------------

#[test]
fn json_base64_standard_with_options() {
    let body = format!(
        r#"{{"images": [{{"id": "cat.jpg", "data": "{}"}}], "options": {{"min_score": 0.4, "classes": ["person", 17], "regular_nms": true}}}}"#,
        b64(JPEG)
    );
    let req = parse(Some("Application/JSON; charset=UTF-8"), body.as_bytes()).unwrap();
    assert_eq!(req.images.len(), 1);
    assert_eq!(req.images[0].id, "cat.jpg");
    assert_eq!(bytes(&req.images[0]), JPEG);
    assert_eq!(req.options.min_score, Some(0.4));
    assert_eq!(
        req.options.classes,
        Some(vec![ClassRef::Name("person".into()), ClassRef::Id(17)])
    );
    assert_eq!(req.options.regular_nms, Some(true));
}

#[test]
fn json_base64_url_safe_unpadded() {
    let data: &[u8] = &[0xfb, 0xff, 0xbf, 0x00, 0x3e];
    let std = b64(data);
    assert!(std.contains('+') && std.contains('/') && std.ends_with('='));
    let url = std.replace('+', "-").replace('/', "_").replace('=', "");
    let req = parse_json(&format!(r#"{{"images": [{{"data": "{url}"}}]}}"#)).unwrap();
    assert_eq!(bytes(&req.images[0]), data);
    assert_eq!(req.images[0].id, "image-0");
}

#[test]
fn json_base64_data_url_and_whitespace() {
    let encoded = b64(PNG);
    let (a, b) = encoded.split_at(8);
    let body = format!(
        r#"{{"images": [{{"id": "u", "data": "data:image/png;base64,{encoded}"}},
                        {{"id": "w", "data": " {a}\r\n\t{b} \n"}},
                        {{"id": "e", "data": ""}}]}}"#
    );
    let req = parse_json(&body).unwrap();
    assert_eq!(bytes(&req.images[0]), PNG);
    assert_eq!(bytes(&req.images[1]), PNG);
    // Empty data is not a request error: that image fails on its own later.
    assert_eq!(req.images[2].source, ImageSource::Bytes(vec![]));
}

#[test]
fn json_bad_base64_names_the_image() {
    assert_err(
        parse_json(
            r#"{"images": [{"id": "ok", "data": "QUJD"}, {"id": "bad.jpg", "data": "AB!D"}]}"#,
        ),
        400,
        "image `bad.jpg` (images[1]): invalid base64",
    );
    assert_err(
        parse_json(r#"{"images": [{"id": "t", "data": "data:text/plain,hello"}]}"#),
        400,
        "image `t` (images[0]): invalid base64: data URL is not base64",
    );
    assert_err(
        parse_json(r#"{"images": [{"id": "t", "data": "A"}]}"#),
        400,
        "invalid base64",
    );
}

#[test]
fn json_s3_refs() {
    let body = r#"{"images": [
        {"data": "QUJD"},
        {"s3": {"bucket": "photos", "key": "2024/a b.jpg", "version": "v1"}},
        {"id": "x", "s3": {"bucket": "photos", "key": "k", "version": null}}
    ]}"#;
    let req = parse_json(body).unwrap();
    assert_eq!(req.images[0].source, ImageSource::Bytes(b"ABC".to_vec()));
    assert_eq!(req.images[1].id, "image-1");
    assert_eq!(
        req.images[1].source,
        ImageSource::S3(S3Ref {
            bucket: "photos".into(),
            key: "2024/a b.jpg".into(),
            version: Some("v1".into())
        })
    );
    assert_eq!(req.images[2].id, "x");
    assert!(matches!(&req.images[2].source, ImageSource::S3(s) if s.version.is_none()));
}

#[test]
fn json_s3_ref_errors() {
    assert_err(
        parse_json(r#"{"images": [{"s3": {"bucket": "", "key": "k"}}]}"#),
        400,
        "images[0].s3.bucket must be a non-empty string",
    );
    assert_err(
        parse_json(r#"{"images": [{"s3": {"bucket": "b"}}]}"#),
        400,
        "images[0].s3.key must be a non-empty string",
    );
    let long = "k".repeat(1025);
    assert_err(
        parse_json(&format!(
            r#"{{"images": [{{"s3": {{"bucket": "b", "key": "{long}"}}}}]}}"#
        )),
        400,
        "at most 1024 bytes",
    );
    assert_err(
        parse_json(r#"{"images": [{"s3": {"bucket": "b", "key": 5}}]}"#),
        400,
        "images[0].s3.key must be a string",
    );
    assert_err(
        parse_json(r#"{"images": [{"s3": {"bucket": "b", "key": "k", "region": "x"}}]}"#),
        400,
        "unknown field `region`",
    );
    assert_err(
        parse_json(r#"{"images": [{"s3": "s3://b/k"}]}"#),
        400,
        "images[0].s3 must be an object",
    );
}

#[test]
fn json_image_needs_exactly_one_source() {
    assert_err(
        parse_json(
            r#"{"images": [{"data": "QUJD"}, {"id": "both", "data": "QUJD", "s3": {"bucket": "b", "key": "k"}}]}"#,
        ),
        400,
        "images[1]: give exactly one of `data`",
    );
    assert_err(
        parse_json(r#"{"images": [{"id": "neither"}]}"#),
        400,
        "images[0]: give exactly one of",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD", "name": "x"}]}"#),
        400,
        "images[0]: unknown field `name`",
    );
    assert_err(
        parse_json(r#"{"images": ["QUJD"]}"#),
        400,
        "images[0] must be an object",
    );
    assert_err(
        parse_json(r#"{"images": [{"id": 7, "data": "QUJD"}]}"#),
        400,
        "images[0].id must be a string",
    );
}

#[test]
fn json_legacy_form_keeps_order_and_takes_query_options() {
    let body = format!(
        r#"{{"z.jpg": "{}", "a.png": "data:image/png;base64,{}"}}"#,
        b64(JPEG),
        b64(PNG)
    );
    let query = q(&[("min_score", "0.7")]);
    let req = parse_detect_request(
        Some("application/json"),
        body.as_bytes(),
        &query,
        &RequestLimits::default(),
    )
    .unwrap();
    let ids: Vec<&str> = req.images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["z.jpg", "a.png"]);
    assert_eq!(bytes(&req.images[0]), JPEG);
    assert_eq!(bytes(&req.images[1]), PNG);
    assert_eq!(req.options.min_score, Some(0.7));

    assert_err(
        parse_json(r#"{"a.jpg": "@@@"}"#),
        400,
        "image `a.jpg`: invalid base64",
    );
    assert_err(
        parse_json(r#"{"a.jpg": "QUJD", "b.jpg": 3}"#),
        400,
        "field `b.jpg` is number 3",
    );
}

#[test]
fn json_zero_images_is_422() {
    assert_err(
        parse_json(r#"{"images": []}"#),
        422,
        "no images in the request",
    );
    assert_err(parse_json("{}"), 422, "no images in the request");
    assert_err(
        parse_json(r#"{"images": [], "options": {"min_score": 0.5}}"#),
        422,
        "no images",
    );
}

#[test]
fn json_body_options_win_over_query_per_field() {
    let query = q(&[
        ("min_score", "0.1"),
        ("max_results", "5"),
        ("id", "ignored"),
    ]);
    let req = parse_detect_request(
        Some("application/json"),
        br#"{"images": [{"data": "QUJD"}], "options": {"min_score": 0.9}}"#,
        &query,
        &RequestLimits::default(),
    )
    .unwrap();
    assert_eq!(req.options.min_score, Some(0.9));
    assert_eq!(req.options.max_results, Some(5));
    assert_eq!(req.images[0].id, "image-0");
}

#[test]
fn json_option_errors_name_the_field() {
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"min_scor": 0.5}}"#),
        400,
        "unknown field `min_scor`, expected one of",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"min_score": "high"}}"#),
        400,
        "options.min_score: invalid type: string \"high\"",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"max_results": -1}}"#),
        400,
        "options.max_results",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"max_results": 1e30}}"#),
        400,
        "options.max_results",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"classes": ["cat", 1.5]}}"#),
        400,
        "options.classes[1]: expected a class label (string) or a class id",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"regular_nms": "yes"}}"#),
        400,
        "options.regular_nms",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": [1]}"#),
        400,
        "options must be a JSON object",
    );
}

#[test]
fn json_shape_errors() {
    assert_err(parse_json("[1, 2]"), 400, "expected a JSON object");
    assert_err(parse_json("42"), 400, "invalid type");
    assert_err(
        parse_json(r#"{"images": "QUJD"}"#),
        400,
        "`images` must be an array",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "extra": 1}"#),
        400,
        "unknown top-level field `extra`",
    );
    assert_err(
        parse_json(r#"{"options": {}}"#),
        400,
        "missing field `images`",
    );
    assert_err(
        parse_json(r#"{"images": [], "images": []}"#),
        400,
        "duplicate field `images`",
    );
}

#[test]
fn malformed_json_is_400() {
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}"#),
        400,
        "malformed JSON body",
    );
    assert_err(parse_json("{'a': 1}"), 400, "malformed JSON body");
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}]} trailing"#),
        400,
        "malformed JSON body",
    );
    assert_err(
        parse(Some("application/json"), b"{\"a.jpg\": \"\xff\xfe\"}"),
        400,
        "malformed JSON body",
    );
    assert_err(
        parse_json(r#"{"images": [{"data": "QUJD"}], "options": {"min_score": 1e400}}"#),
        400,
        "malformed JSON body",
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = |open: &str, close: &str| format!("{}{}", open.repeat(10_000), close.repeat(10_000));
    assert_err(parse_json(&deep("[", "]")), 400, "JSON");
    let inner = deep("[", "]");
    assert_err(
        parse_json(&format!(r#"{{"images": {inner}}}"#)),
        400,
        "recursion limit exceeded",
    );
    let objects = deep("{\"a\":", "}");
    assert_err(
        parse_json(&format!(
            r#"{{"images": [{{"data": "QUJD"}}], "options": {objects}}}"#
        )),
        400,
        "recursion limit exceeded",
    );
    // Also through sniffing and the multipart options part.
    assert_err(
        parse(None, deep("{\"a\":", "}").as_bytes()),
        400,
        "recursion limit",
    );
}

// --- raw bodies and query options ---------------------------------------------------

#[test]
fn raw_jpeg_with_query_options() {
    let query = q(&[
        ("id", "photo.jpg"),
        ("min_score", "0.25"),
        ("max_results", "7"),
        ("iou_threshold", "0.5"),
        ("classes", "person, 3,traffic light"),
        ("classes", "dog"),
        ("exclude_classes", "0"),
        ("regular_nms", "TRUE"),
    ]);
    let req =
        parse_detect_request(Some("image/jpeg"), JPEG, &query, &RequestLimits::default()).unwrap();
    assert_eq!(req.images.len(), 1);
    assert_eq!(req.images[0].id, "photo.jpg");
    assert_eq!(bytes(&req.images[0]), JPEG);
    let o = &req.options;
    assert_eq!(o.min_score, Some(0.25));
    assert_eq!(o.max_results, Some(7));
    assert_eq!(o.iou_threshold, Some(0.5));
    assert_eq!(
        o.classes,
        Some(vec![
            ClassRef::Name("person".into()),
            ClassRef::Id(3),
            ClassRef::Name("traffic light".into()),
            ClassRef::Name("dog".into()),
        ])
    );
    assert_eq!(o.exclude_classes, Some(vec![ClassRef::Id(0)]));
    assert_eq!(o.regular_nms, Some(true));
}

#[test]
fn octet_stream_and_other_image_types() {
    let req = parse_detect_request(
        Some("application/octet-stream"),
        PNG,
        &q(&[("image", "scan.png"), ("regular_nms", "0")]),
        &RequestLimits::default(),
    )
    .unwrap();
    assert_eq!(req.images[0].id, "scan.png");
    assert_eq!(req.options.regular_nms, Some(false));
    for ct in [
        "image/png",
        "image/webp",
        "IMAGE/GIF",
        "image/bmp",
        "image/tiff; x=y",
    ] {
        let req = parse(Some(ct), PNG).unwrap();
        assert_eq!(req.images[0].id, "image-0", "{ct}");
        assert_eq!(bytes(&req.images[0]), PNG);
    }
}

#[test]
fn query_option_errors() {
    let parse_q = |pairs: &[(&str, &str)]| {
        parse_detect_request(
            Some("image/jpeg"),
            JPEG,
            &q(pairs),
            &RequestLimits::default(),
        )
    };
    let e = parse_q(&[("min_scor", "0.5")]).unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("unknown query parameter `min_scor`"));
    assert!(e
        .message
        .contains("min_score, max_results, iou_threshold, classes"));
    assert_err(
        parse_q(&[("min_score", "high")]),
        400,
        "`min_score`: `high` is not a number",
    );
    assert_err(parse_q(&[("min_score", "NaN")]), 400, "`min_score`");
    assert_err(parse_q(&[("max_results", "-3")]), 400, "`max_results`");
    assert_err(parse_q(&[("iou_threshold", "")]), 400, "`iou_threshold`");
    assert_err(parse_q(&[("regular_nms", "maybe")]), 400, "`regular_nms`");
    assert_err(parse_q(&[("classes", " , ")]), 400, "`classes`");
    assert_err(
        parse_q(&[("min_score", "0.1"), ("min_score", "0.2")]),
        400,
        "given more than once",
    );
    // Query options are checked for JSON bodies too.
    assert_err(
        parse_detect_request(
            Some("application/json"),
            br#"{"images": [{"data": "QUJD"}]}"#,
            &q(&[("bogus", "1")]),
            &RequestLimits::default(),
        ),
        400,
        "unknown query parameter `bogus`",
    );
}

#[test]
fn empty_body_is_400() {
    for ct in [Some("image/jpeg"), Some("application/json"), None] {
        assert_err(parse(ct, b""), 400, "empty body");
    }
    assert_err(
        parse(Some("multipart/form-data; boundary=x"), b""),
        400,
        "empty body",
    );
}

#[test]
fn sniffing_without_content_type() {
    let body = format!(" \n{{\"images\": [{{\"data\": \"{}\"}}]}}", b64(JPEG));
    let req = parse(None, body.as_bytes()).unwrap();
    assert_eq!(bytes(&req.images[0]), JPEG);
    let req = parse(Some("  "), JPEG).unwrap();
    assert_eq!(bytes(&req.images[0]), JPEG);
    let req = parse(None, PNG).unwrap();
    assert_eq!(bytes(&req.images[0]), PNG);
    assert_err(parse(None, b"{not json"), 400, "malformed JSON body");
}

#[test]
fn unsupported_content_type_is_415() {
    for ct in [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/mixed; boundary=x",
        "image",
        "garbage",
    ] {
        let e = parse(Some(ct), b"hello").unwrap_err();
        assert_eq!(e.status, 415, "{ct}");
        assert!(e.message.contains(ct), "{}", e.message);
        assert!(e.message.contains("application/json, multipart/form-data"));
    }
    assert!(parse(
        Some("application/vnd.api+json"),
        br#"{"images": [{"data": "QUJD"}]}"#
    )
    .is_ok());
}

#[test]
fn body_over_limit_is_413_before_parsing() {
    let limits = RequestLimits {
        max_body_bytes: 10,
        max_images: 20,
    };
    for ct in [
        Some("image/jpeg"),
        Some("text/plain"),
        Some("application/json"),
        None,
    ] {
        let e = parse_detect_request(ct, &[0u8; 11], &[], &limits).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(
            e.message.contains("11 bytes; the limit is 10 bytes"),
            "{}",
            e.message
        );
    }
    assert!(parse_detect_request(Some("image/jpeg"), &[1u8; 10], &[], &limits).is_ok());
}

#[test]
fn too_many_images_is_413() {
    let limits = RequestLimits {
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        max_images: 2,
    };
    let three = r#"{"images": [{"data": "QUJD"}, {"data": "!!"}, {"data": "QUJD"}]}"#;
    let e =
        parse_detect_request(Some("application/json"), three.as_bytes(), &[], &limits).unwrap_err();
    assert_eq!(e.status, 413, "counted before decoding: {e}");
    assert!(e.message.contains("at most 2"), "{}", e.message);
    let legacy = r#"{"a": "QUJD", "b": "QUJD", "c": "QUJD"}"#;
    let e = parse_detect_request(Some("application/json"), legacy.as_bytes(), &[], &limits)
        .unwrap_err();
    assert_eq!(e.status, 413);
    let two = r#"{"images": [{"data": "QUJD"}, {"data": "QUJD"}]}"#;
    assert!(parse_detect_request(Some("application/json"), two.as_bytes(), &[], &limits).is_ok());
}

// --- multipart ----------------------------------------------------------------------

fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[test]
fn multipart_two_files_and_options() {
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let mut body = b"This is a preamble.\r\n".to_vec();
    body.extend(multipart(
        boundary,
        &[
            (
                "Content-Disposition: form-data; name=\"images\"; filename=\"cat.jpg\"\r\nContent-Type: image/jpeg",
                JPEG,
            ),
            ("Content-Disposition: form-data; name=\"note\"", b"hello"),
            ("content-disposition: form-data; name=\"id\"", b"ignored"),
            (
                "Content-Disposition: form-data; name=\"options\"\r\nContent-Type: application/json",
                br#"{"min_score": 0.6, "classes": ["cat"]}"#,
            ),
            (
                "Content-Disposition: form-data; name=\"images\"; filename=\"dog.png\"\r\nContent-Type: image/png",
                PNG,
            ),
        ],
    ));
    body.extend_from_slice(b"an epilogue\r\n--not a boundary");
    let query = q(&[("min_score", "0.1"), ("max_results", "3")]);
    let ct = format!("multipart/form-data; boundary={boundary}");
    let req = parse_detect_request(Some(&ct), &body, &query, &RequestLimits::default()).unwrap();
    let ids: Vec<&str> = req.images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["cat.jpg", "dog.png"]);
    assert_eq!(bytes(&req.images[0]), JPEG);
    assert_eq!(bytes(&req.images[1]), PNG);
    assert_eq!(req.options.min_score, Some(0.6));
    assert_eq!(req.options.max_results, Some(3));
    assert_eq!(
        req.options.classes,
        Some(vec![ClassRef::Name("cat".into())])
    );
}

#[test]
fn multipart_quoted_boundary_and_escaped_filenames() {
    let boundary = "simple boundary:=(x)";
    let body = multipart(
        boundary,
        &[
            (
                r#"Content-Disposition: form-data; name="f"; filename="my \"best\" shot; 1.jpg""#,
                JPEG,
            ),
            (
                "Content-Disposition: form-data; name=\"g\"; filename=\"x.jpg\"; filename*=UTF-8''na%C3%AFve.jpg",
                PNG,
            ),
            (
                r#"Content-Disposition: form-data; name=f; filename="C:\photos\win.jpg""#,
                b"",
            ),
            ("Content-Disposition: form-data; name=\"raw\"\r\nContent-Type: application/octet-stream", b"bin"),
            ("Content-Disposition: form-data\r\nContent-Type: image/gif", b"GIF89a"),
            (
                "Content-Disposition: form-data; name=\"b64\"; filename=\"e.jpg\"\r\nContent-Transfer-Encoding: base64",
                b"QUJD\r\nREVG",
            ),
        ],
    );
    let ct = format!("multipart/form-data; charset=utf-8; boundary=\"{boundary}\"");
    let req = parse(Some(&ct), &body).unwrap();
    let ids: Vec<&str> = req.images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "my \"best\" shot; 1.jpg",
            "naïve.jpg",
            r"C:\photos\win.jpg",
            "raw",
            "image-4",
            "e.jpg"
        ]
    );
    assert_eq!(bytes(&req.images[0]), JPEG);
    assert_eq!(bytes(&req.images[2]), b"", "empty file kept as empty bytes");
    assert_eq!(bytes(&req.images[3]), b"bin");
    assert_eq!(bytes(&req.images[5]), b"ABCDEF");
}

#[test]
fn multipart_content_may_contain_boundary_lookalikes() {
    let boundary = "XyZ";
    // Only `CRLF--XyZ` ends a part (RFC 2046: content must not contain it); these do not.
    let tricky: &[u8] = b"a--XyZabc\r\n-XyZ\r\n--Xy\r\r\n--XyY-x\r--XyZ\rend";
    let body = multipart(
        boundary,
        &[(
            "Content-Disposition: form-data; name=\"a\"; filename=\"t.bin\"",
            tricky,
        )],
    );
    // Transport padding after a delimiter is allowed.
    let body = String::from_utf8(body)
        .unwrap()
        .replacen("--XyZ\r\n", "--XyZ  \t\r\n", 1);
    let req = parse(Some("multipart/form-data; boundary=XyZ"), body.as_bytes()).unwrap();
    assert_eq!(bytes(&req.images[0]), tricky);
    // A full `CRLF--XyZ` inside the content ends the part; what follows is no delimiter line.
    let inside = multipart(
        boundary,
        &[(
            "Content-Disposition: form-data; name=\"a\"; filename=\"t.bin\"",
            b"a\r\n--XyZabc",
        )],
    );
    assert_err(
        parse(Some("multipart/form-data; boundary=XyZ"), &inside),
        400,
        "a delimiter line must end in CRLF",
    );
}

#[test]
fn multipart_skips_unselected_browser_file_inputs() {
    let body = multipart(
        "b",
        &[
            ("Content-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream", b""),
            ("Content-Disposition: form-data; name=\"file2\"; filename=\"x.jpg\"", JPEG),
        ],
    );
    let req = parse(Some("multipart/form-data; boundary=b"), &body).unwrap();
    assert_eq!(req.images.len(), 1);
    assert_eq!(req.images[0].id, "x.jpg");
}

#[test]
fn multipart_without_files_is_422() {
    let body = multipart(
        "b",
        &[
            ("Content-Disposition: form-data; name=\"options\"", b"{}"),
            ("Content-Disposition: form-data; name=\"note\"", b"hi"),
        ],
    );
    assert_err(
        parse(Some("multipart/form-data; boundary=b"), &body),
        422,
        "no images",
    );
    assert_err(
        parse(Some("multipart/form-data; boundary=b"), b"--b--\r\n"),
        422,
        "no images",
    );
}

#[test]
fn multipart_too_many_images_is_413() {
    let file = (
        "Content-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"",
        JPEG,
    );
    let body = multipart("b", &[file, file, file]);
    let limits = RequestLimits {
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        max_images: 2,
    };
    let e = parse_detect_request(Some("multipart/form-data; boundary=b"), &body, &[], &limits)
        .unwrap_err();
    assert_eq!(e.status, 413);
    assert!(e.message.contains("at most 2"), "{}", e.message);
}

#[test]
fn multipart_options_errors() {
    let ct = Some("multipart/form-data; boundary=b");
    let file = (
        "Content-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"",
        JPEG,
    );
    fn opts(json: &[u8]) -> (&'static str, &[u8]) {
        ("Content-Disposition: form-data; name=\"options\"", json)
    }
    assert_err(
        parse(ct, &multipart("b", &[file, opts(br#"{"min_score": "x"}"#)])),
        400,
        "options.min_score",
    );
    assert_err(
        parse(ct, &multipart("b", &[file, opts(br#"{"nope": 1}"#)])),
        400,
        "unknown field `nope`",
    );
    assert_err(
        parse(ct, &multipart("b", &[file, opts(b"{oops")])),
        400,
        "malformed JSON in the `options` part",
    );
    assert_err(
        parse(ct, &multipart("b", &[opts(b"{}"), file, opts(b"{}")])),
        400,
        "more than one `options` part",
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_err(
        parse(ct, &multipart("b", &[file, opts(deep.as_bytes())])),
        400,
        "recursion limit",
    );
    // An empty options part means no options.
    let req = parse(ct, &multipart("b", &[file, opts(b" \r\n")])).unwrap();
    assert_eq!(req.options, DetectOptions::default());
}

#[test]
fn bad_multipart_is_400() {
    let file = (
        "Content-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"",
        JPEG,
    );
    let good = multipart("b", &[file]);
    assert_err(
        parse(Some("multipart/form-data"), &good),
        400,
        "no boundary parameter",
    );
    assert_err(
        parse(Some("multipart/form-data; boundary=\"\""), &good),
        400,
        "invalid boundary",
    );
    assert_err(
        parse(
            Some(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            &good,
        ),
        400,
        "invalid boundary",
    );
    assert_err(
        parse(Some("multipart/form-data; boundary=\"b"), &good),
        400,
        "unterminated quoted string",
    );
    let ct = Some("multipart/form-data; boundary=b");
    assert_err(
        parse(ct, b"just some text"),
        400,
        "no `--b` delimiter found",
    );
    assert_err(
        parse(ct, &good[..good.len() - 4]),
        400,
        "the body must end with `--b--`",
    );
    assert_err(
        parse(ct, &good[..good.len() - 9]),
        400,
        "part 1 is not followed by a boundary delimiter",
    );
    assert_err(
        parse(ct, b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n"),
        400,
        "incomplete at part 1",
    );
    assert_err(
        parse(ct, b"--b\r\nno colon here\r\n\r\nx\r\n--b--"),
        400,
        "malformed header line",
    );
    assert_err(
        parse(ct, b"--b\r\nContent-Type: image/jpeg\r\n\r\nx\r\n--b--"),
        400,
        "no Content-Disposition",
    );
    assert_err(
        parse(
            ct,
            b"--b\r\nContent-Disposition: form-data; name=\"f\r\n\r\nx\r\n--b--",
        ),
        400,
        "malformed Content-Disposition",
    );
    assert_err(
        parse(
            ct,
            b"--b\r\nContent-Disposition: form-data; filename=a\r\nContent-Transfer-Encoding: base64\r\n\r\n!!\r\n--b--",
        ),
        400,
        "image `a`: invalid base64 content",
    );
    let huge_header = format!("--b\r\nX-Big: {}\r\n\r\nx\r\n--b--", "a".repeat(20_000));
    assert_err(parse(ct, huge_header.as_bytes()), 400, "headers");
}

#[test]
fn garbage_never_panics() {
    // Deterministic pseudo-random bodies, and every truncation of a valid multipart body.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: &[u8] = b"{}[]\":,-b\r\n\\=; azAZ09+/_\xff\x00";
    let cts = [
        None,
        Some("application/json"),
        Some("image/jpeg"),
        Some("multipart/form-data; boundary=b"),
        Some("multipart/form-data; boundary=\"b\\\""),
    ];
    for _ in 0..3000 {
        let len = (next() % 200) as usize;
        let body: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        for ct in cts {
            let _ = parse(ct, &body);
        }
    }
    let file = (
        "Content-Disposition: form-data; name=\"f\"; filename=\"a \\\"b\\\".jpg\"; filename*=UTF-8''%FF%",
        JPEG,
    );
    let opts = (
        "Content-Disposition: form-data; name=\"options\"",
        b"{\"classes\": [1]}" as &[u8],
    );
    let good = multipart("b", &[file, opts]);
    for end in 0..=good.len() {
        let _ = parse(Some("multipart/form-data; boundary=b"), &good[..end]);
        let _ = parse(Some("multipart/form-data; boundary=b"), &good[end..]);
    }
    let json = br#"{"images": [{"id": "\u00e9", "data": "data:image/png;base64,QUJD"}, {"s3": {"bucket": "b", "key": "k"}}], "options": {"classes": ["a", 1]}}"#;
    for end in 0..=json.len() {
        let _ = parse(Some("application/json"), &json[..end]);
    }
}
