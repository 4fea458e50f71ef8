//! The pure domain of ecs-task-timing: no I/O, no AWS SDK (`cargo tree -p timing-domain | grep -c aws-sdk`
//! is 0). What the functions compute lives here; how it is stored lives in `timing-dynamodb`.
//!
//! - the input: `event` (ECS Task State Change), `report` (the sidecar's image report), `arn`, `timestamp`
//! - the record: `timing` (phases), `record` (one per task), `metrics` (ledger and EMF document)
//! - the rollups: `sketch` (log-bucketed histogram), `rollup` (markers, series, deltas), `stream` (what a
//!   write of a record changes in its rollup items)
//! - the questions: `request` and `token` (task-summary's requests), `query` (what a request reads),
//!   `stats` (percentiles, Mann–Whitney U, bootstrap)

pub mod arn;
#[cfg(any(test, feature = "test-support"))]
pub mod emf_check;
pub mod event;
pub mod incoming;
pub mod metrics;
pub mod query;
pub mod record;
pub mod report;
pub mod request;
pub mod rollup;
pub mod sketch;
pub mod snapshotter_metrics;
pub mod stats;
pub mod stream;
pub mod timestamp;
pub mod timing;
pub mod token;
