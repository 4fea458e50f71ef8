//! What a summary reads: one family's records with createdAt in a window, narrowed by optional
//! filters, and the hour and day periods whose rollups cover that window. How those become DynamoDB
//! Queries is `timing-dynamodb`'s (`reads`).

use serde::{Deserialize, Serialize};

use crate::rollup::{Granularity, MILLIS_PER_HOUR};
use crate::timestamp::Timestamp;

/// DynamoDB allows at most 100 operands in an `IN` comparison.
pub const MAX_REVISIONS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordQuery {
    pub family: String,
    /// Inclusive.
    pub from: Timestamp,
    /// Exclusive: windows [from, to) tile without overlap.
    pub to: Timestamp,
    /// The account the tasks run in (their ARN's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// A [`crate::report::Snapshotter`] name, or `unreported` for tasks with no image report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshotter: Option<String>,
}

/// Consecutive periods of one granularity, both ends included: `first` and `last` are period starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodRun {
    pub granularity: Granularity,
    pub first: Timestamp,
    pub last: Timestamp,
}

impl RecordQuery {
    /// The last millisecond the window includes (createdAt is stored to the millisecond).
    pub fn last_included(&self) -> Timestamp {
        Timestamp::from_millis(self.to.millis() - 1)
    }

    /// The whole hours of createdAt that cover [from, to): `from` rounded down, `to` rounded up.
    pub fn hour_window(&self) -> (Timestamp, Timestamp) {
        let from = Granularity::Hour.start(self.from);
        let to = Granularity::Hour.start(self.last_included());
        (from, Timestamp::from_millis(to.millis() + MILLIS_PER_HOUR))
    }

    /// The periods whose rollup items cover [`Self::hour_window`] once: the whole UTC days inside it,
    /// and the hours before the first and after the last of those days (or the whole window in hours
    /// when it holds no whole day). At most three runs, so at most three Queries.
    pub fn rollup_periods(&self) -> Vec<PeriodRun> {
        let (first, end) = self.hour_window();
        let day = Granularity::Day;
        let first_day = day.start(Timestamp::from_millis(first.millis() + day.millis() - 1));
        let end_day = day.start(end);
        let mut runs = Vec::new();
        let mut push = |granularity: Granularity, from: Timestamp, to: Timestamp| {
            if from < to {
                let last = Timestamp::from_millis(to.millis() - granularity.millis());
                runs.push(PeriodRun {
                    granularity,
                    first: from,
                    last,
                });
            }
        };
        if first_day < end_day {
            push(Granularity::Hour, first, first_day);
            push(Granularity::Day, first_day, end_day);
            push(Granularity::Hour, end_day, end);
        } else {
            push(Granularity::Hour, first, end);
        }
        runs
    }
}

/// Where a page of the index ends: the table key and the index key of its last item, which is what
/// DynamoDB's ExclusiveStartKey for an index query holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageKey {
    pub task_arn: String,
    pub family: String,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: &str, to: &str) -> RecordQuery {
        RecordQuery {
            family: "web".into(),
            from: Timestamp::parse(from).unwrap(),
            to: Timestamp::parse(to).unwrap(),
            account: None,
            region: None,
            cluster: None,
            revisions: vec![],
            launch_type: None,
            snapshotter: None,
        }
    }

    #[test]
    fn the_hour_window_covers_the_enclosing_whole_hours() {
        let hours = |from, to| {
            let (from, to) = query(from, to).hour_window();
            (from.to_string(), to.to_string())
        };
        assert_eq!(
            hours("2026-11-01T10:30:00Z", "2026-11-01T12:00:00.001Z"),
            ("2026-11-01T10:00:00.000Z".into(), "2026-11-01T13:00:00.000Z".into())
        );
        // An edge on the hour stays where it is: [10:00, 12:00) is hours 10 and 11.
        assert_eq!(
            hours("2026-11-01T10:00:00Z", "2026-11-01T12:00:00Z"),
            ("2026-11-01T10:00:00.000Z".into(), "2026-11-01T12:00:00.000Z".into())
        );
    }

    #[test]
    fn whole_days_come_from_days_and_the_edges_from_hours() {
        let runs = |from, to| {
            query(from, to)
                .rollup_periods()
                .into_iter()
                .map(|run| (run.granularity, run.first.to_string(), run.last.to_string()))
                .collect::<Vec<_>>()
        };
        let run = |granularity, first: &str, last: &str| (granularity, first.to_owned(), last.to_owned());
        use Granularity::{Day, Hour};
        // 10:30 on the 1st to 13:10 on the 4th: hours 10-23, days 2 and 3, hours 0-13.
        assert_eq!(
            runs("2026-11-01T10:30:00Z", "2026-11-04T13:10:00Z"),
            [
                run(Hour, "2026-11-01T10:00:00.000Z", "2026-11-01T23:00:00.000Z"),
                run(Day, "2026-11-02T00:00:00.000Z", "2026-11-03T00:00:00.000Z"),
                run(Hour, "2026-11-04T00:00:00.000Z", "2026-11-04T13:00:00.000Z"),
            ]
        );
        // Whole days only: one run.
        assert_eq!(
            runs("2026-10-22T00:00:00Z", "2026-11-22T00:00:00Z"),
            [run(Day, "2026-10-22T00:00:00.000Z", "2026-11-21T00:00:00.000Z")]
        );
        // Across midnight without a whole day: hours only.
        assert_eq!(
            runs("2026-11-01T22:00:00Z", "2026-11-02T02:00:00Z"),
            [run(Hour, "2026-11-01T22:00:00.000Z", "2026-11-02T01:00:00.000Z")]
        );
    }
}
