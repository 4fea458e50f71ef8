//! Replays event streams through the real task-events handler with concurrent workers, and checks
//! the rollups against the generator's truth. Used by the rollup tests and `make loadtest`.
//!
//! An invocation may "die" after its write, before it answers: Lambda sees a failure. A dead invocation,
//! or one that returns an error, is retried as Lambda's asynchronous invocation retries it: the event goes
//! back a few deliveries later, up to [`LAMBDA_RETRIES`] times, and then to the dead letters ([`redrive`]
//! sends those again). The rollups follow through the stream (`TestStack::drain`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use task_events::{Handler, MemorySink, Outcome};
use timing_domain::rollup::{COUNTS_SLOT, Counts, Delta, PhaseRollup, RollupItem};
use timing_domain::timing::Phase;

use crate::generator::Lifecycle;
use crate::local::Error;

/// Lambda retries a failed asynchronous invocation twice (the default and the maximum).
pub const LAMBDA_RETRIES: u32 = 2;

#[derive(Debug, Clone, Copy)]
pub struct ReplayPlan {
    pub workers: usize,
    /// Share of invocations that die after the record write, before they answer.
    pub die_rate: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ReplayFigures {
    pub deliveries: usize,
    pub invocations: usize,
    pub deaths: usize,
    /// Invocations that returned an error (the SDK's own retries exhausted).
    pub failed: usize,
    /// Deliveries Lambda retried after a death or an error.
    pub lambda_retries: usize,
    /// Events whose invocation failed 1 + LAMBDA_RETRIES times: the dead-letter queue.
    pub dead_letters: Vec<Value>,
    /// Record writes whose answer was lost and that a retry found landed (metrics emitted then).
    pub recovered_writes: usize,
    pub written: usize,
    pub duplicate: usize,
    pub stale: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for ReplayFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} deliveries, {} invocations ({} died after writing, {} failed; {} Lambda retries, \
             {} dead letters); {} written ({} recovered after a lost answer), {} duplicate, {} stale; \
             {:.1} s ({:.0} invocations/s)",
            self.deliveries,
            self.invocations,
            self.deaths,
            self.failed,
            self.lambda_retries,
            self.dead_letters.len(),
            self.written,
            self.recovered_writes,
            self.duplicate,
            self.stale,
            self.elapsed.as_secs_f64(),
            self.invocations as f64 / self.elapsed.as_secs_f64().max(1e-9)
        )
    }
}

impl ReplayFigures {
    /// These figures and `other`'s together (deliveries and elapsed added too).
    pub fn merged(&self, other: &ReplayFigures) -> ReplayFigures {
        let mut dead_letters = self.dead_letters.clone();
        dead_letters.extend(other.dead_letters.iter().cloned());
        ReplayFigures {
            deliveries: self.deliveries + other.deliveries,
            invocations: self.invocations + other.invocations,
            deaths: self.deaths + other.deaths,
            failed: self.failed + other.failed,
            lambda_retries: self.lambda_retries + other.lambda_retries,
            dead_letters,
            recovered_writes: self.recovered_writes + other.recovered_writes,
            written: self.written + other.written,
            duplicate: self.duplicate + other.duplicate,
            stale: self.stale + other.stale,
            elapsed: self.elapsed + other.elapsed,
        }
    }
}

/// Delivers `events` (in order, from a shared queue) through `workers` concurrent invocations.
pub async fn replay(
    handler: Arc<Handler<MemorySink>>,
    events: Vec<Value>,
    plan: ReplayPlan,
) -> Result<ReplayFigures, Error> {
    let started = Instant::now();
    let deliveries = events.len();
    let queue = Arc::new(Mutex::new(
        events
            .into_iter()
            .map(|event| (event, 0))
            .collect::<VecDeque<(Value, u32)>>(),
    ));
    let mut workers = Vec::new();
    for worker in 0..plan.workers {
        let (handler, queue) = (handler.clone(), queue.clone());
        let mut rng = fastrand::Rng::with_seed(plan.seed.wrapping_add(worker as u64));
        workers.push(tokio::spawn(async move {
            let mut figures = ReplayFigures::default();
            loop {
                let next = queue.lock().map_err(|_| "queue poisoned")?.pop_front();
                let Some((event, failures)) = next else { break };
                let payload = event.to_string();
                figures.invocations += 1;
                let dies = rng.f64() < plan.die_rate;
                let result = handler
                    .handle(payload.as_bytes())
                    .await
                    .map(|response| (!dies).then_some(response));
                let response = match result {
                    Ok(Some(response)) => Some(response),
                    Ok(None) => {
                        figures.deaths += 1;
                        None
                    }
                    Err(_) => {
                        figures.failed += 1;
                        None
                    }
                };
                let Some(response) = response else {
                    if failures < LAMBDA_RETRIES {
                        figures.lambda_retries += 1;
                        // Lambda retries after a minute or two, while newer events keep coming: the
                        // retry lands a few deliveries later, not after the whole stream.
                        let mut queue = queue.lock().map_err(|_| "queue poisoned")?;
                        let position = rng.usize(0..=plan.workers * 4).min(queue.len());
                        queue.insert(position, (event, failures + 1));
                    } else {
                        figures.dead_letters.push(event);
                    }
                    continue;
                };
                figures.recovered_writes += usize::from(response.recovered_write);
                match response.outcome {
                    Outcome::Written => figures.written += 1,
                    Outcome::Duplicate => figures.duplicate += 1,
                    Outcome::Stale => figures.stale += 1,
                }
            }
            Ok::<ReplayFigures, Error>(figures)
        }));
    }
    let mut total = ReplayFigures {
        deliveries,
        ..ReplayFigures::default()
    };
    for worker in workers {
        let figures = worker.await??;
        total.invocations += figures.invocations;
        total.deaths += figures.deaths;
        total.failed += figures.failed;
        total.lambda_retries += figures.lambda_retries;
        total.dead_letters.extend(figures.dead_letters);
        total.recovered_writes += figures.recovered_writes;
        total.written += figures.written;
        total.duplicate += figures.duplicate;
        total.stale += figures.stale;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Sends the dead letters of `figures` again with no invocation dying, as an operator redrives the
/// dead-letter queue once the faults have passed.
pub async fn redrive(
    handler: Arc<Handler<MemorySink>>,
    figures: &ReplayFigures,
    plan: ReplayPlan,
) -> Result<ReplayFigures, Error> {
    let plan = ReplayPlan { die_rate: 0.0, ..plan };
    replay(handler, figures.dead_letters.clone(), plan).await
}

/// What the rollup table must hold, computed from the generator's truth and the raw event JSON
/// (not from the record code): per sort key, the counts or the phase's count, sum and sum of squares.
pub fn expected_rollups(lifecycles: &[Lifecycle]) -> BTreeMap<(String, String), Delta> {
    let mut expected: BTreeMap<(String, String), Delta> = BTreeMap::new();
    for task in lifecycles {
        let Some(last) = task.events.iter().max_by_key(|e| e["detail"]["version"].as_u64()) else {
            continue;
        };
        let detail = &last["detail"];
        let text = |name: &str| detail[name].as_str().unwrap_or_default().to_owned();
        let revision = text("taskDefinitionArn")
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let cluster = text("clusterArn").rsplit('/').next().unwrap_or_default().to_owned();
        let created = chrono::DateTime::parse_from_rfc3339(&text("createdAt")).map(|t| t.to_utc());
        let Ok(created) = created else { continue };
        // Every task is in its hour's items and in its (UTC) day's.
        let periods = [
            created.format("%Y-%m-%dT%H").to_string(),
            created.format("D#%Y-%m-%d").to_string(),
        ];
        // Every record this code writes keys its rollups by the task ARN's account and region.
        let arn: Vec<&str> = task.truth.task_arn.split(':').collect();
        let (region, account) = (arn[3], arn[4]);
        let keys = |slot: &str| {
            let launch_type = detail["launchType"].as_str().unwrap_or("-");
            periods.clone().map(|period| {
                (
                    task.truth.family.clone(),
                    format!("{period}#{slot}#{revision}#{cluster}#{launch_type}#{account}:{region}"),
                )
            })
        };
        let counts = Counts {
            tasks: 1,
            started: u64::from(detail.get("startedAt").is_some()),
            stopped: u64::from(detail.get("stoppedAt").is_some()),
            failed_to_start: u64::from(task.truth.failed_to_start),
            timestamp_anomalies: 0,
            not_ready: 0,
        };
        let mut deltas = vec![(COUNTS_SLOT, Delta::Counts(counts))];
        for phase in Phase::FROM_EVENTS {
            if let Some(millis) = task.truth.phase_millis(phase) {
                let millis = u64::try_from(millis).unwrap_or(0);
                let rollup = PhaseRollup {
                    count: 1,
                    sum_ms: u128::from(millis),
                    sum_squares_ms: u128::from(millis) * u128::from(millis),
                    histogram: Default::default(),
                };
                deltas.push((phase.name(), Delta::Phase(rollup)));
            }
        }
        for (slot, delta) in deltas {
            for key in keys(slot) {
                match expected.get_mut(&key) {
                    Some(existing) => existing.merge(&delta),
                    None => {
                        expected.insert(key, delta.clone());
                    }
                }
            }
        }
    }
    expected
}

/// Every item of the rollup table (a Scan, so nothing the summary's Query might skip is missed).
pub async fn scan_rollups(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<BTreeMap<(String, String), RollupItem>, Error> {
    let mut items = BTreeMap::new();
    let mut pages = client
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item?;
        // The family index (one item per day) is not a rollup.
        if item.get("family").and_then(|f| f.as_s().ok()).map(String::as_str)
            == Some(timing_dynamodb::family_index::FAMILY_INDEX_PARTITION)
        {
            continue;
        }
        let sort_key = match item.get("periodSeries") {
            Some(AttributeValue::S(key)) => key.clone(),
            _ => return Err("a rollup item without periodSeries".into()),
        };
        let parsed = timing_dynamodb::items::rollup_item_from_item(&item)?;
        items.insert((parsed.family.clone(), sort_key), parsed);
    }
    Ok(items)
}

/// Differences between the rollups and the truth: lost or doubled counts, wrong sums, histograms
/// whose total is not the count. Empty when the rollups are exact.
pub fn rollup_violations(
    expected: &BTreeMap<(String, String), Delta>,
    actual: &BTreeMap<(String, String), RollupItem>,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (key, want) in expected {
        let Some(item) = actual.get(key) else {
            violations.push(format!("{key:?}: missing"));
            continue;
        };
        match (want, &item.delta) {
            (Delta::Counts(want), Delta::Counts(got)) if want != got => {
                violations.push(format!("{key:?}: counts {got:?}, expected {want:?}"));
            }
            (Delta::Phase(want), Delta::Phase(got)) => {
                if (got.count, got.sum_ms, got.sum_squares_ms) != (want.count, want.sum_ms, want.sum_squares_ms) {
                    violations.push(format!(
                        "{key:?}: count {} sum {} sumSquares {}, expected {} {} {}",
                        got.count, got.sum_ms, got.sum_squares_ms, want.count, want.sum_ms, want.sum_squares_ms
                    ));
                }
                if got.histogram.count() != got.count {
                    violations.push(format!(
                        "{key:?}: histogram holds {}, count {}",
                        got.histogram.count(),
                        got.count
                    ));
                }
            }
            (Delta::Counts(_), Delta::Counts(_)) => {}
            _ => violations.push(format!("{key:?}: wrong kind of item")),
        }
    }
    // An item every task moved out of (a series change) holds zeros: empty, not unexpected.
    let holds_something = |item: &RollupItem| match &item.delta {
        Delta::Counts(counts) => *counts != Counts::default(),
        Delta::Phase(rollup) => rollup.count > 0 || rollup.histogram.count() > 0,
    };
    for (key, item) in actual.iter().filter(|(key, _)| !expected.contains_key(*key)) {
        if holds_something(item) {
            violations.push(format!("{key:?}: unexpected item"));
        }
    }
    violations
}
