//! `detect send --policy local|auto`: one image at a time, each run in this process (the code
//! path of `detect local`) or sent to the endpoint, as the [`policy`](super::policy) decides;
//! and the policy table of the study (`detect policy-report`).

use std::fmt::Write;
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

/// The policy study's table from rows labelled `PROFILE / POLICY` (e.g. "changing link
/// (emulated) / auto"): per profile, each policy's mean time per image (the rows' `rtt_ms`),
/// wall time per image and share of images run remotely, and `auto` against the better fixed
/// policy. Profiles in order of first appearance.
pub fn policy_table(rows: &[Row]) -> String {
    let mut profiles: Vec<String> = Vec::new();
    for r in rows {
        if let Some((p, _)) = r.location.rsplit_once(" / ") {
            if !profiles.iter().any(|x| x == p) {
                profiles.push(p.to_string());
            }
        }
    }
    let stats = |profile: &str, policy: &str| -> Option<(f64, f64, f64, usize)> {
        let label = format!("{profile} / {policy}");
        let g: Vec<&Row> = rows.iter().filter(|r| r.location == label).collect();
        if g.is_empty() {
            return None;
        }
        let n = g.len() as f64;
        let mean = g.iter().map(|r| r.rtt_ms).sum::<f64>() / n;
        let wall = g.iter().map(|r| r.done_at_ms).fold(0.0, f64::max) / n;
        let remote = g.iter().filter(|r| r.ran == "remote").count() as f64 / n;
        let failed = g.iter().filter(|r| !r.ok()).count();
        Some((mean, wall, remote, failed))
    };
    let mut s = String::from(
        "| link | local: ms/image | remote: ms/image | auto: ms/image | auto: offloaded | auto vs better fixed | failed |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let cell = |v: Option<(f64, f64, f64, usize)>| match v {
        Some((m, w, _, _)) => format!("{m:.1} (wall {w:.1})"),
        None => "–".into(),
    };
    for p in &profiles {
        let (l, r, a) = (stats(p, "local"), stats(p, "remote"), stats(p, "auto"));
        let best = [l, r]
            .iter()
            .flatten()
            .map(|v| v.0)
            .fold(f64::INFINITY, f64::min);
        let vs = match a {
            Some(a) if best.is_finite() => format!("{:+.0} %", (a.0 / best - 1.0) * 100.0),
            _ => "–".into(),
        };
        let failed: usize = [l, r, a].iter().flatten().map(|v| v.3).sum();
        let _ = writeln!(
            s,
            "| {p} | {} | {} | {} | {} | {vs} | {failed} |",
            cell(l),
            cell(r),
            cell(a),
            a.map_or("–".into(), |a| format!("{:.0} %", a.2 * 100.0)),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(location: &str, rtt: f64, ran: &str, done: f64) -> Row {
        Row {
            dataset: "d".into(),
            location: location.into(),
            id: "x".into(),
            bytes: 1,
            upload_ms: 0.0,
            rtt_ms: rtt,
            inference_ms: 1.0,
            server_total_ms: 1.0,
            status: 200,
            detections: 0,
            cold_start: false,
            ran: ran.into(),
            reason: "fixed".into(),
            done_at_ms: done,
        }
    }

    #[test]
    fn table_by_hand() {
        let rows = vec![
            row("good / local", 90.0, "local", 100.0),
            row("good / local", 110.0, "local", 210.0),
            row("good / remote", 40.0, "remote", 50.0),
            row("good / remote", 60.0, "remote", 110.0),
            row("good / auto", 90.0, "local", 100.0),
            row("good / auto", 50.0, "remote", 160.0),
        ];
        let t = policy_table(&rows);
        // local 100, remote 50, auto 70 (+40 % on remote), offloaded 1 of 2.
        assert!(
            t.contains("| good | 100.0 (wall 105.0) | 50.0 (wall 55.0) | 70.0 (wall 80.0) | 50 % | +40 % | 0 |"),
            "{t}"
        );
    }
}
