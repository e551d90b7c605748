//! The policy study's table (`detect policy-report`): per emulated link, the `local`,
//! `remote` and `auto` policies run in interleaved rounds, each figure the median over the
//! rounds with its range, and the per-image oracle (for each image the faster of its local
//! and its remote time in the same round, in hindsight) as the bound `auto` is measured
//! against.
//!
//! Rows are labelled `PROFILE / POLICY` (one round) or `PROFILE / POLICY #K` (round K).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::rows::Row;
use crate::stats::{mean, percentile};

/// (profile, policy, round) from a row's location.
fn parse_label(location: &str) -> Option<(&str, &str, u32)> {
    let (profile, rest) = location.rsplit_once(" / ")?;
    match rest.split_once(" #") {
        Some((policy, k)) => Some((profile, policy, k.parse().ok()?)),
        None => Some((profile, rest, 1)),
    }
}

/// One policy's run in one round.
#[derive(Default)]
struct Run<'a> {
    rows: Vec<&'a Row>,
}

impl Run<'_> {
    fn mean_ms(&self) -> f64 {
        mean(self.rows.iter().map(|r| r.rtt_ms))
    }
    fn remote_share(&self) -> f64 {
        self.rows.iter().filter(|r| r.ran == "remote").count() as f64 / self.rows.len() as f64
    }
    fn failed(&self) -> usize {
        self.rows.iter().filter(|r| !r.ok()).count()
    }
}

/// One policy's runs on one link, by round.
type Rounds<'a> = BTreeMap<u32, Run<'a>>;

fn per_round<'a>(m: Option<&Rounds<'a>>, f: impl Fn(&Run<'a>) -> f64) -> Vec<f64> {
    m.map_or(Vec::new(), |m| m.values().map(f).collect())
}

/// The oracle's mean time per image in one round: each image at the faster of its local and
/// remote times (images that succeeded in both runs).
fn oracle_ms(local: &Run, remote: &Run) -> f64 {
    let remote_by_id: BTreeMap<&str, f64> = remote
        .rows
        .iter()
        .filter(|r| r.ok())
        .map(|r| (r.id.as_str(), r.rtt_ms))
        .collect();
    mean(
        local
            .rows
            .iter()
            .filter(|r| r.ok())
            .filter_map(|l| remote_by_id.get(l.id.as_str()).map(|&r| l.rtt_ms.min(r))),
    )
}

/// "median (min–max)" of per-round values, or the one value.
fn spread(values: &[f64], fmt: impl Fn(f64) -> String) -> String {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => "–".into(),
        1 => fmt(v[0]),
        _ => format!(
            "{} ({}–{})",
            fmt(percentile(&v, 50.0)),
            fmt(v[0]),
            fmt(v[v.len() - 1])
        ),
    }
}

pub const COLUMNS: [&str; 10] = [
    "link",
    "rounds",
    "local: ms/image",
    "remote: ms/image",
    "auto: ms/image",
    "oracle: ms/image",
    "auto: offloaded",
    "auto vs better fixed",
    "auto vs oracle",
    "failed",
];

/// The table, profiles in order of first appearance. A round's comparisons (auto against the
/// better fixed policy, against the oracle) are made within the round, then summarized.
pub fn policy_table(rows: &[Row]) -> String {
    let mut profiles: Vec<&str> = Vec::new();
    // (profile, policy) → round → run
    let mut runs: BTreeMap<(&str, &str), Rounds> = BTreeMap::new();
    for r in rows {
        let Some((profile, policy, round)) = parse_label(&r.location) else {
            continue;
        };
        if !profiles.contains(&profile) {
            profiles.push(profile);
        }
        runs.entry((profile, policy))
            .or_default()
            .entry(round)
            .or_default()
            .rows
            .push(r);
    }
    let mut s = format!(
        "| {} |\n|---|---:|{}\n",
        COLUMNS.join(" | "),
        "---:|".repeat(COLUMNS.len() - 2)
    );
    let pct = |v: f64| format!("{:+.0} %", v * 100.0);
    let ms = |v: f64| format!("{v:.1}");
    for p in &profiles {
        let (local, remote, auto) = (
            runs.get(&(*p, "local")),
            runs.get(&(*p, "remote")),
            runs.get(&(*p, "auto")),
        );
        let rounds: Vec<u32> = [local, remote, auto]
            .iter()
            .flatten()
            .flat_map(|m| m.keys().copied())
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) {
                    v.push(k);
                }
                v
            });
        let (mut oracle, mut vs_best, mut vs_oracle) = (Vec::new(), Vec::new(), Vec::new());
        for k in &rounds {
            let (l, r, a) = (
                local.and_then(|m| m.get(k)),
                remote.and_then(|m| m.get(k)),
                auto.and_then(|m| m.get(k)),
            );
            if let (Some(l), Some(r)) = (l, r) {
                let bound = oracle_ms(l, r);
                oracle.push(bound);
                if let Some(a) = a {
                    let best = l.mean_ms().min(r.mean_ms());
                    vs_best.push(a.mean_ms() / best - 1.0);
                    vs_oracle.push(a.mean_ms() / bound - 1.0);
                }
            }
        }
        let failed: usize = [local, remote, auto]
            .iter()
            .flatten()
            .flat_map(|m| m.values())
            .map(Run::failed)
            .sum();
        let _ = writeln!(
            s,
            "| {p} | {} | {} | {} | {} | {} | {} | {} | {} | {failed} |",
            rounds.len(),
            spread(&per_round(local, Run::mean_ms), ms),
            spread(&per_round(remote, Run::mean_ms), ms),
            spread(&per_round(auto, Run::mean_ms), ms),
            spread(&oracle, ms),
            spread(&per_round(auto, Run::remote_share), |v| format!(
                "{:.0} %",
                v * 100.0
            )),
            spread(&vs_best, pct),
            spread(&vs_oracle, pct),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(location: &str, id: &str, rtt: f64, ran: &str) -> Row {
        Row {
            dataset: "d".into(),
            location: location.into(),
            id: id.into(),
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
            done_at_ms: 0.0,
            init_ms: None,
        }
    }

    #[test]
    fn labels_with_and_without_rounds() {
        assert_eq!(parse_label("good / auto"), Some(("good", "auto", 1)));
        assert_eq!(
            parse_label("bad: 4 Mbit/s / remote #3"),
            Some(("bad: 4 Mbit/s", "remote", 3))
        );
        assert_eq!(parse_label("in-process"), None);
        assert_eq!(parse_label("good / auto #x"), None);
    }

    #[test]
    fn one_round_by_hand() {
        let rows = vec![
            row("good / local", "a", 90.0, "local"),
            row("good / local", "b", 110.0, "local"),
            row("good / remote", "a", 40.0, "remote"),
            row("good / remote", "b", 160.0, "remote"),
            row("good / auto", "a", 90.0, "local"),
            row("good / auto", "b", 50.0, "remote"),
        ];
        let t = policy_table(&rows);
        // local 100, remote 100, auto 70; oracle: a 40, b 110 → 75; auto 70 / 75 − 1 = −7 %.
        assert!(
            t.contains("| good | 1 | 100.0 | 100.0 | 70.0 | 75.0 | 50 % | -30 % | -7 % | 0 |"),
            "{t}"
        );
    }

    #[test]
    fn rounds_give_medians_with_ranges_compared_within_each_round() {
        let mut rows = Vec::new();
        // Round k: local 100, remote 50·k, auto 60 (one image each).
        for k in 1..=3 {
            rows.push(row(&format!("bad / local #{k}"), "a", 100.0, "local"));
            rows.push(row(
                &format!("bad / remote #{k}"),
                "a",
                50.0 * k as f64,
                "remote",
            ));
            rows.push(row(&format!("bad / auto #{k}"), "a", 60.0, "remote"));
        }
        let t = policy_table(&rows);
        // remote 50, 100, 150 → median 100 (50–150); oracle 50, 100, 100; auto vs better
        // fixed: 60/50, 60/100, 60/100 → +20 %, −40 %, −40 %.
        assert!(
            t.contains(
                "| bad | 3 | 100.0 (100.0–100.0) | 100.0 (50.0–150.0) | 60.0 (60.0–60.0) | 100.0 (50.0–100.0) | 100 % (100 %–100 %) | -40 % (-40 %–+20 %) | -40 % (-40 %–+20 %) | 0 |"
            ),
            "{t}"
        );
        for line in t.lines() {
            assert_eq!(line.matches('|').count(), COLUMNS.len() + 1, "{line}");
        }
    }
}
