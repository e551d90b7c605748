//! `detect dataset`: determinism and the size spread of a generated collection.

use std::path::Path;
use std::process::Command;

fn generate(dir: &Path, seed: u64, count: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(["dataset", "--preset", "small", "--count"])
        .arg(count.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run detect dataset");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes_sizes_in_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    generate(&a, 42, 40);
    generate(&b, 42, 40);
    generate(&c, 43, 40);
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(fa.len(), 40);
    assert!(fa == fb, "same seed must give byte-identical files");
    assert_eq!(fc.len(), 40);
    let differing = fa.iter().zip(&fc).filter(|(x, y)| x.1 != y.1).count();
    assert_eq!(differing, 40, "another seed must give other images");

    let sizes: Vec<usize> = fa.iter().map(|(_, b)| b.len()).collect();
    let (min, max) = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
    assert!(min >= 14_000, "smallest file {min} bytes");
    assert!(max <= 495_000, "largest file {max} bytes");
    // Spread: at least one file under 40 KB and one over 150 KB in 40 log-uniform draws.
    assert!(
        min < 40_000 && max > 150_000,
        "sizes {min}..{max} not spread"
    );
    // Every file is a JPEG the detector's decoder reads.
    for (name, bytes) in &fa {
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "{name} is not a JPEG");
    }
}
