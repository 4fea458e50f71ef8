//! Counts the DynamoDB requests task-events sends per event, by outcome, and those task-rollups sends per
//! batch of the stream, on the local stack (an SDK interceptor counts every attempt, retries included).
//! Used by `make bench`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use fastrand::Rng;
use task_events::{Config, Handler, MemorySink, Outcome};
use task_timing_tests::generator::{Profile, deliveries, lifecycle};
use task_timing_tests::local::{Error, create_tables, dynamodb_from_env, unique_name};
use task_timing_tests::sizing::item_bytes;
use task_timing_tests::stream::{Consumer, PollerPlan, StreamPoller};
use timing_dynamodb::TaskStore;

#[derive(Debug, Default, Clone)]
struct RequestCounter(Arc<AtomicUsize>);

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }
    fn modify_before_transmit(
        &self,
        _: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let plain = dynamodb_from_env().await?;
    let table = unique_name("bench-roundtrips");
    let rollup_table = create_tables(&plain, &table).await?;
    let counter = RequestCounter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(plain.config().to_builder().interceptor(counter.clone()).build());
    let config = Config {
        table_name: table.clone(),
        metrics_namespace: "Bench".into(),
        retention_days: 90,
        slow_startup_seconds: None,
        lazy_loading_families: Vec::new(),
    };
    let store = TaskStore::new(client, table.clone()).with_rollup_table(rollup_table);
    let handler = Handler::new(store.clone(), config, MemorySink::default());

    let mut rng = Rng::with_seed(5);
    let tasks: Vec<_> = (0..50)
        .map(|i| lifecycle(&mut rng, &Profile::with_index("bench", 1), 1_795_000_000_000 + i * 1000))
        .collect();
    let stream = deliveries(&mut rng, &tasks, 3, true);
    // outcome -> (deliveries, requests)
    let mut by_kind: std::collections::BTreeMap<Outcome, (usize, usize)> = Default::default();
    let deliveries_total = stream.len();
    for event in stream {
        let before = counter.0.load(Ordering::Relaxed);
        let response = handler.handle(event.to_string().as_bytes()).await?;
        let calls = counter.0.load(Ordering::Relaxed) - before;
        let entry = by_kind.entry(response.outcome).or_default();
        entry.0 += 1;
        entry.1 += calls;
    }
    println!("| delivery | events | DynamoDB requests | requests per event |");
    println!("|---|---:|---:|---:|");
    let (mut all_events, mut all_calls) = (0, 0);
    for (outcome, (events, calls)) in by_kind {
        println!(
            "| {} | {events} | {calls} | {:.2} |",
            outcome.as_str(),
            calls as f64 / events as f64
        );
        all_events += events;
        all_calls += calls;
    }
    println!(
        "| every delivery | {all_events} | {all_calls} | {:.2} |",
        all_calls as f64 / all_events.max(1) as f64
    );
    // The consumer's side: the whole stream of those deliveries, in batches of up to 100 as deployed.
    let before = counter.0.load(Ordering::Relaxed);
    let consumer = Consumer::InProcess(Arc::new(task_rollups::Handler::new(store)));
    let mut plan = PollerPlan::PLAIN;
    plan.seed = 7;
    let mut poller = StreamPoller::open(&plain, &table, consumer, plan).await?;
    let started = std::time::Instant::now();
    let figures = poller.drain().await?;
    let drain_ms = started.elapsed().as_secs_f64() * 1000.0;
    let calls = counter.0.load(Ordering::Relaxed) - before;
    println!();
    println!(
        "| task-rollups | stream records | batches | UpdateItem requests | requests per delivery | ms per batch (reading moto's stream included) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| 50 tasks of one family-hour | {} | {} | {calls} | {:.2} | {:.1} |",
        figures.records,
        figures.invocations,
        calls as f64 / deliveries_total.max(1) as f64,
        drain_ms / figures.invocations.max(1) as f64
    );
    print_sizes(&plain, &table, handler.sink(), deliveries_total).await
}

/// What the cost per event rests on: the records' sizes (write units per record write, the index's
/// included) and the bytes of EMF each delivery logs.
async fn print_sizes(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    sink: &MemorySink,
    deliveries: usize,
) -> Result<(), Error> {
    let mut sizes = Vec::new();
    let mut pages = client.scan().table_name(table).into_paginator().items().send();
    while let Some(item) = pages.next().await {
        sizes.push(item_bytes(&item?));
    }
    let lines = sink.0.lock().map(|lines| lines.clone()).unwrap_or_default();
    let emf_bytes: usize = lines.iter().map(|line| line.len() + 1).sum();
    println!();
    println!("| what | figure |");
    println!("|---|---:|");
    println!("| records | {} |", sizes.len());
    println!(
        "| record size, mean / max (DynamoDB's rules) | {} B / {} B |",
        sizes.iter().sum::<usize>() / sizes.len().max(1),
        sizes.iter().max().copied().unwrap_or(0)
    );
    println!("| EMF lines / deliveries | {} / {deliveries} |", lines.len());
    println!(
        "| EMF bytes per line, mean / max (with newline) | {} B / {} B |",
        emf_bytes / lines.len().max(1),
        lines.iter().map(|l| l.len() + 1).max().unwrap_or(0)
    );
    println!(
        "| EMF bytes per delivery | {:.0} B |",
        emf_bytes as f64 / deliveries.max(1) as f64
    );
    Ok(())
}
