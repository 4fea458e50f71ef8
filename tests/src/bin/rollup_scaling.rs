//! `make bench`: a single-family summary from the rollups over a month, for windows holding 1k to 1M
//! tasks, beside the exact path where it can still run. For each size: fresh tables; N generated tasks
//! created over the 31 days before 2026-11-22; their rollup deltas computed with the code task-events uses
//! (`rollup::known_markers`, `rollup::deltas`), summed per item and written in bulk as the items
//! task-events' updates would leave (`rollup::new_item`, BatchWriteItem: one UpdateItem per item
//! would hit DynamoDB's 4 KB expression limit for a busy hour's hundreds of buckets, and takes moto
//! minutes); then summaries through the real handler, timed in wall-clock and in this thread's CPU:
//! those 31 whole days (day items only), and 30 days from 12:30 to 12:30 (day items plus the hour
//! items of the partial days at both ends).
//!
//!   rollup_scaling N [N ...]       prints a Markdown table; sizes up to 10,000 also load the records
//!                                  and time the exact path

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::local::{Error, batch_put, create_tables, dynamodb_from_env, thread_cpu_nanos, unique_name};
use task_timing_tests::sizing::item_bytes;
use timing_domain::event::parse_event;
use timing_domain::record::TaskRecord;
use timing_domain::request::Limits;
use timing_domain::rollup::{
    COUNTS_SLOT, Delta, Granularity, RollupKey, deltas, known_markers, rollup_retention_seconds,
};
use timing_domain::timestamp::Timestamp;
use timing_domain::token::TokenKey;
use timing_dynamodb::TaskStore;
use timing_dynamodb::keys::period_attribute;
use timing_dynamodb::rollup_store::new_item;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

// The functions' allocator, so the handler CPU measured here is the deployed one's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// The exact path reads every record; against moto that is only practical up to this size.
const EXACT_UP_TO: usize = 10_000;

struct Generated {
    /// The summed delta of every rollup item, and its retention (the same for every task).
    items: BTreeMap<RollupKey, (Delta, Option<i64>)>,
    /// The records, for the exact path (only up to EXACT_UP_TO tasks).
    records: Vec<TaskRecord>,
    /// Every task's createdAt, to count the tasks of a window independently of the summary.
    created: Vec<i64>,
}

/// Generates the tasks and sums their rollup deltas per item; keeps the records for the exact path.
fn generate(tasks: usize, now: i64) -> Result<Generated, Error> {
    let mut rng = fastrand::Rng::with_seed(tasks as u64);
    let profile = Profile::with_index("orders", 6);
    let mut items: BTreeMap<RollupKey, (Delta, Option<i64>)> = BTreeMap::new();
    let mut records = Vec::new();
    let mut created_at = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let created = now - rng.i64(1..31 * DAY);
        created_at.push(created);
        let task = lifecycle(&mut rng, &profile, created);
        let last = task.events.last().ok_or("a lifecycle has events")?;
        let record = TaskRecord::from_event(parse_event(last.to_string().as_bytes())?, 90)?;
        for (key, delta) in deltas(&record, &known_markers(&record)) {
            match items.get_mut(&key) {
                Some((existing, _)) => existing.merge(&delta),
                None => {
                    items.insert(key, (delta, rollup_retention_seconds(&record)));
                }
            }
        }
        if tasks <= EXACT_UP_TO {
            records.push(record);
        }
    }
    Ok(Generated {
        items,
        records,
        created: created_at,
    })
}

/// Mean and largest size of the phase items, by granularity: "hour phase items mean 612 B (max 1,234 B); …".
fn item_sizes(keys: &BTreeMap<RollupKey, (Delta, Option<i64>)>, items: &[HashMap<String, AttributeValue>]) -> String {
    let mut by_granularity: BTreeMap<Granularity, Vec<usize>> = BTreeMap::new();
    for (((series, slot), _), item) in keys.iter().zip(items) {
        if *slot != COUNTS_SLOT {
            by_granularity
                .entry(series.granularity)
                .or_default()
                .push(item_bytes(item));
        }
    }
    let parts: Vec<String> = by_granularity
        .iter()
        .map(|(granularity, sizes)| {
            let mean = sizes.iter().sum::<usize>() / sizes.len().max(1);
            let max = sizes.iter().max().copied().unwrap_or(0);
            format!(
                "{} phase items mean {mean} B (max {max} B)",
                period_attribute(*granularity)
            )
        })
        .collect();
    parts.join(", ")
}

/// The windows summarised: (what the table calls it, from, to).
const WINDOWS: [(&str, &str, &str); 2] = [
    ("31 whole days", "2026-10-22T00:00:00Z", "2026-11-22T00:00:00Z"),
    (
        "30 days, 12:30 to 12:30",
        "2026-10-22T12:30:00Z",
        "2026-11-21T12:30:00Z",
    ),
];

async fn timed_summary(
    handler: &task_summary::Handler,
    (from, to): (&str, &str),
    exact: bool,
) -> Result<(Value, f64, f64), Error> {
    let request = json!({"query": "summary", "family": "orders", "from": from, "to": to, "exact": exact});
    let (cpu_before, started) = (thread_cpu_nanos(), Instant::now());
    let answer = handler.handle(request.to_string().as_bytes()).await?;
    let (wall, cpu) = (started.elapsed(), thread_cpu_nanos() - cpu_before);
    Ok((
        serde_json::to_value(answer)?,
        wall.as_secs_f64() * 1e3,
        cpu as f64 / 1e6,
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| "usage: rollup_scaling N [N ...]")?;
    let client = dynamodb_from_env().await?;
    let now = Timestamp::parse("2026-11-22T00:00:00Z")?.millis();
    println!(
        "| tasks | window | source | tasks in window | items read | Query calls | summary wall time | handler CPU | load |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---|");
    for tasks in sizes {
        let table = unique_name("bench-rollups");
        let rollup_table = create_tables(&client, &table).await?;
        let started = Instant::now();
        let generated_tasks = generate(tasks, now)?;
        let generated = started.elapsed();
        let store = TaskStore::new(client.clone(), table.clone()).with_rollup_table(rollup_table.clone());
        let started = Instant::now();
        let items: Vec<_> = generated_tasks
            .items
            .iter()
            .map(|(key, (delta, retention))| new_item(key, delta, *retention))
            .collect();
        let sizes = item_sizes(&generated_tasks.items, &items);
        batch_put(&client, &rollup_table, items).await?;
        let load = format!(
            "{} tasks generated in {:.1} s; {} rollup items batch-written in {:.1} s; {sizes}",
            tasks,
            generated.as_secs_f64(),
            generated_tasks.items.len(),
            started.elapsed().as_secs_f64()
        );
        let config = task_summary::Config {
            metrics_namespace: timing_domain::metrics::DEFAULT_NAMESPACE.to_owned(),
            table_name: table.clone(),
            rollup_table_name: rollup_table.clone(),
            limits: Limits::default(),
            query_page_size: None,
            token_key: None,
        };
        let handler = task_summary::Handler::new(store, config, TokenKey::random()?);
        let mut runs = Vec::new();
        for (name, from, to) in WINDOWS {
            runs.push((
                name,
                "rollups",
                (from, to),
                timed_summary(&handler, (from, to), false).await?,
            ));
        }
        if !generated_tasks.records.is_empty() {
            let records = generated_tasks
                .records
                .iter()
                .map(timing_dynamodb::record_item::stored_item)
                .collect::<Result<Vec<_>, _>>()?;
            batch_put(&client, &table, records).await?;
            let (name, from, to) = WINDOWS[0];
            runs.push((
                name,
                "records (exact)",
                (from, to),
                timed_summary(&handler, (from, to), true).await?,
            ));
        }
        for (window, source, (from, to), (answer, wall_ms, cpu_ms)) in runs {
            // Rollups answer for the whole hours around the window (the exact runs are on whole days).
            let (from, to) = (Timestamp::parse(from)?.millis(), Timestamp::parse(to)?.millis());
            let (from, to) = (from.div_euclid(HOUR) * HOUR, (to + HOUR - 1).div_euclid(HOUR) * HOUR);
            let in_window = generated_tasks
                .created
                .iter()
                .filter(|created| (from..to).contains(*created))
                .count() as u64;
            let counted = answer["groups"][0]["tasks"].as_u64().unwrap_or(0);
            if counted != in_window {
                return Err(format!("{window}, {source}: the summary counted {counted} of {in_window} tasks").into());
            }
            println!(
                "| {tasks} | {window} | {source} | {in_window} | {} | {} | {wall_ms:.0} ms | {cpu_ms:.1} ms | {load} |",
                answer["read"]["itemsRead"], answer["read"]["queryCalls"]
            );
        }
        client.delete_table().table_name(&table).send().await?;
        client.delete_table().table_name(&rollup_table).send().await?;
    }
    Ok(())
}
