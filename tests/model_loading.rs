//! Loading and converting models: the bundled one, an override path, and broken files.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use lambda_detect::model::{convert, ModelError, EMBEDDED_MODEL};
use lambda_detect::{Detector, DetectorConfig, ModelSource};

#[test]
fn bundled_model_converts_with_relu6_restored() {
    let converted = convert(EMBEDDED_MODEL).unwrap();
    // 99 ops minus the CUSTOM postprocess; 43 convs carry their ReLU only as an output range.
    assert_eq!(converted.stats.operators, 98);
    assert_eq!(
        converted.stats.relu6_restored + converted.stats.relu_restored,
        43
    );
    assert_eq!(converted.anchors.len(), 1917);
    assert_eq!(converted.score_columns, 91);
    assert_eq!((converted.input.width, converted.input.height), (300, 300));
    assert!((converted.input.quantization.scale - 1.0 / 128.0).abs() < 1e-6);
    assert_eq!(converted.input.quantization.zero_point, 128.0);
    assert_eq!(converted.params.max_detections, 20);
    assert!(!converted.params.use_regular_nms);
    // Anchors are normalized centres and sizes.
    assert!(converted
        .anchors
        .iter()
        .all(|a| a.h > 0.0 && a.w > 0.0 && (0.0..=1.0).contains(&a.yc)));
}

#[test]
fn loads_from_an_override_path() {
    let models = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
    let source = ModelSource::Files {
        model: models.join("mobilenet_ssd_v2_coco_quant_postprocess.tflite"),
        labels: models.join("coco_labels.txt"),
    };
    let detector = Detector::load(&source, &DetectorConfig::default()).unwrap();
    let info = detector.info();
    assert_eq!(info.labels, 80);
    assert_eq!(detector.labels().name(12), "stop sign");
    let missing = ModelSource::Files {
        model: models.join("nope.tflite"),
        labels: models.join("coco_labels.txt"),
    };
    let err = Detector::load(&missing, &DetectorConfig::default())
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.tflite"));
}

#[test]
fn garbage_and_truncated_models_are_errors() {
    for bytes in [
        &b""[..],
        b"TFL3",
        &EMBEDDED_MODEL[..1000],
        &EMBEDDED_MODEL[..EMBEDDED_MODEL.len() / 2],
    ] {
        let err = convert(bytes).err().expect("must not convert");
        assert!(err.to_string().contains("invalid model"), "{err}");
    }
}

/// Deterministic byte flips across the file: every outcome is Ok or a clear error, never a panic.
#[test]
fn mutated_models_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut errors = 0;
    for _ in 0..24 {
        let mut bytes = EMBEDDED_MODEL.to_vec();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % bytes.len() as u64) as usize;
            // Mostly hit the structure (first and last 64 KiB), where flips change meaning.
            let at = if state & 1 == 0 {
                at % 65536
            } else {
                bytes.len() - 1 - at % 65536
            };
            bytes[at] ^= (state >> 32) as u8 | 1;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            convert(&bytes)
                .map(|c| c.stats.operators)
                .map_err(|e| e.to_string())
        }));
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(msg)) => {
                assert!(!msg.is_empty());
                errors += 1;
            }
            Err(_) => panic!("conversion panicked on a mutated model"),
        }
    }
    assert!(errors > 0, "some mutations must be detected");
}
