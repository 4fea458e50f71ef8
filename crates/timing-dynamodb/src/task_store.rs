//! The task records: one conditional UpdateItem per event, guarded by `version`, and the reads of
//! the (family, createdAt) index.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use timing_domain::query::{PageKey, RecordQuery};
use timing_domain::record::{TaskRecord, TimingRow};

use crate::error::{ReadCount, StoreError};
use crate::expression::Expression;
use crate::items::{ReportSeen, report_seen};
use crate::items::{ledger_set, number_attribute, record_from_item};
use crate::keys::{
    DEFAULT_ROLLUP_TABLE_NAME, FAMILY_INDEX, METRICS_EMITTED, METRICS_EMITTED_BEFORE, NOTHING_EMITTED, PARTITION_KEY,
    ROLLED_UP, ROLLUPS_BY_ACCOUNT, ROLLUPS_FROM_STREAM, WRITE_ID, page_key_from_item, page_key_item,
};
use crate::reads::{QueryParameters, record_query, timing_row_query};
use crate::record_item::{STORED_NAMES, ledger_code, record_form, stored_item};

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
        /// The write landed on an earlier attempt whose answer was lost; this attempt found it.
        recovered: bool,
        /// The task's image report, when the item had one before this write (see [`ReportSeen`]).
        report: Option<ReportSeen>,
    },
    /// The stored record already has this version.
    Duplicate,
    /// The stored record has a newer version; this event changed nothing.
    Stale { stored_version: u64 },
}

/// One page of records, newest first, and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    pub records: Vec<TaskRecord>,
    pub next: Option<PageKey>,
    pub read: ReadCount,
}

/// What a conditional write found: the item before it, or the item that refused it.
pub(crate) enum Conditional {
    Applied(HashMap<String, AttributeValue>),
    Refused(Option<HashMap<String, AttributeValue>>),
}

/// The parts of the UpdateItem request, built without I/O so they can be tested.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedUpdate {
    pub key: HashMap<String, AttributeValue>,
    pub update_expression: String,
    pub condition_expression: String,
    pub expression: Expression,
}

/// `#name -> name` for every record attribute and the bookkeeping attributes: the
/// same for every event, so it is built once and cloned (a clone copies the table without hashing again).
static ATTRIBUTE_NAMES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut expression = Expression::new();
    let bookkeeping = [
        WRITE_ID,
        ROLLUPS_FROM_STREAM,
        ROLLUPS_BY_ACCOUNT,
        METRICS_EMITTED,
        METRICS_EMITTED_BEFORE,
        ROLLED_UP,
    ];
    // Not the key: a write never SETs it, and DynamoDB refuses names an expression does not use.
    for name in STORED_NAMES
        .iter()
        .copied()
        .filter(|name| *name != PARTITION_KEY)
        .chain(bookkeeping)
    {
        expression.name(name);
    }
    expression.names
});

/// SET every attribute of the record, REMOVE those this version lacks, ADD the ledger keys,
/// on condition that no record exists or the stored version is older. Placeholders are the
/// attribute names themselves (`#createdAt`, `:createdAt`), so reserved words never matter.
pub fn versioned_update(
    record: &TaskRecord,
    ledger: &BTreeSet<String>,
    write_id: &str,
) -> Result<VersionedUpdate, serde_dynamo::Error> {
    let item = stored_item(record)?;
    let mut expression = Expression::with_names(ATTRIBUTE_NAMES.clone());
    expression.values.reserve(item.len() + 3);
    replace_attributes(&mut expression, item, &STORED_NAMES);
    expression.set(WRITE_ID, AttributeValue::S(write_id.to_owned()));
    expression.set(ROLLUPS_FROM_STREAM, AttributeValue::Bool(true));
    expression.set(ROLLUPS_BY_ACCOUNT, AttributeValue::Bool(true));
    // Operands are read from the item as it was, so this keeps the ledger from before the ADD below.
    let emitted = expression.name(METRICS_EMITTED);
    let before = expression.name(METRICS_EMITTED_BEFORE);
    let nothing = expression.value("nothingEmitted", AttributeValue::Ss(vec![NOTHING_EMITTED.to_owned()]));
    expression.set_action(&format!("{before} = if_not_exists({emitted}, {nothing})"));
    // The transaction path's markers go with this path's first write of the record (task-rollups then
    // counts it whole, see `timing_domain::stream::Image`).
    expression.remove(ROLLED_UP);
    // DynamoDB rejects empty sets, so a version with nothing to emit leaves the ledger alone.
    if !ledger.is_empty() {
        let codes = ledger.iter().map(|key| ledger_code(key)).collect();
        expression.add(METRICS_EMITTED, AttributeValue::Ss(codes));
    }
    Ok(versioned(&record.task_arn, expression))
}

/// SET every attribute of `item` but the key, REMOVE each of `names` it lacks.
pub(crate) fn replace_attributes(expression: &mut Expression, item: HashMap<String, AttributeValue>, names: &[&str]) {
    for name in names.iter().filter(|name| !item.contains_key(**name)) {
        expression.remove(name);
    }
    for (name, value) in item {
        if name != PARTITION_KEY {
            expression.set(&name, value);
        }
    }
}

/// `expression` as the update of `task_arn`'s record, on condition that none exists or its version is
/// older. "None exists" is "no version": an image report may have created the item first.
pub(crate) fn versioned(task_arn: &str, mut expression: Expression) -> VersionedUpdate {
    let version = expression.name("version");
    VersionedUpdate {
        key: HashMap::from([(PARTITION_KEY.to_owned(), AttributeValue::S(task_arn.to_owned()))]),
        update_expression: expression.update(),
        // `:version` is the SET value of `version`: the condition compares against the incoming version.
        condition_expression: format!("attribute_not_exists({version}) OR {version} < :version"),
        expression,
    }
}

/// Classifies a refused write by the version the refusing record holds. A record of this very
/// version written under `write_id` is this invocation's own write, found on a retry.
pub fn refused_outcome(stored: Option<HashMap<String, AttributeValue>>, version: u64, write_id: &str) -> WriteOutcome {
    let stored_version = stored.as_ref().and_then(|item| number_attribute(item, "version"));
    if let Some(item) = &stored {
        let own_write = stored_version == Some(version)
            && item
                .get(WRITE_ID)
                .and_then(|id| id.as_s().ok())
                .is_some_and(|id| id == write_id);
        if own_write {
            let mut before = ledger_set(item, METRICS_EMITTED_BEFORE);
            before.remove(NOTHING_EMITTED);
            return WriteOutcome::Written {
                previously_emitted: before,
                recovered: true,
                report: report_seen(item),
            };
        }
    }
    match stored_version {
        Some(stored_version) if stored_version > version => WriteOutcome::Stale { stored_version },
        _ => WriteOutcome::Duplicate,
    }
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

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn error<E, R>(&self, operation: &'static str, err: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        StoreError::sdk(operation, &self.table, err)
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
        let condition = update.condition_expression;
        Ok(
            match self
                .conditional_update(update.key, update.update_expression, condition, update.expression)
                .await?
            {
                Conditional::Applied(old) => WriteOutcome::Written {
                    previously_emitted: ledger_set(&old, METRICS_EMITTED),
                    recovered: false,
                    report: report_seen(&old),
                },
                Conditional::Refused(stored) => refused_outcome(stored, record.version, write_id),
            },
        )
    }

    /// One conditional UpdateItem of the tasks table that returns the item as it was, whether the
    /// condition held (applied) or not (refused; None when there was no item).
    pub(crate) async fn conditional_update(
        &self,
        key: HashMap<String, AttributeValue>,
        update_expression: String,
        condition_expression: String,
        expression: Expression,
    ) -> Result<Conditional, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update_expression)
            .condition_expression(condition_expression)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            // ALL_OLD, not UPDATED_OLD: implementations differ on whether an attribute whose value an ADD
            // leaves unchanged counts as updated (moto omits it), and the ledger must always come back.
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Conditional::Applied(output.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(Conditional::Refused(match service.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(refusal) => refusal.item,
                    _ => None,
                }))
            }
            Err(err) => Err(self.error("UpdateItem", err)),
        }
    }

    /// The stored record, if any (consistent read). An item that holds only an image report (no state
    /// change yet) is no record.
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
        output
            .item
            .filter(|item| item.contains_key("version"))
            .map(record_from_item)
            .transpose()
    }

    fn index_query(&self, parameters: QueryParameters) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(FAMILY_INDEX)
            .key_condition_expression(parameters.key_condition)
            .set_filter_expression(parameters.filter)
            .set_projection_expression(parameters.projection)
            .set_expression_attribute_names(Some(parameters.expression.names))
            .set_expression_attribute_values(Some(parameters.expression.values))
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
        let request = self.index_query(timing_row_query(query)).set_limit(page_size);
        let mut read = ReadCount::default();
        each_item(&self.table, request, max_rows, &query.family, &mut read, |item| {
            each(serde_dynamo::from_item(record_form(item))?);
            Ok(())
        })
        .await?;
        Ok(read)
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
        // Not the SDK's paginator: it asks every page for the same number of items, where this read asks
        // each one for what the answer still needs, so it never reads (and pays for) more.
        let request = self.index_query(record_query(query)).scan_index_forward(false);
        let mut read = ReadCount::default();
        let mut records = Vec::with_capacity(limit.min(1024));
        let mut start_key = start.map(page_key_item);
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
                records.push(serde_dynamo::from_item::<_, TaskRecord>(record_form(item))?);
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
                    let next = page_key_from_item(&key);
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
}

/// Follows every page of `request` on `table` with the SDK's paginator, calling `each` with every item
/// and counting into `read` (which may already hold earlier queries of the same answer); refuses, with
/// [`StoreError::RowLimit`], once `read` exceeds `max_rows` items of `family`.
pub(crate) async fn each_item(
    table: &str,
    request: QueryFluentBuilder,
    max_rows: u64,
    family: &str,
    read: &mut ReadCount,
    mut each: impl FnMut(HashMap<String, AttributeValue>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| StoreError::sdk("Query", table, err))?;
        read.count_call(page.scanned_count, max_rows, family)?;
        for item in page.items.unwrap_or_default() {
            read.items_matched += 1;
            each(item)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use timing_domain::event::parse_event;

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
        let name_of = |placeholder: &str| update.expression.names[placeholder].as_str();
        let (set_part, rest) = update.update_expression.split_once(" REMOVE ").unwrap();
        let (remove_part, add_part) = rest.split_once(" ADD ").unwrap();
        let (set_part, bookkeeping) = set_part.split_once(", #writeId = ").unwrap();
        assert_eq!(
            bookkeeping,
            ":writeId, #rollupsFromStream = :rollupsFromStream, #ra = :ra, #metricsEmittedBefore = if_not_exists(#metricsEmitted, :nothingEmitted)"
        );
        assert_eq!(
            update.expression.values[":rollupsFromStream"],
            AttributeValue::Bool(true)
        );
        assert_eq!(update.expression.values[":writeId"], AttributeValue::S("w1".into()));
        assert_eq!(
            update.expression.values[":nothingEmitted"],
            AttributeValue::Ss(vec!["-".into()])
        );
        let set: Vec<&str> = set_part
            .trim_start_matches("SET ")
            .split(", ")
            .map(|a| name_of(a.split(" = ").next().unwrap()))
            .collect();
        let removed: Vec<&str> = remove_part.split(", ").map(name_of).collect();
        assert!(set.contains(&"createdAt") && set.contains(&"version") && set.contains(&"family"));
        assert!(
            set.contains(&"ls") && !set.contains(&"lastStatus"),
            "stored under its short name"
        );
        // This version lacks them, in the stored form and in the form before it.
        for absent in [
            "stAt",
            "sc",
            "sup",
            "startedAt",
            "stopCode",
            "startupSeconds",
            "lastStatus",
        ] {
            assert!(removed.contains(&absent), "{absent} not removed");
        }
        assert!(!set.contains(&"taskArn") && !removed.contains(&"taskArn"));
        assert_eq!(removed.last(), Some(&"rolledUp"), "the transaction path's markers go");
        // Every stored name is either set or removed, once.
        assert_eq!(set.len() + removed.len() - 1, STORED_NAMES.len() - 1);
        assert_eq!(add_part, "#metricsEmitted :metricsEmitted");
        assert_eq!(
            update.expression.values[":metricsEmitted"],
            AttributeValue::Ss(vec!["S".into()]),
            "TasksStarted by its code"
        );
        assert_eq!(update.expression.values[":version"], AttributeValue::N("7".into()));
        assert_eq!(
            update.key[PARTITION_KEY],
            AttributeValue::S("arn:aws:ecs:us-east-1:1:task/c/t".into())
        );
        assert_eq!(
            update.condition_expression,
            "attribute_not_exists(#version) OR #version < :version"
        );
    }

    #[test]
    fn empty_ledger_adds_nothing() {
        let update = versioned_update(&pending(), &BTreeSet::new(), "w1").unwrap();
        assert!(!update.update_expression.contains("ADD"));
        assert!(!update.expression.values.contains_key(":metricsEmitted"));
    }

    #[test]
    fn refusals_are_duplicate_or_stale() {
        let stored = |version: u64| {
            let mut record = pending();
            record.version = version;
            let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&record).unwrap();
            item.insert(METRICS_EMITTED.into(), AttributeValue::Ss(vec!["TasksStarted".into()]));
            item
        };
        assert_eq!(refused_outcome(Some(stored(7)), 7, "w1"), WriteOutcome::Duplicate);
        assert_eq!(
            refused_outcome(Some(stored(9)), 7, "w1"),
            WriteOutcome::Stale { stored_version: 9 }
        );
        assert_eq!(refused_outcome(None, 7, "w1"), WriteOutcome::Duplicate);
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
            item
        };
        // Our write of version 7 landed; before it only TasksStarted had been emitted (stored whole
        // before the ledger codes, by its code since).
        for before in ["TasksStarted", "S"] {
            assert_eq!(
                refused_outcome(Some(landed(7, "w1", &[before])), 7, "w1"),
                WriteOutcome::Written {
                    previously_emitted: BTreeSet::from(["TasksStarted".to_owned()]),
                    recovered: true,
                    report: None,
                }
            );
        }
        // The first write of the task: nothing was emitted before it.
        assert!(matches!(
            refused_outcome(Some(landed(7, "w1", &["-"])), 7, "w1"),
            WriteOutcome::Written { previously_emitted, recovered: true, .. } if previously_emitted.is_empty()
        ));
        // Another invocation's write of the same version is a duplicate; a newer version makes us stale.
        assert_eq!(
            refused_outcome(Some(landed(7, "w2", &["-"])), 7, "w1"),
            WriteOutcome::Duplicate
        );
        assert_eq!(
            refused_outcome(Some(landed(8, "w1", &["-"])), 7, "w1"),
            WriteOutcome::Stale { stored_version: 8 }
        );
    }

    #[test]
    fn numbers_are_stored_as_exact_decimals() {
        let mut record = pending();
        record.startup_seconds = Some(31.096);
        let item = stored_item(&record).unwrap();
        assert_eq!(item["sup"], AttributeValue::N("31.096".into()));
        assert_eq!(item["createdAt"], AttributeValue::S("2024-01-01T00:00:00.000Z".into()));
        let back: TaskRecord = serde_dynamo::from_item(record_form(item)).unwrap();
        assert_eq!(back, record);
    }
}
