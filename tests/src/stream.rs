//! Plays Lambda's event source mapping against moto's DynamoDB Streams: reads the table's stream,
//! deals its records to simulated shards (moto has one shard per table; a task's records stay on one
//! shard, in order, as DynamoDB keeps a key's), and invokes task-rollups with the event Lambda would
//! send: a tumbling-window event naming the shard. It honours batch item failures and retries a failed
//! invocation, and can do what Lambda may: kill an invocation between two item updates, deliver a batch
//! twice, bisect a failed batch, start the next batch at a failure with other boundaries, and roll shards
//! over (new shard ids) mid-stream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::{EventRecord, StreamRecord, TimeWindowEvent, TimeWindowEventResponse, UserIdentity};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;

use crate::local::{Error, local_aws_config};

/// How the simulated event source mapping behaves.
#[derive(Debug, Clone, Copy)]
pub struct PollerPlan {
    pub shards: usize,
    /// The event source mapping's BatchSize; each batch takes a random size up to it, so retries meet
    /// other boundaries.
    pub batch_size: usize,
    /// After this many records read, every shard rolls over to a new shard id.
    pub rollover_every: Option<usize>,
    /// Share of invocations killed at a random moment (between item updates, or mid-request).
    pub die_rate: f64,
    /// Share of batches delivered twice.
    pub duplicate_rate: f64,
    /// Halve a batch after a failed invocation (BisectBatchOnFunctionError).
    pub bisect: bool,
    pub seed: u64,
}

impl PollerPlan {
    /// What the deployed mapping does with no faults: one shard, batches of up to 100.
    pub const PLAIN: PollerPlan = PollerPlan {
        shards: 1,
        batch_size: 100,
        rollover_every: None,
        die_rate: 0.0,
        duplicate_rate: 0.0,
        bisect: true,
        seed: 1,
    };
}

/// What the poller did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollerFigures {
    pub records: usize,
    pub invocations: usize,
    pub batches_applied: usize,
    pub deaths: usize,
    pub duplicates: usize,
    pub bisections: usize,
    pub partial_failures: usize,
    pub rollovers: usize,
    /// Largest number of records in one invocation.
    pub largest_batch: usize,
    /// moto's extra bare-key INSERTs, dropped (see `is_moto_placeholder`).
    pub moto_placeholders: usize,
    /// Per record applied: milliseconds from its write (the stream's ApproximateCreationDateTime) to the
    /// end of the invocation that applied it.
    pub lags_ms: Vec<u64>,
}

impl std::fmt::Display for PollerFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} stream records in {} invocations ({} batches applied; {} killed mid-batch, {} delivered twice, \
             {} bisected, {} partial failures retried from the failed record, {} shard rollovers)",
            self.records,
            self.invocations,
            self.batches_applied,
            self.deaths,
            self.duplicates,
            self.bisections,
            self.partial_failures,
            self.rollovers
        )
    }
}

impl PollerFigures {
    /// These figures and `other`'s together.
    pub fn merged(&self, other: &PollerFigures) -> PollerFigures {
        let mut sum = self.clone();
        sum.add(other);
        sum
    }

    fn add(&mut self, other: &PollerFigures) {
        self.records += other.records;
        self.invocations += other.invocations;
        self.batches_applied += other.batches_applied;
        self.deaths += other.deaths;
        self.duplicates += other.duplicates;
        self.bisections += other.bisections;
        self.partial_failures += other.partial_failures;
        self.rollovers += other.rollovers;
        self.largest_batch = self.largest_batch.max(other.largest_batch);
        self.moto_placeholders += other.moto_placeholders;
        self.lags_ms.extend(&other.lags_ms);
    }
}

/// Where batches go: the handler in this process, or `cargo lambda invoke` against `cargo lambda watch`.
#[derive(Clone)]
pub enum Consumer {
    InProcess(Arc<task_rollups::Handler>),
    CargoLambda { port: String },
}

impl Consumer {
    async fn invoke(&self, event: TimeWindowEvent) -> Result<TimeWindowEventResponse, String> {
        match self {
            Consumer::InProcess(handler) => handler.handle(event).await.map_err(|err| err.to_string()),
            Consumer::CargoLambda { port } => {
                let payload = serde_json::to_string(&event).map_err(|err| err.to_string())?;
                let port = port.clone();
                let output = tokio::process::Command::new("cargo")
                    .args(["lambda", "invoke", "task-rollups", "--invoke-address", "127.0.0.1"])
                    .args(["--invoke-port", &port, "--data-ascii", &payload])
                    .output()
                    .await
                    .map_err(|err| format!("cargo lambda invoke: {err}"))?;
                let stdout = String::from_utf8_lossy(&output.stdout);
                if !output.status.success() {
                    return Err(format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)));
                }
                serde_json::from_str(stdout.trim()).map_err(|err| format!("{err}: {stdout}"))
            }
        }
    }
}

/// A record as a simulated shard holds it: the shard id it arrived under (rollovers change it).
type Queued = (String, EventRecord);

/// Reads one table's stream and feeds the consumer.
pub struct StreamPoller {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    iterator: Option<String>,
    shards: Vec<(String, VecDeque<Queued>)>,
    generation: usize,
    read_since_rollover: usize,
    consumer: Consumer,
    plan: PollerPlan,
    /// Invocations so far, which seed each batch's faults.
    invocations: usize,
}

fn shard_of(record: &EventRecord, shards: usize) -> usize {
    // FNV-1a of the key: stable across runs, so a task stays on its shard.
    let key = serde_json::to_string(&record.change.keys).unwrap_or_default();
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % shards.max(1) as u64) as usize
}

/// moto 5.2.5 streams an UpdateItem that creates an item as two INSERTs: one of the bare key, then the
/// item. DynamoDB streams one; the bare key's is dropped here, as no write of task-events leaves a bare key.
fn is_moto_placeholder(record: &EventRecord) -> bool {
    record.event_name == "INSERT" && record.change.new_image == record.change.keys
}

fn shard_name(index: usize, generation: usize) -> String {
    format!("shardId-{generation:08}-{index:04}")
}

fn event_record(record: aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> EventRecord {
    let mut event = EventRecord::default();
    event.event_id = record.event_id.unwrap_or_default();
    event.event_name = record
        .event_name
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    event.event_source = record.event_source;
    event.event_version = record.event_version;
    event.aws_region = record.aws_region.unwrap_or_default();
    event.event_source_arn = Some(stream_arn.to_owned());
    event.user_identity = record.user_identity.map(|who| {
        let mut identity = UserIdentity::default();
        identity.type_ = who.r#type.unwrap_or_default();
        identity.principal_id = who.principal_id.unwrap_or_default();
        identity
    });
    if let Some(stream) = record.dynamodb {
        let mut change = StreamRecord::default();
        if let Some(at) = stream.approximate_creation_date_time {
            change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).unwrap_or_default();
        }
        change.keys = stream.keys.unwrap_or_default().into();
        change.new_image = stream.new_image.unwrap_or_default().into();
        change.old_image = stream.old_image.unwrap_or_default().into();
        change.sequence_number = stream.sequence_number;
        change.size_bytes = stream.size_bytes.unwrap_or_default();
        change.stream_view_type = Some(aws_lambda_events::dynamodb::StreamViewType::NewAndOldImages);
        event.change = change;
    }
    event
}

impl StreamPoller {
    /// The poller of `table`'s stream (LatestStreamArn), from its first record (TRIM_HORIZON).
    pub async fn open(
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
        consumer: Consumer,
        plan: PollerPlan,
    ) -> Result<StreamPoller, Error> {
        let described = dynamodb.describe_table().table_name(table).send().await?;
        let stream_arn = described
            .table
            .and_then(|table| table.latest_stream_arn)
            .ok_or_else(|| format!("table {table} has no stream: create it with NEW_AND_OLD_IMAGES"))?;
        let streams = aws_sdk_dynamodbstreams::Client::new(&local_aws_config("AWS_ENDPOINT_URL").await?);
        let shard = streams
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await?
            .stream_description
            .and_then(|description| description.shards?.into_iter().next()?.shard_id)
            .ok_or("the stream has no shard")?;
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator;
        Ok(StreamPoller {
            streams,
            stream_arn,
            iterator,
            shards: (0..plan.shards.max(1))
                .map(|i| (shard_name(i, 0), VecDeque::new()))
                .collect(),
            generation: 0,
            read_since_rollover: 0,
            consumer,
            plan,
            invocations: 0,
        })
    }

    /// Reads what the stream has now into the shards' queues; returns how many records.
    async fn read(&mut self, figures: &mut PollerFigures) -> Result<usize, Error> {
        let mut read = 0;
        while let Some(iterator) = self.iterator.clone() {
            let output = self.streams.get_records().shard_iterator(iterator).send().await?;
            self.iterator = output.next_shard_iterator;
            let records = output.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            for record in records {
                let record = event_record(record, &self.stream_arn);
                if is_moto_placeholder(&record) {
                    figures.moto_placeholders += 1;
                    continue;
                }
                if let Some(every) = self.plan.rollover_every
                    && self.read_since_rollover >= every
                {
                    self.generation += 1;
                    self.read_since_rollover = 0;
                    figures.rollovers += 1;
                    for (index, (name, _)) in self.shards.iter_mut().enumerate() {
                        *name = shard_name(index, self.generation);
                    }
                }
                self.read_since_rollover += 1;
                let index = shard_of(&record, self.shards.len());
                let (name, queue) = &mut self.shards[index];
                queue.push_back((name.clone(), record));
                read += 1;
            }
        }
        figures.records += read;
        Ok(read)
    }

    /// Reads and applies until the stream has nothing new: every record written before the call is then
    /// in the rollups. Shards are processed concurrently, each in order.
    pub async fn drain(&mut self) -> Result<PollerFigures, Error> {
        let mut drained = PollerFigures::default();
        loop {
            let read = self.read(&mut drained).await?;
            let pending: usize = self.shards.iter().map(|(_, queue)| queue.len()).sum();
            if read == 0 && pending == 0 {
                break;
            }
            let mut workers = tokio::task::JoinSet::new();
            for (index, (_, queue)) in self.shards.iter_mut().enumerate() {
                let queue = std::mem::take(queue);
                let (consumer, plan, arn) = (self.consumer.clone(), self.plan, self.stream_arn.clone());
                let seed = plan
                    .seed
                    .wrapping_mul(31)
                    .wrapping_add((index + self.invocations + drained.invocations) as u64);
                workers.spawn(process_shard(queue, consumer, plan, arn, seed));
            }
            while let Some(done) = workers.join_next().await {
                drained.add(&done??);
            }
        }
        self.invocations += drained.invocations;
        Ok(drained)
    }

    /// Polls every `interval`, draining each time, until the process is stopped (`make local-up`, the demo).
    pub async fn follow(&mut self, interval: Duration) -> Result<(), Error> {
        loop {
            let figures = self.drain().await?;
            if figures.records > 0 {
                eprintln!("stream poller: {figures}");
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// Consecutive failed invocations of one batch before the poller gives up (Lambda would retry until the
/// records expire, then send them to the on-failure destination).
const MAX_CONSECUTIVE_FAILURES: usize = 50;

async fn process_shard(
    mut queue: VecDeque<Queued>,
    consumer: Consumer,
    plan: PollerPlan,
    stream_arn: String,
    seed: u64,
) -> Result<PollerFigures, Error> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut figures = PollerFigures::default();
    let mut limit = plan.batch_size.max(1);
    let mut failures = 0;
    while let Some((shard_id, _)) = queue.front() {
        let shard_id = shard_id.clone();
        let size = rng.usize(1..=limit);
        // One shard per batch: a rolled-over shard's records wait for the next batch.
        let batch: Vec<EventRecord> = queue
            .iter()
            .take(size)
            .take_while(|(id, _)| *id == shard_id)
            .map(|(_, record)| record.clone())
            .collect();
        let mut event = TimeWindowEvent::default();
        event.dynamo_db_event.records = batch.clone();
        event.time_window_properties.shard_id = Some(shard_id.clone());
        event.time_window_properties.event_source_arn = Some(stream_arn.clone());
        figures.largest_batch = figures.largest_batch.max(batch.len());
        if rng.f64() < plan.duplicate_rate {
            // Delivered twice: the first delivery's outcome is lost (as if its answer never came back).
            figures.duplicates += 1;
            figures.invocations += 1;
            let _ = consumer.invoke(event.clone()).await;
        }
        figures.invocations += 1;
        let result = if matches!(consumer, Consumer::InProcess(_)) && rng.f64() < plan.die_rate {
            // Killed at a random moment: some item updates done, maybe one in flight, the rest not.
            let deadline = Duration::from_micros(rng.u64(0..4_000));
            match tokio::time::timeout(deadline, consumer.invoke(event)).await {
                Ok(answer) => answer,
                Err(_) => {
                    figures.deaths += 1;
                    Err("killed".to_owned())
                }
            }
        } else {
            consumer.invoke(event).await
        };
        match result {
            Ok(response) => {
                let failed_at = response.batch_item_failures.first().and_then(|failure| {
                    let failed = failure.item_identifier.as_deref()?;
                    batch
                        .iter()
                        .position(|record| record.change.sequence_number.as_deref() == Some(failed))
                });
                let done = failed_at.unwrap_or(batch.len());
                let now = chrono::Utc::now();
                figures.lags_ms.extend(batch[..done].iter().map(|record| {
                    let written = record.change.approximate_creation_date_time;
                    u64::try_from((now - written).num_milliseconds()).unwrap_or(0)
                }));
                queue.drain(..done);
                limit = plan.batch_size.max(1);
                if failed_at.is_some() {
                    figures.partial_failures += 1;
                    failures += 1;
                } else {
                    figures.batches_applied += 1;
                    failures = 0;
                }
            }
            Err(_) => {
                failures += 1;
                if plan.bisect && batch.len() > 1 {
                    figures.bisections += 1;
                    limit = batch.len() / 2;
                }
            }
        }
        if failures >= MAX_CONSECUTIVE_FAILURES {
            return Err(format!("{shard_id}: a batch failed {failures} times in a row").into());
        }
    }
    Ok(figures)
}
