//! The answer per dataset in one table at the top of the report: does offloading pay here, for
//! which slower local devices over which link, and at what cost; and what of it was measured,
//! emulated or modelled.

use std::fmt::Write;

use super::client_speed::{break_even_slowdown, Link};
use super::economics::{cheapest, rented_break_even_rate};
use super::{f2, Fitted};
use crate::model::{ArchCompute, Prices, Source};
use crate::rows::Summary;

/// What the table needs of one dataset.
pub struct Answer<'a> {
    pub fitted: &'a Fitted,
    /// The fastest offloaded run measured for the dataset.
    pub best: &'a Summary,
    /// The links of the break-even map (the local watch first).
    pub links: Vec<Link>,
    pub compute: Vec<ArchCompute>,
}

pub fn section(answers: &[Answer], p: &Prices) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Conclusions, per dataset\n");
    let _ = writeln!(
        md,
        "*Measured* on this machine: in-process runs, the function under `cargo lambda watch` (pinned to one vCPU) and its cold starts. *Emulated*: every link (`detect proxy`). *Modelled* from those: slower local devices, Lambda memory sizes, batching and prices. Each row is computed from that dataset's rows; the sections below give the workings.\n"
    );
    let _ = writeln!(
        md,
        "| dataset | here: local vs fastest offloaded | offloading pays here? | pays for a local device slower than | Lambda $ per 1000 images (1 / 20 per request) | a rented machine is cheaper above |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for a in answers {
        let f = a.fitted;
        let pays = a.best.mean_total_ms < f.local_ms;
        let slowdowns: Vec<String> = a
            .links
            .iter()
            .map(|(name, mbit, rtt)| {
                format!("{}x over {name}", f2(break_even_slowdown(f, *mbit, *rtt)))
            })
            .collect();
        // The architecture with the cheapest images at one per request.
        let Some((c, (_, one))) = a
            .compute
            .iter()
            .map(|c| (c, cheapest(p, c, 1.0)))
            .min_by(|x, y| x.1 .1.total_cmp(&y.1 .1))
        else {
            continue;
        };
        let (_, twenty) = cheapest(p, c, 20.0);
        let label = match c.source {
            Source::Measured => c.arch.name().to_string(),
            Source::EstimatedFrom(other) => {
                format!("{}, estimate from {}", c.arch.name(), other.name())
            }
        };
        let _ = writeln!(
            md,
            "| {} | {} ms vs {} ms ({}) | {} | {} | {:.5} / {:.5} ({label}) | {} images/s |",
            f.dataset,
            f2(f.local_ms),
            f2(a.best.mean_total_ms),
            a.best.location,
            if pays { "**yes**" } else { "no" },
            slowdowns.join("; "),
            one,
            twenty,
            f2(rented_break_even_rate(p.local_per_hour, one / 1000.0)),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;

    #[test]
    fn one_row_per_dataset_from_its_figures() {
        let f = crate::report::tests::fitted();
        let best = Summary {
            dataset: "small".into(),
            location: "local watch".into(),
            images: 1,
            succeeded: 1,
            mean_bytes: 100_000.0,
            mean_inference_ms: 10.0,
            mean_upload_ms: 2.0,
            mean_server_total_ms: 15.0,
            mean_total_ms: 21.0,
            p50_ms: 21.0,
            p90_ms: 21.0,
            p99_ms: 21.0,
            images_per_s: 40.0,
            wall_s: 1.0,
            cold_starts: 0,
            ran_remote: 1,
        };
        let compute = vec![
            ArchCompute {
                arch: Arch::Arm64,
                ms: 15.0,
                source: Source::EstimatedFrom(Arch::X86_64),
            },
            ArchCompute {
                arch: Arch::X86_64,
                ms: 15.0,
                source: Source::Measured,
            },
        ];
        let answers = [Answer {
            fitted: &f,
            best: &best,
            links: vec![
                ("local watch".into(), f64::INFINITY, 0.0),
                ("slow link".into(), 10.0, 60.0),
            ],
            compute,
        }];
        let md = section(&answers, &Prices::default());
        // local watch: 20 ms / 20 ms = 1x; slow link: 160 ms / 20 ms = 8x.
        assert!(
            md.contains("| small | 20.00 ms vs 21.00 ms (local watch) | no | 1.00x over local watch; 8.00x over slow link |"),
            "{md}"
        );
        // arm64's GB-s is cheaper: it is the row's architecture, labelled an estimate.
        assert!(md.contains("(arm64, estimate from x86_64) |"), "{md}");
    }
}
