//! task-import: the history a CloudWatch Logs group keeps (the SOCI toolbox's `ecs-task-events` sample writes
//! every "ECS Task State Change" it sees to `/ecs/cluster/events/<cluster>`, the EventBridge event JSON as
//! each message) brought in through task-events' own parse and record path, so the records are the ones
//! task-events would have written and the table's stream builds the rollups.
//!
//! Importing is idempotent (the record write is), so a second import changes nothing and a resumed one
//! may read a page again. What is not a task state change is rejected with its reason, never lost.

pub mod checkpoint;
pub mod error;
pub mod import;
pub mod metrics_out;
pub mod progress;

pub use checkpoint::Checkpoint;
pub use error::ImportError;
pub use import::{CollectingSink, ImportOptions, Importer, MetricsTarget};
pub use progress::Counts;
