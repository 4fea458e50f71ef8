//! The upgrade in place from the transaction path (task-events wrote the record, then added its markers
//! to the rollups in a transaction) to the stream path, against the local stack: tasks start on the old
//! path, some of them before the table had a stream, some with their transaction never run (the
//! invocation died between its two calls), and finish on the new one. Every task ends up in the rollups
//! exactly once, with its final values.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, StreamSpecification, StreamViewType};
use fastrand::Rng;
use serde_json::Value;
use task_timing_tests::generator::{Lifecycle, Profile, deliveries, lifecycle};
use task_timing_tests::harness::{TestStack, deliver};
use timing_domain::event::parse_event;
use timing_domain::record::TaskRecord;
use timing_domain::rollup::due_markers;
use timing_domain::timestamp::Timestamp;
use timing_dynamodb::items::string_set;
use timing_dynamodb::keys::ROLLED_UP;
use timing_dynamodb::legacy_rollups::legacy_record_update;

/// The record write of the transaction path, as its task-events sent it (in the stored form of its time).
async fn legacy_write(stack: &TestStack, record: &TaskRecord) -> bool {
    let update = legacy_record_update(record, "legacy").unwrap();
    let text = update.update_expression;
    assert!(
        !text.contains("rolledUp") && !text.contains("rollupsFromStream"),
        "{text}"
    );
    let written = stack
        .store
        .client()
        .update_item()
        .table_name(&stack.table)
        .set_key(Some(update.key))
        .update_expression(text)
        .condition_expression(update.condition_expression)
        .set_expression_attribute_names(Some(update.expression.names))
        .set_expression_attribute_values(Some(update.expression.values))
        .send()
        .await;
    match written {
        Ok(_) => true,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            false
        }
        Err(err) => panic!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(err)),
    }
}

/// One delivery on the transaction path: the write, then (unless the invocation dies) the transaction
/// of the markers the stored record lacks.
async fn legacy_deliver(stack: &TestStack, event: &Value, dies: bool) {
    let record = TaskRecord::from_event(parse_event(event.to_string().as_bytes()).unwrap(), 90).unwrap();
    legacy_write(stack, &record).await;
    if dies {
        return;
    }
    let item: HashMap<String, AttributeValue> = stack
        .store
        .client()
        .get_item()
        .table_name(&stack.table)
        .key("taskArn", AttributeValue::S(record.task_arn.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let rolled_up = string_set(&item, ROLLED_UP);
    let (stored, _) = timing_dynamodb::items::record_from_item(item).unwrap();
    let markers = due_markers(&stored, &rolled_up);
    if !markers.is_empty() {
        stack.store.roll_up(&stored, &markers).await.unwrap();
    }
}

/// The first stack update of the upgrade: the stream on (the old task-events keeps writing).
async fn enable_stream(stack: &TestStack) {
    let specification = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages);
    stack
        .store
        .client()
        .update_table()
        .table_name(&stack.table)
        .stream_specification(specification.build().unwrap())
        .send()
        .await
        .unwrap();
}

fn tasks(seed: u64, count: usize) -> Vec<Lifecycle> {
    let mut rng = Rng::with_seed(seed);
    let start = Timestamp::parse("2026-11-20T09:00:00Z").unwrap().millis();
    let profiles = [Profile::without_index("web", 3), Profile::with_index("web", 4)];
    (0..count)
        .map(|i| {
            let created = start + rng.i64(0..2 * 3_600_000);
            lifecycle(&mut rng, &profiles[i % 2], created)
        })
        .collect()
}

#[tokio::test]
async fn tasks_started_on_the_transaction_path_and_finished_on_the_stream_path_count_once() {
    let stack = TestStack::without_stream().await.unwrap();
    let lifecycles = tasks(91, 40);
    let mut rng = Rng::with_seed(92);
    // Each task's first events go through the old path (a third of its events, at least one); for every
    // fourth task the last of those invocations dies before its transaction (in flight at the upgrade:
    // its record is ahead of the rollups). The rest go through the new path, duplicated and shuffled.
    // The first 15 tasks' old-path events come before the table had a stream.
    let mut rest = Vec::new();
    for (i, task) in lifecycles.iter().enumerate() {
        if i == 15 {
            enable_stream(&stack).await;
        }
        let old = (task.events.len() / 3).max(1);
        for (j, event) in task.events[..old].iter().enumerate() {
            legacy_deliver(&stack, event, i % 4 == 0 && j == old - 1).await;
        }
        let mut later = task.clone();
        later.events = task.events[old..].to_vec();
        rest.push(later);
    }
    for event in deliveries(&mut rng, &rest, 2, true) {
        deliver(&stack.handler, &event).await.unwrap();
    }
    let drained = stack.drain().await.unwrap();
    println!("stream after the upgrade: {drained}");

    let violations = stack.rollup_violations(&lifecycles).await.unwrap();
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    // The new path took every record over: no marker of the old path is left, and no attribute of the
    // stored form before it (every record here ends on the new path).
    let mut pages = stack
        .store
        .client()
        .scan()
        .table_name(&stack.table)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item.unwrap();
        assert!(
            !item.contains_key(ROLLED_UP) && item.contains_key("rollupsFromStream"),
            "{item:?}"
        );
        for old_name in ["lastStatus", "startedAt", "startupSeconds", "containers", "taskId"] {
            assert!(!item.contains_key(old_name), "{old_name} left in {item:?}");
        }
        assert!(item.contains_key("ls"), "{item:?}");
    }
}
