//! Randomized, seeded replays through the two-function pipeline against the local stack: task-events with
//! every DynamoDB request passing a fault-injecting client (throttling, 500/503, resets, timeouts, answers
//! lost after the write applied, and an outage), and task-rollups fed from the table's stream with faults of
//! its own (the same kinds on its requests; batches killed mid-way, delivered twice, bisected, retried from
//! a failed record with other boundaries; several shards rolling over). Failed task-events invocations are
//! retried as Lambda's asynchronous invocation retries them, then dead-lettered; the dead letters are
//! redriven with the faults off, as an operator would. Invariants, checked after every sequence:
//! - every delivered event took effect (its task's stored version is at least its own) or is a dead letter;
//! - after the redrive, each task's record is the newest version's, with the generator's durations;
//! - every phase is in its hour and day rollups exactly once;
//! - no metric of a task is emitted twice, and none the task does not support;
//! - no panic (a panicking worker fails the replay).
//!
//! Size: REPLAY_SEQUENCES (default 3), REPLAY_TASKS per sequence (default 10), REPLAY_SEED (default
//! 20261201); `make soak` runs a larger one. The fault schedule follows the seed in request-arrival
//! order; concurrent workers interleave differently from run to run, which is part of what is tested.

use std::collections::{BTreeMap, BTreeSet};

use fastrand::Rng;
use task_timing_tests::faults::{Fault, FaultCounts, FaultPlan, dynamodb_with_faults};
use task_timing_tests::generator::{Lifecycle, Profile, deliveries, lifecycle};
use task_timing_tests::harness::TestStack;
use task_timing_tests::invariants::{check_metrics, expected_metrics, record_mismatches};
use task_timing_tests::replay::{
    ReplayFigures, ReplayPlan, expected_rollups, redrive, replay, rollup_violations, scan_rollups,
};
use task_timing_tests::stream::{PollerFigures, PollerPlan};

const HOUR: i64 = 3_600_000;
const WINDOW_START: i64 = 1_795_474_800_000; // 2026-11-24T19:00:00Z

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Tasks of two families, with and without an index, created over three hours.
fn random_tasks(rng: &mut Rng, count: usize) -> Vec<Lifecycle> {
    let profiles = [
        Profile::without_index("web", 7),
        Profile::with_index("web", 8),
        Profile {
            failure_rate: 0.3,
            spot_interruption_rate: 0.2,
            ..Profile::without_index("batch", 2)
        },
    ];
    (0..count)
        .map(|_| {
            let profile = &profiles[rng.usize(..profiles.len())];
            let created = WINDOW_START + rng.i64(0..3 * HOUR);
            lifecycle(rng, profile, created)
        })
        .collect()
}

#[derive(Default)]
struct Totals {
    sequences: u64,
    tasks: usize,
    events: usize,
    deliveries: usize,
    invocations: usize,
    requests: u64,
    injected: BTreeMap<&'static str, u64>,
    consumer_requests: u64,
    consumer_injected: BTreeMap<&'static str, u64>,
    consumed: PollerFigures,
    deaths: usize,
    failed: usize,
    lambda_retries: usize,
    dead_letters: usize,
    recovered_writes: usize,
    metrics_emitted: usize,
    metrics_lost: usize,
    violations: Vec<String>,
}

impl Totals {
    fn add(&mut self, figures: &ReplayFigures) {
        self.invocations += figures.invocations;
        self.deaths += figures.deaths;
        self.failed += figures.failed;
        self.lambda_retries += figures.lambda_retries;
        self.recovered_writes += figures.recovered_writes;
    }

    fn print(&self) {
        println!("| figure | value |\n|---|---:|");
        let rows: Vec<(String, String)> = vec![
            ("sequences".into(), self.sequences.to_string()),
            ("tasks".into(), self.tasks.to_string()),
            ("distinct events".into(), self.events.to_string()),
            (
                "deliveries (each event 1 to 3 times, shuffled)".into(),
                self.deliveries.to_string(),
            ),
            (
                "invocations (retries and redrive included)".into(),
                self.invocations.to_string(),
            ),
            (
                "DynamoDB requests sent (SDK retries included)".into(),
                self.requests.to_string(),
            ),
            (
                "task-events invocations that died after writing".into(),
                self.deaths.to_string(),
            ),
            (
                "invocations that failed (SDK retries exhausted)".into(),
                self.failed.to_string(),
            ),
            ("Lambda retries".into(), self.lambda_retries.to_string()),
            (
                "dead letters (redriven after the faults)".into(),
                self.dead_letters.to_string(),
            ),
            (
                "record writes recovered after a lost answer".into(),
                self.recovered_writes.to_string(),
            ),
            ("metrics emitted".into(), self.metrics_emitted.to_string()),
            (
                "metrics in the ledger but never emitted".into(),
                self.metrics_lost.to_string(),
            ),
            ("violations".into(), self.violations.len().to_string()),
        ];
        for (name, value) in rows {
            println!("| {name} | {value} |");
        }
        for (fault, count) in &self.injected {
            println!("| faults injected into task-events: {fault} | {count} |");
        }
        println!("| task-rollups: stream records | {} |", self.consumed.records);
        println!(
            "| task-rollups: invocations (killed mid-batch / delivered twice / bisected / partial failures) | {} ({} / {} / {} / {}) |",
            self.consumed.invocations,
            self.consumed.deaths,
            self.consumed.duplicates,
            self.consumed.bisections,
            self.consumed.partial_failures
        );
        println!("| task-rollups: shard rollovers | {} |", self.consumed.rollovers);
        println!(
            "| task-rollups: DynamoDB requests sent (SDK retries included) | {} |",
            self.consumer_requests
        );
        for (fault, count) in &self.consumer_injected {
            println!("| faults injected into task-rollups: {fault} | {count} |");
        }
    }
}

async fn run_sequence(seed: u64, task_count: usize, totals: &mut Totals) {
    let mut rng = Rng::with_seed(seed);
    let plan = FaultPlan {
        rate: 0.08,
        kinds: Fault::ALL.to_vec(),
        // Long enough that some events fail all three invocations and are dead-lettered.
        outage: Some((rng.u64(50..400), rng.u64(60..160))),
        seed,
        limit: u64::MAX,
    };
    let consumer_plan = FaultPlan {
        rate: 0.08,
        kinds: Fault::ALL.to_vec(),
        outage: Some((rng.u64(10..60), rng.u64(5..20))),
        seed: seed ^ 0x5eed,
        // Timeouts and lost answers cost an attempt timeout (2 s) each: two of each kind per sequence.
        limit: 14,
    };
    let (client, counts, switch) = dynamodb_with_faults(plan).await.unwrap();
    let (consumer_client, consumer_counts, _) = dynamodb_with_faults(consumer_plan).await.unwrap();
    switch.set(false);
    let stack = TestStack::with_client(client.clone())
        .await
        .unwrap()
        .with_consumer_client(consumer_client);
    let batches = PollerPlan {
        shards: rng.usize(1..=4),
        batch_size: rng.usize(2..=25),
        rollover_every: Some(rng.usize(10..60)),
        die_rate: 0.15,
        duplicate_rate: 0.25,
        bisect: true,
        seed,
    };
    let lifecycles = random_tasks(&mut rng, task_count);
    let events = deliveries(&mut rng, &lifecycles, 3, true);
    let replay_plan = ReplayPlan {
        workers: rng.usize(2..=8),
        die_rate: 0.05,
        seed,
    };
    totals.sequences += 1;
    totals.tasks += lifecycles.len();
    totals.events += lifecycles.iter().map(|task| task.events.len()).sum::<usize>();
    totals.deliveries += events.len();

    switch.set(true);
    let figures = replay(stack.handler.clone(), events.clone(), replay_plan)
        .await
        .unwrap();
    switch.set(false);
    println!("sequence {seed}: {figures}");
    let consumed = stack.drain_with(batches).await.unwrap();
    totals.add(&figures);
    totals.dead_letters += figures.dead_letters.len();

    // Before the redrive: whatever is not a dead letter took effect.
    let dead: BTreeSet<String> = figures.dead_letters.iter().map(|event| event.to_string()).collect();
    let mut stored_versions = BTreeMap::new();
    for task in &lifecycles {
        let stored = stack.store.get(&task.truth.task_arn).await.unwrap();
        stored_versions.insert(task.truth.task_arn.clone(), stored.map(|(record, _)| record.version));
    }
    for event in events.iter().filter(|event| !dead.contains(&event.to_string())) {
        let (arn, version) = (&event["detail"]["taskArn"], event["detail"]["version"].as_u64());
        let stored = arn.as_str().and_then(|arn| stored_versions.get(arn)).copied().flatten();
        if stored < version {
            totals.violations.push(format!(
                "{arn} version {version:?}: no effect, not a dead letter (stored {stored:?})"
            ));
        }
    }

    let redriven = redrive(stack.handler.clone(), &figures, replay_plan).await.unwrap();
    totals.add(&redriven);
    let consumed = consumed.merged(&stack.drain_with(batches).await.unwrap());
    println!("sequence {seed}, stream: {consumed}");
    totals.consumed = totals.consumed.merged(&consumed);
    if !redriven.dead_letters.is_empty() {
        totals.violations.push(format!(
            "{} dead letters failed again with the faults off",
            redriven.dead_letters.len()
        ));
    }

    let emissions = stack.emission_counts_by_task();
    for task in &lifecycles {
        let Some((record, ledger)) = stack.store.get(&task.truth.task_arn).await.unwrap() else {
            totals.violations.push(format!("{}: no record", task.truth.task_arn));
            continue;
        };
        totals.violations.extend(record_mismatches(&record, &task.truth));
        let no_emissions = BTreeMap::new();
        let emitted = emissions.get(&task.truth.task_arn).unwrap_or(&no_emissions);
        let metrics = check_metrics(&task.truth, emitted, &ledger);
        totals.metrics_emitted += metrics.emitted;
        totals.metrics_lost += metrics.lost;
        totals.violations.extend(metrics.violations);
    }
    let rollups = scan_rollups(&client, &stack.rollup_table).await.unwrap();
    totals
        .violations
        .extend(rollup_violations(&expected_rollups(&lifecycles), &rollups));

    totals.requests += FaultCounts::get(&counts.requests);
    totals.consumer_requests += FaultCounts::get(&consumer_counts.requests);
    for fault in Fault::ALL {
        *totals.injected.entry(fault.name()).or_default() += counts.injected(fault);
        *totals.consumer_injected.entry(fault.name()).or_default() += consumer_counts.injected(fault);
    }
    *totals
        .consumer_injected
        .entry("outage (HTTP 503 to every request)")
        .or_default() += FaultCounts::get(&consumer_counts.outage_failures);
    *totals.injected.entry("outage (HTTP 503 to every request)").or_default() +=
        FaultCounts::get(&counts.outage_failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_replays_with_faults_lose_nothing_and_count_nothing_twice() {
    let sequences = setting("REPLAY_SEQUENCES", 3);
    let tasks = setting("REPLAY_TASKS", 10) as usize;
    let seed = setting("REPLAY_SEED", 20_261_201);
    let mut totals = Totals::default();
    for sequence in 0..sequences {
        run_sequence(seed + sequence, tasks, &mut totals).await;
    }
    totals.print();
    assert!(
        totals.violations.is_empty(),
        "{} violations:\n{}",
        totals.violations.len(),
        totals.violations.join("\n")
    );
    // The faults really happened: every kind, and enough of the outage to dead-letter something.
    for (fault, count) in &totals.injected {
        assert!(*count > 0, "no {fault} injected");
    }
    assert!(
        totals.dead_letters > 0 && totals.lambda_retries > 0,
        "nothing was dead-lettered"
    );
    let consumed = &totals.consumed;
    assert!(
        consumed.deaths > 0 && consumed.duplicates > 0 && consumed.partial_failures > 0,
        "{consumed}"
    );
}

/// The record write applies, its answer is lost, the SDK retries after the attempt timeout and the
/// condition refuses the retry: the handler recognises its own write and emits its metrics, once.
#[tokio::test]
async fn a_record_write_whose_answer_was_lost_still_emits_its_metrics_once() {
    let plan = FaultPlan {
        rate: 1.0,
        kinds: vec![Fault::LostAnswer],
        outage: None,
        seed: 5,
        limit: 1,
    };
    let (client, counts, switch) = dynamodb_with_faults(plan).await.unwrap();
    switch.set(false);
    let stack = TestStack::with_client(client).await.unwrap();
    let task = random_tasks(&mut Rng::with_seed(6), 1).remove(0);
    let stopped = task.events.last().unwrap();
    switch.set(true);
    let first = stack.deliver(stopped).await.unwrap();
    assert_eq!(counts.injected(Fault::LostAnswer), 1);
    assert!(
        first.recovered_write && first.outcome == task_events::Outcome::Written,
        "{first:?}"
    );
    let again = stack.deliver(stopped).await.unwrap();
    assert_eq!(again.outcome, task_events::Outcome::Duplicate);
    let emitted: BTreeSet<String> = stack.emissions().into_keys().map(|(_, metric)| metric).collect();
    assert_eq!(emitted, expected_metrics(&task.truth));
    assert!(stack.emissions().values().all(|values| values.len() == 1));
}
