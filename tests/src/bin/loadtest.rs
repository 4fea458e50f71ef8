//! `make loadtest`: a burst of task lifecycles of one family in one hour through the two-function pipeline
//! against the local stack: task-events with concurrent workers (throttles and 5xx injected, invocations
//! dying after their write), and task-rollups fed from the table's stream (killed, duplicated and bisected
//! batches, throttles, lost answers and shard rollovers). Afterwards every record, every task's metrics
//! and every rollup item is checked against the generator's truth, and the figures printed.
//!
//!   loadtest [TASKS] [WORKERS]     defaults: 20000 tasks (50,000 deliveries), 8 workers

use std::collections::BTreeMap;

use fastrand::Rng;
use task_timing_tests::faults::{Fault, FaultCounts, FaultPlan, dynamodb_with_faults};
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::harness::TestStack;
use task_timing_tests::invariants::{check_metrics, record_mismatches};
use task_timing_tests::local::Error;
use task_timing_tests::replay::{
    ReplayFigures, ReplayPlan, expected_rollups, redrive, replay, rollup_violations, scan_rollups,
};
use task_timing_tests::stream::{PollerFigures, PollerPlan};
use timing_dynamodb::items::record_from_item;

const HOUR: i64 = 3_600_000;
/// 2026-11-20T09:00:00Z: every task is created in the hour after it.
const HOUR_START: i64 = 1_795_165_200_000;
/// Share of DynamoDB requests that fail (each side; the SDK retries them).
const FAULT_RATE: f64 = 0.02;
const DIE_RATE: f64 = 0.02;
/// The stream is read after each of this many slices of the deliveries.
const SLICES: usize = 10;
/// Enough events are delivered twice to make 2.5 deliveries per task: 20,000 tasks give 50,000.
const DELIVERIES_PER_TASK: f64 = 2.5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>());
    let tasks = args.next().transpose()?.unwrap_or(20_000);
    let workers = args.next().transpose()?.unwrap_or(8);
    let faults_of = |seed: u64, kinds: Vec<Fault>| FaultPlan {
        rate: FAULT_RATE,
        kinds,
        outage: None,
        seed,
        // Lost answers cost an attempt timeout (2 s) each: a few dozen, not a thousand.
        limit: 400,
    };
    let writer_kinds = vec![Fault::Throttling, Fault::InternalServerError, Fault::ConnectionReset];
    let (client, faults, _) = dynamodb_with_faults(faults_of(7, writer_kinds)).await?;
    let consumer_kinds = vec![
        Fault::ProvisionedThroughputExceeded,
        Fault::ServiceUnavailable,
        Fault::LostAnswer,
    ];
    let (consumer_client, consumer_faults, _) = dynamodb_with_faults(faults_of(17, consumer_kinds)).await?;
    let stack = TestStack::with_client(client.clone())
        .await?
        .with_consumer_client(consumer_client);
    let plain = task_timing_tests::local::dynamodb_from_env().await?;
    let mut rng = Rng::with_seed(8);
    let profile = Profile::with_index("load", 1);
    let lifecycles: Vec<_> = (0..tasks)
        .map(|_| {
            let created = HOUR_START + rng.i64(0..HOUR);
            lifecycle(&mut rng, &profile, created)
        })
        .collect();
    // The states the EventBridge rule captures by default (RUNNING and STOPPED; a task that failed to
    // start has only STOPPED), some delivered twice, all shuffled.
    let mut events: Vec<_> = lifecycles
        .iter()
        .flat_map(|task| &task.events)
        .filter(|event| matches!(event["detail"]["lastStatus"].as_str(), Some("RUNNING" | "STOPPED")))
        .cloned()
        .collect();
    let distinct = events.len();
    let twice = ((tasks as f64 * DELIVERIES_PER_TASK) as usize)
        .saturating_sub(distinct)
        .min(distinct);
    let copies: Vec<_> = rng
        .choose_multiple(0..distinct, twice)
        .into_iter()
        .map(|index| events[index].clone())
        .collect();
    events.extend(copies);
    rng.shuffle(&mut events);
    let plan = ReplayPlan {
        workers,
        die_rate: DIE_RATE,
        seed: 9,
    };
    let batches = PollerPlan {
        shards: 4,
        batch_size: 100,
        rollover_every: Some(5_000),
        die_rate: DIE_RATE,
        duplicate_rate: DIE_RATE,
        bisect: true,
        seed: 19,
    };
    println!(
        "{tasks} lifecycles of one family in one hour, {} deliveries ({distinct} events, {twice} of them twice), \
         {workers} workers, request faults at {FAULT_RATE} on both sides, invocations dying after their write at \
         {DIE_RATE}; the stream read {SLICES} times in 4 shards, batches of up to 100, {DIE_RATE} of them killed \
         and {DIE_RATE} delivered twice",
        events.len()
    );
    let deliveries = events.len();
    let (mut figures, mut redriven) = (ReplayFigures::default(), ReplayFigures::default());
    let mut consumed = PollerFigures::default();
    let started = std::time::Instant::now();
    for slice in events.chunks(deliveries / SLICES + 1) {
        let replayed = replay(stack.handler.clone(), slice.to_vec(), plan).await?;
        // Events whose three invocations all failed are dead letters: redriven, as an operator would.
        let again = redrive(stack.handler.clone(), &replayed, plan).await?;
        figures = figures.merged(&replayed);
        redriven = redriven.merged(&again);
        consumed = consumed.merged(&stack.drain_with(batches).await?);
    }
    figures.deliveries = deliveries;
    figures.elapsed = started.elapsed();
    let requests = FaultCounts::get(&faults.requests);
    let consumer_requests = FaultCounts::get(&consumer_faults.requests);
    let checks = verify(&stack, &plain, &lifecycles).await?;

    let invocations = figures.invocations + redriven.invocations;
    let seconds = figures.elapsed.as_secs_f64();
    println!("| figure | value |");
    println!("|---|---:|");
    for (name, value) in [
        ("deliveries", figures.deliveries.to_string()),
        (
            "deliveries per second",
            format!("{:.1}", figures.deliveries as f64 / seconds),
        ),
        (
            "invocations (Lambda retries and redrive included)",
            invocations.to_string(),
        ),
        ("elapsed", format!("{seconds:.0} s")),
        (
            "task-events invocations that died after writing",
            figures.deaths.to_string(),
        ),
        (
            "invocations that returned an error",
            (figures.failed + redriven.failed).to_string(),
        ),
        ("Lambda retries", figures.lambda_retries.to_string()),
        (
            "dead letters (redriven; failed again)",
            format!("{} ({})", figures.dead_letters.len(), redriven.dead_letters.len()),
        ),
        (
            "written / duplicate / stale",
            format!(
                "{} / {} / {}",
                figures.written + redriven.written,
                figures.duplicate + redriven.duplicate,
                figures.stale + redriven.stale
            ),
        ),
        (
            "task-events DynamoDB requests (SDK retries included)",
            requests.to_string(),
        ),
        (
            "TransactWriteItems calls",
            (FaultCounts::get(&faults.transactions) + FaultCounts::get(&consumer_faults.transactions)).to_string(),
        ),
        (
            "task-events DynamoDB requests per delivery",
            format!("{:.2}", requests as f64 / figures.deliveries as f64),
        ),
        ("stream records read", consumed.records.to_string()),
        ("task-rollups: {}", consumed.to_string()),
        (
            "task-rollups DynamoDB requests (SDK retries included) / per stream record",
            format!(
                "{consumer_requests} / {:.3}",
                consumer_requests as f64 / consumed.records.max(1) as f64
            ),
        ),
        (
            "request faults injected (task-events / task-rollups)",
            format!(
                "{} / {}",
                Fault::ALL.iter().map(|f| faults.injected(*f)).sum::<u64>(),
                Fault::ALL.iter().map(|f| consumer_faults.injected(*f)).sum::<u64>()
            ),
        ),
        (
            "DynamoDB requests per invocation",
            format!("{:.2}", requests as f64 / invocations as f64),
        ),
        (
            "records checked / wrong",
            format!("{} / {}", checks.records, checks.record_errors),
        ),
        (
            "metrics emitted / emitted twice or unsupported / in the ledger, never emitted",
            format!(
                "{} / {} / {}",
                checks.metrics_emitted, checks.metric_errors, checks.metrics_lost
            ),
        ),
        (
            "rollup items checked / lost or double-counted entries",
            format!("{} / {}", checks.rollup_items, checks.rollup_errors),
        ),
    ] {
        let name = name.replace(": {}", "");
        println!("| {name} | {value} |");
    }
    if !checks.violations.is_empty() || !redriven.dead_letters.is_empty() {
        let shown: Vec<_> = checks.violations.iter().take(50).cloned().collect();
        return Err(format!("{} violations:\n{}", checks.violations.len(), shown.join("\n")).into());
    }
    Ok(())
}

#[derive(Default)]
struct Checks {
    records: usize,
    record_errors: usize,
    metrics_emitted: usize,
    metric_errors: usize,
    metrics_lost: usize,
    rollup_items: usize,
    rollup_errors: usize,
    violations: Vec<String>,
}

/// Every record equals its newest version, no metric was emitted twice or without its phase, and every
/// rollup item holds each phase exactly once: all compared with the generator's truth.
async fn verify(
    stack: &TestStack,
    client: &aws_sdk_dynamodb::Client,
    lifecycles: &[task_timing_tests::generator::Lifecycle],
) -> Result<Checks, Error> {
    let mut checks = Checks::default();
    let mut emitted_by_task = stack.emission_counts_by_task();
    // One consistent Scan instead of a GetItem per task: at moto's rate 20,000 reads take half an hour.
    let mut stored = BTreeMap::new();
    let mut pages = client
        .scan()
        .table_name(&stack.table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item?;
        // An item that holds only an image report is no record yet (as `TaskStore::get` says).
        if !item.contains_key("version") {
            continue;
        }
        let (record, ledger) = record_from_item(item)?;
        stored.insert(record.task_arn.clone(), (record, ledger));
    }
    for task in lifecycles {
        let arn = &task.truth.task_arn;
        checks.records += 1;
        let Some((record, ledger)) = stored.remove(arn) else {
            checks.record_errors += 1;
            checks.violations.push(format!("{arn}: no record"));
            continue;
        };
        let mismatches = record_mismatches(&record, &task.truth);
        checks.record_errors += usize::from(!mismatches.is_empty());
        checks.violations.extend(mismatches);
        let metrics = check_metrics(&task.truth, &emitted_by_task.remove(arn).unwrap_or_default(), &ledger);
        checks.metrics_emitted += metrics.emitted;
        checks.metric_errors += metrics.violations.len();
        checks.metrics_lost += metrics.lost;
        checks.violations.extend(metrics.violations);
    }
    checks
        .violations
        .extend(stored.keys().map(|arn| format!("{arn}: a record of no generated task")));
    let rollups = scan_rollups(client, &stack.rollup_table).await?;
    checks.rollup_items = rollups.len();
    let rollup_errors = rollup_violations(&expected_rollups(lifecycles), &rollups);
    checks.rollup_errors = rollup_errors.len();
    checks.violations.extend(rollup_errors);
    Ok(checks)
}
