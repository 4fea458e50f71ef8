//! The local stand-in for the stream's event source mapping: reads TABLE_NAME's stream on the local stack
//! and invokes task-rollups through `cargo lambda invoke` (the function `cargo lambda watch` serves on
//! LAMBDA_INVOKE_PORT), in batches of up to 100, as deployed.
//!
//!   stream_poller follow    poll every second until stopped (`make local-up`, `make demo`, `make test`)
//!   stream_poller drain     apply everything written so far, then exit (the demo, before its summaries)
//!
//! Two pollers may run at once on one table: each applies every record in order under the same shard
//! name, and the rollups' guard applies each record once (docs/rollups.md).

use std::time::Duration;

use task_timing_tests::local::{Error, dynamodb_from_env};
use task_timing_tests::stream::{Consumer, PollerPlan, StreamPoller};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "ecs-task-timing-tasks".to_owned());
    let port =
        std::env::var("LAMBDA_INVOKE_PORT").map_err(|_| "LAMBDA_INVOKE_PORT is not set: run inside the local stack")?;
    let client = dynamodb_from_env().await?;
    let mut poller = StreamPoller::open(&client, &table, Consumer::CargoLambda { port }, PollerPlan::PLAIN).await?;
    match mode.as_str() {
        "drain" => {
            let figures = poller.drain().await?;
            eprintln!("stream poller: {figures}");
            Ok(())
        }
        "follow" => poller.follow(Duration::from_secs(1)).await,
        _ => Err("usage: stream_poller follow | drain".into()),
    }
}
