//! The one place that recognises which kind of non-HTTP event arrived. lambda_http hands such
//! events over as pass-through requests carrying the raw JSON; [`Event::parse`] decides the
//! kind and parses it into its `aws_lambda_events` type. A new kind (an SQS queue, S3 Batch
//! Operations) is a variant here plus an arm in `App::handle_event`. SQS batches and S3 Batch
//! Operations tasks stay JSON values here: `queue` and `batch` parse them into their
//! `aws_lambda_events` types.

use serde_json::Value;

use crate::batch::is_batch_event;
use crate::queue::is_sqs_event;
use crate::s3::{is_s3_event, S3Event};

/// A non-HTTP event the function handles.
#[derive(Debug, Clone)]
pub enum Event {
    /// An S3 event notification (one or more records).
    S3(S3Event),
    /// An SQS batch whose messages carry S3 notifications (S3 → SQS → Lambda).
    Sqs(Value),
    /// An S3 Batch Operations invocation (schema 1.0 or 2.0).
    Batch(Value),
}

impl Event {
    /// The event in a pass-through body, or why it is not one this function handles.
    pub fn parse(body: &[u8]) -> Result<Event, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the event is not JSON: {e}"))?;
        if is_sqs_event(&value) {
            return Ok(Event::Sqs(value));
        }
        if is_batch_event(&value) {
            return Ok(Event::Batch(value));
        }
        if is_s3_event(&value) {
            return serde_json::from_value(value)
                .map(Event::S3)
                .map_err(|e| format!("malformed S3 event: {e}"));
        }
        Err(
            "unsupported event: expected an HTTP request, an S3 event notification, an SQS \
             batch or an S3 Batch Operations task"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_s3_events_and_refuses_others() {
        let Ok(Event::S3(event)) = Event::parse(include_bytes!("../events/s3-multi.json")) else {
            panic!("events/s3-multi.json is an S3 event");
        };
        assert_eq!(event.records.len(), 3);
        let sqs = Event::parse(include_bytes!("../events/sqs-s3-notifications.json"));
        assert!(matches!(sqs, Ok(Event::Sqs(_))), "{sqs:?}");
        let batch = Event::parse(include_bytes!("../events/s3-batch-v2.json"));
        assert!(matches!(batch, Ok(Event::Batch(_))), "{batch:?}");
        let err = Event::parse(br#"{"hello": 1}"#).unwrap_err();
        assert!(err.contains("unsupported event"), "{err}");
        let err = Event::parse(b"not json").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        // Looks like S3, lacks the record fields every real notification has.
        let err =
            Event::parse(br#"{"Records": [{"eventSource": "aws:s3", "s3": {}}]}"#).unwrap_err();
        assert!(err.contains("malformed S3 event"), "{err}");
    }
}
