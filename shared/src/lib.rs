//! Shared core of ecs-task-timing: the ECS event model, the timing domain, the DynamoDB store
//! adapter and the EMF metric documents. Everything but `store` is pure.

pub mod arn;
pub mod event;
pub mod metrics;
pub mod query;
pub mod record;
pub mod rollup;
pub mod rollup_store;
pub mod sketch;
pub mod stats;
pub mod store;
pub mod timestamp;
pub mod timing;
