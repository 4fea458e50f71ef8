//! The write path against stubbed DynamoDB answers (aws-smithy-mocks): no services. The record write's
//! outcomes, the recovery of a write whose answer was lost, the SDK error kept as a source, and the
//! rollup transaction's retry loop. The moto-backed tests (tests/ crate) still run the real thing.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, TransactionCanceledException};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use serde_json::json;
use timing_domain::event::parse_event;
use timing_domain::record::TaskRecord;
use timing_domain::rollup::{Marker, known_markers};
use timing_dynamodb::keys::{METRICS_EMITTED, METRICS_EMITTED_BEFORE, ROLLED_UP, WRITE_ID};
use timing_dynamodb::rollup_store::MAX_TRANSACTION_ATTEMPTS;
use timing_dynamodb::task_store::WriteOutcome;
use timing_dynamodb::{StoreError, TaskStore};

const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef";

fn record(version: u64) -> TaskRecord {
    let event = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": {
        "taskArn": ARN, "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
        "version": version, "lastStatus": "RUNNING", "launchType": "FARGATE",
        "createdAt": "2026-11-22T10:00:00Z", "pullStartedAt": "2026-11-22T10:00:10Z",
        "pullStoppedAt": "2026-11-22T10:00:20Z", "startedAt": "2026-11-22T10:00:30Z"}});
    TaskRecord::from_event(parse_event(event.to_string().as_bytes()).unwrap(), 30).unwrap()
}

fn strings(values: &[&str]) -> AttributeValue {
    AttributeValue::Ss(values.iter().map(|value| (*value).to_owned()).collect())
}

/// The item DynamoDB holds after a write of `version` by `write_id`, with its ledgers.
fn stored(version: u64, write_id: &str, emitted_before: &[&str]) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record(version)).unwrap();
    item.insert(WRITE_ID.into(), AttributeValue::S(write_id.into()));
    item.insert(METRICS_EMITTED_BEFORE.into(), strings(emitted_before));
    item.insert(METRICS_EMITTED.into(), strings(&["TasksStarted", "TaskStartupTime"]));
    item.insert(ROLLED_UP.into(), strings(&["task"]));
    item
}

fn refused_by(item: HashMap<String, AttributeValue>) -> UpdateItemError {
    UpdateItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder().set_item(Some(item)).build(),
    )
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

#[tokio::test]
async fn a_newer_version_is_written_and_the_old_ledger_comes_back() {
    let rule = mock!(Client::update_item)
        .match_requests(|request| {
            request.table_name() == Some("tasks")
                && request.condition_expression() == Some("attribute_not_exists(#taskArn) OR #version < :version")
                && request
                    .expression_attribute_values()
                    .and_then(|values| values.get(":writeId"))
                    == Some(&AttributeValue::S("w1".into()))
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .attributes(METRICS_EMITTED, strings(&["TasksStarted"]))
                .build()
        });
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), "tasks");
    let outcome = store.write(&record(3), &set(&["TasksStarted"]), "w1").await.unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Written {
            previously_emitted: set(&["TasksStarted"]),
            previously_rolled_up: BTreeSet::new(),
            recovered: false
        }
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_refused_write_is_stale_duplicate_or_our_own_landed_write() {
    let outcome = |stored_item: HashMap<String, AttributeValue>| async move {
        let rule = mock!(Client::update_item).then_error(move || refused_by(stored_item.clone()));
        let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), "tasks");
        store.write(&record(3), &BTreeSet::new(), "w1").await.unwrap()
    };
    assert!(matches!(
        outcome(stored(5, "w9", &["-"])).await,
        WriteOutcome::Stale {
            stored_version: 5,
            stored: Some(_)
        }
    ));
    assert!(matches!(
        outcome(stored(3, "w9", &["-"])).await,
        WriteOutcome::Duplicate { stored: Some(_) }
    ));
    // The SDK retried our request after its first answer was lost; the item holds our write of this
    // version: the metrics due are those the ledger lacked before it, not none.
    assert_eq!(
        outcome(stored(3, "w1", &["TasksStarted"])).await,
        WriteOutcome::Written {
            previously_emitted: set(&["TasksStarted"]),
            previously_rolled_up: set(&["task"]),
            recovered: true
        }
    );
    assert!(matches!(
        outcome(stored(3, "w1", &["-"])).await,
        WriteOutcome::Written { previously_emitted, recovered: true, .. } if previously_emitted.is_empty()
    ));
}

#[tokio::test]
async fn a_failure_keeps_the_sdk_error_as_its_source() {
    let rule = mock!(Client::update_item).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            400.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no such table"}"#,
            ),
        )
    });
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), "tasks");
    let err = store.write(&record(3), &BTreeSet::new(), "w1").await.unwrap_err();
    assert!(matches!(&err, StoreError::Dynamo { operation: "UpdateItem", table, .. } if table == "tasks"));
    let chain = timing_dynamodb::error::error_chain(&err);
    assert!(std::error::Error::source(&err).is_some(), "{chain}");
    assert!(
        chain.contains("ResourceNotFoundException") || chain.contains("no such table"),
        "{chain}"
    );
}

fn cancelled(codes: &[&str], stored_markers: Option<&[&str]>) -> TransactWriteItemsError {
    let reasons = codes.iter().enumerate().map(|(i, code)| {
        let reason = CancellationReason::builder().code(*code);
        match (i, stored_markers) {
            (0, Some(markers)) => reason.item(ROLLED_UP, strings(markers)).build(),
            _ => reason.build(),
        }
    });
    TransactWriteItemsError::TransactionCanceledException(
        TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons.collect()))
            .build(),
    )
}

/// The markers each transaction sent asked the record to take, in order.
fn markers_asked(request: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput) -> Vec<String> {
    let record_update = request.transact_items()[0].update().unwrap();
    let mut asked: Vec<String> = record_update.expression_attribute_values().unwrap()[":rolledUp"]
        .as_ss()
        .unwrap()
        .clone();
    asked.sort();
    asked
}

#[tokio::test(start_paused = true)]
async fn conflicts_are_retried_and_markers_another_invocation_added_are_dropped() {
    let record = record(3);
    let markers = known_markers(&record);
    assert_eq!(markers.len(), 6, "{markers:?}");
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let rule = mock!(Client::transact_write_items)
        .match_requests(move |request| {
            seen.lock().unwrap().push(markers_asked(request));
            true
        })
        .sequence()
        .error(|| cancelled(&["None", "TransactionConflict"], None))
        .times(2)
        // Meanwhile another invocation rolled up `task` and `started`.
        .error(|| cancelled(&["ConditionalCheckFailed", "None"], Some(&["task", "started"])))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]), "tasks");
    let report = store.roll_up(&record, &markers).await.unwrap();
    assert_eq!((report.transactions, report.conflicts), (4, 2));
    let names = |markers: &[Marker]| {
        let mut names: Vec<String> = markers.iter().map(|marker| marker.name().to_owned()).collect();
        names.sort();
        names
    };
    let all = names(&markers);
    let rest: Vec<String> = all
        .iter()
        .filter(|name| !["task", "started"].contains(&name.as_str()))
        .cloned()
        .collect();
    assert_eq!(*asked.lock().unwrap(), [all.clone(), all.clone(), all, rest.clone()]);
    assert_eq!(names(&report.rolled_up), rest);
}

#[tokio::test(start_paused = true)]
async fn endless_conflicts_give_up_after_the_attempt_limit() {
    let rule = mock!(Client::transact_write_items)
        .sequence()
        .error(|| cancelled(&["None", "TransactionConflict"], None))
        .repeatedly()
        .build();
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]), "tasks");
    let record = record(3);
    let err = store.roll_up(&record, &known_markers(&record)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Dynamo {
                operation: "TransactWriteItems",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(rule.num_calls(), MAX_TRANSACTION_ATTEMPTS as usize);
}
