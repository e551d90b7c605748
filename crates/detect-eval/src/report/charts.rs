//! The report's charts: mean times per location, the latency CDF, time per image against
//! uplink bandwidth (model and measurements) and cost against Lambda memory.

use super::{Fitted, Row, Summary};
use crate::model::{
    lambda_compute_ms, lambda_cost_per_1000, local_cost_per_1000, rekognition_cost_per_1000,
    ArchCompute, Prices, Source, MEMORY_SIZES_MB,
};
use crate::svg::{Axis, Chart, Svg, PALETTE};

fn log_space(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (n - 1) as f64).exp())
        .collect()
}

pub fn bars_svg(sums: &[Summary]) -> Svg {
    let max = sums
        .iter()
        .map(|s| s.mean_total_ms)
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let mut c = Chart::new(
        "Mean time per image by dataset and location",
        Axis::linear(0.0, sums.len().max(1) as f64),
        Axis::linear(0.0, max * 1.1),
        "dataset / location",
        "ms per image",
    );
    let group = c.plot_width() / sums.len().max(1) as f64;
    let bw = group * 0.8 / 3.0;
    for (i, s) in sums.iter().enumerate() {
        let x0 = c.px(0.0) + group * i as f64 + group * 0.1;
        for (j, v) in [s.mean_inference_ms, s.mean_upload_ms, s.mean_total_ms]
            .iter()
            .enumerate()
        {
            c.bar(x0 + bw * j as f64, bw * 0.95, v.max(0.0), PALETTE[j]);
        }
        c.category(
            x0 + group * 0.4,
            group * 0.95,
            &format!(
                "{} / {}",
                s.dataset,
                s.location.replace("emulated ", "emul. ")
            ),
        );
    }
    c.legend_entry("inference (server)", PALETTE[0]);
    c.legend_entry("upload", PALETTE[1]);
    c.legend_entry("total (client)", PALETTE[2]);
    c.finish(false)
}

pub fn cdf_svg(rows: &[Row], sums: &[Summary]) -> Svg {
    let all: Vec<f64> = rows
        .iter()
        .filter(|r| r.ok() && r.rtt_ms > 0.0)
        .map(|r| r.rtt_ms)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.1);
    let hi = all.iter().copied().fold(1.0, f64::max);
    let mut c = Chart::new(
        "Latency CDF (client time per image)",
        Axis::log(lo * 0.9, hi * 1.1),
        Axis::linear(0.0, 1.0),
        "ms per image (log scale)",
        "fraction of images",
    );
    for (i, s) in sums.iter().enumerate() {
        let mut v: Vec<f64> = rows
            .iter()
            .filter(|r| r.ok() && r.dataset == s.dataset && r.location == s.location)
            .map(|r| r.rtt_ms)
            .collect();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let pts: Vec<(f64, f64)> = v
            .iter()
            .enumerate()
            .map(|(k, x)| (*x, (k + 1) as f64 / n))
            .collect();
        c.line(
            &pts,
            PALETTE[i % PALETTE.len()],
            false,
            Some(&format!("{} / {}", s.dataset, s.location)),
        );
    }
    c.finish(true)
}

/// Mark a break-even bandwidth on the time-vs-uplink chart when it falls inside its x range.
fn mark_break_even(c: &mut Chart, break_even_mbit: Option<f64>, local_ms: f64, color: &str) {
    if let Some(be) = break_even_mbit.filter(|be| (1.0..=1000.0).contains(be)) {
        c.marker(
            be,
            local_ms,
            color,
            Some(&format!("break-even {be:.1} Mbit/s")),
        );
    }
}

pub fn bandwidth_svg(f: &Fitted, sums: &[Summary], links: &[(String, f64, f64)]) -> Svg {
    let xs = log_space(1.0, 1000.0, 60);
    let worst = f.scenario(1.0, links.iter().map(|l| l.2).fold(0.0, f64::max));
    let hi = worst.offload_ms().max(f.local_ms) * 1.2;
    let lo = (f.local_ms.min(f.remote_compute_ms + f.overhead_ms) * 0.5).max(0.1);
    let mut c = Chart::new(
        &format!("Time per image vs uplink ({}): model + measured", f.dataset),
        Axis::log(1.0, 1000.0),
        Axis::log(lo, hi),
        "uplink bandwidth, Mbit/s (log)",
        "ms per image (log)",
    );
    c.line(
        &[(1.0, f.local_ms), (1000.0, f.local_ms)],
        "#000",
        false,
        Some("local (in-process, measured)"),
    );
    let mut rtts: Vec<(String, f64)> = vec![("no added delay".into(), 0.0)];
    for (_, _, d) in links {
        if !rtts.iter().any(|(_, x)| x == d) {
            rtts.push((format!("+{d} ms round trip"), *d));
        }
    }
    for (i, (name, d)) in rtts.iter().enumerate() {
        let color = PALETTE[(i + 1) % PALETTE.len()];
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .map(|&x| (x, f.scenario(x, *d).offload_ms()))
            .collect();
        c.line(&pts, color, true, Some(&format!("offload model, {name}")));
        mark_break_even(
            &mut c,
            f.scenario(1.0, *d).break_even_bandwidth_mbit(),
            f.local_ms,
            color,
        );
    }
    let faster = Fitted {
        remote_compute_ms: f.remote_compute_ms / 4.0,
        ..f.clone()
    };
    let d = links.first().map_or(0.0, |l| l.2);
    let pts: Vec<(f64, f64)> = xs
        .iter()
        .map(|&x| (x, faster.scenario(x, d).offload_ms()))
        .collect();
    let color = PALETTE[5];
    c.line(
        &pts,
        color,
        true,
        Some(&format!("model, 4x faster remote, +{d} ms")),
    );
    mark_break_even(
        &mut c,
        faster.scenario(1.0, d).break_even_bandwidth_mbit(),
        f.local_ms,
        color,
    );
    for (loc, mbit, _) in links {
        if let Some(s) = sums
            .iter()
            .find(|s| s.dataset == f.dataset && &s.location == loc)
        {
            c.marker(*mbit, s.mean_total_ms, "#fff", Some("measured (emulated)"));
        }
    }
    c.finish(true)
}

pub fn cost_svg(f: &Fitted, prices: &Prices, compute: &[ArchCompute]) -> Svg {
    let lambda = |c: &ArchCompute| -> Vec<(f64, f64)> {
        MEMORY_SIZES_MB
            .iter()
            .map(|&m| {
                let d = lambda_compute_ms(c.ms, m, 1.0);
                (m, lambda_cost_per_1000(prices, c.arch, m, d, 1.0))
            })
            .collect()
    };
    let lines: Vec<(&ArchCompute, Vec<(f64, f64)>)> =
        compute.iter().map(|c| (c, lambda(c))).collect();
    let local = local_cost_per_1000(prices, f.local_images_per_s);
    let rek = rekognition_cost_per_1000(prices);
    let lo = lines
        .iter()
        .flat_map(|(_, l)| l.iter().map(|p| p.1))
        .fold(local, f64::min);
    let mut c = Chart::new(
        &format!("Cost per 1000 images vs Lambda memory ({})", f.dataset),
        Axis::linear(0.0, 10240.0),
        Axis::log(lo * 0.5, rek * 2.0),
        "Lambda memory, MB (1 vCPU at 1769 MB)",
        "USD per 1000 images (log)",
    );
    for (i, (arch, line)) in lines.iter().enumerate() {
        // An architecture priced from another's timing says so in its legend.
        let legend = match arch.source {
            Source::Measured => format!("Lambda {} + HTTP API", arch.arch.name()),
            Source::EstimatedFrom(from) => {
                format!(
                    "Lambda {} + HTTP API (est. from {})",
                    arch.arch.name(),
                    from.name()
                )
            }
        };
        c.line(line, PALETTE[i], false, Some(&legend));
    }
    c.line(
        &[(0.0, local), (10240.0, local)],
        PALETTE[2],
        true,
        Some("this machine, busy, hourly price"),
    );
    c.line(
        &[(0.0, rek), (10240.0, rek)],
        PALETTE[3],
        true,
        Some("Rekognition DetectLabels"),
    );
    c.finish(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{compute_by_arch, Arch};
    use crate::report::{fit, link_of, tests::rows, ReportOptions};
    use crate::rows::summarize;

    /// Rows with the committed study's location labels (the longest the scripts write).
    fn study_rows() -> Vec<Row> {
        let mut v = rows();
        for r in &mut v {
            r.location = match r.location.as_str() {
                "local watch" => "local watch, 1 vCPU".into(),
                "emulated 10 Mbit/s + 60 ms" => "emulated 10 Mbit/s + 60 ms, 1 vCPU".into(),
                other => other.into(),
            };
        }
        let extra: Vec<Row> = v
            .iter()
            .filter(|r| r.location.starts_with("local watch"))
            .map(|r| Row {
                location: "emulated 100 Mbit/s + 10 ms, 1 vCPU".into(),
                rtt_ms: r.rtt_ms + 20.0,
                ..r.clone()
            })
            .collect();
        v.extend(extra);
        v
    }

    #[test]
    fn every_chart_keeps_its_texts_apart_and_inside() {
        let rows = study_rows();
        let sums = summarize(&rows);
        let f = fit("small", &sums, &rows, &ReportOptions::default()).unwrap();
        let links: Vec<(String, f64, f64)> = sums
            .iter()
            .filter_map(|s| link_of(&s.location).map(|(m, d)| (s.location.clone(), m, d)))
            .collect();
        assert_eq!(links.len(), 2);
        // arm64 priced from x86_64's timing: the longest legend.
        let compute = compute_by_arch(f.remote_compute_ms, Some(Arch::X86_64), &[]);
        for (name, svg) in [
            ("times", bars_svg(&sums)),
            ("cdf", cdf_svg(&rows, &sums)),
            ("bandwidth", bandwidth_svg(&f, &sums, &links)),
            ("cost", cost_svg(&f, &Prices::default(), &compute)),
        ] {
            svg.check_layout().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// The study's five locations per dataset fit one bar chart and one CDF; the three
    /// datasets' fifteen groups in one chart do not (why the report draws one per dataset).
    #[test]
    fn one_dataset_per_chart_keeps_the_labels_apart() {
        let mut rows = study_rows();
        let extra: Vec<Row> = rows
            .iter()
            .filter(|r| r.location == "in-process")
            .map(|r| Row {
                location: "in-process, 2 at once".into(),
                ..r.clone()
            })
            .collect();
        rows.extend(extra);
        let one = summarize(&rows);
        assert_eq!(one.len(), 5);
        bars_svg(&one).check_layout().unwrap();
        cdf_svg(&rows, &one).check_layout().unwrap();
        let all: Vec<Row> = ["small", "medium", "big"]
            .iter()
            .flat_map(|d| {
                rows.iter().map(|r| Row {
                    dataset: d.to_string(),
                    ..r.clone()
                })
            })
            .collect();
        assert!(bars_svg(&summarize(&all)).check_layout().is_err());
    }
}
