//! The Task Metadata endpoint v4 `/task` response: the task's identity and its `ClockDrift`, which
//! Fargate publishes at task level (and, on older platform versions, inside a container object).
//! Pure: bytes in, typed values or a precise error out.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Who the task is: the dimensions of its metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskIdentity {
    /// The cluster's name (the metadata gives an ARN or, on some platforms, a name).
    pub cluster_name: String,
    pub task_arn: String,
    pub task_id: String,
    pub family: String,
    pub revision: String,
    pub service_name: Option<String>,
    pub launch_type: Option<String>,
    pub availability_zone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    Synchronized,
    NotSynchronized,
}

impl SyncStatus {
    pub const fn name(self) -> &'static str {
        match self {
            SyncStatus::Synchronized => "SYNCHRONIZED",
            SyncStatus::NotSynchronized => "NOT_SYNCHRONIZED",
        }
    }
}

/// What ECS says about the clock: the most the clock may be off, in milliseconds, as measured at
/// `reference`, and whether it is synchronised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockDrift {
    pub error_bound_ms: f64,
    pub reference: DateTime<Utc>,
    pub status: SyncStatus,
}

/// A `/task` response, reduced to what the monitor uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMetadata {
    pub identity: TaskIdentity,
    /// `None` when the response carries no ClockDrift at all (EC2 launch type, older platforms).
    pub clock: Option<ClockDrift>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("task metadata is not valid JSON: {0}")]
    Json(String),
    #[error("task metadata field {field}: {problem}")]
    Field { field: String, problem: String },
}

fn field_error(field: &str, problem: impl Into<String>) -> MetadataError {
    MetadataError::Field {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTask {
    cluster: Option<String>,
    #[serde(rename = "TaskARN")]
    task_arn: Option<String>,
    family: Option<String>,
    revision: Option<String>,
    service_name: Option<String>,
    launch_type: Option<String>,
    availability_zone: Option<String>,
    clock_drift: Option<RawClockDrift>,
    #[serde(default)]
    containers: Vec<RawContainer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawContainer {
    name: Option<String>,
    clock_drift: Option<RawClockDrift>,
}

/// Kept loose (any JSON value) so a wrong type is reported by field name, not as a serde position.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawClockDrift {
    clock_error_bound: Option<serde_json::Value>,
    reference_timestamp: Option<serde_json::Value>,
    clock_synchronization_status: Option<serde_json::Value>,
}

fn required(value: Option<String>, field: &str) -> Result<String, MetadataError> {
    match value {
        Some(text) if !text.trim().is_empty() => Ok(text),
        Some(_) => Err(field_error(field, "is empty")),
        None => Err(field_error(field, "is missing")),
    }
}

/// `arn:aws:ecs:region:account:cluster/NAME` or a bare name.
fn cluster_name(cluster: &str) -> &str {
    cluster.rsplit_once(":cluster/").map_or(cluster, |(_, name)| name)
}

fn clock_drift(raw: RawClockDrift, path: &str) -> Result<ClockDrift, MetadataError> {
    let bound_field = format!("{path}.ClockErrorBound");
    let error_bound_ms = match raw.clock_error_bound {
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| field_error(&bound_field, format!("{n} is not a finite number")))?,
        Some(other) => {
            return Err(field_error(
                &bound_field,
                format!("expected milliseconds as a number, got {other}"),
            ));
        }
        None => return Err(field_error(&bound_field, "is missing or null")),
    };
    if !error_bound_ms.is_finite() || error_bound_ms < 0.0 {
        return Err(field_error(
            &bound_field,
            format!("{error_bound_ms} is not a bound (must be ≥ 0)"),
        ));
    }
    let reference_field = format!("{path}.ReferenceTimestamp");
    let reference =
        match raw.reference_timestamp {
            Some(serde_json::Value::String(text)) => DateTime::parse_from_rfc3339(&text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|err| field_error(&reference_field, format!("{text:?} is not an RFC 3339 time: {err}")))?,
            Some(other) => {
                return Err(field_error(
                    &reference_field,
                    format!("expected an RFC 3339 string, got {other}"),
                ));
            }
            None => return Err(field_error(&reference_field, "is missing or null")),
        };
    let status_field = format!("{path}.ClockSynchronizationStatus");
    let status = match raw.clock_synchronization_status {
        Some(serde_json::Value::String(text)) => match text.as_str() {
            "SYNCHRONIZED" => SyncStatus::Synchronized,
            "NOT_SYNCHRONIZED" => SyncStatus::NotSynchronized,
            _ => {
                return Err(field_error(
                    &status_field,
                    format!("{text:?} is neither SYNCHRONIZED nor NOT_SYNCHRONIZED"),
                ));
            }
        },
        Some(other) => return Err(field_error(&status_field, format!("expected a string, got {other}"))),
        None => return Err(field_error(&status_field, "is missing or null")),
    };
    Ok(ClockDrift {
        error_bound_ms,
        reference,
        status,
    })
}

/// Parses a `/task` response. ClockDrift is taken at task level, else from the first container that
/// has it; a ClockDrift that is present but malformed is an error, never a guessed value.
pub fn parse_task_metadata(body: &[u8]) -> Result<TaskMetadata, MetadataError> {
    let raw: RawTask = serde_json::from_slice(body).map_err(|err| MetadataError::Json(err.to_string()))?;
    let cluster = required(raw.cluster, "Cluster")?;
    let task_arn = required(raw.task_arn, "TaskARN")?;
    let task_id = task_arn
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty() && task_arn.contains('/'))
        .ok_or_else(|| field_error("TaskARN", format!("{task_arn:?} has no task id after its last '/'")))?
        .to_owned();
    let clock = match raw.clock_drift {
        Some(drift) => Some(clock_drift(drift, "ClockDrift")?),
        None => raw
            .containers
            .into_iter()
            .enumerate()
            .find_map(|(i, container)| {
                let name = container.name.unwrap_or_else(|| i.to_string());
                container
                    .clock_drift
                    .map(|drift| clock_drift(drift, &format!("Containers[{name}].ClockDrift")))
            })
            .transpose()?,
    };
    Ok(TaskMetadata {
        identity: TaskIdentity {
            cluster_name: cluster_name(&cluster).to_owned(),
            task_arn,
            task_id,
            family: required(raw.family, "Family")?,
            revision: required(raw.revision, "Revision")?,
            service_name: raw.service_name.filter(|name| !name.is_empty()),
            launch_type: raw.launch_type,
            availability_zone: raw.availability_zone,
        },
        clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(extra: serde_json::Value) -> Vec<u8> {
        let mut body = json!({
            "Cluster": "arn:aws:ecs:eu-west-1:111122223333:cluster/payments",
            "TaskARN": "arn:aws:ecs:eu-west-1:111122223333:task/payments/0123456789abcdef",
            "Family": "ledger", "Revision": "14", "LaunchType": "FARGATE",
            "AvailabilityZone": "eu-west-1b", "Containers": []
        });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body.to_string().into_bytes()
    }

    #[test]
    fn task_level_clock_drift_and_identity() {
        let parsed = parse_task_metadata(&task(json!({"ServiceName": "ledger-api", "ClockDrift": {
            "ClockErrorBound": 0.75, "ReferenceTimestamp": "2026-11-22T09:59:30Z",
            "ClockSynchronizationStatus": "SYNCHRONIZED"}})))
        .unwrap();
        assert_eq!(parsed.identity.cluster_name, "payments");
        assert_eq!(parsed.identity.task_id, "0123456789abcdef");
        assert_eq!(parsed.identity.service_name.as_deref(), Some("ledger-api"));
        let clock = parsed.clock.unwrap();
        assert_eq!(clock.error_bound_ms, 0.75);
        assert_eq!(clock.status, SyncStatus::Synchronized);
        assert_eq!(clock.reference.timestamp(), 1_795_341_570);
    }

    #[test]
    fn container_level_clock_drift_is_used_when_the_task_has_none() {
        let parsed = parse_task_metadata(&task(json!({"Containers": [{"Name": "app"}, {"Name": "sidecar",
            "ClockDrift": {"ClockErrorBound": 2.5, "ReferenceTimestamp": "2026-11-22T09:00:00.250Z",
            "ClockSynchronizationStatus": "NOT_SYNCHRONIZED"}}]})))
        .unwrap();
        let clock = parsed.clock.unwrap();
        assert_eq!((clock.error_bound_ms, clock.status), (2.5, SyncStatus::NotSynchronized));
    }

    #[test]
    fn no_clock_drift_is_unavailable_not_zero() {
        let parsed = parse_task_metadata(&task(json!({"LaunchType": "EC2"}))).unwrap();
        assert_eq!(parsed.clock, None);
        assert_eq!(parsed.identity.service_name, None);
    }

    #[test]
    fn malformed_fields_are_named() {
        let cases = [
            (
                json!({"ClockDrift": {"ClockErrorBound": null, "ReferenceTimestamp": "2026-11-22T09:00:00Z",
                "ClockSynchronizationStatus": "SYNCHRONIZED"}}),
                "task metadata field ClockDrift.ClockErrorBound: is missing or null",
            ),
            (
                json!({"ClockDrift": {"ClockErrorBound": "0.5", "ReferenceTimestamp": "2026-11-22T09:00:00Z",
                "ClockSynchronizationStatus": "SYNCHRONIZED"}}),
                "task metadata field ClockDrift.ClockErrorBound: expected milliseconds as a number, got \"0.5\"",
            ),
            (
                json!({"ClockDrift": {"ClockErrorBound": -1, "ReferenceTimestamp": "2026-11-22T09:00:00Z",
                "ClockSynchronizationStatus": "SYNCHRONIZED"}}),
                "task metadata field ClockDrift.ClockErrorBound: -1 is not a bound (must be ≥ 0)",
            ),
            (
                json!({"ClockDrift": {"ClockErrorBound": 1, "ReferenceTimestamp": "yesterday",
                "ClockSynchronizationStatus": "SYNCHRONIZED"}}),
                "task metadata field ClockDrift.ReferenceTimestamp: \"yesterday\" is not an RFC 3339 time: premature end of input",
            ),
            (
                json!({"ClockDrift": {"ClockErrorBound": 1, "ReferenceTimestamp": "2026-11-22T09:00:00Z",
                "ClockSynchronizationStatus": "MAYBE"}}),
                "task metadata field ClockDrift.ClockSynchronizationStatus: \"MAYBE\" is neither SYNCHRONIZED nor NOT_SYNCHRONIZED",
            ),
            (
                json!({"Containers": [{"Name": "app", "ClockDrift": {"ClockErrorBound": 1,
                "ReferenceTimestamp": "2026-11-22T09:00:00Z"}}]}),
                "task metadata field Containers[app].ClockDrift.ClockSynchronizationStatus: is missing or null",
            ),
            (json!({"Family": ""}), "task metadata field Family: is empty"),
            (
                json!({"TaskARN": "not-an-arn"}),
                "task metadata field TaskARN: \"not-an-arn\" has no task id after its last '/'",
            ),
        ];
        for (extra, message) in cases {
            assert_eq!(parse_task_metadata(&task(extra)).unwrap_err().to_string(), message);
        }
        assert!(matches!(
            parse_task_metadata(b"{\"Cluster\": "),
            Err(MetadataError::Json(_))
        ));
    }
}
