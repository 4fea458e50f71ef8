//! Rollups: what each task adds, exactly once, to the items of its (family, revision, cluster, launch
//! type) series for the hour and for the day (UTC) of its createdAt. Pure: the store sends what these
//! functions build.
//!
//! Rollup table key: `family` (partition) and `periodSeries` (sort) =
//! `<period>#<slot>#<revision>#<cluster>#<launchType>`, where the slot is a phase name or `tasks` (the
//! counts) and the period is `YYYY-MM-DDTHH` for an hour item or `D#YYYY-MM-DD` for a day item. The
//! period leads, so one Query with `BETWEEN` reads every series of a family over a run of hours or of
//! days; day keys start with a letter, so no range of hour keys (digits) reaches them.
//!
//! Each task's transaction adds to both its hour item and its day item, so they hold the same tasks:
//! a 30-day summary reads 30 day items per series and slot instead of 720 hour items, and hours only
//! for the partial days at the window's edges.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::record::TaskRecord;
use crate::sketch::{Bucket, LogHistogram};
use crate::timestamp::Timestamp;
use crate::timing::Phase;

pub const DEFAULT_ROLLUP_TABLE_NAME: &str = "ecs-task-timing-rollups";
pub const ROLLUP_PARTITION_KEY: &str = "family";
pub const ROLLUP_SORT_KEY: &str = "periodSeries";
/// String set on the task record: the markers already in the rollups.
pub const ROLLED_UP: &str = "rolledUp";
/// The slot of the counts item beside the phase items.
pub const COUNTS_SLOT: &str = "tasks";
/// Sort-key stand-in for a task whose launch type is not reported.
const NO_LAUNCH_TYPE: &str = "-";
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

    /// The item attribute naming the period: `hour` or `day`.
    pub const fn attribute(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// `YYYY-MM-DDTHH` or `YYYY-MM-DD` of the period starting at `start`.
    pub fn text(self, start: Timestamp) -> String {
        let mut text = start.to_string();
        text.truncate(match self {
            Granularity::Hour => "YYYY-MM-DDTHH".len(),
            Granularity::Day => "YYYY-MM-DD".len(),
        });
        text
    }

    /// What sort keys of the period starting at `start` begin with (before their `#<slot>`).
    pub fn key_prefix(self, start: Timestamp) -> String {
        match self {
            Granularity::Hour => self.text(start),
            Granularity::Day => format!("D#{}", self.text(start)),
        }
    }
}

/// One thing a task adds to its rollups, exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Marker {
    Task,
    Started,
    Stopped,
    FailedToStart,
    Phase(Phase),
}

impl Marker {
    pub const fn name(self) -> &'static str {
        match self {
            Marker::Task => "task",
            Marker::Started => "started",
            Marker::Stopped => "stopped",
            Marker::FailedToStart => "failedToStart",
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
    markers.extend(
        Phase::ALL
            .into_iter()
            .filter(|phase| record.phase_settled(*phase))
            .filter(|phase| {
                record.phase_seconds(*phase).is_some() || record.timestamp_anomalies.contains_key(phase.name())
            })
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
            granularity,
            period_start: granularity.start(record.created_at?),
        })
    }

    pub fn period_end(&self) -> Timestamp {
        Timestamp::from_millis(self.period_start.millis() + self.granularity.millis())
    }

    pub fn sort_key(&self, slot: &str) -> String {
        format!(
            "{}#{slot}#{}#{}#{}",
            self.granularity.key_prefix(self.period_start),
            self.revision,
            self.cluster_name,
            self.launch_type.as_deref().unwrap_or(NO_LAUNCH_TYPE)
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tasks: u64,
    pub started: u64,
    pub stopped: u64,
    pub failed_to_start: u64,
    /// Phases whose end precedes their start: counted here, never in a phase's values.
    pub timestamp_anomalies: u64,
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
    pub fn merge(&mut self, other: &Delta) {
        match (self, other) {
            (Delta::Counts(mine), Delta::Counts(theirs)) => {
                mine.tasks += theirs.tasks;
                mine.started += theirs.started;
                mine.stopped += theirs.stopped;
                mine.failed_to_start += theirs.failed_to_start;
                mine.timestamp_anomalies += theirs.timestamp_anomalies;
            }
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

/// One UpdateItem, in a transaction or alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemUpdate {
    pub key: HashMap<String, AttributeValue>,
    pub update_expression: String,
    pub condition_expression: Option<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

struct Expression {
    set: Vec<String>,
    add: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn new() -> Expression {
        Expression {
            set: Vec::new(),
            add: Vec::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    fn set(&mut self, name: &str, value: AttributeValue) {
        self.names.insert(format!("#{name}"), name.to_owned());
        self.values.insert(format!(":{name}"), value);
        self.set.push(format!("#{name} = :{name}"));
    }

    fn add(&mut self, name: &str, amount: u128) {
        if amount == 0 {
            return;
        }
        self.names.insert(format!("#{name}"), name.to_owned());
        self.values
            .insert(format!(":{name}"), AttributeValue::N(amount.to_string()));
        self.add.push(format!("#{name} :{name}"));
    }

    fn text(&self) -> String {
        let mut text = String::new();
        if !self.set.is_empty() {
            text.push_str("SET ");
            text.push_str(&self.set.join(", "));
        }
        if !self.add.is_empty() {
            text.push_str(if text.is_empty() { "ADD " } else { " ADD " });
            text.push_str(&self.add.join(", "));
        }
        text
    }
}

/// SETs the series' attributes (the same value for every writer, so the order of writers does
/// not matter) and ADDs the delta: no read, so concurrent writers never overwrite each other.
pub fn rollup_update(key: &RollupKey, delta: &Delta, retention_seconds: Option<i64>) -> ItemUpdate {
    let (series, slot) = key;
    let expires_at = retention_seconds.map(|retention| series.period_end().millis() / 1000 + retention);
    let mut expression = Expression::new();
    expression.set("revision", AttributeValue::N(series.revision.to_string()));
    expression.set("clusterName", AttributeValue::S(series.cluster_name.clone()));
    if let Some(launch_type) = &series.launch_type {
        expression.set("launchType", AttributeValue::S(launch_type.clone()));
    }
    expression.set("slot", AttributeValue::S((*slot).to_owned()));
    expression.set(
        series.granularity.attribute(),
        AttributeValue::S(series.granularity.text(series.period_start)),
    );
    if let Some(expires_at) = expires_at {
        expression.set("expiresAt", AttributeValue::N(expires_at.to_string()));
    }
    match delta {
        Delta::Counts(counts) => {
            expression.add("tasks", counts.tasks.into());
            expression.add("started", counts.started.into());
            expression.add("stopped", counts.stopped.into());
            expression.add("failedToStart", counts.failed_to_start.into());
            expression.add("timestampAnomalies", counts.timestamp_anomalies.into());
        }
        Delta::Phase(rollup) => {
            expression.add("count", rollup.count.into());
            expression.add("sumMs", rollup.sum_ms);
            expression.add("sumSquaresMs", rollup.sum_squares_ms);
            for (bucket, count) in rollup.histogram.buckets() {
                expression.add(&bucket.attribute(), count.into());
            }
        }
    }
    ItemUpdate {
        key: HashMap::from([
            (
                ROLLUP_PARTITION_KEY.to_owned(),
                AttributeValue::S(series.family.clone()),
            ),
            (ROLLUP_SORT_KEY.to_owned(), AttributeValue::S(series.sort_key(slot))),
        ]),
        update_expression: expression.text(),
        condition_expression: None,
        names: expression.names,
        values: expression.values,
    }
}

/// The item [`rollup_update`] leaves when no item of that key exists yet: its key, every SET value and
/// every ADD amount. For bulk loads into a new table (benchmarks), which can then use BatchWriteItem.
pub fn new_item(key: &RollupKey, delta: &Delta, retention_seconds: Option<i64>) -> HashMap<String, AttributeValue> {
    let update = rollup_update(key, delta, retention_seconds);
    let mut item = update.key;
    item.extend(
        update
            .values
            .into_iter()
            .map(|(placeholder, value)| (placeholder.trim_start_matches(':').to_owned(), value)),
    );
    item
}

/// How long rollup items outlive the end of their period: the retention the record carries (its
/// expiresAt minus its createdAt), so every writer of an item sets the same expiry, and an hour's
/// items go with that hour's records.
pub fn rollup_retention_seconds(record: &TaskRecord) -> Option<i64> {
    Some(record.expires_at? - record.created_at?.millis().div_euclid(1000))
}

/// The task record's side of the transaction: add the markers, on condition that the record exists
/// and holds none of them yet. A marker already there means another invocation rolled it up.
pub fn marker_update(task_arn: &str, markers: &[Marker]) -> ItemUpdate {
    let mut values: HashMap<String, AttributeValue> = markers
        .iter()
        .enumerate()
        .map(|(i, marker)| (format!(":m{i}"), AttributeValue::S(marker.name().to_owned())))
        .collect();
    values.insert(
        ":rolledUp".into(),
        AttributeValue::Ss(markers.iter().map(|marker| marker.name().to_owned()).collect()),
    );
    let mut condition = "attribute_exists(#taskArn)".to_owned();
    for i in 0..markers.len() {
        condition.push_str(&format!(" AND NOT contains(#rolledUp, :m{i})"));
    }
    ItemUpdate {
        key: HashMap::from([(
            crate::store::PARTITION_KEY.to_owned(),
            AttributeValue::S(task_arn.to_owned()),
        )]),
        update_expression: "ADD #rolledUp :rolledUp".into(),
        condition_expression: Some(condition),
        names: HashMap::from([
            ("#rolledUp".to_owned(), ROLLED_UP.to_owned()),
            ("#taskArn".to_owned(), crate::store::PARTITION_KEY.to_owned()),
        ]),
        values,
    }
}

/// A rollup item as read back: its series (without the hour) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupItem {
    pub family: String,
    pub revision: u32,
    pub cluster_name: String,
    pub launch_type: Option<String>,
    pub slot: String,
    pub delta: Delta,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("rollup item {key:?}: {problem}")]
pub struct RollupItemError {
    pub key: String,
    pub problem: String,
}

impl RollupItem {
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<RollupItem, RollupItemError> {
        let key = item
            .get(ROLLUP_SORT_KEY)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let fail = |problem: String| RollupItemError {
            key: key.clone(),
            problem,
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| -> Result<u128, RollupItemError> {
            match item.get(name) {
                None => Ok(0),
                Some(value) => value
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse::<u128>().ok())
                    .ok_or_else(|| fail(format!("{name} is not a whole number: {value:?}"))),
            }
        };
        let small = |name: &str| -> Result<u64, RollupItemError> {
            u64::try_from(number(name)?).map_err(|_| fail(format!("{name} exceeds 2^64")))
        };
        let slot = text("slot").ok_or_else(|| fail("no slot".into()))?;
        let delta = if slot == COUNTS_SLOT {
            Delta::Counts(Counts {
                tasks: small("tasks")?,
                started: small("started")?,
                stopped: small("stopped")?,
                failed_to_start: small("failedToStart")?,
                timestamp_anomalies: small("timestampAnomalies")?,
            })
        } else {
            let mut rollup = PhaseRollup {
                count: small("count")?,
                sum_ms: number("sumMs")?,
                sum_squares_ms: number("sumSquaresMs")?,
                histogram: LogHistogram::default(),
            };
            // One pass over the attributes: a 30-day summary reads hundreds of thousands of buckets.
            for (name, value) in item {
                let Some(bucket) = Bucket::from_attribute(name) else {
                    continue;
                };
                let count = value
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| fail(format!("{name} is not a whole number: {value:?}")))?;
                if !rollup.histogram.add_count(bucket, count) {
                    return Err(fail(format!("{name} is not a bucket any duration maps to")));
                }
            }
            Delta::Phase(rollup)
        };
        Ok(RollupItem {
            family: text(ROLLUP_PARTITION_KEY).ok_or_else(|| fail("no family".into()))?,
            revision: u32::try_from(number("revision")?).map_err(|_| fail("revision out of range".into()))?,
            cluster_name: text("clusterName").ok_or_else(|| fail("no clusterName".into()))?,
            launch_type: text("launchType"),
            slot,
            delta,
        })
    }
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

    #[test]
    fn deltas_put_each_marker_in_its_hours_item_and_its_days() {
        let record = running();
        let deltas = deltas(&record, &known_markers(&record));
        let keys: Vec<String> = deltas.keys().map(|(series, slot)| series.sort_key(slot)).collect();
        // The hour is createdAt's (10:59:58.5), even though the task started at 11:00.
        assert_eq!(
            keys,
            [
                "2026-11-22T10#containerStart#3#prod#FARGATE",
                "2026-11-22T10#provisioning#3#prod#FARGATE",
                "2026-11-22T10#startup#3#prod#FARGATE",
                "2026-11-22T10#tasks#3#prod#FARGATE",
                "D#2026-11-22#containerStart#3#prod#FARGATE",
                "D#2026-11-22#provisioning#3#prod#FARGATE",
                "D#2026-11-22#startup#3#prod#FARGATE",
                "D#2026-11-22#tasks#3#prod#FARGATE",
            ]
        );
        for granularity in Granularity::BOTH {
            let series = Series::of(&record, granularity).unwrap();
            let Delta::Phase(rollup) = &deltas[&(series.clone(), "startup")] else {
                panic!()
            };
            // 10:59:58.500 -> 11:00:20.250 is 21,750 ms.
            assert_eq!(
                (rollup.count, rollup.sum_ms, rollup.sum_squares_ms),
                (1, 21_750, 21_750 * 21_750)
            );
            assert_eq!(
                deltas[&(series, COUNTS_SLOT)],
                Delta::Counts(Counts {
                    tasks: 1,
                    started: 1,
                    timestamp_anomalies: 1,
                    ..Counts::default()
                })
            );
        }
    }

    #[test]
    fn day_keys_sort_outside_every_range_of_hour_keys() {
        let day = Series::of(&running(), Granularity::Day).unwrap().sort_key("run");
        // Hour ranges run from "<hour>#" to "<hour>$"; hours are digits, "D" sorts above all of them.
        assert!(day.as_str() > "9999-12-31T23$" && day.starts_with("D#2026-11-22#"));
        assert_eq!(
            Granularity::Day.start(Timestamp::parse("2026-11-22T23:59:59.999Z").unwrap()),
            Timestamp::parse("2026-11-22T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn an_update_read_back_is_the_delta_it_added() {
        let record = running();
        for (key, delta) in deltas(&record, &known_markers(&record)) {
            let update = rollup_update(&key, &delta, rollup_retention_seconds(&record));
            assert!(update.condition_expression.is_none());
            // Every placeholder is the attribute's own name: `:count` adds to `count`.
            for (placeholder, name) in &update.names {
                assert_eq!(&placeholder[1..], name);
            }
            let item = new_item(&key, &delta, rollup_retention_seconds(&record));
            let read = RollupItem::from_item(&item).unwrap();
            assert_eq!(read.delta, delta);
            assert_eq!(
                (
                    read.family.as_str(),
                    read.revision,
                    read.cluster_name.as_str(),
                    read.slot.as_str()
                ),
                ("web", 3, "prod", key.1)
            );
            // Items expire at the end of their period plus the record's 30-day retention:
            // 2026-11-22T11:00:00Z is 1,795,345,200 s; the day ends 13 hours later.
            let (period, period_end) = match key.0.granularity {
                Granularity::Hour => (("hour", "2026-11-22T10"), 1_795_345_200),
                Granularity::Day => (("day", "2026-11-22"), 1_795_345_200 + 13 * 3600),
            };
            assert_eq!(
                item["expiresAt"],
                AttributeValue::N((period_end + 30 * 86_400).to_string())
            );
            assert_eq!(item[period.0], AttributeValue::S(period.1.into()));
        }
    }

    #[test]
    fn the_marker_update_refuses_markers_already_there() {
        let update = marker_update("arn:t", &[Marker::Task, Marker::Phase(Phase::Run)]);
        assert_eq!(update.update_expression, "ADD #rolledUp :rolledUp");
        assert_eq!(
            update.condition_expression.as_deref(),
            Some("attribute_exists(#taskArn) AND NOT contains(#rolledUp, :m0) AND NOT contains(#rolledUp, :m1)")
        );
        assert_eq!(update.values[":m1"], AttributeValue::S("run".into()));
        assert_eq!(
            update.values[":rolledUp"],
            AttributeValue::Ss(vec!["task".into(), "run".into()])
        );
    }

    #[test]
    fn malformed_items_are_named() {
        let item = HashMap::from([
            ("family".to_owned(), AttributeValue::S("web".into())),
            (
                "periodSeries".to_owned(),
                AttributeValue::S("2026-11-22T10#run#3#prod#-".into()),
            ),
            ("slot".to_owned(), AttributeValue::S("run".into())),
            ("clusterName".to_owned(), AttributeValue::S("prod".into())),
            ("b12".to_owned(), AttributeValue::N("1.5".into())),
        ]);
        let err = RollupItem::from_item(&item).unwrap_err().to_string();
        assert!(
            err.contains("2026-11-22T10#run#3#prod#-") && err.contains("b12"),
            "{err}"
        );
    }
}
