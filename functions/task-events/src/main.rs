use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use shared::store::TaskStore;
use task_events::{Config, Handler, StdoutSink};

// Same allocator as the benchmark that measures the per-event core (tests/benches/core.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One invocation at a time: worker threads only add wake-ups (docs/benchmarks.md: less CPU per event, less RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(shared::store::write_path_timeouts())
        .load()
        .await;
    let store = TaskStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name.clone())
        .with_rollup_table(config.rollup_table_name.clone());
    let handler = Handler::new(store, config, StdoutSink);
    let handler = &handler;
    // The payload stays raw JSON: the handler parses it once, straight into the typed event.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        handler.handle(event.payload.get().as_bytes()).await
    }))
    .await
}
