//! One row per image, shared by every measurement (`detect send`, `detect local`, `detect
//! bench --out`) and read back by `detect report`. CSV (through the `csv` crate, columns in
//! [`CSV_COLUMNS`] order) and JSON hold the same fields.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stats::{mean, percentile, std_dev};

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
    /// The function instance's start-up as it reported it (`init_ms`: from the start of its
    /// set-up, after logging, to ready — model load, clients), on the row of the first
    /// detection request the instance served; `None` on every other row, in-process, and in
    /// files written before the column existed. Only where nothing reached the instance
    /// before (the cold-start probes) does that row's round trip contain the start-up; after a
    /// health check started the instance, it does not.
    #[serde(default)]
    pub init_ms: Option<f64>,
}

/// The CSV columns, in file order: the header every results CSV starts with.
pub const CSV_COLUMNS: [&str; 15] = [
    "dataset",
    "location",
    "id",
    "bytes",
    "upload_ms",
    "rtt_ms",
    "inference_ms",
    "server_total_ms",
    "status",
    "detections",
    "cold_start",
    "ran",
    "reason",
    "done_at_ms",
    "init_ms",
];

/// Files written before `init_ms` have the columns before it and are still read.
const CSV_COLUMNS_WITHOUT_INIT: usize = 14;

/// A time as the CSV holds it: milliseconds with three decimals (a microsecond), so files
/// stay short and diff well; JSON keeps the full value.
struct Ms(f64);

impl Serialize for Ms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:.3}", self.0))
    }
}

/// One CSV record: [`Row`]'s fields in [`CSV_COLUMNS`] order, times through [`Ms`].
#[derive(Serialize)]
struct CsvRecord<'a> {
    dataset: &'a str,
    location: &'a str,
    id: &'a str,
    bytes: u64,
    upload_ms: Ms,
    rtt_ms: Ms,
    inference_ms: Ms,
    server_total_ms: Ms,
    status: u16,
    detections: u32,
    cold_start: bool,
    ran: &'a str,
    reason: &'a str,
    done_at_ms: Ms,
    init_ms: Option<Ms>,
}

impl<'a> From<&'a Row> for CsvRecord<'a> {
    fn from(r: &'a Row) -> Self {
        CsvRecord {
            dataset: &r.dataset,
            location: &r.location,
            id: &r.id,
            bytes: r.bytes,
            upload_ms: Ms(r.upload_ms),
            rtt_ms: Ms(r.rtt_ms),
            inference_ms: Ms(r.inference_ms),
            server_total_ms: Ms(r.server_total_ms),
            status: r.status,
            detections: r.detections,
            cold_start: r.cold_start,
            ran: &r.ran,
            reason: &r.reason,
            done_at_ms: Ms(r.done_at_ms),
            init_ms: r.init_ms.map(Ms),
        }
    }
}

impl Row {
    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

/// The header and one record per row, as CSV.
pub fn write_csv_to<W: std::io::Write>(out: W, rows: &[Row]) -> Result<(), csv::Error> {
    // The header is written by hand so that a file without rows still has one.
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for r in rows {
        w.serialize(CsvRecord::from(r))?;
    }
    w.flush()?;
    Ok(())
}

pub fn write_csv(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_csv_to(file, rows).map_err(std::io::Error::other)
}

/// Rows from CSV text that starts with the [`CSV_COLUMNS`] header.
pub fn read_csv_from<R: std::io::Read>(input: R) -> Result<Vec<Row>, String> {
    let mut r = csv::Reader::from_reader(input);
    let header = r.headers().map_err(|e| e.to_string())?;
    let known = |n: usize| {
        header
            .iter()
            .map(str::trim)
            .eq(CSV_COLUMNS[..n].iter().copied())
    };
    if !(known(CSV_COLUMNS.len()) || known(CSV_COLUMNS_WITHOUT_INIT)) {
        return Err("not a results CSV (header)".into());
    }
    r.deserialize()
        .collect::<Result<Vec<Row>, _>>()
        .map_err(|e| e.to_string())
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

/// Largest uncompressed rows file read (a gzipped one could claim any size).
const MAX_ROWS_FILE_BYTES: u64 = 1 << 30;

/// Rows from a CSV (by header) or a JSON file written by [`write_json`], either possibly
/// gzipped (name ending in `.gz`: the report's committed data).
pub fn read_rows(path: &Path) -> Result<Vec<Row>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut text = String::new();
    reader
        .take(MAX_ROWS_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_ROWS_FILE_BYTES {
        return Err(format!(
            "{}: more than {MAX_ROWS_FILE_BYTES} bytes of rows",
            path.display()
        ));
    }
    if text.trim_start().starts_with('{') {
        #[derive(Deserialize)]
        struct File {
            rows: Vec<Row>,
        }
        let f: File =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(f.rows);
    }
    read_csv_from(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
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
    /// Standard deviation of the time per image (how far the mean can be trusted).
    pub sd_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub images_per_s: f64,
    /// Wall time of the run: from its start to the last image's answer, seconds.
    pub wall_s: f64,
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
                sd_ms: std_dev(&rtt),
                p50_ms: percentile(&rtt, 50.0),
                p90_ms: percentile(&rtt, 90.0),
                p99_ms: percentile(&rtt, 99.0),
                images_per_s: if wall > 0.0 {
                    all.len() as f64 / (wall / 1000.0)
                } else {
                    f64::NAN
                },
                wall_s: wall / 1000.0,
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
            init_ms: None,
        }
    }

    fn csv_text(rows: &[Row]) -> String {
        let mut out = Vec::new();
        write_csv_to(&mut out, rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_round_trip_with_quotes() {
        let r = row("a \"b\", c.jpg", 20.0);
        assert_eq!(
            read_csv_from(csv_text(std::slice::from_ref(&r)).as_bytes()).unwrap(),
            vec![r]
        );
    }

    #[test]
    fn csv_keeps_the_file_format() {
        let cold = Row {
            init_ms: Some(22.5),
            ..row("cold.jpg", 30.0)
        };
        let text = csv_text(&[row("a \"b\", c.jpg", 20.0), cold]);
        assert_eq!(
            text,
            "dataset,location,id,bytes,upload_ms,rtt_ms,inference_ms,server_total_ms,status,detections,cold_start,ran,reason,done_at_ms,init_ms\n\
             small,\"emulated, 10 Mbit/s\",\"a \"\"b\"\", c.jpg\",1000,1.500,20.000,10.000,12.000,200,2,false,remote,fixed,40.000,\n\
             small,\"emulated, 10 Mbit/s\",cold.jpg,1000,1.500,30.000,10.000,12.000,200,2,false,remote,fixed,60.000,22.500\n"
        );
        assert_eq!(
            read_csv_from(text.as_bytes()).unwrap()[1].init_ms,
            Some(22.5)
        );
        assert_eq!(
            csv_text(&[]).lines().count(),
            1,
            "the header even without rows"
        );
    }

    #[test]
    fn csv_reads_files_written_before() {
        // As the hand-written writer produced them: blank lines and CRLF are tolerated.
        let text = "dataset,location,id,bytes,upload_ms,rtt_ms,inference_ms,server_total_ms,status,detections,cold_start,ran,reason,done_at_ms\r\n\
                    small,in-process,x.jpg,14000,0.000,12.345,6.000,12.300,200,1,true,local,fixed,NaN\r\n\r\n";
        let rows = read_csv_from(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].bytes, rows[0].rtt_ms, rows[0].cold_start),
            (14000, 12.345, true)
        );
        assert!(rows[0].done_at_ms.is_nan());
        assert_eq!(rows[0].init_ms, None, "no init_ms column before");
    }

    #[test]
    fn csv_errors_name_the_problem() {
        assert!(read_csv_from("a,b\n1,2\n".as_bytes())
            .unwrap_err()
            .contains("header"));
        let bad = format!(
            "{}\nsmall,x,y,many,0,0,0,0,200,0,false,local,fixed,0\n",
            CSV_COLUMNS.join(",")
        );
        assert!(read_csv_from(bad.as_bytes()).is_err());
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

    #[test]
    fn gzipped_csv_reads_like_the_plain_one() {
        use std::io::Write;
        let rows = vec![row("a.jpg", 10.0), row("b.jpg", 20.0)];
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("r.csv");
        std::fs::write(&plain, csv_text(&rows)).unwrap();
        let gz = dir.path().join("r.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(csv_text(&rows).as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_rows(&gz).unwrap(), rows);
        assert_eq!(read_rows(&plain).unwrap(), rows);
        // Not gzip at all: an error naming the file, no panic.
        std::fs::write(&gz, b"dataset,location").unwrap();
        assert!(read_rows(&gz).unwrap_err().contains("r.csv.gz"));
    }
}
