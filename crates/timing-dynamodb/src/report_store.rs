//! The image report's write: one conditional UpdateItem that adds the report's attributes to the task's
//! item, once. It touches nothing a state change writes, and a state change's write touches nothing it
//! writes, so the two commute: a report may arrive before the first state change, after the last, or
//! twice.
//!
//! Metrics by snapshotter are due once per task and phase, when both the phase and the snapshotter are
//! known. Whichever of the two writes comes second emits them, judged from what it returns: the report
//! write keeps the ledger as it found it ([`REPORT_LEDGER`]); a state change that finds a report emits
//! the phases it makes due that are not in that ledger ([`crate::items::report_seen`]).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use timing_domain::record::TaskRecord;
use timing_domain::report::{PulledContainer, Readiness, Snapshotter};

use crate::error::StoreError;
use crate::expression::Expression;
use crate::items::{ledger_set, record_from_item, report_seen};
use crate::keys::{METRICS_EMITTED, NOTHING_EMITTED, PARTITION_KEY, REPORT_LEDGER, REPORT_WRITE_ID};
use crate::record_item::report_item;
use crate::task_store::{Conditional, TaskStore};

/// What one report write did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportOutcome {
    /// The report is now on the record (first of its task).
    Written {
        /// The task's record as the write found it: None when no state change had arrived yet.
        record: Option<Box<TaskRecord>>,
        /// Why a record the write found could not be read (then `record` is None).
        unreadable_record: Option<String>,
        /// The metrics already emitted for the task then.
        ledger_before: BTreeSet<String>,
        /// The write landed on an earlier attempt whose answer was lost.
        recovered: bool,
    },
    /// The task already has a report: this one changes nothing.
    Duplicate { stored: Snapshotter },
}

/// What one report brings to its task's item.
#[derive(Debug, Clone, Copy)]
pub struct ReportWrite<'a> {
    pub task_arn: &'a str,
    pub snapshotter: Snapshotter,
    pub containers: &'a [PulledContainer],
    pub readiness: Option<Readiness>,
    /// The TTL (epoch seconds) an item that holds only the report gets.
    pub expires_at: i64,
    pub write_id: &'a str,
}

/// The parts of the report's UpdateItem.
pub fn report_update(
    report: &ReportWrite,
) -> Result<(HashMap<String, AttributeValue>, String, String, Expression), serde_dynamo::Error> {
    let ReportWrite {
        task_arn,
        snapshotter,
        containers,
        readiness,
        expires_at,
        write_id,
    } = *report;
    let mut expression = Expression::new();
    for (name, value) in report_item(snapshotter, containers, readiness)? {
        expression.set(&name, value);
    }
    expression.set(REPORT_WRITE_ID, AttributeValue::S(write_id.to_owned()));
    // An item that stays a report alone (its state changes never came) expires like a record; a state
    // change's write sets the record's own expiry over it.
    let expires = expression.name("expiresAt");
    let expiry = expression.value("reportExpiresAt", AttributeValue::N(expires_at.to_string()));
    expression.set_action(&format!("{expires} = if_not_exists({expires}, {expiry})"));
    let at_report = expression.name(REPORT_LEDGER);
    let emitted = expression.name(METRICS_EMITTED);
    let nothing = expression.value("nothingEmitted", AttributeValue::Ss(vec![NOTHING_EMITTED.to_owned()]));
    expression.set_action(&format!("{at_report} = if_not_exists({emitted}, {nothing})"));
    let condition = format!("attribute_not_exists({})", expression.name("snapshotter"));
    let key = HashMap::from([(PARTITION_KEY.to_owned(), AttributeValue::S(task_arn.to_owned()))]);
    Ok((key, expression.update(), condition, expression))
}

/// A record read from an item that may hold only a report (no state change yet): None then. A record that
/// does not decode is None too, with why: the report is written by then, and failing the invocation would
/// only make its retry a duplicate that emits nothing, where this way the count and the fallback go out.
fn record_of(item: HashMap<String, AttributeValue>) -> (Option<Box<TaskRecord>>, Option<String>) {
    if !item.contains_key("version") {
        return (None, None);
    }
    match record_from_item(item) {
        Ok((record, _)) => (Some(Box::new(record)), None),
        Err(err) => (None, Some(err.to_string())),
    }
}

impl TaskStore {
    /// Adds the report to the task's item unless it has one (one round trip).
    pub async fn write_report(&self, report: &ReportWrite<'_>) -> Result<ReportOutcome, StoreError> {
        let write_id = report.write_id;
        let (key, update, condition, expression) = report_update(report)?;
        match self.conditional_update(key, update, condition, expression).await? {
            Conditional::Applied(old) => {
                let ledger_before = ledger_set(&old, METRICS_EMITTED);
                let (record, unreadable_record) = record_of(old);
                Ok(ReportOutcome::Written {
                    record,
                    unreadable_record,
                    ledger_before,
                    recovered: false,
                })
            }
            Conditional::Refused(stored) => {
                let stored = stored.unwrap_or_default();
                let own = stored
                    .get(REPORT_WRITE_ID)
                    .and_then(|id| id.as_s().ok())
                    .is_some_and(|id| id == write_id);
                let seen = report_seen(&stored);
                match (own, seen) {
                    (true, Some(seen)) => {
                        let (record, unreadable_record) = record_of(stored);
                        Ok(ReportOutcome::Written {
                            ledger_before: seen.ledger_at_report,
                            record,
                            unreadable_record,
                            recovered: true,
                        })
                    }
                    (_, seen) => Ok(ReportOutcome::Duplicate {
                        stored: seen.map_or(Snapshotter::Unknown, |seen| seen.snapshotter),
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::ReportSeen;
    use timing_domain::report::ReadySignal;
    use timing_domain::timestamp::Timestamp;

    #[test]
    fn the_update_sets_the_report_once_and_keeps_the_ledger_it_found() {
        let containers = [
            PulledContainer {
                name: "app".into(),
                snapshotter: Some("soci".into()),
                excluded: false,
            },
            PulledContainer {
                name: "task-sidecar".into(),
                snapshotter: None,
                excluded: true,
            },
        ];
        let (key, update, condition, expression) = report_update(&ReportWrite {
            task_arn: "arn:aws:ecs:us-east-1:1:task/c/t",
            snapshotter: Snapshotter::Soci,
            containers: &containers,
            readiness: Some(Readiness {
                signal: ReadySignal::HealthCheck,
                ready_at: Some(Timestamp::parse("2026-11-01T00:00:31.5Z").unwrap()),
            }),
            expires_at: 1_800_000_000,
            write_id: "w1",
        })
        .unwrap();
        assert_eq!(key[PARTITION_KEY].as_s().unwrap(), "arn:aws:ecs:us-east-1:1:task/c/t");
        assert_eq!(condition, "attribute_not_exists(#snapshotter)");
        assert!(
            update.contains("#rl = if_not_exists(#metricsEmitted, :nothingEmitted)"),
            "{update}"
        );
        assert_eq!(expression.values[":snapshotter"].as_s().unwrap(), "soci");
        assert!(
            update.contains("#expiresAt = if_not_exists(#expiresAt, :reportExpiresAt)"),
            "{update}"
        );
        assert_eq!(expression.values[":reportExpiresAt"].as_n().unwrap(), "1800000000");
        let rc = expression.values[":rc"].as_l().unwrap();
        let (app, sidecar) = (rc[0].as_m().unwrap(), rc[1].as_m().unwrap());
        assert_eq!(
            (app["n"].as_s().unwrap().as_str(), app["s"].as_s().unwrap().as_str()),
            ("app", "soci")
        );
        assert!(
            !app.contains_key("e") && !sidecar.contains_key("s"),
            "absent values are left out"
        );
        assert_eq!(sidecar["e"].as_bool(), Ok(&true));
        assert_eq!(
            expression.values[":rds"].as_s().unwrap(),
            "h",
            "healthCheck, as one letter"
        );
        // 2026-11-01T00:00:31.5Z: date -u -d 2026-11-01T00:00:31Z +%s = 1793491231, then the half second.
        assert_eq!(expression.values[":rdAt"].as_n().unwrap(), "1793491231500");
        // Nothing a state change writes, but the expiry of an item that has none yet.
        for name in timing_domain::record::RECORD_ATTRIBUTES {
            let touched = expression.names.values().any(|n| n == name);
            assert_eq!(touched, name == "expiresAt", "{name}");
        }
    }

    #[test]
    fn a_report_seen_drops_the_nothing_marker() {
        let item = HashMap::from([
            ("snapshotter".to_owned(), AttributeValue::S("overlayfs".into())),
            (
                REPORT_LEDGER.to_owned(),
                AttributeValue::Ss(vec![NOTHING_EMITTED.into(), "pull".into()]),
            ),
            ("rdAt".to_owned(), AttributeValue::N("1793491231500".into())),
        ]);
        assert_eq!(
            report_seen(&item),
            Some(ReportSeen {
                snapshotter: Snapshotter::Overlayfs,
                ledger_at_report: BTreeSet::from(["ImagePullTime".to_owned()]),
                ready_at: Some(Timestamp::parse("2026-11-01T00:00:31.500Z").unwrap()),
            })
        );
        assert_eq!(report_seen(&HashMap::new()), None);
    }
}
