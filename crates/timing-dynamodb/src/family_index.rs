//! The families-by-day index: which families had tasks created on which UTC day, one small item per (day,
//! family) in the rollup table under a partition no family can have (family names are letters, digits, `-`
//! and `_`), sort key `YYYY-MM-DD#<family>`. task-rollups writes them; the regression watch reads a
//! window's families with one Query instead of a Scan. One item per pair, not a set per day: a day's item
//! would grow with the number of families and be written by every batch of every shard.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use timing_domain::rollup::{Granularity, RollupKey};
use timing_domain::timestamp::Timestamp;

use crate::error::{ReadCount, StoreError};
use crate::expression::Expression;
use crate::keys::{ROLLUP_PARTITION_KEY, ROLLUP_SORT_KEY, period_text};
use crate::rollup_store::ItemUpdate;
use crate::task_store::{TaskStore, each_item};

/// The partition of the index items; `#` keeps it apart from every family.
pub const FAMILY_INDEX_PARTITION: &str = "#families";
/// The family an index item names.
pub const NAME: &str = "name";

/// The families of a batch of rollup changes by the day (its start) their tasks were created, with the
/// longest retention among them.
pub fn families_by_day<'a>(
    keys: impl IntoIterator<Item = (&'a RollupKey, Option<i64>)>,
) -> BTreeMap<Timestamp, (BTreeSet<String>, Option<i64>)> {
    let mut days: BTreeMap<Timestamp, (BTreeSet<String>, Option<i64>)> = BTreeMap::new();
    for ((series, _), retention) in keys {
        if series.granularity == Granularity::Day {
            let (families, longest) = days.entry(series.period_start).or_default();
            families.insert(series.family.clone());
            *longest = (*longest).max(retention);
        }
    }
    days
}

/// The (day, family) item, expiring with the rollup items of that day. Writing it again changes nothing.
pub fn family_index_update(day_start: Timestamp, family: &str, retention: Option<i64>) -> ItemUpdate {
    let mut expression = Expression::new();
    expression.set(NAME, AttributeValue::S(family.to_owned()));
    if let Some(retention) = retention {
        let day_end = day_start.millis() / 1000 + Granularity::Day.millis() / 1000;
        expression.set("expiresAt", AttributeValue::N((day_end + retention).to_string()));
    }
    ItemUpdate {
        key: std::collections::HashMap::from([
            (
                ROLLUP_PARTITION_KEY.to_owned(),
                AttributeValue::S(FAMILY_INDEX_PARTITION.to_owned()),
            ),
            (
                ROLLUP_SORT_KEY.to_owned(),
                AttributeValue::S(format!("{}#{family}", period_text(Granularity::Day, day_start))),
            ),
        ]),
        update_expression: expression.update(),
        condition_expression: None,
        expression,
    }
}

impl TaskStore {
    pub async fn add_to_family_index(
        &self,
        day_start: Timestamp,
        family: &str,
        retention: Option<i64>,
    ) -> Result<(), StoreError> {
        let update = family_index_update(day_start, family, retention);
        self.client
            .update_item()
            .table_name(&self.rollup_table)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_expression_attribute_names(Some(update.expression.names))
            .set_expression_attribute_values(Some(update.expression.values))
            .send()
            .await
            .map_err(|err| StoreError::sdk("UpdateItem", &self.rollup_table, err))?;
        Ok(())
    }

    /// The families with tasks created on the UTC days that [from, to) touches (one Query).
    pub async fn families_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        max_items: u64,
        read: &mut ReadCount,
    ) -> Result<BTreeSet<String>, StoreError> {
        let last = Timestamp::from_millis(to.millis() - 1);
        let mut expression = Expression::new();
        let partition = expression.equals(
            ROLLUP_PARTITION_KEY,
            "partition",
            AttributeValue::S(FAMILY_INDEX_PARTITION.to_owned()),
        );
        // `#` sorts below every character of a family name and `~` above, so this spans the whole days.
        let days = expression.between(
            ROLLUP_SORT_KEY,
            AttributeValue::S(format!("{}#", period_text(Granularity::Day, from))),
            AttributeValue::S(format!("{}#~", period_text(Granularity::Day, last))),
        );
        let request = self
            .client
            .query()
            .table_name(&self.rollup_table)
            .key_condition_expression(format!("{partition} AND {days}"))
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values));
        let mut families = BTreeSet::new();
        each_item(
            &self.rollup_table,
            request,
            max_items,
            FAMILY_INDEX_PARTITION,
            read,
            |item| {
                if let Some(AttributeValue::S(name)) = item.get(NAME) {
                    families.insert(name.clone());
                }
                Ok(())
            },
        )
        .await?;
        Ok(families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timing_domain::rollup::Series;

    fn key(family: &str, granularity: Granularity, at: &str) -> RollupKey {
        let period_start = granularity.start(Timestamp::parse(at).unwrap());
        let series = Series {
            family: family.into(),
            revision: 1,
            cluster_name: "prod".into(),
            launch_type: None,
            snapshotter: None,
            origin: None,
            granularity,
            period_start,
        };
        (series, "tasks")
    }

    #[test]
    fn a_batch_adds_each_family_once_to_each_day_it_touched() {
        let keys = [
            key("web", Granularity::Day, "2026-12-01T23:10:00Z"),
            key("web", Granularity::Hour, "2026-12-01T23:10:00Z"),
            key("api", Granularity::Day, "2026-12-01T01:00:00Z"),
            key("web", Granularity::Day, "2026-12-02T00:00:00Z"),
        ];
        let retention = [Some(86_400), None, Some(2 * 86_400), Some(86_400)];
        let days = families_by_day(keys.iter().zip(retention));
        let day = |at: &str| Timestamp::parse(at).unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(
            days[&day("2026-12-01T00:00:00Z")],
            (BTreeSet::from(["api".to_owned(), "web".to_owned()]), Some(2 * 86_400))
        );
        assert_eq!(days[&day("2026-12-02T00:00:00Z")].0, BTreeSet::from(["web".to_owned()]));

        let update = family_index_update(day("2026-12-01T00:00:00Z"), "web", Some(60));
        assert_eq!(update.key[ROLLUP_SORT_KEY], AttributeValue::S("2026-12-01#web".into()));
        assert_eq!(update.key[ROLLUP_PARTITION_KEY], AttributeValue::S("#families".into()));
        assert!(
            update
                .expression
                .values
                .values()
                .any(|v| *v == AttributeValue::S("web".into()))
        );
        // 2026-12-02T00:00:00Z is 1,796,169,600 s; the item outlives its day by the retention.
        assert!(
            update
                .expression
                .values
                .values()
                .any(|v| *v == AttributeValue::N("1796169660".into()))
        );
    }
}
