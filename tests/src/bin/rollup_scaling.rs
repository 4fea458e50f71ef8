//! `make bench`: a 30-day single-family summary from the hourly rollups, for windows holding 1k to 1M
//! tasks, beside the exact path where it can still run. For each size: fresh tables; N generated tasks
//! created over 30 days; their rollup deltas computed with the code task-events uses
//! (`rollup::known_markers`, `rollup::deltas`), summed per item and written in bulk as the items
//! task-events' updates would leave (`rollup::new_item`, BatchWriteItem: one UpdateItem per item
//! would hit DynamoDB's 4 KB expression limit for a busy hour's hundreds of buckets, and takes moto
//! minutes); then one summary through the real handler, timed in wall-clock and in this thread's CPU.
//!
//!   rollup_scaling N [N ...]       prints a Markdown table; sizes up to 10,000 also load the records
//!                                  and time the exact path

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};
use shared::event::parse_event;
use shared::record::TaskRecord;
use shared::rollup::{Delta, RollupKey, deltas, known_markers, new_item, rollup_expires_at};
use shared::store::TaskStore;
use shared::timestamp::Timestamp;
use task_summary::request::Limits;
use task_summary::token::TokenKey;
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::local::{Error, batch_put, create_tables, dynamodb_from_env, thread_cpu_nanos, unique_name};

const DAY: i64 = 86_400_000;

// The functions' allocator, so the handler CPU measured here is the deployed one's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// The exact path reads every record; against moto that is only practical up to this size.
const EXACT_UP_TO: usize = 10_000;

struct Generated {
    /// The summed delta of every rollup item, and its expiry (the same for every task of its hour).
    items: BTreeMap<RollupKey, (Delta, Option<i64>)>,
    /// The records, for the exact path (only up to EXACT_UP_TO tasks).
    records: Vec<TaskRecord>,
}

/// Generates the tasks and sums their rollup deltas per item; keeps the records for the exact path.
fn generate(tasks: usize, now: i64) -> Result<Generated, Error> {
    let mut rng = fastrand::Rng::with_seed(tasks as u64);
    let profile = Profile::with_index("orders", 6);
    let mut items: BTreeMap<RollupKey, (Delta, Option<i64>)> = BTreeMap::new();
    let mut records = Vec::new();
    for _ in 0..tasks {
        let created = now - rng.i64(1..30 * DAY);
        let task = lifecycle(&mut rng, &profile, created);
        let last = task.events.last().ok_or("a lifecycle has events")?;
        let record = TaskRecord::from_event(parse_event(last.to_string().as_bytes())?, 90)?;
        for (key, delta) in deltas(&record, &known_markers(&record)) {
            match items.get_mut(&key) {
                Some((existing, _)) => existing.merge(&delta),
                None => {
                    items.insert(key, (delta, rollup_expires_at(&record)));
                }
            }
        }
        if tasks <= EXACT_UP_TO {
            records.push(record);
        }
    }
    Ok(Generated { items, records })
}

async fn timed_summary(handler: &task_summary::Handler, exact: bool) -> Result<(Value, f64, f64), Error> {
    let request = json!({"query": "summary", "family": "orders", "from": "2026-10-22T00:00:00Z",
        "to": "2026-11-22T00:00:00Z", "exact": exact});
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
    println!("| tasks in window | source | items read | Query calls | summary wall time | handler CPU | load |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for tasks in sizes {
        let table = unique_name("bench-rollups");
        let rollup_table = create_tables(&client, &table).await?;
        let started = Instant::now();
        let generated_tasks = generate(tasks, now)?;
        let generated = started.elapsed();
        let store = TaskStore::new(client.clone(), table.clone()).with_rollup_table(rollup_table.clone());
        let started = Instant::now();
        let items = generated_tasks
            .items
            .iter()
            .map(|(key, (delta, expires_at))| new_item(key, delta, *expires_at))
            .collect();
        batch_put(&client, &rollup_table, items).await?;
        let load = format!(
            "{} tasks generated in {:.1} s; {} rollup items batch-written in {:.1} s",
            tasks,
            generated.as_secs_f64(),
            generated_tasks.items.len(),
            started.elapsed().as_secs_f64()
        );
        let config = task_summary::Config {
            table_name: table.clone(),
            rollup_table_name: rollup_table.clone(),
            limits: Limits::default(),
            query_page_size: None,
            token_key: None,
        };
        let handler = task_summary::Handler::new(store, config, TokenKey::random()?);
        let mut runs = vec![("rollups", timed_summary(&handler, false).await?)];
        if !generated_tasks.records.is_empty() {
            let records = generated_tasks
                .records
                .iter()
                .map(serde_dynamo::to_item)
                .collect::<Result<Vec<_>, _>>()?;
            batch_put(&client, &table, records).await?;
            runs.push(("records (exact)", timed_summary(&handler, true).await?));
        }
        for (source, (answer, wall_ms, cpu_ms)) in runs {
            let counted = answer["groups"][0]["tasks"].as_u64().unwrap_or(0);
            if counted != tasks as u64 {
                return Err(format!("{source}: the summary counted {counted} of {tasks} tasks").into());
            }
            println!(
                "| {tasks} | {source} | {} | {} | {wall_ms:.0} ms | {cpu_ms:.1} ms | {load} |",
                answer["read"]["itemsRead"], answer["read"]["queryCalls"]
            );
        }
        client.delete_table().table_name(&table).send().await?;
        client.delete_table().table_name(&rollup_table).send().await?;
    }
    Ok(())
}
