//! task-events: turns each "ECS Task State Change" into one idempotent record per task (one conditional
//! UpdateItem per delivery, whatever its outcome) and, for the phases that the write made known for the
//! first time, one EMF document on stdout. The sidecar's image report (the second kind of event) adds
//! the task's snapshotter to the same record, once. The rollups follow from the records (task-rollups).

use std::io::Write;

use lambda_runtime::Diagnostic;
use serde::Serialize;
use timing_domain::event::{EventError, TaskStateChangeEvent};
use timing_domain::incoming::{Incoming, parse_incoming};
use timing_domain::metrics::{DEFAULT_NAMESPACE, due_keys, emf_document, ledger_keys};
use timing_domain::record::{TaskRecord, expiry};
use timing_domain::report::{ImageReportEvent, Snapshotter};
use timing_domain::snapshotter_metrics::{
    SnapshotterMetrics, due_after_report, due_after_state_change, emitted_keys, is_fallback, ready_due_after_report,
    ready_due_after_state_change,
};
use timing_domain::timestamp::Timestamp;
use timing_dynamodb::keys::DEFAULT_TABLE_NAME;
use timing_dynamodb::report_store::{ReportOutcome, ReportWrite};
use timing_dynamodb::task_store::WriteOutcome;
use timing_dynamodb::{StoreError, TaskStore};

pub const DEFAULT_RETENTION_DAYS: u32 = 90;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub table_name: String,
    pub metrics_namespace: String,
    pub retention_days: u32,
    /// SLOW_STARTUP_SECONDS: start-ups longer than this count in SlowStartups (the p90 alarm).
    pub slow_startup_seconds: Option<f64>,
    /// LAZY_LOADING_FAMILIES (comma-separated): families expected to lazy-load, whose tasks pulled
    /// with overlayfs count in LazyLoadingFallbacks (the fallback alarm).
    pub lazy_loading_families: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads TABLE_NAME, METRICS_NAMESPACE, RETENTION_DAYS and SLOW_STARTUP_SECONDS
    /// through `lookup` (the environment in main).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let retention_days = match lookup("RETENTION_DAYS") {
            None => DEFAULT_RETENTION_DAYS,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(days) if (1..=36_500).contains(&days) => days,
                _ => {
                    return Err(ConfigError(format!(
                        "RETENTION_DAYS must be a whole number of days from 1 to 36500, got {text:?}"
                    )));
                }
            },
        };
        let metrics_namespace = lookup("METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if metrics_namespace.is_empty() || metrics_namespace.starts_with("AWS/") {
            return Err(ConfigError(format!(
                "METRICS_NAMESPACE must be non-empty and outside AWS/, got {metrics_namespace:?}"
            )));
        }
        let slow_startup_seconds = match lookup("SLOW_STARTUP_SECONDS") {
            None => None,
            Some(text) => match text.trim().parse::<f64>() {
                Ok(seconds) if seconds.is_finite() && seconds > 0.0 => Some(seconds),
                _ => {
                    return Err(ConfigError(format!(
                        "SLOW_STARTUP_SECONDS must be a positive number of seconds, got {text:?}"
                    )));
                }
            },
        };
        let lazy_loading_families: Vec<String> = lookup("LAZY_LOADING_FAMILIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|family| !family.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = lazy_loading_families
            .iter()
            .find(|family| !timing_domain::arn::is_ecs_name(family))
        {
            return Err(ConfigError(format!(
                "LAZY_LOADING_FAMILIES must list task definition families separated by commas, got {bad:?}"
            )));
        }
        let table_name = lookup("TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned());
        Ok(Config {
            table_name,
            metrics_namespace,
            retention_days,
            slow_startup_seconds,
            lazy_loading_families,
        })
    }
}

/// Where EMF documents go: stdout in Lambda (CloudWatch Logs extracts the metrics), memory in tests.
pub trait MetricsSink: Send + Sync {
    fn emit(&self, line: &str);
}

pub struct StdoutSink;

impl MetricsSink for StdoutSink {
    fn emit(&self, line: &str) {
        // One line per document: CloudWatch Logs reads EMF from single log events.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
    }
}

/// Keeps the lines, for tests and benchmarks (the `test-support` feature).
#[cfg(feature = "test-support")]
#[derive(Default)]
pub struct MemorySink(pub std::sync::Mutex<Vec<String>>);

#[cfg(feature = "test-support")]
impl MetricsSink for MemorySink {
    fn emit(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line.to_owned());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<HandlerError> for Diagnostic {
    fn from(err: HandlerError) -> Diagnostic {
        let error_type = match err {
            HandlerError::InvalidEvent(_) => "InvalidEvent",
            HandlerError::Store(_) => "StoreUnavailable",
        };
        Diagnostic {
            error_type: error_type.into(),
            // With the SDK's error chain: "DynamoDB Query on table … failed: service error: …".
            error_message: timing_dynamodb::error::error_chain(&err),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Written,
    Duplicate,
    Stale,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Written => "written",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub outcome: Outcome,
    pub task_arn: String,
    /// The state change's version (0 for an image report, which has none).
    pub version: u64,
    /// An image report's answer: the task's snapshotter as stored (this report's, or the first one's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshotter: Option<Snapshotter>,
    /// Metric keys this invocation emitted (empty for duplicates and stale events).
    pub metrics_emitted: Vec<String>,
    /// The record write landed on an attempt whose answer was lost; a retry found it (its metrics were
    /// emitted then, once).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub recovered_write: bool,
}

/// A fresh id for one invocation attempt's record write (see `timing_dynamodb::keys::WRITE_ID`).
fn new_write_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

pub struct Handler<S: MetricsSink> {
    store: TaskStore,
    config: Config,
    sink: S,
}

impl<S: MetricsSink> Handler<S> {
    pub fn new(store: TaskStore, config: Config, sink: S) -> Self {
        Self { store, config, sink }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Handles one invocation's payload: the raw JSON of the EventBridge event.
    pub async fn handle(&self, payload: &[u8]) -> Result<Response, HandlerError> {
        let result = self.process(payload).await;
        match &result {
            Ok(response) => tracing::info!(
                outcome = response.outcome.as_str(), task_arn = %response.task_arn, version = response.version,
                metrics = response.metrics_emitted.len(), "task state change processed"
            ),
            Err(HandlerError::InvalidEvent(err)) => {
                tracing::warn!(outcome = "rejected", error = %err, "task state change rejected")
            }
            Err(err) => {
                tracing::error!(
                    outcome = "failed",
                    error = timing_dynamodb::error::error_chain(&err),
                    "task state change not stored; the platform will retry"
                )
            }
        }
        result
    }

    /// The delivery's one DynamoDB call, and the EMF documents for what it made known. The rollups
    /// follow from the write, through the table's stream (task-rollups).
    pub async fn process(&self, payload: &[u8]) -> Result<Response, HandlerError> {
        match parse_incoming(payload)? {
            Incoming::StateChange(event) => self.state_change(event).await,
            Incoming::Report(report) => self.report(report).await,
        }
    }

    /// The versioned write of the record.
    async fn state_change(&self, event: TaskStateChangeEvent) -> Result<Response, HandlerError> {
        // The metric timestamp is when the state changed (the event time), so a delayed or retried
        // delivery still lands its datapoints on the right minute.
        let timestamp = event
            .time
            .map_or_else(|| chrono::Utc::now().timestamp_millis(), |time| time.timestamp_millis());
        let mut record = TaskRecord::from_event(event, self.config.retention_days)?;
        let ledger = ledger_keys(&record);
        let respond = |outcome, metrics_emitted| Response {
            outcome,
            task_arn: record.task_arn.clone(),
            version: record.version,
            snapshotter: None,
            metrics_emitted,
            recovered_write: false,
        };
        Ok(match self.store.write(&record, &ledger, &new_write_id()).await? {
            WriteOutcome::Duplicate => respond(Outcome::Duplicate, Vec::new()),
            WriteOutcome::Stale { .. } => respond(Outcome::Stale, Vec::new()),
            WriteOutcome::Written {
                previously_emitted,
                recovered,
                report,
            } => {
                let due = due_keys(&ledger, &previously_emitted);
                // The phases to ready need the report's readyAt: this write emits those it made due that
                // the report's write did not find (that write emitted them).
                let ready_due = match &report {
                    Some(report) => {
                        record.ready_at = report.ready_at;
                        ready_due_after_state_change(&due, &report.ledger_at_report)
                    }
                    None => Default::default(),
                };
                let emitted = emitted_keys(&record, &due, &ready_due);
                if let Some(document) = emf_document(
                    &self.config.metrics_namespace,
                    &record,
                    &emitted,
                    timestamp,
                    self.config.slow_startup_seconds,
                ) {
                    self.sink.emit(&document.to_line());
                }
                if let Some(report) = report {
                    let by_snapshotter = SnapshotterMetrics {
                        cluster_name: &record.cluster_name,
                        family: &record.family,
                        task_arn: &record.task_arn,
                        snapshotter: report.snapshotter,
                        phases: due_after_state_change(&record, &due, &report.ledger_at_report),
                        count_task: false,
                        fallback: false,
                        not_ready: false,
                    };
                    if let Some(line) = by_snapshotter.document(&self.config.metrics_namespace, timestamp) {
                        self.sink.emit(&line);
                    }
                }
                Response {
                    recovered_write: recovered,
                    ..respond(Outcome::Written, emitted.into_iter().collect())
                }
            }
        })
    }

    /// The report's write: the task's snapshotter, once; and the metrics by snapshotter that were
    /// waiting for it.
    async fn report(&self, event: ImageReportEvent) -> Result<Response, HandlerError> {
        let timestamp = event
            .time
            .map_or_else(|| chrono::Utc::now().timestamp_millis(), |time| time.timestamp_millis());
        let report = event.detail;
        let snapshotter = report.snapshotter();
        let expires_at = expiry(Timestamp::from_millis(timestamp), self.config.retention_days);
        let outcome = self
            .store
            .write_report(&ReportWrite {
                task_arn: &report.task_arn,
                snapshotter,
                containers: &report.pulled_containers(),
                readiness: report.readiness,
                expires_at,
                write_id: &new_write_id(),
            })
            .await?;
        let mut response = Response {
            outcome: Outcome::Duplicate,
            task_arn: report.task_arn.clone(),
            version: 0,
            snapshotter: Some(snapshotter),
            metrics_emitted: Vec::new(),
            recovered_write: false,
        };
        match outcome {
            ReportOutcome::Duplicate { stored } => response.snapshotter = Some(stored),
            ReportOutcome::Written {
                record,
                unreadable_record,
                ledger_before,
                recovered,
            } => {
                if let Some(problem) = unreadable_record {
                    tracing::warn!(task_arn = %report.task_arn, %problem, "the record beside the report is unreadable; its phases by snapshotter are not emitted");
                }
                // The record as it is now: the report's readiness on the state changes' timestamps.
                let record = record.map(|mut record| {
                    record.ready_signal = report.readiness.map(|r| r.signal);
                    record.ready_at = report.readiness.and_then(|r| r.ready_at);
                    record
                });
                // The phases to ready whose start the state changes had brought: by family and revision.
                if let Some(record) = &record {
                    let ready = ready_due_after_report(&ledger_before);
                    let emitted = emitted_keys(record, &ready, &ready);
                    if let Some(document) =
                        emf_document(&self.config.metrics_namespace, record, &emitted, timestamp, None)
                    {
                        self.sink.emit(&document.to_line());
                    }
                    response.metrics_emitted.extend(emitted);
                }
                // The record's identity where it exists; the report's (the same task) before it does.
                let (cluster_name, family) = match &record {
                    Some(record) => (record.cluster_name.as_str(), record.family.as_str()),
                    None => (report.cluster_name()?, report.family.as_str()),
                };
                let metrics = SnapshotterMetrics {
                    cluster_name,
                    family,
                    task_arn: &report.task_arn,
                    snapshotter,
                    phases: record
                        .as_ref()
                        .map(|record| due_after_report(record, &ledger_before))
                        .unwrap_or_default(),
                    count_task: true,
                    fallback: is_fallback(snapshotter, family, &self.config.lazy_loading_families),
                    not_ready: report.readiness.is_some_and(|r| r.ready_at.is_none()),
                };
                if let Some(line) = metrics.document(&self.config.metrics_namespace, timestamp) {
                    self.sink.emit(&line);
                }
                response.metrics_emitted.extend(metric_names(&metrics));
                response.outcome = Outcome::Written;
                response.recovered_write = recovered;
            }
        }
        Ok(response)
    }
}

/// The metric names a by-snapshotter write emitted, for the response.
fn metric_names(metrics: &SnapshotterMetrics) -> Vec<String> {
    let mut names: Vec<String> = metrics
        .phases
        .iter()
        .map(|(phase, _)| format!("{}/Snapshotter", phase.metric_name()))
        .collect();
    if metrics.count_task {
        names.push(timing_domain::snapshotter_metrics::TASKS_BY_SNAPSHOTTER.to_owned());
    }
    if metrics.fallback {
        names.push(timing_domain::snapshotter_metrics::LAZY_LOADING_FALLBACKS.to_owned());
    }
    if metrics.not_ready {
        names.push(timing_domain::snapshotter_metrics::TASKS_NOT_READY.to_owned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn config_defaults() {
        let config = Config::from_lookup(lookup(&[])).unwrap();
        assert_eq!(
            config,
            Config {
                table_name: "ecs-task-timing-tasks".into(),
                metrics_namespace: "ECS/TaskTiming".into(),
                retention_days: 90,
                slow_startup_seconds: None,
                lazy_loading_families: Vec::new(),
            }
        );
    }

    #[test]
    fn config_from_environment_and_its_errors() {
        let config = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("RETENTION_DAYS", "7"),
            ("METRICS_NAMESPACE", "Mine"),
        ]))
        .unwrap();
        assert_eq!(
            (
                config.table_name.as_str(),
                config.retention_days,
                config.metrics_namespace.as_str()
            ),
            ("t", 7, "Mine")
        );
        let err = Config::from_lookup(lookup(&[("RETENTION_DAYS", "ninety")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("RETENTION_DAYS") && err.contains("\"ninety\""), "{err}");
        assert!(Config::from_lookup(lookup(&[("RETENTION_DAYS", "0")])).is_err());
        assert!(Config::from_lookup(lookup(&[("METRICS_NAMESPACE", "AWS/ECS")])).is_err());
        let slow = Config::from_lookup(lookup(&[("SLOW_STARTUP_SECONDS", "45.5")])).unwrap();
        assert_eq!(slow.slow_startup_seconds, Some(45.5));
        for bad in ["0", "-3", "NaN", "inf", "soon"] {
            let err = Config::from_lookup(lookup(&[("SLOW_STARTUP_SECONDS", bad)])).unwrap_err();
            assert!(err.to_string().contains("SLOW_STARTUP_SECONDS"), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_map_to_specific_error_types() {
        let err = HandlerError::InvalidEvent(timing_domain::event::parse_event(b"{}").unwrap_err());
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "InvalidEvent");
        assert!(
            diagnostic.error_message.contains("missing field"),
            "{}",
            diagnostic.error_message
        );
    }
}
