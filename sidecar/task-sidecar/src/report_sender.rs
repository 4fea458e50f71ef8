//! Sends the image report: waits (bounded) until the task's counted containers have started, then puts
//! one event on the account's default bus, retried until EventBridge accepts it or the deadline passes.
//! task-events makes a repeated report harmless, so a retry never needs to know whether an earlier
//! attempt landed.

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use hyper::Uri;
use timing_domain::report::{ImageReport, REPORT_DETAIL_TYPE, REPORT_SOURCE, Snapshotter};

use crate::image_report::{all_started, image_report, own_container_name};
use crate::reader::{get, http_client};

#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// `ECS_CONTAINER_METADATA_URI_V4`, without `/task`.
    pub endpoint: String,
    pub excluded: Vec<String>,
    pub event_bus: String,
    /// How long to wait for the containers to start before reporting what is known.
    pub wait: Duration,
    /// How long to keep trying, in all.
    pub deadline: Duration,
    pub request_timeout: Duration,
}

/// One PutEvents call; an entry EventBridge refused is an error with its code.
async fn put(client: &aws_sdk_eventbridge::Client, bus: &str, report: &ImageReport) -> Result<(), String> {
    let detail = serde_json::to_string(report).map_err(|err| err.to_string())?;
    let entry = PutEventsRequestEntry::builder()
        .source(REPORT_SOURCE)
        .detail_type(REPORT_DETAIL_TYPE)
        .detail(detail)
        .resources(&report.task_arn)
        .event_bus_name(bus)
        .build();
    let output = client
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|err| aws_sdk_eventbridge::error::DisplayErrorContext(err).to_string())?;
    match output.entries().first() {
        Some(entry) if entry.error_code().is_some() => Err(format!(
            "EventBridge refused the report: {} {}",
            entry.error_code().unwrap_or_default(),
            entry.error_message().unwrap_or_default()
        )),
        Some(_) if output.failed_entry_count() == 0 => Ok(()),
        _ => Err("EventBridge answered without an entry".into()),
    }
}

/// This container's name, to leave it out of the task's snapshotter (its small image has no index: counted,
/// it would make every lazy-loaded task `mixed`). None, said in the log, when the metadata does not say.
async fn own_name(http: &crate::reader::HttpClient, config: &ReportConfig) -> Option<String> {
    let uri: Uri = config.endpoint.trim_end_matches('/').parse().ok()?;
    let problem = match get(http, &uri, config.request_timeout).await {
        Ok((status, body)) if status.is_success() => match own_container_name(&body) {
            Some(name) => return Some(name),
            None => "the container metadata names no container".to_owned(),
        },
        Ok((status, _)) => format!("{uri} answered HTTP {status}"),
        Err(err) => err.to_string(),
    };
    tracing::warn!(%problem, "no container is excluded from the snapshotter (--exclude-container sets them)");
    None
}

/// Reads the metadata until the report is complete (or `wait` passes), then sends it until accepted.
/// Returns the task's snapshotter as reported.
pub async fn report_once(client: &aws_sdk_eventbridge::Client, config: &ReportConfig) -> Result<Snapshotter, String> {
    let started = Instant::now();
    let uri: Uri = format!("{}/task", config.endpoint.trim_end_matches('/'))
        .parse()
        .map_err(|_| format!("invalid metadata endpoint {:?}", config.endpoint))?;
    let http = http_client();
    let excluded = match config.excluded.is_empty() {
        false => config.excluded.clone(),
        true => own_name(&http, config).await.into_iter().collect(),
    };
    let mut pause = Duration::from_millis(500);
    let report = loop {
        let attempt = match get(&http, &uri, config.request_timeout).await {
            Ok((status, body)) if status.is_success() => image_report(&body, &excluded).map_err(|e| e.to_string()),
            Ok((status, _)) => Err(format!("{uri} answered HTTP {status}")),
            Err(err) => Err(err.to_string()),
        };
        let waited = started.elapsed();
        match attempt {
            Ok(report) if all_started(&report) || waited >= config.wait => break report,
            Ok(_) => tracing::debug!("containers still starting; the report waits"),
            Err(problem) if waited >= config.deadline => return Err(format!("no report: {problem}")),
            Err(problem) => tracing::warn!(%problem, "metadata not readable yet; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    };
    let snapshotter = report.snapshotter();
    let mut pause = Duration::from_millis(500);
    loop {
        match put(client, &config.event_bus, &report).await {
            Ok(()) => {
                tracing::info!(task_arn = %report.task_arn, snapshotter = snapshotter.name(), "image report sent");
                return Ok(snapshotter);
            }
            Err(problem) if started.elapsed() >= config.deadline => {
                return Err(format!("report not accepted before the deadline: {problem}"));
            }
            Err(problem) => tracing::warn!(%problem, "report not accepted; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}
