//! The function's logic as plain async methods: HTTP requests (already unpacked from the
//! Lambda event) and S3 event notifications in, JSON out. `main` and the lambda_http glue
//! ([`App::handle`]) stay thin so tests can call everything here without the runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use detect_core::timing::ms_since;

use serde::Serialize;
use serde_json::{json, Value};

use crate::errors::image_status;
use crate::events::Event;
use crate::metrics::InvocationMetrics;
use crate::request::{
    parse_detect_request, route, ApiError, ImageSource, RequestLimits, Route, MAX_S3_KEY_BYTES,
};
use crate::s3::{
    decode_key, is_image_key, ObjectStore, S3Error, S3Event, S3EventRecord, S3Store, SourceObject,
    DEFAULT_MAX_OBJECT_BYTES,
};
use detect_core::detector::{Detector, DetectorConfig};
use detect_core::model::ModelSource;
use detect_core::postprocess::FilterOptions;
use detect_core::schema::{ImageResult, Timings};

/// Settings read from the environment (the SAM template sets them).
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Buckets HTTP requests may reference (`ALLOWED_BUCKETS`, comma-separated; empty = none).
    pub allowed_buckets: Vec<String>,
    /// Key prefix of the objects this function reads (`INPUT_PREFIX`, e.g. `incoming/`; unset or
    /// empty = any key). HTTP references to other keys are refused (403) and S3 event records
    /// for other keys are skipped, before any S3 call: the same rule as the IAM policy's
    /// `incoming/*`, enforced a second time in the function.
    pub input_prefix: Option<String>,
    /// Where the S3 trigger writes results (`RESULTS_PREFIX`, default `detections/`).
    pub results_prefix: String,
    /// Results bucket (`RESULTS_BUCKET`; default: the source object's bucket).
    pub results_bucket: Option<String>,
    pub request_limits: RequestLimits,
    /// Largest S3 object fetched (`MAX_OBJECT_BYTES`, default 15 MiB).
    pub max_object_bytes: u64,
    /// Images detected in parallel within one request.
    pub workers: usize,
}

fn env_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl AppConfig {
    pub fn from_env() -> Self {
        let results_prefix =
            std::env::var("RESULTS_PREFIX").unwrap_or_else(|_| "detections/".into());
        AppConfig {
            allowed_buckets: env_list("ALLOWED_BUCKETS"),
            input_prefix: std::env::var("INPUT_PREFIX").ok().filter(|p| !p.is_empty()),
            results_prefix,
            results_bucket: std::env::var("RESULTS_BUCKET")
                .ok()
                .filter(|b| !b.is_empty()),
            request_limits: RequestLimits::from_env(),
            max_object_bytes: std::env::var("MAX_OBJECT_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_MAX_OBJECT_BYTES),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// One image of a request while its bytes are gathered.
enum Slot {
    Ready(String, Vec<u8>),
    Fetching(String, tokio::task::JoinHandle<Result<Vec<u8>, S3Error>>),
    Failed(ImageResult),
}

/// A reply to an HTTP request: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    pub body: Value,
}

impl From<ApiError> for HttpReply {
    fn from(e: ApiError) -> Self {
        HttpReply {
            status: e.status,
            body: e.to_json(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Summary {
    images: usize,
    succeeded: usize,
    failed: usize,
    avg_inference_ms: f64,
    avg_total_ms: f64,
    total_ms: f64,
}

/// A result object the S3 trigger writes: the per-image schema plus its source.
#[derive(Debug, Clone, Serialize)]
pub struct StoredResult {
    #[serde(flatten)]
    pub result: ImageResult,
    pub source: SourceObject,
}

/// Outcome of one S3 event record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecordOutcome {
    pub bucket: String,
    pub key: String,
    /// `written`, `skipped` or `failed`.
    pub outcome: &'static str,
    pub result_key: Option<String>,
    pub reason: Option<String>,
    /// A failure worth retrying (S3 throttled, timed out or unreachable), not a bad object.
    #[serde(skip)]
    pub transient: bool,
}

pub struct App {
    detector: Arc<Detector>,
    s3: Option<Arc<dyn ObjectStore>>,
    config: AppConfig,
    init_ms: f64,
    /// Whether this instance has answered a health check / a detection request (HTTP detect,
    /// S3 event: the replies that report `cold_start`) yet: one flag per kind, so the health
    /// polls of a deployment check or of the evaluation do not use up the first detection's.
    health_served: AtomicBool,
    work_served: AtomicBool,
}

impl App {
    pub fn new(
        detector: Arc<Detector>,
        s3: Option<Arc<dyn ObjectStore>>,
        config: AppConfig,
        init_ms: f64,
    ) -> Self {
        App {
            detector,
            s3,
            config,
            init_ms,
            health_served: AtomicBool::new(false),
            work_served: AtomicBool::new(false),
        }
    }

    /// Everything a cold start does: load and optimize the model, set up the S3 client.
    pub async fn from_env() -> Result<Self, String> {
        let start = Instant::now();
        let config = AppConfig::from_env();
        let threads = std::env::var("DETECT_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(1);
        // DETECT_FLOAT=1 keeps every convolution in f32 (for comparisons).
        let int8 = std::env::var("DETECT_FLOAT").map_or(true, |v| v.is_empty() || v == "0");
        let detector_config = DetectorConfig {
            threads,
            int8,
            ..DetectorConfig::default()
        };
        let detector = tokio::task::spawn_blocking(move || {
            Detector::load(&ModelSource::from_env(), &detector_config)
        })
        .await
        .map_err(|e| format!("model loading thread failed: {e}"))?
        .map_err(|e| e.to_string())?;
        let s3 = S3Store::from_env(config.max_object_bytes).await;
        let init_ms = ms_since(start);
        tracing::info!(
            init_ms,
            model_load_ms = detector.load_timings().total_ms,
            model = %detector.info().name,
            kernels = %detector.info().kernels,
            "initialized"
        );
        Ok(App::new(
            Arc::new(detector),
            Some(Arc::new(s3)),
            config,
            init_ms,
        ))
    }

    pub fn init_ms(&self) -> f64 {
        self.init_ms
    }

    /// True for the first request of this kind (`health` or detection work) on this instance.
    fn take_cold_start(&self, health: bool) -> bool {
        let served = if health {
            &self.health_served
        } else {
            &self.work_served
        };
        !served.swap(true, Ordering::SeqCst)
    }

    /// An HTTP request, already unpacked from its event.
    pub async fn handle_http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        query: &[(String, String)],
        request_id: &str,
    ) -> HttpReply {
        let route = route(method, path);
        let cold_start = match route {
            Ok(Route::Health) => self.take_cold_start(true),
            Ok(Route::Detect) => self.take_cold_start(false),
            _ => false,
        };
        match route {
            Ok(Route::Health) => HttpReply {
                status: 200,
                body: self.health(cold_start),
            },
            Ok(Route::OpenApi) => HttpReply {
                status: 200,
                body: crate::openapi::document().clone(),
            },
            Ok(Route::Detect) => {
                match self
                    .detect(content_type, body, query, request_id, cold_start)
                    .await
                {
                    Ok(reply) | Err(reply) => reply,
                }
            }
            Err(e) => e.into(),
        }
    }

    fn health(&self, cold_start: bool) -> Value {
        let info = self.detector.info();
        json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "model": {
                "name": info.name,
                "input_width": info.input_width,
                "input_height": info.input_height,
                "labels": info.labels,
            },
            "cold_start": cold_start,
            "init_ms": self.init_ms,
            "model_load_ms": self.detector.load_timings(),
        })
    }

    async fn detect(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        query: &[(String, String)],
        request_id: &str,
        cold_start: bool,
    ) -> Result<HttpReply, HttpReply> {
        let start = Instant::now();
        let request = parse_detect_request(content_type, body, query, &self.config.request_limits)?;
        let options = self
            .detector
            .resolve_options(&request.options)
            .map_err(|e| ApiError::new(400, format!("invalid options: {e}")))?;

        // Gather bytes; S3 failures become that image's result. Every S3 fetch starts at once:
        // with S3 slow or down a request waits for one fetch timeout, not one per image.
        let mut slots: Vec<Slot> = Vec::with_capacity(request.images.len());
        for image in request.images {
            let id = image.id;
            slots.push(match image.source {
                ImageSource::Bytes(bytes) => Slot::Ready(id, bytes),
                ImageSource::S3(r) => match self.s3_for(&r.bucket, &r.key) {
                    Ok(s3) => {
                        let s3 = s3.clone();
                        let fetch = tokio::spawn(async move {
                            s3.fetch(&r.bucket, &r.key, r.version.as_deref()).await
                        });
                        Slot::Fetching(id, fetch)
                    }
                    Err(e) => Slot::Failed(ImageResult::failed(
                        id,
                        e.status,
                        e.message,
                        Timings::default(),
                    )),
                },
            });
        }
        let mut loaded: Vec<(String, Vec<u8>)> = Vec::with_capacity(slots.len());
        let mut failed: Vec<Option<ImageResult>> = Vec::with_capacity(slots.len());
        for slot in slots {
            let fetched = match slot {
                Slot::Ready(id, bytes) => Ok((id, bytes)),
                Slot::Failed(result) => Err(result),
                Slot::Fetching(id, fetch) => {
                    let (status, message) = match fetch.await {
                        Ok(Ok(bytes)) => {
                            loaded.push((id, bytes));
                            failed.push(None);
                            continue;
                        }
                        Ok(Err(e)) => (e.status, e.message),
                        Err(_) => (500, "internal error: the S3 fetch task failed".into()),
                    };
                    let timings = Timings {
                        total: ms_since(start),
                        ..Timings::default()
                    };
                    Err(ImageResult::failed(id, status, message, timings))
                }
            };
            match fetched {
                Ok(image) => {
                    loaded.push(image);
                    failed.push(None);
                }
                Err(result) => failed.push(Some(result)),
            }
        }
        // Bytes are moved, not copied, into detection: a request may hold 20 S3 objects.
        let mut detected = self.detect_blocking(loaded, options).await.into_iter();
        let results: Vec<ImageResult> = failed
            .into_iter()
            .map(|f| f.unwrap_or_else(|| detected.next().expect("one result per loaded image")))
            .collect();

        let ok: Vec<&ImageResult> = results.iter().filter(|r| r.ok()).collect();
        let avg = |f: fn(&ImageResult) -> f64| {
            if ok.is_empty() {
                0.0
            } else {
                ok.iter().map(|r| f(r)).sum::<f64>() / ok.len() as f64
            }
        };
        let summary = Summary {
            images: results.len(),
            succeeded: ok.len(),
            failed: results.len() - ok.len(),
            avg_inference_ms: avg(|r| r.timings_ms.inference),
            avg_total_ms: avg(|r| r.timings_ms.total),
            total_ms: ms_since(start),
        };
        tracing::info!(
            request_id,
            images = summary.images,
            failed = summary.failed,
            avg_inference_ms = summary.avg_inference_ms,
            total_ms = summary.total_ms,
            cold_start,
            "detect"
        );
        InvocationMetrics {
            images: summary.images,
            failed: summary.failed,
            inference_ms: summary.avg_inference_ms,
            total_ms: summary.total_ms,
        }
        .emit();
        let mut body = json!({
            "results": results,
            "summary": summary,
            "cold_start": cold_start,
            "init_ms": self.init_ms,
            "model": self.detector.info(),
            "request_id": request_id,
        });
        if summary.succeeded == 0 {
            // The request was fine but nothing in it was usable: say so, keep the per-image reasons.
            let reasons: Vec<String> = results
                .iter()
                .map(|r| format!("{}: {}", r.id, r.error.as_deref().unwrap_or("failed")))
                .collect();
            body["error"] = json!({
                "status": 422,
                "message": format!("no usable image in the request ({})", reasons.join("; ")),
            });
            return Err(HttpReply { status: 422, body });
        }
        Ok(HttpReply { status: 200, body })
    }

    /// The S3 client for an HTTP caller's reference, if the bucket is in the allow-list and
    /// the key under the input prefix; else the per-image error (no S3 call is made).
    fn s3_for(&self, bucket: &str, key: &str) -> Result<&Arc<dyn ObjectStore>, S3Error> {
        if !self.config.allowed_buckets.iter().any(|b| b == bucket) {
            return Err(S3Error::new(
                403,
                format!("bucket {bucket:?} is not in this function's allow-list (ALLOWED_BUCKETS)"),
                false,
            ));
        }
        if !self.in_input_prefix(key) {
            return Err(S3Error::new(
                403,
                format!(
                    "key {key:?} is outside the input prefix {:?} (INPUT_PREFIX) this function may read",
                    self.config.input_prefix.as_deref().unwrap_or_default()
                ),
                false,
            ));
        }
        self.s3
            .as_ref()
            .ok_or_else(|| S3Error::new(501, "S3 is not configured for this function", false))
    }

    /// Is `key` under `INPUT_PREFIX` (always true when it is unset)? A plain string prefix:
    /// S3 keys are flat, `incoming/../x.jpg` is a key under `incoming/` to S3 and IAM alike.
    fn in_input_prefix(&self, key: &str) -> bool {
        self.config
            .input_prefix
            .as_deref()
            .is_none_or(|prefix| key.starts_with(prefix))
    }

    /// Detection is CPU-bound: run it off the async executor.
    async fn detect_blocking(
        &self,
        images: Vec<(String, Vec<u8>)>,
        options: FilterOptions,
    ) -> Vec<ImageResult> {
        let detector = self.detector.clone();
        let workers = self.config.workers;
        let ids: Vec<String> = images.iter().map(|(id, _)| id.clone()).collect();
        tokio::task::spawn_blocking(move || {
            let outcomes = detector.detect_batch(&images, &options, workers);
            outcomes
                .into_iter()
                .map(|o| o.into_result(image_status))
                .collect()
        })
        .await
        .unwrap_or_else(|_| {
            ids.into_iter()
                .map(|id| {
                    ImageResult::failed(
                        id,
                        500,
                        "internal error: detection thread failed",
                        Timings::default(),
                    )
                })
                .collect()
        })
    }

    /// An S3 event: every record is processed; the returned error lists failed records so the
    /// invocation fails and Lambda retries (results already written are rewritten identically).
    pub async fn handle_s3_event(&self, event: S3Event, request_id: &str) -> Result<Value, Value> {
        let cold_start = self.take_cold_start(false);
        let start = Instant::now();
        let mut outcomes = Vec::with_capacity(event.records.len());
        for record in event.records {
            outcomes.push(self.process_record(record, true).await);
        }
        let count = |o: &str| outcomes.iter().filter(|r| r.outcome == o).count();
        let failed = count("failed");
        let body = json!({
            "records": outcomes,
            "written": count("written"),
            "skipped": count("skipped"),
            "failed": failed,
            "cold_start": cold_start,
            "init_ms": self.init_ms,
            "request_id": request_id,
            "total_ms": ms_since(start),
        });
        tracing::info!(request_id, records = outcomes.len(), failed, "s3 event");
        if failed > 0 {
            Err(body)
        } else {
            Ok(body)
        }
    }

    /// One S3 object: fetch, detect, write `<results prefix><key>.json`. With
    /// `write_failed_images` an image that cannot be decoded still gets a result object (its
    /// error); without it the record fails and nothing is written (the queue and S3 Batch
    /// paths, which retry or report failures themselves).
    pub(crate) async fn process_record(
        &self,
        record: S3EventRecord,
        write_failed_images: bool,
    ) -> RecordOutcome {
        let bucket = record.s3.bucket.name.clone().unwrap_or_default();
        let raw_key = record.s3.object.key.clone().unwrap_or_default();
        let mut outcome = RecordOutcome {
            bucket: bucket.clone(),
            key: raw_key.clone(),
            outcome: "failed",
            result_key: None,
            reason: None,
            transient: false,
        };
        let key = match decode_key(&raw_key) {
            Ok(k) => k,
            Err(e) => {
                outcome.reason = Some(e);
                tracing::error!(bucket, key = raw_key, reason = ?outcome.reason, "record failed");
                return outcome;
            }
        };
        outcome.key = key.clone();
        let skip = |why: &str| RecordOutcome {
            outcome: "skipped",
            reason: Some(why.to_string()),
            ..outcome.clone()
        };
        // Recursion guard: our own result objects must never be processed again.
        if key.starts_with(&self.config.results_prefix) {
            return skip("under the results prefix");
        }
        if !self.in_input_prefix(&key) {
            return skip("outside the input prefix (INPUT_PREFIX)");
        }
        if !is_image_key(&key) {
            return skip("not an image key (jpg, jpeg, png, webp, gif, bmp, tif, tiff)");
        }
        let fail = |reason: String| {
            tracing::error!(bucket, key, reason, "record failed");
            RecordOutcome {
                reason: Some(reason),
                ..outcome.clone()
            }
        };
        // Checked before the fetch: a result that cannot be written is not worth computing.
        let result_key = match result_key(&self.config.results_prefix, &key) {
            Ok(k) => k,
            Err(e) => return fail(e),
        };
        let Some(s3) = &self.s3 else {
            return fail("S3 is not configured".into());
        };
        let version = record
            .s3
            .object
            .version_id
            .clone()
            .filter(|v| !v.is_empty());
        let bytes = match s3.fetch(&bucket, &key, version.as_deref()).await {
            Ok(b) => b,
            Err(e) => {
                let transient = e.transient;
                return RecordOutcome {
                    transient,
                    ..fail(e.message)
                };
            }
        };
        let options = match self.detector.resolve_options(&Default::default()) {
            Ok(o) => o,
            Err(e) => return fail(e.to_string()),
        };
        let result = self
            .detect_blocking(vec![(key.clone(), bytes)], options)
            .await
            .pop()
            .unwrap_or_else(|| {
                ImageResult::failed(key.clone(), 500, "no result", Timings::default())
            });
        if !write_failed_images && !result.ok() {
            let reason = result
                .error
                .clone()
                .unwrap_or_else(|| "detection failed".into());
            return RecordOutcome {
                transient: result.status >= 500,
                ..fail(format!("{key}: {reason}"))
            };
        }
        let stored = StoredResult {
            result,
            source: SourceObject {
                bucket: bucket.clone(),
                key: key.clone(),
                version,
                etag: record.s3.object.e_tag.clone(),
            },
        };
        let result_bucket = self
            .config
            .results_bucket
            .clone()
            .unwrap_or_else(|| bucket.clone());
        let body = match serde_json::to_vec_pretty(&stored) {
            Ok(b) => b,
            Err(e) => return fail(format!("cannot serialize the result: {e}")),
        };
        if let Err(e) = s3.put_json(&result_bucket, &result_key, body).await {
            let transient = e.transient;
            return RecordOutcome {
                transient,
                ..fail(e.message)
            };
        }
        InvocationMetrics {
            images: 1,
            failed: usize::from(!stored.result.ok()),
            inference_ms: stored.result.timings_ms.inference,
            total_ms: stored.result.timings_ms.total,
        }
        .emit();
        RecordOutcome {
            outcome: "written",
            result_key: Some(result_key),
            ..outcome
        }
    }

    /// Serve invocations until the runtime stops.
    pub async fn serve(self: Arc<Self>) -> Result<(), lambda_http::Error> {
        lambda_http::run(lambda_http::service_fn(move |req| {
            let app = self.clone();
            async move { app.handle(req).await }
        }))
        .await
    }

    /// A non-HTTP event, by kind (the kinds are recognised in [`Event::parse`]).
    pub async fn handle_event(
        &self,
        event: Event,
        request_id: &str,
    ) -> Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error> {
        match event {
            Event::S3(event) => match self.handle_s3_event(event, request_id).await {
                Ok(body) => Ok(json_response(200, &body)),
                Err(body) => Err(format!("some S3 records failed: {body}").into()),
            },
            Event::Sqs(event) => {
                let reply = crate::queue::handle_sqs_event(self, event, request_id).await?;
                Ok(json_response(200, &reply))
            }
            Event::Batch(event) => {
                let reply = crate::batch::handle_batch_event(self, event, request_id).await?;
                Ok(json_response(200, &reply))
            }
        }
    }

    /// lambda_http glue: unpack the event, dispatch, pack the reply.
    pub async fn handle(
        &self,
        req: lambda_http::Request,
    ) -> Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error> {
        use lambda_http::request::RequestContext;
        use lambda_http::RequestExt;
        let request_id = req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
            let event = Event::parse(req.body().as_ref())?;
            return self.handle_event(event, &request_id).await;
        }
        if let Some(target) =
            crate::rekognition::target(req.method().as_str(), req.headers(), req.raw_http_path())
        {
            let reply = crate::rekognition::handle(self, target, req.body().as_ref(), &request_id);
            return Ok(reply.await.into_response());
        }
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let query: Vec<(String, String)> = req
            .query_string_parameters_ref()
            .map(|q| {
                q.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let reply = self
            .handle_http(
                req.method().as_str(),
                req.raw_http_path(),
                content_type.as_deref(),
                req.body().as_ref(),
                &query,
                &request_id,
            )
            .await;
        Ok(json_response(reply.status, &reply.body))
    }
}

/// The key of the S3 trigger's result for the source object `key`: `<prefix><key>.json`.
///
/// S3 keys are flat strings: `/` and `..` have no meaning to S3 or to IAM resource patterns,
/// and neither the SDK nor S3 normalizes them. So `incoming/../../etc.jpg` gets
/// `detections/incoming/../../etc.jpg.json`, which starts with the prefix like every result
/// key: no source key can put a result outside it, and keeping the key verbatim keeps the
/// mapping one-to-one. Every result key ends in `.json`, which is not an image suffix: a
/// second recursion guard besides the prefix. Errors when the key would be empty or exceed
/// S3's 1024-byte limit (the write could never succeed).
pub fn result_key(prefix: &str, key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("the object key is empty".into());
    }
    let result = format!("{prefix}{key}.json");
    if result.len() > MAX_S3_KEY_BYTES {
        return Err(format!(
            "the result key would be {} bytes, over S3's {MAX_S3_KEY_BYTES}-byte key limit",
            result.len()
        ));
    }
    Ok(result)
}

fn json_response(status: u16, body: &Value) -> lambda_http::Response<lambda_http::Body> {
    lambda_http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(lambda_http::Body::Text(body.to_string()))
        .unwrap_or_else(|_| lambda_http::Response::new(lambda_http::Body::Text(body.to_string())))
}

#[cfg(test)]
impl App {
    /// Unit tests' app: the real detector, no S3 (every fetch fails with "S3 is not
    /// configured", which shows which records were processed rather than skipped) and the
    /// template's prefixes.
    pub(crate) fn without_s3() -> App {
        let detector = Detector::load(&ModelSource::Default, &DetectorConfig::default()).unwrap();
        let config = AppConfig {
            allowed_buckets: vec![],
            input_prefix: Some("incoming/".into()),
            results_prefix: "detections/".into(),
            results_bucket: None,
            request_limits: crate::request::RequestLimits::default(),
            max_object_bytes: 1024,
            workers: 1,
        };
        App::new(Arc::new(detector), None, config, 0.0)
    }
}
