//! The local baseline: the same collection run in this process (no HTTP), as [`Row`]s with
//! upload 0 and location "in-process".

use std::path::PathBuf;
use std::time::Instant;

use super::rows::Row;
use detect_core::detector::{DetectOptions, Detector};
use detect_core::error::DetectError;
use detect_core::postprocess::FilterOptions;
use detect_core::timing::ms_since;
use detect_core::work_queue::map_in_order;

/// The per-image status an adapter gives each core error.
pub type StatusOf = fn(&DetectError) -> u16;

/// Detect in every file, `jobs` images at a time (1: one after another, the seed's "time per
/// image"; more: throughput on several cores, each image still on one thread). `rtt_ms` is the
/// whole pipeline as the caller sees it (read bytes excluded, decode → postprocess included);
/// rows come back in file order. `warmup` images are run untimed first.
#[allow(clippy::too_many_arguments)]
pub fn run_local(
    detector: &Detector,
    files: &[(String, PathBuf)],
    dataset: &str,
    location: &str,
    warmup: usize,
    jobs: usize,
    status_of: StatusOf,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Row>, String> {
    let options = detector
        .resolve_options(&DetectOptions::default())
        .map_err(|e| e.to_string())?;
    let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    for (id, path) in files.iter().take(warmup) {
        detector.detect(id, &read(path)?, &options);
    }
    let start = Instant::now();
    let results = map_in_order(files.len(), jobs, |i| {
        let (id, path) = &files[i];
        let bytes = read(path)?;
        let mut row = detect_row(detector, &options, id, &bytes, dataset, location, status_of);
        row.done_at_ms = ms_since(start);
        progress(1);
        Ok(row)
    });
    results
        .into_iter()
        .zip(files)
        .map(|(r, (id, _))| r.unwrap_or_else(|| Err(format!("{id}: the detection thread failed"))))
        .collect()
}

/// One image in-process as a [`Row`] (`ran` local, `reason` fixed, `done_at_ms` 0): the code
/// path of `detect local`, shared with `detect send --policy local|auto`.
pub fn detect_row(
    detector: &Detector,
    options: &FilterOptions,
    id: &str,
    bytes: &[u8],
    dataset: &str,
    location: &str,
    status_of: StatusOf,
) -> Row {
    let t = Instant::now();
    let r = detector.detect(id, bytes, options).into_result(status_of);
    let rtt = ms_since(t);
    Row {
        dataset: dataset.into(),
        location: location.into(),
        id: id.into(),
        bytes: bytes.len() as u64,
        upload_ms: 0.0,
        rtt_ms: rtt,
        inference_ms: r.timings_ms.inference,
        server_total_ms: r.timings_ms.total,
        status: r.status,
        detections: r.detections.len() as u32,
        cold_start: false,
        ran: "local".into(),
        reason: "fixed".into(),
        done_at_ms: 0.0,
        init_ms: None,
    }
}
