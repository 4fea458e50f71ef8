//! The local stack as tests and tools see it: clients built from the environment that `make local-up`
//! prints, and the tasks table with the same keys and index as infra/.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use timing_dynamodb::keys::{FAMILY_INDEX, PARTITION_KEY, ROLLUP_PARTITION_KEY, ROLLUP_SORT_KEY};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The SDK configuration for the local stack, once `variable` (AWS_ENDPOINT_URL or a service's
/// AWS_ENDPOINT_URL_<SERVICE>) is set to a loopback address: tests never run against real AWS by accident.
pub async fn local_aws_config(variable: &str) -> Result<aws_config::SdkConfig, Error> {
    let endpoint = std::env::var(variable).map_err(|_| {
        format!("{variable} is not set: run through `make test`, or eval \"$(make -s local-up)\" first")
    })?;
    if !(endpoint.starts_with("http://127.")
        || endpoint.starts_with("http://localhost")
        || endpoint.starts_with("http://[::1]"))
    {
        return Err(
            format!("{variable}={endpoint} is not a loopback address; tests only run against the local stack").into(),
        );
    }
    Ok(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

/// A DynamoDB client for AWS_ENDPOINT_URL.
pub async fn dynamodb_from_env() -> Result<Client, Error> {
    Ok(Client::new(&local_aws_config("AWS_ENDPOINT_URL").await?))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, Error> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, Error> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

/// Creates the tasks table (idempotent), with its stream (NEW_AND_OLD_IMAGES) as in infra/.
pub async fn create_tasks_table(client: &Client, name: &str) -> Result<(), Error> {
    create_tasks_table_with_stream(client, name, true).await
}

/// The same, with the stream or without it (the table of a stack from before the stream, for the upgrade).
pub async fn create_tasks_table_with_stream(client: &Client, name: &str, stream: bool) -> Result<(), Error> {
    let index = GlobalSecondaryIndex::builder()
        .index_name(FAMILY_INDEX)
        .key_schema(key("family", KeyType::Hash)?)
        .key_schema(key("createdAt", KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PARTITION_KEY)?)
        .attribute_definitions(string_attribute("family")?)
        .attribute_definitions(string_attribute("createdAt")?)
        .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
        .global_secondary_indexes(index)
        .set_stream_specification(match stream {
            true => Some(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            ),
            false => None,
        })
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(()),
        Err(err) => return Err(aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string().into()),
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expiresAt")
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Creates the rollup table (idempotent): `family` and `periodSeries`, as in infra/.
pub async fn create_rollup_table(client: &Client, name: &str) -> Result<(), Error> {
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(ROLLUP_PARTITION_KEY)?)
        .attribute_definitions(string_attribute(ROLLUP_SORT_KEY)?)
        .key_schema(key(ROLLUP_PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(ROLLUP_SORT_KEY, KeyType::Range)?)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(()),
        Err(err) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string().into()),
    }
}

/// The tasks table and its rollup table (`<name>-rollups`), both created; returns the rollup table's name.
pub async fn create_tables(client: &Client, name: &str) -> Result<String, Error> {
    create_tables_with_stream(client, name, true).await
}

/// [`create_tables`], the tasks table with its stream or without it.
pub async fn create_tables_with_stream(client: &Client, name: &str, stream: bool) -> Result<String, Error> {
    create_tasks_table_with_stream(client, name, stream).await?;
    let rollups = format!("{name}-rollups");
    create_rollup_table(client, &rollups).await?;
    Ok(rollups)
}

/// CPU time of this thread in nanoseconds (with a current-thread runtime, the handler's): for the benchmarks.
pub fn thread_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Writes `items` into `table` 25 at a time (BatchWriteItem), resending what comes back unprocessed.
pub async fn batch_put(
    client: &Client,
    table: &str,
    items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> Result<(), Error> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let mut pending = Vec::with_capacity(25);
        for item in items.by_ref().take(25) {
            pending.push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                    .build(),
            );
        }
        while !pending.is_empty() {
            let output = client.batch_write_item().request_items(table, pending).send().await?;
            pending = output
                .unprocessed_items
                .and_then(|mut items| items.remove(table))
                .unwrap_or_default();
        }
    }
    Ok(())
}

/// A table name no other test run uses.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{:x}",
        std::process::id(),
        nanos ^ u128::from(fastrand::u64(..))
    )
}
