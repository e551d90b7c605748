//! The `detect` binary end to end: output formats, options, per-image errors, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images")
}

fn detect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(args)
        .output()
        .expect("run detect")
}

fn json(out: &Output) -> Vec<Value> {
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn json_output_has_the_schema() {
    let cat = images().join("chelsea.jpg");
    let out = detect(&["files", "--format", "json", cat.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = json(&out);
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r["status"], 200);
    assert!(r["error"].is_null());
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(451), Some(300))
    );
    let d = &r["detections"][0];
    assert_eq!(d["label"], "cat");
    assert_eq!(d["class_id"], 16);
    assert!(d["score"].as_f64().unwrap() > 0.8);
    for k in ["xmin", "ymin", "xmax", "ymax"] {
        let v = d["box"][k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    assert!(d["box_px"]["width"].as_u64().unwrap() > 300);
    for k in ["decode", "preprocess", "inference", "postprocess", "total"] {
        assert!(r["timings_ms"][k].as_f64().unwrap() >= 0.0, "{k}");
    }
    assert!(r["timings_ms"]["inference"].as_f64().unwrap() > 0.0);
}

#[test]
fn class_filters_by_label_and_id() {
    let coffee = images().join("coffee_cmyk.jpg");
    let coffee = coffee.to_str().unwrap();
    let labels = |args: &[&str]| -> Vec<String> {
        let out = detect(&[&["files", "--format", "json", coffee][..], args].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)[0]["detections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["label"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(labels(&[]), ["cup", "dining table"]);
    assert_eq!(labels(&["--exclude-classes", "cup"]), ["dining table"]);
    assert_eq!(labels(&["--classes", "46"]), ["cup"]);
    assert_eq!(labels(&["--max-results", "1"]), ["cup"]);
    assert_eq!(labels(&["--min-score", "0.95"]), Vec::<String>::new());
}

#[test]
fn bad_files_are_reported_and_the_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(images().join("coffee.jpg"), dir.path().join("a.jpg")).unwrap();
    std::fs::write(dir.path().join("b.jpg"), b"definitely not a jpeg").unwrap();
    std::fs::write(dir.path().join("c.png"), b"").unwrap();
    std::fs::write(
        dir.path().join("notes.txt"),
        b"ignored: not an image extension",
    )
    .unwrap();
    let out = detect(&["files", "--format", "json", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "some images worked, so exit 0");
    let results = json(&out);
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 415, 400]);
    assert!(results[1]["error"]
        .as_str()
        .unwrap()
        .contains("unsupported image format"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 of 3 images could not be processed"));

    // Nothing usable: non-zero exit, results still printed.
    let only_bad = detect(&[
        "files",
        "--format",
        "json",
        dir.path().join("b.jpg").to_str().unwrap(),
    ]);
    assert_eq!(only_bad.status.code(), Some(1));
    assert_eq!(json(&only_bad)[0]["status"], 415);
}

#[test]
fn wrong_arguments_exit_2_with_a_message() {
    let out = detect(&["files", "no/such/file.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let cat = images().join("chelsea.jpg");
    let out = detect(&["files", "--classes", "unicorn", cat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown class"));
    let out = detect(&["files", "--min-score", "1.5", cat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("min_score"));
}

#[test]
fn table_output_and_annotated_copies() {
    let dir = tempfile::tempdir().unwrap();
    let cat = images().join("chelsea_exif_orientation6.jpg");
    let out = detect(&[
        "files",
        "--annotate",
        dir.path().to_str().unwrap(),
        cat.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().unwrap().contains("label"));
    assert!(table.contains("cat"), "{table}");
    let annotated =
        image::open(dir.path().join("chelsea_exif_orientation6.annotated.jpg")).unwrap();
    // Drawn on the upright image, not on the stored (rotated) pixels.
    assert_eq!((annotated.width(), annotated.height()), (451, 300));
}
