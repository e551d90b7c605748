//! The seed study's table (TU Wien 2023: Flask + TensorFlow MobileNet SSD v2 in Docker, local
//! vs an EC2 t2.large), filled in by this system: one row per dataset × location, the seed's
//! figure for the same kind of location beside it, and the speed-up per cell.

use std::fmt::Write;

use crate::rows::Summary;

/// The seed's mean time per image, seconds, per dataset: (dataset, local, remote). Its
/// upload was about 0.1 s per image on every dataset; it reported no wall times.
pub const SEED_SECONDS: [(&str, f64, f64); 3] = [
    ("small", 0.36, 0.58),
    ("medium", 0.32, 0.67),
    ("big", 0.35, 0.67),
];
pub const SEED_UPLOAD_S: f64 = 0.1;

/// The seed's (time per image, upload) in ms for a dataset and a kind of location (local:
/// the seed's own machine; remote: its EC2 t2.large); `None` for a dataset it did not have.
pub fn seed_ms(dataset: &str, remote: bool) -> Option<(f64, f64)> {
    SEED_SECONDS
        .iter()
        .find(|(d, _, _)| d.eq_ignore_ascii_case(dataset))
        .map(|&(_, local, far)| {
            if remote {
                (far * 1000.0, SEED_UPLOAD_S * 1000.0)
            } else {
                (local * 1000.0, 0.0)
            }
        })
}

pub const COLUMNS: [&str; 11] = [
    "dataset",
    "location",
    "images",
    "inference ms",
    "upload ms",
    "total ms per image",
    "wall s",
    "seed: location",
    "seed: total ms per image",
    "seed: upload ms",
    "speed-up vs seed",
];

/// Whether a row compares with the seed's remote (its EC2 machine over the internet): rows
/// that ran remotely, except the local watch (the function on this machine over loopback,
/// like the seed's local Flask server in Docker).
pub fn is_seed_remote(s: &Summary) -> bool {
    s.ran_remote > 0 && !s.location.starts_with("local watch")
}

/// The table, rows in the summaries' order (datasets the seed did not have get "-").
pub fn table(sums: &[Summary]) -> String {
    let f2 = |v: f64| {
        if v.is_finite() {
            format!("{v:.2}")
        } else {
            "-".to_string()
        }
    };
    let mut md = String::new();
    let _ = writeln!(md, "| {} |", COLUMNS.join(" | "));
    let _ = writeln!(
        md,
        "|---|---|{}---|{}",
        "---:|".repeat(5),
        "---:|".repeat(3)
    );
    for s in sums {
        let remote = is_seed_remote(s);
        let seed = seed_ms(&s.dataset, remote);
        let (seed_loc, seed_total, seed_upload, speedup) = match seed {
            Some((total, upload)) => (
                if remote {
                    "remote (EC2 t2.large)"
                } else {
                    "local"
                },
                f2(total),
                if remote { f2(upload) } else { "-".into() },
                format!("{:.1}x", total / s.mean_total_ms),
            ),
            None => ("-", "-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.dataset,
            s.location,
            s.images,
            f2(s.mean_inference_ms),
            f2(s.mean_upload_ms),
            f2(s.mean_total_ms),
            f2(s.wall_s),
            seed_loc,
            seed_total,
            seed_upload,
            speedup
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(dataset: &str, location: &str, remote: bool, total: f64) -> Summary {
        Summary {
            dataset: dataset.into(),
            location: location.into(),
            images: 10,
            succeeded: 10,
            mean_bytes: 1000.0,
            mean_inference_ms: 6.0,
            mean_upload_ms: if remote { 20.0 } else { 0.0 },
            mean_server_total_ms: 12.0,
            mean_total_ms: total,
            sd_ms: f64::NAN,
            p50_ms: total,
            p90_ms: total,
            p99_ms: total,
            images_per_s: 1000.0 / total,
            wall_s: total / 100.0,
            cold_starts: 0,
            ran_remote: if remote { 10 } else { 0 },
        }
    }

    #[test]
    fn each_row_sits_beside_the_seeds_figure_for_its_kind_of_location() {
        let local = sum("big", "in-process", false, 35.0);
        let remote = sum("medium", "emulated 10 Mbit/s + 60 ms", true, 134.0);
        let other = sum("tiny", "in-process", false, 10.0);
        let watch = sum("small", "local watch, 1 vCPU", true, 16.0);
        let md = table(&[local, remote, other, watch]);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 6);
        // The local watch is this machine's HTTP server: beside the seed's local one.
        assert!(
            lines[5].ends_with("| local | 360.00 | - | 22.5x |"),
            "{}",
            lines[5]
        );
        assert_eq!(
            lines[2],
            "| big | in-process | 10 | 6.00 | 0.00 | 35.00 | 0.35 | local | 350.00 | - | 10.0x |"
        );
        assert_eq!(
            lines[3],
            "| medium | emulated 10 Mbit/s + 60 ms | 10 | 6.00 | 20.00 | 134.00 | 1.34 | remote (EC2 t2.large) | 670.00 | 100.00 | 5.0x |"
        );
        assert!(lines[4].ends_with("| - | - | - | - |"), "{}", lines[4]);
        // Every row, the separator too, has one cell per column.
        for l in &lines {
            assert_eq!(l.matches('|').count(), COLUMNS.len() + 1, "{l}");
        }
    }
}
