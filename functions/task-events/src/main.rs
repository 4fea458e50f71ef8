use lambda_body::{WholeBody, WholeBodyLayer};
use lambda_runtime::layers::TracingLayer;
use lambda_runtime::{Error, LambdaEvent, Runtime, service_fn};
use task_events::{Config, Handler, StdoutSink};
use timing_dynamodb::TaskStore;

// Same allocator as the benchmark that measures the per-event core (tests/benches/core.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One invocation at a time: worker threads only add wake-ups (docs/benchmarks.md: less CPU per event, less RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timing_dynamodb::task_store::write_path_timeouts())
        .load()
        .await;
    let store = TaskStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name.clone())
        .with_rollup_table(config.rollup_table_name.clone());
    let handler = Handler::new(store, config, StdoutSink);
    let handler = &handler;
    // lambda_runtime::run, with WholeBodyLayer in front: the handler parses the whole invocation body
    // itself, so trailing bytes, an empty body and the size limit are judged on what was sent.
    let service =
        service_fn(move |event: LambdaEvent<WholeBody>| async move { handler.handle(event.payload.as_bytes()).await });
    Runtime::new(service)
        .layer(TracingLayer::new())
        .layer(WholeBodyLayer)
        .run()
        .await
}
