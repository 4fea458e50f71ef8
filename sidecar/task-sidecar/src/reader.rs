//! Reads `${ECS_CONTAINER_METADATA_URI_V4}/task` with a timeout per attempt and retries for the
//! failures that can pass (timeouts, connection errors, 5xx and 429).

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Empty};
use hyper::{StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::metadata::{MetadataError, parse_task_metadata};
use crate::sample::Sample;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("no answer from {uri} within {timeout_ms} ms")]
    Timeout { uri: String, timeout_ms: u128 },
    #[error("request to {uri} failed: {message}")]
    Http { uri: String, message: String },
    #[error("{uri} answered HTTP {status}: {body}")]
    Status { uri: String, status: u16, body: String },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("invalid metadata endpoint {0:?}: expected an http:// URI (ECS_CONTAINER_METADATA_URI_V4)")]
    Endpoint(String),
}

impl ReadError {
    fn is_transient(&self) -> bool {
        match self {
            ReadError::Timeout { .. } | ReadError::Http { .. } => true,
            ReadError::Status { status, .. } => *status >= 500 || *status == 429,
            ReadError::Metadata(_) | ReadError::Endpoint(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// `ECS_CONTAINER_METADATA_URI_V4`, without `/task`.
    pub endpoint: String,
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    pub backoff: Duration,
}

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A plain-HTTP client: the metadata endpoint and the monitor's own endpoint are both loopback or
/// link-local HTTP.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn failed(uri: &Uri, err: &dyn std::fmt::Display) -> ReadError {
    ReadError::Http {
        uri: uri.to_string(),
        message: err.to_string(),
    }
}

/// `exchange` (a request to `uri`), given up after `timeout`.
async fn within<T>(
    uri: &Uri,
    timeout: Duration,
    exchange: impl Future<Output = Result<T, ReadError>>,
) -> Result<T, ReadError> {
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ReadError::Timeout {
            uri: uri.to_string(),
            timeout_ms: timeout.as_millis(),
        })?
}

/// GET `uri`, with `timeout` on the whole exchange (headers and body).
pub async fn get(client: &HttpClient, uri: &Uri, timeout: Duration) -> Result<(StatusCode, Bytes), ReadError> {
    within(uri, timeout, async {
        let response = client.get(uri.clone()).await.map_err(|err| failed(uri, &err))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|err| failed(uri, &err))?;
        Ok((status, body.to_bytes()))
    })
    .await
}

/// GET `uri` for its status alone, `timeout` until the headers. The body is never read: a readiness URL's
/// answer may be large and only its status counts, and the answer's time is its headers' arrival.
pub async fn get_status(client: &HttpClient, uri: &Uri, timeout: Duration) -> Result<StatusCode, ReadError> {
    within(uri, timeout, async {
        let response = client.get(uri.clone()).await.map_err(|err| failed(uri, &err))?;
        Ok(response.status())
    })
    .await
}

#[derive(Clone)]
pub struct MetadataReader {
    client: HttpClient,
    task_uri: Uri,
    config: ReaderConfig,
}

impl MetadataReader {
    pub fn new(config: ReaderConfig) -> Result<MetadataReader, ReadError> {
        let text = format!("{}/task", config.endpoint.trim_end_matches('/'));
        let task_uri: Uri = text.parse().map_err(|_| ReadError::Endpoint(config.endpoint.clone()))?;
        if task_uri.scheme_str() != Some("http") {
            return Err(ReadError::Endpoint(config.endpoint.clone()));
        }
        Ok(MetadataReader {
            client: http_client(),
            task_uri,
            config,
        })
    }

    /// One sample, after up to `retries` more attempts on transient failures.
    pub async fn read(&self) -> Result<Sample, ReadError> {
        let mut attempt = 0;
        loop {
            match self.read_once().await {
                Err(err) if err.is_transient() && attempt < self.config.retries => {
                    tracing::warn!(error = %err, attempt, "metadata read failed; retrying");
                    tokio::time::sleep(self.config.backoff * 2u32.saturating_pow(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn read_once(&self) -> Result<Sample, ReadError> {
        let (status, body) = get(&self.client, &self.task_uri, self.config.timeout).await?;
        // Stamped when the answer arrived: the reference age is measured from here.
        let sampled_at = Utc::now();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(ReadError::Status {
                uri: self.task_uri.to_string(),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(Sample {
            sampled_at,
            metadata: parse_task_metadata(&body)?,
        })
    }
}
