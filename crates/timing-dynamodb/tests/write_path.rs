//! The write path against stubbed DynamoDB answers (aws-smithy-mocks): no services. The record write's
//! outcomes, the recovery of a write whose answer was lost, the SDK error kept as a source, and the
//! stream consumer's guarded rollup update. The moto-backed tests (tests/ crate) still run the real thing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use serde_json::json;
use timing_domain::event::parse_event;
use timing_domain::record::TaskRecord;
use timing_domain::rollup::{COUNTS_SLOT, Granularity, RollupKey, Series};
use timing_domain::stream::ItemChange;
use timing_dynamodb::keys::{METRICS_EMITTED, METRICS_EMITTED_BEFORE, WRITE_ID};
use timing_dynamodb::stream_store::{Applied, Contribution, padded_sequence};
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
                && request.condition_expression() == Some("attribute_not_exists(#version) OR #version < :version")
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
            recovered: false,
            report: None,
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
        WriteOutcome::Stale { stored_version: 5 }
    ));
    assert_eq!(outcome(stored(3, "w9", &["-"])).await, WriteOutcome::Duplicate);
    // The SDK retried our request after its first answer was lost; the item holds our write of this
    // version: the metrics due are those the ledger lacked before it, not none.
    assert_eq!(
        outcome(stored(3, "w1", &["TasksStarted"])).await,
        WriteOutcome::Written {
            previously_emitted: set(&["TasksStarted"]),
            recovered: true,
            report: None,
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

fn contribution(sequence: &str, tasks: i128) -> Contribution {
    Contribution {
        sequence: padded_sequence(sequence).unwrap(),
        change: ItemChange {
            amounts: BTreeMap::from([("tasks".to_owned(), tasks)]),
            retention_seconds: None,
        },
    }
}

fn rollup_key() -> RollupKey {
    let record = record(3);
    (Series::of(&record, Granularity::Hour).unwrap(), COUNTS_SLOT)
}

/// The guard a rollup item holds after `sequence` of shard `s1`.
fn guarded_item(sequence: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(
        "applied#s1".to_owned(),
        AttributeValue::S(padded_sequence(sequence).unwrap()),
    )])
}

#[tokio::test]
async fn a_refused_guard_retries_with_only_the_records_after_the_stored_one() {
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let rule = mock!(Client::update_item)
        .match_requests(move |request| {
            let values = request.expression_attribute_values().unwrap();
            seen.lock().unwrap().push(values[":tasks"].as_n().unwrap().clone());
            true
        })
        .sequence()
        .error(|| refused_by(guarded_item("105")))
        .output(|| UpdateItemOutput::builder().build())
        .build();
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]), "tasks");
    let contributions = [contribution("100", 1), contribution("105", 2), contribution("110", 4)];
    let applied = store
        .apply_contributions(&rollup_key(), "s1", &contributions)
        .await
        .unwrap();
    assert_eq!(
        applied,
        Applied::Added {
            updates: 1,
            attempts: 1
        }
    );
    // All three, then (105 already applied by an earlier invocation) only 110's.
    assert_eq!(*asked.lock().unwrap(), ["7", "4"]);
}

#[tokio::test]
async fn a_batch_already_applied_costs_one_refused_request() {
    let rule = mock!(Client::update_item).then_error(|| refused_by(guarded_item("110")));
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), "tasks");
    let contributions = [contribution("100", 1), contribution("110", 4)];
    let applied = store
        .apply_contributions(&rollup_key(), "s1", &contributions)
        .await
        .unwrap();
    assert_eq!(applied, Applied::AlreadyThere { attempts: 1 });
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_guard_that_refuses_without_moving_on_is_an_error_not_a_loop() {
    // Stored 090 is below the first record (100): the condition should have held. Something else writes
    // this guard; retrying would loop.
    let rule = mock!(Client::update_item).then_error(|| refused_by(guarded_item("90")));
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), "tasks");
    let err = store
        .apply_contributions(&rollup_key(), "s1", &[contribution("100", 1)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("applied#s1"), "{err}");
    let missing = mock!(Client::update_item).then_error(|| refused_by(HashMap::new()));
    let store = TaskStore::new(mock_client!(aws_sdk_dynamodb, [&missing]), "tasks");
    assert!(
        store
            .apply_contributions(&rollup_key(), "s1", &[contribution("100", 1)])
            .await
            .is_err()
    );
}
