//! The write path the stream replaced: task-events marked a task's rollup markers on its record and
//! added them to the rollup items in one transaction. Kept for the upgrade test only (tests/tests/upgrade.rs),
//! which starts tasks on this path and finishes them on the stream's.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use timing_domain::record::{RECORD_ATTRIBUTES, TaskRecord};
use timing_domain::rollup::{Marker, deltas, rollup_retention_seconds, without_origin};

use crate::StoreError;
use crate::expression::Expression;
use crate::items::string_set;
use crate::keys::{PARTITION_KEY, ROLLED_UP, WRITE_ID};
use crate::rollup_store::{ItemUpdate, rollup_update};
use crate::task_store::TaskStore;
use crate::task_store::{VersionedUpdate, replace_attributes, versioned};

/// The record write of the transaction path, in the stored form of its time: every attribute under its
/// record name, timestamps as strings, no stream mark, the markers left alone.
pub fn legacy_record_update(record: &TaskRecord, write_id: &str) -> Result<VersionedUpdate, serde_dynamo::Error> {
    let mut expression = Expression::new();
    replace_attributes(&mut expression, serde_dynamo::to_item(record)?, &RECORD_ATTRIBUTES);
    expression.set(WRITE_ID, AttributeValue::S(write_id.to_owned()));
    Ok(versioned(&record.task_arn, expression))
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
            // Keyed as this path keyed them: without account and region.
            for (key, delta) in without_origin(deltas(record, &due)) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use timing_domain::timing::Phase;

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
}
