//! task-rollups: reads the tasks table's stream (NEW_AND_OLD_IMAGES) and keeps the hourly and daily
//! rollups: each stream record's change (`timing_domain::stream`) summed per rollup item over the batch,
//! then one guarded UpdateItem per item (`timing_dynamodb::stream_store`).
//!
//! The event source mapping runs with a tumbling window only so that Lambda names the shard in the
//! event (`shardId`): the guard is per shard. The window's state is not used; every invocation applies
//! its records and returns an empty state.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::dynamodb::{EventRecord, TimeWindowEvent, TimeWindowEventResponse};
use aws_lambda_events::streams::DynamoDbBatchItemFailure;
use futures_util::StreamExt;
use lambda_runtime::Diagnostic;
use timing_domain::rollup::RollupKey;
use timing_domain::stream::{Removal, StreamChange, item_changes};
use timing_dynamodb::family_index::families_by_day;
use timing_dynamodb::items::image_from_item;
use timing_dynamodb::keys::{DEFAULT_ROLLUP_TABLE_NAME, DEFAULT_TABLE_NAME};
use timing_dynamodb::stream_store::{Applied, BatchChanges, Contribution, padded_sequence};
use timing_dynamodb::{StoreError, TaskStore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    pub rollup_table_name: String,
}

impl Config {
    /// TABLE_NAME and ROLLUP_TABLE_NAME through `lookup` (the environment in main).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        Config {
            table_name: lookup("TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned()),
            rollup_table_name: lookup("ROLLUP_TABLE_NAME").unwrap_or_else(|| DEFAULT_ROLLUP_TABLE_NAME.to_owned()),
        }
    }
}

/// Why a stream record could not be applied (it is reported as a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("stream record {event_id}: no dynamodb.SequenceNumber")]
    NoSequence { event_id: String },
    #[error("stream record {event_id}: {source}")]
    Sequence {
        event_id: String,
        source: timing_dynamodb::stream_store::BadSequence,
    },
    #[error("stream record {event_id}: eventName {name:?} is not INSERT, MODIFY or REMOVE")]
    EventName { event_id: String, name: String },
    #[error("stream record {event_id}: its {side} image is missing (the stream must be NEW_AND_OLD_IMAGES)")]
    NoImage { event_id: String, side: &'static str },
    #[error("stream record {event_id}: {side} image is not a task record: {source}")]
    Image {
        event_id: String,
        side: &'static str,
        source: StoreError,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(
        "the event names no shardId: the event source mapping needs a tumbling window \
         (TumblingWindowInSeconds), which is how Lambda tells the function its shard"
    )]
    NoShard,
}

impl From<HandlerError> for Diagnostic {
    fn from(err: HandlerError) -> Diagnostic {
        Diagnostic {
            error_type: "InvalidEvent".into(),
            error_message: err.to_string(),
        }
    }
}

/// DynamoDB's TTL deletes as the stream names them.
fn removed_by_ttl(record: &EventRecord) -> bool {
    record
        .user_identity
        .as_ref()
        .is_some_and(|who| who.type_ == "Service" && who.principal_id == "dynamodb.amazonaws.com")
}

/// The record's change as the rollups see it; None when neither image is a task record (an item that
/// holds only an image report, before its task's first state change).
pub fn stream_change(record: &EventRecord) -> Result<Option<StreamChange>, RecordError> {
    let event_id = || record.event_id.clone();
    let image = |side: &'static str, item: &serde_dynamo::Item| {
        if item.is_empty() {
            return Err(RecordError::NoImage {
                event_id: event_id(),
                side,
            });
        }
        if !item.contains_key("version") {
            return Ok(None);
        }
        let item: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = item.clone().into();
        image_from_item(item).map(Some).map_err(|source| RecordError::Image {
            event_id: event_id(),
            side,
            source,
        })
    };
    let change = &record.change;
    let by = || {
        if removed_by_ttl(record) {
            Removal::Expired
        } else {
            Removal::Deleted
        }
    };
    Ok(match record.event_name.as_str() {
        "INSERT" => image("new", &change.new_image)?.map(StreamChange::Insert),
        "MODIFY" => match (image("old", &change.old_image)?, image("new", &change.new_image)?) {
            (Some(old), Some(new)) => Some(StreamChange::Modify { old, new }),
            // The task's first state change, after its report.
            (None, Some(new)) => Some(StreamChange::Insert(new)),
            (Some(old), None) => Some(StreamChange::Remove { old, by: by() }),
            (None, None) => None,
        },
        "REMOVE" => image("old", &change.old_image)?.map(|old| StreamChange::Remove { old, by: by() }),
        other => {
            return Err(RecordError::EventName {
                event_id: event_id(),
                name: other.to_owned(),
            });
        }
    })
}

/// A batch's changes by item, and for each item the first record that contributes to it.
#[derive(Debug, Default)]
pub struct Plan {
    pub changes: BatchChanges,
    pub first_record: BTreeMap<RollupKey, usize>,
    /// Records that could not be read: (index in the batch, why).
    pub unreadable: Vec<(usize, RecordError)>,
}

/// Sums nothing yet: gathers each record's change per item, in stream order.
pub fn plan(records: &[EventRecord]) -> Plan {
    let mut plan = Plan::default();
    for (index, record) in records.iter().enumerate() {
        let read = || -> Result<(String, Option<StreamChange>), RecordError> {
            let sequence = record
                .change
                .sequence_number
                .as_deref()
                .ok_or_else(|| RecordError::NoSequence {
                    event_id: record.event_id.clone(),
                })?;
            let sequence = padded_sequence(sequence).map_err(|source| RecordError::Sequence {
                event_id: record.event_id.clone(),
                source,
            })?;
            Ok((sequence, stream_change(record)?))
        };
        match read() {
            Ok((sequence, change)) => {
                for (key, change) in change.iter().flat_map(item_changes) {
                    plan.first_record.entry(key.clone()).or_insert(index);
                    plan.changes.entry(key).or_default().push(Contribution {
                        sequence: sequence.clone(),
                        change,
                    });
                }
            }
            Err(err) => plan.unreadable.push((index, err)),
        }
    }
    plan
}

async fn apply_item<'a>(
    store: &'a TaskStore,
    shard_id: &'a str,
    key: &'a RollupKey,
    contributions: &'a [Contribution],
) -> (&'a RollupKey, Result<Applied, StoreError>) {
    (key, store.apply_contributions(key, shard_id, contributions).await)
}

/// Rollup items updated at once. A batch of 1,000 records can touch hundreds of items; one after
/// another at DynamoDB's few milliseconds each they would take seconds.
pub const ITEMS_IN_FLIGHT: usize = 16;

/// What one batch did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub records: usize,
    pub items: usize,
    pub updates: u32,
    pub already_applied: u32,
    pub guard_refusals: u32,
    pub failed_items: usize,
}

/// (day, family) pairs an execution environment remembers having indexed.
const INDEXED_PAIRS_KEPT: usize = 10_000;

pub struct Handler {
    store: TaskStore,
    /// The (day, family) index items this execution environment already wrote.
    indexed: std::sync::Mutex<std::collections::HashSet<(timing_domain::timestamp::Timestamp, String)>>,
}

impl Handler {
    pub fn new(store: TaskStore) -> Handler {
        Handler {
            store,
            indexed: std::sync::Mutex::default(),
        }
    }

    /// Applies the batch; records from the first one that failed on are reported back as batch item
    /// failures, so Lambda retries from there (ReportBatchItemFailures).
    pub async fn handle(&self, event: TimeWindowEvent) -> Result<TimeWindowEventResponse, HandlerError> {
        let shard_id = event
            .time_window_properties
            .shard_id
            .clone()
            .ok_or(HandlerError::NoShard)?;
        let records = &event.dynamo_db_event.records;
        let (report, first_failed) = self.apply(&shard_id, records).await;
        let mut response = TimeWindowEventResponse::default();
        if let Some(index) = first_failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = records[index].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        tracing::info!(
            shard_id,
            records = report.records,
            items = report.items,
            updates = report.updates,
            already_applied = report.already_applied,
            guard_refusals = report.guard_refusals,
            failed_items = report.failed_items,
            retry_from = first_failed.and_then(|i| records[i].change.sequence_number.as_deref()),
            "stream batch applied"
        );
        Ok(response)
    }

    /// Applies every item's changes; returns what it did and the first record to retry from, if any.
    pub async fn apply(&self, shard_id: &str, records: &[EventRecord]) -> (BatchReport, Option<usize>) {
        let plan = plan(records);
        let mut report = BatchReport {
            records: records.len(),
            items: plan.changes.len(),
            ..BatchReport::default()
        };
        let mut first_failed: Option<usize> = None;
        for (index, err) in &plan.unreadable {
            tracing::error!(error = %err, "stream record not applied");
            first_failed = Some(first_failed.map_or(*index, |first| first.min(*index)));
        }
        // The families-by-day index first, once per (day, family) and execution environment: a failure
        // retries the batch from its first record, and writing an index item again changes nothing.
        let days = families_by_day(plan.changes.iter().map(|(key, contributions)| {
            let retention = contributions
                .iter()
                .map(|contribution| contribution.change.retention_seconds)
                .max()
                .flatten();
            (key, retention)
        }));
        for (day, (families, retention)) in &days {
            for family in families {
                let pair = (*day, family.clone());
                if self.indexed.lock().is_ok_and(|indexed| indexed.contains(&pair)) {
                    continue;
                }
                match self.store.add_to_family_index(*day, family, *retention).await {
                    Ok(()) => {
                        if let Ok(mut indexed) = self.indexed.lock() {
                            // Bounded: an environment that lives for weeks forgets and writes again.
                            if indexed.len() >= INDEXED_PAIRS_KEPT {
                                indexed.clear();
                            }
                            indexed.insert(pair);
                        }
                    }
                    Err(err) => {
                        report.failed_items += 1;
                        tracing::error!(
                            error = timing_dynamodb::error::error_chain(&err),
                            family,
                            "families-by-day index not updated; the batch will be retried"
                        );
                        first_failed = Some(0);
                    }
                }
            }
        }
        // Items are independent (each has its own guard), so a batch of many series does not wait for
        // its updates one after another; within an item, runs stay in order (`apply_contributions`).
        // Collected first (futures do nothing until polled): a stream mapped by a closure over borrowed
        // keys is not provably Send for every lifetime, which spawning a caller needs.
        let updates: Vec<_> = plan
            .changes
            .iter()
            .map(|(key, contributions)| apply_item(&self.store, shard_id, key, contributions))
            .collect();
        let mut outcomes = futures_util::stream::iter(updates).buffer_unordered(ITEMS_IN_FLIGHT);
        while let Some((key, outcome)) = outcomes.next().await {
            match outcome {
                Ok(Applied::Added { updates, attempts }) => {
                    report.updates += updates;
                    report.guard_refusals += attempts;
                }
                Ok(Applied::AlreadyThere { attempts }) => {
                    report.already_applied += 1;
                    report.guard_refusals += attempts;
                }
                Err(err) => {
                    report.failed_items += 1;
                    tracing::error!(
                        error = timing_dynamodb::error::error_chain(&err),
                        "rollup item not updated; its records will be retried"
                    );
                    let index = plan.first_record.get(key).copied().unwrap_or(0);
                    first_failed = Some(first_failed.map_or(index, |first| first.min(index)));
                }
            }
        }
        (report, first_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event_record(name: &str, sequence: &str, who: Option<(&str, &str)>) -> EventRecord {
        let envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": {
            "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/t1", "version": 1, "lastStatus": "PROVISIONING",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            "createdAt": "2026-11-22T10:00:00Z"}});
        let event = timing_domain::event::parse_event(envelope.to_string().as_bytes()).unwrap();
        let record = timing_domain::record::TaskRecord::from_event(event, 30).unwrap();
        let item: serde_dynamo::Item = serde_dynamo::to_item(&record).unwrap();
        let mut image = serde_json::to_value(item).unwrap();
        image["rolledUp"] = json!({"SS": ["task"]});
        let mut record = json!({"eventID": "e1", "eventName": name, "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"taskArn": {"S": "arn:aws:ecs:us-east-1:1:task/prod/t1"}},
                "OldImage": image, "NewImage": image, "SequenceNumber": sequence, "SizeBytes": 100,
                "StreamViewType": "NEW_AND_OLD_IMAGES"}});
        if let Some((type_, principal)) = who {
            record["userIdentity"] = json!({"type": type_, "principalId": principal});
        }
        serde_json::from_value(record).unwrap()
    }

    #[test]
    fn removals_by_ttl_are_told_from_deletes() {
        let ttl = event_record("REMOVE", "1", Some(("Service", "dynamodb.amazonaws.com")));
        assert!(matches!(
            stream_change(&ttl).unwrap().unwrap(),
            StreamChange::Remove {
                by: Removal::Expired,
                ..
            }
        ));
        let user = event_record("REMOVE", "1", None);
        assert!(matches!(
            stream_change(&user).unwrap().unwrap(),
            StreamChange::Remove {
                by: Removal::Deleted,
                ..
            }
        ));
        // The image keeps the transaction path's markers; bookkeeping is not part of the record.
        let Some(StreamChange::Remove { old, .. }) = stream_change(&user).unwrap() else {
            panic!()
        };
        assert_eq!(
            (old.stream_path, old.legacy_rolled_up, old.by_account),
            (false, ["task".to_owned()].into(), false)
        );
        assert_eq!(old.record.family, "web");
        // The mark of a record written since rollups are kept by account is read, and is not record data.
        let mut marked = event_record("INSERT", "2", None);
        for image in [&mut marked.change.new_image, &mut marked.change.old_image] {
            let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
                image.clone().into();
            item.insert(
                timing_dynamodb::keys::ROLLUPS_BY_ACCOUNT.into(),
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            );
            *image = item.into();
        }
        let Some(StreamChange::Insert(new)) = stream_change(&marked).unwrap() else {
            panic!()
        };
        assert!(new.by_account);
    }

    #[test]
    fn unreadable_records_are_named_and_kept_apart() {
        let mut no_image = event_record("INSERT", "12", None);
        no_image.change.new_image = serde_dynamo::Item::default();
        let records = [
            event_record("INSERT", "10", None),
            event_record("SOMETHING", "11", None),
            no_image,
            event_record("INSERT", "1x", None),
        ];
        let plan = plan(&records);
        let errors: Vec<String> = plan.unreadable.iter().map(|(i, e)| format!("{i}: {e}")).collect();
        assert_eq!(
            errors,
            [
                "1: stream record e1: eventName \"SOMETHING\" is not INSERT, MODIFY or REMOVE",
                "2: stream record e1: its new image is missing (the stream must be NEW_AND_OLD_IMAGES)",
                "3: stream record e1: stream record sequence number \"1x\" is not 1 to 40 decimal digits",
            ]
        );
        // The readable INSERT (its record counts its `task` marker) is planned for its hour and its day.
        assert_eq!(plan.changes.len(), 2);
        assert!(plan.first_record.values().all(|index| *index == 0));
    }

    #[test]
    fn config_defaults_and_overrides() {
        let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".to_owned()));
        assert_eq!(
            config,
            Config {
                table_name: "t".into(),
                rollup_table_name: "ecs-task-timing-rollups".into()
            }
        );
    }
}
