//! Task phases: which pairs of timestamps bound each one, and what a pair says.

use crate::event::TaskStateChange;
use crate::timestamp::Timestamp;

/// The nine phases: seven from the ECS events, in lifecycle order, then the two that end when the task
/// was ready, which the sidecar's report says (`report::Readiness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Provisioning,
    ImagePull,
    ContainerStart,
    Startup,
    Run,
    Shutdown,
    Lifetime,
    /// createdAt → ready: what a service's users wait for.
    Ready,
    /// startedAt → ready: where lazy loading's cost shows (the image is read after the start).
    WarmUp,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Provisioning,
        Phase::ImagePull,
        Phase::ContainerStart,
        Phase::Startup,
        Phase::Run,
        Phase::Shutdown,
        Phase::Lifetime,
        Phase::Ready,
        Phase::WarmUp,
    ];
    /// The phases an ECS event bounds on its own, computed when a state change is written.
    pub const FROM_EVENTS: [Phase; 7] = [
        Phase::Provisioning,
        Phase::ImagePull,
        Phase::ContainerStart,
        Phase::Startup,
        Phase::Run,
        Phase::Shutdown,
        Phase::Lifetime,
    ];
    /// The phases that end when the task was ready: their end comes from the report, their start from the
    /// state changes, so they are known once both writes have landed, whichever came first.
    pub const TO_READY: [Phase; 2] = [Phase::Ready, Phase::WarmUp];

    pub const fn ends_at_ready(self) -> bool {
        matches!(self, Phase::Ready | Phase::WarmUp)
    }

    /// Name used in requests, records (`<name>Seconds`) and anomaly maps.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Provisioning => "provisioning",
            Phase::ImagePull => "imagePull",
            Phase::ContainerStart => "containerStart",
            Phase::Startup => "startup",
            Phase::Run => "run",
            Phase::Shutdown => "shutdown",
            Phase::Lifetime => "lifetime",
            Phase::Ready => "ready",
            Phase::WarmUp => "warmUp",
        }
    }

    /// CloudWatch metric name (unit Seconds).
    pub const fn metric_name(self) -> &'static str {
        match self {
            Phase::Provisioning => "ProvisioningTime",
            Phase::ImagePull => "ImagePullTime",
            Phase::ContainerStart => "ContainerStartTime",
            Phase::Startup => "TaskStartupTime",
            Phase::Run => "RunTime",
            Phase::Shutdown => "ShutdownTime",
            Phase::Lifetime => "TaskLifetime",
            Phase::Ready => "TaskReadyTime",
            Phase::WarmUp => "WarmUpTime",
        }
    }

    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.name() == name)
    }

    /// The (start, end) timestamps that bound the phase in this event, if both are present.
    fn bounds(self, task: &TaskStateChange) -> Option<(Timestamp, Timestamp)> {
        let pair = match self {
            Phase::Provisioning => (task.created_at, task.pull_started_at),
            Phase::ImagePull => (task.pull_started_at, task.pull_stopped_at),
            Phase::ContainerStart => (task.pull_stopped_at, task.started_at),
            Phase::Startup => (task.created_at, task.started_at),
            // executionStoppedAt is when the containers exited; stoppingAt stands in when it is absent.
            Phase::Run => (task.started_at, task.execution_stopped_at.or(task.stopping_at)),
            Phase::Shutdown => (task.stopping_at, task.stopped_at),
            Phase::Lifetime => (task.created_at, task.stopped_at),
            // No event says when the task was ready.
            Phase::Ready | Phase::WarmUp => (None, None),
        };
        Some((pair.0?, pair.1?))
    }
}

/// What one phase of one event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseTiming {
    /// One end (or both) has not happened yet, or the event does not carry it.
    Unknown,
    /// Duration in whole milliseconds, never negative.
    Known(i64),
    /// The end is earlier than the start: a timestamp anomaly, kept as the negative milliseconds
    /// for inspection and never reported as a duration.
    Anomaly(i64),
}

impl PhaseTiming {
    pub fn of(phase: Phase, task: &TaskStateChange) -> PhaseTiming {
        PhaseTiming::between(phase.bounds(task))
    }

    /// What a pair of timestamps (start, end) says.
    pub fn between(bounds: Option<(Timestamp, Timestamp)>) -> PhaseTiming {
        match bounds {
            None => PhaseTiming::Unknown,
            Some((start, end)) => match start.millis_until(end) {
                millis if millis < 0 => PhaseTiming::Anomaly(millis),
                millis => PhaseTiming::Known(millis),
            },
        }
    }
}

/// Milliseconds as seconds: every millisecond count up to 2^53 is exact in f64 and prints back
/// as the same three-decimal number.
pub fn millis_to_seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// Every phase one event bounds, in [`Phase::FROM_EVENTS`] order.
pub fn phase_timings(task: &TaskStateChange) -> [(Phase, PhaseTiming); 7] {
    Phase::FROM_EVENTS.map(|phase| (phase, PhaseTiming::of(phase, task)))
}

/// A task that reached STOPPED without ever starting.
pub fn failed_to_start(task: &TaskStateChange) -> bool {
    task.last_status.as_deref() == Some("STOPPED") && task.started_at.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<Timestamp> {
        Some(Timestamp::parse(text).unwrap())
    }

    /// Timestamps of the published Fargate sample that stopped (cisagov/crossfeed), with the
    /// durations worked out by hand below.
    fn stopped_fargate_task() -> TaskStateChange {
        TaskStateChange {
            last_status: Some("STOPPED".into()),
            created_at: at("2020-08-14T18:05:49.598Z"),
            pull_started_at: at("2020-08-14T18:06:09.694Z"),
            pull_stopped_at: at("2020-08-14T18:06:16.694Z"),
            started_at: at("2020-08-14T18:06:20.694Z"),
            stopping_at: at("2020-08-14T18:06:23.679Z"),
            execution_stopped_at: at("2020-08-14T18:06:23Z"),
            stopped_at: at("2020-08-14T18:06:47.229Z"),
            ..Default::default()
        }
    }

    #[test]
    fn every_phase_of_a_stopped_task() {
        let task = stopped_fargate_task();
        let expected = [
            (Phase::Provisioning, 20_096),  // 18:06:09.694 - 18:05:49.598
            (Phase::ImagePull, 7_000),      // 18:06:16.694 - 18:06:09.694
            (Phase::ContainerStart, 4_000), // 18:06:20.694 - 18:06:16.694
            (Phase::Startup, 31_096),       // 18:06:20.694 - 18:05:49.598
            (Phase::Run, 2_306),            // 18:06:23.000 - 18:06:20.694 (executionStoppedAt, not stoppingAt)
            (Phase::Shutdown, 23_550),      // 18:06:47.229 - 18:06:23.679
            (Phase::Lifetime, 57_631),      // 18:06:47.229 - 18:05:49.598
        ];
        for (phase, millis) in expected {
            assert_eq!(PhaseTiming::of(phase, &task), PhaseTiming::Known(millis), "{phase:?}");
        }
        assert!(!failed_to_start(&task));
    }

    #[test]
    fn run_falls_back_to_stopping_at() {
        let mut task = stopped_fargate_task();
        task.execution_stopped_at = None;
        // 18:06:23.679 - 18:06:20.694
        assert_eq!(PhaseTiming::of(Phase::Run, &task), PhaseTiming::Known(2_985));
    }

    #[test]
    fn a_phase_needs_both_ends() {
        let running = TaskStateChange {
            stopped_at: None,
            stopping_at: None,
            execution_stopped_at: None,
            ..stopped_fargate_task()
        };
        for phase in [Phase::Run, Phase::Shutdown, Phase::Lifetime] {
            assert_eq!(PhaseTiming::of(phase, &running), PhaseTiming::Unknown, "{phase:?}");
        }
        assert_eq!(PhaseTiming::of(Phase::Startup, &running), PhaseTiming::Known(31_096));
    }

    #[test]
    fn negative_phase_is_an_anomaly() {
        let mut task = stopped_fargate_task();
        task.pull_stopped_at = at("2020-08-14T18:06:09.500Z");
        assert_eq!(PhaseTiming::of(Phase::ImagePull, &task), PhaseTiming::Anomaly(-194));
        assert_eq!(PhaseTiming::of(Phase::Startup, &task), PhaseTiming::Known(31_096));
    }

    #[test]
    fn stopped_without_start_failed_to_start() {
        let task = TaskStateChange {
            started_at: None,
            ..stopped_fargate_task()
        };
        assert!(failed_to_start(&task));
        let pending = TaskStateChange {
            last_status: Some("PENDING".into()),
            started_at: None,
            ..Default::default()
        };
        assert!(!failed_to_start(&pending));
    }

    #[test]
    fn seconds_keep_three_decimals() {
        assert_eq!(millis_to_seconds(31_096).to_string(), "31.096");
        assert_eq!(millis_to_seconds(3_001).to_string(), "3.001");
        assert_eq!(millis_to_seconds(7_000).to_string(), "7");
    }

    #[test]
    fn names_round_trip() {
        for phase in Phase::ALL {
            assert_eq!(Phase::from_name(phase.name()), Some(phase));
        }
        assert_eq!(Phase::from_name("boot"), None);
    }
}
