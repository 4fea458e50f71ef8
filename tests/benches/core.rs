//! CPU per event of the pure core: parse, record and timings, ledger, the DynamoDB write request,
//! and the EMF log line. `make bench` writes the figures to docs/benchmarks.md.

use std::collections::HashMap;
use std::hint::black_box;

// The allocator task-events runs with (functions/task-events/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use aws_sdk_dynamodb::types::AttributeValue;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use task_timing_tests::generator::{Profile, lifecycle};
use timing_domain::event::parse_event;
use timing_domain::metrics::{DEFAULT_NAMESPACE, emf_document, ledger_keys};
use timing_domain::record::TaskRecord;
use timing_dynamodb::task_store::versioned_update;

/// A STOPPED Fargate event: the largest of a lifecycle, and the one that makes every phase known.
fn stopped_event_bytes() -> Vec<u8> {
    let task = lifecycle(
        &mut fastrand::Rng::with_seed(1),
        &Profile::without_index("orders", 5),
        1_795_000_000_000,
    );
    serde_json::to_vec(&task.events.last().cloned().unwrap_or_default()).unwrap_or_default()
}

/// Everything task-events does for one event except the network call.
/// As deployed: the template sets SLOW_STARTUP_SECONDS (default 60).
const SLOW_STARTUP: Option<f64> = Some(60.0);

fn process(bytes: &[u8]) -> (usize, usize) {
    let event = parse_event(bytes).unwrap();
    let record = TaskRecord::from_event(event, 90).unwrap();
    let ledger = ledger_keys(&record);
    let update = versioned_update(&record, &ledger, "0123456789abcdef").unwrap();
    let line = emf_document(DEFAULT_NAMESPACE, &record, &ledger, 0, SLOW_STARTUP)
        .map(|d| d.to_line())
        .unwrap_or_default();
    (update.expression.values.len(), line.len())
}

fn core(c: &mut Criterion) {
    let bytes = stopped_event_bytes();
    let event = parse_event(&bytes).unwrap();
    let record = TaskRecord::from_event(event.clone(), 90).unwrap();
    let ledger = ledger_keys(&record);
    c.bench_function("pure core per event", |b| b.iter(|| process(black_box(&bytes))));
    c.bench_function("stage: parse (JSON bytes -> typed event)", |b| {
        b.iter(|| parse_event(black_box(&bytes)).unwrap())
    });
    c.bench_function("stage: record and timings", |b| {
        b.iter_batched(
            || event.clone(),
            |event| TaskRecord::from_event(event, 90).unwrap(),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("stage: ledger keys", |b| b.iter(|| ledger_keys(black_box(&record))));
    c.bench_function("stage: serde_dynamo item alone", |b| {
        b.iter(|| serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(black_box(&record)).unwrap())
    });
    c.bench_function("stage: write request (item + expressions)", |b| {
        b.iter(|| versioned_update(black_box(&record), &ledger, "0123456789abcdef").unwrap())
    });
    c.bench_function("stage: EMF line", |b| {
        b.iter(|| emf_document(DEFAULT_NAMESPACE, black_box(&record), &ledger, 0, SLOW_STARTUP).map(|d| d.to_line()))
    });
    println!("event size: {} bytes", bytes.len());
}

criterion_group!(benches, core);
criterion_main!(benches);
