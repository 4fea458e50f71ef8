//! What the integration tests share: a fresh table per test on the local stack, the real handler
//! writing to it with an in-memory metrics sink, and readers for fixtures and published samples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use task_events::{Config, Handler, HandlerError, MemorySink, Response};
use timing_domain::emf_check::validate_emf;
use timing_domain::request::Limits;
use timing_domain::token::TokenKey;
use timing_dynamodb::TaskStore;

use crate::generator::Lifecycle;
use crate::local::{Error, create_tables_with_stream, dynamodb_from_env, unique_name};
use crate::replay::{expected_rollups, rollup_violations, scan_rollups};
use crate::stream::{Consumer, PollerFigures, PollerPlan, StreamPoller};

pub struct TestStack {
    pub handler: Arc<Handler<MemorySink>>,
    pub store: TaskStore,
    pub table: String,
    pub rollup_table: String,
    /// task-rollups, fed from the table's stream by [`TestStack::drain`].
    pub rollups: Arc<task_rollups::Handler>,
    poller: tokio::sync::Mutex<Option<StreamPoller>>,
}

impl TestStack {
    /// New, empty tables (records and rollups) and a handler that writes to them.
    pub async fn new() -> Result<TestStack, Error> {
        Self::with_client(dynamodb_from_env().await?).await
    }

    /// The same, with a client of the caller's (one that injects faults, or counts requests).
    pub async fn with_client(client: aws_sdk_dynamodb::Client) -> Result<TestStack, Error> {
        Self::build(client, true).await
    }

    /// New tables as a stack from before the stream had them: the tasks table without its stream.
    pub async fn without_stream() -> Result<TestStack, Error> {
        Self::build(dynamodb_from_env().await?, false).await
    }

    async fn build(client: aws_sdk_dynamodb::Client, stream: bool) -> Result<TestStack, Error> {
        let table = unique_name("test-tasks");
        let rollup_table = create_tables_with_stream(&client, &table, stream).await?;
        let config = Config {
            table_name: table.clone(),
            metrics_namespace: "Test/TaskTiming".into(),
            retention_days: 90,
            slow_startup_seconds: None,
            lazy_loading_families: vec!["checkout-soci".into()],
        };
        let store = TaskStore::new(client, table.clone()).with_rollup_table(rollup_table.clone());
        Ok(TestStack {
            handler: Arc::new(Handler::new(store.clone(), config, MemorySink::default())),
            rollups: Arc::new(task_rollups::Handler::new(store.clone())),
            store,
            table,
            rollup_table,
            poller: tokio::sync::Mutex::new(None),
        })
    }

    /// Uses `client` for task-rollups' DynamoDB calls (one that injects faults on the consumer's side).
    pub fn with_consumer_client(mut self, client: aws_sdk_dynamodb::Client) -> TestStack {
        let store = TaskStore::new(client, self.table.clone()).with_rollup_table(self.rollup_table.clone());
        self.rollups = Arc::new(task_rollups::Handler::new(store));
        self
    }

    /// Feeds everything written so far through the stream to task-rollups (the first call fixes the plan).
    pub async fn drain_with(&self, plan: PollerPlan) -> Result<PollerFigures, Error> {
        let mut poller = self.poller.lock().await;
        if poller.is_none() {
            let consumer = Consumer::InProcess(self.rollups.clone());
            *poller = Some(StreamPoller::open(self.store.client(), &self.table, consumer, plan).await?);
        }
        match poller.as_mut() {
            Some(poller) => poller.drain().await,
            None => Err("no poller".into()),
        }
    }

    /// Lost, doubled or wrong entries of the rollup table against the generator's truth: a consistent Scan
    /// through a client without faults (the stack's may inject them).
    pub async fn rollup_violations(&self, lifecycles: &[Lifecycle]) -> Result<Vec<String>, Error> {
        let rollups = scan_rollups(&dynamodb_from_env().await?, &self.rollup_table).await?;
        Ok(rollup_violations(&expected_rollups(lifecycles), &rollups))
    }

    /// [`Self::drain_with`] the deployed mapping's plan: the rollups then hold every write so far.
    pub async fn drain(&self) -> Result<PollerFigures, Error> {
        self.drain_with(PollerPlan::PLAIN).await
    }

    /// A task-summary handler reading this stack's table, with the given limits and page size.
    pub fn summary(&self, limits: Limits, query_page_size: Option<i32>) -> task_summary::Handler {
        let config = task_summary::Config {
            metrics_namespace: timing_domain::metrics::DEFAULT_NAMESPACE.to_owned(),
            table_name: self.table.clone(),
            rollup_table_name: self.rollup_table.clone(),
            limits,
            query_page_size,
            token_key: None,
        };
        let key = TokenKey::from_secret("a test secret of at least thirty-two bytes").unwrap_or_else(|e| panic!("{e}"));
        task_summary::Handler::new(self.store.clone(), config, key)
    }

    /// Delivers one event to the handler, as the Lambda runtime would: its raw JSON.
    pub async fn deliver(&self, event: &Value) -> Result<Response, HandlerError> {
        deliver(&self.handler, event).await
    }

    /// Every EMF line emitted so far, parsed, each checked against the EMF rules.
    pub fn documents(&self) -> Vec<Value> {
        let lines = self
            .handler
            .sink()
            .0
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default();
        let mut documents = Vec::with_capacity(lines.len());
        for line in lines {
            assert!(!line.contains('\n'), "an EMF document must be one line: {line}");
            let document: Value = serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
            if let Err(violation) = validate_emf(&document) {
                panic!("{violation}: {document}");
            }
            documents.push(document);
        }
        documents
    }

    /// How many times each metric of each task was emitted, by taskArn.
    pub fn emission_counts_by_task(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for ((arn, metric), values) in self.emissions() {
            counts.entry(arn).or_default().insert(metric, values.len());
        }
        counts
    }

    /// How many times each (taskArn, metric) was emitted, with the values (the documents by snapshotter
    /// aside: tests/tests/reports.rs counts those).
    pub fn emissions(&self) -> BTreeMap<(String, String), Vec<f64>> {
        let mut emissions: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for document in self.documents().into_iter().filter(|d| d.get("Snapshotter").is_none()) {
            let task = document["taskArn"].as_str().unwrap_or_default().to_owned();
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let name = metric["Name"].as_str().unwrap_or_default().to_owned();
                let value = document[&name].as_f64().unwrap_or(f64::NAN);
                emissions.entry((task.clone(), name)).or_default().push(value);
            }
        }
        emissions
    }
}

/// Delivers one event to a handler as its raw JSON.
pub async fn deliver(handler: &Handler<MemorySink>, event: &Value) -> Result<Response, HandlerError> {
    handler.handle(event.to_string().as_bytes()).await
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(name: &str) -> Value {
    let path = repo_root().join("fixtures/events").join(name);
    let text = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The published samples in ../shared/ecs-events, by file name, when that folder exists.
pub fn published_samples() -> Option<BTreeMap<String, Value>> {
    let dir = repo_root().join("../shared/ecs-events");
    let entries = std::fs::read_dir(&dir).ok()?;
    let mut samples = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let text = std::fs::read(entry.path()).ok()?;
            samples.insert(name, serde_json::from_slice(&text).ok()?);
        }
    }
    Some(samples)
}

/// Gives the event's task a new id (same ARN format), so runs and tests never share a record.
pub fn with_task_suffix(mut event: Value, suffix: &str) -> Value {
    if let Some(arn) = event["detail"]["taskArn"].as_str() {
        let renamed = format!("{arn}{suffix}");
        event["detail"]["taskArn"] = Value::String(renamed);
    }
    event
}
