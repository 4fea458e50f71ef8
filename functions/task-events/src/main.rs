use lambda_body::WholeBody;
use lambda_runtime::Error;
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
    let store = TaskStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name.clone());
    let handler = Handler::new(store, config, StdoutSink);
    let handler = &handler;
    // The handler parses the whole invocation body itself, so trailing bytes, an empty body and the
    // size limit are judged on what was sent (lambda_body: lambda_runtime reads only the first value).
    lambda_body::run(move |body: WholeBody| async move { handler.handle(body.as_bytes()).await }).await
}
