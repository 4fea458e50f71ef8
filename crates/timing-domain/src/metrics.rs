//! Which metrics a write makes due (the emission ledger) and the Embedded Metric Format document
//! that carries them. A metric is due once per task: the record keeps the set of keys already
//! emitted (`metricsEmitted`), and only keys missing from it are emitted.

use std::collections::BTreeSet;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::record::TaskRecord;
use crate::timing::Phase;

pub const DEFAULT_NAMESPACE: &str = "ECS/TaskTiming";
pub const TASKS_STARTED: &str = "TasksStarted";
pub const TASKS_STOPPED: &str = "TasksStopped";
pub const TASKS_FAILED_TO_START: &str = "TasksFailedToStart";
pub const TIMESTAMP_ANOMALIES: &str = "TimestampAnomalies";
/// 1 when a task's start-up took longer than the configured threshold, else 0; sent with
/// TaskStartupTime. Its Average is the share of slow start-ups, so "Average above 0.10" is exactly
/// "p90 above the threshold", and Metrics Insights (which has AVG but no percentiles) can alarm
/// on it for every family at once, with GROUP BY.
pub const SLOW_STARTUPS: &str = "SlowStartups";
/// Ledger keys of anomalies are per phase (`TimestampAnomalies/imagePull`) so each counts once.
pub const ANOMALY_KEY_PREFIX: &str = "TimestampAnomalies/";

pub const DIMENSION_SETS: [&[&str]; 2] = [
    &["ClusterName", "TaskFamily", "TaskRevision"],
    &["ClusterName", "TaskFamily"],
];

/// Every metric the record supports right now, as ledger keys. A phase that ends at ready has its key
/// once the state changes have brought its start: the key then says that side is done, and whichever of
/// the state change's write and the report's comes second emits the metric (`snapshotter_metrics`).
pub fn ledger_keys(record: &TaskRecord) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for phase in Phase::TO_READY {
        if record.ready_phase_start_known(phase) {
            keys.insert(phase.metric_name().to_owned());
        }
    }
    for phase in Phase::FROM_EVENTS
        .into_iter()
        .filter(|phase| record.phase_settled(*phase))
    {
        if record.phase_seconds(phase).is_some() {
            keys.insert(phase.metric_name().to_owned());
        }
        if record.timestamp_anomalies.contains_key(phase.name()) {
            keys.insert(format!("{ANOMALY_KEY_PREFIX}{}", phase.name()));
        }
    }
    if record.started_at.is_some() {
        keys.insert(TASKS_STARTED.to_owned());
    }
    if record.is_stopped() {
        keys.insert(TASKS_STOPPED.to_owned());
    }
    if record.failed_to_start {
        keys.insert(TASKS_FAILED_TO_START.to_owned());
    }
    keys
}

/// Keys the record supports that no earlier write of this task emitted.
pub fn due_keys(current: &BTreeSet<String>, already_emitted: &BTreeSet<String>) -> BTreeSet<String> {
    current.difference(already_emitted).cloned().collect()
}

/// One EMF document: the due metrics of one record, its dimensions and Logs Insights properties.
/// Serialized straight to the log line (no intermediate JSON tree: this runs for every event).
pub struct EmfDocument<'a> {
    namespace: &'a str,
    record: &'a TaskRecord,
    metrics: Vec<(&'static str, MetricValue)>,
    timestamp_millis: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MetricValue {
    Seconds(f64),
    Count(u64),
}

impl MetricValue {
    fn unit(self) -> &'static str {
        match self {
            MetricValue::Seconds(_) => "Seconds",
            MetricValue::Count(_) => "Count",
        }
    }
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            MetricValue::Seconds(seconds) => serializer.serialize_f64(seconds),
            MetricValue::Count(count) => serializer.serialize_u64(count),
        }
    }
}

/// The EMF document for the due keys of one record, or None when nothing is due.
/// `timestamp_millis` is when the state change happened (the event time), so a delayed or
/// retried delivery still lands the datapoint at the right minute. With `slow_startup_seconds`,
/// TaskStartupTime comes with SlowStartups (0 or 1).
pub fn emf_document<'a>(
    namespace: &'a str,
    record: &'a TaskRecord,
    due: &BTreeSet<String>,
    timestamp_millis: i64,
    slow_startup_seconds: Option<f64>,
) -> Option<EmfDocument<'a>> {
    let mut metrics = Vec::new();
    for phase in Phase::ALL {
        let name = phase.metric_name();
        if let (true, Some(seconds)) = (due.contains(name), record.phase_seconds(phase)) {
            metrics.push((name, MetricValue::Seconds(seconds)));
            if let (Phase::Startup, Some(threshold)) = (phase, slow_startup_seconds) {
                metrics.push((SLOW_STARTUPS, MetricValue::Count(u64::from(seconds > threshold))));
            }
        }
    }
    for name in [TASKS_STARTED, TASKS_STOPPED, TASKS_FAILED_TO_START] {
        if due.contains(name) {
            metrics.push((name, MetricValue::Count(1)));
        }
    }
    let anomalies = due.iter().filter(|key| key.starts_with(ANOMALY_KEY_PREFIX)).count() as u64;
    if anomalies > 0 {
        metrics.push((TIMESTAMP_ANOMALIES, MetricValue::Count(anomalies)));
    }
    (!metrics.is_empty()).then_some(EmfDocument {
        namespace,
        record,
        metrics,
        timestamp_millis,
    })
}

impl EmfDocument<'_> {
    /// The document as one log line.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    timestamp: i64,
    cloud_watch_metrics: [Directive<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'a str,
    dimensions: [&'static [&'static str]; 2],
    metrics: Vec<Definition>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Definition {
    name: &'static str,
    unit: &'static str,
}

impl Serialize for EmfDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.record;
        let mut map = serializer.serialize_map(None)?;
        let definitions = self
            .metrics
            .iter()
            .map(|(name, value)| Definition {
                name,
                unit: value.unit(),
            })
            .collect();
        let directive = Directive {
            namespace: self.namespace,
            dimensions: DIMENSION_SETS,
            metrics: definitions,
        };
        map.serialize_entry(
            "_aws",
            &Metadata {
                timestamp: self.timestamp_millis,
                cloud_watch_metrics: [directive],
            },
        )?;
        map.serialize_entry("ClusterName", &record.cluster_name)?;
        map.serialize_entry("TaskFamily", &record.family)?;
        map.serialize_entry("TaskRevision", &record.revision.to_string())?;
        for (name, value) in &self.metrics {
            map.serialize_entry(name, value)?;
        }
        // Properties: searchable in Logs Insights, not dimensions (they would multiply metric cost).
        map.serialize_entry("taskArn", &record.task_arn)?;
        map.serialize_entry("version", &record.version)?;
        for (key, value) in [
            ("launchType", &record.launch_type),
            ("availabilityZone", &record.availability_zone),
            ("stopCode", &record.stop_code),
        ] {
            if let Some(value) = value {
                map.serialize_entry(key, value)?;
            }
        }
        map.serialize_entry("imageDigests", &record.image_digests())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf_check::validate_emf;
    use crate::event::parse_event;

    use serde_json::{Value, json};

    /// The document as CloudWatch will read it: the line parsed back.
    fn document(namespace: &str, record: &TaskRecord, due: &BTreeSet<String>, timestamp: i64) -> Option<Value> {
        emf_document(namespace, record, due, timestamp, None).map(|d| serde_json::from_str(&d.to_line()).unwrap())
    }

    fn record(detail: Value) -> TaskRecord {
        let envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": detail});
        TaskRecord::from_event(parse_event(envelope.to_string().as_bytes()).unwrap(), 90).unwrap()
    }

    fn stopped() -> TaskRecord {
        record(json!({
            "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/t1", "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:7", "version": 5,
            "lastStatus": "STOPPED", "launchType": "FARGATE", "stopCode": "EssentialContainerExited",
            "createdAt": "2024-01-01T00:00:00Z", "pullStartedAt": "2024-01-01T00:00:02Z",
            "pullStoppedAt": "2024-01-01T00:00:07.5Z", "startedAt": "2024-01-01T00:00:09Z",
            "stoppingAt": "2024-01-01T00:10:00Z", "executionStoppedAt": "2024-01-01T00:09:59Z",
            "stoppedAt": "2024-01-01T00:10:30Z",
            "containers": [{"name": "app", "imageDigest": "sha256:ab"}]
        }))
    }

    #[test]
    fn ledger_of_a_stopped_task() {
        let keys = ledger_keys(&stopped());
        let expected = [
            "ContainerStartTime",
            "ImagePullTime",
            "ProvisioningTime",
            "RunTime",
            "ShutdownTime",
            "TaskLifetime",
            "TaskReadyTime",
            "TaskStartupTime",
            "TasksStarted",
            "TasksStopped",
            "WarmUpTime",
        ];
        assert_eq!(keys.iter().map(String::as_str).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn nothing_is_due_twice() {
        let keys = ledger_keys(&stopped());
        assert!(due_keys(&keys, &keys).is_empty());
        let earlier: BTreeSet<String> = ["TaskStartupTime", "TasksStarted"].map(String::from).into();
        let due = due_keys(&keys, &earlier);
        assert_eq!(due.len(), keys.len() - 2);
        assert!(!due.contains("TaskStartupTime"));
        assert!(document(DEFAULT_NAMESPACE, &stopped(), &BTreeSet::new(), 0).is_none());
    }

    #[test]
    fn document_carries_values_dimensions_and_properties() {
        let record = stopped();
        let document = document("Custom/Timing", &record, &ledger_keys(&record), 1_704_067_830_000).unwrap();
        validate_emf(&document).unwrap();
        assert_eq!(document["TaskStartupTime"], json!(9.0));
        assert_eq!(document["ImagePullTime"], json!(5.5));
        assert_eq!(document["RunTime"], json!(590.0)); // 00:09:59 - 00:00:09
        assert_eq!(document["TasksStopped"], json!(1));
        assert_eq!(document["TaskRevision"], json!("7"));
        assert_eq!(document["imageDigests"], json!(["sha256:ab"]));
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            json!("Custom/Timing")
        );
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            9
        );
    }

    #[test]
    fn slow_startups_say_whether_startup_passed_the_threshold() {
        let record = stopped(); // start-up 9.0 s
        let with = |threshold| {
            let line = emf_document(DEFAULT_NAMESPACE, &record, &ledger_keys(&record), 0, threshold)
                .unwrap()
                .to_line();
            serde_json::from_str::<Value>(&line).unwrap()
        };
        assert_eq!(with(Some(8.5))[SLOW_STARTUPS], json!(1));
        assert_eq!(with(Some(9.0))[SLOW_STARTUPS], json!(0)); // equal is not slower
        assert!(with(None).get(SLOW_STARTUPS).is_none());
        // Only with TaskStartupTime: a write that makes only the stop known says nothing of start-up.
        let due: BTreeSet<String> = ["TasksStopped".to_owned()].into();
        let line = emf_document(DEFAULT_NAMESPACE, &record, &due, 0, Some(1.0))
            .unwrap()
            .to_line();
        assert!(!line.contains(SLOW_STARTUPS));
        validate_emf(&with(Some(8.5))).unwrap();
    }

    #[test]
    fn anomalies_and_failures_are_counted() {
        let mut failed = stopped();
        failed.started_at = None;
        failed.startup_seconds = None;
        failed.failed_to_start = true;
        failed.timestamp_anomalies.insert("shutdown".into(), -1.0);
        failed.timestamp_anomalies.insert("imagePull".into(), -0.5);
        let document = document(DEFAULT_NAMESPACE, &failed, &ledger_keys(&failed), 0).unwrap();
        validate_emf(&document).unwrap();
        assert_eq!(document["TimestampAnomalies"], json!(2));
        assert_eq!(document["TasksFailedToStart"], json!(1));
        assert!(document.get("TasksStarted").is_none());
    }

    #[test]
    fn validator_rejects_broken_documents() {
        let record = stopped();
        let good = document(DEFAULT_NAMESPACE, &record, &ledger_keys(&record), 0).unwrap();
        type Breakage = fn(&mut Value);
        let broken: [(&str, Breakage); 6] = [
            ("Namespace", |d| {
                d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")
            }),
            ("numeric value", |d| d["TaskStartupTime"] = json!("9")),
            ("dimension ClusterName", |d| {
                d.as_object_mut().unwrap().remove("ClusterName");
            }),
            ("exceeds 30", |d| {
                d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([vec!["ClusterName"; 31]])
            }),
            ("1 to 100 metrics", |d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(vec![json!({"Name": "TaskStartupTime"}); 101])
            }),
            ("not a CloudWatch unit", |d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Minutes")
            }),
        ];
        for (expected, breakage) in broken {
            let mut document = good.clone();
            breakage(&mut document);
            let err = validate_emf(&document).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
