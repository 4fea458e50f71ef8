//! At-least-once, out-of-order, concurrent delivery: whatever the order and however often events
//! arrive, the record is the newest version's and every metric is emitted once per task.

use std::collections::BTreeSet;
use std::sync::Arc;

use fastrand::Rng;
use serde_json::Value;
use task_timing_tests::generator::{Lifecycle, Profile, TaskTruth, deliveries, lifecycle};
use task_timing_tests::harness::{TestStack, deliver, with_task_suffix};
use task_timing_tests::invariants::{expected_metrics, record_mismatches};
use timing_domain::record::TaskRecord;

const CREATED_AT: i64 = 1_795_000_000_000; // 2026-11-19T07:06:40Z

/// The record's durations equal the generator's sampled milliseconds.
fn assert_matches_truth(record: &TaskRecord, truth: &TaskTruth) {
    let mismatches = record_mismatches(record, truth);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn permutations(items: &[Value]) -> Vec<Vec<Value>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for index in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(index);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            all.push(tail);
        }
    }
    all
}

fn rename(lifecycle: &Lifecycle, suffix: &str) -> (Vec<Value>, String) {
    let events: Vec<Value> = lifecycle
        .events
        .iter()
        .map(|e| with_task_suffix(e.clone(), suffix))
        .collect();
    let arn = format!("{}{suffix}", lifecycle.truth.task_arn);
    (events, arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_permutation_with_duplicates_leaves_the_newest_record() {
    let stack = TestStack::new().await.unwrap();
    let task = lifecycle(
        &mut Rng::with_seed(42),
        &Profile::without_index("orders", 5),
        CREATED_AT,
    );
    assert_eq!(
        task.events.len(),
        6,
        "PROVISIONING, PENDING, RUNNING, DEACTIVATING, DEPROVISIONING, STOPPED"
    );

    // What the newest version alone produces, under its own task ARN.
    let (reference_events, reference_arn) = rename(&task, "-reference");
    stack.deliver(&reference_events[5]).await.unwrap();
    let (reference, _) = stack.store.get(&reference_arn).await.unwrap().unwrap();
    assert_matches_truth(&reference, &task.truth);

    let orders = permutations(&task.events);
    assert_eq!(orders.len(), 720);
    // moto answers one request at a time, and all 720 orders take it most of two minutes: `make test`
    // checks every 7th (103 orders; 7 and 6 are coprime, so the duplicated event varies too) and says so;
    // ORDERING_ORDERS=all, which .ci/run sets, checks every one.
    let stride = match std::env::var("ORDERING_ORDERS").as_deref() {
        Ok("all") => 1,
        _ => 7,
    };
    let mut checked = 0;
    let mut workers = tokio::task::JoinSet::new();
    for (index, order) in orders.into_iter().enumerate().step_by(stride) {
        checked += 1;
        let handler = Arc::clone(&stack.handler);
        workers.spawn(async move {
            let suffix = format!("-p{index}");
            // Each order delivered as is, then one event delivered again: 7 deliveries.
            let mut stream: Vec<Value> = order.into_iter().map(|e| with_task_suffix(e, &suffix)).collect();
            stream.push(stream[index % 6].clone());
            let mut emitted = Vec::new();
            for event in stream {
                emitted.extend(deliver(&handler, &event).await.unwrap().metrics_emitted);
            }
            (suffix, emitted)
        });
        if workers.len() >= 8 {
            let (suffix, emitted) = workers.join_next().await.unwrap().unwrap();
            check(&stack, &task, &reference, &suffix, emitted).await;
        }
    }
    while let Some(result) = workers.join_next().await {
        let (suffix, emitted) = result.unwrap();
        check(&stack, &task, &reference, &suffix, emitted).await;
    }
    assert_eq!(checked, if stride == 1 { 720 } else { 103 });
    // Each metric of each task (the orders and the reference) appears in exactly one EMF document.
    let emissions = stack.emissions();
    assert_eq!(emissions.len(), (checked + 1) * expected_metrics(&task.truth).len());
    assert!(emissions.values().all(|values| values.len() == 1));
}

async fn check(stack: &TestStack, task: &Lifecycle, reference: &TaskRecord, suffix: &str, emitted: Vec<String>) {
    let arn = format!("{}{suffix}", task.truth.task_arn);
    let (record, ledger) = stack.store.get(&arn).await.unwrap().unwrap();
    let renamed = TaskRecord {
        task_arn: reference.task_arn.clone(),
        task_id: reference.task_id.clone(),
        ..record
    };
    assert_eq!(&renamed, reference, "order {suffix}");
    let emitted_once: BTreeSet<String> = emitted.iter().cloned().collect();
    assert_eq!(
        emitted_once.len(),
        emitted.len(),
        "order {suffix} emitted a metric twice: {emitted:?}"
    );
    assert_eq!(emitted_once, expected_metrics(&task.truth), "order {suffix}");
    // The ledger also holds the phases to ready whose start is known: no report here, so never emitted.
    let waiting: BTreeSet<String> = ledger.difference(&emitted_once).cloned().collect();
    let to_ready: BTreeSet<String> = ["TaskReadyTime", "WarmUpTime"].map(String::from).into();
    assert_eq!(waiting, to_ready, "order {suffix}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_deliveries_count_once() {
    let stack = TestStack::new().await.unwrap();
    let mut rng = Rng::with_seed(7);
    let mut profile = Profile::with_index("payments", 3);
    (profile.failure_rate, profile.spot_interruption_rate) = (0.2, 0.2);
    let tasks: Vec<Lifecycle> = (0..40)
        .map(|i| lifecycle(&mut rng, &profile, CREATED_AT + i * 7_000))
        .collect();
    assert!(tasks.iter().any(|t| t.truth.failed_to_start) && tasks.iter().any(|t| t.truth.spot_interrupted));

    // Every event 1 to 4 times, shuffled, all in flight at once.
    let stream = deliveries(&mut rng, &tasks, 4, true);
    let mut invocations = tokio::task::JoinSet::new();
    for event in stream.clone() {
        let handler = Arc::clone(&stack.handler);
        invocations.spawn(async move { deliver(&handler, &event).await });
    }
    let mut outcomes = Vec::new();
    while let Some(result) = invocations.join_next().await {
        outcomes.push(result.unwrap().unwrap());
    }
    assert_eq!(outcomes.len(), stream.len());

    let emissions = stack.emissions();
    for task in &tasks {
        let (record, _) = stack.store.get(&task.truth.task_arn).await.unwrap().unwrap();
        assert_matches_truth(&record, &task.truth);
        let emitted: BTreeSet<String> = emissions
            .keys()
            .filter(|(arn, _)| *arn == task.truth.task_arn)
            .map(|(_, metric)| metric.clone())
            .collect();
        assert_eq!(emitted, expected_metrics(&task.truth), "{}", task.truth.task_arn);
        let startup = emissions.get(&(task.truth.task_arn.clone(), "TaskStartupTime".into()));
        assert_eq!(
            startup.cloned(),
            task.truth.startup().map(|ms| vec![ms as f64 / 1000.0])
        );
    }
    assert!(
        emissions.values().all(|values| values.len() == 1),
        "a metric was emitted twice"
    );
    let written = outcomes
        .iter()
        .filter(|o| o.outcome == task_events::Outcome::Written)
        .count();
    let distinct_events: usize = tasks.iter().map(|t| t.events.len()).sum();
    assert!(
        written <= distinct_events,
        "{written} writes for {distinct_events} distinct events"
    );
}
