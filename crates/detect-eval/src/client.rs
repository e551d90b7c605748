//! `detect send`: a collection of images to the function over HTTP (the local `cargo lambda
//! watch` URL, an emulated remote behind `detect proxy`, or a deployed API), one [`Row`] per
//! image.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rows::Row;
use super::sigv4::Signer;
use detect_core::timing::ms_since;
use detect_core::work_queue::map_in_order;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `{"images": [{"id", "data": base64}]}`
    Json,
    /// The raw image as the body (`image/jpeg`), `?id=` in the query: one image per request.
    Binary,
    /// `multipart/form-data`, one file part per image.
    Multipart,
}

#[derive(Clone, Debug)]
pub struct SendConfig {
    /// The detect URL, e.g. `http://127.0.0.1:9000/lambda-url/detect-lambda/api/detect`.
    pub endpoint: String,
    pub batch: usize,
    pub concurrency: usize,
    pub encoding: Encoding,
    pub headers: Vec<(String, String)>,
    pub dataset: String,
    pub location: String,
    pub timeout: Duration,
    /// Sign every request with SigV4 (an API behind `AWS_IAM` authorization).
    pub signer: Option<Signer>,
}

/// One request's images: (id, bytes).
type Batch = Vec<(String, Vec<u8>)>;

const BOUNDARY: &str = "lambda-detect-eval-7c1f0b9a2e";

/// Standard base64 with padding (RFC 4648).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of a query key or value (RFC 3986 unreserved characters kept).
pub(crate) fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request for a batch: (URL, content type, body).
pub fn build_request(
    endpoint: &str,
    encoding: Encoding,
    batch: &Batch,
) -> (String, String, Vec<u8>) {
    match encoding {
        Encoding::Binary => {
            let (id, bytes) = &batch[0];
            let sep = if endpoint.contains('?') { '&' } else { '?' };
            (
                format!("{endpoint}{sep}id={}", query_escape(id)),
                "image/jpeg".into(),
                bytes.clone(),
            )
        }
        Encoding::Json => {
            let images: Vec<Value> = batch
                .iter()
                .map(|(id, b)| serde_json::json!({"id": id, "data": base64(b)}))
                .collect();
            (
                endpoint.to_string(),
                "application/json".into(),
                serde_json::to_vec(&serde_json::json!({ "images": images }))
                    .expect("JSON of strings"),
            )
        }
        Encoding::Multipart => {
            let mut body = Vec::new();
            for (id, b) in batch {
                let name = id.replace(['"', '\r', '\n'], "_");
                body.extend_from_slice(
                    format!(
                        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(b);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
            (
                endpoint.to_string(),
                format!("multipart/form-data; boundary={BOUNDARY}"),
                body,
            )
        }
    }
}

/// What a request measured, before it is split into rows.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub status: u16,
    pub body: String,
    /// Until the response headers were read.
    pub headers_ms: f64,
    /// Until the whole response was read.
    pub rtt_ms: f64,
}

pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Send one request and time it; with a signer, the content type and `headers` are signed
/// with the body (signing is not timed).
pub fn exchange(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    headers: &[(String, String)],
    signer: Option<&Signer>,
    body: &[u8],
) -> Result<Exchange, String> {
    let mut all = vec![("content-type".to_string(), content_type.to_string())];
    all.extend(headers.iter().cloned());
    if let Some(signer) = signer {
        let signed = signer.sign("POST", url, &all, body)?;
        all.extend(signed);
    }
    let mut req = agent.post(url);
    for (k, v) in &all {
        req = req.header(k.as_str(), v.as_str());
    }
    let start = Instant::now();
    let mut resp = req.send(body).map_err(|e| format!("{url}: {e}"))?;
    let headers_ms = ms_since(start);
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("{url}: reading the response: {e}"))?;
    Ok(Exchange {
        status,
        body,
        headers_ms,
        rtt_ms: ms_since(start),
    })
}

/// Rows for a batch from what its request measured (see [`Row`] for the definitions).
pub fn rows_from_exchange(
    cfg: &SendConfig,
    batch: &[(String, u64)],
    ex: &Exchange,
    done_at_ms: f64,
) -> Vec<Row> {
    let v: Value = serde_json::from_str(&ex.body).unwrap_or(Value::Null);
    let server_ms = v["summary"]["total_ms"].as_f64().unwrap_or(0.0);
    let cold = v["cold_start"].as_bool().unwrap_or(false);
    let total_bytes: u64 = batch.iter().map(|(_, b)| *b).sum::<u64>().max(1);
    let upload_req = (ex.headers_ms - server_ms).max(0.0);
    let n = batch.len().max(1) as f64;
    let results = v["results"].as_array().cloned().unwrap_or_default();
    batch
        .iter()
        .enumerate()
        .map(|(i, (id, bytes))| {
            // Results come back in request order; match by id when the server says it.
            let r = results
                .iter()
                .find(|r| r["id"].as_str() == Some(id.as_str()))
                .or_else(|| results.get(i));
            let (status, inference, total, detections) = match r {
                Some(r) => (
                    r["status"].as_u64().unwrap_or(0) as u16,
                    r["timings_ms"]["inference"].as_f64().unwrap_or(0.0),
                    r["timings_ms"]["total"].as_f64().unwrap_or(0.0),
                    r["detections"].as_array().map_or(0, |d| d.len()) as u32,
                ),
                None => (
                    v["error"]["status"]
                        .as_u64()
                        .map_or(ex.status, |s| s as u16),
                    0.0,
                    0.0,
                    0,
                ),
            };
            Row {
                dataset: cfg.dataset.clone(),
                location: cfg.location.clone(),
                id: id.clone(),
                bytes: *bytes,
                upload_ms: upload_req * *bytes as f64 / total_bytes as f64,
                rtt_ms: ex.rtt_ms / n,
                inference_ms: inference,
                server_total_ms: total,
                status,
                detections,
                cold_start: cold && i == 0,
                ran: "remote".into(),
                reason: "fixed".into(),
                done_at_ms,
                init_ms: v["init_ms"].as_f64().filter(|_| cold && i == 0),
            }
        })
        .collect()
}

/// Image id as sent: the path relative to the collection directory.
pub fn image_id(dir: &std::path::Path, file: &std::path::Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// Send every file, `batch` images per request, `concurrency` requests in flight. Rows come
/// back in file order. `progress(n)` is called as images finish.
pub fn send_collection(
    files: &[(String, PathBuf)],
    cfg: &SendConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Row>, String> {
    let batch = if cfg.encoding == Encoding::Binary {
        1
    } else {
        cfg.batch.max(1)
    };
    let batches: Vec<&[(String, PathBuf)]> = files.chunks(batch).collect();
    // The first file that cannot be read stops the run: later batches are skipped.
    let failure = Mutex::new(None::<String>);
    let start = Instant::now();
    let agent = agent(cfg.timeout);
    let rows = map_in_order(batches.len(), cfg.concurrency, |i| -> Option<Vec<Row>> {
        if failure.lock().unwrap().is_some() {
            return None;
        }
        let mut images: Batch = Vec::new();
        for (id, path) in batches[i] {
            match std::fs::read(path) {
                Ok(b) => images.push((id.clone(), b)),
                Err(e) => {
                    *failure.lock().unwrap() = Some(format!("{}: {e}", path.display()));
                    return None;
                }
            }
        }
        let (url, ct, body) = build_request(&cfg.endpoint, cfg.encoding, &images);
        let sizes: Vec<(String, u64)> = images
            .iter()
            .map(|(id, b)| (id.clone(), b.len() as u64))
            .collect();
        // A transport failure (connection refused or reset, timeout) is retried once; if it
        // fails again the images get status 0 and the run goes on.
        let ex =
            exchange(&agent, &url, &ct, &cfg.headers, cfg.signer.as_ref(), &body).or_else(|e| {
                eprintln!("warning: {e}; retrying once");
                std::thread::sleep(Duration::from_secs(1));
                exchange(&agent, &url, &ct, &cfg.headers, cfg.signer.as_ref(), &body)
            });
        let ex = ex.unwrap_or_else(|e| {
            eprintln!("warning: {e}; images recorded with status 0");
            Exchange {
                status: 0,
                body: String::new(),
                headers_ms: 0.0,
                rtt_ms: 0.0,
            }
        });
        let r = rows_from_exchange(cfg, &sizes, &ex, ms_since(start));
        progress(sizes.len() as u64);
        Some(r)
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    rows.into_iter()
        .map(|r| {
            r.flatten()
                .ok_or("internal error: a sending thread failed".to_string())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|batches| batches.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn rows_split_a_batch() {
        let cfg = SendConfig {
            endpoint: "http://x/api/detect".into(),
            batch: 2,
            concurrency: 1,
            encoding: Encoding::Json,
            headers: vec![],
            dataset: "d".into(),
            location: "l".into(),
            timeout: Duration::from_secs(1),
            signer: None,
        };
        let body = serde_json::json!({
            "results": [
                {"id": "a", "status": 200, "detections": [{}, {}], "timings_ms": {"inference": 10.0, "total": 14.0}},
                {"id": "b", "status": 422, "detections": [], "timings_ms": {"inference": 0.0, "total": 1.0}}
            ],
            "summary": {"total_ms": 20.0},
            "cold_start": true,
            "init_ms": 23.5
        });
        let ex = Exchange {
            status: 200,
            body: body.to_string(),
            headers_ms: 50.0,
            rtt_ms: 60.0,
        };
        let rows = rows_from_exchange(&cfg, &[("a".into(), 300), ("b".into(), 100)], &ex, 99.0);
        assert_eq!(rows.len(), 2);
        // 50 ms to headers − 20 ms server = 30 ms upload, split 3:1 by bytes.
        assert_eq!(rows[0].upload_ms, 22.5);
        assert_eq!(rows[1].upload_ms, 7.5);
        assert_eq!(rows[0].rtt_ms, 30.0);
        assert_eq!((rows[0].status, rows[0].detections), (200, 2));
        assert_eq!((rows[1].status, rows[1].inference_ms), (422, 0.0));
        assert!(rows[0].cold_start && !rows[1].cold_start);
        // The start-up goes with the cold row only.
        assert_eq!((rows[0].init_ms, rows[1].init_ms), (Some(23.5), None));
    }

    #[test]
    fn error_reply_marks_every_image() {
        let cfg = SendConfig {
            endpoint: "http://x".into(),
            batch: 1,
            concurrency: 1,
            encoding: Encoding::Binary,
            headers: vec![],
            dataset: "d".into(),
            location: "l".into(),
            timeout: Duration::from_secs(1),
            signer: None,
        };
        let ex = Exchange {
            status: 413,
            body: r#"{"error":{"status":413,"message":"too big"}}"#.into(),
            headers_ms: 5.0,
            rtt_ms: 6.0,
        };
        let rows = rows_from_exchange(&cfg, &[("a".into(), 10)], &ex, 6.0);
        assert_eq!(rows[0].status, 413);
    }
}
