//! Test and demo tooling for ecs-task-timing (not shipped): the event-stream generator, the local
//! stack helpers, and the integration tests under tests/.

pub mod calibration;
pub mod clock;
pub mod faults;
pub mod generator;
pub mod harness;
pub mod invariants;
pub mod local;
pub mod log_group;
pub mod procfs;
pub mod replay;
pub mod runtime_api;
pub mod sizing;
pub mod stream;
