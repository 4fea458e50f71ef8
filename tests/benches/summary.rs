//! task-summary's in-memory work per 100,000 values: the statistics of one phase, the comparison's
//! test and bootstrap, and the fold of 100,000 stored items into groups. `make bench` writes the
//! figures to docs/benchmarks.md.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use aws_sdk_dynamodb::types::AttributeValue;
use criterion::{Criterion, criterion_group, criterion_main};
use shared::event::parse_event;
use shared::record::{TIMING_ROW_ATTRIBUTES, TaskRecord, TimingRow};
use shared::stats::{bootstrap_median_difference, describe, mann_whitney_u};
use shared::timing::Phase;
use task_summary::answer::{Accumulator, group_key};
use task_summary::compare::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use task_summary::request::GroupBy;
use task_timing_tests::generator::{Profile, lifecycle};

const VALUES: usize = 100_000;

fn durations(seed: u64, median: f64) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..VALUES)
        .map(|_| (median * (0.5 + rng.f64()) * 1000.0).round() / 1000.0)
        .collect()
}

/// Items as a Query with the summary's projection returns them.
fn projected_items(count: usize) -> Vec<HashMap<String, AttributeValue>> {
    let mut rng = fastrand::Rng::with_seed(5);
    let profile = Profile::without_index("orders", 5);
    (0..count)
        .map(|i| {
            let task = lifecycle(&mut rng, &profile, 1_795_000_000_000 + i as i64);
            let last = task.events.last().unwrap().to_string();
            let record = TaskRecord::from_event(parse_event(last.as_bytes()).unwrap(), 90).unwrap();
            let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&record).unwrap();
            item.retain(|name, _| TIMING_ROW_ATTRIBUTES.contains(&name.as_str()));
            item
        })
        .collect()
}

fn statistics(c: &mut Criterion) {
    let (baseline, candidate) = (durations(1, 40.0), durations(2, 20.0));
    let mut group = c.benchmark_group("summary");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("describe: 100k values (sort, mean, stddev, percentiles)", |b| {
        b.iter(|| describe(black_box(&baseline)))
    });
    group.bench_function("Mann-Whitney U: 100k vs 100k values", |b| {
        b.iter(|| mann_whitney_u(black_box(&baseline), black_box(&candidate)))
    });
    group.bench_function(
        "bootstrap 95% CI of the median difference: 100k vs 100k, 2000 resamples",
        |b| {
            b.iter(|| {
                bootstrap_median_difference(black_box(&baseline), &candidate, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
            })
        },
    );
    let items = projected_items(VALUES);
    group.bench_function(
        "fold: 100k projected items -> rows -> groups by family, revision",
        |b| {
            b.iter(|| {
                let mut groups: BTreeMap<_, Accumulator> = BTreeMap::new();
                for item in items.iter().cloned() {
                    let row: TimingRow = serde_dynamo::from_item(item).unwrap();
                    groups
                        .entry(group_key(&row, &[GroupBy::Family, GroupBy::Revision]))
                        .or_default()
                        .add(&row, &Phase::ALL);
                }
                groups
            })
        },
    );
    group.finish();
}

criterion_group!(benches, statistics);
criterion_main!(benches);
