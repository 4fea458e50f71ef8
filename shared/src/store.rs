//! DynamoDB adapter for task records: one conditional UpdateItem per event, guarded by `version`.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::query::{PageKey, RecordQuery, timing_row_projection};
use crate::record::{RECORD_ATTRIBUTES, TaskRecord, TimingRow};
use crate::rollup::{DEFAULT_ROLLUP_TABLE_NAME, ROLLED_UP};

pub const PARTITION_KEY: &str = "taskArn";
pub const FAMILY_INDEX: &str = "family-createdAt-index";
/// String set of the metric keys already emitted for the task (see `metrics::ledger_keys`).
pub const METRICS_EMITTED: &str = "metricsEmitted";
/// Who wrote the stored version: a random id per invocation attempt, the same on the SDK's retries of
/// one request. With [`METRICS_EMITTED_BEFORE`] it lets a retry whose first attempt landed but whose
/// answer was lost (a timeout, a reset) recognise its own write and emit what that write made due.
pub const WRITE_ID: &str = "writeId";
/// The ledger as it was before the stored version's write.
pub const METRICS_EMITTED_BEFORE: &str = "metricsEmittedBefore";
/// Stands for "nothing emitted yet" in [`METRICS_EMITTED_BEFORE`]: DynamoDB has no empty sets.
const NOTHING_EMITTED: &str = "-";
pub const DEFAULT_TABLE_NAME: &str = "ecs-task-timing-tasks";

/// task-events' SDK timeouts. Without them the SDK waits for an answer as long as Lambda lets it (30 s),
/// then the whole invocation fails; with them a lost or late answer is retried inside the invocation
/// (standard retry mode, 3 attempts), which [`WRITE_ID`] makes safe for the record write and the
/// rollup markers make safe for the transaction. DynamoDB answers in milliseconds.
pub fn write_path_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

/// What one conditional write did.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// This version is newer than the stored one (or the first): the record now reflects it.
    Written {
        previously_emitted: BTreeSet<String>,
        previously_rolled_up: BTreeSet<String>,
        /// The write landed on an earlier attempt whose answer was lost; this attempt found it.
        recovered: bool,
    },
    /// The stored record already has this version.
    Duplicate { stored: Option<Box<StoredTask>> },
    /// The stored record has a newer version; this event changed nothing.
    Stale {
        stored_version: u64,
        stored: Option<Box<StoredTask>>,
    },
}

/// The record that refused a write, and the rollup markers it carries: what a later delivery
/// needs to repair a rollup an earlier invocation did not finish.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    pub record: TaskRecord,
    pub rolled_up: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} on table {table} failed: {message}")]
    Dynamo {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("task record could not be converted to or from a DynamoDB item: {0}")]
    Item(#[from] serde_dynamo::Error),
    #[error(transparent)]
    RollupItem(#[from] crate::rollup::RollupItemError),
    #[error("DynamoDB request could not be built: {0}")]
    Request(String),
    #[error(
        "the request would read more than {limit} records of family {family:?} (the MAX_ROWS limit); \
         narrow the window or the filters"
    )]
    RowLimit { limit: u64, family: String },
}

/// How much a read cost: items DynamoDB evaluated (the filters run after the read, so these are the
/// ones paid for), items that matched, and Query calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCount {
    pub items_read: u64,
    pub items_matched: u64,
    pub calls: u64,
}

impl ReadCount {
    /// Counts one Query call and the items it evaluated; refuses once more than `max_rows` were read.
    pub(crate) fn count_call(&mut self, scanned: i32, max_rows: u64, family: &str) -> Result<(), StoreError> {
        self.calls += 1;
        self.items_read += u64::try_from(scanned).unwrap_or(0);
        if self.items_read > max_rows {
            return Err(StoreError::RowLimit {
                limit: max_rows,
                family: family.to_owned(),
            });
        }
        Ok(())
    }
}

/// One page of records, newest first, and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    pub records: Vec<TaskRecord>,
    pub next: Option<PageKey>,
    pub read: ReadCount,
}

/// The parts of the UpdateItem request, built without I/O so they can be tested.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedUpdate {
    pub key: HashMap<String, AttributeValue>,
    pub update_expression: String,
    pub condition_expression: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

fn placeholder(sigil: char, name: &str) -> String {
    let mut text = String::with_capacity(name.len() + 1);
    text.push(sigil);
    text.push_str(name);
    text
}

/// `#name -> name` for every record attribute and the condition's key: the same for every event,
/// so it is built once and cloned (a clone copies the table without hashing again).
static ATTRIBUTE_NAMES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    RECORD_ATTRIBUTES
        .iter()
        .map(|name| (placeholder('#', name), (*name).to_owned()))
        .collect()
});

/// SET every attribute of the record, REMOVE those this version lacks, ADD the ledger keys,
/// on condition that no record exists or the stored version is older. Placeholders are the
/// attribute names themselves (`#createdAt`, `:createdAt`), so reserved words never matter.
pub fn versioned_update(
    record: &TaskRecord,
    ledger: &BTreeSet<String>,
    write_id: &str,
) -> Result<VersionedUpdate, serde_dynamo::Error> {
    // serde_dynamo's own Item, drained value by value into the request: converting the whole map
    // first would build a second HashMap per event.
    let mut item: serde_dynamo::Item = serde_dynamo::to_item(record)?;
    let mut present = [false; RECORD_ATTRIBUTES.len()];
    let mut values = HashMap::with_capacity(item.len() + 1);
    let mut update_expression = String::with_capacity(1024);
    let mut names = ATTRIBUTE_NAMES.clone();
    for (name, value) in item.drain() {
        match RECORD_ATTRIBUTES.iter().position(|known| *known == name) {
            Some(index) => present[index] = true,
            // A field missing from RECORD_ATTRIBUTES (a unit test guards the list) is still written.
            None => {
                names.insert(placeholder('#', &name), name.clone());
            }
        }
        if name == PARTITION_KEY {
            continue;
        }
        update_expression.push_str(if update_expression.is_empty() { "SET #" } else { ", #" });
        update_expression.push_str(&name);
        update_expression.push_str(" = :");
        update_expression.push_str(&name);
        values.insert(placeholder(':', &name), AttributeValue::from(value));
    }
    // Operands are read from the item as it was, so this keeps the ledger from before the ADD below.
    update_expression
        .push_str(", #writeId = :writeId, #metricsEmittedBefore = if_not_exists(#metricsEmitted, :nothingEmitted)");
    names.insert("#writeId".into(), WRITE_ID.into());
    names.insert("#metricsEmittedBefore".into(), METRICS_EMITTED_BEFORE.into());
    names.insert("#metricsEmitted".into(), METRICS_EMITTED.into());
    values.insert(":writeId".into(), AttributeValue::S(write_id.to_owned()));
    values.insert(
        ":nothingEmitted".into(),
        AttributeValue::Ss(vec![NOTHING_EMITTED.to_owned()]),
    );
    let mut absent = RECORD_ATTRIBUTES
        .iter()
        .zip(present)
        .filter(|(_, present)| !present)
        .map(|(name, _)| name);
    if let Some(first) = absent.next() {
        update_expression.push_str(" REMOVE #");
        update_expression.push_str(first);
        for name in absent {
            update_expression.push_str(", #");
            update_expression.push_str(name);
        }
    }
    // DynamoDB rejects empty sets, so a version with nothing to emit leaves the ledger alone.
    if !ledger.is_empty() {
        update_expression.push_str(" ADD #metricsEmitted :metricsEmitted");
        values.insert(
            ":metricsEmitted".into(),
            AttributeValue::Ss(ledger.iter().cloned().collect()),
        );
    }
    Ok(VersionedUpdate {
        key: HashMap::from([(PARTITION_KEY.to_owned(), AttributeValue::S(record.task_arn.clone()))]),
        update_expression,
        // `:version` is the SET value of `version`: the condition compares against the incoming version.
        condition_expression: "attribute_not_exists(#taskArn) OR #version < :version".into(),
        names,
        values,
    })
}

fn number_attribute(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// A stored item as its record and its `metricsEmitted` ledger (what [`TaskStore::get`] returns; a
/// Scan's items too).
pub fn record_from_item(
    mut item: HashMap<String, AttributeValue>,
) -> Result<(TaskRecord, BTreeSet<String>), StoreError> {
    let emitted = string_set(&item, METRICS_EMITTED);
    item.remove(METRICS_EMITTED);
    Ok((serde_dynamo::from_item(item)?, emitted))
}

pub(crate) fn string_set(item: &HashMap<String, AttributeValue>, name: &str) -> BTreeSet<String> {
    item.get(name)
        .and_then(|value| value.as_ss().ok())
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}

/// Classifies a refused write by the version the refusing record holds, keeping that record. A record
/// of this very version written under `write_id` is this invocation's own write, found on a retry.
pub fn refused_outcome(
    stored: Option<HashMap<String, AttributeValue>>,
    version: u64,
    write_id: &str,
) -> Result<WriteOutcome, serde_dynamo::Error> {
    let stored_version = stored.as_ref().and_then(|item| number_attribute(item, "version"));
    let own_write = stored.as_ref().is_some_and(|item| {
        stored_version == Some(version)
            && item
                .get(WRITE_ID)
                .and_then(|id| id.as_s().ok())
                .is_some_and(|id| id == write_id)
    });
    let stored = match stored {
        None => None,
        Some(mut item) => {
            let rolled_up = string_set(&item, ROLLED_UP);
            if own_write {
                let mut before = string_set(&item, METRICS_EMITTED_BEFORE);
                before.remove(NOTHING_EMITTED);
                return Ok(WriteOutcome::Written {
                    previously_emitted: before,
                    previously_rolled_up: rolled_up,
                    recovered: true,
                });
            }
            for bookkeeping in [METRICS_EMITTED, ROLLED_UP, WRITE_ID, METRICS_EMITTED_BEFORE] {
                item.remove(bookkeeping);
            }
            Some(Box::new(StoredTask {
                record: serde_dynamo::from_item(item)?,
                rolled_up,
            }))
        }
    };
    Ok(match stored_version {
        Some(stored_version) if stored_version > version => WriteOutcome::Stale { stored_version, stored },
        _ => WriteOutcome::Duplicate { stored },
    })
}

#[derive(Clone, Debug)]
pub struct TaskStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) rollup_table: String,
}

impl TaskStore {
    /// Records in `table`; rollups in the default rollup table until [`Self::with_rollup_table`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            rollup_table: DEFAULT_ROLLUP_TABLE_NAME.to_owned(),
        }
    }

    pub fn with_rollup_table(mut self, rollup_table: impl Into<String>) -> Self {
        self.rollup_table = rollup_table.into();
        self
    }

    fn error<E: std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> StoreError {
        self.error_on(&self.table, operation, err)
    }

    pub(crate) fn error_on<E: std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        table: &str,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> StoreError {
        StoreError::Dynamo {
            operation,
            table: table.to_owned(),
            message: DisplayErrorContext(err).to_string(),
        }
    }

    /// One round trip: writes the record if its version is newer than the stored one. `write_id` is
    /// fresh for each invocation attempt (see [`WRITE_ID`]).
    pub async fn write(
        &self,
        record: &TaskRecord,
        ledger: &BTreeSet<String>,
        write_id: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let update = versioned_update(record, ledger, write_id)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .condition_expression(update.condition_expression)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            // ALL_OLD, not UPDATED_OLD: implementations differ on whether an attribute whose value an ADD
            // leaves unchanged counts as updated (moto omits it), and the ledger must always come back.
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let old = output.attributes.unwrap_or_default();
                Ok(WriteOutcome::Written {
                    previously_emitted: string_set(&old, METRICS_EMITTED),
                    previously_rolled_up: string_set(&old, ROLLED_UP),
                    recovered: false,
                })
            }
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let stored = match service.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(refusal) => refusal.item,
                    _ => None,
                };
                Ok(refused_outcome(stored, record.version, write_id)?)
            }
            Err(err) => Err(self.error("UpdateItem", err)),
        }
    }

    /// The stored record, if any (consistent read).
    pub async fn get(&self, task_arn: &str) -> Result<Option<(TaskRecord, BTreeSet<String>)>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(task_arn.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| self.error("GetItem", err))?;
        output.item.map(record_from_item).transpose()
    }

    fn index_query(&self, query: &RecordQuery) -> QueryFluentBuilder {
        let parameters = query.parameters();
        self.client
            .query()
            .table_name(&self.table)
            .index_name(FAMILY_INDEX)
            .key_condition_expression(parameters.key_condition)
            .set_filter_expression(parameters.filter)
            .set_expression_attribute_names(Some(parameters.names))
            .set_expression_attribute_values(Some(parameters.values))
    }

    /// Calls `each` with every record the query selects, oldest first, following every page. Refuses,
    /// with [`StoreError::RowLimit`], to read more than `max_rows` items. `page_size` caps the items one
    /// Query call evaluates (None: DynamoDB's 1 MB pages).
    pub async fn for_each_timing_row(
        &self,
        query: &RecordQuery,
        page_size: Option<i32>,
        max_rows: u64,
        mut each: impl FnMut(TimingRow),
    ) -> Result<ReadCount, StoreError> {
        let mut request = self.index_query(query);
        let mut names = request.get_expression_attribute_names().clone().unwrap_or_default();
        let projection = timing_row_projection(&mut names);
        request = request
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .set_limit(page_size);
        let mut read = ReadCount::default();
        self.each_item(&self.table, request, max_rows, &query.family, &mut read, |item| {
            each(serde_dynamo::from_item(item)?);
            Ok(())
        })
        .await?;
        Ok(read)
    }

    /// Follows every page of `request` on `table`, calling `each` with every item and counting into
    /// `read` (which may already hold earlier queries of the same answer); refuses, with
    /// [`StoreError::RowLimit`], once `read` exceeds `max_rows` items of `family`.
    pub(crate) async fn each_item(
        &self,
        table: &str,
        request: QueryFluentBuilder,
        max_rows: u64,
        family: &str,
        read: &mut ReadCount,
        mut each: impl FnMut(HashMap<String, AttributeValue>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut start = None;
        loop {
            let output = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| self.error_on(table, "Query", err))?;
            read.count_call(output.scanned_count, max_rows, family)?;
            for item in output.items.unwrap_or_default() {
                read.items_matched += 1;
                each(item)?;
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }

    /// Up to `limit` records, newest first, starting after `start`. Each call asks for one item more
    /// than it still needs, so a page that ends the data says so (no token) instead of leaving an
    /// empty last page; a page cut short resumes after its last record.
    pub async fn newest_first(
        &self,
        query: &RecordQuery,
        limit: usize,
        start: Option<&PageKey>,
        max_rows: u64,
    ) -> Result<TaskPage, StoreError> {
        let request = self.index_query(query).scan_index_forward(false);
        let mut read = ReadCount::default();
        let mut records = Vec::with_capacity(limit.min(1024));
        let mut start_key = start.map(PageKey::to_item);
        loop {
            let wanted = i32::try_from(limit - records.len() + 1).unwrap_or(i32::MAX);
            let output = request
                .clone()
                .limit(wanted)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|err| self.error("Query", err))?;
            read.count_call(output.scanned_count, max_rows, &query.family)?;
            for mut item in output.items.unwrap_or_default() {
                item.remove(METRICS_EMITTED);
                records.push(serde_dynamo::from_item::<_, TaskRecord>(item)?);
            }
            read.items_matched = records.len() as u64;
            let more = output.last_evaluated_key.filter(|key| !key.is_empty());
            if records.len() > limit {
                records.truncate(limit);
                let next = records.last().and_then(|last| {
                    Some(PageKey {
                        task_arn: last.task_arn.clone(),
                        family: last.family.clone(),
                        created_at: last.created_at?.to_string(),
                    })
                });
                read.items_matched = records.len() as u64;
                return Ok(TaskPage { records, next, read });
            }
            match more {
                Some(key) if records.len() < limit => start_key = Some(key),
                Some(key) => {
                    let next = PageKey::from_item(&key);
                    return Ok(TaskPage { records, next, read });
                }
                None => {
                    return Ok(TaskPage {
                        records,
                        next: None,
                        read,
                    });
                }
            }
        }
    }

    /// A family's records with createdAt in [from, to], oldest first, every page followed.
    pub async fn query_family(&self, family: &str, from: &str, to: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(FAMILY_INDEX)
            .key_condition_expression("#family = :family AND #created BETWEEN :from AND :to")
            .expression_attribute_names("#family", "family")
            .expression_attribute_names("#created", "createdAt")
            .expression_attribute_values(":family", AttributeValue::S(family.to_owned()))
            .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
            .expression_attribute_values(":to", AttributeValue::S(to.to_owned()))
            .into_paginator()
            .items()
            .send();
        let mut records = Vec::new();
        while let Some(item) = pages.next().await {
            let mut item = item.map_err(|err| self.error("Query", err))?;
            item.remove(METRICS_EMITTED);
            records.push(serde_dynamo::from_item(item)?);
        }
        Ok(records)
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

    fn pending() -> TaskRecord {
        record(
            json!({"taskArn": "arn:aws:ecs:us-east-1:1:task/c/t", "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:1",
            "version": 7, "lastStatus": "PENDING", "createdAt": "2024-01-01T00:00:00Z"}),
        )
    }

    #[test]
    fn update_sets_present_removes_absent_and_guards_on_version() {
        let update = versioned_update(&pending(), &BTreeSet::from(["TasksStarted".to_owned()]), "w1").unwrap();
        let name_of = |placeholder: &str| update.names[placeholder].as_str();
        let (set_part, rest) = update.update_expression.split_once(" REMOVE ").unwrap();
        let (remove_part, add_part) = rest.split_once(" ADD ").unwrap();
        let (set_part, bookkeeping) = set_part.split_once(", #writeId = ").unwrap();
        assert_eq!(
            bookkeeping,
            ":writeId, #metricsEmittedBefore = if_not_exists(#metricsEmitted, :nothingEmitted)"
        );
        assert_eq!(update.values[":writeId"], AttributeValue::S("w1".into()));
        assert_eq!(update.values[":nothingEmitted"], AttributeValue::Ss(vec!["-".into()]));
        let set: Vec<&str> = set_part
            .trim_start_matches("SET ")
            .split(", ")
            .map(|a| name_of(a.split(" = ").next().unwrap()))
            .collect();
        let removed: Vec<&str> = remove_part.split(", ").map(name_of).collect();
        assert!(set.contains(&"createdAt") && set.contains(&"version") && set.contains(&"family"));
        assert!(removed.contains(&"startedAt") && removed.contains(&"stopCode") && removed.contains(&"startupSeconds"));
        assert!(!set.contains(&"taskArn") && !removed.contains(&"taskArn"));
        assert_eq!(set.len() + removed.len(), RECORD_ATTRIBUTES.len() - 1);
        assert_eq!(add_part, "#metricsEmitted :metricsEmitted");
        assert_eq!(
            update.values[":metricsEmitted"],
            AttributeValue::Ss(vec!["TasksStarted".into()])
        );
        assert_eq!(update.values[":version"], AttributeValue::N("7".into()));
        assert_eq!(
            update.key[PARTITION_KEY],
            AttributeValue::S("arn:aws:ecs:us-east-1:1:task/c/t".into())
        );
        assert_eq!(
            update.condition_expression,
            "attribute_not_exists(#taskArn) OR #version < :version"
        );
    }

    #[test]
    fn empty_ledger_adds_nothing() {
        let update = versioned_update(&pending(), &BTreeSet::new(), "w1").unwrap();
        assert!(!update.update_expression.contains("ADD"));
        assert!(!update.values.contains_key(":metricsEmitted"));
    }

    #[test]
    fn refusals_are_duplicate_or_stale() {
        let stored = |version: u64| {
            let mut record = pending();
            record.version = version;
            let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&record).unwrap();
            item.insert(ROLLED_UP.into(), AttributeValue::Ss(vec!["task".into()]));
            item.insert(METRICS_EMITTED.into(), AttributeValue::Ss(vec!["TasksStarted".into()]));
            (item, record)
        };
        let (item, record) = stored(7);
        let task = Some(Box::new(StoredTask {
            record,
            rolled_up: BTreeSet::from(["task".to_owned()]),
        }));
        assert_eq!(
            refused_outcome(Some(item), 7, "w1").unwrap(),
            WriteOutcome::Duplicate { stored: task }
        );
        let (item, _) = stored(9);
        assert!(matches!(
            refused_outcome(Some(item), 7, "w1").unwrap(),
            WriteOutcome::Stale {
                stored_version: 9,
                stored: Some(_)
            }
        ));
        assert_eq!(
            refused_outcome(None, 7, "w1").unwrap(),
            WriteOutcome::Duplicate { stored: None }
        );
    }

    #[test]
    fn a_retry_recognises_its_own_landed_write_and_nothing_else() {
        let landed = |version: u64, write_id: &str, before: &[&str]| {
            let mut record = pending();
            record.version = version;
            let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&record).unwrap();
            item.insert(WRITE_ID.into(), AttributeValue::S(write_id.into()));
            let before = before.iter().map(|key| (*key).to_owned()).collect();
            item.insert(METRICS_EMITTED_BEFORE.into(), AttributeValue::Ss(before));
            item.insert(
                METRICS_EMITTED.into(),
                AttributeValue::Ss(vec!["TasksStarted".into(), "TasksStopped".into()]),
            );
            item.insert(ROLLED_UP.into(), AttributeValue::Ss(vec!["task".into()]));
            item
        };
        // Our write of version 7 landed; before it only TasksStarted had been emitted.
        assert_eq!(
            refused_outcome(Some(landed(7, "w1", &["TasksStarted"])), 7, "w1").unwrap(),
            WriteOutcome::Written {
                previously_emitted: BTreeSet::from(["TasksStarted".to_owned()]),
                previously_rolled_up: BTreeSet::from(["task".to_owned()]),
                recovered: true,
            }
        );
        // The first write of the task: nothing was emitted before it.
        assert!(matches!(
            refused_outcome(Some(landed(7, "w1", &["-"])), 7, "w1").unwrap(),
            WriteOutcome::Written { previously_emitted, recovered: true, .. } if previously_emitted.is_empty()
        ));
        // Another invocation's write of the same version is a duplicate; a newer version makes us stale.
        assert!(matches!(
            refused_outcome(Some(landed(7, "w2", &["-"])), 7, "w1").unwrap(),
            WriteOutcome::Duplicate { stored: Some(_) }
        ));
        assert!(matches!(
            refused_outcome(Some(landed(8, "w1", &["-"])), 7, "w1").unwrap(),
            WriteOutcome::Stale { stored_version: 8, .. }
        ));
    }

    #[test]
    fn numbers_are_stored_as_exact_decimals() {
        let mut record = pending();
        record.startup_seconds = Some(31.096);
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&record).unwrap();
        assert_eq!(item["startupSeconds"], AttributeValue::N("31.096".into()));
        assert_eq!(item["createdAt"], AttributeValue::S("2024-01-01T00:00:00.000Z".into()));
        let back: TaskRecord = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back, record);
    }
}
