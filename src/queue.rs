//! SQS batches of S3 upload notifications (bucket → queue → function), answered with a partial
//! batch response: `batchItemFailures` names exactly the messages the queue must deliver again.
//!
//! A message body is an S3 event notification (`{"Records": [...]}`, usually one record) or the
//! `s3:TestEvent` S3 sends once when the bucket's notification is configured (acknowledged,
//! nothing to do). Each record goes through the same per-object processing as a direct S3 event
//! ([`App::process_record`]: key decoding, prefix and extension checks, fetch, detect, write),
//! except that an image that cannot be decoded fails its message instead of getting an error
//! result: the queue retries it and, after its maximum receive count, parks it in the
//! dead-letter queue, where someone looks at it.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::join_all;
use serde_json::Value;

use crate::handler::{App, RecordOutcome};
use crate::s3::{is_s3_event, parse_s3_event, S3Event};

/// Is this JSON a batch of SQS messages?
pub fn is_sqs_event(event: &Value) -> bool {
    event["Records"].as_array().is_some_and(|records| {
        !records.is_empty() && records.iter().all(|r| r["eventSource"] == "aws:sqs")
    })
}

/// What one message asks for.
#[derive(Debug)]
pub enum Notification {
    /// `s3:TestEvent`: S3 checking that it may send to the queue.
    Test,
    Upload(S3Event),
}

/// Reads a message body; an error is the reason the message fails.
pub fn parse_body(body: Option<&str>) -> Result<Notification, String> {
    let body = body.ok_or("the message has no body")?;
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("the message body is not JSON: {e}"))?;
    if value["Event"] == "s3:TestEvent" {
        return Ok(Notification::Test);
    }
    if !is_s3_event(&value) {
        return Err("the message body is not an S3 event notification".into());
    }
    parse_s3_event(value)
        .map(Notification::Upload)
        .map_err(|e| format!("malformed S3 event in the message body: {e}"))
}

/// How one message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome {
    pub message_id: Option<String>,
    /// Why it failed; `None` when every record was written or skipped, or for a test event.
    pub failure: Option<String>,
}

/// An SQS event: every message is processed (concurrently), the failed ones are listed.
/// An error fails the whole invocation, so Lambda returns the whole batch to the queue.
pub async fn handle_sqs_event(app: &App, event: Value, request_id: &str) -> Result<Value, String> {
    let event: SqsEvent =
        serde_json::from_value(event).map_err(|e| format!("malformed SQS event: {e}"))?;
    let outcomes = join_all(event.records.into_iter().map(|m| process_message(app, m))).await;
    let response = batch_response(&outcomes)?;
    tracing::info!(
        request_id,
        messages = outcomes.len(),
        failed = response.batch_item_failures.len(),
        "sqs batch"
    );
    serde_json::to_value(&response).map_err(|e| format!("cannot serialize the batch response: {e}"))
}

async fn process_message(app: &App, message: SqsMessage) -> MessageOutcome {
    let failure = match parse_body(message.body.as_deref()) {
        Err(reason) => Some(reason),
        Ok(Notification::Test) => None,
        Ok(Notification::Upload(event)) => {
            let mut reasons = Vec::new();
            for record in event.records {
                let outcome = app.process_record(record, false).await;
                if outcome.outcome == "failed" {
                    reasons.push(failure_reason(&outcome));
                }
            }
            (!reasons.is_empty()).then(|| reasons.join("; "))
        }
    };
    if let Some(reason) = &failure {
        tracing::error!(
            message_id = message.message_id.as_deref().unwrap_or_default(),
            reason,
            "message failed"
        );
    }
    MessageOutcome {
        message_id: message.message_id,
        failure,
    }
}

fn failure_reason(outcome: &RecordOutcome) -> String {
    let reason = outcome.reason.as_deref().unwrap_or("failed");
    format!("s3://{}/{}: {reason}", outcome.bucket, outcome.key)
}

/// The partial batch response: exactly the failed messages. A failed message without an id
/// cannot be named, so then the whole invocation fails instead (and the batch is retried).
pub fn batch_response(outcomes: &[MessageOutcome]) -> Result<SqsBatchResponse, String> {
    let mut response = SqsBatchResponse::default();
    for outcome in outcomes {
        let Some(reason) = &outcome.failure else {
            continue;
        };
        let id = outcome
            .message_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| format!("a message without a messageId failed ({reason})"))?;
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fixture() -> Value {
        serde_json::from_str(include_str!("../events/sqs-s3-notifications.json")).unwrap()
    }

    fn app() -> App {
        App::without_s3()
    }

    fn message(id: &str, body: &str) -> Value {
        let mut m = fixture()["Records"][0].clone();
        m["messageId"] = json!(id);
        m["body"] = json!(body);
        m
    }

    fn upload_body(key: &str) -> String {
        let event: Value = serde_json::from_str(include_str!("../events/s3-put.json")).unwrap();
        let mut event = event;
        event["Records"][0]["s3"]["object"]["key"] = json!(key);
        event.to_string()
    }

    #[test]
    fn recognizes_sqs_events_only() {
        assert!(is_sqs_event(&fixture()));
        let s3: Value = serde_json::from_str(include_str!("../events/s3-put.json")).unwrap();
        assert!(!is_sqs_event(&s3));
        let http: Value =
            serde_json::from_str(include_str!("../events/http-api-v2-health.json")).unwrap();
        assert!(!is_sqs_event(&http));
        assert!(!is_sqs_event(&json!({"Records": []})));
    }

    #[test]
    fn the_fixture_holds_a_test_event_and_uploads() {
        let event: SqsEvent = serde_json::from_value(fixture()).unwrap();
        let kinds: Vec<&str> = event
            .records
            .iter()
            .map(|m| match parse_body(m.body.as_deref()).unwrap() {
                Notification::Test => "test",
                Notification::Upload(_) => "upload",
            })
            .collect();
        assert_eq!(kinds, ["test", "upload", "upload"]);
    }

    #[test]
    fn bodies_that_are_not_notifications_are_errors() {
        assert!(parse_body(None).unwrap_err().contains("no body"));
        assert!(parse_body(Some("{oops")).unwrap_err().contains("not JSON"));
        assert!(parse_body(Some(r#"{"hello": 1}"#))
            .unwrap_err()
            .contains("not an S3 event"));
        assert!(
            parse_body(Some(r#"{"Records":[{"eventSource":"aws:s3","s3":{}}]}"#))
                .unwrap_err()
                .contains("malformed S3 event")
        );
    }

    #[test]
    fn batch_response_lists_exactly_the_failed_ids() {
        let outcome = |id: &str, failure: Option<&str>| MessageOutcome {
            message_id: Some(id.into()),
            failure: failure.map(str::to_string),
        };
        let response = batch_response(&[
            outcome("a", None),
            outcome("b", Some("missing")),
            outcome("c", None),
            outcome("d", Some("corrupt")),
        ])
        .unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "d"}]})
        );
        let none = batch_response(&[outcome("a", None)]).unwrap();
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            json!({"batchItemFailures": []})
        );
        let nameless = MessageOutcome {
            message_id: None,
            failure: Some("x".into()),
        };
        assert!(batch_response(&[nameless]).is_err());
    }

    #[test]
    fn a_batch_acknowledges_tests_and_skips_and_lists_failures() {
        let event = json!({"Records": [
            message("test", r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#),
            message("upper", &upload_body("incoming/IMG_0001.JPG")),
            message("text", &upload_body("incoming/notes.txt")),
            message("elsewhere", &upload_body("other/a.jpg")),
            message("garbage", "not json"),
        ]});
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let reply = rt.block_on(handle_sqs_event(&app(), event, "r")).unwrap();
        // .JPG is an image (processed, and failing here only for want of S3); .txt and keys
        // outside incoming/ are skipped, which acknowledges them.
        assert_eq!(
            reply,
            json!({"batchItemFailures": [{"itemIdentifier": "upper"}, {"itemIdentifier": "garbage"}]})
        );
    }

    #[test]
    fn a_malformed_sqs_event_fails_the_invocation() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let event = json!({"Records": [{"eventSource": "aws:sqs", "attributes": 5}]});
        let err = rt
            .block_on(handle_sqs_event(&app(), event, "r"))
            .unwrap_err();
        assert!(err.contains("malformed SQS event"), "{err}");
    }
}
