//! `make loadtest`: many task lifecycles of one family in one hour through the real task-events
//! handler with concurrent workers against the local stack, transactions conflicting on a seeded
//! schedule and invocations dying between their two calls; then every rollup item is checked
//! against the generator's truth (zero lost or double-counted phases) and the figures printed.
//!
//!   loadtest [TASKS] [WORKERS]     defaults: 10000 tasks, 8 workers

use fastrand::Rng;
use task_timing_tests::faults::{Fault, FaultCounts, faulty_dynamodb};
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::harness::TestStack;
use task_timing_tests::local::Error;
use task_timing_tests::replay::{ReplayPlan, expected_rollups, redrive, replay, rollup_violations, scan_rollups};

const HOUR: i64 = 3_600_000;
/// 2026-11-20T09:00:00Z: every task is created in the hour after it.
const HOUR_START: i64 = 1_795_165_200_000;
const CONFLICT_RATE: f64 = 0.05;
const DIE_RATE: f64 = 0.02;
const DUPLICATE_RATE: f64 = 0.1;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>());
    let tasks = args.next().transpose()?.unwrap_or(10_000);
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
    // The states the EventBridge rule captures by default (RUNNING and STOPPED), a tenth of them
    // delivered twice, all shuffled.
    let mut events = Vec::new();
    for event in lifecycles.iter().flat_map(|task| &task.events) {
        if matches!(event["detail"]["lastStatus"].as_str(), Some("RUNNING" | "STOPPED")) {
            events.push(event.clone());
            if rng.f64() < DUPLICATE_RATE {
                events.push(event.clone());
            }
        }
    }
    rng.shuffle(&mut events);
    let plan = ReplayPlan {
        workers,
        die_rate: DIE_RATE,
        seed: 9,
    };
    println!(
        "{tasks} lifecycles of one family in one hour, {workers} workers, transaction conflicts injected at {CONFLICT_RATE}, \
         invocations dying between the two calls at {DIE_RATE}"
    );
    let figures = replay(stack.handler.clone(), events, plan).await?;
    // Events whose three invocations all died are dead letters: redriven, as an operator would.
    let redriven = redrive(stack.handler.clone(), &figures, plan).await?;
    let conflicts_retried = figures.rollup_conflicts + redriven.rollup_conflicts;
    let violations = rollup_violations(
        &expected_rollups(&lifecycles),
        &scan_rollups(&client, &stack.rollup_table).await?,
    );
    let requests = FaultCounts::get(&faults.requests);
    println!("| figure | value |");
    println!("|---|---:|");
    for (name, value) in [
        ("deliveries", figures.deliveries.to_string()),
        ("invocations", figures.invocations.to_string()),
        (
            "invocations that died between the two calls (retried)",
            figures.deaths.to_string(),
        ),
        (
            "dead letters (redriven; failed again)",
            format!("{} ({})", figures.dead_letters.len(), redriven.dead_letters.len()),
        ),
        (
            "written / duplicate / stale",
            format!("{} / {} / {}", figures.written, figures.duplicate, figures.stale),
        ),
        ("repairs by a later delivery", figures.repairs.to_string()),
        (
            "TransactWriteItems calls",
            FaultCounts::get(&faults.transactions).to_string(),
        ),
        (
            "conflicts injected = retried",
            format!(
                "{} = {}",
                faults.injected(Fault::TransactionConflict),
                conflicts_retried
            ),
        ),
        (
            "DynamoDB requests per invocation",
            format!(
                "{:.2}",
                requests as f64 / (figures.invocations + redriven.invocations) as f64
            ),
        ),
        (
            "invocations per second",
            format!("{:.0}", figures.invocations as f64 / figures.elapsed.as_secs_f64()),
        ),
        ("elapsed", format!("{:.0} s", figures.elapsed.as_secs_f64())),
        ("lost or double-counted rollup entries", violations.len().to_string()),
    ] {
        println!("| {name} | {value} |");
    }
    if !violations.is_empty()
        || !redriven.dead_letters.is_empty()
        || conflicts_retried != faults.injected(Fault::TransactionConflict)
    {
        return Err(format!("{} violations:\n{}", violations.len(), violations.join("\n")).into());
    }
    Ok(())
}
