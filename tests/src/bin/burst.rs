//! The hot-item burst of docs/benchmarks.md: TASKS (10,000) RUNNING events of one family, all created
//! within one minute, through task-events (8 workers) while the stream feeds task-rollups in batches of up
//! to 100 from 4 shards, as deployed, against the local stack. Counts every UpdateItem per rollup item
//! (an SDK interceptor) and every TransactWriteItems, and the lag from a record's write to its rollup.
//!
//!   burst [TASKS] [EVENTS_PER_SECOND]     defaults: 10000, as fast as the local stack takes them
//!
//! With a rate, events are sent in one-second slices of that many: the lag then shows the pipeline's
//! own delay (polling and batches), not moto's queue.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use fastrand::Rng;
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::harness::TestStack;
use task_timing_tests::local::{Error, dynamodb_from_env};
use task_timing_tests::replay::{ReplayPlan, replay};
use task_timing_tests::stream::{PollerFigures, PollerPlan};

/// UpdateItem requests by rollup sort key, and TransactWriteItems requests.
#[derive(Debug, Default, Clone)]
struct Requests(Arc<Mutex<BTreeMap<String, u64>>>);

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = match context.input().downcast_ref::<UpdateItemInput>() {
            Some(update) => update
                .key()
                .and_then(|key| key.get("periodSeries"))
                .and_then(|key| key.as_s().ok())
                .map_or_else(|| "(record)".to_owned(), Clone::clone),
            None => "(other)".to_owned(),
        };
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(key).or_default() += 1;
        }
        Ok(())
    }

    fn read_after_serialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        if target.ends_with("TransactWriteItems")
            && let Ok(mut counts) = self.0.lock()
        {
            *counts.entry("(TransactWriteItems)".to_owned()).or_default() += 1;
        }
        Ok(())
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let tasks = std::env::args()
        .nth(1)
        .map(|n| n.parse::<usize>())
        .transpose()?
        .unwrap_or(10_000);
    let rate = std::env::args().nth(2).map(|n| n.parse::<usize>()).transpose()?;
    let plain = dynamodb_from_env().await?;
    let requests = Requests::default();
    let counted =
        aws_sdk_dynamodb::Client::from_conf(plain.config().to_builder().interceptor(requests.clone()).build());
    let stack = Arc::new(
        TestStack::with_client(counted.clone())
            .await?
            .with_consumer_client(counted),
    );
    let mut rng = Rng::with_seed(10);
    let minute_start = 1_795_165_200_000; // 2026-11-20T09:00:00Z
    let events: Vec<_> = (0..tasks)
        .filter_map(|_| {
            let created = minute_start + rng.i64(0..60_000);
            let task = lifecycle(&mut rng, &Profile::with_index("burst", 1), created);
            task.events
                .into_iter()
                .find(|event| event["detail"]["lastStatus"] == "RUNNING")
        })
        .collect();
    let batches = PollerPlan {
        shards: 4,
        batch_size: 100,
        rollover_every: None,
        die_rate: 0.0,
        duplicate_rate: 0.0,
        bisect: true,
        seed: 11,
    };
    // The mapping polls while the burst is written, as Lambda does (it polls each shard 4 times a second).
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let (stack, done) = (stack.clone(), done.clone());
        tokio::spawn(async move {
            let mut figures = PollerFigures::default();
            loop {
                let finished = done.load(Ordering::Relaxed);
                figures = figures.merged(&stack.drain_with(batches).await?);
                if finished {
                    return Ok::<PollerFigures, Error>(figures);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let started = Instant::now();
    let plan = ReplayPlan {
        workers: 8,
        die_rate: 0.0,
        seed: 12,
    };
    let written = match rate {
        None => replay(stack.handler.clone(), events, plan).await?,
        Some(rate) => {
            let mut total = task_timing_tests::replay::ReplayFigures::default();
            for slice in events.chunks(rate.max(1)) {
                let second = Instant::now();
                total = total.merged(&replay(stack.handler.clone(), slice.to_vec(), plan).await?);
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(second.elapsed())).await;
            }
            total
        }
    };
    let write_seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let consumed = follower.await??;
    let counts = requests.0.lock().map(|counts| counts.clone()).unwrap_or_default();
    let (hottest, hottest_updates) = counts
        .iter()
        .filter(|(key, _)| !key.starts_with('('))
        .max_by_key(|(_, count)| **count)
        .map(|(key, count)| (key.clone(), *count))
        .unwrap_or_default();
    let mut lags = consumed.lags_ms.clone();
    lags.sort_unstable();
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| RUNNING events of one family, created within 60 s, sent {} | {} |",
        rate.map_or("as fast as the local stack takes them".to_owned(), |rate| format!(
            "{rate} a second"
        )),
        written.deliveries
    );
    println!(
        "| written by task-events (8 workers) in | {write_seconds:.1} s ({:.0} events/s) |",
        written.deliveries as f64 / write_seconds
    );
    println!(
        "| task-events UpdateItem requests (records) | {} |",
        counts.get("(record)").copied().unwrap_or(0)
    );
    println!(
        "| TransactWriteItems requests, both functions | {} |",
        counts.get("(TransactWriteItems)").copied().unwrap_or(0)
    );
    println!("| stream records applied | {} |", consumed.records);
    println!(
        "| task-rollups invocations (batches of up to 100, 4 shards) | {} |",
        consumed.invocations
    );
    println!(
        "| rollup UpdateItem requests, all items | {} |",
        counts
            .iter()
            .filter(|(key, _)| !key.starts_with('('))
            .map(|(_, n)| n)
            .sum::<u64>()
    );
    println!("| hottest rollup item, its UpdateItem requests | `{hottest}`: {hottest_updates} |");
    println!(
        "| lag from write to rollup, p50 / p99 / max | {} / {} / {} ms |",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0)
    );
    if counts.contains_key("(TransactWriteItems)") || hottest_updates > consumed.invocations as u64 {
        return Err(
            "a transaction was sent, or the hottest item was updated more often than there were batches".into(),
        );
    }
    Ok(())
}
