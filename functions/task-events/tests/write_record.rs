//! `Handler::process` against stubbed DynamoDB answers (aws-smithy-mocks), no services: what a delivery
//! emits when its write lands, when the write's answer was lost and the retry finds it, and when a newer
//! record refuses it; and that each of them is one DynamoDB request.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_smithy_mocks::{MockResponse, mock, mock_client};
use serde_json::{Value, json};
use task_events::{Config, Handler, MetricsSink, Outcome};
use timing_domain::event::parse_event;
use timing_domain::metrics::ledger_keys;
use timing_domain::record::TaskRecord;
use timing_dynamodb::TaskStore;
use timing_dynamodb::keys::{METRICS_EMITTED, METRICS_EMITTED_BEFORE, WRITE_ID};
use timing_dynamodb::record_item::{ledger_code, stored_item};

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl MetricsSink for Lines {
    fn emit(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }
}

fn running(version: u64) -> Value {
    json!({"version": "0", "id": "e1", "detail-type": "ECS Task State Change", "source": "aws.ecs",
        "account": "123456789012", "time": "2026-11-22T10:00:31Z", "region": "us-east-1", "resources": [],
        "detail": {"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3", "version": version,
        "lastStatus": "RUNNING", "launchType": "FARGATE", "createdAt": "2026-11-22T10:00:00Z",
        "pullStartedAt": "2026-11-22T10:00:10Z", "pullStoppedAt": "2026-11-22T10:00:20Z",
        "startedAt": "2026-11-22T10:00:30Z"}})
}

fn record_of(event: &Value) -> TaskRecord {
    TaskRecord::from_event(parse_event(event.to_string().as_bytes()).unwrap(), 90).unwrap()
}

fn strings<'a>(values: impl IntoIterator<Item = &'a String>) -> AttributeValue {
    AttributeValue::Ss(values.into_iter().cloned().collect())
}

fn handler(client: Client) -> Handler<Lines> {
    let config = Config::from_lookup(|_| None).unwrap();
    Handler::new(TaskStore::new(client, "tasks"), config, Lines::default())
}

/// The write id the request carries (fresh for each invocation attempt).
fn write_id(request: &UpdateItemInput) -> String {
    let values = request.expression_attribute_values().unwrap();
    values[":writeId"].as_s().unwrap().clone()
}

/// What the table holds after a write of `event` by `write_id`, the ledger before it `before`.
fn stored(event: &Value, write_id: &str, before: &[&str]) -> HashMap<String, AttributeValue> {
    let record = record_of(event);
    let mut item = stored_item(&record).unwrap();
    item.insert(WRITE_ID.into(), AttributeValue::S(write_id.into()));
    let before: Vec<String> = before.iter().map(|key| ledger_code(key)).collect();
    item.insert(METRICS_EMITTED_BEFORE.into(), strings(&before));
    let ledger: Vec<String> = ledger_keys(&record).iter().map(|key| ledger_code(key)).collect();
    item.insert(METRICS_EMITTED.into(), strings(&ledger));
    item
}

fn refused(item: HashMap<String, AttributeValue>) -> MockResponse<UpdateItemOutput, UpdateItemError> {
    MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder().set_item(Some(item)).build(),
    ))
}

#[tokio::test]
async fn a_landed_write_emits_what_the_old_ledger_lacked_in_one_request() {
    let event = running(3);
    let rule = mock!(Client::update_item).then_output(|| {
        UpdateItemOutput::builder()
            .attributes(METRICS_EMITTED, AttributeValue::Ss(vec!["TasksStarted".into()]))
            .build()
    });
    let handler = handler(mock_client!(aws_sdk_dynamodb, [&rule]));
    let response = handler.process(event.to_string().as_bytes()).await.unwrap();
    assert_eq!(rule.num_calls(), 1);

    let ledger = ledger_keys(&record_of(&event));
    // The phases to ready are in the ledger (their start is known) but wait for the report's readyAt.
    let due: BTreeSet<String> = ledger
        .iter()
        .filter(|key| !["TasksStarted", "TaskReadyTime", "WarmUpTime"].contains(&key.as_str()))
        .cloned()
        .collect();
    assert!(ledger.contains("TaskReadyTime") && ledger.contains("WarmUpTime"));
    assert!(due.len() >= 3 && due.contains("TaskStartupTime"), "{due:?}");
    assert_eq!(response.outcome, Outcome::Written);
    assert_eq!(response.metrics_emitted.iter().cloned().collect::<BTreeSet<_>>(), due);
    assert!(!response.recovered_write);
    let lines = handler.sink().0.lock().unwrap().clone();
    assert_eq!(lines.len(), 1);
    let document: Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(document.get("TasksStarted").is_none() && document["TaskStartupTime"] == json!(30.0));
}

#[tokio::test]
async fn a_retry_that_finds_its_own_landed_write_emits_once_what_that_write_made_due() {
    let event = running(3);
    let written = event.clone();
    // The first attempt landed and its answer was lost; the SDK's retry carries the same write id and
    // is refused by that very write.
    let rule = mock!(Client::update_item)
        .then_compute_response(move |request| refused(stored(&written, &write_id(request), &["TasksStarted"])));
    let handler = handler(mock_client!(aws_sdk_dynamodb, [&rule]));
    let response = handler.process(event.to_string().as_bytes()).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!((response.outcome, response.recovered_write), (Outcome::Written, true));
    assert!(!response.metrics_emitted.is_empty());
    assert!(!response.metrics_emitted.contains(&"TasksStarted".to_owned()));
    assert_eq!(handler.sink().0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_record_refuses_the_write_which_emits_nothing_in_one_request() {
    let newer = running(5);
    let rule = mock!(Client::update_item).then_compute_response(move |_| refused(stored(&newer, "another", &["-"])));
    let handler = handler(mock_client!(aws_sdk_dynamodb, [&rule]));
    let response = handler.process(running(3).to_string().as_bytes()).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(response.outcome, Outcome::Stale);
    assert!(response.metrics_emitted.is_empty());
    assert!(handler.sink().0.lock().unwrap().is_empty());
}
