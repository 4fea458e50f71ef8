//! Fault injection between the AWS SDK and the local stack: an HTTP client that, on a seeded
//! schedule, answers a share of TransactWriteItems calls with DynamoDB's TransactionConflict
//! cancellation instead of forwarding them. Like the real service's, a cancelled transaction
//! changes nothing. moto serialises every request, so it never produces a conflict itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::local::{Error, dynamodb_from_env};

/// What was sent and what was injected, for the test's figures.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub requests: AtomicU64,
    pub transactions: AtomicU64,
    pub conflicts_injected: AtomicU64,
}

impl FaultCounts {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct Plan {
    conflict_rate: f64,
    rng: Mutex<fastrand::Rng>,
    counts: Arc<FaultCounts>,
}

#[derive(Debug, Clone)]
pub struct FaultyClient {
    inner: SharedHttpClient,
    plan: Arc<Plan>,
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: Arc<Plan>,
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
        })
    }
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let plan = &self.plan;
        plan.counts.requests.fetch_add(1, Ordering::Relaxed);
        let is_transaction = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.ends_with(".TransactWriteItems"));
        if is_transaction {
            plan.counts.transactions.fetch_add(1, Ordering::Relaxed);
            let draw = plan.rng.lock().map(|mut rng| rng.f64()).unwrap_or(1.0);
            if draw < plan.conflict_rate {
                plan.counts.conflicts_injected.fetch_add(1, Ordering::Relaxed);
                let items = request
                    .body()
                    .bytes()
                    .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
                    .and_then(|body| body["TransactItems"].as_array().map(Vec::len))
                    .unwrap_or(1);
                return HttpConnectorFuture::ready(Ok(conflict_response(items, draw)));
            }
        }
        self.inner.call(request)
    }
}

/// DynamoDB's answer when another transaction holds one of the items: HTTP 400, one reason per
/// item in request order, `TransactionConflict` on the contended one and `None` on the rest.
pub fn conflict_response(items: usize, draw: f64) -> HttpResponse {
    let contended = ((draw * 1e6) as usize) % items.max(1);
    let reasons: Vec<serde_json::Value> = (0..items.max(1))
        .map(|i| match i == contended {
            true => {
                serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
            }
            false => serde_json::json!({"Code": "None"}),
        })
        .collect();
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r["Code"].as_str()).collect();
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
        "CancellationReasons": reasons,
    });
    let status = StatusCode::try_from(400u16).unwrap_or_else(|_| unreachable!("400 is a valid status"));
    let mut response = HttpResponse::new(status, SdkBody::from(body.to_string()));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

/// A DynamoDB client for the local stack whose transactions conflict at `conflict_rate`.
pub async fn faulty_dynamodb(conflict_rate: f64, seed: u64) -> Result<(Client, Arc<FaultCounts>), Error> {
    let plain = dynamodb_from_env().await?;
    // The local stack is plain HTTP on loopback (dynamodb_from_env refuses anything else).
    let inner = plain
        .config()
        .http_client()
        .unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
    let counts = Arc::new(FaultCounts::default());
    let client = FaultyClient {
        inner,
        plan: Arc::new(Plan {
            conflict_rate,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            counts: counts.clone(),
        }),
    };
    let config = plain.config().to_builder().http_client(client).build();
    Ok((Client::from_conf(config), counts))
}
