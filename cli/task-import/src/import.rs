//! The import: FilterLogEvents page by page; every message through task-events' handler (the same parse,
//! record write and metric ledger as the Lambda); the EMF documents it prints sent to a log group when
//! CloudWatch still accepts them; a checkpoint after every page.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use aws_sdk_cloudwatchlogs::error::DisplayErrorContext;
use aws_sdk_cloudwatchlogs::types::{FilteredLogEvent, InputLogEvent};
use futures_util::StreamExt;
use task_events::{Handler, HandlerError, MetricsSink, Outcome};

use crate::checkpoint::Checkpoint;
use crate::error::ImportError;
use crate::metrics_out::{Document, batches, emf_timestamp, sendable};

/// How many of a PutLogEvents batch of `count` CloudWatch Logs refused as too old, too new or expired.
fn refused(info: Option<&aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo>, count: u64) -> u64 {
    let Some(info) = info else {
        return 0;
    };
    let end = |index: Option<i32>| index.map_or(0, |i| u64::try_from(i).map_or(0, |i| i + 1));
    let too_old = end(info.too_old_log_event_end_index()).max(end(info.expired_log_event_end_index()));
    let too_new = info
        .too_new_log_event_start_index()
        .and_then(|i| u64::try_from(i).ok())
        .map_or(0, |start| count.saturating_sub(start));
    (too_old + too_new).min(count)
}
use crate::progress::Counts;

/// Keeps the EMF lines the handler prints, to be sent (or counted) once its page is done.
#[derive(Default)]
pub struct CollectingSink(Mutex<Vec<String>>);

impl MetricsSink for CollectingSink {
    fn emit(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line.to_owned());
        }
    }
}

impl CollectingSink {
    fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut lines| std::mem::take(&mut *lines))
            .unwrap_or_default()
    }
}

/// Where the imported events' metrics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsTarget {
    /// PutLogEvents into this group (task-events' own, `/aws/lambda/<stack>-task-events`, is the usual one),
    /// in a log stream of this import's.
    LogGroup { group: String, stream: String },
    /// Counted, not sent (`--no-metrics`): the ledger still marks them, as a dry run of metrics would not.
    Off,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub log_group: String,
    /// The window, epoch milliseconds.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Events per FilterLogEvents page (at most 10,000).
    pub page_size: i32,
    pub metrics: MetricsTarget,
    pub checkpoint: Option<PathBuf>,
    /// Rejected messages, one JSON line each with the reason.
    pub rejected: Option<PathBuf>,
    /// Stop after this many pages (the checkpoint then resumes): to import in slices.
    pub max_pages: Option<u64>,
    /// EMF documents whose metric timestamp is older (epoch ms) are not sent: `metrics_out::cutoff(now)`.
    pub metrics_cutoff: i64,
    /// Messages of a page in flight at once. The record write is a conditional write whatever the order,
    /// so two events of one task in flight together still leave the newest version, each metric once.
    pub concurrency: usize,
}

/// How an import ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Counts of this import, resumed parts included.
    pub counts: Counts,
    /// Every page read (false: stopped at `max_pages`; the checkpoint resumes it).
    pub complete: bool,
}

pub struct Importer<'a> {
    pub logs: &'a LogsClient,
    pub handler: &'a Handler<CollectingSink>,
    pub options: ImportOptions,
}

impl Importer<'_> {
    /// Runs the import; `progress` gets the counts after every page.
    pub async fn run(&self, mut progress: impl FnMut(&Counts, std::time::Duration)) -> Result<Finished, ImportError> {
        let options = &self.options;
        let started = Instant::now();
        let mut checkpoint = Checkpoint {
            log_group: options.log_group.clone(),
            from: options.from,
            to: options.to,
            next_token: None,
            counts: Counts::default(),
        };
        if let Some(path) = &options.checkpoint
            && let Some(saved) = Checkpoint::load(path)?
        {
            if !saved.is_for(&options.log_group, options.from, options.to) {
                return Err(ImportError::Usage(format!(
                    "{} is the checkpoint of another import ({} {:?} to {:?}): remove it or give that import's options",
                    path.display(),
                    saved.log_group,
                    saved.from,
                    saved.to
                )));
            }
            tracing::info!(pages = saved.counts.pages, "resuming from the checkpoint");
            checkpoint = saved;
        }
        if let MetricsTarget::LogGroup { group, stream } = &options.metrics {
            self.create_stream(group, stream).await?;
        }
        let mut pages_now = 0;
        loop {
            if options.max_pages.is_some_and(|max| pages_now >= max) {
                return Ok(Finished {
                    counts: checkpoint.counts,
                    complete: false,
                });
            }
            let page = self
                .logs
                .filter_log_events()
                .log_group_name(&options.log_group)
                .set_start_time(options.from)
                .set_end_time(options.to)
                .set_next_token(checkpoint.next_token.clone())
                .limit(options.page_size)
                .send()
                .await
                .map_err(|err| ImportError::Read {
                    log_group: options.log_group.clone(),
                    message: DisplayErrorContext(err).to_string(),
                })?;
            let counts = self.import_page(page.events()).await?;
            checkpoint.counts.add(&counts);
            checkpoint.next_token = page.next_token().map(str::to_owned);
            pages_now += 1;
            progress(&checkpoint.counts, started.elapsed());
            match (&checkpoint.next_token, &options.checkpoint) {
                (Some(_), Some(path)) => checkpoint.save(path)?,
                (None, Some(path)) => {
                    // Done: nothing to resume.
                    let _ = std::fs::remove_file(path);
                }
                (_, None) => {}
            }
            if checkpoint.next_token.is_none() {
                return Ok(Finished {
                    counts: checkpoint.counts,
                    complete: true,
                });
            }
        }
    }

    /// One page: every message through the handler, then its metrics.
    async fn import_page(&self, events: &[FilteredLogEvent]) -> Result<Counts, ImportError> {
        let mut counts = Counts {
            pages: 1,
            ..Counts::default()
        };
        let mut rejected = Vec::new();
        let handler = self.handler;
        let mut outcomes = futures_util::stream::iter(events)
            .map(|event| async move {
                let message = event.message().unwrap_or_default();
                (event, message, handler.process(message.as_bytes()).await)
            })
            .buffer_unordered(self.options.concurrency.max(1));
        while let Some((event, message, outcome)) = outcomes.next().await {
            counts.read += 1;
            match outcome {
                Ok(response) => match response.outcome {
                    Outcome::Written => counts.written += 1,
                    Outcome::Duplicate => counts.duplicate += 1,
                    Outcome::Stale => counts.stale += 1,
                },
                Err(HandlerError::InvalidEvent(reason)) => {
                    counts.rejected += 1;
                    rejected.push(serde_json::json!({
                        "logStreamName": event.log_stream_name(), "eventId": event.event_id(),
                        "timestamp": event.timestamp(), "reason": reason.to_string(), "message": message}));
                }
                // The SDK has retried; the page is read again on resume (its writes are idempotent).
                Err(err @ HandlerError::Store(_)) => {
                    return Err(ImportError::Store(timing_dynamodb::error::error_chain(&err)));
                }
            }
        }
        self.keep_rejected(&rejected)?;
        let documents: Vec<Document> = self
            .handler
            .sink()
            .take()
            .into_iter()
            .filter_map(|line| {
                Some(Document {
                    timestamp: emf_timestamp(&line)?,
                    line,
                })
            })
            .collect();
        let (documents, too_old) = sendable(documents, self.options.metrics_cutoff);
        counts.metrics_too_old += too_old;
        let (sent, refused) = self.send(documents).await?;
        counts.metrics_sent += sent;
        counts.metrics_too_old += refused;
        Ok(counts)
    }

    fn keep_rejected(&self, rejected: &[serde_json::Value]) -> Result<(), ImportError> {
        let Some(path) = &self.options.rejected else {
            return Ok(());
        };
        if rejected.is_empty() {
            return Ok(());
        }
        let failed = |err: std::io::Error| ImportError::Rejected {
            path: path.display().to_string(),
            message: err.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(failed)?;
        for line in rejected {
            writeln!(file, "{line}").map_err(failed)?;
        }
        Ok(())
    }

    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), ImportError> {
        match self
            .logs
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(ImportError::Metrics {
                log_group: group.to_owned(),
                message: DisplayErrorContext(err).to_string(),
            }),
        }
    }

    /// PutLogEvents of `documents`, in batches: how many CloudWatch Logs took, and how many it refused
    /// (too old by its own clock).
    async fn send(&self, documents: Vec<Document>) -> Result<(u64, u64), ImportError> {
        let MetricsTarget::LogGroup { group, stream } = &self.options.metrics else {
            return Ok((0, 0));
        };
        let (mut sent, mut refused_in_all) = (0, 0);
        for batch in batches(documents) {
            let events: Vec<InputLogEvent> = batch
                .iter()
                .filter_map(|d| {
                    InputLogEvent::builder()
                        .timestamp(d.timestamp)
                        .message(&d.line)
                        .build()
                        .ok()
                })
                .collect();
            let count = events.len() as u64;
            let output = self
                .logs
                .put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .set_log_events(Some(events))
                .send()
                .await
                .map_err(|err| ImportError::Metrics {
                    log_group: group.clone(),
                    message: DisplayErrorContext(err).to_string(),
                })?;
            let refused = refused(output.rejected_log_events_info(), count);
            sent += count - refused;
            refused_in_all += refused;
        }
        Ok((sent, refused_in_all))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;

    #[test]
    fn refused_events_are_counted_from_cloudwatch_logs_indexes() {
        let info = |old: Option<i32>, new: Option<i32>, expired: Option<i32>| {
            RejectedLogEventsInfo::builder()
                .set_too_old_log_event_end_index(old)
                .set_too_new_log_event_start_index(new)
                .set_expired_log_event_end_index(expired)
                .build()
        };
        assert_eq!(super::refused(None, 10), 0);
        // Events 0..=2 too old, 8..10 too new.
        assert_eq!(super::refused(Some(&info(Some(2), Some(8), None)), 10), 5);
        assert_eq!(super::refused(Some(&info(None, None, Some(9))), 10), 10);
    }
}
