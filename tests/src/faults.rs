//! Fault injection between the AWS SDK and the local stack: an HTTP client that, on a seeded schedule,
//! answers a share of DynamoDB requests with one of the failures AWS documents instead of (or after)
//! forwarding them, and can stage an outage (every request in a range fails). Error bodies are
//! DynamoDB's own (awsJson1.0 `__type`), so the SDK classifies and retries them as it would on AWS.
//! moto serialises every request, so it never produces a throttle itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::local::{Error, dynamodb_from_env};

/// The failures injected, as AWS documents them for DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// HTTP 400 ProvisionedThroughputExceededException.
    ProvisionedThroughputExceeded,
    /// HTTP 400 ThrottlingException.
    Throttling,
    /// HTTP 500 InternalServerError.
    InternalServerError,
    /// HTTP 503 ServiceUnavailable.
    ServiceUnavailable,
    /// The connection is reset before the request reaches the service.
    ConnectionReset,
    /// No answer before the client's attempt timeout; the service never saw the request.
    Timeout,
    /// The service applied the request, but its answer never arrives (the client times out).
    LostAnswer,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::ProvisionedThroughputExceeded,
        Fault::Throttling,
        Fault::InternalServerError,
        Fault::ServiceUnavailable,
        Fault::ConnectionReset,
        Fault::Timeout,
        Fault::LostAnswer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::ProvisionedThroughputExceeded => "ProvisionedThroughputExceeded",
            Fault::Throttling => "ThrottlingException",
            Fault::InternalServerError => "HTTP 500",
            Fault::ServiceUnavailable => "HTTP 503",
            Fault::ConnectionReset => "connection reset",
            Fault::Timeout => "timeout",
            Fault::LostAnswer => "applied, answer lost",
        }
    }
}

/// What to inject: a share of requests, the kinds (each time the least injected of those that apply to the
/// request), and an optional outage: requests `start..start + length` (in arrival order) all get 503.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub rate: f64,
    pub kinds: Vec<Fault>,
    pub outage: Option<(u64, u64)>,
    pub seed: u64,
    /// At most this many drawn faults (the outage aside).
    pub limit: u64,
}

/// What was sent and what was injected, for the tests' figures.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub requests: AtomicU64,
    pub transactions: AtomicU64,
    injected: [AtomicU64; Fault::ALL.len()],
    pub outage_failures: AtomicU64,
}

impl FaultCounts {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn injected(&self, fault: Fault) -> u64 {
        Self::get(&self.injected[fault as usize])
    }
}

/// Turns injection on and off (off: a dead-letter redrive after the outage).
#[derive(Debug, Clone)]
pub struct FaultSwitch(Arc<AtomicBool>);

impl FaultSwitch {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Schedule {
    plan: FaultPlan,
    rng: Mutex<fastrand::Rng>,
    counts: Arc<FaultCounts>,
    on: Arc<AtomicBool>,
}

impl Schedule {
    /// The fault for the next request, if any: decided in arrival order from the seed.
    fn draw(&self, is_transaction: bool) -> Option<Decision> {
        let arrival = self.counts.requests.fetch_add(1, Ordering::Relaxed);
        if is_transaction {
            self.counts.transactions.fetch_add(1, Ordering::Relaxed);
        }
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        if let Some((start, length)) = self.plan.outage
            && (start..start + length).contains(&arrival)
        {
            self.counts.outage_failures.fetch_add(1, Ordering::Relaxed);
            return Some(Decision::Outage);
        }
        let kinds = &self.plan.kinds;
        let (draw, pick) = self.rng.lock().map(|mut rng| (rng.f64(), rng.usize(..))).ok()?;
        let drawn: u64 = Fault::ALL.iter().map(|fault| self.counts.injected(*fault)).sum();
        if kinds.is_empty() || draw >= self.plan.rate || drawn >= self.plan.limit {
            return None;
        }
        // The least injected kind, so every kind occurs even in a short run; ties are drawn.
        let fewest = kinds
            .iter()
            .map(|fault| self.counts.injected(*fault))
            .min()
            .unwrap_or(0);
        let least: Vec<Fault> = (kinds.iter().copied())
            .filter(|fault| self.counts.injected(*fault) == fewest)
            .collect();
        let fault = least[pick % least.len()];
        self.counts.injected[fault as usize].fetch_add(1, Ordering::Relaxed);
        Some(Decision::Fault(fault))
    }
}

enum Decision {
    Fault(Fault),
    Outage,
}

#[derive(Debug, Clone)]
pub struct FaultyClient {
    inner: SharedHttpClient,
    schedule: Arc<Schedule>,
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    schedule: Arc<Schedule>,
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            schedule: self.schedule.clone(),
        })
    }
}

/// Longer than any attempt timeout: the SDK gives up on the attempt first.
const NEVER: Duration = Duration::from_secs(600);

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let is_transaction = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.ends_with(".TransactWriteItems"));
        let fault = match self.schedule.draw(is_transaction) {
            None => return self.inner.call(request),
            Some(Decision::Outage) => return HttpConnectorFuture::ready(Ok(service_unavailable())),
            Some(Decision::Fault(fault)) => fault,
        };
        match fault {
            Fault::ProvisionedThroughputExceeded => HttpConnectorFuture::ready(Ok(error_response(
                400,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            ))),
            Fault::Throttling => HttpConnectorFuture::ready(Ok(error_response(
                400,
                "com.amazon.coral.availability#ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ))),
            Fault::InternalServerError => HttpConnectorFuture::ready(Ok(error_response(
                500,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "Internal server error",
            ))),
            Fault::ServiceUnavailable => HttpConnectorFuture::ready(Ok(service_unavailable())),
            Fault::ConnectionReset => HttpConnectorFuture::ready(Err(ConnectorError::io(Box::new(
                std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            )))),
            Fault::Timeout => HttpConnectorFuture::new(async {
                tokio::time::sleep(NEVER).await;
                Err(ConnectorError::timeout("injected: no answer".into()))
            }),
            Fault::LostAnswer => {
                let applied = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    // The service answers; the answer is dropped on the way back.
                    let _ = applied.await;
                    tokio::time::sleep(NEVER).await;
                    Err(ConnectorError::timeout("injected: answer lost".into()))
                })
            }
        }
    }
}

fn error_response(status: u16, error_type: &str, message: &str) -> HttpResponse {
    json_response(status, serde_json::json!({"__type": error_type, "message": message}))
}

/// An awsJson1.0 answer, as DynamoDB sends it.
fn json_response(status: u16, body: serde_json::Value) -> HttpResponse {
    let status = StatusCode::try_from(status).unwrap_or_else(|_| unreachable!("a valid HTTP status"));
    let mut response = HttpResponse::new(status, SdkBody::from(body.to_string()));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

fn service_unavailable() -> HttpResponse {
    error_response(
        503,
        "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
        "The service is unavailable.",
    )
}

/// A DynamoDB client for the local stack that only counts requests (and transactions). Without
/// task-events' attempt timeout: the tests that count requests per delivery must not see a retry because
/// moto, busy with a concurrent test, took more than 2 s to answer.
pub async fn counting_dynamodb() -> Result<(Client, Arc<FaultCounts>), Error> {
    let plan = FaultPlan {
        rate: 0.0,
        kinds: Vec::new(),
        outage: None,
        seed: 0,
        limit: 0,
    };
    let (client, counts, _) = client_with_faults(plan, None).await?;
    Ok((client, counts))
}

/// A DynamoDB client for the local stack that fails as `plan` says, with task-events' timeouts (so a
/// timeout or a lost answer is retried by the SDK as in the function).
pub async fn dynamodb_with_faults(plan: FaultPlan) -> Result<(Client, Arc<FaultCounts>, FaultSwitch), Error> {
    client_with_faults(plan, Some(timing_dynamodb::task_store::write_path_timeouts())).await
}

async fn client_with_faults(
    plan: FaultPlan,
    timeouts: Option<aws_sdk_dynamodb::config::timeout::TimeoutConfig>,
) -> Result<(Client, Arc<FaultCounts>, FaultSwitch), Error> {
    let plain = dynamodb_from_env().await?;
    // The local stack is plain HTTP on loopback (dynamodb_from_env refuses anything else).
    let inner = plain
        .config()
        .http_client()
        .unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
    let counts = Arc::new(FaultCounts::default());
    let on = Arc::new(AtomicBool::new(true));
    let client = FaultyClient {
        inner,
        schedule: Arc::new(Schedule {
            rng: Mutex::new(fastrand::Rng::with_seed(plan.seed)),
            plan,
            counts: counts.clone(),
            on: on.clone(),
        }),
    };
    let mut config = plain.config().to_builder().http_client(client);
    if let Some(timeouts) = timeouts {
        config = config.timeout_config(timeouts);
    }
    let config = config.build();
    Ok((Client::from_conf(config), counts, FaultSwitch(on)))
}
