//! The CloudWatch data points of a sample. Pure: the publisher turns them into PutMetricData calls.

use chrono::{DateTime, Utc};

use crate::metadata::{SyncStatus, TaskIdentity};
use crate::sample::Sample;

pub const DEFAULT_NAMESPACE: &str = "ECS/ClockAccuracy";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Seconds,
    Count,
    None,
}

impl Unit {
    pub const fn name(self) -> &'static str {
        match self {
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Count => "Count",
            Unit::None => "None",
        }
    }
}

/// One value of one metric with one set of dimensions, at the time it was sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub metric: &'static str,
    pub unit: Unit,
    pub value: f64,
    pub timestamp: DateTime<Utc>,
    pub dimensions: Vec<(&'static str, String)>,
}

/// Which dimension sets each value is published under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DimensionPolicy {
    /// Adds [ClusterName, TaskFamily, TaskId]: one metric per task, which CloudWatch bills per metric.
    pub per_task: bool,
}

impl DimensionPolicy {
    /// [ClusterName, TaskFamily] always; [ClusterName, ServiceName] for a service's task; with
    /// `per_task`, [ClusterName, TaskFamily, TaskId].
    pub fn dimension_sets(self, task: &TaskIdentity) -> Vec<Vec<(&'static str, String)>> {
        let cluster = ("ClusterName", task.cluster_name.clone());
        let mut sets = vec![vec![cluster.clone(), ("TaskFamily", task.family.clone())]];
        if let Some(service) = &task.service_name {
            sets.push(vec![cluster.clone(), ("ServiceName", service.clone())]);
        }
        if self.per_task {
            sets.push(vec![
                cluster,
                ("TaskFamily", task.family.clone()),
                ("TaskId", task.task_id.clone()),
            ]);
        }
        sets
    }
}

fn under_each(
    sets: &[Vec<(&'static str, String)>],
    metric: &'static str,
    unit: Unit,
    value: f64,
    timestamp: DateTime<Utc>,
) -> impl Iterator<Item = Datum> {
    sets.iter().map(move |dimensions| Datum {
        metric,
        unit,
        value,
        timestamp,
        dimensions: dimensions.clone(),
    })
}

/// A sample's data points: ClockErrorBound, ClockSynchronized and ReferenceAge when ClockDrift is
/// present (none when it is not: no made-up bound), and MetadataErrors 0, which keeps that metric
/// continuous so an alarm on it can tell "no errors" from "no data".
pub fn sample_data(sample: &Sample, policy: DimensionPolicy) -> Vec<Datum> {
    let sets = policy.dimension_sets(&sample.metadata.identity);
    let at = sample.sampled_at;
    let mut data: Vec<Datum> = under_each(&sets, "MetadataErrors", Unit::Count, 0.0, at).collect();
    if let Some(clock) = sample.metadata.clock {
        let synchronized = if clock.status == SyncStatus::Synchronized {
            1.0
        } else {
            0.0
        };
        data.extend(under_each(
            &sets,
            "ClockErrorBound",
            Unit::Milliseconds,
            clock.error_bound_ms,
            at,
        ));
        data.extend(under_each(&sets, "ClockSynchronized", Unit::None, synchronized, at));
        if let Some(age) = sample.reference_age_seconds() {
            data.extend(under_each(&sets, "ReferenceAge", Unit::Seconds, age, at));
        }
    }
    data
}

/// A failed read: MetadataErrors 1 under the task's dimensions when an earlier read told who the
/// task is, else with no dimensions (the namespace-wide metric), so the failure is never silent.
pub fn error_data(task: Option<&TaskIdentity>, policy: DimensionPolicy, at: DateTime<Utc>) -> Vec<Datum> {
    let sets = task.map_or_else(|| vec![Vec::new()], |task| policy.dimension_sets(task));
    under_each(&sets, "MetadataErrors", Unit::Count, 1.0, at).collect()
}

/// Namespaces beginning with `AWS/` belong to AWS services; CloudWatch refuses them and they must
/// never be mixed with AWS's own metrics.
pub fn validate_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > 255 {
        return Err(format!("namespace {namespace:?} must be 1 to 255 characters"));
    }
    if namespace.starts_with("AWS/") {
        return Err(format!("namespace {namespace:?}: AWS/ is reserved for AWS services"));
    }
    if let Some(bad) = namespace
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_/#:".contains(*c)))
    {
        return Err(format!("namespace {namespace:?}: character {bad:?} is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::tests::sample;

    fn names(data: &[Datum]) -> Vec<String> {
        data.iter()
            .map(|d| {
                let dims: Vec<String> = d.dimensions.iter().map(|(n, v)| format!("{n}={v}")).collect();
                format!("{} {} {} [{}]", d.metric, d.value, d.unit.name(), dims.join(","))
            })
            .collect()
    }

    #[test]
    fn a_synchronized_sample_gives_every_metric_under_each_dimension_set() {
        let data = sample_data(
            &sample(Some((0.446, SyncStatus::Synchronized))),
            DimensionPolicy::default(),
        );
        assert_eq!(
            names(&data),
            [
                "MetadataErrors 0 Count [ClusterName=payments,TaskFamily=ledger]",
                "MetadataErrors 0 Count [ClusterName=payments,ServiceName=ledger-api]",
                "ClockErrorBound 0.446 Milliseconds [ClusterName=payments,TaskFamily=ledger]",
                "ClockErrorBound 0.446 Milliseconds [ClusterName=payments,ServiceName=ledger-api]",
                "ClockSynchronized 1 None [ClusterName=payments,TaskFamily=ledger]",
                "ClockSynchronized 1 None [ClusterName=payments,ServiceName=ledger-api]",
                "ReferenceAge 12.5 Seconds [ClusterName=payments,TaskFamily=ledger]",
                "ReferenceAge 12.5 Seconds [ClusterName=payments,ServiceName=ledger-api]",
            ]
        );
        assert!(data.iter().all(|d| d.timestamp == sample(None).sampled_at));
    }

    #[test]
    fn per_task_dimensions_only_when_asked_and_no_bound_without_clock_drift() {
        let per_task = DimensionPolicy { per_task: true };
        let unsynced = sample_data(&sample(Some((3.0, SyncStatus::NotSynchronized))), per_task);
        assert!(
            names(&unsynced)
                .contains(&"ClockSynchronized 0 None [ClusterName=payments,TaskFamily=ledger,TaskId=abc]".to_owned())
        );
        let unavailable = sample_data(&sample(None), per_task);
        assert!(
            unavailable.iter().all(|d| d.metric == "MetadataErrors"),
            "{:?}",
            names(&unavailable)
        );
        assert_eq!(unavailable.len(), 3);
    }

    #[test]
    fn errors_before_the_first_read_go_out_without_dimensions() {
        let at = sample(None).sampled_at;
        assert_eq!(
            names(&error_data(None, DimensionPolicy::default(), at)),
            ["MetadataErrors 1 Count []"]
        );
        let known = sample(None).metadata.identity;
        assert_eq!(error_data(Some(&known), DimensionPolicy::default(), at).len(), 2);
    }

    #[test]
    fn aws_namespaces_are_refused() {
        assert!(validate_namespace(DEFAULT_NAMESPACE).is_ok());
        assert_eq!(
            validate_namespace("AWS/ECS").unwrap_err(),
            "namespace \"AWS/ECS\": AWS/ is reserved for AWS services"
        );
        assert!(validate_namespace("clock accuracy").is_err());
        assert!(validate_namespace("").is_err());
    }
}
