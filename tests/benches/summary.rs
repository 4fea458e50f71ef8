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
use task_summary::exact::{Accumulator, group_key};
use task_summary::model::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use task_summary::rollups::{RollupAccumulator, rollup_group_key};
use task_timing_tests::generator::{Profile, lifecycle};
use timing_domain::event::parse_event;
use timing_domain::record::{TIMING_ROW_ATTRIBUTES, TaskRecord, TimingRow};
use timing_domain::request::GroupBy;
use timing_domain::stats::{bootstrap_median_difference, describe, mann_whitney_u};
use timing_domain::timing::Phase;
use timing_dynamodb::record_item::{projected_names, record_form, stored_item};

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
            let mut item = stored_item(&record).unwrap();
            let projected = projected_names(&TIMING_ROW_ATTRIBUTES);
            item.retain(|name, _| projected.contains(&name.as_str()));
            item
        })
        .collect()
}

/// A 30-day family's rollup items as a Query returns them: 30 days × (7 phases + counts), each
/// phase item holding `per_day` log-normal durations around the generator's medians.
fn rollup_items(per_day: usize) -> Vec<HashMap<String, AttributeValue>> {
    use timing_domain::rollup::{Counts, Delta, Granularity, PhaseRollup, Series};
    use timing_dynamodb::rollup_store::new_item;
    let mut rng = fastrand::Rng::with_seed(9);
    let medians = [
        (11.0, 0.25),
        (4.0, 0.35),
        (3.2, 0.3),
        (18.0, 0.25),
        (900.0, 0.8),
        (31.0, 0.15),
        (950.0, 0.75),
    ];
    let mut items = Vec::new();
    for day in 0..30i64 {
        let series = Series {
            family: "orders".into(),
            revision: 6,
            cluster_name: "shop-prod".into(),
            launch_type: Some("FARGATE".into()),
            snapshotter: None,
            origin: None,
            granularity: Granularity::Day,
            period_start: timing_domain::timestamp::Timestamp::from_millis(1_792_800_000_000 + day * 86_400_000),
        };
        let mut deltas = vec![(
            "tasks",
            Delta::Counts(Counts {
                tasks: per_day as u64,
                ..Counts::default()
            }),
        )];
        for (phase, (median, sigma)) in Phase::ALL.iter().zip(medians) {
            let mut rollup = PhaseRollup::default();
            for _ in 0..per_day {
                let normal = (-2.0 * rng.f64().max(1e-12).ln()).sqrt() * (std::f64::consts::TAU * rng.f64()).cos();
                rollup.add_millis((median * (sigma * normal).exp() * 1000.0) as u64);
            }
            deltas.push((phase.name(), Delta::Phase(rollup)));
        }
        for (slot, delta) in deltas {
            items.push(new_item(&(series.clone(), slot), &delta, Some(0)));
        }
    }
    items
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
                    let row: TimingRow = serde_dynamo::from_item(record_form(item)).unwrap();
                    groups
                        .entry(group_key(&row, &[GroupBy::Family, GroupBy::Revision]))
                        .or_default()
                        .add(&row, &Phase::ALL);
                }
                groups
            })
        },
    );
    // 1,000,000 tasks over 30 days: about 33,334 per day.
    let rollups = rollup_items(33_334);
    let attributes: usize = rollups.iter().map(HashMap::len).sum();
    println!("rollup items: {}, attributes: {attributes}", rollups.len());
    group.bench_function(
        "fold: a 30-day family's 240 day rollup items (1M tasks) -> groups by family, revision",
        |b| {
            b.iter(|| {
                let mut groups: BTreeMap<_, RollupAccumulator> = BTreeMap::new();
                for item in &rollups {
                    let item = timing_dynamodb::items::rollup_item_from_item(item).unwrap();
                    groups
                        .entry(rollup_group_key(&item, &[GroupBy::Family, GroupBy::Revision]))
                        .or_default()
                        .add(&item, &Phase::ALL);
                }
                groups
            })
        },
    );
    group.finish();
}

criterion_group!(benches, statistics);
criterion_main!(benches);
