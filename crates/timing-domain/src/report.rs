//! The sidecar's image report: what each container of a task was pulled with, as the Task Metadata
//! endpoint v4 says (`Snapshotter`: `soci` when lazy loaded with a SOCI index, `overlayfs` when pulled
//! whole). ECS events carry none of it, so the sidecar (task-sidecar) sends one report per task as a
//! custom EventBridge event, and task-events merges it into the task's record.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use crate::arn::{is_ecs_name, parse_cluster_arn, parse_task_arn};
use crate::event::EventError;
use crate::timestamp::Timestamp;

/// Our own source: EventBridge refuses `aws.*` sources from PutEvents, and the task role may only
/// put events of this source (an `events:source` condition).
pub const REPORT_SOURCE: &str = "ecs-task-timing.sidecar";
pub const REPORT_DETAIL_TYPE: &str = "ECS Task Image Report";
/// The detail's schema; a change that older task-events could misread gets a new number. 2 added
/// `readiness`: a task-events that knew only 1 refuses it (the report waits in the dead-letter queue)
/// rather than drop the readiness, after which the condition would refuse the report for good.
pub const REPORT_SCHEMA_VERSION: u32 = 2;
/// The schemas this task-events reads.
pub const READABLE_SCHEMA_VERSIONS: std::ops::RangeInclusive<u32> = 1..=REPORT_SCHEMA_VERSION;
/// How far after the report's own time (the envelope's, set when it was put) a readyAt may be: clocks
/// differ a little, a readyAt far in the future is no readiness.
pub const READY_AT_SLACK_MILLIS: i64 = 5 * 60 * 1000;
/// ECS allows at most 10 containers per task definition; the bound keeps a record far below 400 KB.
pub const MAX_REPORTED_CONTAINERS: usize = 10;

pub type ImageReportEvent = EventBridgeEvent<ImageReport>;

/// `detail` of a report, as the sidecar writes it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    pub schema_version: u32,
    pub task_arn: String,
    pub cluster_arn: String,
    pub family: String,
    pub revision: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    pub containers: Vec<ReportedContainer>,
    /// Containers left out of the task's snapshotter: the reporting sidecar itself (unless configured
    /// otherwise), whose small image would otherwise make every lazy-loaded task `mixed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_containers: Vec<String>,
    /// When the task was ready, if the sidecar was given a way to tell (a health check or a readiness
    /// URL). Absent: no way to tell, and then no readiness at all, never a guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
}

/// What told the sidecar the task was ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReadySignal {
    /// Every counted container with a health check was HEALTHY: the latest of their `Health.statusSince`.
    HealthCheck,
    /// The readiness URL's first 2xx answer: when it arrived.
    Url,
}

impl ReadySignal {
    pub const fn name(self) -> &'static str {
        match self {
            ReadySignal::HealthCheck => "healthCheck",
            ReadySignal::Url => "url",
        }
    }
}

/// The report's readiness: how the sidecar judged it, and when the task was ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub signal: ReadySignal,
    /// Absent: not ready within the sidecar's bound (`--ready-wait`), or the task stopped first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Timestamp>,
}

/// One container as the metadata describes it. `snapshotter` is absent where the metadata has no
/// `Snapshotter` (EC2, Windows, platform versions before 1.4.0): unknown, never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedContainer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The metadata's `ImageID` (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshotter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
}

/// What the task's record keeps of a reported container: how it was pulled. The rest (image, image id,
/// timestamps) stays in the report event: kept on every record it would push a record past 1 KB, and so
/// double the write units of every later write of the task (docs/records-and-metrics.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PulledContainer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshotter: Option<String>,
    /// Left out of the task's snapshotter (the reporting sidecar).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excluded: bool,
}

/// How a task's images were pulled: a filter and group-by key of every summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Snapshotter {
    /// Every counted container lazy-loaded with a SOCI index.
    Soci,
    /// None did: the whole image was pulled before the container started.
    Overlayfs,
    /// Some did and some did not.
    Mixed,
    /// The report came, but some counted container's snapshotter is not known.
    Unknown,
}

impl Snapshotter {
    pub const ALL: [Snapshotter; 4] = [
        Snapshotter::Soci,
        Snapshotter::Overlayfs,
        Snapshotter::Mixed,
        Snapshotter::Unknown,
    ];
    /// What summaries call a task with no report (yet, or ever).
    pub const UNREPORTED: &'static str = "unreported";

    pub const fn name(self) -> &'static str {
        match self {
            Snapshotter::Soci => "soci",
            Snapshotter::Overlayfs => "overlayfs",
            Snapshotter::Mixed => "mixed",
            Snapshotter::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<Snapshotter> {
        Snapshotter::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The label of an optional snapshotter, `unreported` for none.
    pub fn label(snapshotter: Option<Snapshotter>) -> &'static str {
        snapshotter.map_or(Snapshotter::UNREPORTED, Snapshotter::name)
    }
}

/// The metadata's per-container values, and what each says.
const LAZY: &str = "soci";
const WHOLE: &str = "overlayfs";

impl ImageReport {
    /// `soci` when every counted container lazy-loaded, `overlayfs` when none did, `mixed` otherwise;
    /// `unknown` when any counted container's snapshotter is absent or not one ECS documents, or when no
    /// container is counted.
    pub fn snapshotter(&self) -> Snapshotter {
        let counted = self
            .containers
            .iter()
            .filter(|c| !self.excluded_containers.contains(&c.name));
        let (mut lazy, mut whole, mut unknown) = (0, 0, 0);
        for container in counted {
            match container.snapshotter.as_deref() {
                Some(LAZY) => lazy += 1,
                Some(WHOLE) => whole += 1,
                _ => unknown += 1,
            }
        }
        match (lazy, whole, unknown) {
            (0, 0, _) | (_, _, 1..) => Snapshotter::Unknown,
            (_, 0, 0) => Snapshotter::Soci,
            (0, _, 0) => Snapshotter::Overlayfs,
            _ => Snapshotter::Mixed,
        }
    }

    /// Each container as the record keeps it.
    pub fn pulled_containers(&self) -> Vec<PulledContainer> {
        self.containers
            .iter()
            .map(|c| PulledContainer {
                name: c.name.clone(),
                snapshotter: c.snapshotter.clone(),
                excluded: self.excluded_containers.contains(&c.name),
            })
            .collect()
    }

    /// The cluster's name, from `clusterArn` (an ARN, or a bare name as some metadata gives).
    pub fn cluster_name(&self) -> Result<&str, EventError> {
        if is_ecs_name(&self.cluster_arn) {
            return Ok(&self.cluster_arn);
        }
        Ok(parse_cluster_arn(&self.cluster_arn)?)
    }

    /// Refuses what the sidecar would never send, naming the field (the sidecar checks its own report
    /// with it before sending).
    pub fn validate(&self) -> Result<(), EventError> {
        let field = |path: &str, message: String| EventError::Report {
            path: format!("detail.{path}"),
            message,
        };
        if !READABLE_SCHEMA_VERSIONS.contains(&self.schema_version) {
            return Err(field(
                "schemaVersion",
                format!(
                    "{} is not a schema this task-events reads (expected 1 to {REPORT_SCHEMA_VERSION})",
                    self.schema_version
                ),
            ));
        }
        let task = parse_task_arn(&self.task_arn)?;
        let cluster = self.cluster_name()?;
        // A report names its own task: a new-format task ARN says its cluster, which must be this one.
        if let Some(arn_cluster) = task.cluster_name
            && arn_cluster != cluster
        {
            return Err(field(
                "clusterArn",
                format!("cluster {cluster:?} is not the task's (its ARN says {arn_cluster:?})"),
            ));
        }
        // ECS names families by the same rule as clusters: 1 to 255 letters, digits, - and _.
        if !is_ecs_name(&self.family) {
            return Err(field(
                "family",
                format!(
                    "{:?} is not a task definition family (1 to 255 letters, digits, - and _)",
                    self.family
                ),
            ));
        }
        if self.containers.is_empty() || self.containers.len() > MAX_REPORTED_CONTAINERS {
            return Err(field(
                "containers",
                format!(
                    "{} containers; a task has 1 to {MAX_REPORTED_CONTAINERS}",
                    self.containers.len()
                ),
            ));
        }
        for (index, container) in self.containers.iter().enumerate() {
            if container.name.is_empty() || container.name.len() > 255 {
                return Err(field(
                    &format!("containers[{index}].name"),
                    "must be 1 to 255 characters".into(),
                ));
            }
            if let Some(snapshotter) = &container.snapshotter
                && (snapshotter.is_empty()
                    || snapshotter.len() > 32
                    || !snapshotter
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            {
                return Err(field(
                    &format!("containers[{index}].snapshotter"),
                    format!("{snapshotter:?} is not a snapshotter name (or omit it when unknown)"),
                ));
            }
            let long = |text: &Option<String>| text.as_ref().is_some_and(|t| t.len() > 512);
            if long(&container.image) || long(&container.image_id) {
                return Err(field(
                    &format!("containers[{index}]"),
                    "image and imageId must be at most 512 characters".into(),
                ));
            }
        }
        // A task cannot answer before its images began to arrive: such a time is not this task's.
        if let (Some(ready_at), Some(pull_started_at)) = (self.readiness.and_then(|r| r.ready_at), self.pull_started_at)
            && ready_at < pull_started_at
        {
            return Err(field(
                "readiness.readyAt",
                format!("{ready_at} is before the task's pullStartedAt {pull_started_at}"),
            ));
        }
        Ok(())
    }
}

/// Parses and validates a report (the envelope's kind already checked by the caller).
pub fn parse_report(json: &[u8]) -> Result<ImageReportEvent, EventError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let event: ImageReportEvent =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| EventError::Report {
            path: err.path().to_string(),
            message: err.inner().to_string(),
        })?;
    deserializer.end().map_err(|err| EventError::Report {
        path: ".".into(),
        message: err.to_string(),
    })?;
    event.detail.validate()?;
    crate::event::check_origin(event.account.as_deref(), &event.detail.task_arn)?;
    if let (Some(ready_at), Some(time)) = (event.detail.readiness.and_then(|r| r.ready_at), event.time)
        && ready_at.millis() > time.timestamp_millis() + READY_AT_SLACK_MILLIS
    {
        return Err(EventError::Report {
            path: "detail.readiness.readyAt".into(),
            message: format!("{ready_at} is more than 5 minutes after the report's time {time}"),
        });
    }
    Ok(event)
}

pub fn is_report_kind(source: &str, detail_type: &str) -> bool {
    source == REPORT_SOURCE && detail_type == REPORT_DETAIL_TYPE
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    pub(crate) fn report_json(containers: Value) -> Value {
        json!({
            "version": "0", "id": "r-1", "detail-type": REPORT_DETAIL_TYPE, "source": REPORT_SOURCE,
            "account": "111122223333", "time": "2026-11-01T00:00:20Z", "region": "us-east-1", "resources": [],
            "detail": {
                "schemaVersion": 1,
                "taskArn": "arn:aws:ecs:us-east-1:111122223333:task/prod/abc",
                "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
                "family": "checkout", "revision": 7,
                "pullStartedAt": "2026-11-01T00:00:05.123456789Z",
                "containers": containers,
                "excludedContainers": ["task-sidecar"]
            }
        })
    }

    #[test]
    fn a_report_put_by_another_account_about_this_accounts_task_is_refused() {
        // In central mode every member may put events on the central bus; EventBridge sets the envelope's
        // account to the putter's, which cannot be forged.
        let mut report = report_json(json!([{"name": "app", "snapshotter": "soci"}]));
        report["account"] = json!("444455556666");
        let err = parse_report(report.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, EventError::ForeignTask { .. }), "{err}");
        report["account"] = json!("111122223333");
        assert!(parse_report(report.to_string().as_bytes()).is_ok());
    }

    fn snapshotter_of(containers: Value) -> Snapshotter {
        let bytes = serde_json::to_vec(&report_json(containers)).unwrap();
        parse_report(&bytes).unwrap().detail.snapshotter()
    }

    #[test]
    fn the_task_snapshotter_follows_its_counted_containers() {
        let c = |name: &str, s: Option<&str>| json!({"name": name, "snapshotter": s});
        let side = c("task-sidecar", Some("overlayfs"));
        assert_eq!(snapshotter_of(json!([c("app", Some("soci")), side])), Snapshotter::Soci);
        assert_eq!(
            snapshotter_of(json!([c("app", Some("overlayfs")), c("web", Some("overlayfs"))])),
            Snapshotter::Overlayfs
        );
        assert_eq!(
            snapshotter_of(json!([c("app", Some("soci")), c("web", Some("overlayfs"))])),
            Snapshotter::Mixed
        );
        // Absent, or a value ECS does not document: unknown, never guessed.
        assert_eq!(
            snapshotter_of(json!([c("app", Some("soci")), c("web", None)])),
            Snapshotter::Unknown
        );
        assert_eq!(snapshotter_of(json!([c("app", Some("stargz"))])), Snapshotter::Unknown);
        // Only the sidecar itself: nothing counted.
        assert_eq!(snapshotter_of(json!([side])), Snapshotter::Unknown);
    }

    #[test]
    fn readiness_is_optional_and_a_missing_time_means_not_ready() {
        let mut event = report_json(json!([{"name": "app"}]));
        assert_eq!(
            parse_report(&serde_json::to_vec(&event).unwrap())
                .unwrap()
                .detail
                .readiness,
            None
        );
        event["detail"]["readiness"] = json!({"signal": "healthCheck", "readyAt": "2026-11-01T00:00:31.5Z"});
        let ready = parse_report(&serde_json::to_vec(&event).unwrap()).unwrap().detail;
        assert_eq!(
            ready.readiness,
            Some(Readiness {
                signal: ReadySignal::HealthCheck,
                ready_at: Some(Timestamp::parse("2026-11-01T00:00:31.500Z").unwrap()),
            })
        );
        event["detail"]["readiness"] = json!({"signal": "url"});
        let never = parse_report(&serde_json::to_vec(&event).unwrap()).unwrap().detail;
        assert_eq!(
            never.readiness.map(|r| (r.signal, r.ready_at)),
            Some((ReadySignal::Url, None))
        );
    }

    #[test]
    fn metadata_timestamps_keep_their_milliseconds() {
        let bytes = serde_json::to_vec(&report_json(json!([{"name": "app"}]))).unwrap();
        let report = parse_report(&bytes).unwrap().detail;
        assert_eq!(
            report.pull_started_at,
            Some(Timestamp::parse("2026-11-01T00:00:05.123Z").unwrap())
        );
        assert_eq!(report.cluster_name().unwrap(), "prod");
    }

    #[test]
    fn bad_reports_name_the_field() {
        let error = |edit: &dyn Fn(&mut Value)| {
            let mut event = report_json(json!([{"name": "app", "snapshotter": "soci"}]));
            edit(&mut event);
            parse_report(&serde_json::to_vec(&event).unwrap())
                .unwrap_err()
                .to_string()
        };
        type Edit<'a> = &'a dyn Fn(&mut Value);
        let cases: [(Edit, &str); 11] = [
            (&|e| e["detail"]["schemaVersion"] = json!(3), "detail.schemaVersion"),
            (&|e| e["detail"]["taskArn"] = json!("task/abc"), "taskArn"),
            (
                &|e| e["detail"]["clusterArn"] = json!("arn:aws:ecs:us-east-1:111122223333:cluster/other"),
                "detail.clusterArn",
            ),
            (&|e| e["detail"]["family"] = json!("a b"), "detail.family"),
            (&|e| e["detail"]["revision"] = json!("seven"), "detail.revision"),
            (&|e| e["detail"]["containers"] = json!([]), "detail.containers"),
            (
                &|e| e["detail"]["containers"][0]["snapshotter"] = json!(""),
                "containers[0].snapshotter",
            ),
            (
                &|e| e["detail"]["pullStartedAt"] = json!("yesterday"),
                "detail.pullStartedAt",
            ),
            (
                &|e| e["detail"]["readiness"] = json!({"signal": "guess", "readyAt": "2026-11-01T00:01:00Z"}),
                "detail.readiness.signal",
            ),
            (
                &|e| e["detail"]["readiness"] = json!({"signal": "url", "readyAt": "2026-11-01T00:00:04Z"}),
                "detail.readiness.readyAt",
            ),
            // The report was put at 00:00:20: 00:05:21 is more than 5 minutes after.
            (
                &|e| e["detail"]["readiness"] = json!({"signal": "url", "readyAt": "2026-11-01T00:05:21Z"}),
                "detail.readiness.readyAt",
            ),
        ];
        for (edit, expected) in cases {
            let message = error(edit);
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }
}
