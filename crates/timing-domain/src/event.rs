//! The "ECS Task State Change" event (source `aws.ecs`), as the ECS developer guide documents it.
//! `aws_lambda_events` provides the EventBridge envelope; this module provides the typed `detail`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

pub const EVENT_SOURCE: &str = "aws.ecs";
pub const DETAIL_TYPE: &str = "ECS Task State Change";

pub type TaskStateChangeEvent = EventBridgeEvent<TaskStateChange>;

/// `detail` of an ECS Task State Change. Unknown fields are ignored; everything but the three
/// identity fields is optional because older platforms and EC2 tasks omit many of them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    pub task_arn: String,
    pub task_definition_arn: String,
    /// Rises with every state change of a task; a duplicate delivery repeats it.
    pub version: u64,
    pub cluster_arn: Option<String>,
    pub container_instance_arn: Option<String>,
    pub last_status: Option<String>,
    pub desired_status: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_name: Option<String>,
    pub platform_version: Option<String>,
    pub platform_family: Option<String>,
    pub availability_zone: Option<String>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub connectivity: Option<String>,
    pub health_status: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub attributes: Vec<KeyValue>,
    pub overrides: Option<Overrides>,
    pub created_at: Option<Timestamp>,
    pub connectivity_at: Option<Timestamp>,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub stopping_at: Option<Timestamp>,
    pub execution_stopped_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: Option<String>,
    pub container_arn: Option<String>,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub runtime_id: Option<String>,
    pub last_status: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub health_status: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Option<String>,
    #[serde(default)]
    pub details: Vec<KeyValue>,
}

/// The `{name, value}` pairs of attachment details, attributes and environment overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct KeyValue {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overrides {
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: Option<String>,
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Vec<KeyValue>,
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Malformed JSON, a missing required field or a field of the wrong type, located by its path.
    #[error("invalid ECS task state change at `{path}`: {message}")]
    Field { path: String, message: String },
    /// The same, in a task-sidecar image report.
    #[error("invalid image report at `{path}`: {message}")]
    Report { path: String, message: String },
    #[error(
        "not an ECS task state change: source {event_source:?}, detail-type {detail_type:?} (expected {EVENT_SOURCE:?}, {DETAIL_TYPE:?}, or the task-sidecar's image report)"
    )]
    WrongKind { event_source: String, detail_type: String },
    #[error(transparent)]
    Arn(#[from] crate::arn::ArnError),
    /// The envelope's account (set by EventBridge: the account that put the event, or that forwarded it
    /// from its own bus; no caller can choose it) is not the task's. In central mode every member may put
    /// events on the central bus, so this is what keeps one account's events off another's records.
    #[error(
        "event from account {envelope_account} names {task_arn}, a task of account {task_account}: an account reports only its own tasks"
    )]
    ForeignTask {
        envelope_account: String,
        task_arn: String,
        task_account: String,
    },
    #[error("empty payload: expected one ECS task state change event (EventBridge JSON)")]
    Empty,
    #[error(
        "event of {size} bytes is larger than EventBridge's {MAX_EVENT_BYTES}-byte limit, so it did not come from the rule (nor would its record fit a DynamoDB item)"
    )]
    TooLarge { size: usize },
}

/// EventBridge's largest event (PutEvents entry): 256 KB. Refusing more bounds a record below
/// DynamoDB's 400 KB item limit, so a write never fails for size.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Refuses an event whose envelope names another account than its task's ARN. An envelope without one
/// (a hand-made event) is not checked. The region is not: it says where the event was put, which is no
/// other account's business.
pub fn check_origin(envelope_account: Option<&str>, task_arn: &str) -> Result<(), EventError> {
    let task = crate::arn::parse_task_arn(task_arn)?;
    match envelope_account {
        Some(account) if account != task.account => Err(EventError::ForeignTask {
            envelope_account: account.chars().take(64).collect(),
            task_arn: task_arn.to_owned(),
            task_account: task.account.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Parses an EventBridge envelope holding an ECS Task State Change, naming the offending field on error.
pub fn parse_event(json: &[u8]) -> Result<TaskStateChangeEvent, EventError> {
    if json.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge { size: json.len() });
    }
    if json.trim_ascii().is_empty() {
        return Err(EventError::Empty);
    }
    // Fast path: one typed pass. Only a rejected event pays for locating the fault.
    match serde_json::from_slice::<TaskStateChangeEvent>(json) {
        Ok(event) => check_kind(&event.source, &event.detail_type).map(|()| event),
        Err(_) => Err(explain_rejection(json)),
    }
}

/// Says why an event did not parse: another kind of event, or the path of the first bad field.
fn explain_rejection(json: &[u8]) -> EventError {
    #[derive(Deserialize)]
    struct Kind {
        source: Option<String>,
        #[serde(rename = "detail-type")]
        detail_type: Option<String>,
    }
    // The kind first, so an event of another service is called that, not "missing field taskArn".
    if let Ok(Kind {
        source: Some(source),
        detail_type: Some(detail_type),
    }) = serde_json::from_slice(json)
        && let Err(wrong_kind) = check_kind(&source, &detail_type)
    {
        return wrong_kind;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let located = serde_path_to_error::deserialize::<_, TaskStateChangeEvent>(&mut deserializer)
        .map_err(|err| (err.path().to_string(), err.inner().to_string()))
        .and_then(|_| deserializer.end().map_err(|err| (".".to_owned(), err.to_string())));
    let (path, message) = located.err().unwrap_or_else(|| (".".into(), "invalid JSON".into()));
    EventError::Field { path, message }
}

fn check_kind(source: &str, detail_type: &str) -> Result<(), EventError> {
    if source == EVENT_SOURCE && detail_type == DETAIL_TYPE {
        Ok(())
    } else {
        Err(EventError::WrongKind {
            event_source: source.into(),
            detail_type: detail_type.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(detail: serde_json::Value) -> serde_json::Value {
        json!({
            "version": "0", "id": "e1", "detail-type": "ECS Task State Change", "source": "aws.ecs",
            "account": "111122223333", "time": "2020-01-23T17:57:58Z", "region": "us-west-2",
            "resources": [], "detail": detail
        })
    }

    fn minimal() -> serde_json::Value {
        json!({
            "taskArn": "arn:aws:ecs:us-west-2:111122223333:task/c/abc",
            "taskDefinitionArn": "arn:aws:ecs:us-west-2:111122223333:task-definition/web:3",
            "version": 2
        })
    }

    fn error_for(detail: serde_json::Value) -> String {
        parse_event(envelope(detail).to_string().as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_event_over_eventbridges_size_limit_is_refused_unread() {
        let mut detail = minimal();
        detail["stoppedReason"] = json!("r".repeat(MAX_EVENT_BYTES));
        let payload = envelope(detail).to_string();
        let err = parse_event(payload.as_bytes()).unwrap_err();
        assert!(
            matches!(err, EventError::TooLarge { size } if size == payload.len()),
            "{err}"
        );
        let mut detail = minimal();
        detail["stoppedReason"] = json!("r".repeat(MAX_EVENT_BYTES - 1024));
        assert!(parse_event(envelope(detail).to_string().as_bytes()).is_ok());
    }

    #[test]
    fn minimal_detail_parses_and_unknown_fields_are_ignored() {
        let mut detail = minimal();
        detail["somethingNew"] = json!({"nested": [1, 2]});
        let event = parse_event(envelope(detail).to_string().as_bytes()).unwrap();
        assert_eq!(event.detail.version, 2);
        assert_eq!(event.detail.created_at, None);
        assert!(event.detail.containers.is_empty());
    }

    #[test]
    fn every_documented_field_is_read() {
        let mut detail = minimal();
        let object = detail.as_object_mut().unwrap();
        for (key, value) in [
            ("clusterArn", json!("arn:aws:ecs:us-west-2:1:cluster/c")),
            ("lastStatus", json!("STOPPED")),
            ("desiredStatus", json!("STOPPED")),
            ("launchType", json!("FARGATE")),
            ("capacityProviderName", json!("FARGATE_SPOT")),
            ("platformVersion", json!("1.4.0")),
            ("platformFamily", json!("Linux")),
            ("availabilityZone", json!("us-west-2a")),
            ("group", json!("service:web")),
            ("startedBy", json!("ecs-svc/1")),
            ("cpu", json!("256")),
            ("memory", json!("512")),
            ("stopCode", json!("TerminationNotice")),
            ("stoppedReason", json!("Spot")),
            ("connectivity", json!("CONNECTED")),
            (
                "containers",
                json!([{"name": "app", "image": "img", "imageDigest": "sha256:1", "lastStatus": "STOPPED", "exitCode": 137, "reason": "OOM"}]),
            ),
            (
                "attachments",
                json!([{"id": "a", "type": "eni", "status": "DELETED", "details": [{"name": "subnetId", "value": "subnet-1"}]}]),
            ),
            (
                "overrides",
                json!({"containerOverrides": [{"name": "app", "environment": [{"name": "K", "value": "V"}]}]}),
            ),
            ("createdAt", json!("2020-01-01T00:00:00Z")),
            ("connectivityAt", json!("2020-01-01T00:00:01Z")),
            ("pullStartedAt", json!("2020-01-01T00:00:02Z")),
            ("pullStoppedAt", json!("2020-01-01T00:00:03Z")),
            ("startedAt", json!("2020-01-01T00:00:04Z")),
            ("stoppingAt", json!("2020-01-01T00:00:05Z")),
            ("executionStoppedAt", json!("2020-01-01T00:00:06Z")),
            ("stoppedAt", json!("2020-01-01T00:00:07Z")),
            ("updatedAt", json!("2020-01-01T00:00:08Z")),
        ] {
            object.insert(key.into(), value);
        }
        let d = parse_event(envelope(detail).to_string().as_bytes()).unwrap().detail;
        assert_eq!(d.capacity_provider_name.as_deref(), Some("FARGATE_SPOT"));
        assert_eq!(d.platform_family.as_deref(), Some("Linux"));
        assert_eq!(d.stop_code.as_deref(), Some("TerminationNotice"));
        assert_eq!(d.containers[0].exit_code, Some(137));
        assert_eq!(d.containers[0].reason.as_deref(), Some("OOM"));
        assert_eq!(
            d.attachments[0].details[0],
            KeyValue {
                name: "subnetId".into(),
                value: Some("subnet-1".into())
            }
        );
        let env = &d.overrides.unwrap().container_overrides[0].environment;
        assert_eq!(env[0].value.as_deref(), Some("V"));
        let seconds = |t: Option<Timestamp>| t.unwrap().millis() / 1000 - 1_577_836_800; // 2020-01-01T00:00:00Z
        let all = [
            d.created_at,
            d.connectivity_at,
            d.pull_started_at,
            d.pull_stopped_at,
            d.started_at,
            d.stopping_at,
            d.execution_stopped_at,
            d.stopped_at,
            d.updated_at,
        ];
        assert_eq!(all.map(seconds), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn missing_required_fields_are_named() {
        for field in ["taskArn", "taskDefinitionArn", "version"] {
            let mut detail = minimal();
            detail.as_object_mut().unwrap().remove(field);
            let err = error_for(detail);
            assert!(
                err.contains(&format!("missing field `{field}`")) && err.contains("`detail`"),
                "{err}"
            );
        }
    }

    #[test]
    fn wrong_types_are_located() {
        let mut detail = minimal();
        detail["version"] = json!("4");
        let err = error_for(detail);
        assert!(
            err.contains("`detail.version`") && err.contains("invalid type: string \"4\""),
            "{err}"
        );

        let mut detail = minimal();
        detail["containers"] = json!([{"name": "a", "exitCode": "zero"}]);
        assert!(error_for(detail).contains("`detail.containers[0].exitCode`"));

        let mut detail = minimal();
        detail["startedAt"] = json!("yesterday");
        let err = error_for(detail);
        assert!(
            err.contains("`detail.startedAt`") && err.contains("\"yesterday\""),
            "{err}"
        );
    }

    #[test]
    fn an_event_about_another_accounts_task_is_refused() {
        let task_arn = "arn:aws:ecs:us-west-2:111122223333:task/prod/c13b4cb40f1f4fe4a2971f76ae5a47ad";
        assert_eq!(check_origin(Some("111122223333"), task_arn), Ok(()));
        // A hand-made event without an envelope account is not checked.
        assert_eq!(check_origin(None, task_arn), Ok(()));
        let refused = check_origin(Some("444455556666"), task_arn).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "event from account 444455556666 names {task_arn}, a task of account 111122223333: an account \
                 reports only its own tasks"
            )
        );
    }

    #[test]
    fn other_events_are_rejected_by_kind() {
        let mut event = envelope(minimal());
        event["detail-type"] = json!("ECS Container Instance State Change");
        let err = parse_event(event.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, EventError::WrongKind { .. }), "{err}");
        assert!(err.to_string().contains("ECS Container Instance State Change"));
    }

    #[test]
    fn truncated_json_and_trailing_garbage_are_rejected() {
        let text = envelope(minimal()).to_string();
        assert!(matches!(
            parse_event(&text.as_bytes()[..text.len() - 3]),
            Err(EventError::Field { .. })
        ));
        assert!(matches!(
            parse_event(format!("{text} x").as_bytes()),
            Err(EventError::Field { .. })
        ));
    }

    #[test]
    fn an_empty_payload_is_refused_as_empty() {
        assert_eq!(parse_event(b""), Err(EventError::Empty));
        assert_eq!(parse_event(b" \r\n\t"), Err(EventError::Empty));
    }

    #[test]
    fn the_size_limit_counts_every_byte_sent() {
        // A small valid event padded with whitespace, which JSON allows after a value.
        let mut padded = envelope(minimal()).to_string().into_bytes();
        padded.resize(MAX_EVENT_BYTES, b' ');
        assert!(parse_event(&padded).is_ok());
        padded.push(b' ');
        assert_eq!(
            parse_event(&padded),
            Err(EventError::TooLarge {
                size: MAX_EVENT_BYTES + 1
            })
        );
    }
}
