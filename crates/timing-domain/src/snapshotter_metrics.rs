//! Metrics by snapshotter: image pull and start-up time under `[ClusterName, TaskFamily, Snapshotter]`,
//! once per task and phase when both are known; a count of tasks by snapshotter; and a count of
//! lazy-loading fallbacks for the families expected to lazy-load (the fallback alarm's metric).
//!
//! Which write emits what (see `timing_dynamodb::report_store`): the report's write emits the task
//! count, the fallback and the phases already emitted when it landed; a state change's write that finds
//! the report emits the phases it makes due that the report's write did not find.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::record::TaskRecord;
use crate::report::Snapshotter;
use crate::timing::Phase;

pub const TASKS_BY_SNAPSHOTTER: &str = "TasksBySnapshotter";
pub const LAZY_LOADING_FALLBACKS: &str = "LazyLoadingFallbacks";
/// A task whose report says it was not ready within the sidecar's bound: it has no phases to ready, so
/// their percentiles leave it out; this count says how many were left out.
pub const TASKS_NOT_READY: &str = "TasksNotReady";
/// The phases lazy loading moves: the pull itself, what it does to start-up, and what it costs after the
/// start (warm-up, and so ready).
pub const SNAPSHOTTER_PHASES: [Phase; 4] = [Phase::ImagePull, Phase::Startup, Phase::Ready, Phase::WarmUp];
pub const PHASE_DIMENSIONS: &[&str] = &["ClusterName", "TaskFamily", "Snapshotter"];
/// Also without the cluster, so an alarm or a widget can take a family whole.
pub const COUNT_DIMENSIONS: [&[&str]; 2] = [
    &["ClusterName", "TaskFamily", "Snapshotter"],
    &["TaskFamily", "Snapshotter"],
];
/// Without dimensions for the one fallback alarm over every listed family; by family for the widget.
pub const FALLBACK_DIMENSIONS: [&[&str]; 2] = [&[], &["TaskFamily"]];

/// What one write emits by snapshotter.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotterMetrics<'a> {
    pub cluster_name: &'a str,
    pub family: &'a str,
    pub task_arn: &'a str,
    pub snapshotter: Snapshotter,
    pub phases: Vec<(Phase, f64)>,
    /// The report's write counts the task, once.
    pub count_task: bool,
    pub fallback: bool,
    /// The report's write counts a task not ready within the bound, once.
    pub not_ready: bool,
}

fn settled_values(record: &TaskRecord, keys: impl Fn(&str) -> bool) -> Vec<(Phase, f64)> {
    SNAPSHOTTER_PHASES
        .into_iter()
        .filter(|phase| keys(phase.metric_name()))
        .filter_map(|phase| Some((phase, record.phase_seconds(phase)?)))
        .collect()
}

/// After a state change's write that found a report: the phases it made due (`due`, ledger keys) that
/// the report's write did not find emitted.
pub fn due_after_state_change(
    record: &TaskRecord,
    due: &BTreeSet<String>,
    ledger_at_report: &BTreeSet<String>,
) -> Vec<(Phase, f64)> {
    settled_values(record, |key| due.contains(key) && !ledger_at_report.contains(key))
}

/// After the report's write: the phases already emitted for the record it found.
pub fn due_after_report(record: &TaskRecord, ledger_before: &BTreeSet<String>) -> Vec<(Phase, f64)> {
    settled_values(record, |key| ledger_before.contains(key))
}

/// The phases that end at ready are emitted by family and revision too (`metrics::emf_document`), by the
/// same rule: a state change's write emits the due ones the report's write did not find.
pub fn ready_due_after_state_change(due: &BTreeSet<String>, ledger_at_report: &BTreeSet<String>) -> BTreeSet<String> {
    ready_keys()
        .filter(|key| due.contains(*key) && !ledger_at_report.contains(*key))
        .map(str::to_owned)
        .collect()
}

/// After the report's write: the phases that end at ready whose start the state changes had brought.
pub fn ready_due_after_report(ledger_before: &BTreeSet<String>) -> BTreeSet<String> {
    ready_keys()
        .filter(|key| ledger_before.contains(*key))
        .map(str::to_owned)
        .collect()
}

fn ready_keys() -> impl Iterator<Item = &'static str> {
    Phase::TO_READY.into_iter().map(Phase::metric_name)
}

/// Of a write's keys, those it emits: a phase to ready only when `emits_ready` has it and `record` (with
/// the report's readyAt) gives it a value; every other key as it is.
pub fn emitted_keys(record: &TaskRecord, keys: &BTreeSet<String>, emits_ready: &BTreeSet<String>) -> BTreeSet<String> {
    keys.iter()
        .filter(
            |key| match Phase::TO_READY.into_iter().find(|p| p.metric_name() == key.as_str()) {
                None => true,
                Some(phase) => emits_ready.contains(*key) && record.phase_seconds(phase).is_some(),
            },
        )
        .cloned()
        .collect()
}

/// A task of a family expected to lazy-load whose images (some or all) were pulled whole.
pub fn is_fallback(snapshotter: Snapshotter, family: &str, expected_lazy: &[String]) -> bool {
    matches!(snapshotter, Snapshotter::Overlayfs | Snapshotter::Mixed) && expected_lazy.iter().any(|f| f == family)
}

impl SnapshotterMetrics<'_> {
    /// The EMF document (one log line), or None when nothing is due. Written through a JSON tree: it
    /// runs once or twice per task, not per event.
    pub fn document(&self, namespace: &str, timestamp_millis: i64) -> Option<String> {
        let mut directives = Vec::new();
        let mut root = serde_json::Map::new();
        if !self.phases.is_empty() {
            let metrics: Vec<Value> = self
                .phases
                .iter()
                .map(|(phase, _)| json!({"Name": phase.metric_name(), "Unit": "Seconds"}))
                .collect();
            directives.push(json!({"Namespace": namespace, "Dimensions": [PHASE_DIMENSIONS], "Metrics": metrics}));
            for (phase, seconds) in &self.phases {
                root.insert(phase.metric_name().into(), json!(seconds));
            }
        }
        if self.count_task {
            directives.push(json!({"Namespace": namespace, "Dimensions": COUNT_DIMENSIONS,
                "Metrics": [{"Name": TASKS_BY_SNAPSHOTTER, "Unit": "Count"}]}));
            root.insert(TASKS_BY_SNAPSHOTTER.into(), json!(1));
        }
        if self.not_ready {
            directives.push(json!({"Namespace": namespace, "Dimensions": COUNT_DIMENSIONS,
                "Metrics": [{"Name": TASKS_NOT_READY, "Unit": "Count"}]}));
            root.insert(TASKS_NOT_READY.into(), json!(1));
        }
        if self.fallback {
            directives.push(json!({"Namespace": namespace, "Dimensions": FALLBACK_DIMENSIONS,
                "Metrics": [{"Name": LAZY_LOADING_FALLBACKS, "Unit": "Count"}]}));
            root.insert(LAZY_LOADING_FALLBACKS.into(), json!(1));
        }
        if directives.is_empty() {
            return None;
        }
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_millis, "CloudWatchMetrics": directives}),
        );
        root.insert("ClusterName".into(), json!(self.cluster_name));
        root.insert("TaskFamily".into(), json!(self.family));
        root.insert("Snapshotter".into(), json!(self.snapshotter.name()));
        root.insert("taskArn".into(), json!(self.task_arn));
        Some(Value::Object(root).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn stopped_record() -> TaskRecord {
        let event = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": {
            "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/t", "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:2",
            "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod", "version": 5, "lastStatus": "STOPPED",
            "createdAt": "2026-11-01T00:00:00Z", "pullStartedAt": "2026-11-01T00:00:02Z",
            "pullStoppedAt": "2026-11-01T00:00:09.5Z", "startedAt": "2026-11-01T00:00:12Z"}});
        TaskRecord::from_event(parse_event(event.to_string().as_bytes()).unwrap(), 30).unwrap()
    }

    fn keys(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn each_phase_goes_to_whichever_write_comes_second() {
        let record = stopped_record();
        let due = keys(&["ImagePullTime", "TaskStartupTime", "TasksStarted"]);
        // Report first (found nothing emitted): the state change emits both, with their values.
        assert_eq!(
            due_after_state_change(&record, &due, &BTreeSet::new()),
            vec![(Phase::ImagePull, 7.5), (Phase::Startup, 12.0)]
        );
        assert!(due_after_report(&record, &BTreeSet::new()).is_empty());
        // The state change first: the report emits both, the state change (finding them) neither.
        assert_eq!(
            due_after_report(&record, &due),
            vec![(Phase::ImagePull, 7.5), (Phase::Startup, 12.0)]
        );
        assert!(due_after_state_change(&record, &due, &due).is_empty());
    }

    #[test]
    fn the_phases_to_ready_follow_the_same_rule() {
        let mut record = stopped_record();
        record.ready_at = Some(crate::timestamp::Timestamp::parse("2026-11-01T00:00:40Z").unwrap());
        let due = keys(&["TaskReadyTime", "WarmUpTime", "TaskStartupTime"]);
        // Report first: the state change that brings createdAt and startedAt emits both.
        assert_eq!(
            ready_due_after_state_change(&due, &BTreeSet::new()),
            keys(&["TaskReadyTime", "WarmUpTime"])
        );
        assert_eq!(
            due_after_state_change(&record, &due, &BTreeSet::new()),
            vec![(Phase::Startup, 12.0), (Phase::Ready, 40.0), (Phase::WarmUp, 28.0)]
        );
        // The report after a PENDING state change (createdAt only): it emits ready; the state change
        // that brings startedAt, warm-up.
        let pending = keys(&["TaskReadyTime"]);
        assert_eq!(ready_due_after_report(&pending), pending);
        assert_eq!(
            ready_due_after_state_change(&keys(&["WarmUpTime", "TaskStartupTime"]), &pending),
            keys(&["WarmUpTime"])
        );
        assert!(ready_due_after_state_change(&pending, &pending).is_empty());
    }

    #[test]
    fn a_fallback_is_a_listed_family_pulled_whole() {
        let listed = vec!["checkout".to_owned()];
        assert!(is_fallback(Snapshotter::Overlayfs, "checkout", &listed));
        assert!(is_fallback(Snapshotter::Mixed, "checkout", &listed));
        assert!(!is_fallback(Snapshotter::Soci, "checkout", &listed));
        assert!(
            !is_fallback(Snapshotter::Unknown, "checkout", &listed),
            "unknown is not evidence"
        );
        assert!(!is_fallback(Snapshotter::Overlayfs, "web", &listed));
    }

    #[test]
    fn the_document_is_valid_emf_with_each_metric_under_its_dimensions() {
        let metrics = SnapshotterMetrics {
            cluster_name: "prod",
            family: "checkout",
            task_arn: "arn:aws:ecs:us-east-1:1:task/prod/t",
            snapshotter: Snapshotter::Overlayfs,
            phases: vec![(Phase::ImagePull, 7.5)],
            count_task: true,
            fallback: true,
            not_ready: true,
        };
        let line = metrics.document("ECS/TaskTiming", 1_000).unwrap();
        let document: Value = serde_json::from_str(&line).unwrap();
        crate::emf_check::validate_emf(&document).unwrap();
        assert_eq!(document["ImagePullTime"], 7.5);
        assert_eq!(document["Snapshotter"], "overlayfs");
        let directives = document["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 4);
        assert_eq!(document["TasksNotReady"], 1);
        assert_eq!(directives[3]["Dimensions"], json!([[], ["TaskFamily"]]));
        let nothing = SnapshotterMetrics {
            phases: Vec::new(),
            count_task: false,
            fallback: false,
            not_ready: false,
            ..metrics
        };
        assert_eq!(nothing.document("ECS/TaskTiming", 1_000), None);
    }
}
