//! `detect report`: Markdown + SVG from result rows. Every number and every sentence that
//! states a conclusion is computed from the rows and the model; nothing is written in advance.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::model::{
    compute_by_arch, lambda_compute_ms, local_cost_per_1000, rekognition_cost_per_1000,
    transfer_ms, Arch, Prices, Scenario,
};
use super::rows::{summarize, Row, Summary};

mod charts;
mod client_speed;
pub mod cold;
mod conclusions;
mod economics;
pub mod seed;

use charts::{bandwidth_svg, bars_svg, cdf_svg, cost_svg};

#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub machine: Option<String>,
    pub date: Option<String>,
    pub prices: Prices,
    /// Penalty of one cold start (ms) when the rows show none to measure it from.
    pub cold_start_ms: f64,
    /// Input files, named in the report.
    pub inputs: Vec<String>,
    /// The architecture the rows' remote (the function) ran on: its time prices that Lambda
    /// architecture as measured; the other is labelled an estimate.
    pub remote_arch: Option<Arch>,
    /// Compute per image (one vCPU, ms) measured elsewhere on an architecture, e.g. on a
    /// deployed arm64 function: used for that architecture's prices instead of an estimate.
    pub compute_ms: Vec<(Arch, f64)>,
    /// The drift allowed between runs made one after another, % of the local time: a smaller
    /// difference between local and offloaded is no answer (see `conclusions::Comparison`).
    pub drift_pct: f64,
}

/// The default drift allowance: on 2026-12-06 the same binary's in-process and local-watch
/// means moved by up to 7.7 % between two study runs an hour apart on a quiet 2-core machine.
pub const DRIFT_PCT: f64 = 8.0;

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            machine: None,
            date: None,
            prices: Prices::default(),
            cold_start_ms: 150.0,
            inputs: Vec::new(),
            remote_arch: Arch::this_build(),
            compute_ms: Vec::new(),
            drift_pct: DRIFT_PCT,
        }
    }
}

/// (Mbit/s, added round trip ms) from a location label such as "emulated 10 Mbit/s + 60 ms".
pub fn link_of(location: &str) -> Option<(f64, f64)> {
    let t: Vec<&str> = location.split_whitespace().collect();
    let mbit = t
        .iter()
        .position(|w| w.starts_with("Mbit"))
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| t[i].parse::<f64>().ok())?;
    let delay = t
        .iter()
        .position(|w| *w == "+")
        .and_then(|i| t.get(i + 1))
        .and_then(|w| w.parse::<f64>().ok())
        .unwrap_or(0.0);
    Some((mbit, delay))
}

fn is_local(s: &Summary) -> bool {
    s.ran_remote == 0
}

fn f2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

/// The columns of the per dataset × location table, in order (the test parses them back).
pub const TABLE_COLUMNS: [&str; 15] = [
    "dataset",
    "location",
    "images",
    "ok",
    "mean KB",
    "inference ms",
    "upload ms",
    "server total ms",
    "total ms",
    "sd ms",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "images/s",
    "cold starts",
];

fn table_row(s: &Summary) -> Vec<String> {
    vec![
        s.dataset.clone(),
        s.location.clone(),
        s.images.to_string(),
        s.succeeded.to_string(),
        f2(s.mean_bytes / 1000.0),
        f2(s.mean_inference_ms),
        f2(s.mean_upload_ms),
        f2(s.mean_server_total_ms),
        f2(s.mean_total_ms),
        f2(s.sd_ms),
        f2(s.p50_ms),
        f2(s.p90_ms),
        f2(s.p99_ms),
        f2(s.images_per_s),
        s.cold_starts.to_string(),
    ]
}

/// The model's inputs for one dataset, from its summaries.
#[derive(Clone, Debug)]
pub struct Fitted {
    pub dataset: String,
    /// In-process time per image.
    pub local_ms: f64,
    /// This machine's throughput: the fastest of its in-process runs.
    pub local_images_per_s: f64,
    /// Mean server-side time per image (the function's own total).
    pub remote_compute_ms: f64,
    /// Round trip minus server time with no emulated link (HTTP, the emulator, JSON).
    pub overhead_ms: f64,
    pub payload_bytes: f64,
    pub cold_start_rate: f64,
    pub cold_start_ms: f64,
    /// Where the penalty came from (measured restarts, cold requests in the runs, or the
    /// assumed `--cold-start-ms`), for the report's text.
    pub cold_source: String,
    /// Where the remote figures came from.
    pub remote_from: String,
}

impl Fitted {
    pub fn scenario(&self, mbit: f64, added_rtt_ms: f64) -> Scenario {
        Scenario {
            local_ms: self.local_ms,
            remote_compute_ms: self.remote_compute_ms,
            payload_bytes: self.payload_bytes,
            uplink_mbit: mbit,
            rtt_ms: self.overhead_ms + added_rtt_ms,
            cold_start_rate: self.cold_start_rate,
            cold_start_ms: self.cold_start_ms,
        }
    }
}

/// Fit the model for a dataset: local from the in-process rows, remote compute and overhead
/// from the remote location without an emulated link (else the first remote one).
pub fn fit(dataset: &str, sums: &[Summary], rows: &[Row], opts: &ReportOptions) -> Option<Fitted> {
    let mine: Vec<&Summary> = sums.iter().filter(|s| s.dataset == dataset).collect();
    let local = mine.iter().find(|s| is_local(s))?;
    let remotes: Vec<&&Summary> = mine.iter().filter(|s| !is_local(s)).collect();
    let remote = remotes
        .iter()
        .find(|s| link_of(&s.location).is_none())
        .or_else(|| remotes.first())?;
    let (_, delay) = link_of(&remote.location).unwrap_or((0.0, 0.0));
    let remote_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.dataset == dataset && r.ran == "remote" && r.ok())
        .filter(|r| !cold::is_probe(&r.location))
        .collect();
    let cold: Vec<&&Row> = remote_rows.iter().filter(|r| r.cold_start).collect();
    let cold_start_rate = cold.len() as f64 / remote_rows.len().max(1) as f64;
    let (cold_start_ms, cold_source) = if let Some(c) = cold::measure(rows) {
        (
            c.median_ms,
            format!(
                "measured: median of {} restarts, range {}–{} ms",
                c.restarts.len(),
                f2(c.min_ms),
                f2(c.max_ms)
            ),
        )
    } else if cold.is_empty() {
        (
            opts.cold_start_ms,
            "assumed: no cold request in the rows, --cold-start-ms".to_string(),
        )
    } else {
        let warm: Vec<f64> = remote_rows
            .iter()
            .filter(|r| !r.cold_start && r.location == cold[0].location)
            .map(|r| r.rtt_ms)
            .collect();
        let warm_mean = warm.iter().sum::<f64>() / warm.len().max(1) as f64;
        let cold_mean = cold.iter().map(|r| r.rtt_ms).sum::<f64>() / cold.len() as f64;
        (
            (cold_mean - warm_mean).max(0.0),
            format!(
                "measured: {} cold request(s) against the warm mean",
                cold.len()
            ),
        )
    };
    Some(Fitted {
        dataset: dataset.into(),
        local_ms: local.mean_total_ms,
        // What this machine serves at most: its fastest local run (two images at once on
        // both cores, where the study ran one).
        local_images_per_s: mine
            .iter()
            .filter(|s| is_local(s))
            .map(|s| s.images_per_s)
            .fold(local.images_per_s, f64::max),
        remote_compute_ms: remote.mean_server_total_ms,
        overhead_ms: (remote.mean_total_ms - remote.mean_server_total_ms - delay).max(0.0),
        payload_bytes: remote.mean_bytes,
        cold_start_rate,
        cold_start_ms,
        cold_source,
        remote_from: remote.location.clone(),
    })
}

/// The rows of the measured runs: all but the cold-start probes (they have their own section).
fn measured_rows(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .filter(|r| !cold::is_probe(&r.location))
        .cloned()
        .collect()
}

/// The emulated links measured for a dataset: (location, Mbit/s, added round trip ms).
fn links_of(dataset: &str, sums: &[Summary]) -> Vec<client_speed::Link> {
    sums.iter()
        .filter(|s| s.dataset == dataset)
        .filter_map(|s| link_of(&s.location).map(|(m, dl)| (s.location.clone(), m, dl)))
        .collect()
}

/// The links of the break-even map: the fitted remote without an added link (the local
/// watch: infinite uplink, no added round trip), then the emulated ones.
fn map_links(f: &Fitted, links: &[client_speed::Link]) -> Vec<client_speed::Link> {
    let mut all = vec![(f.remote_from.clone(), f64::INFINITY, 0.0)];
    all.extend(links.iter().cloned());
    all
}

/// The fastest offloaded run measured for a dataset.
fn fastest_offloaded<'a>(dataset: &str, sums: &'a [Summary]) -> Option<&'a Summary> {
    sums.iter()
        .filter(|s| s.dataset == dataset && !is_local(s))
        .min_by(|a, b| a.mean_total_ms.total_cmp(&b.mean_total_ms))
}

/// The report: (Markdown, [(file name, SVG)]).
pub fn render(rows: &[Row], opts: &ReportOptions) -> (String, Vec<(String, String)>) {
    // The cold-start probes have their own section; every table and chart else is about the
    // measured runs.
    let measured = measured_rows(rows);
    let sums = summarize(&measured);
    let mut md = String::new();
    let mut svgs = Vec::new();
    let _ = writeln!(md, "# Offload evaluation report\n");
    let _ = writeln!(
        md,
        "Generated by `detect report`{}{}. Rows: {} images from {}.\n",
        opts.date
            .as_ref()
            .map(|d| format!(" on {d}"))
            .unwrap_or_default(),
        opts.machine
            .as_ref()
            .map(|m| format!(", machine: {m}"))
            .unwrap_or_default(),
        rows.len(),
        if opts.inputs.is_empty() {
            "the given files".to_string()
        } else {
            opts.inputs.join(", ")
        }
    );
    let emulated: Vec<&Summary> = sums
        .iter()
        .filter(|s| link_of(&s.location).is_some())
        .collect();
    if !emulated.is_empty() {
        let _ = writeln!(
            md,
            "Locations named *emulated* are **emulated**: the same function under `cargo lambda watch` on this machine, reached through `detect proxy` (a user-space link with that bandwidth and added round trip). They are not measurements of AWS.\n"
        );
    }

    // The seed's Table 3.
    let datasets: Vec<String> = {
        let mut d: Vec<String> = Vec::new();
        for s in &sums {
            if !d.contains(&s.dataset) {
                d.push(s.dataset.clone());
            }
        }
        d
    };
    let mut locations: Vec<String> = Vec::new();
    for s in &sums {
        if !locations.contains(&s.location) {
            locations.push(s.location.clone());
        }
    }
    let _ = writeln!(md, "## Mean time per image (ms), by dataset and location\n");
    let _ = writeln!(md, "| location | {} |", datasets.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(datasets.len()));
    for loc in &locations {
        let cells: Vec<String> = datasets
            .iter()
            .map(|d| {
                sums.iter()
                    .find(|s| &s.dataset == d && &s.location == loc)
                    .map_or("-".into(), |s| f2(s.mean_total_ms))
            })
            .collect();
        let _ = writeln!(md, "| {loc} | {} |", cells.join(" | "));
    }
    let _ = writeln!(
        md,
        "\nTime per image = the client's round trip per image (in-process: the whole pipeline).\n"
    );

    let _ = writeln!(
        md,
        "## The seed's table, filled in by this system
"
    );
    let _ = writeln!(
        md,
        "The seed (Flask + TensorFlow MobileNet SSD v2 in Docker, 2023) measured its local machine and an EC2 t2.large; each row here sits beside the seed's figure for the same kind of location (in-process and the local watch beside its local, the links beside its remote). *speed-up vs seed* = the seed's time per image / this row's. *wall s* = the run from its start to its last answer (the seed reported none).\n"
    );
    let _ = writeln!(md, "{}", seed::table(&sums));

    let _ = writeln!(md, "## Every dataset × location\n");
    let _ = writeln!(md, "| {} |", TABLE_COLUMNS.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "---:|".repeat(TABLE_COLUMNS.len() - 2));
    for s in &sums {
        let _ = writeln!(md, "| {} |", table_row(s).join(" | "));
    }
    let _ = writeln!(
        md,
        "\nMeans over successful images. *upload* = time to the response headers minus the server's request time (the network and HTTP share of the round trip before the answer starts; 0 in-process). *server total* = the function's own decode-to-postprocess time. *sd* = standard deviation of the time per image. *images/s* = images / wall time of the run (requests in sequence unless the run used `--concurrency`).\n"
    );
    // One pair of charts per dataset: with every dataset in one, 15 bar groups leave no room
    // for their labels and 15 curves share 8 colours.
    for d in &datasets {
        let mine: Vec<Summary> = sums.iter().filter(|s| &s.dataset == d).cloned().collect();
        svgs.push((format!("times-{d}.svg"), bars_svg(&mine).text));
        svgs.push((format!("cdf-{d}.svg"), cdf_svg(&measured, &mine).text));
        let _ = writeln!(
            md,
            "![Mean inference, upload and total time per image, {d}](times-{d}.svg)\n\n![Latency CDF, {d}](cdf-{d}.svg)\n"
        );
    }
    if let Some(c) = cold::measure(rows) {
        let _ = writeln!(md, "{}", cold::section(&c));
    }

    // The answer per dataset first, then the model and the questions, per dataset.
    let fits: Vec<(String, Option<Fitted>)> = datasets
        .iter()
        .map(|d| (d.clone(), fit(d, &sums, rows, opts)))
        .collect();
    let answers: Vec<conclusions::Answer> = fits
        .iter()
        .filter_map(|(d, f)| {
            let f = f.as_ref()?;
            let local = sums.iter().find(|s| &s.dataset == d && is_local(s))?;
            let best = fastest_offloaded(d, &sums)?;
            Some(conclusions::Answer {
                fitted: f,
                local,
                best,
                comparison: conclusions::Comparison::new(local, best, &measured, opts.drift_pct),
                links: map_links(f, &links_of(d, &sums)),
                compute: compute_by_arch(f.remote_compute_ms, opts.remote_arch, &opts.compute_ms),
            })
        })
        .collect();
    if !answers.is_empty() {
        let _ = writeln!(md, "{}", conclusions::section(&answers, &opts.prices));
    }
    for (d, f) in &fits {
        let Some(f) = f.clone() else {
            let _ = writeln!(
                md,
                "## {d}: no model\n\nThe model needs an in-process run and a remote run of the same dataset.\n"
            );
            continue;
        };
        let links = links_of(d, &sums);
        // The dataset's answer: fit found its local and offloaded runs.
        let answer = answers
            .iter()
            .find(|a| &a.fitted.dataset == d)
            .expect("an answer per fitted dataset");
        let local_sum = answer.local;
        let remotes: Vec<&Summary> = sums
            .iter()
            .filter(|s| &s.dataset == d && !is_local(s))
            .collect();
        let _ = writeln!(md, "## {d}: the model\n");
        let _ = writeln!(
            md,
            "Fitted from the measurements: local {} ms per image (in-process), remote compute {} ms (the function's own time, from \"{}\"), fixed round-trip overhead {} ms (HTTP + emulator, no added delay), payload {} KB per image, cold starts {} of remote requests (penalty {} ms, {}). Offloaded time per image = overhead + added round trip + payload·8 / uplink + remote compute + cold-start rate · penalty.\n",
            f2(f.local_ms), f2(f.remote_compute_ms), f.remote_from, f2(f.overhead_ms),
            f2(f.payload_bytes / 1000.0), f2(f.cold_start_rate * 100.0) + " %", f2(f.cold_start_ms),
            f.cold_source
        );
        if !links.is_empty() {
            let _ = writeln!(
                md,
                "| profile | measured ms | model ms | model error | break-even uplink at this round trip | break-even remote speed-up at this link |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
            for (loc, mbit, delay) in &links {
                let s = sums
                    .iter()
                    .find(|s| &s.dataset == d && &s.location == loc)
                    .expect("listed");
                let sc = f.scenario(*mbit, *delay);
                let m = sc.offload_ms();
                let _ = writeln!(
                    md,
                    "| {loc} | {} | {} | {} % | {} | {} |",
                    f2(s.mean_total_ms),
                    f2(m),
                    f2((m / s.mean_total_ms - 1.0) * 100.0),
                    sc.break_even_bandwidth_mbit()
                        .map_or("never".into(), |b| format!("{} Mbit/s", f2(b))),
                    sc.break_even_speedup()
                        .map_or("none suffices".into(), |x| format!("{}x", f2(x)))
                );
            }
            let _ = writeln!(md);
        }
        svgs.push((
            format!("bandwidth-{d}.svg"),
            bandwidth_svg(&f, &sums, &links).text,
        ));
        let compute = compute_by_arch(f.remote_compute_ms, opts.remote_arch, &opts.compute_ms);
        svgs.push((
            format!("cost-{d}.svg"),
            cost_svg(&f, &opts.prices, &compute).text,
        ));
        let _ = writeln!(
            md,
            "![Time per image vs uplink bandwidth, {d}](bandwidth-{d}.svg)\n\n![Cost per 1000 images vs Lambda memory, {d}](cost-{d}.svg)\n"
        );

        // Question 1.
        let _ = writeln!(md, "### {d}: is offloading worth it here?\n");
        let _ = writeln!(md, "{}", conclusions::worth_it_here(answer, &remotes));

        // Question 2.
        let _ = writeln!(md, "### {d}: what would improve local and remote?\n");
        let inf_share = local_sum.mean_inference_ms / local_sum.mean_total_ms * 100.0;
        let _ = writeln!(
            md,
            "- **Local**: inference is {} % of the {} ms per image ({} ms); decoding, resizing and postprocessing the other {} %. A faster inference kernel pays in proportion. One image at a time this machine does {} images/s; {}",
            f2(inf_share),
            f2(local_sum.mean_total_ms),
            f2(local_sum.mean_inference_ms),
            f2(100.0 - inf_share),
            f2(local_sum.images_per_s),
            if f.local_images_per_s > local_sum.images_per_s * 1.001 {
                format!(
                    "with images in parallel on its cores, measured: {} images/s ({}x).",
                    f2(f.local_images_per_s),
                    f2(f.local_images_per_s / local_sum.images_per_s)
                )
            } else {
                "running images in parallel on its cores (`detect files --jobs N`) would raise that.".to_string()
            }
        );
        for s in &remotes {
            let net = s.mean_total_ms - s.mean_server_total_ms;
            let parts = [
                ("the function's compute", s.mean_server_total_ms),
                ("network and HTTP (upload, latency, response)", net),
            ];
            let (top, top_ms) = parts
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .copied()
                .unwrap_or(("", 0.0));
            let _ = writeln!(
                md,
                "- **{}**: {} ms per image, of which {} ms the function's compute and {} ms network and HTTP; the larger part is {} ({} %).",
                s.location,
                f2(s.mean_total_ms),
                f2(s.mean_server_total_ms),
                f2(net),
                top,
                f2(top_ms / s.mean_total_ms * 100.0)
            );
        }
        let _ = writeln!(
            md,
            "- Smaller payloads cut the network part linearly: at the mean {} KB per image, every 10 Mbit/s of uplink costs {} ms per image; resizing to the model's 300x300 on the client before sending would send a fraction of that.\n",
            f2(f.payload_bytes / 1000.0),
            f2(transfer_ms(f.payload_bytes, 10.0))
        );

        // Question 3.
        let _ = writeln!(md, "### {d}: when does offloading pay?\n");
        let s0 = f.scenario(1.0, 0.0);
        match s0.break_even_bandwidth_mbit() {
            Some(b) => {
                let _ = writeln!(
                    md,
                    "- With no added round trip, offloading is faster above **{} Mbit/s** of uplink.",
                    f2(b)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- **Never at any bandwidth** with this remote: its compute ({} ms) plus the fixed overhead ({} ms) already exceed the {} ms it takes here.",
                    f2(f.remote_compute_ms),
                    f2(f.overhead_ms),
                    f2(f.local_ms)
                );
            }
        }
        let inf_sc = Scenario {
            uplink_mbit: f64::INFINITY,
            ..s0
        };
        match inf_sc.break_even_speedup() {
            Some(x) => {
                let _ = writeln!(
                    md,
                    "- On an infinitely fast link with the measured overhead, the remote's compute would have to be **{}x** faster than the function's measured {} ms for offloading to break even.",
                    f2(x),
                    f2(f.remote_compute_ms)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- Even an infinitely fast remote on an infinitely fast link loses: the fixed overhead ({} ms) exceeds the local time ({} ms).",
                    f2(f.overhead_ms),
                    f2(f.local_ms)
                );
            }
        }
        if let Some(rtt) = inf_sc.break_even_rtt_ms() {
            let _ = writeln!(
                md,
                "- Upper bound on the round trip even with unlimited bandwidth: {} ms (local − remote compute − cold starts).",
                f2(rtt)
            );
        }
        // What a faster remote would need.
        let mut rtts: Vec<f64> = vec![0.0];
        for (_, _, dl) in &links {
            if !rtts.contains(dl) {
                rtts.push(*dl);
            }
        }
        let _ = writeln!(
            md,
            "- Break-even uplink if the remote computed k times faster than the measured function (e.g. more cores used per image, a GPU):\n"
        );
        let _ = writeln!(
            md,
            "  | remote speed-up | {} |",
            rtts.iter()
                .map(|r| format!("+{r} ms round trip"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(md, "  |---:|{}", "---:|".repeat(rtts.len()));
        for k in [1.0, 2.0, 4.0, 10.0] {
            let cells: Vec<String> = rtts
                .iter()
                .map(|r| {
                    let mut sc = f.scenario(1.0, *r);
                    sc.remote_compute_ms /= k;
                    sc.break_even_bandwidth_mbit()
                        .map_or("never".into(), |b| format!("{} Mbit/s", f2(b)))
                })
                .collect();
            let _ = writeln!(md, "  | {k}x | {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
        // Cost, per architecture, each with where its compute time comes from.
        let p = &opts.prices;
        let local_cost = local_cost_per_1000(p, f.local_images_per_s);
        let rekognition = rekognition_cost_per_1000(p);
        let mut parts = Vec::new();
        for c in &compute {
            let (m, cost) = economics::cheapest(p, c, 1.0);
            parts.push(format!(
                "Lambda {} at best ${cost:.4} ({m} MB, {} ms per image; {}; {}x this machine's cost, {}x cheaper than Rekognition)",
                c.arch.name(),
                f2(lambda_compute_ms(c.ms, m, 1.0)),
                c.provenance(),
                f2(cost / local_cost),
                f2(rekognition / cost),
            ));
        }
        let _ = writeln!(
            md,
            "- **Cost per 1000 images** (CPU share ∝ memory, this machine's core = 1 vCPU): {}; this machine kept busy at ${}/h ${local_cost:.4}; Rekognition ${rekognition:.2}.\n",
            parts.join("; "),
            p.local_per_hour,
        );
        // The seed's question for slower local devices, and what the service costs.
        let speed_links = map_links(&f, &links);
        let _ = writeln!(md, "{}", client_speed::section(&f, &speed_links));
        svgs.push((
            format!("client-speed-{d}.svg"),
            client_speed::svg(&f, &speed_links).text,
        ));
        let _ = writeln!(
            md,
            "![Break-even uplink vs local device slowdown, {d}](client-speed-{d}.svg)\n"
        );
        let _ = writeln!(
            md,
            "{}",
            economics::section(&f, p, &compute, f.local_images_per_s)
        );
    }
    let _ = writeln!(
        md,
        "## Prices used\n\nUSD, AWS us-east-1 list prices (2024; check before relying on them): Lambda ${}/GB-s arm64, ${}/GB-s x86_64, ${} per million requests; HTTP API ${} per million requests; Rekognition DetectLabels ${} per image; this machine ${}/h (EC2 t2.large on-demand, the seed's remote machine). Change them with `detect report --price-*`.",
        p_fmt(opts.prices.lambda_gb_s_arm64),
        p_fmt(opts.prices.lambda_gb_s_x86_64),
        opts.prices.lambda_per_million_requests,
        opts.prices.http_api_per_million_requests,
        opts.prices.rekognition_per_image,
        opts.prices.local_per_hour
    );
    (md, svgs)
}

fn p_fmt(v: f64) -> String {
    format!("{v:.10}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// Write README.md and the SVGs into `out`.
pub fn write_report(rows: &[Row], out: &Path, opts: &ReportOptions) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let (md, svgs) = render(rows, opts);
    std::fs::write(out.join("README.md"), md)?;
    for (name, svg) in svgs {
        std::fs::write(out.join(name), svg)?;
    }
    Ok(())
}

/// The per dataset × location table parsed back from a report: (dataset, location) → cells
/// by column name (for tests and tools that check the report against the rows).
pub fn parse_table(md: &str) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let header = format!("| {} |", TABLE_COLUMNS.join(" | "));
    let mut out = BTreeMap::new();
    let mut lines = md.lines().skip_while(|l| l.trim() != header);
    if lines.next().is_none() {
        return out;
    }
    lines.next(); // the |---| line
    for l in lines {
        if !l.starts_with('|') {
            break;
        }
        let cells: Vec<String> = l
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect();
        if cells.len() != TABLE_COLUMNS.len() {
            continue;
        }
        let map: BTreeMap<String, String> = TABLE_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .zip(cells.iter().cloned())
            .collect();
        out.insert((cells[0].clone(), cells[1].clone()), map);
    }
    out
}

/// Check a report's table against the rows: every cell equals the summary rounded as printed.
pub fn check_table(md: &str, rows: &[Row]) -> Result<usize, String> {
    let table = parse_table(md);
    let measured = measured_rows(rows);
    let sums = summarize(&measured);
    if table.len() != sums.len() {
        return Err(format!(
            "table has {} rows, the data {} dataset × location groups",
            table.len(),
            sums.len()
        ));
    }
    for s in &sums {
        let t = table
            .get(&(s.dataset.clone(), s.location.clone()))
            .ok_or_else(|| format!("{} / {} missing", s.dataset, s.location))?;
        for (col, want) in TABLE_COLUMNS.iter().zip(table_row(s)) {
            if t[*col] != want {
                return Err(format!(
                    "{} / {} {col}: report {} vs data {want}",
                    s.dataset, s.location, t[*col]
                ));
            }
        }
    }
    Ok(sums.len())
}

/// The Markdown tables of a text: each a run of consecutive lines starting with `|` (indented
/// too: tables inside list items), with the nearest heading above it (for messages).
fn tables(md: &str) -> Vec<(String, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    let (mut heading, mut current): (String, Vec<&str>) = (String::new(), Vec::new());
    for line in md.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.starts_with('|') {
            current.push(line);
            continue;
        }
        if !current.is_empty() {
            out.push((heading.clone(), std::mem::take(&mut current)));
        }
        if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_string();
        }
    }
    out
}

/// Re-derive the whole report from the rows (same options) and require every table of it to
/// stand, line for line, in `md` (a report written earlier, perhaps with more sections after
/// it). Returns the number of tables checked.
pub fn check_every_table(md: &str, rows: &[Row], opts: &ReportOptions) -> Result<usize, String> {
    let (fresh, _) = render(rows, opts);
    let on_disk = tables(md);
    let want = tables(&fresh);
    for (heading, table) in &want {
        if on_disk.iter().any(|(_, t)| t == table) {
            continue;
        }
        // The nearest table on disk (same header, most equal lines) names the first difference.
        let nearest = on_disk
            .iter()
            .filter(|(_, t)| t[0] == table[0])
            .max_by_key(|(_, t)| t.iter().zip(table).filter(|(a, b)| a == b).count());
        let Some((_, have)) = nearest else {
            return Err(format!(
                "table under \"{heading}\" is missing: {}",
                table[0]
            ));
        };
        let i = (0..table.len().max(have.len()))
            .find(|&i| have.get(i) != table.get(i))
            .unwrap_or(0);
        return Err(format!(
            "table under \"{heading}\", line {}: report {} vs data {}",
            i + 1,
            have.get(i).unwrap_or(&"(none)"),
            table.get(i).unwrap_or(&"(none)")
        ));
    }
    Ok(want.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fitted model with round figures: local 20 ms, remote 15 ms + 5 ms overhead, 100 KB.
    pub(crate) fn fitted() -> Fitted {
        Fitted {
            dataset: "small".into(),
            local_ms: 20.0,
            local_images_per_s: 100.0,
            remote_compute_ms: 15.0,
            overhead_ms: 5.0,
            payload_bytes: 100_000.0,
            cold_start_rate: 0.0,
            cold_start_ms: 0.0,
            cold_source: "assumed".into(),
            remote_from: "local watch".into(),
        }
    }

    pub(super) fn rows() -> Vec<Row> {
        let mut v = Vec::new();
        for (loc, ran, rtt, up) in [
            ("in-process", "local", 25.0, 0.0),
            ("local watch", "remote", 30.0, 2.0),
            ("emulated 10 Mbit/s + 60 ms", "remote", 180.0, 140.0),
        ] {
            for i in 0..4 {
                v.push(Row {
                    dataset: "small".into(),
                    location: loc.into(),
                    id: format!("img_{i}.jpg"),
                    bytes: 100_000,
                    upload_ms: up,
                    rtt_ms: rtt + i as f64,
                    inference_ms: 18.0,
                    server_total_ms: 24.0,
                    status: 200,
                    detections: 1,
                    cold_start: false,
                    ran: ran.into(),
                    reason: "fixed".into(),
                    done_at_ms: (i + 1) as f64 * rtt,
                    init_ms: None,
                });
            }
        }
        v
    }

    #[test]
    fn labels_to_links() {
        assert_eq!(link_of("emulated 10 Mbit/s + 60 ms"), Some((10.0, 60.0)));
        assert_eq!(link_of("emulated 100 Mbit/s"), Some((100.0, 0.0)));
        assert_eq!(link_of("local watch"), None);
    }

    #[test]
    fn report_table_matches_rows_and_answers_from_numbers() {
        let rows = rows();
        let (md, svgs) = render(&rows, &ReportOptions::default());
        assert_eq!(check_table(&md, &rows), Ok(3));
        assert!(md.contains("**No.**"), "{md}");
        // local 26.5 ms, fastest remote 31.5 ms.
        assert!(md.contains("31.50 ms, 1.19x as long"), "{md}");
        assert_eq!(svgs.len(), 5);
        // A changed number is caught.
        let bad = md.replace("| 26.50 |", "| 26.51 |");
        assert!(check_table(&bad, &rows).is_err());
    }

    #[test]
    fn arm64_prices_say_whether_arm64_was_measured() {
        let rows = rows();
        let x86 = ReportOptions {
            remote_arch: Some(Arch::X86_64),
            ..ReportOptions::default()
        };
        let (md, svgs) = render(&rows, &x86);
        // Remote compute 24 ms: arm64 priced from it, and said to be an estimate.
        assert!(
            md.contains("Lambda arm64 at best $")
                && md
                    .contains("24.00 ms per image; estimate: x86_64 timing, not measured on arm64"),
            "{md}"
        );
        assert!(md.contains("; measured on x86_64;"), "{md}");
        let cost = &svgs.iter().find(|(n, _)| n.starts_with("cost-")).unwrap().1;
        assert!(cost.contains("Lambda arm64 + HTTP API (est. from x86_64)"));
        // A figure measured on arm64 (e.g. a deployed function) prices arm64 as measured.
        let measured = ReportOptions {
            compute_ms: vec![(Arch::Arm64, 30.0)],
            ..x86
        };
        let (md, svgs) = render(&rows, &measured);
        assert!(
            md.contains("30.00 ms per image; measured on arm64") && !md.contains("estimate:"),
            "{md}"
        );
        let cost = &svgs.iter().find(|(n, _)| n.starts_with("cost-")).unwrap().1;
        assert!(!cost.contains("est. from"));
    }

    #[test]
    fn fit_uses_the_unlinked_remote() {
        let rows = rows();
        let sums = summarize(&rows);
        let f = fit("small", &sums, &rows, &ReportOptions::default()).unwrap();
        assert_eq!(f.local_ms, 26.5);
        assert_eq!(f.remote_compute_ms, 24.0);
        assert_eq!(f.overhead_ms, 7.5);
        assert_eq!(f.remote_from, "local watch");
    }

    /// With no cold request in the rows the penalty is the assumed option, and the report says
    /// so; with one it is measured (its round trip minus the warm mean) and labelled measured.
    #[test]
    fn cold_start_penalty_is_measured_or_labelled_assumed() {
        let mut rows = rows();
        let opts = ReportOptions::default();
        let (md, _) = render(&rows, &opts);
        assert!(
            md.contains("(penalty 150.00 ms, assumed: no cold request in the rows"),
            "{md}"
        );
        // The first "local watch" request (30 ms) is cold and took 130 ms more.
        let first = rows
            .iter_mut()
            .find(|r| r.location == "local watch")
            .unwrap();
        first.cold_start = true;
        first.rtt_ms += 130.0;
        let f = fit("small", &summarize(&rows), &rows, &opts).unwrap();
        // Warm "local watch" rows: 31, 32, 33 ms → mean 32; cold 160 ms → penalty 128 ms.
        assert_eq!(f.cold_start_ms, 128.0);
        assert_eq!(f.cold_start_rate, 1.0 / 8.0);
        let (md, _) = render(&rows, &opts);
        assert!(
            md.contains("(penalty 128.00 ms, measured: 1 cold request(s) against the warm mean)"),
            "{md}"
        );
        // Restarts measured by the study take precedence; their rows stay out of the tables
        // and out of the cold-start share.
        for (k, first) in [(1, 400.0), (2, 600.0), (3, 500.0)] {
            let location = format!("cold start {k} of 3");
            for (i, rtt) in [first, 20.0, 22.0].into_iter().enumerate() {
                let mut r = rows[0].clone();
                (r.location, r.rtt_ms, r.cold_start) = (location.clone(), rtt, i == 0);
                r.ran = "remote".into();
                rows.push(r);
            }
        }
        let f = fit("small", &summarize(&rows), &rows, &opts).unwrap();
        assert_eq!((f.cold_start_ms, f.cold_start_rate), (479.0, 1.0 / 8.0));
        let (md, _) = render(&rows, &opts);
        assert!(
            md.contains(
                "(penalty 479.00 ms, measured: median of 3 restarts, range 379.00–579.00 ms)"
            ),
            "{md}"
        );
        assert!(md.contains("## Cold starts, measured"), "{md}");
        assert!(!md.contains("| small | cold start 1 of 3 |"), "{md}");
    }

    #[test]
    fn every_table_is_rederived_from_the_rows() {
        let rows = rows();
        let opts = ReportOptions::default();
        let (md, _) = render(&rows, &opts);
        let n = check_every_table(&md, &rows, &opts).unwrap();
        assert!(n >= 5, "{n} tables");
        // Sections appended after the report (the policy study) do not matter.
        let longer = format!("{md}\n## More\n\n| a | b |\n|---|---|\n");
        assert_eq!(check_every_table(&longer, &rows, &opts), Ok(n));
        // One changed cell in a later table, or in a table inside a list item, is found and
        // named.
        for marker in ["| break-even slowdown |", "  | 10x |"] {
            let line = md.lines().find(|l| l.starts_with(marker)).unwrap();
            let bad = md.replacen(line, &format!("{line} x |"), 1);
            let err = check_every_table(&bad, &rows, &opts).unwrap_err();
            assert!(err.contains(" x |"), "{err}");
        }
    }
}
