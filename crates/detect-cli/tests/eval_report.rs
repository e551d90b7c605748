//! End to end without a server: generate a small collection, run it in-process into a CSV,
//! write the report and check that the report's table equals the CSV's numbers.

use std::process::Command;

use detect_eval::{report, rows};

fn detect(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(args)
        .output()
        .expect("run detect");
    assert!(
        out.status.success(),
        "detect {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn local_rows_then_report_numbers_equal_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_string_lossy().into_owned();
    detect(&[
        "dataset",
        "--count",
        "6",
        "--seed",
        "5",
        "--out",
        &p("small"),
    ]);
    detect(&[
        "local",
        "--warmup",
        "1",
        "--dataset",
        "small",
        "--out",
        &p("local.csv"),
        "--json-out",
        &p("local.json"),
        &p("small"),
    ]);
    let csv = rows::read_rows(&tmp.path().join("local.csv")).unwrap();
    let json = rows::read_rows(&tmp.path().join("local.json")).unwrap();
    assert_eq!(csv.len(), 6);
    assert!(csv
        .iter()
        .all(|r| r.status == 200 && r.location == "in-process" && r.upload_ms == 0.0));
    // CSV and JSON share one row schema (CSV rounds to µs).
    for (a, b) in csv.iter().zip(&json) {
        assert_eq!((&a.id, a.bytes, a.status), (&b.id, b.bytes, b.status));
        assert!((a.rtt_ms - b.rtt_ms).abs() < 1e-3);
    }
    detect(&["report", "--check", "--out", &p("report"), &p("local.csv")]);
    let md = std::fs::read_to_string(tmp.path().join("report/README.md")).unwrap();
    assert_eq!(report::check_table(&md, &csv), Ok(1));
    let table = report::parse_table(&md);
    let row = &table[&("small".to_string(), "in-process".to_string())];
    let mean = csv.iter().map(|r| r.rtt_ms).sum::<f64>() / 6.0;
    assert_eq!(row["total ms"], format!("{mean:.2}"));
    assert!(tmp.path().join("report/times-small.svg").exists());
    assert!(tmp.path().join("report/cdf-small.svg").exists());
}
