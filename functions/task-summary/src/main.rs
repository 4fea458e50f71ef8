use lambda_body::WholeBody;
use lambda_runtime::Error;
use task_summary::{Config, Handler};
use timing_domain::token::TokenKey;
use timing_dynamodb::TaskStore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One invocation at a time: worker threads only add wake-ups (docs/benchmarks.md: less CPU per event, less RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let token_key = match config.token_key.clone() {
        Some(key) => key,
        None => {
            tracing::warn!("TOKEN_SECRET is not set: nextToken values only work on this instance");
            TokenKey::random()?
        }
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = TaskStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name.clone())
        .with_rollup_table(config.rollup_table_name.clone());
    let handler = Handler::new(store, config, token_key);
    let handler = &handler;
    // The handler parses the whole invocation body itself, so trailing bytes, an empty body and the
    // size limit are judged on what was sent (lambda_body: lambda_runtime reads only the first value).
    lambda_body::run(move |body: WholeBody| async move { handler.handle(body.as_bytes()).await }).await
}
