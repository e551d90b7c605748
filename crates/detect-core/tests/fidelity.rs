//! Fidelity against the outside oracle: LiteRT running the original int8 model
//! (scripts/litert_reference.py wrote tests/fixtures/reference.json).
//!
//! For every image: each reference detection with score ≥ 0.5 is found with the same class,
//! IoU ≥ 0.85 and |Δscore| ≤ 0.1; no detection of ours ≥ 0.6 lacks a reference counterpart.

use std::path::Path;

use detect_core::detector::DetectOptions;
use detect_core::inference::{Isa, KernelSet};
use detect_core::postprocess::{iou, BoxN};
use detect_core::{Detector, DetectorConfig, ModelSource};
use serde_json::Value;

const MIN_IOU: f32 = 0.85;
const MAX_SCORE_DIFF: f32 = 0.1;

fn fixture_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
}

fn ref_box(v: &Value) -> BoxN {
    let f = |k: &str| v[k].as_f64().expect("box coordinate") as f32;
    // The reference boxes are unclipped; ours are clipped to the image, so compare clipped.
    let c = |x: f32| x.clamp(0.0, 1.0);
    BoxN {
        ymin: c(f("ymin")),
        xmin: c(f("xmin")),
        ymax: c(f("ymax")),
        xmax: c(f("xmax")),
    }
}

/// The kernel sets to check: those `DETECT_TEST_ISAS` lists (comma-separated; one this CPU
/// lacks fails the test), or every set this CPU runs.
fn sets_under_test() -> Vec<Isa> {
    match std::env::var("DETECT_TEST_ISAS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|name| Isa::from_name(name.trim()).expect("a kernel set name"))
            .collect(),
        _ => Isa::available(),
    }
}

/// Every kernel set this CPU runs, forced one after the other, on both inference paths: f32
/// everywhere, and 8-bit convolutions where the set has a fast 8-bit GEMM.
#[test]
fn detections_match_litert_on_every_fixture() {
    for isa in sets_under_test() {
        let kernels = KernelSet::for_isa(isa).unwrap_or_else(|e| panic!("{e}"));
        let float = check_against_litert(isa, false);
        assert_eq!(float.0, 0, "{isa}: the f32 path runs no 8-bit convolution");
        let int8 = check_against_litert(isa, true);
        assert_eq!(
            int8.0 > 0,
            kernels.int8_convs,
            "{isa}: 8-bit convolutions run exactly where the kernel set has them"
        );
        for (mode, (_, worst_iou, worst_diff)) in [("f32", float), ("8-bit", int8)] {
            eprintln!(
                "{isa} {mode}: worst IoU {worst_iou:.3}, worst |score difference| {worst_diff:.3}"
            );
        }
    }
}

/// Compare every fixture's detections with LiteRT's; returns (8-bit convolutions in use, worst
/// IoU of a matched detection, worst score difference).
fn check_against_litert(isa: Isa, int8: bool) -> (usize, f32, f32) {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir().join("reference.json")).unwrap(),
    )
    .unwrap();
    let images = reference["images"].as_object().expect("images map");
    assert!(images.len() >= 10, "the reference covers the fixtures");
    let config = DetectorConfig {
        int8,
        isa: Some(isa),
        ..DetectorConfig::default()
    };
    let detector = Detector::load(&ModelSource::Default, &config).unwrap();
    assert_eq!(
        detector.info().kernels,
        KernelSet::for_isa(isa).unwrap().isa.name()
    );
    let (mut worst_iou, mut worst_diff) = (1.0f32, 0.0f32);
    // Look below 0.5 so a reference detection at 0.5 is matched even if ours scores 0.45.
    let options = detector
        .resolve_options(&DetectOptions {
            min_score: Some(0.3),
            ..Default::default()
        })
        .unwrap();
    let mut failures = Vec::new();
    let mut matched = 0;
    for (name, expected) in images {
        let bytes = std::fs::read(fixture_dir().join("images").join(name)).unwrap();
        let ours = detector.detect(name, &bytes, &options);
        let Ok(our_detections) = &ours.result else {
            panic!("{name}: {:?}", ours.result);
        };
        assert_eq!(
            ours.width,
            expected["width"].as_u64().map(|w| w as u32),
            "{name} width"
        );
        assert_eq!(
            ours.height,
            expected["height"].as_u64().map(|h| h as u32),
            "{name} height"
        );
        let refs = expected["detections"].as_array().unwrap();
        let our_boxes: Vec<(usize, f32, BoxN)> = our_detections
            .iter()
            .map(|d| {
                let b = d.bbox;
                (
                    d.class_id,
                    d.score,
                    BoxN {
                        ymin: b.ymin,
                        xmin: b.xmin,
                        ymax: b.ymax,
                        xmax: b.xmax,
                    },
                )
            })
            .collect();
        for r in refs.iter().filter(|r| r["score"].as_f64().unwrap() >= 0.5) {
            let class = r["class_id"].as_u64().unwrap() as usize;
            let score = r["score"].as_f64().unwrap() as f32;
            let rb = ref_box(&r["box"]);
            let best = our_boxes
                .iter()
                .filter(|(c, _, _)| *c == class)
                .map(|(_, s, b)| (iou(b, &rb), *s))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match best {
                Some((overlap, s)) if overlap >= MIN_IOU && (s - score).abs() <= MAX_SCORE_DIFF => {
                    matched += 1;
                    worst_iou = worst_iou.min(overlap);
                    worst_diff = worst_diff.max((s - score).abs());
                }
                other => failures.push(format!(
                    "{name}: reference {} {score:.3} not matched (best same-class IoU, score: {other:?})",
                    r["label"]
                )),
            }
        }
        for (class, score, b) in our_boxes.iter().filter(|(_, s, _)| *s >= 0.6) {
            let counterpart = refs.iter().any(|r| {
                r["class_id"].as_u64() == Some(*class as u64) && iou(b, &ref_box(&r["box"])) >= 0.5
            });
            if !counterpart {
                failures.push(format!(
                    "{name}: class {class} at {score:.3} has no reference counterpart"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "fidelity failures ({isa}, {}):\n{}",
        if int8 { "8-bit convolutions" } else { "f32" },
        failures.join("\n")
    );
    assert!(
        matched >= 12,
        "only {matched} reference detections were checked"
    );
    (detector.info().int8_convolutions, worst_iou, worst_diff)
}

/// A large photo takes the shortcuts for large images (a PNG: block average, then bilinear; a
/// JPEG: decoded at 1/8 scale in the DCT domain, then bilinear): its detections must match those
/// of the same photo at its original size.
#[test]
fn large_photos_detect_like_their_originals() {
    let detector = Detector::load(&ModelSource::Default, &DetectorConfig::default()).unwrap();
    let options = detector.resolve_options(&DetectOptions::default()).unwrap();
    for name in ["coffee.jpg", "chelsea.jpg"] {
        let bytes = std::fs::read(fixture_dir().join("images").join(name)).unwrap();
        let original = detector.detect(name, &bytes, &options);
        let img = image::load_from_memory(&bytes).unwrap();
        let big = img.resize_exact(
            img.width() * 7,
            img.height() * 7,
            image::imageops::FilterType::Triangle,
        );
        let png = {
            let mut encoded = std::io::Cursor::new(Vec::new());
            big.write_to(&mut encoded, image::ImageFormat::Png).unwrap();
            encoded.into_inner()
        };
        let jpeg = {
            let mut encoded = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 92)
                .encode_image(&big)
                .unwrap();
            encoded
        };
        for (format, bytes) in [("PNG", png), ("JPEG", jpeg)] {
            let large = detector.detect(name, &bytes, &options);
            assert_eq!(large.width, Some(img.width() * 7), "{name} {format}");
            assert_eq!(large.height, Some(img.height() * 7), "{name} {format}");
            let top = |r: &detect_core::ImageOutcome| {
                let found = r.result.as_ref().expect("detections");
                found.first().cloned().expect("a detection")
            };
            let (a, b) = (top(&original), top(&large));
            assert_eq!(a.class_id, b.class_id, "{name} {format}");
            assert!(
                (a.score - b.score).abs() <= 0.05,
                "{name} {format}: {} vs {}",
                a.score,
                b.score
            );
            let bx = |d: &detect_core::schema::Detection| BoxN {
                ymin: d.bbox.ymin,
                xmin: d.bbox.xmin,
                ymax: d.bbox.ymax,
                xmax: d.bbox.xmax,
            };
            assert!(iou(&bx(&a), &bx(&b)) >= 0.9, "{name} {format}");
        }
    }
}
