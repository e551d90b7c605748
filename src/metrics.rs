//! CloudWatch Embedded Metric Format (EMF): one JSON line on stdout per invocation, which
//! CloudWatch Logs turns into metrics without any API call.
//!
//! The specification (docs.aws.amazon.com, "Embedded metric format specification") requires a
//! root `_aws` object with `Timestamp` (epoch milliseconds) and `CloudWatchMetrics`: an array
//! of directives, each with `Namespace`, `Dimensions` (an array of dimension sets, each an
//! array of names of string members of the root) and `Metrics` (objects with `Name`, naming a
//! numeric member of the root, and optional `Unit`). Four numbers and one dimension need no
//! client library; the test below checks the line against those rules.

use serde_json::{json, Value};

/// The namespace the function's metrics appear under.
pub const NAMESPACE: &str = "lambda-detect";

/// What one invocation reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvocationMetrics {
    pub images: usize,
    pub failed: usize,
    pub inference_ms: f64,
    pub total_ms: f64,
}

impl InvocationMetrics {
    /// The EMF document for `function` at `timestamp_ms` (epoch milliseconds).
    pub fn to_emf(&self, function: &str, timestamp_ms: u64) -> Value {
        json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [
                        {"Name": "InferenceMs", "Unit": "Milliseconds"},
                        {"Name": "TotalMs", "Unit": "Milliseconds"},
                        {"Name": "Images", "Unit": "Count"},
                        {"Name": "FailedImages", "Unit": "Count"}
                    ]
                }]
            },
            "FunctionName": function,
            "InferenceMs": self.inference_ms,
            "TotalMs": self.total_ms,
            "Images": self.images,
            "FailedImages": self.failed,
        })
    }

    /// Print the line (stdout is what CloudWatch Logs ingests). The function name is Lambda's
    /// `AWS_LAMBDA_FUNCTION_NAME`, `detect-lambda` elsewhere.
    pub fn emit(&self) {
        let timestamp_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let function =
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "detect-lambda".into());
        println!("{}", self.to_emf(&function, timestamp_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units the specification allows.
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    #[test]
    fn line_follows_the_emf_specification() {
        let metrics = InvocationMetrics {
            images: 3,
            failed: 1,
            inference_ms: 5.5,
            total_ms: 20.25,
        };
        let doc = metrics.to_emf("fn-name", 1_700_000_000_123);
        // The line is one JSON object (no newline inside: one log event).
        assert!(!doc.to_string().contains('\n'));
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"].as_u64(), Some(1_700_000_000_123));
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics");
        assert!(!directives.is_empty());
        for directive in directives {
            let namespace = directive["Namespace"].as_str().expect("Namespace");
            assert!((1..=255).contains(&namespace.len()));
            let dimension_sets = directive["Dimensions"].as_array().expect("Dimensions");
            for set in dimension_sets {
                let set = set.as_array().expect("a dimension set is an array");
                assert!(set.len() <= 30);
                for name in set {
                    let name = name.as_str().expect("dimension names are strings");
                    assert!(doc[name].is_string(), "dimension {name} has a string value");
                }
            }
            let defs = directive["Metrics"].as_array().expect("Metrics");
            assert!(!defs.is_empty() && defs.len() <= 100);
            for def in defs {
                let name = def["Name"].as_str().expect("Name");
                assert!(doc[name].is_number(), "metric {name} has a numeric value");
                let unit = def["Unit"].as_str().expect("Unit");
                assert!(UNITS.contains(&unit), "{unit}");
            }
        }
        assert_eq!(doc["FunctionName"], "fn-name");
        assert_eq!(doc["Images"], 3);
        assert_eq!(doc["FailedImages"], 1);
        assert_eq!(doc["TotalMs"], 20.25);
    }
}
