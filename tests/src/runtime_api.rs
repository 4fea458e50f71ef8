//! A local stand-in for the Lambda Runtime API (`/2018-06-01/runtime/...`), for `make bench`: it
//! notes when a bootstrap first asks for an invocation (the end of its init) and how long each
//! invocation takes from hand-over to response. Also used by the end-to-end tests, to hand a bootstrap
//! bytes that `cargo lambda invoke` would not send.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response,
    Error(String),
}

#[derive(Default)]
struct Inner {
    pending: VecDeque<Vec<u8>>,
    first_next: Option<Instant>,
    handed: HashMap<String, Instant>,
    finished: Vec<(Duration, Answer)>,
    init_error: Option<String>,
    next_id: u64,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl Shared {
    /// Runs `f` on the state; wakes the waiters when `f` says it changed something.
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> (T, bool)) -> T {
        let (result, changed) = f(&mut self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if changed {
            self.changed.notify_waiters();
        }
        result
    }
}

/// One stand-in per bootstrap process: a killed process's `GET .../next` can stay open on the old one.
pub struct RuntimeApi {
    pub address: SocketAddr,
    shared: Shared,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let shared = Shared::default();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(RuntimeApi { address, shared })
    }

    pub fn queue(&self, payload: Vec<u8>) {
        self.shared.with(|inner| (inner.pending.push_back(payload), true));
    }

    /// Waits until the bootstrap first asks for an invocation (or reports an init error).
    pub async fn first_next(&self, timeout: Duration) -> Result<Instant, String> {
        self.wait(timeout, |inner| match (&inner.init_error, inner.first_next) {
            (Some(err), _) => Some(Err(format!("init error: {err}"))),
            (None, Some(at)) => Some(Ok(at)),
            _ => None,
        })
        .await?
    }

    /// Waits until `count` invocations have been answered; their durations and answers, in order.
    pub async fn finished(&self, count: usize, timeout: Duration) -> Result<Vec<(Duration, Answer)>, String> {
        self.wait(timeout, |inner| {
            (inner.finished.len() >= count).then(|| inner.finished.clone())
        })
        .await
    }

    async fn wait<T>(&self, timeout: Duration, mut ready: impl FnMut(&Inner) -> Option<T>) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(value) = self.shared.with(|inner| (ready(inner), false)) {
                return Ok(value);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(format!("runtime API stand-in: nothing after {timeout:?}"));
            }
        }
    }
}

/// The variables Lambda defines for a function (its documented set, less the ones only managed runtimes
/// read), so nothing of this machine's shell (SSL_CERT_DIR, RUST_LOG, ...) changes what is measured.
/// AWS_* (region, credentials, the local stack's endpoint), PATH and the Python venv pass through.
fn lambda_environment() -> impl Iterator<Item = (String, String)> {
    let passed = |name: &str| name.starts_with("AWS_") || ["PATH", "VIRTUAL_ENV"].contains(&name);
    std::env::vars().filter(move |(name, _)| passed(name)).chain(
        [
            ("LANG", "en_US.UTF-8"),
            ("TZ", ":UTC"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    )
}

pub fn spawn(api: &RuntimeApi, command: &[String], environment: &[(&str, String)]) -> std::io::Result<Child> {
    // Leading NAME=VALUE words set variables for the command, as env(1) would, without another exec.
    let assignments = command
        .iter()
        .take_while(|word| word.split_once('=').is_some_and(|(name, _)| !name.contains('/')));
    let assigned: Vec<(&str, &str)> = assignments.filter_map(|word| word.split_once('=')).collect();
    let (program, args) = command[assigned.len()..]
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command given"))?;
    Command::new(program)
        .args(args)
        .env_clear()
        .envs(lambda_environment())
        .envs(assigned)
        .env("AWS_LAMBDA_RUNTIME_API", api.address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .envs(environment.iter().map(|(name, value)| (*name, value.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// SIGTERM first (a profiler wrapping the bootstrap writes its data then), SIGKILL after 10 s.
pub fn stop(mut child: Child) -> std::io::Result<()> {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status()?;
    for _ in 0..100 {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}

async fn next(State(shared): State<Shared>) -> (HeaderMap, Bytes) {
    loop {
        let changed = shared.changed.notified();
        let handed = shared.with(|inner| {
            let first = inner.first_next.is_none();
            inner.first_next.get_or_insert_with(Instant::now);
            let Some(payload) = inner.pending.pop_front() else {
                return (None, first);
            };
            inner.next_id += 1;
            let id = format!("bench-{}", inner.next_id);
            inner.handed.insert(id.clone(), Instant::now());
            (Some((id, payload)), true)
        });
        if let Some((id, payload)) = handed {
            return (invocation_headers(&id), Bytes::from(payload));
        }
        // Like the real API: the request stays open until there is an invocation.
        changed.await;
    }
}

fn invocation_headers(id: &str) -> HeaderMap {
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", id.to_owned());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
    );
    headers
}

fn finish(shared: &Shared, id: &str, answer: Answer) -> StatusCode {
    shared.with(|inner| match inner.handed.remove(id) {
        Some(at) => {
            inner.finished.push((at.elapsed(), answer));
            (StatusCode::ACCEPTED, true)
        }
        None => (StatusCode::NOT_FOUND, false),
    })
}

async fn response(State(shared): State<Shared>, Path(id): Path<String>) -> StatusCode {
    finish(&shared, &id, Answer::Response)
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&shared, &id, Answer::Error(String::from_utf8_lossy(&body).into_owned()))
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    shared.with(|inner| {
        (
            inner.init_error = Some(String::from_utf8_lossy(&body).into_owned()),
            true,
        )
    });
    StatusCode::ACCEPTED
}
