use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use task_events::{Config, Handler};
use task_import::{CollectingSink, ImportOptions, Importer, MetricsTarget};
use timing_domain::timestamp::Timestamp;
use timing_dynamodb::TaskStore;

/// Imports the ECS task state change events a CloudWatch Logs group keeps (one EventBridge event JSON per
/// message, as the SOCI toolbox's ecs-task-events sample writes them) through task-events' own parse and
/// record path. The table and the rest of task-events' configuration come from the same environment
/// variables (TABLE_NAME, RETENTION_DAYS, METRICS_NAMESPACE, ...).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The log group to read, e.g. /ecs/cluster/events/prod.
    #[arg(long)]
    log_group: String,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    from: Option<i64>,
    /// Only events before this time.
    #[arg(long, value_parser = parse_time)]
    to: Option<i64>,
    /// Where the metrics of events CloudWatch still accepts (14 days) go, with PutLogEvents: the stack's
    /// task-events log group, /aws/lambda/<stack>-task-events, is the usual one.
    #[arg(long, required_unless_present = "no_metrics")]
    metrics_log_group: Option<String>,
    /// Send no metrics (the records and the rollups still get every event).
    #[arg(long)]
    no_metrics: bool,
    /// Saved after every page; an import given the same file (and options) resumes where it stopped.
    #[arg(long, default_value = "task-import.checkpoint.json")]
    checkpoint: PathBuf,
    /// Messages task-events refuses, one JSON line each, with the reason.
    #[arg(long, default_value = "task-import.rejected.jsonl")]
    rejected: PathBuf,
    /// Events per FilterLogEvents page (1 to 10000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    page_size: i32,
    /// Stop after this many pages (the checkpoint resumes the rest).
    #[arg(long)]
    max_pages: Option<u64>,
    /// Messages written at once (each is one conditional UpdateItem).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
}

fn parse_time(text: &str) -> Result<i64, String> {
    Timestamp::parse(text)
        .map(Timestamp::millis)
        .map_err(|err| format!("{text:?}: {err}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_current_span(false)
        .init();
    let cli = Cli::parse();
    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("task-import: {err}");
            return ExitCode::from(2);
        }
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = TaskStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name.clone());
    let handler = Handler::new(store, config, CollectingSink::default());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    let metrics = match (cli.no_metrics, cli.metrics_log_group) {
        (false, Some(group)) => MetricsTarget::LogGroup {
            group,
            stream: format!("task-import-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")),
        },
        _ => MetricsTarget::Off,
    };
    let importer = Importer {
        logs: &logs,
        handler: &handler,
        options: ImportOptions {
            log_group: cli.log_group,
            from: cli.from,
            to: cli.to,
            page_size: cli.page_size,
            metrics,
            checkpoint: Some(cli.checkpoint),
            rejected: Some(cli.rejected.clone()),
            max_pages: cli.max_pages,
            metrics_cutoff: task_import::metrics_out::cutoff(chrono::Utc::now().timestamp_millis()),
            concurrency: usize::from(cli.concurrency),
        },
    };
    let outcome = importer
        .run(|counts, elapsed| eprintln!("task-import: {}", counts.line(elapsed)))
        .await;
    match outcome {
        Ok(finished) => {
            let state = if finished.complete {
                "complete"
            } else {
                "stopped (resume with the same options)"
            };
            println!("{}", serde_json::json!({"import": state, "counts": finished.counts}));
            if finished.counts.rejected > 0 {
                eprintln!(
                    "task-import: {} messages rejected, each with its reason in {}",
                    finished.counts.rejected,
                    cli.rejected.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("task-import: {err}");
            ExitCode::FAILURE
        }
    }
}
