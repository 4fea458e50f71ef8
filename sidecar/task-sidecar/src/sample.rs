//! One reading of the metadata endpoint and the answer to "is the clock within bound?". Pure.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::metadata::{ClockDrift, SyncStatus, TaskMetadata};

/// A successful read of the metadata endpoint, stamped with the time it was taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub sampled_at: DateTime<Utc>,
    pub metadata: TaskMetadata,
}

impl Sample {
    /// Seconds from the reference measurement to this sample. Negative when the task's clock is
    /// behind the reference (the bound should cover it; reported as it is).
    pub fn reference_age_seconds(&self) -> Option<f64> {
        let clock = self.metadata.clock?;
        Some((self.sampled_at - clock.reference).num_milliseconds() as f64 / 1000.0)
    }
}

/// The on-demand answer, for `GET /clock` and `task-sidecar check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockAnswer {
    /// SYNCHRONIZED, NOT_SYNCHRONIZED, UNAVAILABLE (no ClockDrift in the metadata) or ERROR (no
    /// sample could be read).
    pub status: &'static str,
    pub within_bound: bool,
    pub max_error_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_error_bound_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_age_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled_at: Option<String>,
    /// Why the clock is not within bound, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Within bound means: ClockDrift present, SYNCHRONIZED, and ClockErrorBound ≤ `max_error_ms`.
pub fn answer(sample: &Sample, max_error_ms: f64) -> ClockAnswer {
    let sampled_at = Some(rfc3339(sample.sampled_at));
    let Some(ClockDrift {
        error_bound_ms,
        reference,
        status,
    }) = sample.metadata.clock
    else {
        return ClockAnswer {
            status: "UNAVAILABLE",
            within_bound: false,
            max_error_ms,
            clock_error_bound_ms: None,
            reference_timestamp: None,
            reference_age_seconds: None,
            sampled_at,
            reason: Some(
                "the task metadata has no ClockDrift (EC2 launch type or an older Fargate platform version)".into(),
            ),
        };
    };
    let reason = match status {
        SyncStatus::NotSynchronized => Some("the clock is not synchronized".to_owned()),
        SyncStatus::Synchronized if error_bound_ms > max_error_ms => Some(format!(
            "ClockErrorBound {error_bound_ms} ms is above the maximum {max_error_ms} ms"
        )),
        SyncStatus::Synchronized => None,
    };
    ClockAnswer {
        status: status.name(),
        within_bound: reason.is_none(),
        max_error_ms,
        clock_error_bound_ms: Some(error_bound_ms),
        reference_timestamp: Some(rfc3339(reference)),
        reference_age_seconds: sample.reference_age_seconds(),
        sampled_at,
        reason,
    }
}

/// The answer when no sample could be read.
pub fn error_answer(max_error_ms: f64, problem: &str) -> ClockAnswer {
    ClockAnswer {
        status: "ERROR",
        within_bound: false,
        max_error_ms,
        clock_error_bound_ms: None,
        reference_timestamp: None,
        reference_age_seconds: None,
        sampled_at: None,
        reason: Some(format!("no clock sample: {problem}")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metadata::TaskIdentity;

    pub fn sample(clock: Option<(f64, SyncStatus)>) -> Sample {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        Sample {
            sampled_at: at("2026-11-22T10:00:12.500Z"),
            metadata: TaskMetadata {
                identity: TaskIdentity {
                    cluster_name: "payments".into(),
                    task_arn: "arn:aws:ecs:eu-west-1:1:task/payments/abc".into(),
                    task_id: "abc".into(),
                    family: "ledger".into(),
                    revision: "14".into(),
                    service_name: Some("ledger-api".into()),
                    launch_type: Some("FARGATE".into()),
                    availability_zone: None,
                },
                clock: clock.map(|(error_bound_ms, status)| ClockDrift {
                    error_bound_ms,
                    reference: at("2026-11-22T10:00:00Z"),
                    status,
                }),
            },
        }
    }

    #[test]
    fn within_bound_only_when_synchronized_and_under_the_maximum() {
        let ok = answer(&sample(Some((0.446, SyncStatus::Synchronized))), 1.0);
        assert!(ok.within_bound && ok.reason.is_none());
        assert_eq!(ok.reference_age_seconds, Some(12.5));
        assert_eq!(ok.sampled_at.as_deref(), Some("2026-11-22T10:00:12.500Z"));
        // On the bound is within it.
        assert!(answer(&sample(Some((1.0, SyncStatus::Synchronized))), 1.0).within_bound);
        let wide = answer(&sample(Some((1.5, SyncStatus::Synchronized))), 1.0);
        assert_eq!(
            wide.reason.as_deref(),
            Some("ClockErrorBound 1.5 ms is above the maximum 1 ms")
        );
        let unsynced = answer(&sample(Some((0.1, SyncStatus::NotSynchronized))), 1.0);
        assert!(!unsynced.within_bound && unsynced.status == "NOT_SYNCHRONIZED");
        let none = answer(&sample(None), 1.0);
        assert!(!none.within_bound && none.status == "UNAVAILABLE" && none.clock_error_bound_ms.is_none());
    }

    #[test]
    fn answers_serialize_without_made_up_values() {
        let json = serde_json::to_value(answer(&sample(None), 2.0)).unwrap();
        assert_eq!(json["status"], "UNAVAILABLE");
        assert!(json.get("clockErrorBoundMs").is_none());
        let json = serde_json::to_value(error_answer(2.0, "timed out")).unwrap();
        assert_eq!(json["reason"], "no clock sample: timed out");
    }
}
