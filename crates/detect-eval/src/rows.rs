//! One row per image, shared by every measurement (`detect send`, `detect local`, `detect
//! bench --out`) and read back by `detect report`. CSV and JSON hold the same fields.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stats::{mean, percentile};

/// What happened to one image.
///
/// Times are milliseconds. `rtt_ms` is the client's time per image: the request's round trip
/// (from before the request is written until the whole response is read) divided by the
/// images in the request; in-process it is the whole pipeline. `upload_ms` is the part of the
/// round trip before the response started that the server did not spend processing:
/// (time to response headers − server-reported request time), shared between the images of
/// a request in proportion to their bytes; 0 in-process. `inference_ms` and `server_total_ms`
/// are what the function reported for this image (`timings_ms.inference` / `.total`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub dataset: String,
    pub location: String,
    pub id: String,
    pub bytes: u64,
    pub upload_ms: f64,
    pub rtt_ms: f64,
    pub inference_ms: f64,
    pub server_total_ms: f64,
    pub status: u16,
    pub detections: u32,
    pub cold_start: bool,
    /// Where the image ran: "local" (in this process) or "remote".
    pub ran: String,
    /// Why it ran there (the policy's reason; "fixed" without a policy).
    pub reason: String,
    /// When the image's request finished, ms since the run started (gives images/s).
    pub done_at_ms: f64,
}

pub const CSV_HEADER: &str = "dataset,location,id,bytes,upload_ms,rtt_ms,inference_ms,server_total_ms,status,detections,cold_start,ran,reason,done_at_ms";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Split one CSV line (RFC 4180 quoting, no embedded newlines).
fn csv_split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

impl Row {
    pub fn ok(&self) -> bool {
        self.status == 200
    }

    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{:.3},{:.3},{:.3},{:.3},{},{},{},{},{},{:.3}",
            csv_field(&self.dataset),
            csv_field(&self.location),
            csv_field(&self.id),
            self.bytes,
            self.upload_ms,
            self.rtt_ms,
            self.inference_ms,
            self.server_total_ms,
            self.status,
            self.detections,
            self.cold_start,
            csv_field(&self.ran),
            csv_field(&self.reason),
            self.done_at_ms
        )
    }

    pub fn from_csv(line: &str) -> Result<Row, String> {
        let f = csv_split(line);
        if f.len() != 14 {
            return Err(format!("expected 14 fields, found {}: {line}", f.len()));
        }
        let num = |i: usize| -> Result<f64, String> {
            f[i].parse::<f64>()
                .map_err(|e| format!("field {i} ({}): {e}", f[i]))
        };
        Ok(Row {
            dataset: f[0].clone(),
            location: f[1].clone(),
            id: f[2].clone(),
            bytes: num(3)? as u64,
            upload_ms: num(4)?,
            rtt_ms: num(5)?,
            inference_ms: num(6)?,
            server_total_ms: num(7)?,
            status: num(8)? as u16,
            detections: num(9)? as u32,
            cold_start: f[10] == "true",
            ran: f[11].clone(),
            reason: f[12].clone(),
            done_at_ms: num(13)?,
        })
    }
}

pub fn write_csv(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&r.to_csv());
        s.push('\n');
    }
    std::fs::write(path, s)
}

/// The JSON output: the summary and the rows.
pub fn write_json(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let groups = summarize(rows);
    let v = serde_json::json!({ "summary": groups, "rows": rows });
    std::fs::write(
        path,
        serde_json::to_vec_pretty(&v).map_err(std::io::Error::other)?,
    )
}

/// Rows from a CSV (by header) or a JSON file written by [`write_json`].
pub fn read_rows(path: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.trim_start().starts_with('{') {
        #[derive(Deserialize)]
        struct File {
            rows: Vec<Row>,
        }
        let f: File =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(f.rows);
    }
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == CSV_HEADER => {}
        _ => return Err(format!("{}: not a results CSV (header)", path.display())),
    }
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| Row::from_csv(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// The seed's averages and more, for one dataset × location.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub dataset: String,
    pub location: String,
    pub images: usize,
    pub succeeded: usize,
    pub mean_bytes: f64,
    pub mean_inference_ms: f64,
    pub mean_upload_ms: f64,
    pub mean_server_total_ms: f64,
    /// The seed's "time per image": the client's mean round trip per image.
    pub mean_total_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub images_per_s: f64,
    pub cold_starts: usize,
    pub ran_remote: usize,
}

/// Statistics over successful images (counts over all), one per dataset × location, in order
/// of first appearance.
pub fn summarize(rows: &[Row]) -> Vec<Summary> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.dataset.clone(), r.location.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(dataset, location)| {
            let all: Vec<&Row> = rows
                .iter()
                .filter(|r| r.dataset == dataset && r.location == location)
                .collect();
            let ok: Vec<&Row> = all.iter().copied().filter(|r| r.ok()).collect();
            let mut rtt: Vec<f64> = ok.iter().map(|r| r.rtt_ms).collect();
            rtt.sort_by(f64::total_cmp);
            let wall = all.iter().map(|r| r.done_at_ms).fold(0.0, f64::max);
            Summary {
                images: all.len(),
                succeeded: ok.len(),
                mean_bytes: mean(ok.iter().map(|r| r.bytes as f64)),
                mean_inference_ms: mean(ok.iter().map(|r| r.inference_ms)),
                mean_upload_ms: mean(ok.iter().map(|r| r.upload_ms)),
                mean_server_total_ms: mean(ok.iter().map(|r| r.server_total_ms)),
                mean_total_ms: mean(rtt.iter().copied()),
                p50_ms: percentile(&rtt, 50.0),
                p90_ms: percentile(&rtt, 90.0),
                p99_ms: percentile(&rtt, 99.0),
                images_per_s: if wall > 0.0 {
                    all.len() as f64 / (wall / 1000.0)
                } else {
                    f64::NAN
                },
                cold_starts: all.iter().filter(|r| r.cold_start).count(),
                ran_remote: all.iter().filter(|r| r.ran == "remote").count(),
                dataset,
                location,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, rtt: f64) -> Row {
        Row {
            dataset: "small".into(),
            location: "emulated, 10 Mbit/s".into(),
            id: id.into(),
            bytes: 1000,
            upload_ms: 1.5,
            rtt_ms: rtt,
            inference_ms: 10.0,
            server_total_ms: 12.0,
            status: 200,
            detections: 2,
            cold_start: false,
            ran: "remote".into(),
            reason: "fixed".into(),
            done_at_ms: rtt * 2.0,
        }
    }

    #[test]
    fn csv_round_trip_with_quotes() {
        let r = row("a \"b\", c.jpg", 20.0);
        assert_eq!(Row::from_csv(&r.to_csv()).unwrap(), r);
    }

    #[test]
    fn summary_numbers() {
        let rows = vec![row("a", 10.0), row("b", 20.0), row("c", 30.0)];
        let s = &summarize(&rows)[0];
        assert_eq!(s.images, 3);
        assert_eq!(s.mean_total_ms, 20.0);
        assert_eq!(s.p50_ms, 20.0);
        assert!((s.p90_ms - 28.0).abs() < 1e-9);
        // Last image done at 60 ms: 3 images in 0.06 s.
        assert!((s.images_per_s - 50.0).abs() < 1e-9);
    }
}
