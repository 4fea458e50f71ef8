//! Hourly and daily rollups against the local stack: exactly once under duplicates, shuffles, concurrent
//! workers, invocations that die between their two calls and injected TransactionConflicts; the
//! DynamoDB calls each delivery costs; summaries from rollups against the exact ones.

use fastrand::Rng;
use serde_json::{Value, json};
use task_events::Outcome;
use task_timing_tests::faults::{Fault, FaultCounts, faulty_dynamodb};
use task_timing_tests::generator::{Lifecycle, Profile, deliveries, lifecycle};
use task_timing_tests::harness::{TestStack, deliver};
use task_timing_tests::replay::{ReplayPlan, expected_rollups, redrive, replay, rollup_violations, scan_rollups};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phase_enters_its_rollup_exactly_once_whatever_the_deliveries_do() {
    let (client, faults) = faulty_dynamodb(0.25, 41).await.unwrap();
    let stack = TestStack::with_client(client.clone()).await.unwrap();
    // Most tasks in one hour, so most transactions touch the same few rollup items.
    let lifecycles = tasks(41, 48, 2);
    let events = deliveries(&mut Rng::with_seed(42), &lifecycles, 3, true);
    let plan = ReplayPlan {
        workers: 6,
        die_rate: 0.15,
        seed: 43,
    };
    let figures = replay(stack.handler.clone(), events, plan).await.unwrap();
    // An event whose three invocations all died is a dead letter: redriven, as an operator would.
    let redriven = redrive(stack.handler.clone(), &figures, plan).await.unwrap();
    assert!(redriven.dead_letters.is_empty(), "{redriven}");
    let injected = faults.injected(Fault::TransactionConflict);
    println!(
        "replay: {figures}; {injected} conflicts injected in {} transactions",
        FaultCounts::get(&faults.transactions)
    );

    let violations = rollup_violations(
        &expected_rollups(&lifecycles),
        &scan_rollups(&client, &stack.rollup_table).await.unwrap(),
    );
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    // The faults really happened, and every injected conflict was retried by the handler.
    assert!(figures.deaths > 0 && figures.repairs > 0, "{figures}");
    assert!(injected > 0, "no conflict injected");
    assert_eq!(figures.rollup_conflicts + redriven.rollup_conflicts, injected);
    for ((task, metric), values) in stack.emissions() {
        assert_eq!(values.len(), 1, "{metric} of {task} emitted {} times", values.len());
    }
}

#[tokio::test]
async fn a_duplicate_or_stale_delivery_costs_one_call_and_one_that_makes_phases_known_at_most_two() {
    let (client, faults) = faulty_dynamodb(0.0, 1).await.unwrap();
    let stack = TestStack::with_client(client).await.unwrap();
    let lifecycles = tasks(51, 12, 1);
    let events = deliveries(&mut Rng::with_seed(52), &lifecycles, 3, true);
    let mut costs = std::collections::BTreeMap::<(Outcome, bool), Vec<u64>>::new();
    for event in &events {
        let before = FaultCounts::get(&faults.requests);
        let response = deliver(&stack.handler, event).await.unwrap();
        let calls = FaultCounts::get(&faults.requests) - before;
        let rolled_up = !response.rolled_up.is_empty();
        costs.entry((response.outcome, rolled_up)).or_default().push(calls);
    }
    println!("calls per delivery by (outcome, rolled up): {costs:?}");
    for ((outcome, rolled_up), calls) in &costs {
        let expected = if *rolled_up { 2 } else { 1 };
        assert!(
            calls.iter().all(|c| *c == expected),
            "{outcome:?} rolled up {rolled_up}: {calls:?}"
        );
        // Without a dead invocation there is nothing to repair: only writes roll up.
        assert!(
            !rolled_up || *outcome == Outcome::Written,
            "{outcome:?} rolled something up"
        );
    }
    assert!(costs.contains_key(&(Outcome::Duplicate, false)) && costs.contains_key(&(Outcome::Written, true)));

    // An invocation dies after writing a new task's record: the next delivery of any of its events
    // (here a duplicate of the same one) repairs the rollup in its second call.
    let mut extra = tasks(53, 1, 1).remove(0);
    extra.events.truncate(3);
    let (written, pending) = stack
        .handler
        .write_record(extra.events[2].to_string().as_bytes())
        .await
        .unwrap();
    assert!(written.outcome == Outcome::Written && pending.is_some());
    let before = FaultCounts::get(&faults.requests);
    let repair = deliver(&stack.handler, &extra.events[0]).await.unwrap();
    assert_eq!(
        (repair.outcome, FaultCounts::get(&faults.requests) - before),
        (Outcome::Stale, 2)
    );
    assert!(repair.rolled_up.contains(&"startup"), "{repair:?}");
    let again = deliver(&stack.handler, &extra.events[2]).await.unwrap();
    assert!(
        again.outcome == Outcome::Duplicate && again.rolled_up.is_empty(),
        "{again:?}"
    );
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
        for count in ["tasks", "started", "stopped", "failedToStart", "timestampAnomalies"] {
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
        // The final event only: the rollups get every phase in one transaction.
        deliver(&stack.handler, task.events.last().unwrap()).await.unwrap();
    }
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
    // 3 hours × 2 revisions × 8 slots (7 phases and the counts) at most, however many tasks.
    assert!(
        rollups["read"]["itemsRead"].as_u64().unwrap() <= 48,
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
async fn a_cancelled_transaction_changes_nothing() {
    let stack = TestStack::new().await.unwrap();
    let task = tasks(71, 1, 1).remove(0);
    let last = task.events.last().unwrap();
    deliver(&stack.handler, last).await.unwrap();
    let expected = expected_rollups(std::slice::from_ref(&task));
    let client = task_timing_tests::local::dynamodb_from_env().await.unwrap();
    let before = scan_rollups(&client, &stack.rollup_table).await.unwrap();
    assert!(rollup_violations(&expected, &before).is_empty());
    // The same markers again, as a racing invocation that read the record before the first one's
    // transaction would: the record's condition fails, and the rollup updates after it in the same
    // transaction must not stay applied.
    let record = timing_domain::record::TaskRecord::from_event(
        timing_domain::event::parse_event(last.to_string().as_bytes()).unwrap(),
        90,
    )
    .unwrap();
    let markers = timing_domain::rollup::known_markers(&record);
    let report = stack.store.roll_up(&record, &markers).await.unwrap();
    assert_eq!((report.transactions, report.rolled_up.len()), (1, 0), "{report:?}");
    let after = scan_rollups(&client, &stack.rollup_table).await.unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn summaries_over_days_read_day_items_and_hours_only_at_the_edges() {
    let stack = TestStack::new().await.unwrap();
    // 150 tasks over 60 hours from 2026-11-20T09:00: three UTC days, two of them partial.
    let lifecycles = tasks(81, 150, 60);
    for task in &lifecycles {
        deliver(&stack.handler, task.events.last().unwrap()).await.unwrap();
    }
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
