//! Criterion benches: inference alone (8-bit convolutions where the CPU has them, all-f32 for
//! comparison, one and two threads, and once per kernel set this CPU runs), the whole pipeline
//! per image, and start-up; bundled model.
//! Figures are recorded in docs/PERFORMANCE.md.

use criterion::{criterion_group, criterion_main, Criterion};
use detect_core::detector::DetectOptions;
use detect_core::inference::Isa;
use detect_core::{Detector, DetectorConfig, ModelSource};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/fixtures/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn benches(c: &mut Criterion) {
    let detector = Detector::load(&ModelSource::Default, &DetectorConfig::default()).unwrap();
    let options = detector.resolve_options(&DetectOptions::default()).unwrap();
    let input = detector.preprocess(&fixture("chelsea.jpg")).unwrap();
    c.bench_function("inference (300x300, 1 thread)", |b| {
        b.iter(|| detector.infer(input.clone()).unwrap())
    });
    let f32_only = DetectorConfig {
        int8: false,
        ..DetectorConfig::default()
    };
    let float = Detector::load(&ModelSource::Default, &f32_only).unwrap();
    c.bench_function("inference, all f32 (300x300, 1 thread)", |b| {
        b.iter(|| float.infer(input.clone()).unwrap())
    });
    drop(float);
    for isa in Isa::available() {
        let config = DetectorConfig {
            isa: Some(isa),
            ..DetectorConfig::default()
        };
        let forced = Detector::load(&ModelSource::Default, &config).unwrap();
        c.bench_function(
            &format!("inference, {isa} kernels (300x300, 1 thread)"),
            |b| b.iter(|| forced.infer(input.clone()).unwrap()),
        );
    }
    let two = DetectorConfig {
        threads: 2,
        ..DetectorConfig::default()
    };
    let two_threads = Detector::load(&ModelSource::Default, &two).unwrap();
    c.bench_function("inference (300x300, 2 threads)", |b| {
        b.iter(|| two_threads.infer(input.clone()).unwrap())
    });
    drop(two_threads);
    for name in ["chelsea.jpg", "astronaut.jpg", "coffee.jpg"] {
        let bytes = fixture(name);
        c.bench_function(&format!("pipeline {name}"), |b| {
            b.iter(|| {
                let r = detector.detect(name, &bytes, &options);
                assert!(r.ok(), "{:?}", r.result);
                r
            })
        });
    }
    c.bench_function("model load + convert + optimize", |b| {
        b.iter(|| Detector::load(&ModelSource::Default, &DetectorConfig::default()).unwrap())
    });
}

criterion_group! {
    name = detector;
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(detector);
