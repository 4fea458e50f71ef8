//! task-events: turns each "ECS Task State Change" into one idempotent record per task (one conditional
//! UpdateItem per delivery, whatever its outcome) and, for the phases that the write made known for the
//! first time, one EMF document on stdout. The rollups follow from the records (task-rollups).

use std::io::Write;

use lambda_runtime::Diagnostic;
use serde::Serialize;
use timing_domain::event::{EventError, parse_event};
use timing_domain::metrics::{DEFAULT_NAMESPACE, due_keys, emf_document, ledger_keys};
use timing_domain::record::TaskRecord;
use timing_dynamodb::keys::DEFAULT_TABLE_NAME;
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
        let table_name = lookup("TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned());
        Ok(Config {
            table_name,
            metrics_namespace,
            retention_days,
            slow_startup_seconds,
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
    pub version: u64,
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

    /// The delivery's one DynamoDB call, the versioned write of the record, and the EMF document for
    /// what it made known. The rollups follow from the write, through the table's stream (task-rollups).
    pub async fn process(&self, payload: &[u8]) -> Result<Response, HandlerError> {
        let event = parse_event(payload)?;
        // The metric timestamp is when the state changed (the event time), so a delayed or retried
        // delivery still lands its datapoints on the right minute.
        let timestamp = event
            .time
            .map_or_else(|| chrono::Utc::now().timestamp_millis(), |time| time.timestamp_millis());
        let record = TaskRecord::from_event(event, self.config.retention_days)?;
        let ledger = ledger_keys(&record);
        let respond = |outcome, metrics_emitted| Response {
            outcome,
            task_arn: record.task_arn.clone(),
            version: record.version,
            metrics_emitted,
            recovered_write: false,
        };
        Ok(match self.store.write(&record, &ledger, &new_write_id()).await? {
            WriteOutcome::Duplicate => respond(Outcome::Duplicate, Vec::new()),
            WriteOutcome::Stale { .. } => respond(Outcome::Stale, Vec::new()),
            WriteOutcome::Written {
                previously_emitted,
                recovered,
            } => {
                let due = due_keys(&ledger, &previously_emitted);
                if let Some(document) = emf_document(
                    &self.config.metrics_namespace,
                    &record,
                    &due,
                    timestamp,
                    self.config.slow_startup_seconds,
                ) {
                    self.sink.emit(&document.to_line());
                }
                Response {
                    recovered_write: recovered,
                    ..respond(Outcome::Written, due.into_iter().collect())
                }
            }
        })
    }
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
