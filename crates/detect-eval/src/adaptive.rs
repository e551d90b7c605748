//! `detect send --policy local|auto`: one image at a time, each run in this process (the code
//! path of `detect local`) or sent to the endpoint, as the [`policy`](super::policy) decides.
//! The study's table of these runs is [`policy_table`](super::policy_table).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::client::{build_request, exchange, rows_from_exchange, Exchange, SendConfig};
use super::local::{detect_row, StatusOf};
use super::policy::{Auto, Place};
use super::rows::Row;
use detect_core::detector::{DetectOptions, Detector};
use detect_core::timing::ms_since;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Local,
    Remote,
    Auto,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Local => "local",
            Policy::Remote => "remote",
            Policy::Auto => "auto",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PolicyConfig {
    pub policy: Policy,
    /// Emulate a slower local device: after each local image sleep (F − 1) × its measured time,
    /// so the row's time is F × the measured one. 1 = this machine as it is.
    pub local_slowdown: f64,
    /// EWMA weight of a new sample.
    pub alpha: f64,
    pub explore_every: usize,
    pub max_explore_every: usize,
    /// Local images run untimed before the first (as `detect local --warmup`).
    pub warmup: usize,
}

/// Run the collection under `policy` (Local or Auto; Remote is
/// [`send_collection`](super::client::send_collection)). Sequential, one image per request.
pub fn run_policy(
    files: &[(String, PathBuf)],
    send: &SendConfig,
    pc: &PolicyConfig,
    detector: &Detector,
    status_of: StatusOf,
    progress: &dyn Fn(u64),
) -> Result<Vec<Row>, String> {
    let options = detector
        .resolve_options(&DetectOptions::default())
        .map_err(|e| e.to_string())?;
    for (id, path) in files.iter().take(pc.warmup) {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        detector.detect(id, &bytes, &options);
    }
    let agent = super::client::agent(send.timeout);
    let mut auto = Auto::new(pc.alpha, pc.explore_every, pc.max_explore_every);
    let slowdown = pc.local_slowdown.max(1.0);
    let mut rows = Vec::with_capacity(files.len());
    let start = Instant::now();
    for (id, path) in files {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let n = bytes.len() as u64;
        let (place, reason) = match pc.policy {
            Policy::Auto => {
                let d = auto.decide(n);
                (d.place, d.reason)
            }
            Policy::Local => (Place::Local, "fixed".to_string()),
            Policy::Remote => (Place::Remote, "fixed".to_string()),
        };
        let mut row = match place {
            Place::Local => {
                let mut row = detect_row(
                    detector,
                    &options,
                    id,
                    &bytes,
                    &send.dataset,
                    &send.location,
                    status_of,
                );
                if slowdown > 1.0 {
                    std::thread::sleep(Duration::from_secs_f64(
                        row.rtt_ms * (slowdown - 1.0) / 1000.0,
                    ));
                    row.rtt_ms *= slowdown;
                    row.inference_ms *= slowdown;
                    row.server_total_ms *= slowdown;
                }
                auto.observe_local(n, row.rtt_ms);
                row
            }
            Place::Remote => {
                let batch = vec![(id.clone(), bytes)];
                let (url, ct, body) = build_request(&send.endpoint, send.encoding, &batch);
                let ex = exchange(
                    &agent,
                    &url,
                    &ct,
                    &send.headers,
                    send.signer.as_ref(),
                    &body,
                )
                .unwrap_or_else(|e| {
                    eprintln!("warning: {e}; image recorded with status 0");
                    Exchange {
                        status: 0,
                        body: String::new(),
                        headers_ms: 0.0,
                        rtt_ms: 0.0,
                    }
                });
                let row = rows_from_exchange(send, &[(id.clone(), n)], &ex, 0.0)
                    .into_iter()
                    .next()
                    .expect("one row per image");
                if row.ok() {
                    auto.observe_remote(n, row.upload_ms, row.server_total_ms, row.rtt_ms);
                } else {
                    auto.remote_failed();
                }
                row
            }
        };
        row.ran = place.name().into();
        row.reason = reason;
        row.done_at_ms = ms_since(start);
        rows.push(row);
        progress(1);
    }
    Ok(rows)
}
