//! The answer per dataset in one table at the top of the report: does offloading pay here, for
//! which slower local devices over which link, and at what cost; and what of it was measured,
//! emulated or modelled.

use std::fmt::Write;

use super::client_speed::{break_even_slowdown, Link};
use super::economics::{cheapest, rented_break_even_rate};
use super::{f2, seed, Fitted};
use crate::model::{ArchCompute, Prices, Source};
use crate::rows::Summary;
use crate::stats::mean_difference_95;

/// Whether offloading beats running here, for time. The two means come from runs of hundreds
/// of images each; a difference inside the 95 % interval of the difference of the means is no
/// answer either way (the local watch runs the same code on the same CPU, so it lands there).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Pays,
    DoesNot,
    Unclear { half_width_ms: f64 },
}

pub fn verdict(local: &Summary, offloaded: &Summary) -> Verdict {
    let half_width_ms = mean_difference_95(
        (local.sd_ms, local.succeeded),
        (offloaded.sd_ms, offloaded.succeeded),
    );
    let diff = offloaded.mean_total_ms - local.mean_total_ms;
    // Without a spread (a run of one image) the interval is NaN and the sign decides.
    if diff.abs() <= half_width_ms {
        Verdict::Unclear { half_width_ms }
    } else if diff < 0.0 {
        Verdict::Pays
    } else {
        Verdict::DoesNot
    }
}

/// What the table needs of one dataset.
pub struct Answer<'a> {
    pub fitted: &'a Fitted,
    /// The in-process run the model's local time comes from.
    pub local: &'a Summary,
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
        let pays = match verdict(a.local, a.best) {
            Verdict::Pays => "**yes**".to_string(),
            Verdict::DoesNot => "no".to_string(),
            Verdict::Unclear { half_width_ms } => {
                format!("no clear difference (±{} ms, 95 %)", f2(half_width_ms))
            }
        };
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
            pays,
            slowdowns.join("; "),
            one,
            twenty,
            f2(rented_break_even_rate(p.local_per_hour, one / 1000.0)),
        );
    }
    md
}

/// The answer for one dataset in words: the verdict, the fastest and the slowest offloaded
/// run against the local one, and the seed's own ratio.
pub fn worth_it_here(d: &str, local: &Summary, best: &Summary, remotes: &[&Summary]) -> String {
    let ratio = |s: &Summary| f2(s.mean_total_ms / local.mean_total_ms);
    let slowest = remotes
        .iter()
        .max_by(|a, b| a.mean_total_ms.total_cmp(&b.mean_total_ms))
        .map_or(String::new(), |s| {
            format!(", and the slowest (\"{}\") {}x", s.location, ratio(s))
        });
    let seed = match (seed::seed_ms(d, false), seed::seed_ms(d, true)) {
        (Some((l, _)), Some((r, _))) => {
            format!(
                " (The seed's remote took {}x its local time on {d}.)",
                f2(r / l)
            )
        }
        _ => String::new(),
    };
    let (here, there) = (f2(local.mean_total_ms), f2(best.mean_total_ms));
    match verdict(local, best) {
        Verdict::Pays => format!(
            "**Yes, for time**: offloaded to \"{}\" an image takes {there} ms, {}x the {here} ms it takes here{slowest}.{seed}\n",
            best.location,
            ratio(best)
        ),
        Verdict::DoesNot => format!(
            "**No.** Here an image takes {here} ms; the fastest offloaded variant (\"{}\") takes {there} ms, {}x as long{slowest}.{seed}\n",
            best.location,
            ratio(best)
        ),
        Verdict::Unclear { half_width_ms } => format!(
            "**No clear difference.** Here an image takes {here} ms; the fastest offloaded variant (\"{}\") takes {there} ms ({}x), inside the 95 % interval of the difference of the two means (±{} ms){slowest}. The runs were made one after another, and drift between runs on this machine can be as large.{seed}\n",
            best.location,
            ratio(best),
            f2(half_width_ms)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;

    fn summary(location: &str, mean: f64, sd: f64, n: usize) -> Summary {
        Summary {
            dataset: "small".into(),
            location: location.into(),
            images: n,
            succeeded: n,
            mean_bytes: 100_000.0,
            mean_inference_ms: 10.0,
            mean_upload_ms: 2.0,
            mean_server_total_ms: 15.0,
            mean_total_ms: mean,
            sd_ms: sd,
            p50_ms: mean,
            p90_ms: mean,
            p99_ms: mean,
            images_per_s: 40.0,
            wall_s: 1.0,
            cold_starts: 0,
            ran_remote: n,
        }
    }

    #[test]
    fn a_difference_inside_the_interval_is_no_answer() {
        // sd 5 over 100 images each: half-width 1.96 * sqrt(0.25 + 0.25) = 1.386 ms.
        let local = summary("in-process", 20.0, 5.0, 100);
        let v = |mean| verdict(&local, &summary("local watch", mean, 5.0, 100));
        assert_eq!(v(17.0), Verdict::Pays);
        assert_eq!(v(23.0), Verdict::DoesNot);
        let Verdict::Unclear { half_width_ms } = v(19.0) else {
            panic!("1 ms faster is inside the interval");
        };
        assert!((half_width_ms - 1.96 * 0.5f64.sqrt()).abs() < 1e-9);
        assert!(matches!(v(21.3), Verdict::Unclear { .. }));
        // One image each: no spread, the sign decides.
        let one = summary("in-process", 20.0, f64::NAN, 1);
        assert_eq!(
            verdict(&one, &summary("x", 19.9, f64::NAN, 1)),
            Verdict::Pays
        );
    }

    #[test]
    fn the_words_follow_the_verdict() {
        let local = summary("in-process", 20.0, 5.0, 100);
        let (near, slow) = (
            summary("watch", 19.0, 5.0, 100),
            summary("link", 80.0, 5.0, 100),
        );
        let remotes = [&near, &slow];
        let md = worth_it_here("small", &local, &near, &remotes);
        assert!(md.starts_with("**No clear difference.** Here an image takes 20.00 ms; the fastest offloaded variant (\"watch\") takes 19.00 ms (0.95x), inside the 95 % interval of the difference of the two means (±1.39 ms), and the slowest (\"link\") 4.00x. The runs were made"), "{md}");
        assert!(
            md.contains("The seed's remote took 1.61x its local time on small."),
            "{md}"
        );
        let md = worth_it_here("small", &local, &slow, &[&slow]);
        assert!(md.starts_with("**No.** Here an image takes 20.00 ms; the fastest offloaded variant (\"link\") takes 80.00 ms, 4.00x as long"), "{md}");
        let fast = summary("fast", 10.0, 1.0, 100);
        let md = worth_it_here("other", &local, &fast, &[&fast]);
        assert!(md.starts_with("**Yes, for time**: offloaded to \"fast\" an image takes 10.00 ms, 0.50x the 20.00 ms it takes here"), "{md}");
    }

    #[test]
    fn one_row_per_dataset_from_its_figures() {
        let f = crate::report::tests::fitted();
        let local = summary("in-process", 20.0, 2.0, 100);
        let best = summary("local watch", 21.0, f64::NAN, 1);
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
            local: &local,
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
