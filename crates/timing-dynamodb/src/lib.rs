//! The DynamoDB adapter of ecs-task-timing: how the domain's records and rollups are stored and read.
//!
//! - `keys`: table names, keys, the index, bookkeeping attributes, rollup sort keys (the layout, in one place)
//! - `expression`: the one builder of every request's expressions
//! - `items`: items decoded into records and rollup items
//! - `reads`: the Queries of the summaries, built without I/O
//! - `task_store`: the record write (one conditional UpdateItem) and the index reads
//! - `rollup_store`: rollup item updates and the rollup reads
//! - `family_index`: which families had tasks on which day (for the regression watch)
//! - `legacy_rollups` (feature `test-support`): the transaction path the stream replaced, for the upgrade test
//! - `stream_store`: rollups from the stream, each item's change applied once under a per-shard guard
//! - `error`: `StoreError` (the SDK's error kept as its source) and `ReadCount`

pub mod error;
pub mod expression;
pub mod family_index;
pub mod items;
pub mod keys;
#[cfg(any(test, feature = "test-support"))]
pub mod legacy_rollups;
pub mod reads;
pub mod record_item;
pub mod report_store;
pub mod rollup_store;
pub mod stream_store;
pub mod task_store;

pub use error::{ReadCount, StoreError};
pub use task_store::TaskStore;
