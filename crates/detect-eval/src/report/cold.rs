//! Cold starts, measured: `scripts/study.sh` restarts the function several times and sends a
//! few images after each restart, labelled "cold start K of N". The first request of a restart
//! meets the cold start; the others are warm. The penalty of one restart is its first round
//! trip minus the mean of its warm ones. The function reports its own start-up (`init_ms`), so
//! the penalty splits into the function's part (start-up, and the first request's extra time
//! in the handler) and the rest: under `cargo lambda watch`, the emulator starting the process
//! through `cargo run`, which a Lambda sandbox replaces with a start of its own.

use std::fmt::Write;

use crate::rows::Row;
use crate::stats::{mean, percentile};

/// Rows of the cold-start probes carry locations starting with this.
pub const PROBE_PREFIX: &str = "cold start ";

pub fn is_probe(location: &str) -> bool {
    location.starts_with(PROBE_PREFIX)
}

/// One restart: its first (cold) request against its warm ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Restart {
    pub location: String,
    pub first_ms: f64,
    pub warm_ms: f64,
    /// The function's own time for the first request, and the warm mean of it: their
    /// difference is the part of the penalty spent inside the handler.
    pub first_server_ms: f64,
    pub warm_server_ms: f64,
    /// The function's start-up as it reported it on the cold request (none in older rows).
    pub init_ms: Option<f64>,
}

impl Restart {
    pub fn penalty_ms(&self) -> f64 {
        self.first_ms - self.warm_ms
    }

    /// The function's own share of the penalty: its start-up plus the first request's extra
    /// time in the handler.
    pub fn function_ms(&self) -> Option<f64> {
        self.init_ms
            .map(|init| init + self.first_server_ms - self.warm_server_ms)
    }

    /// The share outside the function: starting its process (and, for a client, anything
    /// else between the request and the handler on the first request).
    pub fn outside_ms(&self) -> Option<f64> {
        self.function_ms().map(|f| self.penalty_ms() - f)
    }
}

/// Median, smallest and largest of some values (none without values).
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((percentile(&v, 50.0), v[0], v[v.len() - 1]))
}

/// The penalties of every restart, with their spread.
#[derive(Clone, Debug, PartialEq)]
pub struct ColdStarts {
    pub restarts: Vec<Restart>,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Median and range of [`Restart::function_ms`] and of [`Restart::outside_ms`] over the
    /// restarts that report the start-up.
    pub function: Option<(f64, f64, f64)>,
    pub outside: Option<(f64, f64, f64)>,
}

/// The restarts found in `rows` (probe locations with a successful cold first request and at
/// least one successful warm one), in order of first appearance; `None` without any.
pub fn measure(rows: &[Row]) -> Option<ColdStarts> {
    let mut locations: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| is_probe(&r.location)) {
        if !locations.contains(&r.location.as_str()) {
            locations.push(&r.location);
        }
    }
    let restarts: Vec<Restart> = locations
        .into_iter()
        .filter_map(|loc| {
            let mine: Vec<&Row> = rows.iter().filter(|r| r.location == loc).collect();
            let first = mine.first().filter(|r| r.cold_start && r.ok())?;
            let warm: Vec<&&Row> = mine[1..]
                .iter()
                .filter(|r| !r.cold_start && r.ok())
                .collect();
            if warm.is_empty() {
                return None;
            }
            Some(Restart {
                location: loc.to_string(),
                first_ms: first.rtt_ms,
                warm_ms: mean(warm.iter().map(|r| r.rtt_ms)),
                first_server_ms: first.server_total_ms,
                warm_server_ms: mean(warm.iter().map(|r| r.server_total_ms)),
                init_ms: first.init_ms,
            })
        })
        .collect();
    if restarts.is_empty() {
        return None;
    }
    let (median_ms, min_ms, max_ms) = spread(restarts.iter().map(Restart::penalty_ms).collect())?;
    Some(ColdStarts {
        median_ms,
        min_ms,
        max_ms,
        function: spread(restarts.iter().filter_map(Restart::function_ms).collect()),
        outside: spread(restarts.iter().filter_map(Restart::outside_ms).collect()),
        restarts,
    })
}

/// The report's section: one row per restart, then the median and range, and the split
/// between the function and what started it.
pub fn section(c: &ColdStarts) -> String {
    let f = |v: f64| format!("{v:.2}");
    let opt = |v: Option<f64>| v.map_or("-".to_string(), f);
    let mut md = String::new();
    let _ = writeln!(md, "## Cold starts, measured\n");
    let _ = writeln!(
        md,
        "The function was restarted {} times (a new process under a new `cargo lambda watch`, no request before the measured ones); after each restart the first request meets the cold start: the process is started, the function starts up (model load, clients) and serves its first request. Penalty = the first round trip minus the mean of the warm ones after it. *Function start-up* is the function's own figure (`init_ms`, from the start of its set-up to ready); *the function's part* = start-up + the first request's extra time in the handler; *outside the function* = the rest of the penalty.\n",
        c.restarts.len()
    );
    let _ = writeln!(
        md,
        "| restart | first request ms | warm mean ms | penalty ms | function start-up ms | first request in the handler ms | warm in the handler ms | the function's part ms | outside the function ms |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &c.restarts {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.location,
            f(r.first_ms),
            f(r.warm_ms),
            f(r.penalty_ms()),
            opt(r.init_ms),
            f(r.first_server_ms),
            f(r.warm_server_ms),
            opt(r.function_ms()),
            opt(r.outside_ms())
        );
    }
    let _ = writeln!(
        md,
        "\nA cold start adds **{} ms** here (median of {} restarts; range {}–{} ms).",
        f(c.median_ms),
        c.restarts.len(),
        f(c.min_ms),
        f(c.max_ms)
    );
    match (c.function, c.outside) {
        (Some((median, lo, hi)), Some((out, out_lo, out_hi))) => {
            let _ = writeln!(
                md,
                "Of it, the function's own part is **{} ms** (median; range {}–{} ms), and {} ms (median; range {}–{} ms) is outside the function: `cargo lambda watch` starts the function's process through `cargo run`, which first checks that the build is up to date. On Lambda that part is the sandbox's own start (runtime and process start), which is not emulated here.",
                f(median),
                f(lo),
                f(hi),
                f(out),
                f(out_lo),
                f(out_hi)
            );
        }
        _ => {
            let _ = writeln!(
                md,
                "The rows do not carry the function's start-up (`init_ms`), so the penalty is not split."
            );
        }
    }
    let _ = writeln!(
        md,
        "The models below use the whole measured median, as a client here met it; how often a request meets a cold start depends on the traffic (Lambda keeps an instance for minutes after a request), so the cold-start share of each run is taken from its rows.\n"
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(location: &str, rtt: f64, server: f64, cold: bool) -> Row {
        // The function reports its start-up on the cold request only.
        let init_ms = cold.then_some(100.0);
        Row {
            dataset: "small".into(),
            location: location.into(),
            id: "x".into(),
            bytes: 1000,
            upload_ms: 1.0,
            rtt_ms: rtt,
            inference_ms: 5.0,
            server_total_ms: server,
            status: 200,
            detections: 1,
            cold_start: cold,
            ran: "remote".into(),
            reason: "fixed".into(),
            done_at_ms: 0.0,
            init_ms,
        }
    }

    #[test]
    fn penalty_is_first_minus_warm_mean_per_restart() {
        let rows = vec![
            row("local watch", 10.0, 8.0, true),
            row("cold start 1 of 2", 500.0, 30.0, true),
            row("cold start 1 of 2", 20.0, 10.0, false),
            row("cold start 1 of 2", 30.0, 12.0, false),
            row("cold start 2 of 2", 325.0, 25.0, true),
            row("cold start 2 of 2", 25.0, 9.0, false),
        ];
        let c = measure(&rows).unwrap();
        assert_eq!(c.restarts.len(), 2);
        assert_eq!(c.restarts[0].penalty_ms(), 475.0);
        assert_eq!(c.restarts[0].warm_server_ms, 11.0);
        assert_eq!(c.restarts[1].penalty_ms(), 300.0);
        assert_eq!((c.min_ms, c.max_ms), (300.0, 475.0));
        assert_eq!(c.median_ms, 387.5);
        // Function: 100 start-up + (30 - 11) and 100 + (25 - 9); outside: the rest.
        assert_eq!(c.restarts[0].function_ms(), Some(119.0));
        assert_eq!(c.restarts[0].outside_ms(), Some(356.0));
        assert_eq!(c.function, Some((117.5, 116.0, 119.0)));
        let md = section(&c);
        assert!(md.contains(
            "| cold start 1 of 2 | 500.00 | 25.00 | 475.00 | 100.00 | 30.00 | 11.00 | 119.00 | 356.00 |"
        ));
        assert!(md.contains("**387.50 ms** here (median of 2 restarts; range 300.00–475.00 ms)"));
        assert!(md
            .contains("the function's own part is **117.50 ms** (median; range 116.00–119.00 ms)"));
        assert_eq!(c.outside, Some((270.0, 184.0, 356.0)));
        assert!(md.contains("and 270.00 ms (median; range 184.00–356.00 ms) is outside"));
    }

    #[test]
    fn a_restart_without_a_cold_first_or_a_warm_request_is_not_counted() {
        let rows = vec![
            // The first request was not cold (the function was already up): not a measurement.
            row("cold start 1 of 3", 20.0, 10.0, false),
            row("cold start 1 of 3", 21.0, 10.0, false),
            // No warm request to compare with.
            row("cold start 2 of 3", 400.0, 10.0, true),
            row("cold start 3 of 3", 400.0, 10.0, true),
            row("cold start 3 of 3", 40.0, 10.0, false),
        ];
        let c = measure(&rows).unwrap();
        assert_eq!(c.restarts.len(), 1);
        assert_eq!(c.median_ms, 360.0);
        assert!(measure(&rows[..3]).is_none());
    }

    #[test]
    fn rows_without_the_start_up_are_measured_but_not_split() {
        let mut rows = vec![
            row("cold start 1 of 1", 400.0, 30.0, true),
            row("cold start 1 of 1", 40.0, 10.0, false),
        ];
        rows[0].init_ms = None;
        let c = measure(&rows).unwrap();
        assert_eq!((c.median_ms, c.function, c.outside), (360.0, None, None));
        let md = section(&c);
        assert!(md.contains("| 360.00 | - | 30.00 | 10.00 | - | - |"));
        assert!(md.contains("so the penalty is not split"));
    }
}
