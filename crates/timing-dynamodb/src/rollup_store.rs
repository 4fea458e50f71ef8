//! DynamoDB side of the rollups: the transaction that marks a task's markers and adds them to
//! the rollup items, its retries, and the summary's read of rollup items.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use timing_domain::query::RecordQuery;
use timing_domain::record::TaskRecord;
use timing_domain::rollup::{Delta, Marker, RollupItem, RollupKey, deltas, rollup_retention_seconds};

use crate::error::{ReadCount, StoreError};
use crate::expression::Expression;
use crate::items::{rollup_item_from_item, string_set};
use crate::keys::{
    PARTITION_KEY, ROLLED_UP, ROLLUP_PARTITION_KEY, ROLLUP_SORT_KEY, period_attribute, period_text, rollup_sort_key,
};
use crate::reads::{rollup_key_ranges, rollup_query};
use crate::task_store::{TaskStore, each_item};

/// One UpdateItem, in a transaction or alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemUpdate {
    pub key: HashMap<String, AttributeValue>,
    pub update_expression: String,
    pub condition_expression: Option<String>,
    pub expression: Expression,
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
        period_attribute(series.granularity),
        AttributeValue::S(period_text(series.granularity, series.period_start)),
    );
    if let Some(expires_at) = expires_at {
        expression.set("expiresAt", AttributeValue::N(expires_at.to_string()));
    }
    let mut add = |name: &str, amount: u128| {
        if amount > 0 {
            expression.add(name, AttributeValue::N(amount.to_string()));
        }
    };
    match delta {
        Delta::Counts(counts) => {
            add("tasks", counts.tasks.into());
            add("started", counts.started.into());
            add("stopped", counts.stopped.into());
            add("failedToStart", counts.failed_to_start.into());
            add("timestampAnomalies", counts.timestamp_anomalies.into());
        }
        Delta::Phase(rollup) => {
            add("count", rollup.count.into());
            add("sumMs", rollup.sum_ms);
            add("sumSquaresMs", rollup.sum_squares_ms);
            for (bucket, count) in rollup.histogram.buckets() {
                add(&bucket.attribute(), count.into());
            }
        }
    }
    ItemUpdate {
        key: HashMap::from([
            (
                ROLLUP_PARTITION_KEY.to_owned(),
                AttributeValue::S(series.family.clone()),
            ),
            (
                ROLLUP_SORT_KEY.to_owned(),
                AttributeValue::S(rollup_sort_key(series, slot)),
            ),
        ]),
        update_expression: expression.update(),
        condition_expression: None,
        expression,
    }
}

/// The item [`rollup_update`] leaves when no item of that key exists yet: its key, every SET value and
/// every ADD amount. For bulk loads into a new table (benchmarks), which can then use BatchWriteItem.
#[cfg(any(test, feature = "test-support"))]
pub fn new_item(key: &RollupKey, delta: &Delta, retention_seconds: Option<i64>) -> HashMap<String, AttributeValue> {
    let update = rollup_update(key, delta, retention_seconds);
    let mut item = update.key;
    item.extend(
        update
            .expression
            .values
            .into_iter()
            .map(|(placeholder, value)| (placeholder.trim_start_matches(':').to_owned(), value)),
    );
    item
}

/// The task record's side of the transaction: add the markers, on condition that the record exists
/// and holds none of them yet. A marker already there means another invocation rolled it up.
pub fn marker_update(task_arn: &str, markers: &[Marker]) -> ItemUpdate {
    let mut expression = Expression::new();
    let mut condition = format!("attribute_exists({})", expression.name(PARTITION_KEY));
    let rolled_up = expression.name(ROLLED_UP);
    for (i, marker) in markers.iter().enumerate() {
        let value = expression.value(&format!("m{i}"), AttributeValue::S(marker.name().to_owned()));
        condition.push_str(&format!(" AND NOT contains({rolled_up}, {value})"));
    }
    let names = markers.iter().map(|marker| marker.name().to_owned()).collect();
    expression.add(ROLLED_UP, AttributeValue::Ss(names));
    ItemUpdate {
        key: HashMap::from([(PARTITION_KEY.to_owned(), AttributeValue::S(task_arn.to_owned()))]),
        update_expression: expression.update(),
        condition_expression: Some(condition),
        expression,
    }
}

/// Attempts per transaction when DynamoDB cancels it for a conflict with another transaction on
/// the same rollup item (many tasks of one family in one hour).
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 10;
const BACKOFF_BASE: Duration = Duration::from_millis(10);
const BACKOFF_CAP: Duration = Duration::from_millis(1000);

/// What one roll-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupReport {
    /// Markers this call added (another invocation may have added some of those it was asked for).
    pub rolled_up: Vec<Marker>,
    /// TransactWriteItems calls sent.
    pub transactions: u32,
    /// Of those, cancelled for a TransactionConflict and retried.
    pub conflicts: u32,
}

/// Full jitter: a uniform wait up to base·2^attempt, capped, so contending writers spread out.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(fastrand::f64())
}

/// Why DynamoDB cancelled a transaction, from its cancellation reasons (one per item, in order).
#[derive(Debug, Clone, PartialEq)]
enum Cancelled {
    /// The task record's condition failed: some markers are already there. Holds the stored set.
    AlreadyRolledUp(BTreeSet<String>),
    Conflict,
    Other(String),
}

fn cancellation(err: &TransactWriteItemsError) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = err else {
        return None;
    };
    let reasons = cancelled.cancellation_reasons();
    let code = |i: usize| reasons.get(i).and_then(|reason| reason.code()).unwrap_or("None");
    if code(0) == "ConditionalCheckFailed" {
        let stored = reasons.first().and_then(|reason| reason.item());
        return Some(match stored {
            Some(item) => Cancelled::AlreadyRolledUp(string_set(item, ROLLED_UP)),
            None => Cancelled::Other("the task record does not exist".into()),
        });
    }
    if reasons
        .iter()
        .any(|reason| reason.code() == Some("TransactionConflict"))
    {
        return Some(Cancelled::Conflict);
    }
    let codes: Vec<&str> = (0..reasons.len()).map(code).collect();
    Some(Cancelled::Other(format!("cancelled: [{}]", codes.join(", "))))
}

fn transact_item(table: &str, update: ItemUpdate) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(update.key))
        .update_expression(update.update_expression)
        .set_condition_expression(update.condition_expression)
        .set_expression_attribute_names(Some(update.expression.names))
        .set_expression_attribute_values(Some(update.expression.values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()?;
    Ok(TransactWriteItem::builder().update(update).build())
}

impl TaskStore {
    /// Adds `markers` of `record` to the rollups exactly once: one transaction marks them on the task
    /// record (on condition that none is there yet) and adds their values to the rollup items. A
    /// refused condition means another invocation got there first; what it did not cover is retried.
    pub async fn roll_up(&self, record: &TaskRecord, markers: &[Marker]) -> Result<RollupReport, StoreError> {
        let mut report = RollupReport::default();
        let mut due = markers.to_vec();
        let retention_seconds = rollup_retention_seconds(record);
        while !due.is_empty() {
            let mut items = vec![transact_item(&self.table, marker_update(&record.task_arn, &due))?];
            for (key, delta) in deltas(record, &due) {
                items.push(transact_item(
                    &self.rollup_table,
                    rollup_update(&key, &delta, retention_seconds),
                )?);
            }
            report.transactions += 1;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let err = match sent {
                Ok(_) => {
                    report.rolled_up.extend(due);
                    return Ok(report);
                }
                Err(err) => err,
            };
            match err.as_service_error().and_then(cancellation) {
                Some(Cancelled::AlreadyRolledUp(stored)) => {
                    let before = due.len();
                    due.retain(|marker| !stored.contains(marker.name()));
                    // The condition only fails on a marker already there; anything else would loop.
                    if due.len() == before {
                        return Err(self
                            .transaction_error("the record's condition failed, yet holds none of the markers".into()));
                    }
                }
                Some(Cancelled::Conflict) if report.transactions < MAX_TRANSACTION_ATTEMPTS => {
                    report.conflicts += 1;
                    tokio::time::sleep(backoff(report.transactions)).await;
                }
                Some(Cancelled::Other(reason)) => return Err(self.transaction_error(reason)),
                _ => return Err(StoreError::sdk("TransactWriteItems", &self.rollup_table, err)),
            }
        }
        Ok(report)
    }

    fn transaction_error(&self, reason: String) -> StoreError {
        StoreError::Refused {
            operation: "TransactWriteItems",
            table: format!("{} + {}", self.table, self.rollup_table),
            reason,
        }
    }

    /// Calls `each` with every rollup item of the query's family in its hour window whose slot is one
    /// of `slots`: day items for the whole days inside it, hour items for the rest (one Query per run
    /// of keys, see [`RecordQuery::rollup_periods`]), following every page; refuses to read more
    /// than `max_items` in all.
    pub async fn for_each_rollup_item(
        &self,
        query: &RecordQuery,
        slots: &[&str],
        page_size: Option<i32>,
        max_items: u64,
        mut each: impl FnMut(RollupItem),
    ) -> Result<ReadCount, StoreError> {
        let mut read = ReadCount::default();
        for range in rollup_key_ranges(query) {
            let parameters = rollup_query(query, slots, &range);
            let request = self
                .client
                .query()
                .table_name(&self.rollup_table)
                .key_condition_expression(parameters.key_condition)
                .set_filter_expression(parameters.filter)
                .set_expression_attribute_names(Some(parameters.expression.names))
                .set_expression_attribute_values(Some(parameters.expression.values))
                .set_limit(page_size);
            each_item(
                &self.rollup_table,
                request,
                max_items,
                &query.family,
                &mut read,
                |item| {
                    each(rollup_item_from_item(&item)?);
                    Ok(())
                },
            )
            .await?;
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::rollup_item_from_item;
    use serde_json::json;
    use timing_domain::event::parse_event;
    use timing_domain::rollup::{COUNTS_SLOT, Counts, Granularity, Series, known_markers};
    use timing_domain::timing::Phase;

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
    fn deltas_put_each_marker_in_its_hours_item_and_its_days() {
        let record = running();
        let deltas = deltas(&record, &known_markers(&record));
        let keys: Vec<String> = deltas
            .keys()
            .map(|(series, slot)| rollup_sort_key(series, slot))
            .collect();
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
    fn an_update_read_back_is_the_delta_it_added() {
        let record = running();
        for (key, delta) in deltas(&record, &known_markers(&record)) {
            let update = rollup_update(&key, &delta, rollup_retention_seconds(&record));
            assert!(update.condition_expression.is_none());
            // Every placeholder is the attribute's own name: `:count` adds to `count`.
            for (placeholder, name) in &update.expression.names {
                assert_eq!(&placeholder[1..], name);
            }
            let item = new_item(&key, &delta, rollup_retention_seconds(&record));
            let read = rollup_item_from_item(&item).unwrap();
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
        assert_eq!(update.expression.values[":m1"], AttributeValue::S("run".into()));
        assert_eq!(
            update.expression.values[":rolledUp"],
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
        let err = rollup_item_from_item(&item).unwrap_err().to_string();
        assert!(
            err.contains("2026-11-22T10#run#3#prod#-") && err.contains("b12"),
            "{err}"
        );
    }
}
