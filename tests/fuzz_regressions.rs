//! Replays the fuzzers' inputs under `cargo test`: every crash input kept in
//! fuzz/regressions/<target>/ and the seed corpora fuzz/corpus/{http_request,s3_event,
//! image_decode}/, through the same harness functions the cargo-fuzz targets call
//! (fuzz/src/lib.rs, included here). None may panic. scripts/fuzz.sh runs the fuzzers.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod harness;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `harness` on every file of the target's regression directory (and its committed seed
/// corpus when `with_corpus`); returns how many inputs ran. Panics listing every input that
/// panicked.
fn replay(target: &str, with_corpus: bool, harness: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = files_under(&root.join("regressions").join(target));
    if with_corpus {
        inputs.extend(files_under(&root.join("corpus").join(target)));
    }
    let mut failures = Vec::new();
    for path in &inputs {
        let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| harness(&data))).is_err() {
            failures.push(
                path.strip_prefix(&root)
                    .unwrap_or(path)
                    .display()
                    .to_string(),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs panicked: {failures:?}",
        failures.len(),
        inputs.len()
    );
    inputs.len()
}

#[test]
fn http_request_inputs_never_panic() {
    assert!(replay("http_request", true, harness::http_request) > 0);
}

#[test]
fn s3_event_inputs_never_panic() {
    assert!(replay("s3_event", true, harness::s3_event) > 0);
}

#[test]
fn image_decode_inputs_never_panic() {
    assert!(replay("image_decode", true, harness::image_decode) > 0);
}

#[test]
fn model_convert_inputs_never_panic() {
    // The seed corpus is the 6 MB bundled model, not committed; only crash inputs replay here.
    replay("model_convert", false, harness::model_convert);
    // And the bundled model itself converts.
    harness::model_convert(detect_core::model::EMBEDDED_MODEL);
    assert!(detect_core::model::convert(detect_core::model::EMBEDDED_MODEL).is_ok());
}
