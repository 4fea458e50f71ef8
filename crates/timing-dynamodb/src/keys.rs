//! The DynamoDB layout in one place: table names, keys, the index, bookkeeping attributes, and how a
//! rollup item's sort key is spelled.
//!
//! Rollup table key: `family` (partition) and `periodSeries` (sort) =
//! `<period>#<slot>#<revision>#<cluster>#<launchType>[#<snapshotter>][#<account>:<region>]`, where the slot is a phase name or `tasks` (the
//! counts) and the period is `YYYY-MM-DDTHH` for an hour item or `D#YYYY-MM-DD` for a day item. The
//! period leads, so one Query with `BETWEEN` reads every series of a family over a run of hours or of
//! days; day keys start with a letter, so no range of hour keys (digits) reaches them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use timing_domain::query::PageKey;
use timing_domain::rollup::{Granularity, Series};
use timing_domain::timestamp::Timestamp;

pub const DEFAULT_TABLE_NAME: &str = "ecs-task-timing-tasks";
pub const DEFAULT_ROLLUP_TABLE_NAME: &str = "ecs-task-timing-rollups";

/// The tasks table's key, and the index the summaries read: (family, createdAt).
pub const PARTITION_KEY: &str = "taskArn";
pub const FAMILY_INDEX: &str = "family-createdAt-index";
pub const FAMILY: &str = "family";
pub const CREATED_AT: &str = "createdAt";

/// String set of the metric keys already emitted for the task (see `metrics::ledger_keys`).
pub const METRICS_EMITTED: &str = "metricsEmitted";
/// Who wrote the stored version: a random id per invocation attempt, the same on the SDK's retries of
/// one request. With [`METRICS_EMITTED_BEFORE`] it lets a retry whose first attempt landed but whose
/// answer was lost (a timeout, a reset) recognise its own write and emit what that write made due.
pub const WRITE_ID: &str = "writeId";
/// The ledger as it was before the stored version's write.
pub const METRICS_EMITTED_BEFORE: &str = "metricsEmittedBefore";
/// Stands for "nothing emitted yet" in [`METRICS_EMITTED_BEFORE`]: DynamoDB has no empty sets.
pub const NOTHING_EMITTED: &str = "-";
/// String set on records of the transaction path (before the stream): the rollup markers its
/// transactions added. The stream path removes it on its first write of a record.
pub const ROLLED_UP: &str = "rolledUp";
/// `true` on every record the stream path writes: task-rollups counts such a record whole, and a record
/// without it only as far as its `rolledUp` says (`timing_domain::stream::Image`).
pub const ROLLUPS_FROM_STREAM: &str = "rollupsFromStream";
/// `true` on every record written since rollups are kept by account and region ("rollups by account"):
/// task-rollups keys such a record's rollups with its account and region, and an older record's without
/// (`timing_domain::stream::Image::by_account`). Short, as [`REPORT_LEDGER`]: every write of every record
/// carries it, and the largest generated record with its report is 998 bytes of 1 KB (docs/lazy-loading.md).
pub const ROLLUPS_BY_ACCOUNT: &str = "ra";

/// On an item with an image report (`crate::report_store`), the ledger (`metricsEmitted`) as the report's
/// write found it. This and [`REPORT_WRITE_ID`] have short names: with the report they stay under 1 KB.
pub const REPORT_LEDGER: &str = "rl";
/// Which invocation attempt wrote the report (as `writeId` for state changes): a retry whose first
/// attempt landed recognises its own write.
pub const REPORT_WRITE_ID: &str = "rw";

pub const ROLLUP_PARTITION_KEY: &str = "family";
pub const ROLLUP_SORT_KEY: &str = "periodSeries";
/// Sort-key stand-in for a task whose launch type is not reported.
const NO_LAUNCH_TYPE: &str = "-";

/// The item attribute naming a rollup item's period: `hour` or `day`.
pub const fn period_attribute(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Hour => "hour",
        Granularity::Day => "day",
    }
}

/// `YYYY-MM-DDTHH` or `YYYY-MM-DD` of the period starting at `start`.
pub fn period_text(granularity: Granularity, start: Timestamp) -> String {
    let mut text = start.to_string();
    text.truncate(match granularity {
        Granularity::Hour => "YYYY-MM-DDTHH".len(),
        Granularity::Day => "YYYY-MM-DD".len(),
    });
    text
}

/// What sort keys of the period starting at `start` begin with (before their `#<slot>`).
pub fn period_key_prefix(granularity: Granularity, start: Timestamp) -> String {
    match granularity {
        Granularity::Hour => period_text(granularity, start),
        Granularity::Day => format!("D#{}", period_text(granularity, start)),
    }
}

/// The sort key of `series`' item for `slot`. A task with an image report adds `#<snapshotter>`, so the
/// series of tasks without one keep the keys they had before reports existed; a series with an account
/// and region ends with `#<account>:<region>` (the only part with a `:`), so two accounts' tasks of the
/// same family, revision and cluster names never share an item.
pub fn rollup_sort_key(series: &Series, slot: &str) -> String {
    let mut key = format!(
        "{}#{slot}#{}#{}#{}",
        period_key_prefix(series.granularity, series.period_start),
        series.revision,
        series.cluster_name,
        series.launch_type.as_deref().unwrap_or(NO_LAUNCH_TYPE)
    );
    if let Some(snapshotter) = series.snapshotter {
        key.push('#');
        key.push_str(snapshotter.name());
    }
    if let Some(origin) = &series.origin {
        key.push('#');
        key.push_str(&origin.account);
        key.push(':');
        key.push_str(&origin.region);
    }
    key
}

/// The ExclusiveStartKey of an index Query that resumes after `key`.
pub fn page_key_item(key: &PageKey) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), AttributeValue::S(key.task_arn.clone())),
        (FAMILY.to_owned(), AttributeValue::S(key.family.clone())),
        (CREATED_AT.to_owned(), AttributeValue::S(key.created_at.clone())),
    ])
}

/// The page key of an index Query's LastEvaluatedKey.
pub fn page_key_from_item(item: &HashMap<String, AttributeValue>) -> Option<PageKey> {
    let text = |name: &str| item.get(name)?.as_s().ok().cloned();
    Some(PageKey {
        task_arn: text(PARTITION_KEY)?,
        family: text(FAMILY)?,
        created_at: text(CREATED_AT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_round_trip_through_items() {
        let key = PageKey {
            task_arn: "arn:aws:ecs:us-east-1:1:task/c/t".into(),
            family: "web".into(),
            created_at: "2026-11-01T00:00:00.000Z".into(),
        };
        assert_eq!(page_key_from_item(&page_key_item(&key)), Some(key));
        assert_eq!(page_key_from_item(&HashMap::new()), None);
    }

    #[test]
    fn day_keys_sort_outside_every_range_of_hour_keys() {
        let day = Series {
            family: "web".into(),
            revision: 3,
            cluster_name: "prod".into(),
            launch_type: None,
            snapshotter: None,
            origin: None,
            granularity: Granularity::Day,
            period_start: Timestamp::parse("2026-11-22T00:00:00Z").unwrap(),
        };
        let key = rollup_sort_key(&day, "run");
        assert_eq!(key, "D#2026-11-22#run#3#prod#-");
        let soci = Series {
            snapshotter: Some(timing_domain::report::Snapshotter::Soci),
            ..day.clone()
        };
        assert_eq!(rollup_sort_key(&soci, "run"), "D#2026-11-22#run#3#prod#-#soci");
        let origin = |account: &str| timing_domain::arn::Origin {
            account: account.into(),
            region: "eu-west-1".into(),
        };
        let other_account = Series {
            origin: Some(origin("111122223333")),
            ..soci.clone()
        };
        assert_eq!(
            rollup_sort_key(&other_account, "run"),
            "D#2026-11-22#run#3#prod#-#soci#111122223333:eu-west-1"
        );
        let third = Series {
            origin: Some(origin("444455556666")),
            ..soci.clone()
        };
        assert_ne!(rollup_sort_key(&other_account, "run"), rollup_sort_key(&third, "run"));
        // Hour ranges run from "<hour>#" to "<hour>$"; hours are digits, "D" sorts above all of them.
        assert!(key.as_str() > "9999-12-31T23$");
    }
}
