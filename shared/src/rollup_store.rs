//! DynamoDB side of the rollups: the transaction that marks a task's markers and adds them to
//! the rollup items, its retries, and the summary's read of rollup items.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

use crate::query::RecordQuery;
use crate::record::TaskRecord;
use crate::rollup::{
    ItemUpdate, Marker, ROLLED_UP, RollupItem, deltas, marker_update, rollup_retention_seconds, rollup_update,
};
use crate::store::{ReadCount, StoreError, TaskStore, string_set};

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
        .set_expression_attribute_names(Some(update.names))
        .set_expression_attribute_values(Some(update.values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|err| StoreError::Request(err.to_string()))?;
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
                _ => return Err(self.error_on(&self.rollup_table, "TransactWriteItems", err)),
            }
        }
        Ok(report)
    }

    fn transaction_error(&self, reason: String) -> StoreError {
        StoreError::Dynamo {
            operation: "TransactWriteItems",
            table: format!("{} + {}", self.table, self.rollup_table),
            message: reason,
        }
    }

    /// One UpdateItem on the rollup table, outside any transaction: for bulk loads of deltas already
    /// summed per item (benchmarks), never for task-events, whose markers need the transaction.
    pub async fn apply_rollup_update(&self, update: ItemUpdate) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.rollup_table)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await
            .map_err(|err| self.error_on(&self.rollup_table, "UpdateItem", err))?;
        Ok(())
    }

    /// Calls `each` with every rollup item of the query's family in its hour window whose slot is one
    /// of `slots`: day items for the whole days inside it, hour items for the rest (one Query per run
    /// of keys, see [`RecordQuery::rollup_key_ranges`]), following every page; refuses to read more
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
        for range in query.rollup_key_ranges() {
            let parameters = query.rollup_parameters(slots, &range);
            let request = self
                .client
                .query()
                .table_name(&self.rollup_table)
                .key_condition_expression(parameters.key_condition)
                .set_filter_expression(parameters.filter)
                .set_expression_attribute_names(Some(parameters.names))
                .set_expression_attribute_values(Some(parameters.values))
                .set_limit(page_size);
            self.each_item(
                &self.rollup_table,
                request,
                max_items,
                &query.family,
                &mut read,
                |item| {
                    each(RollupItem::from_item(&item)?);
                    Ok(())
                },
            )
            .await?;
        }
        Ok(read)
    }
}
