//! What a task's stored record and metrics must be, from the generator's truth (not from the code
//! under test): shared by the ordering tests and the fault-injected replays.

use std::collections::{BTreeMap, BTreeSet};

use timing_domain::record::TaskRecord;

use crate::generator::TaskTruth;

/// Metric names a task's complete history supports, from the generator's truth.
pub fn expected_metrics(truth: &TaskTruth) -> BTreeSet<String> {
    let mut names = vec![
        "ProvisioningTime",
        "ImagePullTime",
        "ShutdownTime",
        "TaskLifetime",
        "TasksStopped",
    ];
    if truth.failed_to_start {
        names.push("TasksFailedToStart");
    } else {
        names.extend(["ContainerStartTime", "TaskStartupTime", "RunTime", "TasksStarted"]);
    }
    names.into_iter().map(String::from).collect()
}

/// Where the record differs from the newest version's truth: its version and every duration, which
/// must equal the generator's sampled milliseconds. Empty when it matches.
pub fn record_mismatches(record: &TaskRecord, truth: &TaskTruth) -> Vec<String> {
    let seconds = |millis: Option<i64>| millis.map(|m| m as f64 / 1000.0);
    let mut mismatches = Vec::new();
    let mut check = |what: &str, got: String, want: String| {
        if got != want {
            mismatches.push(format!("{}: {what} {got}, expected {want}", truth.task_arn));
        }
    };
    check("version", record.version.to_string(), truth.final_version.to_string());
    let durations = [
        ("provisioning", record.provisioning_seconds, Some(truth.provisioning)),
        ("image pull", record.image_pull_seconds, truth.image_pull),
        ("container start", record.container_start_seconds, truth.container_start),
        ("startup", record.startup_seconds, truth.startup()),
        ("run", record.run_seconds, truth.run),
        ("shutdown", record.shutdown_seconds, truth.shutdown),
        ("lifetime", record.lifetime_seconds, truth.lifetime()),
    ];
    for (what, got, want) in durations {
        check(what, format!("{got:?}"), format!("{:?}", seconds(want)));
    }
    check(
        "failedToStart",
        record.failed_to_start.to_string(),
        truth.failed_to_start.to_string(),
    );
    mismatches
}

/// A task's metrics against its truth: how many names were emitted, the violations (a name emitted
/// twice, or one the task does not support), and how many names the ledger holds that were never
/// emitted. Those are lost only when a record write's answer was lost on every attempt of an
/// invocation (docs/reliability.md): counted, not hidden, and not a violation.
#[derive(Debug, Default)]
pub struct MetricCheck {
    pub emitted: usize,
    pub lost: usize,
    pub violations: Vec<String>,
}

/// `emitted`: how many times each metric name of this task was emitted.
pub fn check_metrics(truth: &TaskTruth, emitted: &BTreeMap<String, usize>, ledger: &BTreeSet<String>) -> MetricCheck {
    let expected = expected_metrics(truth);
    let arn = &truth.task_arn;
    let mut check = MetricCheck {
        emitted: emitted.len(),
        ..MetricCheck::default()
    };
    for (metric, times) in emitted {
        if *times > 1 {
            check.violations.push(format!("{arn}: {metric} emitted {times} times"));
        }
        if !expected.contains(metric) {
            check.violations.push(format!("{arn}: {metric} emitted, not supported"));
        }
    }
    check.lost = ledger
        .iter()
        .filter(|key| expected.contains(*key) && !emitted.contains_key(*key))
        .count();
    check
}
