//! Sends the image report: waits (bounded) until the task's counted containers have started, then, when
//! something tells (a readiness URL or health checks), until the task is ready (bounded too), then puts
//! one event on the account's default bus, retried until EventBridge accepts it or the deadline passes.
//! One report, held back until readiness is known, so task-events merges both in one idempotent write;
//! a repeated report is harmless, so a retry never needs to know whether an earlier attempt landed.
//! A task that is stopping (`stop`) cuts every wait short: the report goes with what is known.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use bytes::Bytes;
use hyper::Uri;
use timing_domain::report::{ImageReport, REPORT_DETAIL_TYPE, REPORT_SOURCE, Readiness};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::image_report::{all_started, image_report, own_container_name};
use crate::reader::{HttpClient, get, http_client};
use crate::readiness::{attach, choose_signal};
use crate::ready_wait::{Poll, stopping, wait_for_readiness};

#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// `ECS_CONTAINER_METADATA_URI_V4`, without `/task`.
    pub endpoint: String,
    pub excluded: Vec<String>,
    pub event_bus: String,
    /// How long to wait for the containers to start before reporting what is known.
    pub wait: Duration,
    /// How long to keep trying, in all, not counting the wait for readiness.
    pub deadline: Duration,
    pub request_timeout: Duration,
    /// `--ready-url`: when given, readiness is its first 2xx answer.
    pub ready_url: Option<Uri>,
    /// The bound on the wait for readiness, counted from the sidecar's start.
    pub ready_wait: Duration,
    pub ready_poll: Duration,
}

/// Below this, polling would only burn the CPU it is measured not to.
pub const MIN_READY_POLL: Duration = Duration::from_millis(10);

impl ReportConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.ready_poll < MIN_READY_POLL {
            return Err(format!(
                "--ready-poll {:?} is below the minimum {MIN_READY_POLL:?}",
                self.ready_poll
            ));
        }
        Ok(())
    }
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
async fn own_name(http: &HttpClient, config: &ReportConfig) -> Option<String> {
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

const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Reads `/task` until every counted container has started (or `config.wait` passes, or the task is
/// stopping), backing off between failed reads. Returns the report and the body it came from.
async fn read_report(
    http: &HttpClient,
    task_uri: &Uri,
    excluded: &[String],
    config: &ReportConfig,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(ImageReport, Bytes), String> {
    let mut known = None;
    let mut pause = FIRST_PAUSE;
    loop {
        let attempt = match get(http, task_uri, config.request_timeout).await {
            Ok((status, body)) if status.is_success() => image_report(&body, excluded)
                .map(|report| (report, body))
                .map_err(|e| e.to_string()),
            Ok((status, _)) => Err(format!("{task_uri} answered HTTP {status}")),
            Err(err) => Err(err.to_string()),
        };
        let waited = started.elapsed();
        match attempt {
            Ok((report, body)) if all_started(&report) || waited >= config.wait => return Ok((report, body)),
            Ok(read) => {
                tracing::debug!("containers still starting; the report waits");
                known = Some(read);
            }
            Err(problem) if waited >= config.deadline => {
                return known.ok_or_else(|| format!("no report: {problem}"));
            }
            Err(problem) => tracing::warn!(%problem, "metadata not readable yet; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stopping(stop) => {
                return known.ok_or_else(|| "no report: the task is stopping and its metadata was not read".into());
            }
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Puts the report until EventBridge accepts it or `deadline` passes (at least one attempt). Once the task
/// is stopping, the flush window is short: retries come at the first pause.
async fn put_until_accepted(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    report: &ImageReport,
    deadline: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let mut pause = FIRST_PAUSE;
    loop {
        match put(client, bus, report).await {
            Ok(()) => return Ok(()),
            Err(problem) if Instant::now() >= deadline => {
                return Err(format!("report not accepted before the deadline: {problem}"));
            }
            Err(problem) => tracing::warn!(%problem, "report not accepted; retrying"),
        }
        if *stop.borrow() {
            tokio::time::sleep(FIRST_PAUSE).await;
        } else {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stopping(stop) => {}
            }
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// How the report's readiness reads in the log.
fn describe(readiness: Option<Readiness>) -> String {
    match readiness {
        None => "none".into(),
        Some(Readiness {
            signal,
            ready_at: Some(at),
        }) => format!("{} ready at {at}", signal.name()),
        Some(Readiness { signal, ready_at: None }) => format!("{} not ready", signal.name()),
    }
}

/// Reads the metadata until the report is complete (or `wait` passes), waits for readiness when something
/// tells it, then sends the report until accepted. Called as the sidecar starts: the bounds count from
/// here. `stop` turning true (SIGTERM) ends the waits at once. Returns the report as sent.
pub async fn report_once(
    client: &aws_sdk_eventbridge::Client,
    config: &ReportConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<ImageReport, String> {
    let started = Instant::now();
    let task_uri: Uri = format!("{}/task", config.endpoint.trim_end_matches('/'))
        .parse()
        .map_err(|_| format!("invalid metadata endpoint {:?}", config.endpoint))?;
    let http = http_client();
    let excluded = match config.excluded.is_empty() {
        false => config.excluded.clone(),
        true => own_name(&http, config).await.into_iter().collect(),
    };
    let (mut report, body) = read_report(&http, &task_uri, &excluded, config, started, &mut stop).await?;
    let held = Instant::now();
    let readiness = match choose_signal(config.ready_url.is_some(), &body, &excluded) {
        None => {
            tracing::info!(
                "no readiness signal (no --ready-url, no health check on a counted container): none reported"
            );
            None
        }
        Some(signal) => {
            let poll = Poll {
                http: &http,
                task_uri: &task_uri,
                ready_url: config.ready_url.as_ref(),
                excluded: &excluded,
                request_timeout: config.request_timeout,
                every: config.ready_poll,
                until: started + config.ready_wait,
                bound: config.ready_wait,
            };
            Some(wait_for_readiness(&poll, signal, body, &mut stop).await)
        }
    };
    if let Some(problem) = attach(&mut report, readiness) {
        tracing::warn!(%problem, "readiness time dropped");
    }
    // The wait for readiness leaves the sending its whole budget.
    let deadline = started + config.deadline + held.elapsed();
    put_until_accepted(client, &config.event_bus, &report, deadline, &mut stop).await?;
    tracing::info!(
        task_arn = %report.task_arn,
        snapshotter = report.snapshotter().name(),
        readiness = %describe(report.readiness),
        "image report sent"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use timing_domain::report::ReadySignal;
    use timing_domain::timestamp::Timestamp;

    #[test]
    fn polling_faster_than_the_minimum_is_refused() {
        let config = |poll_ms| ReportConfig {
            endpoint: "http://169.254.170.2/v4/x".into(),
            excluded: vec![],
            event_bus: "default".into(),
            wait: Duration::from_secs(120),
            deadline: Duration::from_secs(900),
            request_timeout: Duration::from_secs(2),
            ready_url: None,
            ready_wait: Duration::from_secs(600),
            ready_poll: Duration::from_millis(poll_ms),
        };
        assert!(config(250).validate().is_ok());
        assert!(config(10).validate().is_ok());
        assert!(config(0).validate().unwrap_err().contains("--ready-poll"));
    }

    #[test]
    fn the_log_says_how_readiness_was_judged() {
        let at = Timestamp::parse("2026-11-20T10:00:48.123Z").ok();
        let url = |ready_at| {
            Some(Readiness {
                signal: ReadySignal::Url,
                ready_at,
            })
        };
        assert_eq!(describe(None), "none");
        assert_eq!(describe(url(at)), "url ready at 2026-11-20T10:00:48.123Z");
        assert_eq!(describe(url(None)), "url not ready");
    }
}
