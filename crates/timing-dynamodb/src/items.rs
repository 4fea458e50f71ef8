//! Items as the tables hold them, decoded: task records with their ledger, and rollup items.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use timing_domain::arn::Origin;
use timing_domain::record::TaskRecord;
use timing_domain::report::Snapshotter;
use timing_domain::rollup::{COUNTS_SLOT, Counts, Delta, PhaseRollup, RollupItem};
use timing_domain::sketch::{Bucket, LogHistogram};
use timing_domain::stream::Image;
use timing_domain::timestamp::Timestamp;

use crate::error::{RollupItemError, StoreError};
use crate::keys::{
    METRICS_EMITTED, METRICS_EMITTED_BEFORE, NOTHING_EMITTED, REPORT_LEDGER, ROLLED_UP, ROLLUP_PARTITION_KEY,
    ROLLUP_SORT_KEY, ROLLUPS_BY_ACCOUNT, ROLLUPS_FROM_STREAM, WRITE_ID,
};
use crate::record_item::{ledger_key, record_form};

/// A stored item as its record and its `metricsEmitted` ledger (what `TaskStore::get` returns; a
/// Scan's items too).
pub fn record_from_item(
    mut item: HashMap<String, AttributeValue>,
) -> Result<(TaskRecord, BTreeSet<String>), StoreError> {
    let emitted = ledger_set(&item, METRICS_EMITTED);
    item.remove(METRICS_EMITTED);
    Ok((serde_dynamo::from_item(record_form(item))?, emitted))
}

/// A record as one side of a stream record: the bookkeeping left out, which path wrote it and the
/// transaction path's markers kept (see [`Image`]).
pub fn image_from_item(mut item: HashMap<String, AttributeValue>) -> Result<Image, StoreError> {
    let stream_path = matches!(item.get(ROLLUPS_FROM_STREAM), Some(AttributeValue::Bool(true)));
    let by_account = matches!(item.get(ROLLUPS_BY_ACCOUNT), Some(AttributeValue::Bool(true)));
    let legacy_rolled_up = string_set(&item, ROLLED_UP);
    for bookkeeping in [
        METRICS_EMITTED,
        METRICS_EMITTED_BEFORE,
        ROLLED_UP,
        WRITE_ID,
        ROLLUPS_FROM_STREAM,
        ROLLUPS_BY_ACCOUNT,
    ] {
        item.remove(bookkeeping);
    }
    Ok(Image {
        record: serde_dynamo::from_item(record_form(item))?,
        stream_path,
        legacy_rolled_up,
        by_account,
    })
}

/// A ledger attribute (`metricsEmitted` or `metricsEmittedBefore`) as metric keys, whichever form its
/// members are stored in (see [`crate::record_item::ledger_code`]).
pub fn ledger_set(item: &HashMap<String, AttributeValue>, name: &str) -> BTreeSet<String> {
    string_set(item, name).iter().map(|stored| ledger_key(stored)).collect()
}

/// A string-set attribute, empty when absent.
pub fn string_set(item: &HashMap<String, AttributeValue>, name: &str) -> BTreeSet<String> {
    item.get(name)
        .and_then(|value| value.as_ss().ok())
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}

pub(crate) fn number_attribute(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// What a state change's write learns of the report that came before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSeen {
    pub snapshotter: Snapshotter,
    /// The metrics the report's write found emitted: it emitted their by-snapshotter forms itself.
    pub ledger_at_report: BTreeSet<String>,
    /// When the report said the task was ready.
    pub ready_at: Option<Timestamp>,
}

/// The report an item holds, if any.
pub fn report_seen(item: &HashMap<String, AttributeValue>) -> Option<ReportSeen> {
    let snapshotter = Snapshotter::from_name(item.get("snapshotter")?.as_s().ok()?)?;
    let mut ledger_at_report = ledger_set(item, REPORT_LEDGER);
    ledger_at_report.remove(NOTHING_EMITTED);
    let ready_at = number_attribute(item, "rdAt")
        .and_then(|millis| i64::try_from(millis).ok())
        .map(Timestamp::from_millis);
    Some(ReportSeen {
        snapshotter,
        ledger_at_report,
        ready_at,
    })
}

/// A rollup item as read back: its series (without the period) and what it holds.
pub fn rollup_item_from_item(item: &HashMap<String, AttributeValue>) -> Result<RollupItem, RollupItemError> {
    let key = item
        .get(ROLLUP_SORT_KEY)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let fail = |problem: String| RollupItemError {
        key: key.clone(),
        problem,
    };
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| -> Result<u128, RollupItemError> {
        match item.get(name) {
            None => Ok(0),
            Some(value) => value
                .as_n()
                .ok()
                .and_then(|n| n.parse::<u128>().ok())
                .ok_or_else(|| fail(format!("{name} is not a whole number: {value:?}"))),
        }
    };
    let small = |name: &str| -> Result<u64, RollupItemError> {
        u64::try_from(number(name)?).map_err(|_| fail(format!("{name} exceeds 2^64")))
    };
    let slot = text("slot").ok_or_else(|| fail("no slot".into()))?;
    let delta = if slot == COUNTS_SLOT {
        Delta::Counts(Counts {
            tasks: small("tasks")?,
            started: small("started")?,
            stopped: small("stopped")?,
            failed_to_start: small("failedToStart")?,
            timestamp_anomalies: small("timestampAnomalies")?,
            not_ready: small("notReady")?,
        })
    } else {
        let mut rollup = PhaseRollup {
            count: small("count")?,
            sum_ms: number("sumMs")?,
            sum_squares_ms: number("sumSquaresMs")?,
            histogram: LogHistogram::default(),
        };
        // One pass over the attributes: a 30-day summary reads hundreds of thousands of buckets.
        for (name, value) in item {
            let Some(bucket) = Bucket::from_attribute(name) else {
                continue;
            };
            let count = value
                .as_n()
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| fail(format!("{name} is not a whole number: {value:?}")))?;
            if !rollup.histogram.add_count(bucket, count) {
                return Err(fail(format!("{name} is not a bucket any duration maps to")));
            }
        }
        Delta::Phase(rollup)
    };
    Ok(RollupItem {
        family: text(ROLLUP_PARTITION_KEY).ok_or_else(|| fail("no family".into()))?,
        revision: u32::try_from(number("revision")?).map_err(|_| fail("revision out of range".into()))?,
        cluster_name: text("clusterName").ok_or_else(|| fail("no clusterName".into()))?,
        launch_type: text("launchType"),
        snapshotter: match text("snapshotter") {
            None => None,
            Some(name) => Some(
                Snapshotter::from_name(&name)
                    .ok_or_else(|| fail(format!("snapshotter {name:?} is not one this code knows")))?,
            ),
        },
        origin: match (text("account"), text("region")) {
            (Some(account), Some(region)) => Some(Origin { account, region }),
            (None, None) => None,
            _ => {
                return Err(fail(
                    "an account without a region, or a region without an account".into(),
                ));
            }
        },
        slot,
        delta,
    })
}
