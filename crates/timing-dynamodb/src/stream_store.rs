//! Rollups from the stream, exactly once: one conditional UpdateItem per rollup item per batch.
//!
//! Each rollup item keeps, per stream shard, the sequence number of the last stream record whose change
//! it holds (`applied#<shardId>`). An update adds the changes of that shard's records after it, on
//! condition that the stored number is still below the first of them; a refused update learns the
//! stored number from the refusal and retries with only the records after it. Why that is exactly
//! once under Lambda's retries is in docs/rollups.md ("Exactly once").

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use timing_domain::rollup::RollupKey;
use timing_domain::stream::ItemChange;

use crate::StoreError;
use crate::expression::Expression;
use crate::rollup_store::{ItemUpdate, series_update};
use crate::task_store::TaskStore;

/// Prefix of the per-shard guard attributes on rollup items.
pub const APPLIED_PREFIX: &str = "applied#";
/// Stream sequence numbers are 21 to 40 digits; padded to 40, DynamoDB's string order is their order.
pub const SEQUENCE_DIGITS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream record sequence number {0:?} is not 1 to 40 decimal digits")]
pub struct BadSequence(pub String);

/// `sequence` zero-padded to [`SEQUENCE_DIGITS`].
pub fn padded_sequence(sequence: &str) -> Result<String, BadSequence> {
    if sequence.is_empty() || sequence.len() > SEQUENCE_DIGITS || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadSequence(sequence.to_owned()));
    }
    Ok(format!("{sequence:0>SEQUENCE_DIGITS$}"))
}

/// One stream record's change to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    /// Padded (see [`padded_sequence`]).
    pub sequence: String,
    pub change: ItemChange,
}

/// The update that adds the contributions after `applied` (None: the shard never wrote the item) to
/// `key`'s item, or None when they add nothing. `contributions` are in stream order.
pub fn guarded_update(
    key: &RollupKey,
    shard_id: &str,
    contributions: &[Contribution],
    applied: Option<&str>,
) -> Option<ItemUpdate> {
    let due: Vec<&Contribution> = contributions
        .iter()
        .filter(|contribution| applied.is_none_or(|applied| contribution.sequence.as_str() > applied))
        .collect();
    let (first, last) = (due.first()?, due.last()?);
    let mut sum = ItemChange::default();
    for contribution in &due {
        sum.merge(&contribution.change);
    }
    let mut update = series_update(key, sum.retention_seconds);
    let expression: &mut Expression = &mut update.expression;
    for (name, amount) in &sum.amounts {
        expression.add(name, AttributeValue::N(amount.to_string()));
    }
    // Placeholders are `#` and alphanumerics; shard ids hold `-`.
    let guard = expression.aliased_name("appliedShard", &format!("{APPLIED_PREFIX}{shard_id}"));
    let first = expression.value("first", AttributeValue::S(first.sequence.clone()));
    let last = expression.value("last", AttributeValue::S(last.sequence.clone()));
    // Even a sum of zero advances the guard: the records are applied, and nothing else may apply them.
    expression.set_action(&format!("{guard} = {last}"));
    update.condition_expression = Some(format!("attribute_not_exists({guard}) OR {guard} < {first}"));
    update.update_expression = update.expression.update();
    Some(update)
}

/// Amounts one update adds at most. DynamoDB refuses an UpdateExpression over 4 KB; a bucket's ADD
/// (`#b1234 :b1234, `) takes 14 characters and the series' SET with the guard about 300, so 200
/// amounts stay near 3 KB. Only a batch with many tasks of one series in one period reaches it.
pub const MAX_AMOUNTS_PER_UPDATE: usize = 200;

/// The contributions the next update sends: those after `applied`, as many (in stream order, at least
/// one) as keep their sum within [`MAX_AMOUNTS_PER_UPDATE`]. Each such run moves the guard to its last
/// record, so the runs of one item apply in order and each exactly once, like whole batches.
pub fn next_run<'a>(contributions: &'a [Contribution], applied: Option<&str>) -> &'a [Contribution] {
    let start = contributions
        .iter()
        .position(|contribution| applied.is_none_or(|applied| contribution.sequence.as_str() > applied))
        .unwrap_or(contributions.len());
    let due = &contributions[start..];
    let mut names = std::collections::BTreeSet::new();
    let mut end = 0;
    for (index, contribution) in due.iter().enumerate() {
        names.extend(contribution.change.amounts.keys());
        if index > 0 && names.len() > MAX_AMOUNTS_PER_UPDATE {
            break;
        }
        end = index + 1;
    }
    &due[..end]
}

/// What applying one item's contributions did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// `updates` UpdateItems added them (more than one when they exceed [`MAX_AMOUNTS_PER_UPDATE`]);
    /// `attempts` counts the refused ones.
    Added { updates: u32, attempts: u32 },
    /// The item already held every one of them (a retried batch).
    AlreadyThere { attempts: u32 },
}

/// A refused guard, more often than any writer could explain: a shard's records are applied by one
/// invocation at a time, so a second refusal already means something else writes the guard.
const MAX_GUARD_ATTEMPTS: u32 = 5;

impl TaskStore {
    /// Adds `contributions` (one shard's records, in stream order) to `key`'s item, each exactly once.
    pub async fn apply_contributions(
        &self,
        key: &RollupKey,
        shard_id: &str,
        contributions: &[Contribution],
    ) -> Result<Applied, StoreError> {
        let guard_attribute = format!("{APPLIED_PREFIX}{shard_id}");
        let mut applied: Option<String> = None;
        let (mut updates, mut refusals) = (0, 0);
        loop {
            let run = next_run(contributions, applied.as_deref());
            let (Some(first), Some(last), Some(update)) =
                (run.first(), run.last(), guarded_update(key, shard_id, run, None))
            else {
                return Ok(match updates {
                    0 => Applied::AlreadyThere { attempts: refusals },
                    _ => Applied::Added {
                        updates,
                        attempts: refusals,
                    },
                });
            };
            let result = self
                .client
                .update_item()
                .table_name(&self.rollup_table)
                .set_key(Some(update.key))
                .update_expression(update.update_expression)
                .set_condition_expression(update.condition_expression)
                .set_expression_attribute_names(Some(update.expression.names))
                .set_expression_attribute_values(Some(update.expression.values))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match result {
                Ok(_) => {
                    updates += 1;
                    applied = Some(last.sequence.clone());
                }
                Err(SdkError::ServiceError(service))
                    if matches!(service.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
                {
                    let stored = match service.into_err() {
                        UpdateItemError::ConditionalCheckFailedException(refusal) => refusal.item,
                        _ => None,
                    };
                    let stored = stored_guard(stored.as_ref(), &guard_attribute);
                    // The condition only fails on a guard at or past the first record sent; anything
                    // else (a guard that went backwards, or vanished) would loop.
                    if stored.as_deref().is_none_or(|stored| stored < first.sequence.as_str()) {
                        return Err(StoreError::Refused {
                            operation: "UpdateItem",
                            table: self.rollup_table.clone(),
                            reason: format!("the guard {guard_attribute} refused the update but holds {stored:?}"),
                        });
                    }
                    refusals += 1;
                    if refusals >= MAX_GUARD_ATTEMPTS {
                        return Err(StoreError::Refused {
                            operation: "UpdateItem",
                            table: self.rollup_table.clone(),
                            reason: format!(
                                "{guard_attribute} moved {MAX_GUARD_ATTEMPTS} times while this batch applied"
                            ),
                        });
                    }
                    applied = stored;
                }
                Err(err) => return Err(StoreError::sdk("UpdateItem", &self.rollup_table, err)),
            }
        }
    }
}

fn stored_guard(item: Option<&HashMap<String, AttributeValue>>, guard: &str) -> Option<String> {
    item?.get(guard)?.as_s().ok().cloned()
}

/// Contributions by item, each item's in stream order.
pub type BatchChanges = BTreeMap<RollupKey, Vec<Contribution>>;

#[cfg(test)]
mod tests {
    use super::*;
    use timing_domain::rollup::{COUNTS_SLOT, Granularity, Series};
    use timing_domain::timestamp::Timestamp;

    fn key() -> RollupKey {
        let series = Series {
            family: "web".into(),
            revision: 3,
            cluster_name: "prod".into(),
            launch_type: Some("FARGATE".into()),
            snapshotter: None,
            origin: None,
            granularity: Granularity::Hour,
            period_start: Timestamp::parse("2026-11-22T10:00:00Z").unwrap(),
        };
        (series, COUNTS_SLOT)
    }

    fn contribution(sequence: &str, tasks: i128) -> Contribution {
        Contribution {
            sequence: padded_sequence(sequence).unwrap(),
            change: ItemChange {
                amounts: BTreeMap::from([("tasks".to_owned(), tasks)]),
                retention_seconds: Some(86_400),
            },
        }
    }

    #[test]
    fn sequence_numbers_pad_to_forty_digits_so_strings_order_as_numbers() {
        let short = padded_sequence("999999999999999999999").unwrap();
        let long = padded_sequence("1000000000000000000000").unwrap();
        assert_eq!(short.len(), 40);
        assert!(short < long);
        for bad in ["", "12a", "-1", &"9".repeat(41)] {
            assert_eq!(padded_sequence(bad), Err(BadSequence(bad.to_owned())));
        }
    }

    #[test]
    fn the_update_adds_the_sum_after_the_stored_guard_under_a_condition_on_it() {
        let contributions = [contribution("100", 1), contribution("105", 2), contribution("110", 4)];
        let update = guarded_update(&key(), "shardId-1", &contributions, None).unwrap();
        assert_eq!(
            update.condition_expression.as_deref(),
            Some("attribute_not_exists(#appliedShard) OR #appliedShard < :first")
        );
        let values = &update.expression.values;
        assert_eq!(values[":tasks"], AttributeValue::N("7".into()));
        assert_eq!(values[":first"], AttributeValue::S(padded_sequence("100").unwrap()));
        assert_eq!(values[":last"], AttributeValue::S(padded_sequence("110").unwrap()));
        assert_eq!(update.expression.names["#appliedShard"], "applied#shardId-1");
        assert!(update.update_expression.contains("#appliedShard = :last"));
        assert!(update.update_expression.contains("ADD #tasks :tasks"));
        // After a refusal that shows 105 applied: only 110 remains.
        let stored = padded_sequence("105").unwrap();
        let retry = guarded_update(&key(), "shardId-1", &contributions, Some(&stored)).unwrap();
        assert_eq!(retry.expression.values[":tasks"], AttributeValue::N("4".into()));
        assert_eq!(
            retry.expression.values[":first"],
            AttributeValue::S(padded_sequence("110").unwrap())
        );
        // Everything applied: no update.
        let all = padded_sequence("110").unwrap();
        assert!(guarded_update(&key(), "shardId-1", &contributions, Some(&all)).is_none());
    }

    #[test]
    fn a_sum_of_zero_still_advances_the_guard() {
        let contributions = [contribution("100", 1), contribution("101", -1)];
        let update = guarded_update(&key(), "s", &contributions, None).unwrap();
        assert!(
            !update.update_expression.contains("ADD"),
            "{}",
            update.update_expression
        );
        assert!(update.update_expression.contains("#appliedShard = :last"));
    }

    fn buckets(sequence: &str, first: i32, count: i32) -> Contribution {
        let amounts = (first..first + count).map(|index| (format!("b{index}"), 1)).collect();
        Contribution {
            sequence: padded_sequence(sequence).unwrap(),
            change: ItemChange {
                amounts,
                retention_seconds: Some(86_400),
            },
        }
    }

    #[test]
    fn a_run_holds_as_many_records_as_keep_the_expression_within_dynamodbs_limit() {
        // Records of 90 distinct buckets each: two fit in 200 amounts, the third would not.
        let contributions = [buckets("1", 1000, 90), buckets("2", 1100, 90), buckets("3", 1200, 90)];
        let run = next_run(&contributions, None);
        assert_eq!(run.len(), 2);
        let update = guarded_update(&key(), "shardId-00000001700000000000-abcdef01", run, None).unwrap();
        assert!(
            update.update_expression.len() <= 4096,
            "{} characters",
            update.update_expression.len()
        );
        // The next run starts after the first's last record; one record alone is sent whatever its size.
        let after = padded_sequence("2").unwrap();
        assert_eq!(next_run(&contributions, Some(&after)).len(), 1);
        let huge = [buckets("1", 1000, 300)];
        assert_eq!(next_run(&huge, None).len(), 1);
        let all = padded_sequence("3").unwrap();
        assert!(next_run(&contributions, Some(&all)).is_empty());
    }

    #[test]
    fn the_largest_run_stays_within_the_expression_limit() {
        let full = [buckets("1", 1000, MAX_AMOUNTS_PER_UPDATE as i32)];
        let update = guarded_update(&key(), &format!("shardId-{}", "9".repeat(56)), &full, None).unwrap();
        assert!(
            update.update_expression.len() <= 4096,
            "{} characters",
            update.update_expression.len()
        );
    }
}
