//! `make loadtest`: a burst of task lifecycles of one family in one hour through the real task-events
//! handler with concurrent workers against the local stack, transactions conflicting on a seeded
//! schedule and invocations dying between their two calls. Afterwards every record, every task's
//! metrics and every rollup item is checked against the generator's truth, and the figures printed.
//!
//!   loadtest [TASKS] [WORKERS]     defaults: 20000 tasks (50,000 deliveries), 8 workers

use std::collections::BTreeMap;

use fastrand::Rng;
use task_timing_tests::faults::{Fault, FaultCounts, faulty_dynamodb};
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::harness::TestStack;
use task_timing_tests::invariants::{check_metrics, record_mismatches};
use task_timing_tests::local::Error;
use task_timing_tests::replay::{ReplayPlan, expected_rollups, redrive, replay, rollup_violations, scan_rollups};
use timing_dynamodb::items::record_from_item;

const HOUR: i64 = 3_600_000;
/// 2026-11-20T09:00:00Z: every task is created in the hour after it.
const HOUR_START: i64 = 1_795_165_200_000;
const CONFLICT_RATE: f64 = 0.05;
const DIE_RATE: f64 = 0.02;
/// Enough events are delivered twice to make 2.5 deliveries per task: 20,000 tasks give 50,000.
const DELIVERIES_PER_TASK: f64 = 2.5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>());
    let tasks = args.next().transpose()?.unwrap_or(20_000);
    let workers = args.next().transpose()?.unwrap_or(8);
    let (client, faults) = faulty_dynamodb(CONFLICT_RATE, 7).await?;
    let stack = TestStack::with_client(client.clone()).await?;
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
    println!(
        "{tasks} lifecycles of one family in one hour, {} deliveries ({distinct} events, {twice} of them twice), \
         {workers} workers, transaction conflicts injected at {CONFLICT_RATE}, invocations dying between the two \
         calls at {DIE_RATE}",
        events.len()
    );
    let figures = replay(stack.handler.clone(), events, plan).await?;
    // Events whose three invocations all failed are dead letters: redriven, as an operator would.
    let redriven = redrive(stack.handler.clone(), &figures, plan).await?;
    let requests = FaultCounts::get(&faults.requests);
    let conflicts_retried = figures.rollup_conflicts + redriven.rollup_conflicts;
    let checks = verify(&stack, &client, &lifecycles).await?;

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
            "invocations that died between the two calls",
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
            "repairs by a later delivery",
            (figures.repairs + redriven.repairs).to_string(),
        ),
        ("DynamoDB requests (SDK retries included)", requests.to_string()),
        (
            "TransactWriteItems calls",
            FaultCounts::get(&faults.transactions).to_string(),
        ),
        (
            "conflicts injected = retried by the SDK",
            format!(
                "{} = {}",
                faults.injected(Fault::TransactionConflict),
                conflicts_retried
            ),
        ),
        (
            "DynamoDB requests per delivery",
            format!("{:.2}", requests as f64 / figures.deliveries as f64),
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
        println!("| {name} | {value} |");
    }
    if !checks.violations.is_empty()
        || !redriven.dead_letters.is_empty()
        || conflicts_retried != faults.injected(Fault::TransactionConflict)
    {
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
        let (record, ledger) = record_from_item(item?)?;
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
