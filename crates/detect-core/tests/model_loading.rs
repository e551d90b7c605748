//! Loading and converting models: the bundled one, an override path, and broken files.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use detect_core::detector::LoadError;
use detect_core::model::{convert, convert_with, ConvertOptions, ModelError, EMBEDDED_MODEL};
use detect_core::{Detector, DetectorConfig, ModelSource};

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
fn eight_bit_conversion_leaves_every_convolution_out_of_the_float_model() {
    let float = convert(EMBEDDED_MODEL).unwrap();
    let int8 = convert_with(EMBEDDED_MODEL, &ConvertOptions { int8_convs: true }).unwrap();
    assert!(float.int8_convs.is_empty());
    // All 55 CONV_2D ops (1x1 and 3x3) qualify; the depthwise ones stay in float.
    assert_eq!(int8.int8_convs.len(), 55);
    assert_eq!(int8.stats.int8_convs, 55);
    assert_eq!(int8.stats.operators, float.stats.operators);
    assert_eq!(
        int8.stats.relu6_restored + int8.stats.relu_restored,
        43,
        "activations are restored whether they end up in float or in the 8-bit kernel"
    );
    // Without the convolution weights the float model is a fraction of its size.
    assert!(
        int8.float_tflite.len() * 5 < float.float_tflite.len(),
        "{} vs {} bytes",
        int8.float_tflite.len(),
        float.float_tflite.len()
    );
    // Each site's stand-in input follows the image input, in graph order; inputs shared by
    // several convolutions (the box predictors' feature maps) are exposed once.
    for (i, site) in int8.int8_convs.iter().enumerate() {
        assert_eq!(site.graph_input, i + 1);
        assert!(site.graph_output >= 2);
    }
    let exposed: std::collections::HashSet<_> =
        int8.int8_convs.iter().map(|s| s.graph_output).collect();
    assert!(exposed.len() < 55);
    let first = &int8.int8_convs[0].spec;
    assert_eq!(
        (first.kernel_hw, first.stride, first.in_channels),
        ((3, 3), (2, 2), 3)
    );
    assert_eq!(first.input_zero_point, 128);
}

#[test]
fn loads_from_an_override_path() {
    let models = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"));
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
    assert!(
        matches!(err, LoadError::Model(ModelError::Io { .. })),
        "{err}"
    );
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
            let int8 = ConvertOptions { int8_convs: true };
            let _ = convert_with(&bytes, &int8);
            convert(&bytes)
                .map(|c| c.stats.operators)
                .map_err(|e| e.to_string())
        }));
        match outcome {
            Ok(Ok(_)) => {
                // The whole load (8-bit convolutions where the CPU has them) must not panic
                // either: a bad model is an error.
                let dir = tempfile::tempdir().unwrap();
                let (model, labels) = (dir.path().join("m.tflite"), dir.path().join("l.txt"));
                std::fs::write(&model, &bytes).unwrap();
                std::fs::write(&labels, "0  person\n").unwrap();
                let source = ModelSource::Files { model, labels };
                let loaded = catch_unwind(AssertUnwindSafe(|| {
                    Detector::load(&source, &DetectorConfig::default()).map(|_| ())
                }));
                assert!(loaded.is_ok(), "loading panicked on a mutated model");
            }
            Ok(Err(msg)) => {
                assert!(!msg.is_empty());
                errors += 1;
            }
            Err(_) => panic!("conversion panicked on a mutated model"),
        }
    }
    assert!(errors > 0, "some mutations must be detected");
}
