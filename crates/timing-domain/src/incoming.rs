//! What task-events receives: ECS's task state changes, and the task-sidecar's image reports.

use crate::event::{EventError, TaskStateChangeEvent, parse_event};
use crate::report::{ImageReportEvent, is_report_kind, parse_report};

/// What task-events receives: the ECS events, and the sidecar's image reports.
// One lives at a time, per invocation: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    StateChange(TaskStateChangeEvent),
    Report(ImageReportEvent),
}

/// Parses either kind. The state change keeps its one-pass fast path; a report, which fails it for
/// its kind, is then parsed as one.
pub fn parse_incoming(json: &[u8]) -> Result<Incoming, EventError> {
    match parse_event(json) {
        Ok(event) => Ok(Incoming::StateChange(event)),
        Err(EventError::WrongKind {
            event_source,
            detail_type,
        }) if is_report_kind(&event_source, &detail_type) => parse_report(json).map(Incoming::Report),
        Err(err) => Err(err),
    }
}
