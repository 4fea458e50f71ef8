//! The one DynamoDB record per task, as the newest version of its events describes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arn::{parse_cluster_arn, parse_task_arn, parse_task_definition_arn};
use crate::event::{EventError, TaskStateChangeEvent};
use crate::report::{PulledContainer, ReadySignal, Snapshotter};
use crate::timestamp::Timestamp;
use crate::timing::{Phase, PhaseTiming, failed_to_start, millis_to_seconds, phase_timings};

/// Dimension value used when neither clusterArn nor a new-format task ARN names the cluster.
pub const UNKNOWN_CLUSTER: &str = "unknown";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub task_arn: String,
    pub task_id: String,
    pub version: u64,
    pub task_definition_arn: String,
    pub family: String,
    pub revision: u32,
    pub cluster_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_start_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_seconds: Option<f64>,
    /// Phases whose end precedes their start: phase name -> (negative) seconds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timestamp_anomalies: BTreeMap<String, f64>,
    pub failed_to_start: bool,
    /// DynamoDB TTL, epoch seconds: createdAt (else the event time) plus the retention period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// From the sidecar's image report, when one has arrived ([`REPORT_ATTRIBUTES`]): state-change
    /// writes never set or remove these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshotter: Option<Snapshotter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported_containers: Vec<PulledContainer>,
    /// How the report judged readiness; with no `ready_at`, the task was not ready within the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_signal: Option<ReadySignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every attribute a record may have, so a newer version can remove what it no longer carries.
pub const RECORD_ATTRIBUTES: [&str; 44] = [
    "taskArn",
    "taskId",
    "version",
    "taskDefinitionArn",
    "family",
    "revision",
    "clusterName",
    "clusterArn",
    "region",
    "account",
    "launchType",
    "capacityProviderName",
    "platformVersion",
    "platformFamily",
    "availabilityZone",
    "group",
    "startedBy",
    "cpu",
    "memory",
    "lastStatus",
    "desiredStatus",
    "stopCode",
    "stoppedReason",
    "connectivity",
    "containers",
    "createdAt",
    "connectivityAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "executionStoppedAt",
    "stoppedAt",
    "updatedAt",
    "provisioningSeconds",
    "imagePullSeconds",
    "containerStartSeconds",
    "startupSeconds",
    "runSeconds",
    "shutdownSeconds",
    "lifetimeSeconds",
    "timestampAnomalies",
    "failedToStart",
    "expiresAt",
];

/// The attributes only an image report writes: not in [`RECORD_ATTRIBUTES`], so a state change's write,
/// which removes the record attributes its version lacks, leaves them alone.
pub const REPORT_ATTRIBUTES: [&str; 4] = ["snapshotter", "reportedContainers", "readySignal", "readyAt"];

/// The attributes a summary reads from each record: a projection of [`TaskRecord`] with the same
/// names (a unit test keeps the two in step), so a query transfers and decodes only what it uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimingRow {
    /// Its account and region are the ones an answer groups by ([`crate::arn::Origin`]).
    #[serde(default)]
    pub task_arn: String,
    pub family: String,
    pub revision: u32,
    pub cluster_name: String,
    pub launch_type: Option<String>,
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerSummary>,
    pub created_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    #[serde(default)]
    pub ready_at: Option<Timestamp>,
    pub provisioning_seconds: Option<f64>,
    pub image_pull_seconds: Option<f64>,
    pub container_start_seconds: Option<f64>,
    pub startup_seconds: Option<f64>,
    pub run_seconds: Option<f64>,
    pub shutdown_seconds: Option<f64>,
    pub lifetime_seconds: Option<f64>,
    #[serde(default)]
    pub timestamp_anomalies: BTreeMap<String, f64>,
    pub failed_to_start: bool,
    #[serde(default)]
    pub snapshotter: Option<Snapshotter>,
    #[serde(default)]
    pub ready_signal: Option<ReadySignal>,
}

/// The attribute names of [`TimingRow`], for the query's ProjectionExpression.
pub const TIMING_ROW_ATTRIBUTES: [&str; 22] = [
    "taskArn",
    "family",
    "revision",
    "clusterName",
    "launchType",
    "availabilityZone",
    "containers",
    "createdAt",
    "startedAt",
    "stoppedAt",
    "readyAt",
    "provisioningSeconds",
    "imagePullSeconds",
    "containerStartSeconds",
    "startupSeconds",
    "runSeconds",
    "shutdownSeconds",
    "lifetimeSeconds",
    "timestampAnomalies",
    "failedToStart",
    "snapshotter",
    "readySignal",
];

impl TimingRow {
    /// The phase's duration in seconds, when it is known and not an anomaly.
    pub fn phase_seconds(&self, phase: Phase) -> Option<f64> {
        match phase {
            Phase::Provisioning => self.provisioning_seconds,
            Phase::ImagePull => self.image_pull_seconds,
            Phase::ContainerStart => self.container_start_seconds,
            Phase::Startup => self.startup_seconds,
            Phase::Run => self.run_seconds,
            Phase::Shutdown => self.shutdown_seconds,
            Phase::Lifetime => self.lifetime_seconds,
            Phase::Ready | Phase::WarmUp => {
                known_seconds(to_ready(phase, self.created_at, self.started_at, self.ready_at))
            }
        }
    }

    /// Phases whose end precedes their start: the stored ones, and those to ready (worked out here).
    pub fn anomaly_count(&self) -> u64 {
        let to_ready = Phase::TO_READY
            .into_iter()
            .filter(|phase| {
                matches!(
                    to_ready(*phase, self.created_at, self.started_at, self.ready_at),
                    PhaseTiming::Anomaly(_)
                )
            })
            .count();
        (self.timestamp_anomalies.len() + to_ready) as u64
    }

    /// The report judged readiness and the task was not ready within the bound.
    pub fn not_ready(&self) -> bool {
        self.ready_signal.is_some() && self.ready_at.is_none()
    }

    /// The distinct image digests of the task's containers, sorted and joined with `+`; `-` when none is known yet.
    pub fn image_digest_key(&self) -> String {
        let digests: std::collections::BTreeSet<&str> = self
            .containers
            .iter()
            .filter_map(|c| c.image_digest.as_deref())
            .collect();
        if digests.is_empty() {
            "-".to_owned()
        } else {
            digests.into_iter().collect::<Vec<_>>().join("+")
        }
    }
}

/// A phase that ends when the task was ready, from the record's timestamps: its two ends come from two
/// writes (a state change's and the report's), so it is worked out when read, never stored.
fn to_ready(
    phase: Phase,
    created_at: Option<Timestamp>,
    started_at: Option<Timestamp>,
    ready_at: Option<Timestamp>,
) -> PhaseTiming {
    let start = match phase {
        Phase::Ready => created_at,
        Phase::WarmUp => started_at,
        _ => None,
    };
    PhaseTiming::between(start.zip(ready_at))
}

fn known_seconds(timing: PhaseTiming) -> Option<f64> {
    match timing {
        PhaseTiming::Known(millis) => Some(millis_to_seconds(millis)),
        PhaseTiming::Unknown | PhaseTiming::Anomaly(_) => None,
    }
}

const SECONDS_PER_DAY: i64 = 86_400;

/// The DynamoDB TTL (epoch seconds) of something dated `base`, kept `retention_days`.
pub fn expiry(base: Timestamp, retention_days: u32) -> i64 {
    base.millis().div_euclid(1000) + i64::from(retention_days) * SECONDS_PER_DAY
}

impl TaskRecord {
    /// Builds the record an event describes, taking its strings rather than copying them.
    /// Fails, writing nothing, when an ARN is malformed.
    pub fn from_event(event: TaskStateChangeEvent, retention_days: u32) -> Result<TaskRecord, EventError> {
        let timings = phase_timings(&event.detail);
        let failed_to_start = failed_to_start(&event.detail);
        let (task_id, family, revision, cluster_name) = {
            let task = &event.detail;
            crate::event::check_origin(event.account.as_deref(), &task.task_arn)?;
            let task_arn = parse_task_arn(&task.task_arn)?;
            let definition = parse_task_definition_arn(&task.task_definition_arn)?;
            let cluster_name = match &task.cluster_arn {
                Some(arn) => parse_cluster_arn(arn)?,
                None => task_arn.cluster_name.unwrap_or(UNKNOWN_CLUSTER),
            };
            (
                task_arn.task_id.to_owned(),
                definition.family.to_owned(),
                definition.revision,
                cluster_name.to_owned(),
            )
        };
        let event_time = event.time.map(|time| Timestamp::from_millis(time.timestamp_millis()));
        let task = event.detail;
        let expires_at = task.created_at.or(event_time).map(|base| expiry(base, retention_days));

        let mut record = TaskRecord {
            task_arn: task.task_arn,
            task_id,
            version: task.version,
            task_definition_arn: task.task_definition_arn,
            family,
            revision,
            cluster_name,
            cluster_arn: task.cluster_arn,
            region: event.region,
            account: event.account,
            launch_type: task.launch_type,
            capacity_provider_name: task.capacity_provider_name,
            platform_version: task.platform_version,
            platform_family: task.platform_family,
            availability_zone: task.availability_zone,
            group: task.group,
            started_by: task.started_by,
            cpu: task.cpu,
            memory: task.memory,
            last_status: task.last_status,
            desired_status: task.desired_status,
            stop_code: task.stop_code,
            stopped_reason: task.stopped_reason,
            connectivity: task.connectivity,
            containers: task
                .containers
                .into_iter()
                .map(|c| ContainerSummary {
                    name: c.name,
                    image: c.image,
                    image_digest: c.image_digest,
                    exit_code: c.exit_code,
                    reason: c.reason,
                })
                .collect(),
            created_at: task.created_at,
            connectivity_at: task.connectivity_at,
            pull_started_at: task.pull_started_at,
            pull_stopped_at: task.pull_stopped_at,
            started_at: task.started_at,
            stopping_at: task.stopping_at,
            execution_stopped_at: task.execution_stopped_at,
            stopped_at: task.stopped_at,
            updated_at: task.updated_at,
            provisioning_seconds: None,
            image_pull_seconds: None,
            container_start_seconds: None,
            startup_seconds: None,
            run_seconds: None,
            shutdown_seconds: None,
            lifetime_seconds: None,
            timestamp_anomalies: BTreeMap::new(),
            failed_to_start,
            expires_at,
            snapshotter: None,
            reported_containers: Vec::new(),
            ready_signal: None,
            ready_at: None,
        };
        for (phase, timing) in timings {
            match timing {
                PhaseTiming::Unknown => {}
                PhaseTiming::Known(millis) => {
                    if let Some(slot) = record.phase_slot(phase) {
                        *slot = Some(millis_to_seconds(millis));
                    }
                }
                PhaseTiming::Anomaly(millis) => {
                    record
                        .timestamp_anomalies
                        .insert(phase.name().to_owned(), millis_to_seconds(millis));
                }
            }
        }
        Ok(record)
    }

    /// Where a phase from the events is kept (None for the phases that end at ready: never stored).
    fn phase_slot(&mut self, phase: Phase) -> Option<&mut Option<f64>> {
        Some(match phase {
            Phase::Provisioning => &mut self.provisioning_seconds,
            Phase::ImagePull => &mut self.image_pull_seconds,
            Phase::ContainerStart => &mut self.container_start_seconds,
            Phase::Startup => &mut self.startup_seconds,
            Phase::Run => &mut self.run_seconds,
            Phase::Shutdown => &mut self.shutdown_seconds,
            Phase::Lifetime => &mut self.lifetime_seconds,
            Phase::Ready | Phase::WarmUp => return None,
        })
    }

    /// The phase's duration in seconds, when it is known and not an anomaly.
    pub fn phase_seconds(&self, phase: Phase) -> Option<f64> {
        match phase {
            Phase::Provisioning => self.provisioning_seconds,
            Phase::ImagePull => self.image_pull_seconds,
            Phase::ContainerStart => self.container_start_seconds,
            Phase::Startup => self.startup_seconds,
            Phase::Run => self.run_seconds,
            Phase::Shutdown => self.shutdown_seconds,
            Phase::Lifetime => self.lifetime_seconds,
            Phase::Ready | Phase::WarmUp => known_seconds(self.to_ready(phase)),
        }
    }

    fn to_ready(&self, phase: Phase) -> PhaseTiming {
        to_ready(phase, self.created_at, self.started_at, self.ready_at)
    }

    /// The phase's end before its start, as (negative) seconds: from the stored anomalies for the phases
    /// of the events, from the timestamps for those that end at ready (a readiness URL can answer before
    /// ECS records the task RUNNING).
    pub fn phase_anomaly(&self, phase: Phase) -> Option<f64> {
        match (phase.ends_at_ready(), self.to_ready(phase)) {
            (true, PhaseTiming::Anomaly(millis)) => Some(millis_to_seconds(millis)),
            (true, _) => None,
            (false, _) => self.timestamp_anomalies.get(phase.name()).copied(),
        }
    }

    /// Whether the state changes have brought what a phase that ends at ready starts from (createdAt, or
    /// startedAt): its ledger key then says "the state-change side is done" (`metrics::ledger_keys`).
    pub fn ready_phase_start_known(&self, phase: Phase) -> bool {
        match phase {
            Phase::Ready => self.created_at.is_some(),
            Phase::WarmUp => self.started_at.is_some(),
            _ => false,
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.last_status.as_deref() == Some("STOPPED")
    }

    /// Whether a later event can still change the phase's duration. Only `run` can: until the
    /// containers' executionStoppedAt is known it ends at stoppingAt, which a later event may replace,
    /// unless the task has stopped without one. Metrics and rollups take a phase once, when settled.
    pub fn phase_settled(&self, phase: Phase) -> bool {
        phase != Phase::Run || self.execution_stopped_at.is_some() || self.is_stopped()
    }

    pub fn image_digests(&self) -> Vec<&str> {
        self.containers
            .iter()
            .filter_map(|c| c.image_digest.as_deref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;
    use serde_json::json;

    fn event(detail: serde_json::Value) -> TaskStateChangeEvent {
        let envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "time": "2024-03-01T10:00:05Z",
            "region": "eu-west-1", "account": "111122223333", "detail": detail});
        parse_event(envelope.to_string().as_bytes()).unwrap()
    }

    fn running_detail() -> serde_json::Value {
        json!({
            "taskArn": "arn:aws:ecs:eu-west-1:111122223333:task/prod/0123abcd",
            "clusterArn": "arn:aws:ecs:eu-west-1:111122223333:cluster/prod",
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:111122223333:task-definition/web-soci:12",
            "version": 3, "lastStatus": "RUNNING", "launchType": "FARGATE",
            "createdAt": "2024-03-01T10:00:00Z", "pullStartedAt": "2024-03-01T10:00:01.5Z",
            "pullStoppedAt": "2024-03-01T10:00:01.4Z", "startedAt": "2024-03-01T10:00:04.25Z",
            "containers": [{"name": "app", "image": "repo/web:1", "imageDigest": "sha256:aa", "runtimeId": "x"}]
        })
    }

    #[test]
    fn identity_and_phases_from_a_running_event() {
        let record = TaskRecord::from_event(event(running_detail()), 90).unwrap();
        assert_eq!((record.family.as_str(), record.revision), ("web-soci", 12));
        assert_eq!(
            (record.cluster_name.as_str(), record.task_id.as_str()),
            ("prod", "0123abcd")
        );
        assert_eq!(record.provisioning_seconds, Some(1.5)); // 10:00:01.5 - 10:00:00
        assert_eq!(record.startup_seconds, Some(4.25)); // 10:00:04.25 - 10:00:00
        assert_eq!(record.container_start_seconds, Some(2.85)); // 10:00:04.25 - 10:00:01.4
        assert_eq!(record.image_pull_seconds, None, "negative pull is not a duration");
        assert_eq!(record.timestamp_anomalies.get("imagePull"), Some(&-0.1));
        assert_eq!(record.run_seconds, None);
        assert!(!record.failed_to_start);
        // 2024-03-01T10:00:00Z = 1709287200 (date -u -d ... +%s), plus 90 days.
        assert_eq!(record.expires_at, Some(1_709_287_200 + 90 * 86_400));
        assert_eq!(record.image_digests(), ["sha256:aa"]);
    }

    #[test]
    fn old_format_arn_without_cluster_arn() {
        let mut detail = running_detail();
        detail["taskArn"] = json!("arn:aws:ecs:eu-west-1:111122223333:task/0123abcd");
        detail.as_object_mut().unwrap().remove("clusterArn");
        let record = TaskRecord::from_event(event(detail), 90).unwrap();
        assert_eq!(
            (record.cluster_name.as_str(), record.task_id.as_str()),
            (UNKNOWN_CLUSTER, "0123abcd")
        );
    }

    #[test]
    fn an_event_of_another_accounts_task_builds_no_record() {
        let mut envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs",
            "region": "eu-west-1", "account": "444455556666", "detail": running_detail()});
        let parsed = parse_event(envelope.to_string().as_bytes()).unwrap();
        let err = TaskRecord::from_event(parsed, 30).unwrap_err();
        assert!(matches!(err, EventError::ForeignTask { .. }), "{err}");
        envelope["account"] = json!("111122223333");
        let record = TaskRecord::from_event(parse_event(envelope.to_string().as_bytes()).unwrap(), 30).unwrap();
        assert_eq!(record.account.as_deref(), Some("111122223333"));
    }

    #[test]
    fn malformed_arn_is_a_specific_error() {
        let mut detail = running_detail();
        detail["taskDefinitionArn"] = json!("web-soci:12");
        let err = TaskRecord::from_event(event(detail), 90).unwrap_err().to_string();
        assert!(err.starts_with("invalid taskDefinitionArn \"web-soci:12\""), "{err}");
    }

    #[test]
    fn attribute_list_covers_every_field() {
        let mut record = TaskRecord::from_event(event(running_detail()), 90).unwrap();
        let everything = Some(String::from("x"));
        (
            record.cluster_arn,
            record.capacity_provider_name,
            record.platform_version,
        ) = (everything.clone(), everything.clone(), everything.clone());
        (record.platform_family, record.availability_zone, record.group) =
            (everything.clone(), everything.clone(), everything.clone());
        (record.started_by, record.cpu, record.memory) = (everything.clone(), everything.clone(), everything.clone());
        (
            record.desired_status,
            record.stop_code,
            record.stopped_reason,
            record.connectivity,
        ) = (everything.clone(), everything.clone(), everything.clone(), everything);
        let at = record.created_at;
        (
            record.connectivity_at,
            record.stopping_at,
            record.execution_stopped_at,
            record.stopped_at,
            record.updated_at,
        ) = (at, at, at, at, at);
        for phase in Phase::FROM_EVENTS {
            *record.phase_slot(phase).unwrap() = Some(1.0);
        }
        record.snapshotter = Some(Snapshotter::Soci);
        record.ready_signal = Some(ReadySignal::Url);
        record.ready_at = at;
        record.reported_containers = vec![PulledContainer {
            name: "app".into(),
            snapshotter: Some("soci".into()),
            excluded: false,
        }];
        let item = serde_json::to_value(&record).unwrap();
        for key in item.as_object().unwrap().keys() {
            assert!(
                RECORD_ATTRIBUTES.contains(&key.as_str()) || REPORT_ATTRIBUTES.contains(&key.as_str()),
                "{key} missing from RECORD_ATTRIBUTES"
            );
        }
    }

    #[test]
    fn timing_row_is_a_projection_of_the_record() {
        let mut record = TaskRecord::from_event(event(running_detail()), 90).unwrap();
        record.ready_at = Some(Timestamp::parse("2024-03-01T10:00:09Z").unwrap());
        for name in TIMING_ROW_ATTRIBUTES {
            assert!(
                RECORD_ATTRIBUTES.contains(&name) || REPORT_ATTRIBUTES.contains(&name),
                "{name} is not a record attribute"
            );
        }
        let mut item: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_value(serde_json::to_value(&record).unwrap()).unwrap();
        item.retain(|name, _| TIMING_ROW_ATTRIBUTES.contains(&name.as_str()));
        let row: TimingRow = serde_json::from_value(serde_json::to_value(&item).unwrap()).unwrap();
        for phase in Phase::ALL {
            assert_eq!(row.phase_seconds(phase), record.phase_seconds(phase), "{phase:?}");
        }
        assert_eq!(
            (row.family.as_str(), row.revision, row.failed_to_start),
            ("web-soci", 12, false)
        );
        assert_eq!(row.timestamp_anomalies, record.timestamp_anomalies);
        assert_eq!(row.image_digest_key(), "sha256:aa");
        assert_eq!(row.task_arn, record.task_arn);
        assert_eq!(row.phase_seconds(Phase::WarmUp), Some(4.75)); // 10:00:09 - 10:00:04.25
    }

    #[test]
    fn the_phases_to_ready_come_from_the_timestamps_of_both_writes() {
        let mut record = TaskRecord::from_event(event(running_detail()), 90).unwrap();
        assert_eq!(record.phase_seconds(Phase::Ready), None, "no readiness yet");
        assert!(record.ready_phase_start_known(Phase::Ready) && record.ready_phase_start_known(Phase::WarmUp));
        record.ready_at = Some(Timestamp::parse("2024-03-01T10:00:31.5Z").unwrap());
        assert_eq!(record.phase_seconds(Phase::Ready), Some(31.5)); // 10:00:31.5 - 10:00:00
        assert_eq!(record.phase_seconds(Phase::WarmUp), Some(27.25)); // 10:00:31.5 - 10:00:04.25
        // Ready before ECS said RUNNING: an anomaly, never a duration.
        record.ready_at = Some(Timestamp::parse("2024-03-01T10:00:04Z").unwrap());
        assert_eq!(record.phase_seconds(Phase::WarmUp), None);
        assert_eq!(record.phase_anomaly(Phase::WarmUp), Some(-0.25));
        assert_eq!(record.phase_seconds(Phase::Ready), Some(4.0));
        record.started_at = None;
        assert!(!record.ready_phase_start_known(Phase::WarmUp));
        assert_eq!(record.phase_anomaly(Phase::WarmUp), None);
        // The events' anomalies stay where the write put them.
        assert_eq!(record.phase_anomaly(Phase::ImagePull), Some(-0.1));
    }
}
