//! `make bench`: how a summary's time and reads grow with the tasks in its window, against the local
//! stack. For each size: a fresh table loaded with that many generated records of one family (batch
//! writes), then one `summary` through the real handler, timed in wall-clock and in this thread's CPU.
//!
//!   summary_scaling N [N ...]    prints a Markdown table

use std::time::Instant;

use serde_json::json;
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::local::{
    Error, batch_put, create_tasks_table, dynamodb_from_env, thread_cpu_nanos, unique_name,
};
use timing_domain::event::parse_event;
use timing_domain::record::TaskRecord;
use timing_domain::request::Limits;
use timing_domain::timestamp::Timestamp;
use timing_domain::token::TokenKey;
use timing_dynamodb::TaskStore;

const DAY: i64 = 86_400_000;

// The functions' allocator, so the handler CPU measured here is the deployed one's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn load(client: &aws_sdk_dynamodb::Client, table: &str, tasks: usize, now: i64) -> Result<(), Error> {
    let mut rng = fastrand::Rng::with_seed(tasks as u64);
    let profiles = [Profile::without_index("orders", 5), Profile::with_index("orders", 6)];
    let mut items = Vec::with_capacity(tasks);
    for index in 0..tasks {
        let created = now - rng.i64(DAY..30 * DAY);
        let task = lifecycle(&mut rng, &profiles[index % 2], created);
        let last = task.events.last().ok_or("a lifecycle has events")?;
        let record = TaskRecord::from_event(parse_event(last.to_string().as_bytes())?, 90)?;
        items.push(timing_dynamodb::record_item::stored_item(&record)?);
    }
    batch_put(client, table, items).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| "usage: summary_scaling N [N ...]")?;
    let client = dynamodb_from_env().await?;
    let now = Timestamp::parse("2026-11-22T00:00:00Z")?.millis();
    println!("| tasks in window | items read | Query calls | load (batch writes) | summary wall time | handler CPU |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for tasks in sizes {
        let table = unique_name("bench-summary");
        create_tasks_table(&client, &table).await?;
        let started = Instant::now();
        load(&client, &table, tasks, now).await?;
        let load_time = started.elapsed();
        let config = task_summary::Config {
            metrics_namespace: timing_domain::metrics::DEFAULT_NAMESPACE.to_owned(),
            table_name: table.clone(),
            rollup_table_name: format!("{table}-rollups"),
            limits: Limits::default(),
            query_page_size: None,
            token_key: None,
        };
        let key = TokenKey::random()?;
        let handler = task_summary::Handler::new(TaskStore::new(client.clone(), table.clone()), config, key);
        let request = json!({"query": "summary", "family": "orders", "from": "2026-10-22T00:00:00Z", "to": "2026-11-22T00:00:00Z", "exact": true});
        let (cpu_before, started) = (thread_cpu_nanos(), Instant::now());
        let answer = handler.handle(request.to_string().as_bytes()).await?;
        let (wall, cpu) = (started.elapsed(), thread_cpu_nanos() - cpu_before);
        let answer = serde_json::to_value(answer)?;
        let matched = answer["read"]["itemsMatched"].as_u64().unwrap_or(0);
        if matched != tasks as u64 {
            return Err(format!("the summary matched {matched} of {tasks} tasks").into());
        }
        println!(
            "| {tasks} | {} | {} | {:.1} s | {:.3} s | {:.1} ms |",
            answer["read"]["itemsRead"],
            answer["read"]["queryCalls"],
            load_time.as_secs_f64(),
            wall.as_secs_f64(),
            cpu as f64 / 1e6
        );
        client.delete_table().table_name(&table).send().await?;
    }
    Ok(())
}
