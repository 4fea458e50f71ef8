//! DynamoDB side of the rollups: how an update of a rollup item is spelled, and the summary's read of
//! rollup items. The stream consumer's guarded updates are `stream_store`'s.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use timing_domain::query::RecordQuery;
use timing_domain::rollup::{Delta, RollupItem, RollupKey};

use crate::error::{ReadCount, StoreError};
use crate::expression::Expression;
use crate::items::rollup_item_from_item;
use crate::keys::{ROLLUP_PARTITION_KEY, ROLLUP_SORT_KEY, period_attribute, period_text, rollup_sort_key};
use crate::reads::{rollup_key_ranges, rollup_query};
use crate::task_store::{TaskStore, each_item};

/// One UpdateItem, in a transaction or alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemUpdate {
    pub key: HashMap<String, AttributeValue>,
    pub update_expression: String,
    pub condition_expression: Option<String>,
    pub expression: Expression,
}

/// An update of `key`'s item that SETs the series' attributes (the same value for every writer, so
/// the order of writers does not matter) and its expiry; the caller adds the amounts.
pub fn series_update(key: &RollupKey, retention_seconds: Option<i64>) -> ItemUpdate {
    let (series, slot) = key;
    let expires_at = retention_seconds.map(|retention| series.period_end().millis() / 1000 + retention);
    let mut expression = Expression::new();
    expression.set("revision", AttributeValue::N(series.revision.to_string()));
    expression.set("clusterName", AttributeValue::S(series.cluster_name.clone()));
    if let Some(launch_type) = &series.launch_type {
        expression.set("launchType", AttributeValue::S(launch_type.clone()));
    }
    if let Some(snapshotter) = series.snapshotter {
        expression.set("snapshotter", AttributeValue::S(snapshotter.name().to_owned()));
    }
    if let Some(origin) = &series.origin {
        expression.set("account", AttributeValue::S(origin.account.clone()));
        expression.set("region", AttributeValue::S(origin.region.clone()));
    }
    expression.set("slot", AttributeValue::S((*slot).to_owned()));
    expression.set(
        period_attribute(series.granularity),
        AttributeValue::S(period_text(series.granularity, series.period_start)),
    );
    if let Some(expires_at) = expires_at {
        expression.set("expiresAt", AttributeValue::N(expires_at.to_string()));
    }
    ItemUpdate {
        key: HashMap::from([
            (
                ROLLUP_PARTITION_KEY.to_owned(),
                AttributeValue::S(series.family.clone()),
            ),
            (
                ROLLUP_SORT_KEY.to_owned(),
                AttributeValue::S(rollup_sort_key(series, slot)),
            ),
        ]),
        update_expression: String::new(),
        condition_expression: None,
        expression,
    }
}

/// [`series_update`] that ADDs the delta: no read, so concurrent writers never overwrite each other.
pub fn rollup_update(key: &RollupKey, delta: &Delta, retention_seconds: Option<i64>) -> ItemUpdate {
    let mut update = series_update(key, retention_seconds);
    for (name, amount) in delta.fields() {
        update.expression.add(&name, AttributeValue::N(amount.to_string()));
    }
    update.update_expression = update.expression.update();
    update
}

/// The item [`rollup_update`] leaves when no item of that key exists yet: its key, every SET value and
/// every ADD amount. For bulk loads into a new table (benchmarks), which can then use BatchWriteItem.
#[cfg(any(test, feature = "test-support"))]
pub fn new_item(key: &RollupKey, delta: &Delta, retention_seconds: Option<i64>) -> HashMap<String, AttributeValue> {
    let update = rollup_update(key, delta, retention_seconds);
    let mut item = update.key;
    item.extend(
        update
            .expression
            .values
            .into_iter()
            .map(|(placeholder, value)| (placeholder.trim_start_matches(':').to_owned(), value)),
    );
    item
}

impl TaskStore {
    /// Calls `each` with every rollup item of the query's family in its hour window whose slot is one
    /// of `slots`: day items for the whole days inside it, hour items for the rest (one Query per run
    /// of keys, see [`RecordQuery::rollup_periods`]), following every page; refuses to read more
    /// than `max_items` in all.
    pub async fn for_each_rollup_item(
        &self,
        query: &RecordQuery,
        slots: &[&str],
        page_size: Option<i32>,
        max_items: u64,
        mut each: impl FnMut(RollupItem),
    ) -> Result<ReadCount, StoreError> {
        let mut read = ReadCount::default();
        for range in rollup_key_ranges(query) {
            let parameters = rollup_query(query, slots, &range);
            let request = self
                .client
                .query()
                .table_name(&self.rollup_table)
                .key_condition_expression(parameters.key_condition)
                .set_filter_expression(parameters.filter)
                .set_expression_attribute_names(Some(parameters.expression.names))
                .set_expression_attribute_values(Some(parameters.expression.values))
                .set_limit(page_size);
            each_item(
                &self.rollup_table,
                request,
                max_items,
                &query.family,
                &mut read,
                |item| {
                    each(rollup_item_from_item(&item)?);
                    Ok(())
                },
            )
            .await?;
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::rollup_item_from_item;
    use serde_json::json;
    use timing_domain::event::parse_event;
    use timing_domain::record::TaskRecord;
    use timing_domain::rollup::{
        COUNTS_SLOT, Counts, Granularity, Series, deltas, known_markers, rollup_retention_seconds,
    };

    fn record(detail: serde_json::Value) -> TaskRecord {
        let envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": detail});
        TaskRecord::from_event(parse_event(envelope.to_string().as_bytes()).unwrap(), 30).unwrap()
    }

    fn running() -> TaskRecord {
        record(json!({"taskArn": "arn:aws:ecs:us-east-1:1:task/prod/t1",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3", "launchType": "FARGATE",
            "version": 4, "lastStatus": "RUNNING", "createdAt": "2026-11-22T10:59:58.500Z",
            "pullStartedAt": "2026-11-22T11:00:05Z", "pullStoppedAt": "2026-11-22T11:00:04Z",
            "startedAt": "2026-11-22T11:00:20.250Z"}))
    }

    #[test]
    fn deltas_put_each_marker_in_its_hours_item_and_its_days() {
        let record = running();
        let deltas = deltas(&record, &known_markers(&record));
        let keys: Vec<String> = deltas
            .keys()
            .map(|(series, slot)| rollup_sort_key(series, slot))
            .collect();
        // The hour is createdAt's (10:59:58.5), even though the task started at 11:00.
        assert_eq!(
            keys,
            [
                "2026-11-22T10#containerStart#3#prod#FARGATE#1:us-east-1",
                "2026-11-22T10#provisioning#3#prod#FARGATE#1:us-east-1",
                "2026-11-22T10#startup#3#prod#FARGATE#1:us-east-1",
                "2026-11-22T10#tasks#3#prod#FARGATE#1:us-east-1",
                "D#2026-11-22#containerStart#3#prod#FARGATE#1:us-east-1",
                "D#2026-11-22#provisioning#3#prod#FARGATE#1:us-east-1",
                "D#2026-11-22#startup#3#prod#FARGATE#1:us-east-1",
                "D#2026-11-22#tasks#3#prod#FARGATE#1:us-east-1",
            ]
        );
        for granularity in Granularity::BOTH {
            let series = Series::of(&record, granularity).unwrap();
            let Delta::Phase(rollup) = &deltas[&(series.clone(), "startup")] else {
                panic!()
            };
            // 10:59:58.500 -> 11:00:20.250 is 21,750 ms.
            assert_eq!(
                (rollup.count, rollup.sum_ms, rollup.sum_squares_ms),
                (1, 21_750, 21_750 * 21_750)
            );
            assert_eq!(
                deltas[&(series, COUNTS_SLOT)],
                Delta::Counts(Counts {
                    tasks: 1,
                    started: 1,
                    timestamp_anomalies: 1,
                    ..Counts::default()
                })
            );
        }
    }

    #[test]
    fn an_update_read_back_is_the_delta_it_added() {
        let record = running();
        for (key, delta) in deltas(&record, &known_markers(&record)) {
            let update = rollup_update(&key, &delta, rollup_retention_seconds(&record));
            assert!(update.condition_expression.is_none());
            // Every placeholder is the attribute's own name: `:count` adds to `count`.
            for (placeholder, name) in &update.expression.names {
                assert_eq!(&placeholder[1..], name);
            }
            let item = new_item(&key, &delta, rollup_retention_seconds(&record));
            let read = rollup_item_from_item(&item).unwrap();
            assert_eq!(read.delta, delta);
            assert_eq!(
                (
                    read.family.as_str(),
                    read.revision,
                    read.cluster_name.as_str(),
                    read.slot.as_str()
                ),
                ("web", 3, "prod", key.1)
            );
            // Items expire at the end of their period plus the record's 30-day retention:
            // 2026-11-22T11:00:00Z is 1,795,345,200 s; the day ends 13 hours later.
            let (period, period_end) = match key.0.granularity {
                Granularity::Hour => (("hour", "2026-11-22T10"), 1_795_345_200),
                Granularity::Day => (("day", "2026-11-22"), 1_795_345_200 + 13 * 3600),
            };
            assert_eq!(
                item["expiresAt"],
                AttributeValue::N((period_end + 30 * 86_400).to_string())
            );
            assert_eq!(item[period.0], AttributeValue::S(period.1.into()));
        }
    }

    #[test]
    fn malformed_items_are_named() {
        let item = HashMap::from([
            ("family".to_owned(), AttributeValue::S("web".into())),
            (
                "periodSeries".to_owned(),
                AttributeValue::S("2026-11-22T10#run#3#prod#-".into()),
            ),
            ("slot".to_owned(), AttributeValue::S("run".into())),
            ("clusterName".to_owned(), AttributeValue::S("prod".into())),
            ("b12".to_owned(), AttributeValue::N("1.5".into())),
        ]);
        let err = rollup_item_from_item(&item).unwrap_err().to_string();
        assert!(
            err.contains("2026-11-22T10#run#3#prod#-") && err.contains("b12"),
            "{err}"
        );
    }
}
