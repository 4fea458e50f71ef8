//! Rollups: what each task adds, exactly once, to the items of its (family, revision, cluster, launch
//! type, snapshotter, account and region) series for the hour and for the day (UTC) of its createdAt. How those items are keyed and
//! written is `timing-dynamodb`'s (`keys`, `rollup_store`).
//!
//! Each task adds to both its hour item and its day item, so they hold the same tasks: a 30-day summary
//! reads 30 day items per series and slot instead of 720 hour items, and hours only for the partial days
//! at the window's edges.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::arn::Origin;
use crate::record::TaskRecord;
use crate::report::Snapshotter;
use crate::sketch::LogHistogram;
use crate::timestamp::Timestamp;
use crate::timing::Phase;

/// The slot of the counts item beside the phase items.
pub const COUNTS_SLOT: &str = "tasks";
pub const MILLIS_PER_HOUR: i64 = 3_600_000;
pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// The length of a rollup item's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    Hour,
    /// A UTC day.
    Day,
}

impl Granularity {
    pub const BOTH: [Granularity; 2] = [Granularity::Hour, Granularity::Day];

    pub const fn millis(self) -> i64 {
        match self {
            Granularity::Hour => MILLIS_PER_HOUR,
            Granularity::Day => MILLIS_PER_DAY,
        }
    }

    /// The start of the period holding `at`.
    pub fn start(self, at: Timestamp) -> Timestamp {
        Timestamp::from_millis(at.millis().div_euclid(self.millis()) * self.millis())
    }
}

/// One thing a task adds to its rollups, exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Marker {
    Task,
    Started,
    Stopped,
    FailedToStart,
    /// The report said how it would judge readiness, and the task was not ready within the bound: kept
    /// apart so that the phases to ready, which such a task lacks, are not read as the whole story.
    NotReady,
    Phase(Phase),
}

impl Marker {
    pub const fn name(self) -> &'static str {
        match self {
            Marker::Task => "task",
            Marker::Started => "started",
            Marker::Stopped => "stopped",
            Marker::FailedToStart => "failedToStart",
            Marker::NotReady => "notReady",
            Marker::Phase(phase) => phase.name(),
        }
    }
}

/// What the record says has happened, for good (see [`TaskRecord::phase_settled`]). A task without
/// createdAt has no hour, so no rollup.
pub fn known_markers(record: &TaskRecord) -> Vec<Marker> {
    if record.created_at.is_none() {
        return Vec::new();
    }
    let mut markers = vec![Marker::Task];
    markers.extend(record.started_at.map(|_| Marker::Started));
    markers.extend(record.stopped_at.map(|_| Marker::Stopped));
    markers.extend(record.failed_to_start.then_some(Marker::FailedToStart));
    markers.extend((record.ready_signal.is_some() && record.ready_at.is_none()).then_some(Marker::NotReady));
    markers.extend(
        Phase::ALL
            .into_iter()
            .filter(|phase| record.phase_settled(*phase))
            .filter(|phase| record.phase_seconds(*phase).is_some() || record.phase_anomaly(*phase).is_some())
            .map(Marker::Phase),
    );
    markers
}

/// Known but not yet rolled up.
pub fn due_markers(record: &TaskRecord, rolled_up: &BTreeSet<String>) -> Vec<Marker> {
    known_markers(record)
        .into_iter()
        .filter(|marker| !rolled_up.contains(marker.name()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    pub family: String,
    pub revision: u32,
    pub cluster_name: String,
    pub launch_type: Option<String>,
    /// From the task's image report; a task that learns it moves into this series (`stream`).
    pub snapshotter: Option<Snapshotter>,
    /// The task ARN's account and region. None on the series of records written before rollups were
    /// kept by account (see [`crate::stream::Image::by_account`]), whose items keep the keys they had.
    pub origin: Option<Origin>,
    pub granularity: Granularity,
    /// The start of the hour or day of createdAt.
    pub period_start: Timestamp,
}

impl Series {
    pub fn of(record: &TaskRecord, granularity: Granularity) -> Option<Series> {
        Some(Series {
            family: record.family.clone(),
            revision: record.revision,
            cluster_name: record.cluster_name.clone(),
            launch_type: record.launch_type.clone(),
            snapshotter: record.snapshotter,
            origin: Origin::of_task_arn(&record.task_arn),
            granularity,
            period_start: granularity.start(record.created_at?),
        })
    }

    pub fn period_end(&self) -> Timestamp {
        Timestamp::from_millis(self.period_start.millis() + self.granularity.millis())
    }
}

/// A series' task counts (in answers: beside each group's phases).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub tasks: u64,
    pub started: u64,
    pub stopped: u64,
    pub failed_to_start: u64,
    /// Phases whose end precedes their start: counted here, never in a phase's values.
    pub timestamp_anomalies: u64,
    /// Tasks whose report says they were not ready within the sidecar's bound (no phases to ready).
    pub not_ready: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.tasks += other.tasks;
        self.started += other.started;
        self.stopped += other.stopped;
        self.failed_to_start += other.failed_to_start;
        self.timestamp_anomalies += other.timestamp_anomalies;
        self.not_ready += other.not_ready;
    }
}

/// A phase's exact count, sum and sum of squares (whole milliseconds, so sums are exact integers)
/// and its log-bucketed histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhaseRollup {
    pub count: u64,
    pub sum_ms: u128,
    pub sum_squares_ms: u128,
    pub histogram: LogHistogram,
}

impl PhaseRollup {
    pub fn add_millis(&mut self, millis: u64) {
        self.count += 1;
        self.sum_ms += u128::from(millis);
        self.sum_squares_ms += u128::from(millis) * u128::from(millis);
        self.histogram.add_millis(millis);
    }

    pub fn merge(&mut self, other: &PhaseRollup) {
        self.count += other.count;
        self.sum_ms += other.sum_ms;
        self.sum_squares_ms += other.sum_squares_ms;
        self.histogram.merge(&other.histogram);
    }

    pub fn mean_millis(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms as f64 / self.count as f64)
    }

    /// Sample standard deviation (n − 1), from exact integer sums: n·Σx² − (Σx)² has no rounding.
    pub fn stddev_millis(&self) -> Option<f64> {
        match self.count {
            0 => None,
            1 => Some(0.0),
            n => {
                let n = u128::from(n);
                let spread = (n * self.sum_squares_ms).checked_sub(self.sum_ms * self.sum_ms)?;
                Some((spread as f64 / (n * (n - 1)) as f64).sqrt())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Counts(Counts),
    Phase(PhaseRollup),
}

impl Delta {
    /// What the delta adds, by attribute of its rollup item (zeros left out): the counts by name,
    /// a phase's `count`, `sumMs`, `sumSquaresMs` and one attribute per histogram bucket.
    pub fn fields(&self) -> Vec<(Cow<'static, str>, u128)> {
        let mut fields: Vec<(Cow<'static, str>, u128)> = match self {
            Delta::Counts(counts) => vec![
                ("tasks".into(), counts.tasks.into()),
                ("started".into(), counts.started.into()),
                ("stopped".into(), counts.stopped.into()),
                ("failedToStart".into(), counts.failed_to_start.into()),
                ("timestampAnomalies".into(), counts.timestamp_anomalies.into()),
                ("notReady".into(), counts.not_ready.into()),
            ],
            Delta::Phase(rollup) => {
                let mut fields = vec![
                    ("count".into(), rollup.count.into()),
                    ("sumMs".into(), rollup.sum_ms),
                    ("sumSquaresMs".into(), rollup.sum_squares_ms),
                ];
                fields.extend(
                    rollup
                        .histogram
                        .buckets()
                        .map(|(bucket, count)| (Cow::Owned(bucket.attribute()), u128::from(count))),
                );
                fields
            }
        };
        fields.retain(|(_, amount)| *amount > 0);
        fields
    }

    pub fn merge(&mut self, other: &Delta) {
        match (self, other) {
            (Delta::Counts(mine), Delta::Counts(theirs)) => mine.add(theirs),
            (Delta::Phase(mine), Delta::Phase(theirs)) => mine.merge(theirs),
            // Slots decide the kind, so a counts slot never meets a phase slot.
            _ => debug_assert!(false, "merging a counts delta with a phase delta"),
        }
    }
}

pub type RollupKey = (Series, &'static str);

fn record_millis(seconds: f64) -> u64 {
    // Records hold whole milliseconds as seconds; ×1000 rounds back to the same integer.
    (seconds * 1000.0).round().max(0.0) as u64
}

/// What the markers of this record add to which rollup item: the same deltas to its hour's items
/// and to its day's.
pub fn deltas(record: &TaskRecord, markers: &[Marker]) -> BTreeMap<RollupKey, Delta> {
    let mut deltas = BTreeMap::new();
    if record.created_at.is_none() {
        return deltas;
    }
    let mut counts = Counts::default();
    let mut slots = Vec::new();
    for marker in markers {
        match marker {
            Marker::Task => counts.tasks += 1,
            Marker::Started => counts.started += 1,
            Marker::Stopped => counts.stopped += 1,
            Marker::FailedToStart => counts.failed_to_start += 1,
            Marker::NotReady => counts.not_ready += 1,
            Marker::Phase(phase) => match record.phase_seconds(*phase) {
                Some(seconds) => {
                    let mut rollup = PhaseRollup::default();
                    rollup.add_millis(record_millis(seconds));
                    slots.push((phase.name(), Delta::Phase(rollup)));
                }
                None => counts.timestamp_anomalies += 1,
            },
        }
    }
    if counts != Counts::default() {
        slots.push((COUNTS_SLOT, Delta::Counts(counts)));
    }
    for series in Granularity::BOTH.into_iter().filter_map(|g| Series::of(record, g)) {
        for (slot, delta) in &slots {
            deltas.insert((series.clone(), *slot), delta.clone());
        }
    }
    deltas
}

/// The same deltas keyed as before rollups were kept by account: what a record that predates it added.
pub fn without_origin(deltas: BTreeMap<RollupKey, Delta>) -> BTreeMap<RollupKey, Delta> {
    deltas
        .into_iter()
        .map(|((mut series, slot), delta)| {
            series.origin = None;
            ((series, slot), delta)
        })
        .collect()
}

/// How long rollup items outlive the end of their period: the retention the record carries (its
/// expiresAt minus its createdAt), so every writer of an item sets the same expiry, and an hour's
/// items go with that hour's records.
pub fn rollup_retention_seconds(record: &TaskRecord) -> Option<i64> {
    Some(record.expires_at? - record.created_at?.millis().div_euclid(1000))
}

/// A rollup item as read back: its series (without the hour) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupItem {
    pub family: String,
    pub revision: u32,
    pub cluster_name: String,
    pub launch_type: Option<String>,
    pub snapshotter: Option<Snapshotter>,
    /// None on items written before rollups were kept by account.
    pub origin: Option<Origin>,
    pub slot: String,
    pub delta: Delta,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;
    use serde_json::json;

    fn record(detail: serde_json::Value) -> TaskRecord {
        let envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": detail});
        TaskRecord::from_event(parse_event(envelope.to_string().as_bytes()).unwrap(), 30).unwrap()
    }

    fn running() -> TaskRecord {
        record(json!({"taskArn": "arn:aws:ecs:us-east-1:1:task/prod/t1",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3", "launchType": "FARGATE",
            "version": 4, "lastStatus": "RUNNING", "createdAt": "2026-11-22T10:59:58.500Z",
            "pullStartedAt": "2026-11-22T11:00:05Z", "pullStoppedAt": "2026-11-22T11:00:04Z",
            "startedAt": "2026-11-22T11:00:20.250Z"}))
    }

    #[test]
    fn markers_follow_what_the_record_knows() {
        let record = running();
        let names: Vec<&str> = known_markers(&record).iter().map(|m| m.name()).collect();
        // imagePull ends before it starts: known (as an anomaly), so it is marked and counted once.
        assert_eq!(
            names,
            [
                "task",
                "started",
                "provisioning",
                "imagePull",
                "containerStart",
                "startup"
            ]
        );
        let rolled_up = BTreeSet::from(["task".to_owned(), "imagePull".to_owned()]);
        let due: Vec<&str> = due_markers(&record, &rolled_up).iter().map(|m| m.name()).collect();
        assert_eq!(due, ["started", "provisioning", "containerStart", "startup"]);
        let mut no_created = record.clone();
        no_created.created_at = None;
        assert!(known_markers(&no_created).is_empty());
    }

    #[test]
    fn run_waits_until_its_end_is_settled() {
        let stopping = |last_status: &str, execution_stopped: Option<&str>| {
            let mut detail = json!({"taskArn": "arn:aws:ecs:us-east-1:1:task/prod/t1",
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3", "version": 6,
                "lastStatus": last_status, "createdAt": "2026-11-22T10:00:00Z", "startedAt": "2026-11-22T10:00:30Z",
                "stoppingAt": "2026-11-22T10:10:30Z"});
            if let Some(at) = execution_stopped {
                detail["executionStoppedAt"] = json!(at);
            }
            let record = record(detail);
            let names: Vec<&str> = known_markers(&record).iter().map(|m| m.name()).collect();
            (
                names.contains(&"run"),
                crate::metrics::ledger_keys(&record).contains("RunTime"),
            )
        };
        // Ending at stoppingAt, the run may still be replaced by a later executionStoppedAt: not yet.
        assert_eq!(stopping("DEACTIVATING", None), (false, false));
        assert_eq!(stopping("DEACTIVATING", Some("2026-11-22T10:10:29Z")), (true, true));
        // Stopped without executionStoppedAt: stoppingAt is final.
        assert_eq!(stopping("STOPPED", None), (true, true));
    }
}
