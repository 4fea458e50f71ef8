//! Hourly and daily rollups against the local stack, through the table's stream: exactly once under
//! duplicates, shuffles, concurrent workers and dying invocations on task-events' side, and killed,
//! duplicated, bisected, partially failed and re-split batches and shard rollovers on task-rollups'; one
//! DynamoDB request per delivery; summaries from rollups against the exact ones.

use fastrand::Rng;
use serde_json::{Value, json};
use task_events::Outcome;
use task_timing_tests::faults::{Fault, FaultCounts, FaultPlan, counting_dynamodb, dynamodb_with_faults};
use task_timing_tests::generator::{Lifecycle, Profile, deliveries, lifecycle};
use task_timing_tests::harness::{TestStack, deliver};
use task_timing_tests::replay::{ReplayPlan, redrive, replay};
use task_timing_tests::stream::{PollerFigures, PollerPlan};
use timing_domain::request::Limits;
use timing_domain::timestamp::Timestamp;

const HOUR: i64 = 3_600_000;

fn window_start() -> i64 {
    Timestamp::parse("2026-11-20T09:00:00Z").unwrap().millis()
}

/// `count` tasks of family `web` (revisions 3 and 4) created over `hours` hours from the window start.
fn tasks(seed: u64, count: usize, hours: i64) -> Vec<Lifecycle> {
    let mut rng = Rng::with_seed(seed);
    let profiles = [Profile::without_index("web", 3), Profile::with_index("web", 4)];
    (0..count)
        .map(|i| {
            let created = window_start() + rng.i64(0..hours * HOUR);
            lifecycle(&mut rng, &profiles[i % 2], created)
        })
        .collect()
}

/// A client whose requests fail as `kinds` at `rate`, at most `limit` times, plus an outage window.
async fn faulty(rate: f64, kinds: Vec<Fault>, outage: Option<(u64, u64)>, limit: u64, seed: u64) -> FaultyStack {
    let plan = FaultPlan {
        rate,
        kinds,
        outage,
        seed,
        limit,
    };
    let (client, counts, _) = dynamodb_with_faults(plan).await.unwrap();
    (client, counts)
}

type FaultyStack = (aws_sdk_dynamodb::Client, std::sync::Arc<FaultCounts>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phase_enters_its_rollup_exactly_once_whatever_the_deliveries_and_batches_do() {
    // task-events: throttles, 5xx and resets (the SDK retries them); invocations that die after writing.
    let writer_kinds = vec![Fault::Throttling, Fault::InternalServerError, Fault::ConnectionReset];
    let (writer, _) = faulty(0.1, writer_kinds, None, u64::MAX, 41).await;
    // task-rollups: the same, answers lost after the update applied, and an outage long enough to
    // exhaust the SDK's retries of items updated 16 at a time (items fail, the batch reports them and is
    // retried from there).
    let consumer_kinds = vec![
        Fault::ProvisionedThroughputExceeded,
        Fault::ServiceUnavailable,
        Fault::LostAnswer,
    ];
    let (consumer, consumer_faults) = faulty(0.1, consumer_kinds, Some((40, 60)), 12, 44).await;
    let stack = TestStack::with_client(writer)
        .await
        .unwrap()
        .with_consumer_client(consumer);
    // Most tasks in one hour, so most batches update the same few rollup items.
    let lifecycles = tasks(41, 48, 2);
    let events = deliveries(&mut Rng::with_seed(42), &lifecycles, 3, true);
    let plan = ReplayPlan {
        workers: 6,
        die_rate: 0.15,
        seed: 43,
    };
    let batches = PollerPlan {
        shards: 3,
        batch_size: 12,
        rollover_every: Some(60),
        die_rate: 0.25,
        duplicate_rate: 0.2,
        bisect: true,
        seed: 45,
    };
    // The stream is read four times while the deliveries go on, so a task's records span batches.
    let mut consumed = PollerFigures::default();
    for chunk in events.chunks(events.len() / 4 + 1) {
        let figures = replay(stack.handler.clone(), chunk.to_vec(), plan).await.unwrap();
        // An event whose three invocations all died is a dead letter: redriven, as an operator would.
        let redriven = redrive(stack.handler.clone(), &figures, plan).await.unwrap();
        assert!(redriven.dead_letters.is_empty(), "{redriven}");
        println!("replay: {figures}");
        let drained = stack.drain_with(batches).await.unwrap();
        println!("stream: {drained}");
        consumed = drained.merged(&consumed);
    }

    let violations = stack.rollup_violations(&lifecycles).await.unwrap();
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    // Every fault the guard must survive happened.
    assert!(
        consumed.deaths > 0 && consumed.duplicates > 0 && consumed.bisections > 0 && consumed.rollovers > 0,
        "{consumed}"
    );
    assert!(consumed.partial_failures > 0, "{consumed}");
    assert!(consumer_faults.injected(Fault::LostAnswer) > 0);
    for ((task, metric), values) in stack.emissions() {
        assert_eq!(values.len(), 1, "{metric} of {task} emitted {} times", values.len());
    }
}

#[tokio::test]
async fn every_delivery_costs_one_request_whatever_its_outcome() {
    let (client, faults) = counting_dynamodb().await.unwrap();
    let stack = TestStack::with_client(client).await.unwrap();
    let lifecycles = tasks(51, 12, 1);
    let events = deliveries(&mut Rng::with_seed(52), &lifecycles, 3, true);
    let mut costs = std::collections::BTreeMap::<Outcome, Vec<u64>>::new();
    for event in &events {
        let before = FaultCounts::get(&faults.requests);
        let response = deliver(&stack.handler, event).await.unwrap();
        costs
            .entry(response.outcome)
            .or_default()
            .push(FaultCounts::get(&faults.requests) - before);
    }
    println!("requests per delivery by outcome: {costs:?}");
    assert_eq!(costs.len(), 3, "written, duplicate and stale all occur: {costs:?}");
    for (outcome, calls) in &costs {
        assert!(calls.iter().all(|c| *c == 1), "{outcome:?}: {calls:?}");
    }
    assert_eq!(FaultCounts::get(&faults.transactions), 0);
}

async fn ask(handler: &task_summary::Handler, request: Value) -> Value {
    let now = Timestamp::from_millis(window_start() + 24 * HOUR);
    let answer = handler.handle_at(request.to_string().as_bytes(), now).await.unwrap();
    serde_json::to_value(answer).unwrap()
}

/// The rollup answer's groups agree with the exact answer's: counts, mean and stddev to the
/// millisecond both round to, min, max and percentiles within 1%.
fn assert_agree(rollups: &Value, exact: &Value) {
    let groups = |answer: &Value| answer["groups"].as_array().unwrap().clone();
    assert_eq!(groups(rollups).len(), 2);
    for (r, e) in groups(rollups).iter().zip(groups(exact)) {
        assert_eq!(r["key"], e["key"]);
        for count in [
            "tasks",
            "started",
            "stopped",
            "failedToStart",
            "timestampAnomalies",
            "notReady",
        ] {
            assert_eq!(r[count], e[count], "{count}");
        }
        for (rp, ep) in r["phases"]
            .as_array()
            .unwrap()
            .iter()
            .zip(e["phases"].as_array().unwrap())
        {
            let what = format!("revision {} {}", r["key"]["revision"], rp["phase"]);
            assert_eq!(rp["count"], ep["count"], "{what}");
            if ep["count"] == 0 {
                continue;
            }
            let value = |v: &Value, name: &str| v[name].as_f64().unwrap();
            // Both rounded to the millisecond from the same exact sums.
            for name in ["mean", "stddev"] {
                let (got, want) = (value(rp, name), value(ep, name));
                assert!((got - want).abs() <= 0.001 + 1e-9, "{what} {name}: {got} vs {want}");
            }
            for name in ["min", "p50", "p90", "p95", "p99", "max"] {
                let (got, want) = (value(rp, name), value(ep, name));
                assert!(
                    (got - want).abs() <= want * 0.01 + 0.001,
                    "{what} {name}: {got} vs {want}"
                );
            }
        }
    }
}

#[tokio::test]
async fn summaries_from_rollups_agree_with_the_exact_ones_within_their_precision() {
    let stack = TestStack::new().await.unwrap();
    let lifecycles = tasks(61, 60, 3);
    for task in &lifecycles {
        // The final event only: each task's record knows every phase at once; then its report, so the
        // phases to ready (worked out from two writes) are compared too.
        deliver(&stack.handler, task.events.last().unwrap()).await.unwrap();
        if let Some(report) = &task.report {
            deliver(&stack.handler, report).await.unwrap();
        }
    }
    assert!(lifecycles.iter().filter(|t| t.report.is_some()).count() > 50);
    stack.drain().await.unwrap();
    let handler = stack.summary(Limits::default(), Some(5));
    let window = json!({"family": "web", "from": "2026-11-20T09:00:00Z", "to": "2026-11-20T12:00:00Z"});
    let request = |exact: bool| {
        let mut request = json!({"query": "summary", "exact": exact});
        request
            .as_object_mut()
            .unwrap()
            .extend(window.as_object().unwrap().clone());
        request
    };
    let (rollups, exact) = (ask(&handler, request(false)).await, ask(&handler, request(true)).await);
    assert_eq!(
        (rollups["source"].as_str(), exact["source"].as_str()),
        (Some("rollups"), Some("records"))
    );
    assert!(rollups["precision"].as_str().unwrap().contains("within 1%"));
    assert_eq!(exact["read"]["itemsRead"], 60);
    // 3 hours × 2 revisions × 2 snapshotters (the reported one, and `unreported` for the failed starts,
    // which send no report) × 10 slots (9 phases and the counts) at most, however many tasks.
    assert!(
        rollups["read"]["itemsRead"].as_u64().unwrap() <= 120,
        "{}",
        rollups["read"]
    );
    assert_agree(&rollups, &exact);
    // A window that ends inside an hour is answered for the whole hour, and says so.
    let mut partial = request(false);
    partial["to"] = json!("2026-11-20T11:30:00Z");
    assert_eq!(
        ask(&handler, partial).await["filters"]["to"],
        "2026-11-20T12:00:00.000Z"
    );
    // compare from rollups gives the figures but no test.
    let compare = json!({"query": "compare", "baseline": {"family": "web", "revisions": [3]},
        "candidate": {"family": "web", "revisions": [4]}, "phases": ["imagePull"]});
    let answer = ask(&handler, compare).await;
    assert_eq!(answer["source"], "rollups");
    assert!(answer["phases"][0]["mannWhitney"].is_null());
    assert!(
        answer["phases"][0]["p50Difference"].as_f64().unwrap() < -10.0,
        "{answer}"
    );
}

#[tokio::test]
async fn summaries_over_days_read_day_items_and_hours_only_at_the_edges() {
    let stack = TestStack::new().await.unwrap();
    // 150 tasks over 60 hours from 2026-11-20T09:00: three UTC days, two of them partial.
    let lifecycles = tasks(81, 150, 60);
    for task in &lifecycles {
        deliver(&stack.handler, task.events.last().unwrap()).await.unwrap();
    }
    stack.drain().await.unwrap();
    let handler = stack.summary(Limits::default(), None);
    let request = |from: &str, to: &str, exact: bool| json!({"query": "summary", "family": "web", "from": from, "to": to, "groupBy": ["revision"], "exact": exact});
    let rollups = ask(&handler, request("2026-11-20T10:30:00Z", "2026-11-22T15:10:00Z", false)).await;
    // The rollups answer for whole hours: the exact path over the same widened window must agree.
    assert_eq!(
        (&rollups["filters"]["from"], &rollups["filters"]["to"]),
        (&json!("2026-11-20T10:00:00.000Z"), &json!("2026-11-22T16:00:00.000Z"))
    );
    let exact = ask(&handler, request("2026-11-20T10:00:00Z", "2026-11-22T16:00:00Z", true)).await;
    let created_in_window = lifecycles
        .iter()
        .filter(|task| {
            let created = Timestamp::parse(task.events[0]["detail"]["createdAt"].as_str().unwrap()).unwrap();
            (window_start() + HOUR..window_start() + 55 * HOUR).contains(&created.millis())
        })
        .count();
    let total = |answer: &Value| -> u64 {
        answer["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["tasks"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        (total(&rollups), total(&exact)),
        (created_in_window as u64, created_in_window as u64)
    );
    assert_agree(&rollups, &exact);
    // Hours 10-23 of the 20th, the 21st as day items, hours 0-15 of the 22nd: three Queries, and at
    // most (14 + 16) hours × 2 revisions × 8 slots + 2 × 8 day items.
    assert_eq!(rollups["read"]["queryCalls"], 3, "{}", rollups["read"]);
    assert!(
        rollups["read"]["itemsRead"].as_u64().unwrap() <= 30 * 16 + 16,
        "{}",
        rollups["read"]
    );
    // The whole 21st alone is its day items: one Query, 2 revisions × 8 slots.
    let day = ask(&handler, request("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", false)).await;
    let day_exact = ask(&handler, request("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", true)).await;
    assert_eq!(
        (&day["read"]["queryCalls"], &day["read"]["itemsRead"]),
        (&json!(1), &json!(16))
    );
    assert_agree(&day, &day_exact);
}
