//! The DynamoDB adapter of ecs-task-timing: how the domain's records and rollups are stored and read.
//!
//! - `keys`: table names, keys, the index, bookkeeping attributes, rollup sort keys (the layout, in one place)
//! - `expression`: the one builder of every request's expressions
//! - `items`: items decoded into records and rollup items
//! - `reads`: the Queries of the summaries, built without I/O
//! - `task_store`: the record write (one conditional UpdateItem) and the index reads
//! - `rollup_store`: the rollup transaction with its retries, and the rollup reads
//! - `error`: `StoreError` (the SDK's error kept as its source) and `ReadCount`

pub mod error;
pub mod expression;
pub mod items;
pub mod keys;
pub mod reads;
pub mod rollup_store;
pub mod task_store;

pub use error::{ReadCount, StoreError};
pub use task_store::TaskStore;
