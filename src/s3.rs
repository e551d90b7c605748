//! S3: fetching images (with an object size limit) and writing results behind the small
//! [`ObjectStore`] trait (so the handler can be tested with an in-memory store), and the
//! helpers for S3 event records (types from `aws_lambda_events`): key decoding and the
//! image-key filter.
//!
//! The endpoint can be overridden (`S3_ENDPOINT_URL`, path-style addressing) so the same code
//! talks to AWS and to a local S3 server.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

/// Environment variable naming a non-AWS S3 endpoint (e.g. a local S3 server).
pub const ENDPOINT_ENV: &str = "S3_ENDPOINT_URL";
/// Default largest object fetched for detection.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 15 * 1024 * 1024;

// Without these the SDK only bounds connecting (3.1 s): an S3 endpoint that accepts the
// connection and never answers would hold a request until the Lambda timeout. S3 answers in
// tens of milliseconds and a 15 MiB object takes well under a second in-region, so these only
// cut off an S3 that is not working.
/// Setting up a connection to S3.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One attempt of an S3 call, up to the response headers (the SDK retries up to 3 attempts).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// An S3 call with its retries; for a fetch, also reading the object's body.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an object could not be fetched or written, with the per-image status it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct S3Error {
    pub status: u16,
    pub message: String,
    /// Worth retrying (throttling, network, server errors), as opposed to missing/denied.
    pub transient: bool,
}

impl S3Error {
    pub fn new(status: u16, message: impl Into<String>, transient: bool) -> Self {
        S3Error {
            status,
            message: message.into(),
            transient,
        }
    }
}

/// What an [`ObjectStore`] call returns: a boxed future, so the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, S3Error>> + Send + 'a>>;

/// The two S3 operations the function needs.
pub trait ObjectStore: Send + Sync {
    /// The object's bytes (or a per-image error: missing, denied, too large, S3 down).
    fn fetch<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        version: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<u8>>;

    /// Write a JSON document as the whole object.
    fn put_json<'a>(&'a self, bucket: &'a str, key: &'a str, body: Vec<u8>) -> StoreFuture<'a, ()>;
}

impl ObjectStore for S3Store {
    fn fetch<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        version: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<u8>> {
        Box::pin(S3Store::fetch(self, bucket, key, version))
    }

    fn put_json<'a>(&'a self, bucket: &'a str, key: &'a str, body: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(S3Store::put_json(self, bucket, key, body))
    }
}

/// An S3 client plus the object size limit.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    max_object_bytes: u64,
}

/// Maps an SDK error to the per-image status: 404 missing, 403 denied, 504 timed out,
/// 502 anything else (S3 unreachable, S3 server errors, unreadable responses).
fn describe<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>, what: &str) -> S3Error {
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            let status = service.raw().status().as_u16();
            match (code, status) {
                ("NoSuchKey" | "NotFound" | "NoSuchVersion", _) => {
                    S3Error::new(404, format!("{what}: no such object"), false)
                }
                ("NoSuchBucket", _) => S3Error::new(404, format!("{what}: no such bucket"), false),
                ("AccessDenied" | "Forbidden" | "AllAccessDisabled", _) | (_, 403) => S3Error::new(
                    403,
                    format!("{what}: access denied (the function may read only its allowed buckets and prefixes)"),
                    false,
                ),
                // HEAD-style errors have no body, hence no code.
                (_, 404) => S3Error::new(404, format!("{what}: no such object"), false),
                _ => S3Error::new(
                    502,
                    format!(
                        "{what}: S3 error {status} {code}: {}",
                        service.err().message().unwrap_or("")
                    ),
                    true,
                ),
            }
        }
        SdkError::TimeoutError(_) => S3Error::new(504, format!("{what}: S3 timed out"), true),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            S3Error::new(504, format!("{what}: S3 timed out (connect)"), true)
        }
        SdkError::DispatchFailure(_) => S3Error::new(502, format!("{what}: cannot reach S3"), true),
        other => S3Error::new(502, format!("{what}: S3 request failed: {other}"), true),
    }
}

impl S3Store {
    /// Client from the environment: region (default us-east-1), credentials chain, and the
    /// optional endpoint override with path-style addressing.
    pub async fn from_env(max_object_bytes: u64) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        // The region comes from the environment (Lambda always sets AWS_REGION). Not the
        // default chain: its IMDS and profile providers are built without the HTTP client
        // given below, and aws-smithy panics on that in debug builds ("a http_client is
        // required"), so `cargo lambda watch` without --release never started.
        let region = aws_config::meta::region::RegionProviderChain::first_try(
            aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
        )
        .or_else(Region::new("us-east-1"));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts)
            .region(region);
        let endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty());
        if let Some(endpoint) = &endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(endpoint.is_some())
            .build();
        S3Store {
            client: aws_sdk_s3::Client::from_conf(config),
            max_object_bytes,
        }
    }

    pub fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    /// Fetch an object; its size is checked from the response headers before the body is read.
    /// The whole fetch, body included, is bounded by [`OPERATION_TIMEOUT`] (504 past it).
    pub async fn fetch(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Vec<u8>, S3Error> {
        let what = format!("s3://{bucket}/{key}");
        tokio::time::timeout(
            OPERATION_TIMEOUT,
            self.fetch_unbounded(bucket, key, version, &what),
        )
        .await
        .unwrap_or_else(|_| {
            Err(S3Error::new(
                504,
                format!(
                    "{what}: S3 timed out (no complete answer within {} s)",
                    OPERATION_TIMEOUT.as_secs()
                ),
                true,
            ))
        })
    }

    async fn fetch_unbounded(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        what: &str,
    ) -> Result<Vec<u8>, S3Error> {
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| describe(&e, what))?;
        let declared = output.content_length().unwrap_or(0).max(0) as u64;
        if declared > self.max_object_bytes {
            return Err(S3Error::new(
                413,
                format!(
                    "{what} is {declared} bytes, over the limit of {} bytes",
                    self.max_object_bytes
                ),
                false,
            ));
        }
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| {
                S3Error::new(502, format!("{what}: reading the object failed: {e}"), true)
            })?
            .into_bytes();
        if body.len() as u64 > self.max_object_bytes {
            return Err(S3Error::new(
                413,
                format!(
                    "{what} is over the limit of {} bytes",
                    self.max_object_bytes
                ),
                false,
            ));
        }
        Ok(body.to_vec())
    }

    /// Write a JSON document (whole object; rewriting the same key is harmless).
    pub async fn put_json(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), S3Error> {
        let what = format!("s3://{bucket}/{key}");
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| describe(&e, &what))?;
        Ok(())
    }
}

/// S3 event notifications, as the `aws_lambda_events` crate models them.
pub use aws_lambda_events::s3::{S3Event, S3EventRecord};

/// Where a result came from, written beside the per-image schema in S3 result objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceObject {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
    pub etag: Option<String>,
}

/// Is this JSON an S3 event notification (rather than some other pass-through event)?
pub fn is_s3_event(value: &serde_json::Value) -> bool {
    value["Records"].as_array().is_some_and(|r| {
        !r.is_empty()
            && r.iter()
                .all(|rec| rec["eventSource"] == "aws:s3" || rec["s3"].is_object())
    })
}

/// Parse an S3 event notification. The function reads only the bucket, key, version, size and
/// ETag, so fields it never uses must not fail a record: an `eventTime` without a zone offset
/// (moto writes one; S3 itself writes `...Z`) is read as UTC, and a missing `userIdentity`,
/// `requestParameters` or `responseElements` (S3 always sends them, moto not) reads as empty.
pub fn parse_s3_event(mut value: serde_json::Value) -> Result<S3Event, serde_json::Error> {
    if let Some(records) = value["Records"].as_array_mut() {
        for record in records {
            if let Some(fields) = record.as_object_mut() {
                for unused in ["userIdentity", "requestParameters", "responseElements"] {
                    fields
                        .entry(unused)
                        .or_insert_with(|| serde_json::json!({}));
                }
            }
            if let Some(t) = record["eventTime"].as_str() {
                let zoned = t.ends_with('Z') || t[t.len().saturating_sub(6)..].contains(['+', '-']);
                if !zoned {
                    record["eventTime"] = format!("{t}Z").into();
                }
            }
        }
    }
    serde_json::from_value(value)
}

/// Decode an event key: `+` is a space, then `%XX` escapes (UTF-8).
pub fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("object key {raw:?} is not valid UTF-8 after URL-decoding"))
}

/// Image keys the trigger processes (the template's notification filter uses the same suffixes).
pub fn is_image_key(key: &str) -> bool {
    // Same as "ends with .<extension>": the extension is what follows the last dot.
    key.rsplit_once('.').is_some_and(|(_, ext)| {
        detect_core::preprocess::IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_decoded_like_s3_encodes_them() {
        assert_eq!(
            decode_key("incoming/my+photo+%C3%A9t%C3%A9.jpg").unwrap(),
            "incoming/my photo été.jpg"
        );
        assert_eq!(decode_key("a%2Bb%2Fc.png").unwrap(), "a+b/c.png");
        assert_eq!(decode_key("plain.jpg").unwrap(), "plain.jpg");
        assert!(decode_key("bad%FF%FE.jpg").is_err());
    }

    #[test]
    fn image_keys_by_suffix() {
        assert!(is_image_key("incoming/a.JPG"));
        assert!(is_image_key("x.webp"));
        assert!(!is_image_key("incoming/notes.txt"));
        assert!(!is_image_key("incoming/jpg"));
    }

    #[test]
    fn recognizes_s3_events() {
        let event: serde_json::Value =
            serde_json::from_str(include_str!("../events/s3-multi.json")).unwrap();
        assert!(is_s3_event(&event));
        let parsed: S3Event = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records.len(), 3);
        assert_eq!(
            parsed.records[0].s3.bucket.name.as_deref(),
            Some("lambda-detect-local")
        );
        assert!(!is_s3_event(&serde_json::json!({"Records": []})));
        assert!(!is_s3_event(&serde_json::json!({"hello": 1})));
    }
}
