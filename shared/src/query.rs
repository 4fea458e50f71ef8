//! What a summary reads: one family's records with createdAt in a window, narrowed by optional
//! filters, through the (family, createdAt) index. Built without I/O. Attribute names are fixed
//! placeholders; what a user typed only ever becomes an expression attribute value.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::record::TIMING_ROW_ATTRIBUTES;
use crate::rollup::{Granularity, MILLIS_PER_HOUR, ROLLUP_PARTITION_KEY, ROLLUP_SORT_KEY};
use crate::store::PARTITION_KEY;
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
}

/// The parts of a Query request.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParameters {
    pub key_condition: String,
    pub filter: Option<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl RecordQuery {
    /// Key condition on the index (family, createdAt BETWEEN from AND to − 1 ms: createdAt is stored
    /// to the millisecond), the optional filters as a FilterExpression.
    pub fn parameters(&self) -> QueryParameters {
        let mut names = HashMap::from([
            ("#family".to_owned(), "family".to_owned()),
            ("#createdAt".to_owned(), "createdAt".to_owned()),
        ]);
        let last_included = Timestamp::from_millis(self.to.millis() - 1);
        let mut values = HashMap::from([
            (":family".to_owned(), AttributeValue::S(self.family.clone())),
            (":from".to_owned(), AttributeValue::S(self.from.to_string())),
            (":to".to_owned(), AttributeValue::S(last_included.to_string())),
        ]);
        let filters = self.filter_parts(&mut names, &mut values);
        QueryParameters {
            key_condition: "#family = :family AND #createdAt BETWEEN :from AND :to".into(),
            filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
            names,
            values,
        }
    }

    /// The optional filters (cluster, launch type, revisions), on attribute names records and rollup
    /// items share.
    fn filter_parts(
        &self,
        names: &mut HashMap<String, String>,
        values: &mut HashMap<String, AttributeValue>,
    ) -> Vec<String> {
        let mut filters = Vec::new();
        if let Some(cluster) = &self.cluster {
            names.insert("#clusterName".into(), "clusterName".into());
            values.insert(":clusterName".into(), AttributeValue::S(cluster.clone()));
            filters.push("#clusterName = :clusterName".to_owned());
        }
        if let Some(launch_type) = &self.launch_type {
            names.insert("#launchType".into(), "launchType".into());
            values.insert(":launchType".into(), AttributeValue::S(launch_type.clone()));
            filters.push("#launchType = :launchType".to_owned());
        }
        if !self.revisions.is_empty() {
            names.insert("#revision".into(), "revision".into());
            let operands: Vec<String> = (0..self.revisions.len()).map(|i| format!(":revision{i}")).collect();
            for (operand, revision) in operands.iter().zip(&self.revisions) {
                values.insert(operand.clone(), AttributeValue::N(revision.to_string()));
            }
            filters.push(format!("#revision IN ({})", operands.join(", ")));
        }
        filters
    }

    /// The whole hours of createdAt that cover [from, to): `from` rounded down, `to` rounded up.
    pub fn hour_window(&self) -> (Timestamp, Timestamp) {
        let from = Granularity::Hour.start(self.from);
        let to = Granularity::Hour.start(Timestamp::from_millis(self.to.millis() - 1));
        (from, Timestamp::from_millis(to.millis() + MILLIS_PER_HOUR))
    }

    /// The runs of rollup sort keys that cover [`Self::hour_window`] once: day items for the whole UTC
    /// days inside it, hour items for the hours before the first and after the last of those days
    /// (or for the whole window when it holds no whole day). `#` sorts below `$`, so `<period>$` is
    /// above every key of that period.
    pub fn rollup_key_ranges(&self) -> Vec<KeyRange> {
        let (first, end) = self.hour_window();
        let day = Granularity::Day;
        let first_day = day.start(Timestamp::from_millis(first.millis() + day.millis() - 1));
        let end_day = day.start(end);
        let mut ranges = Vec::new();
        let mut push = |granularity: Granularity, from: Timestamp, to: Timestamp| {
            if from < to {
                let last = Timestamp::from_millis(to.millis() - granularity.millis());
                ranges.push(KeyRange {
                    granularity,
                    from: format!("{}#", granularity.key_prefix(from)),
                    to: format!("{}$", granularity.key_prefix(last)),
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
        ranges
    }

    /// Query on the rollup table: the family's items whose sort key is in `range` and whose slot is
    /// one of `slots`, with the same optional filters.
    pub fn rollup_parameters(&self, slots: &[&str], range: &KeyRange) -> QueryParameters {
        let mut names = HashMap::from([
            ("#family".to_owned(), ROLLUP_PARTITION_KEY.to_owned()),
            ("#periodSeries".to_owned(), ROLLUP_SORT_KEY.to_owned()),
            ("#slot".to_owned(), "slot".to_owned()),
        ]);
        let mut values = HashMap::from([
            (":family".to_owned(), AttributeValue::S(self.family.clone())),
            (":from".to_owned(), AttributeValue::S(range.from.clone())),
            (":to".to_owned(), AttributeValue::S(range.to.clone())),
        ]);
        let mut filters = self.filter_parts(&mut names, &mut values);
        let operands: Vec<String> = (0..slots.len()).map(|i| format!(":slot{i}")).collect();
        for (operand, slot) in operands.iter().zip(slots) {
            values.insert(operand.clone(), AttributeValue::S((*slot).to_owned()));
        }
        filters.push(format!("#slot IN ({})", operands.join(", ")));
        QueryParameters {
            key_condition: "#family = :family AND #periodSeries BETWEEN :from AND :to".into(),
            filter: Some(filters.join(" AND ")),
            names,
            values,
        }
    }
}

/// A run of rollup sort keys, both ends included: every item of one granularity over some periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub granularity: Granularity,
    pub from: String,
    pub to: String,
}

/// ProjectionExpression for [`crate::record::TimingRow`], with its names added to `names`.
pub fn timing_row_projection(names: &mut HashMap<String, String>) -> String {
    let placeholders: Vec<String> = TIMING_ROW_ATTRIBUTES
        .iter()
        .map(|name| {
            let placeholder = format!("#{name}");
            names.insert(placeholder.clone(), (*name).to_owned());
            placeholder
        })
        .collect();
    placeholders.join(", ")
}

/// Where a page of the index ends: the table key and the index key of its last item, which is what
/// DynamoDB's ExclusiveStartKey for an index query holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageKey {
    pub task_arn: String,
    pub family: String,
    pub created_at: String,
}

impl PageKey {
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PARTITION_KEY.to_owned(), AttributeValue::S(self.task_arn.clone())),
            ("family".to_owned(), AttributeValue::S(self.family.clone())),
            ("createdAt".to_owned(), AttributeValue::S(self.created_at.clone())),
        ])
    }

    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Option<PageKey> {
        let text = |name: &str| item.get(name)?.as_s().ok().cloned();
        Some(PageKey {
            task_arn: text(PARTITION_KEY)?,
            family: text("family")?,
            created_at: text("createdAt")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> RecordQuery {
        RecordQuery {
            family: "web".into(),
            from: Timestamp::parse("2026-11-01T00:00:00Z").unwrap(),
            to: Timestamp::parse("2026-11-02T00:00:00Z").unwrap(),
            cluster: None,
            revisions: vec![],
            launch_type: None,
        }
    }

    #[test]
    fn window_is_half_open_to_the_millisecond() {
        let parameters = query().parameters();
        assert_eq!(
            parameters.values[":from"],
            AttributeValue::S("2026-11-01T00:00:00.000Z".into())
        );
        assert_eq!(
            parameters.values[":to"],
            AttributeValue::S("2026-11-01T23:59:59.999Z".into())
        );
        assert_eq!(parameters.filter, None);
    }

    #[test]
    fn user_strings_become_values_never_expression_text() {
        let hostile = "x) OR attribute_exists(#taskArn) OR (#family = :family";
        let parameters = RecordQuery {
            cluster: Some(hostile.into()),
            launch_type: Some("FARGATE".into()),
            revisions: vec![3, 12],
            ..query()
        }
        .parameters();
        let filter = parameters.filter.unwrap();
        assert_eq!(
            filter,
            "#clusterName = :clusterName AND #launchType = :launchType AND #revision IN (:revision0, :revision1)"
        );
        assert_eq!(parameters.values[":clusterName"], AttributeValue::S(hostile.into()));
        assert_eq!(parameters.values[":revision1"], AttributeValue::N("12".into()));
        let expressions = format!("{} {filter}", parameters.key_condition);
        assert!(!expressions.contains("attribute_exists"));

        // The rollup Queries too, with every user string hostile: each reaches DynamoDB as a value only,
        // and every name placeholder stands for one of the product's own attribute names.
        let hostile_query = RecordQuery {
            family: hostile.into(),
            cluster: Some(hostile.into()),
            launch_type: Some(hostile.into()),
            ..query()
        };
        let record_parameters = hostile_query.parameters();
        let ranges = hostile_query.rollup_key_ranges();
        let rollup_parameters = ranges
            .iter()
            .map(|range| hostile_query.rollup_parameters(&["startup"], range));
        let known = [
            "family",
            "createdAt",
            "clusterName",
            "launchType",
            "revision",
            ROLLUP_PARTITION_KEY,
            ROLLUP_SORT_KEY,
            "slot",
        ];
        for parameters in std::iter::once(record_parameters).chain(rollup_parameters) {
            let expressions = format!("{} {}", parameters.key_condition, parameters.filter.unwrap_or_default());
            assert!(
                !expressions.contains("attribute_exists") && !expressions.contains("x)"),
                "{expressions}"
            );
            assert!(
                parameters.names.values().all(|name| known.contains(&name.as_str())),
                "{:?}",
                parameters.names
            );
            let hostile_values =
                (parameters.values.values()).filter(|value| **value == AttributeValue::S(hostile.into()));
            assert_eq!(
                hostile_values.count(),
                3,
                "family, cluster and launch type, each once as a value"
            );
        }
    }

    #[test]
    fn rollup_reads_cover_the_enclosing_whole_hours() {
        let mut query = query();
        query.from = Timestamp::parse("2026-11-01T10:30:00Z").unwrap();
        query.to = Timestamp::parse("2026-11-01T12:00:00.001Z").unwrap();
        let (from, to) = query.hour_window();
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2026-11-01T10:00:00.000Z".into(), "2026-11-01T13:00:00.000Z".into())
        );
        // An edge on the hour stays where it is: [10:00, 12:00) is hours 10 and 11.
        query.from = Timestamp::parse("2026-11-01T10:00:00Z").unwrap();
        query.to = Timestamp::parse("2026-11-01T12:00:00Z").unwrap();
        let ranges = query.rollup_key_ranges();
        assert_eq!(
            ranges,
            [KeyRange {
                granularity: Granularity::Hour,
                from: "2026-11-01T10#".into(),
                to: "2026-11-01T11$".into()
            }]
        );
        let parameters = query.rollup_parameters(&["startup", "tasks"], &ranges[0]);
        assert_eq!(parameters.values[":from"], AttributeValue::S("2026-11-01T10#".into()));
        assert_eq!(parameters.values[":to"], AttributeValue::S("2026-11-01T11$".into()));
        assert_eq!(
            parameters.key_condition,
            "#family = :family AND #periodSeries BETWEEN :from AND :to"
        );
        let filter = parameters.filter.unwrap();
        assert!(filter.ends_with("#slot IN (:slot0, :slot1)"), "{filter}");
        assert_eq!(parameters.values[":slot1"], AttributeValue::S("tasks".into()));
        // Every key of hour 11 sorts inside, the first key of hour 12 outside.
        assert!("2026-11-01T11#tasks#9#z#-" < "2026-11-01T11$" && "2026-11-01T12#a" > "2026-11-01T11$");
    }

    #[test]
    fn whole_days_are_read_from_day_items_and_the_edges_from_hours() {
        let ranges = |from: &str, to: &str| {
            let query = RecordQuery {
                from: Timestamp::parse(from).unwrap(),
                to: Timestamp::parse(to).unwrap(),
                ..query()
            };
            query
                .rollup_key_ranges()
                .into_iter()
                .map(|range| (range.from, range.to))
                .collect::<Vec<_>>()
        };
        let range = |from: &str, to: &str| (from.to_owned(), to.to_owned());
        // 10:30 on the 1st to 13:10 on the 4th: hours 10-23, days 2 and 3, hours 0-13.
        assert_eq!(
            ranges("2026-11-01T10:30:00Z", "2026-11-04T13:10:00Z"),
            [
                range("2026-11-01T10#", "2026-11-01T23$"),
                range("D#2026-11-02#", "D#2026-11-03$"),
                range("2026-11-04T00#", "2026-11-04T13$"),
            ]
        );
        // Whole days only: one Query.
        assert_eq!(
            ranges("2026-10-22T00:00:00Z", "2026-11-22T00:00:00Z"),
            [range("D#2026-10-22#", "D#2026-11-21$")]
        );
        // Across midnight without a whole day: hours only.
        assert_eq!(
            ranges("2026-11-01T22:00:00Z", "2026-11-02T02:00:00Z"),
            [range("2026-11-01T22#", "2026-11-02T01$")]
        );
        // A window of exactly one day starting at midnight is that day's items.
        assert_eq!(
            ranges("2026-11-01T00:00:00Z", "2026-11-01T23:00:00.001Z"),
            [range("D#2026-11-01#", "D#2026-11-01$")]
        );
    }

    #[test]
    fn page_keys_round_trip_through_items() {
        let key = PageKey {
            task_arn: "arn:aws:ecs:us-east-1:1:task/c/t".into(),
            family: "web".into(),
            created_at: "2026-11-01T00:00:00.000Z".into(),
        };
        assert_eq!(PageKey::from_item(&key.to_item()), Some(key));
        assert_eq!(PageKey::from_item(&HashMap::new()), None);
    }

    #[test]
    fn projection_names_every_timing_attribute() {
        let mut names = HashMap::new();
        let projection = timing_row_projection(&mut names);
        assert_eq!(projection.split(", ").count(), TIMING_ROW_ATTRIBUTES.len());
        assert_eq!(names["#failedToStart"], "failedToStart");
    }
}
