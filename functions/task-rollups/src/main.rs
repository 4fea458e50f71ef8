use aws_lambda_events::dynamodb::TimeWindowEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use task_rollups::{Config, Handler};
use timing_dynamodb::TaskStore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One batch at a time per execution environment: worker threads only add wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_lookup(|name| std::env::var(name).ok());
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timing_dynamodb::task_store::write_path_timeouts())
        .load()
        .await;
    let store = TaskStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name)
        .with_rollup_table(config.rollup_table_name);
    let handler = Handler::new(store);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<TimeWindowEvent>| async move {
        handler.handle(event.payload).await
    }))
    .await
}
