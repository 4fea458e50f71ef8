//! task-import's throughput against the local stack: `import_bench TASKS` writes TASKS generated lifecycles
//! (every state change, over the last 12 days) into a log group of moto's, then imports it with the same
//! `Importer` the CLI runs (pages of 1,000, metrics into a second group) and prints the progress lines.
//! `cargo run --release -p task-timing-tests --bin import_bench 2000 16` (tasks, messages in flight) under
//! `tools/stack.sh run`.

use fastrand::Rng;
use task_events::{Config, Handler};
use task_import::{CollectingSink, ImportOptions, Importer, MetricsTarget};
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::local::{Error, create_tables, dynamodb_from_env, unique_name};
use task_timing_tests::log_group::{event_millis, logs_from_env, write_group};
use timing_dynamodb::TaskStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let tasks: i64 = std::env::args().nth(1).map_or(Ok(2000), |n| n.parse())?;
    let concurrency: usize = std::env::args().nth(2).map_or(Ok(16), |n| n.parse())?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut rng = Rng::with_seed(7);
    let mut messages = Vec::new();
    for index in 0..tasks {
        let created = now - 12 * 86_400_000 + index * (11 * 86_400_000 / tasks.max(1));
        let task = lifecycle(&mut rng, &Profile::without_index("bench-web", 1), created);
        messages.extend(task.events.iter().map(|e| (event_millis(e), e.to_string())));
    }
    let logs = logs_from_env().await?;
    let group = unique_name("/ecs/cluster/events/bench");
    write_group(&logs, &group, &messages, 4).await?;
    let metrics_group = unique_name("/aws/lambda/bench-task-events");
    logs.create_log_group().log_group_name(&metrics_group).send().await?;
    let client = dynamodb_from_env().await?;
    let table = unique_name("bench-tasks");
    create_tables(&client, &table).await?;
    let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| table.clone()))?;
    let handler = Handler::new(TaskStore::new(client, table.clone()), config, CollectingSink::default());
    let importer = Importer {
        logs: &logs,
        handler: &handler,
        options: ImportOptions {
            log_group: group,
            from: None,
            to: None,
            page_size: 1000,
            metrics: MetricsTarget::LogGroup {
                group: metrics_group,
                stream: "bench".into(),
            },
            checkpoint: None,
            rejected: None,
            max_pages: None,
            metrics_cutoff: task_import::metrics_out::cutoff(now),
            concurrency,
        },
    };
    println!(
        "{tasks} tasks, {} events in the log group, {concurrency} in flight",
        messages.len()
    );
    let started = std::time::Instant::now();
    let finished = importer
        .run(|counts, elapsed| eprintln!("{}", counts.line(elapsed)))
        .await?;
    println!(
        "imported in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        finished.counts.line(started.elapsed())
    );
    Ok(())
}
