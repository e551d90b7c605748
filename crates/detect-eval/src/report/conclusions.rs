//! The answer per dataset in one table at the top of the report: does offloading pay here, for
//! which slower local devices over which link, and at what cost; and what of it was measured,
//! emulated or modelled.

use std::fmt::Write;

use super::client_speed::{break_even_slowdown, Link};
use super::economics::{cheapest, rented_break_even_rate};
use super::{f2, seed, Fitted};
use crate::model::{ArchCompute, Prices, Source};
use crate::rows::{Row, Summary};
use crate::stats::{mean, mean_95, mean_difference_95};

/// How the fastest offloaded run compares with the local (in-process) one, for time.
///
/// Two intervals stand between a difference and a verdict. Within the runs: the 95 % interval
/// of the difference, over the images both runs timed when they share image ids (paired: the
/// images' own spread cancels), else of the two means (Welch). Between runs: the runs are made
/// one after another, and the same binary's means move by several per cent between runs on a
/// shared machine; a difference smaller than `drift_pct` of the local time is no answer either
/// way, however narrow the first interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// Offloaded minus local, ms per image.
    pub diff_ms: f64,
    /// Half-width of the 95 % interval of `diff_ms` within the runs (NaN with too few images).
    pub half_width_ms: f64,
    /// How many images were paired by id (0: the two runs' means compared).
    pub paired: usize,
    /// The drift allowed between runs, ms: `drift_pct` of the local time.
    pub drift_ms: f64,
    pub drift_pct: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Pays,
    DoesNot,
    Unclear,
}

/// The successful rows of one summary's run.
fn run_rows<'a>(rows: &'a [Row], s: &'a Summary) -> impl Iterator<Item = &'a Row> + 'a {
    rows.iter()
        .filter(move |r| r.dataset == s.dataset && r.location == s.location && r.ok())
}

impl Comparison {
    /// `rows`: the measured rows; the offloaded run's cold-start rows are left out of the
    /// pairing (the penalty has its own section).
    pub fn new(local: &Summary, offloaded: &Summary, rows: &[Row], drift_pct: f64) -> Self {
        let mut here = std::collections::HashMap::new();
        for r in run_rows(rows, local) {
            here.entry(r.id.as_str()).or_insert(r.rtt_ms);
        }
        let diffs: Vec<f64> = run_rows(rows, offloaded)
            .filter(|r| !r.cold_start)
            .filter_map(|r| here.get(r.id.as_str()).map(|l| r.rtt_ms - l))
            .collect();
        let (diff_ms, half_width_ms, paired) = if diffs.len() >= 2 {
            (mean(diffs.iter().copied()), mean_95(&diffs), diffs.len())
        } else {
            let half = mean_difference_95(
                (local.sd_ms, local.succeeded),
                (offloaded.sd_ms, offloaded.succeeded),
            );
            (offloaded.mean_total_ms - local.mean_total_ms, half, 0)
        };
        Comparison {
            diff_ms,
            half_width_ms,
            paired,
            drift_ms: local.mean_total_ms * drift_pct / 100.0,
            drift_pct,
        }
    }

    /// Yes or no only when the difference clears both intervals; with too few images to
    /// tell (a NaN anywhere), no answer.
    pub fn verdict(&self) -> Verdict {
        let size = self.diff_ms.abs();
        if !(self.half_width_ms.is_finite() && size > self.half_width_ms && size > self.drift_ms) {
            Verdict::Unclear
        } else if self.diff_ms < 0.0 {
            Verdict::Pays
        } else {
            Verdict::DoesNot
        }
    }

    /// The difference and its intervals in a few words.
    pub fn describe(&self) -> String {
        let within = if self.half_width_ms.is_finite() {
            format!("± {} ms (95 %)", f2(self.half_width_ms))
        } else {
            "too few images for an interval".to_string()
        };
        let over = if self.paired > 0 {
            format!("over the {} images both runs timed", self.paired)
        } else {
            "between the two runs' means".to_string()
        };
        format!(
            "offloaded − local {over}: {:+.2} ms {within}; drift allowed between runs: {} % = {} ms",
            self.diff_ms,
            f2(self.drift_pct),
            f2(self.drift_ms)
        )
    }
}

/// What the table needs of one dataset.
pub struct Answer<'a> {
    pub fitted: &'a Fitted,
    /// The in-process run the model's local time comes from.
    pub local: &'a Summary,
    /// The fastest offloaded run measured for the dataset, and how it compares.
    pub best: &'a Summary,
    pub comparison: Comparison,
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
        let pays = match a.comparison.verdict() {
            Verdict::Pays => "**yes**".to_string(),
            Verdict::DoesNot => "no".to_string(),
            Verdict::Unclear => format!("no clear difference ({})", a.comparison.describe()),
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
            f2(a.local.mean_total_ms),
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

/// The answer for one dataset in words: the verdict, the fastest and the slowest of its
/// offloaded runs (`remotes`) against the local one, and the seed's own ratio.
pub fn worth_it_here(a: &Answer, remotes: &[&Summary]) -> String {
    let (d, local, best, cmp) = (&a.fitted.dataset, a.local, a.best, &a.comparison);
    let ratio = |s: &Summary| f2(s.mean_total_ms / local.mean_total_ms);
    let slowest = remotes
        .iter()
        .max_by(|a, b| a.mean_total_ms.total_cmp(&b.mean_total_ms))
        .filter(|s| s.location != best.location)
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
    let (head, how) = match cmp.verdict() {
        Verdict::Pays => ("**Yes, for time.**", "as long"),
        Verdict::DoesNot => ("**No.**", "as long"),
        Verdict::Unclear => ("**No clear difference.**", "as long, too close to call"),
    };
    format!(
        "{head} Here an image takes {here} ms; the fastest offloaded variant (\"{}\") takes {there} ms, {}x {how}{slowest}. {}; a difference counts when it clears both.{seed}\n",
        best.location,
        ratio(best),
        upper_first(&cmp.describe()),
    )
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;
    use crate::rows::summarize;

    /// A run of `rtts.len()` images, ids img0, img1, ...
    fn run(location: &str, rtts: &[f64]) -> Vec<Row> {
        rtts.iter()
            .enumerate()
            .map(|(i, &rtt)| Row {
                dataset: "small".into(),
                location: location.into(),
                id: format!("img{i}"),
                bytes: 100_000,
                upload_ms: 0.0,
                rtt_ms: rtt,
                inference_ms: 5.0,
                server_total_ms: rtt,
                status: 200,
                detections: 1,
                cold_start: false,
                ran: "remote".into(),
                reason: "fixed".into(),
                done_at_ms: 0.0,
                init_ms: None,
            })
            .collect()
    }

    /// The comparison of `there` against `here` (ms per image, image by image).
    fn compare(here: &[f64], there: &[f64], drift_pct: f64) -> Comparison {
        let rows = [run("in-process", here), run("watch", there)].concat();
        let sums = summarize(&rows);
        Comparison::new(&sums[0], &sums[1], &rows, drift_pct)
    }

    /// Images of 10–40 ms: a wide spread between images.
    fn images(n: usize) -> Vec<f64> {
        (0..n).map(|i| 10.0 + (i * 7 % 31) as f64).collect()
    }

    #[test]
    fn paired_images_see_a_small_steady_difference_that_the_means_cannot() {
        let here = images(100);
        // Every image 0.5 ms faster, give or take 0.1.
        let there: Vec<f64> = here
            .iter()
            .enumerate()
            .map(|(i, v)| v - 0.5 + if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let c = compare(&here, &there, 0.0);
        assert_eq!(c.paired, 100);
        assert!((c.diff_ms + 0.5).abs() < 1e-9, "{c:?}");
        assert!(c.half_width_ms < 0.05, "{c:?}");
        assert_eq!(c.verdict(), Verdict::Pays);
        // The same times under other ids: only the means, whose interval covers it.
        let mut rows = [run("in-process", &here), run("watch", &there)].concat();
        for r in rows.iter_mut().filter(|r| r.location == "watch") {
            r.id.push('x');
        }
        let sums = summarize(&rows);
        let c = Comparison::new(&sums[0], &sums[1], &rows, 0.0);
        assert_eq!(c.paired, 0);
        assert!(c.half_width_ms > 1.0, "{c:?}");
        assert_eq!(c.verdict(), Verdict::Unclear);
    }

    #[test]
    fn a_difference_must_also_clear_the_drift_between_runs() {
        let here = images(100);
        // 1 ms slower on every image: clear within the runs, under 8 % of ~25 ms.
        let there: Vec<f64> = here.iter().map(|v| v + 1.0).collect();
        assert_eq!(compare(&here, &there, 0.0).verdict(), Verdict::DoesNot);
        let c = compare(&here, &there, 8.0);
        assert!(c.drift_ms > 1.0, "{c:?}");
        assert_eq!(c.verdict(), Verdict::Unclear);
        let slower: Vec<f64> = here.iter().map(|v| v * 1.2).collect();
        assert_eq!(compare(&here, &slower, 8.0).verdict(), Verdict::DoesNot);
    }

    #[test]
    fn too_few_images_give_no_answer_and_cold_rows_are_not_paired() {
        // One image each: no interval.
        let c = compare(&[20.0], &[10.0], 0.0);
        assert!(c.half_width_ms.is_nan());
        assert_eq!(c.verdict(), Verdict::Unclear);
        assert!(
            c.describe().contains("too few images for an interval"),
            "{}",
            c.describe()
        );
        // A cold first request is left out of the pairs.
        let mut rows = [run("in-process", &images(10)), run("watch", &images(10))].concat();
        rows[10].cold_start = true;
        rows[10].rtt_ms += 500.0;
        let sums = summarize(&rows);
        let c = Comparison::new(&sums[0], &sums[1], &rows, 0.0);
        assert_eq!((c.paired, c.diff_ms), (9, 0.0));
    }

    #[test]
    fn the_words_follow_the_verdict() {
        let here = images(100);
        let near: Vec<f64> = here.iter().map(|v| v - 0.5).collect();
        let far: Vec<f64> = here.iter().map(|v| v * 4.0).collect();
        let rows = [
            run("in-process", &here),
            run("watch", &near),
            run("link", &far),
        ]
        .concat();
        let sums = summarize(&rows);
        let (local, near, far) = (&sums[0], &sums[1], &sums[2]);
        let small = crate::report::tests::fitted();
        let other = Fitted {
            dataset: "other".into(),
            ..small.clone()
        };
        let words = |f: &Fitted, best: &Summary, remotes: &[&Summary], drift_pct: f64| {
            let a = Answer {
                fitted: f,
                local,
                best,
                comparison: Comparison::new(local, best, &rows, drift_pct),
                links: vec![],
                compute: vec![],
            };
            worth_it_here(&a, remotes)
        };
        let md = words(&small, near, &[near, far], 8.0);
        assert!(
            md.starts_with("**No clear difference.** Here an image takes 24.80 ms; the fastest offloaded variant (\"watch\") takes 24.30 ms, 0.98x as long, too close to call, and the slowest (\"link\") 4.00x. Offloaded − local over the 100 images both runs timed: -0.50 ms ± 0.00 ms (95 %); drift allowed between runs: 8.00 % = 1.98 ms; a difference counts when it clears both."),
            "{md}"
        );
        assert!(
            md.contains("The seed's remote took 1.61x its local time on small."),
            "{md}"
        );
        let md = words(&small, near, &[near], 0.0);
        assert!(
            md.starts_with("**Yes, for time.** Here an image takes 24.80 ms"),
            "{md}"
        );
        let md = words(&other, far, &[far], 8.0);
        assert!(md.starts_with("**No.** Here an image takes 24.80 ms; the fastest offloaded variant (\"link\") takes 99.20 ms, 4.00x as long."), "{md}");
    }

    #[test]
    fn one_row_per_dataset_from_its_figures() {
        let f = crate::report::tests::fitted();
        let rows = [
            run("in-process", &[20.0; 4]),
            run("local watch", &[21.0; 4]),
        ]
        .concat();
        let sums = summarize(&rows);
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
            local: &sums[0],
            best: &sums[1],
            comparison: Comparison::new(&sums[0], &sums[1], &rows, 0.0),
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
