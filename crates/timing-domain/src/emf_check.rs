//! The rules of the EMF specification, checked on every document the tests see (unit tests here,
//! the integration tests through the `test-support` feature). Not shipped: the functions build
//! documents that follow the rules by construction.

use serde_json::Value;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid EMF document: {0}")]
pub struct EmfViolation(pub String);

const EMF_UNITS: [&str; 27] = [
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

/// Checks a document against the rules of the EMF specification
/// (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
pub fn validate_emf(document: &Value) -> Result<(), EmfViolation> {
    let fail = |message: String| Err(EmfViolation(message));
    let root = document
        .as_object()
        .ok_or_else(|| EmfViolation("root is not an object".into()))?;
    let metadata = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or_else(|| EmfViolation("_aws object missing".into()))?;
    if metadata.get("Timestamp").and_then(Value::as_i64).is_none_or(|t| t < 0) {
        return fail("_aws.Timestamp must be a non-negative integer of epoch milliseconds".into());
    }
    let directives = metadata
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or_else(|| EmfViolation("_aws.CloudWatchMetrics must be an array".into()))?;
    for directive in directives {
        match directive.get("Namespace").and_then(Value::as_str) {
            Some(namespace) if !namespace.is_empty() && namespace.len() <= 1024 && !namespace.starts_with("AWS/") => {}
            other => {
                return fail(format!("Namespace must be a non-empty string outside AWS/: {other:?}"));
            }
        }
        let dimension_sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or_else(|| EmfViolation("Dimensions must be an array".into()))?;
        for set in dimension_sets {
            let names = set
                .as_array()
                .ok_or_else(|| EmfViolation("a dimension set must be an array".into()))?;
            if names.len() > 30 {
                return fail(format!("dimension set of {} names exceeds 30", names.len()));
            }
            for name in names {
                let name = name
                    .as_str()
                    .ok_or_else(|| EmfViolation("dimension names must be strings".into()))?;
                if !root.get(name).is_some_and(Value::is_string) {
                    return fail(format!("dimension {name} has no string value at the root"));
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or_else(|| EmfViolation("Metrics must be an array".into()))?;
        if metrics.is_empty() || metrics.len() > 100 {
            return fail(format!("a directive holds 1 to 100 metrics, not {}", metrics.len()));
        }
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| EmfViolation("every metric needs a Name".into()))?;
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| EMF_UNITS.contains(&u))
            {
                return fail(format!("metric {name} has unit {unit}, not a CloudWatch unit"));
            }
            let value_ok = match root.get(name) {
                Some(Value::Number(_)) => true,
                Some(Value::Array(values)) => {
                    !values.is_empty() && values.len() <= 100 && values.iter().all(Value::is_number)
                }
                _ => false,
            };
            if !value_ok {
                return fail(format!("metric {name} has no numeric value at the root"));
            }
        }
    }
    Ok(())
}
