use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use hyper::Uri;
use task_sidecar::buffer::Buffer;
use task_sidecar::check::ask_monitor;
use task_sidecar::metrics::{DEFAULT_NAMESPACE, DimensionPolicy, validate_namespace};
use task_sidecar::monitor::Monitor;
use task_sidecar::parse_duration;
use task_sidecar::publisher::Publisher;
use task_sidecar::reader::{MetadataReader, ReaderConfig};
use task_sidecar::readiness::parse_ready_url;
use task_sidecar::report_sender::{ReportConfig, report_once};
use task_sidecar::sample::{answer, error_answer};
use task_sidecar::server::{ServerState, router};

/// Clock accuracy of an ECS task, from the Task Metadata endpoint v4 ClockDrift.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sample every interval, publish to CloudWatch, serve GET /clock on --listen.
    Run(RunArgs),
    /// Exit 0 if the clock is synchronized and within --max-error-ms, else 1 (for health checks).
    Check(CheckArgs),
    /// Send the task's image report once and exit: 0 when EventBridge accepted it (for a one-shot,
    /// non-essential container, as the SOCI toolbox runs am-i-lazy).
    Report(ReportArgs),
}

#[derive(Args)]
struct ImageReportArgs {
    /// Containers left out of the task's snapshotter (comma-separated). Default: this sidecar's own, from its
    /// container metadata (its small image would make every lazy-loaded task "mixed").
    #[arg(long, env = "IMAGE_REPORT_EXCLUDE", value_delimiter = ',')]
    exclude_container: Vec<String>,
    /// The bus the report goes to (the account's default bus, where the stack's rule listens).
    #[arg(long, default_value = "default")]
    event_bus: String,
    /// How long to wait for the containers to start before reporting what is known.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    report_wait: Duration,
    /// How long to keep trying to send, in all, not counting the wait for readiness.
    #[arg(long, default_value = "15m", value_parser = parse_minutes)]
    report_deadline: Duration,
    /// Readiness URL on the task's loopback (plain http): the task is ready at its first 2xx answer. Without
    /// it, readiness is judged by the counted containers' health checks, if any.
    #[arg(long, env = "READY_URL", value_parser = parse_ready_url)]
    ready_url: Option<Uri>,
    /// The bound on the wait for readiness, counted from the sidecar's start; the report is held back
    /// until then at most, and says "not ready" after it.
    #[arg(long, default_value = "10m", value_parser = parse_minutes)]
    ready_wait: Duration,
    /// Time between two looks at the readiness signal.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    ready_poll: Duration,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    metadata: MetadataArgs,
    #[command(flatten)]
    report: ImageReportArgs,
}

/// `15m`, or any duration `parse_duration` takes.
fn parse_minutes(text: &str) -> Result<Duration, String> {
    match text.strip_suffix('m').filter(|t| !t.ends_with('m')) {
        Some(minutes) => task_sidecar::at_most_a_day(parse_duration(minutes)?.as_secs_f64() * 60.0, text),
        None => parse_duration(text),
    }
}

fn report_config(metadata: &MetadataArgs, args: &ImageReportArgs) -> ReportConfig {
    ReportConfig {
        endpoint: metadata.metadata_uri.clone(),
        excluded: args.exclude_container.clone(),
        event_bus: args.event_bus.clone(),
        wait: args.report_wait,
        deadline: args.report_deadline,
        request_timeout: metadata.timeout,
        ready_url: args.ready_url.clone(),
        ready_wait: args.ready_wait,
        ready_poll: args.ready_poll,
    }
}

#[derive(Args)]
struct MetadataArgs {
    /// The Task Metadata endpoint v4 (ECS sets ECS_CONTAINER_METADATA_URI_V4 in every container).
    #[arg(long, env = "ECS_CONTAINER_METADATA_URI_V4")]
    metadata_uri: String,
    /// Timeout of one metadata request.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
    /// Metadata attempts after the first, on timeouts, connection errors, 5xx and 429.
    #[arg(long, default_value_t = 2)]
    retries: u32,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    metadata: MetadataArgs,
    /// Time between samples.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// CloudWatch namespace (AWS/ namespaces are refused).
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// Also publish under [ClusterName, TaskFamily, TaskId]: one metric set per task, billed per metric.
    #[arg(long)]
    per_task_metrics: bool,
    /// Address of the on-demand endpoint (keep it on loopback: it is for the task's own containers).
    #[arg(long, default_value = "127.0.0.1:9099")]
    listen: SocketAddr,
    /// GET /clock reads a new sample when the last is older than this.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    max_sample_age: Duration,
    /// Maximum for GET /clock without max_error_ms, in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    max_error_ms: f64,
    /// Data points kept while CloudWatch is unreachable (oldest dropped first beyond this).
    #[arg(long, default_value_t = 10_000)]
    buffer_points: usize,
    /// On SIGTERM, how long the last flush may take.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    flush_timeout: Duration,
    /// Do not send the task's image report (the clock job only).
    #[arg(long, env = "NO_IMAGE_REPORT")]
    no_image_report: bool,
    #[command(flatten)]
    report: ImageReportArgs,
}

#[derive(Args)]
struct CheckArgs {
    /// Largest acceptable ClockErrorBound, in milliseconds.
    #[arg(long)]
    max_error_ms: f64,
    /// The running monitor's endpoint.
    #[arg(long, default_value = "127.0.0.1:9099")]
    listen: String,
    /// Read the metadata directly when no monitor answers (needs ECS_CONTAINER_METADATA_URI_V4).
    #[arg(long, env = "ECS_CONTAINER_METADATA_URI_V4")]
    metadata_uri: Option<String>,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
}

fn reader(args: &MetadataArgs) -> Result<MetadataReader, String> {
    MetadataReader::new(ReaderConfig {
        endpoint: args.metadata_uri.clone(),
        timeout: args.timeout,
        retries: args.retries,
        backoff: Duration::from_millis(200),
    })
    .map_err(|err| err.to_string())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    validate_namespace(&args.namespace)?;
    let report_config = (!args.no_image_report).then(|| report_config(&args.metadata, &args.report));
    if let Some(config) = &report_config {
        config.validate()?;
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let publisher = Publisher::new(aws_sdk_cloudwatch::Client::new(&aws), args.namespace.clone());
    // The report runs beside the clock job, once; its failure is logged and never stops the clock job.
    // On SIGTERM `stop_report` cuts its waits short, and it is awaited within the final flush window.
    let (stop_report, report_stop) = tokio::sync::watch::channel(false);
    let report = report_config.map(|config| {
        let events = aws_sdk_eventbridge::Client::new(&aws);
        tokio::spawn(async move {
            if let Err(problem) = report_once(&events, &config, report_stop).await {
                tracing::error!(%problem, "image report not sent");
            }
        })
    });
    let monitor = Arc::new(Monitor::new(
        reader(&args.metadata)?,
        DimensionPolicy {
            per_task: args.per_task_metrics,
        },
        args.max_sample_age,
        Buffer::new(args.buffer_points),
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.listen))?;
    let app = router(Arc::new(ServerState {
        monitor: monitor.clone(),
        default_max_error_ms: args.max_error_ms,
    }));
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .await
    });
    tracing::info!(listen = %args.listen, namespace = %args.namespace, interval_ms = args.interval.as_millis() as u64, "task-sidecar started");
    let sampling = async {
        let mut ticks = tokio::time::interval(args.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            monitor.sample_and_queue().await;
            let mut buffer = monitor.buffer.lock().await;
            match publisher.flush(&mut buffer).await {
                Ok(sent) => tracing::debug!(sent, "published"),
                Err(err) => tracing::warn!(error = %err, buffered = buffer.len(), "publish failed; points kept"),
            }
        }
    };
    tokio::select! {
        _ = sampling => {}
        _ = shutdown_signal() => tracing::info!("SIGTERM: flushing and stopping"),
    }
    let _ = stop_server.send(());
    stop_report.send_replace(true);
    // The metrics' last flush and the report (if still waiting or sending) share the flush window.
    let flush = async {
        let mut buffer = monitor.buffer.lock().await;
        match tokio::time::timeout(args.flush_timeout, publisher.flush(&mut buffer)).await {
            Ok(Ok(sent)) => tracing::info!(sent, "final flush done"),
            Ok(Err(err)) => tracing::error!(error = %err, "final flush failed; points lost"),
            Err(_) => tracing::error!(buffered = buffer.len(), "final flush timed out; points lost"),
        }
    };
    let report = async {
        if let Some(report) = report {
            match tokio::time::timeout(args.flush_timeout, report).await {
                Ok(Ok(())) => {}
                Ok(Err(failed)) => tracing::error!(error = %failed, "image report task failed; report lost"),
                Err(_) => tracing::error!("image report not sent within --flush-timeout; lost"),
            }
        }
    };
    tokio::join!(flush, report);
    let _ = server.await;
    Ok(())
}

async fn check(args: CheckArgs) -> ExitCode {
    let (within, body) = match ask_monitor(&args.listen, args.max_error_ms, args.timeout).await {
        Ok((status, body)) => (status == 200, body),
        Err(problem) => {
            tracing::warn!(%problem, "no monitor answered; reading the metadata endpoint directly");
            let answer = match &args.metadata_uri {
                None => error_answer(
                    args.max_error_ms,
                    &format!("{problem}; ECS_CONTAINER_METADATA_URI_V4 is not set"),
                ),
                Some(uri) => {
                    let direct = reader(&MetadataArgs {
                        metadata_uri: uri.clone(),
                        timeout: args.timeout,
                        retries: 1,
                    });
                    match direct {
                        Err(err) => error_answer(args.max_error_ms, &err),
                        Ok(reader) => match reader.read().await {
                            Ok(sample) => answer(&sample, args.max_error_ms),
                            Err(err) => error_answer(args.max_error_ms, &err.to_string()),
                        },
                    }
                }
            };
            (answer.within_bound, serde_json::to_string(&answer).unwrap_or_default())
        }
    };
    println!("{body}");
    if within { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_current_span(false)
        .init();
    match Cli::parse().command {
        Command::Run(args) => match run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                tracing::error!(%message, "task-sidecar cannot start");
                ExitCode::from(2)
            }
        },
        Command::Check(args) => check(args).await,
        Command::Report(args) => {
            let config = report_config(&args.metadata, &args.report);
            if let Err(message) = config.validate() {
                tracing::error!(%message, "task-sidecar cannot start");
                return ExitCode::from(2);
            }
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let events = aws_sdk_eventbridge::Client::new(&aws);
            // As PID 1 of its container, the one-shot must handle SIGTERM itself: the task is stopping,
            // so the report goes at once with what is known, rather than be killed with it.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("SIGTERM: sending the report with what is known");
                stop.send_replace(true);
            });
            match report_once(&events, &config, stopped).await {
                Ok(report) => {
                    let mut answer = serde_json::json!({"reported": true, "snapshotter": report.snapshotter().name()});
                    if let Some(readiness) = report.readiness {
                        answer["readiness"] = serde_json::to_value(readiness).unwrap_or_default();
                    }
                    println!("{answer}");
                    ExitCode::SUCCESS
                }
                Err(problem) => {
                    tracing::error!(%problem, "image report not sent");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
