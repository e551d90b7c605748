//! Client speed as an axis: "when does offloading pay" asked for local devices slower than
//! this machine's core. The local side of the model is this machine's measured in-process
//! time times a slowdown; the remote side is the fitted model of each link. Everything here is
//! the model applied to measured inputs: no device was measured at these slowdowns (the
//! study's policy runs emulate one with `--local-slowdown`).

use std::fmt::Write;

use super::{f2, seed, Fitted};
use crate::svg::{Axis, Chart, Svg, PALETTE};

/// The slowdowns the map shows: this core, then devices 2 to 16 times slower.
pub const SLOWDOWNS: [f64; 5] = [1.0, 2.0, 4.0, 8.0, 16.0];

/// Added round trips the chart draws a break-even line for, ms.
const CHART_RTTS: [f64; 3] = [0.0, 10.0, 60.0];

/// How much slower than this core the local device must be for offloading over this link to
/// pay: the model's offloaded time / the measured local time (for uplinks in Mbit/s; infinite
/// = no added transfer, as to the local watch).
pub fn break_even_slowdown(f: &Fitted, mbit: f64, added_rtt_ms: f64) -> f64 {
    f.scenario(mbit, added_rtt_ms).offload_ms() / f.local_ms
}

/// One link of the map: its name, uplink and added round trip.
pub type Link = (String, f64, f64);

/// The map as Markdown: rows = local devices (slowdowns, and the seed's own local machine
/// where the dataset is the seed's), columns = links; each cell says where an image is
/// faster and by how much. Then the break-even slowdown of each link, and a headline.
pub fn section(f: &Fitted, links: &[Link]) -> String {
    let mut md = String::new();
    let d = &f.dataset;
    let _ = writeln!(md, "### {d}: how slow must the local device be?\n");
    let _ = writeln!(
        md,
        "The seed's question for a weaker local device: its time per image is this machine's in-process {} ms times the slowdown; the offloaded time is the model above (measured inputs, emulated links). A cell says which side is faster and how many times. **Modelled**, not measured on such devices.\n",
        f2(f.local_ms)
    );
    let mut devices: Vec<(String, f64)> = SLOWDOWNS
        .iter()
        .map(|&s| {
            let name = if s == 1.0 {
                "this machine (1x)".to_string()
            } else {
                format!("{s}x slower")
            };
            (name, s)
        })
        .collect();
    if let Some((seed_local_ms, _)) = seed::seed_ms(d, false) {
        let s = seed_local_ms / f.local_ms;
        devices.push((
            format!(
                "the seed's local machine ({} ms per image, measured there: {}x)",
                f2(seed_local_ms),
                f2(s)
            ),
            s,
        ));
    }
    let names: Vec<&str> = links.iter().map(|(n, _, _)| n.as_str()).collect();
    let _ = writeln!(md, "| local device | local ms | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|---:|{}", "---|".repeat(links.len()));
    for (name, s) in &devices {
        let local = s * f.local_ms;
        let cells: Vec<String> = links
            .iter()
            .map(|(_, mbit, rtt)| {
                let remote = f.scenario(*mbit, *rtt).offload_ms();
                if remote < local {
                    format!("**offload** {}x", f2(local / remote))
                } else {
                    format!("local {}x", f2(remote / local))
                }
            })
            .collect();
        let _ = writeln!(md, "| {name} | {} | {} |", f2(local), cells.join(" | "));
    }
    let even: Vec<f64> = links
        .iter()
        .map(|(_, mbit, rtt)| break_even_slowdown(f, *mbit, *rtt))
        .collect();
    let _ = writeln!(
        md,
        "| break-even slowdown | | {} |",
        even.iter()
            .map(|s| format!("{}x", f2(*s)))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let headline: Vec<String> = links
        .iter()
        .zip(&even)
        .map(|((n, _, _), s)| format!("**{}x** over {n}", f2(*s)))
        .collect();
    let _ = writeln!(
        md,
        "\nOffloading pays once the local device is more than this many times slower than this machine's core: {}.\n",
        headline.join("; ")
    );
    md
}

/// Break-even uplink against the local device's slowdown, one line per added round trip
/// (with the measured fixed overhead), and each measured link as a marker at its uplink and
/// break-even slowdown.
pub fn svg(f: &Fitted, links: &[Link]) -> Svg {
    let slowdowns: Vec<f64> = (0..=40).map(|i| 2f64.powf(i as f64 / 8.0)).collect();
    let mut lines: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
    for rtt in CHART_RTTS {
        let pts: Vec<(f64, f64)> = slowdowns
            .iter()
            .filter_map(|&s| {
                let mut sc = f.scenario(1.0, rtt);
                sc.local_ms = s * f.local_ms;
                sc.break_even_bandwidth_mbit().map(|b| (s, b))
            })
            .filter(|(_, b)| b.is_finite() && *b > 0.0)
            .collect();
        lines.push((rtt, pts));
    }
    let marks: Vec<(String, f64, f64)> = links
        .iter()
        .filter(|(_, mbit, _)| mbit.is_finite())
        .map(|(n, mbit, rtt)| (n.clone(), break_even_slowdown(f, *mbit, *rtt), *mbit))
        .collect();
    let ys = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, b)| *b))
        .chain(marks.iter().map(|(_, _, m)| *m));
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        ((lo * 0.5).max(0.01), (hi * 2.0).min(1e6))
    } else {
        (0.1, 1000.0)
    };
    let mut c = Chart::new(
        &format!(
            "{}: uplink at which offloading pays vs local device slowdown (model)",
            f.dataset
        ),
        Axis::log(1.0, 32.0),
        Axis::log(lo, hi),
        "local device: times slower than this machine's core (log)",
        "break-even uplink, Mbit/s (log)",
    );
    for (i, (rtt, pts)) in lines.iter().enumerate() {
        let pts: Vec<(f64, f64)> = pts
            .iter()
            .copied()
            .filter(|(_, b)| *b >= lo && *b <= hi)
            .collect();
        if pts.len() > 1 {
            c.line(
                &pts,
                PALETTE[i],
                false,
                Some(&format!("+{rtt} ms round trip")),
            );
        }
    }
    for (n, s, mbit) in &marks {
        if (1.0..=32.0).contains(s) {
            c.marker(*s, *mbit, PALETTE[CHART_RTTS.len()], Some(n));
        }
    }
    c.finish(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted() -> Fitted {
        crate::report::tests::fitted()
    }

    #[test]
    fn break_even_slowdown_is_the_offloaded_time_over_the_local() {
        let f = fitted();
        // 10 Mbit/s: 80 ms transfer + 60 ms + 5 ms + 15 ms = 160 ms = 8x the 20 ms local.
        assert!((break_even_slowdown(&f, 10.0, 60.0) - 8.0).abs() < 1e-9);
        // No link: 20 ms = 1x: never slower locally on this core.
        assert!((break_even_slowdown(&f, f64::INFINITY, 0.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_map_says_where_each_device_is_faster() {
        let f = fitted();
        let links = vec![("slow link".to_string(), 10.0, 60.0)];
        let md = section(&f, &links);
        // 1x: local 20 ms vs 160 ms remote: local, 8x faster.
        assert!(
            md.contains("| this machine (1x) | 20.00 | local 8.00x |"),
            "{md}"
        );
        // 16x: 320 ms local vs 160 ms: offloading twice as fast.
        assert!(
            md.contains("| 16x slower | 320.00 | **offload** 2.00x |"),
            "{md}"
        );
        // The seed's local machine: 360 ms / 20 ms = 18x.
        assert!(
            md.contains("measured there: 18.00x) | 360.00 | **offload** 2.25x |"),
            "{md}"
        );
        assert!(md.contains("| break-even slowdown | | 8.00x |"), "{md}");
        assert!(
            md.contains("slower than this machine's core: **8.00x** over slow link."),
            "{md}"
        );
    }

    #[test]
    fn the_chart_lays_out() {
        let f = fitted();
        let links = vec![
            ("emulated 10 Mbit/s + 60 ms".to_string(), 10.0, 60.0),
            ("emulated 100 Mbit/s + 10 ms".to_string(), 100.0, 10.0),
        ];
        let s = svg(&f, &links);
        s.check_layout().unwrap();
        assert!(s.text.contains("+60 ms round trip"));
    }
}
