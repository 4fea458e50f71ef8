//! The wait for readiness: polls the chosen signal (`readiness` judges each answer) until the task is
//! ready, the bound passes, or the task is stopping, whichever comes first. Never fails: what is not
//! known by then is reported as not ready.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use hyper::Uri;
use timing_domain::report::{Readiness, ReadySignal};
use timing_domain::timestamp::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::reader::{HttpClient, get, get_status};
use crate::readiness::judge_health;

/// Where and how often to look.
pub struct Poll<'a> {
    pub http: &'a HttpClient,
    /// `${ECS_CONTAINER_METADATA_URI_V4}/task`.
    pub task_uri: &'a Uri,
    pub ready_url: Option<&'a Uri>,
    pub excluded: &'a [String],
    pub request_timeout: Duration,
    pub every: Duration,
    /// When to stop waiting (`--ready-wait` after the sidecar's start), and that bound, for the log.
    pub until: Instant,
    pub bound: Duration,
}

/// Resolves once `stop` says the task is stopping (never, if its sender is gone).
pub async fn stopping(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One look at the signal: the ready time, or why not yet.
async fn look(poll: &Poll<'_>, signal: ReadySignal, body: Option<Bytes>) -> Result<Timestamp, String> {
    match (signal, poll.ready_url) {
        (ReadySignal::Url, Some(url)) => match get_status(poll.http, url, poll.request_timeout).await {
            // Stamped when the answer's headers arrived.
            Ok(status) if status.is_success() => Ok(Timestamp::from_millis(chrono::Utc::now().timestamp_millis())),
            Ok(status) => Err(format!("{url} answered HTTP {status}")),
            Err(err) => Err(err.to_string()),
        },
        (ReadySignal::Url, None) => Err("no readiness URL".into()),
        (ReadySignal::HealthCheck, _) => {
            let body = match body {
                Some(body) => body,
                None => match get(poll.http, poll.task_uri, poll.request_timeout).await {
                    Ok((status, body)) if status.is_success() => body,
                    Ok((status, _)) => return Err(format!("{} answered HTTP {status}", poll.task_uri)),
                    Err(err) => return Err(err.to_string()),
                },
            };
            judge_health(&body, poll.excluded)
        }
    }
}

/// Looks every `poll.every` until ready; `last` keeps why it is not, and `looks` how often it looked.
async fn until_ready(
    poll: &Poll<'_>,
    signal: ReadySignal,
    mut body: Option<Bytes>,
    last: &Mutex<(String, u32)>,
) -> Timestamp {
    loop {
        let attempt = look(poll, signal, body.take()).await;
        {
            // Never held across an await; a poisoned lock only loses the log's detail.
            let mut state = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            state.1 += 1;
            match attempt {
                Ok(ready_at) => return ready_at,
                Err(why) if why != state.0 => {
                    tracing::debug!(why = %why, "not ready yet");
                    state.0 = why;
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(poll.every).await;
    }
}

/// Waits for readiness by `signal` until `poll.until` or `stop`. `task_body` is the `/task` answer already
/// at hand: the health checks are judged on it first, so a task already healthy is ready without waiting.
pub async fn wait_for_readiness(
    poll: &Poll<'_>,
    signal: ReadySignal,
    task_body: Bytes,
    stop: &mut watch::Receiver<bool>,
) -> Readiness {
    let started = Instant::now();
    // Shared with the polling future, read once it is done (a Mutex: the future must be Send).
    let last = Mutex::new(("not looked yet".to_owned(), 0));
    let ready_at = tokio::select! {
        // Biased: a look that is already ready wins over a bound or a stop that is already due.
        biased;
        ready_at = until_ready(poll, signal, Some(task_body), &last) => Some(ready_at),
        () = stopping(stop) => None,
        () = tokio::time::sleep_until(poll.until) => None,
    };
    let (why, looks) = std::mem::take(&mut *last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    let waited_ms = started.elapsed().as_millis() as u64;
    match ready_at {
        Some(ready_at) => tracing::info!(signal = signal.name(), ready_at = %ready_at, looks, waited_ms, "task ready"),
        None if *stop.borrow() => {
            tracing::warn!(signal = signal.name(), last = %why, looks, waited_ms, "task stopping before it was ready: reported as not ready")
        }
        None => tracing::warn!(
            signal = signal.name(),
            last = %why,
            looks,
            waited_ms,
            "not ready within {} s of the sidecar's start (--ready-wait): reported as not ready",
            poll.bound.as_secs_f64()
        ),
    }
    Readiness { signal, ready_at }
}
