//! S3 Batch Operations "invoke a Lambda function" tasks: the backfill path for objects already in
//! a bucket (scripts/backfill.sh creates the job). Each task names one object; the answer gives
//! each task a result code in the schema of the invocation (1.0 or 2.0):
//!
//! - `Succeeded`: the result was written (`resultString` is its key);
//! - `TemporaryFailure`: S3 throttled, timed out or could not be reached (Batch Operations
//!   retries the task);
//! - `PermanentFailure`: the object is missing, is not an image, cannot be decoded, or is
//!   outside the prefix the function may read (retrying would fail the same way).
//!
//! Each task goes through the same per-object processing as an S3 event record
//! ([`App::process_record`]); an undecodable image writes nothing and fails its task.

use aws_lambda_events::event::s3::batch_job::{
    S3BatchJobEvent, S3BatchJobResponse, S3BatchJobResult, S3BatchJobTask,
};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::Value;

use crate::handler::{App, RecordOutcome};
use aws_lambda_events::s3::{S3Bucket, S3Entity, S3Object};

use crate::s3::S3EventRecord;

pub const SUCCEEDED: &str = "Succeeded";
pub const TEMPORARY_FAILURE: &str = "TemporaryFailure";
pub const PERMANENT_FAILURE: &str = "PermanentFailure";

/// Is this JSON an S3 Batch Operations invocation?
pub fn is_batch_event(event: &Value) -> bool {
    event["invocationSchemaVersion"].is_string()
        && event["tasks"].is_array()
        && event["job"].is_object()
}

/// Schema 2.0 names the bucket (`s3Bucket`), 1.0 its ARN (`s3BucketArn`, read through
/// [`S3BatchJobTask`]); aws_lambda_events 1.2 models only the latter, so the name is read here.
#[derive(Debug, Default, Deserialize)]
struct TaskBucket {
    #[serde(rename = "s3Bucket", default)]
    s3_bucket: Option<String>,
}

/// The bucket a task names: `s3Bucket` (2.0) or the last part of `s3BucketArn` (1.0; AWS's
/// examples show both `arn:aws:s3:::name` and `arn:aws:s3:region:account:name`).
fn task_bucket(task: &S3BatchJobTask, named: &TaskBucket) -> Option<String> {
    named
        .s3_bucket
        .clone()
        .or_else(|| {
            task.s3_bucket_arn
                .as_deref()
                .and_then(|arn| arn.rsplit(':').next())
                .map(str::to_string)
        })
        .filter(|b| !b.is_empty())
}

/// The result code for a processed object.
pub fn result_code(outcome: &RecordOutcome) -> &'static str {
    match outcome.outcome {
        "written" => SUCCEEDED,
        "failed" if outcome.transient => TEMPORARY_FAILURE,
        // Skipped (not an image, outside the input prefix, a result) or failed for good.
        _ => PERMANENT_FAILURE,
    }
}

/// An S3 Batch Operations invocation: every task is processed (concurrently) and answered.
/// An error (an unknown schema, a malformed event) fails the whole invocation.
pub async fn handle_batch_event(
    app: &App,
    event: Value,
    request_id: &str,
) -> Result<Value, String> {
    let named: Vec<TaskBucket> = serde_json::from_value(event["tasks"].clone())
        .map_err(|e| format!("malformed S3 Batch Operations event: {e}"))?;
    let event: S3BatchJobEvent = serde_json::from_value(event)
        .map_err(|e| format!("malformed S3 Batch Operations event: {e}"))?;
    let version = event.invocation_schema_version.clone().unwrap_or_default();
    if version != "1.0" && version != "2.0" {
        return Err(format!(
            "unsupported S3 Batch Operations invocation schema {version:?} (expected 1.0 or 2.0)"
        ));
    }
    let tasks = event.tasks.iter().zip(named.iter());
    let results = join_all(tasks.map(|(task, named)| process_task(app, task, named))).await;
    let failed = results
        .iter()
        .filter(|r| r.result_code.as_deref() != Some(SUCCEEDED));
    tracing::info!(
        request_id,
        job = event.job.id.as_deref().unwrap_or_default(),
        tasks = results.len(),
        failed = failed.count(),
        "s3 batch"
    );
    let mut response = S3BatchJobResponse::default();
    response.invocation_schema_version = Some(version);
    // Tasks whose object is gone are permanent failures, as when the function reports it.
    response.treat_missing_keys_as = Some(PERMANENT_FAILURE.into());
    response.invocation_id = event.invocation_id;
    response.results = results;
    serde_json::to_value(&response).map_err(|e| format!("cannot serialize the batch response: {e}"))
}

async fn process_task(app: &App, task: &S3BatchJobTask, named: &TaskBucket) -> S3BatchJobResult {
    let mut result = S3BatchJobResult::default();
    result.task_id = task.task_id.clone();
    let (Some(bucket), Some(key)) = (task_bucket(task, named), task.s3_key.clone()) else {
        result.result_code = Some(PERMANENT_FAILURE.into());
        result.result_string = Some("the task names no bucket or no key".into());
        return result;
    };
    // Keys arrive URL-encoded, as in S3 event notifications: the record decodes them.
    // aws_lambda_events' types are non-exhaustive: built from defaults, field by field.
    let mut object = S3Object::default();
    object.key = Some(key);
    object.version_id = task.s3_version_id.clone();
    let mut s3_bucket = S3Bucket::default();
    s3_bucket.name = Some(bucket);
    let mut entity = S3Entity::default();
    entity.bucket = s3_bucket;
    entity.object = object;
    let mut record = S3EventRecord::default();
    record.event_source = Some("aws:s3".into());
    record.event_name = Some("BatchOperations:LambdaInvoke".into());
    record.s3 = entity;
    let outcome = app.process_record(record, false).await;
    let code = result_code(&outcome);
    if code != SUCCEEDED {
        tracing::error!(
            task_id = task.task_id.as_deref().unwrap_or_default(),
            code,
            reason = outcome.reason.as_deref().unwrap_or_default(),
            "task failed"
        );
    }
    result.result_code = Some(code.into());
    result.result_string = match code {
        SUCCEEDED => outcome.result_key,
        _ => outcome.reason,
    };
    result
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn app() -> App {
        App::without_s3()
    }

    fn run(event: Value) -> Result<Value, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(handle_batch_event(&app(), event, "r"))
    }

    fn v1() -> Value {
        serde_json::from_str(include_str!("../events/s3-batch-v1.json")).unwrap()
    }

    fn v2() -> Value {
        serde_json::from_str(include_str!("../events/s3-batch-v2.json")).unwrap()
    }

    #[test]
    fn recognizes_batch_events_only() {
        assert!(is_batch_event(&v1()));
        assert!(is_batch_event(&v2()));
        let sqs: Value =
            serde_json::from_str(include_str!("../events/sqs-s3-notifications.json")).unwrap();
        assert!(!is_batch_event(&sqs));
        let s3: Value = serde_json::from_str(include_str!("../events/s3-put.json")).unwrap();
        assert!(!is_batch_event(&s3));
    }

    #[test]
    fn buckets_from_either_schema() {
        let tasks = |e: Value| -> (Vec<S3BatchJobTask>, Vec<TaskBucket>) {
            (
                serde_json::from_value(e["tasks"].clone()).unwrap(),
                serde_json::from_value(e["tasks"].clone()).unwrap(),
            )
        };
        let (t1, n1) = tasks(v1());
        assert_eq!(
            task_bucket(&t1[0], &n1[0]).as_deref(),
            Some("lambda-detect-local")
        );
        let (t2, n2) = tasks(v2());
        assert_eq!(
            task_bucket(&t2[0], &n2[0]).as_deref(),
            Some("lambda-detect-local")
        );
        let mut odd = S3BatchJobTask::default();
        odd.s3_bucket_arn = Some("arn:aws:s3:us-east-1:0123456788:examplebucket".into());
        assert_eq!(
            task_bucket(&odd, &TaskBucket::default()).as_deref(),
            Some("examplebucket")
        );
        assert_eq!(
            task_bucket(&S3BatchJobTask::default(), &TaskBucket::default()),
            None
        );
    }

    #[test]
    fn result_codes() {
        let outcome = |o: &'static str, transient: bool| RecordOutcome {
            bucket: "b".into(),
            key: "k".into(),
            outcome: o,
            result_key: None,
            reason: None,
            transient,
        };
        assert_eq!(result_code(&outcome("written", false)), SUCCEEDED);
        assert_eq!(result_code(&outcome("failed", true)), TEMPORARY_FAILURE);
        assert_eq!(result_code(&outcome("failed", false)), PERMANENT_FAILURE);
        assert_eq!(result_code(&outcome("skipped", false)), PERMANENT_FAILURE);
    }

    #[test]
    fn answers_in_the_invocation_schema() {
        for (event, version) in [(v1(), "1.0"), (v2(), "2.0")] {
            let reply = run(event.clone()).unwrap();
            assert_eq!(reply["invocationSchemaVersion"], version);
            assert_eq!(reply["invocationId"], event["invocationId"]);
            assert_eq!(reply["treatMissingKeysAs"], PERMANENT_FAILURE);
            let results = reply["results"].as_array().unwrap();
            assert_eq!(results.len(), event["tasks"].as_array().unwrap().len());
            assert_eq!(results[0]["taskId"], event["tasks"][0]["taskId"]);
        }
    }

    #[test]
    fn non_images_and_keys_outside_the_prefix_fail_for_good() {
        let mut event = v2();
        let task = event["tasks"][0].clone();
        let with_key = |id: &str, key: &str| {
            let mut t = task.clone();
            t["taskId"] = json!(id);
            t["s3Key"] = json!(key);
            t
        };
        event["tasks"] = json!([
            with_key("txt", "incoming/notes.txt"),
            with_key("outside", "elsewhere/a.jpg"),
            with_key("upper", "incoming/IMG_0001.JPG"),
            {"taskId": "nokey", "s3Bucket": "b"},
        ]);
        let reply = run(event).unwrap();
        let codes: Vec<(&str, &str)> = reply["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["taskId"].as_str().unwrap(),
                    r["resultCode"].as_str().unwrap(),
                )
            })
            .collect();
        // .JPG is processed: with no S3 configured it fails, but not as a skipped non-image.
        assert_eq!(
            codes,
            [
                ("txt", PERMANENT_FAILURE),
                ("outside", PERMANENT_FAILURE),
                ("upper", PERMANENT_FAILURE),
                ("nokey", PERMANENT_FAILURE)
            ]
        );
        let upper = &reply["results"][2]["resultString"];
        assert!(
            upper.as_str().unwrap().contains("S3 is not configured"),
            "{upper}"
        );
        let txt = &reply["results"][0]["resultString"];
        assert!(txt.as_str().unwrap().contains("not an image"), "{txt}");
    }

    #[test]
    fn unknown_schemas_fail_the_invocation() {
        let mut event = v2();
        event["invocationSchemaVersion"] = json!("3.0");
        assert!(run(event).unwrap_err().contains("unsupported"));
    }
}
