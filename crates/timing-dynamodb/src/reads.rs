//! The Queries a summary sends: records through the (family, createdAt) index, and rollup items by
//! runs of sort keys. Built without I/O, from the domain's [`RecordQuery`].

use aws_sdk_dynamodb::types::AttributeValue;
use timing_domain::query::{PeriodRun, RecordQuery};
use timing_domain::record::TIMING_ROW_ATTRIBUTES;
use timing_domain::report::Snapshotter;
use timing_domain::rollup::Granularity;

use crate::expression::{Expression, all_of};
use crate::keys::{CREATED_AT, FAMILY, ROLLUP_PARTITION_KEY, ROLLUP_SORT_KEY, period_key_prefix};
use crate::record_item::projected_names;

/// The parts of a Query request.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParameters {
    pub key_condition: String,
    pub filter: Option<String>,
    pub projection: Option<String>,
    pub expression: Expression,
}

/// The optional filters (cluster, launch type, revisions), on attribute names records and rollup
/// items share.
fn filters(query: &RecordQuery, expression: &mut Expression) -> Vec<String> {
    let mut filters = Vec::new();
    if let Some(cluster) = &query.cluster {
        filters.push(expression.equals("clusterName", "clusterName", AttributeValue::S(cluster.clone())));
    }
    if let Some(launch_type) = &query.launch_type {
        filters.push(expression.equals("launchType", "launchType", AttributeValue::S(launch_type.clone())));
    }
    match query.snapshotter.as_deref() {
        None => {}
        // Records and rollup items of tasks without a report have no snapshotter attribute.
        Some(Snapshotter::UNREPORTED) => {
            filters.push(format!("attribute_not_exists({})", expression.name("snapshotter")))
        }
        Some(name) => filters.push(expression.equals("snapshotter", "snapshotter", AttributeValue::S(name.to_owned()))),
    }
    if !query.revisions.is_empty() {
        let revisions = query
            .revisions
            .iter()
            .map(|revision| AttributeValue::N(revision.to_string()));
        filters.push(expression.one_of("revision", "revision", revisions));
    }
    filters
}

/// Answers take a task's account and region from its ARN (a record stores the envelope's only where it
/// differs, see `record_item`, and task-events refuses another account's): the ARN
/// `arn:<partition>:ecs:<region>:<account>:task/…` contains `:<region>:<account>:task/`, and an account
/// id or a region name is nothing else of it (the request checked their form).
fn record_origin_filter(query: &RecordQuery, expression: &mut Expression) -> Option<String> {
    let fragment = match (&query.account, &query.region) {
        (None, None) => return None,
        (Some(account), None) => format!(":{account}:task/"),
        (None, Some(region)) => format!(":ecs:{region}:"),
        (Some(account), Some(region)) => format!(":ecs:{region}:{account}:task/"),
    };
    let task_arn = expression.name(crate::keys::PARTITION_KEY);
    let value = expression.value("origin", AttributeValue::S(fragment));
    Some(format!("contains({task_arn}, {value})"))
}

/// Rollup items name their account and region (items from before they did name neither, and match
/// neither filter).
fn rollup_origin_filters(query: &RecordQuery, expression: &mut Expression) -> Vec<String> {
    let mut filters = Vec::new();
    if let Some(account) = &query.account {
        filters.push(expression.equals("account", "account", AttributeValue::S(account.clone())));
    }
    if let Some(region) = &query.region {
        filters.push(expression.equals("region", "region", AttributeValue::S(region.clone())));
    }
    filters
}

/// Records on the index: family, createdAt BETWEEN from AND to − 1 ms (createdAt is stored to the
/// millisecond), the optional filters as a FilterExpression.
pub fn record_query(query: &RecordQuery) -> QueryParameters {
    let mut expression = Expression::new();
    let family = expression.equals(FAMILY, "family", AttributeValue::S(query.family.clone()));
    let window = expression.between(
        CREATED_AT,
        AttributeValue::S(query.from.to_string()),
        AttributeValue::S(query.last_included().to_string()),
    );
    let mut filters = filters(query, &mut expression);
    filters.extend(record_origin_filter(query, &mut expression));
    let filter = all_of(filters);
    QueryParameters {
        key_condition: format!("{family} AND {window}"),
        filter,
        projection: None,
        expression,
    }
}

/// [`record_query`] reading only what a [`timing_domain::record::TimingRow`] holds.
pub fn timing_row_query(query: &RecordQuery) -> QueryParameters {
    let mut parameters = record_query(query);
    // Both forms' names: records written before the stored form changed live until their TTL.
    parameters.projection = Some(
        parameters
            .expression
            .projection(&projected_names(&TIMING_ROW_ATTRIBUTES)),
    );
    parameters
}

/// A run of rollup sort keys, both ends included: every item of one granularity over some periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub granularity: Granularity,
    pub from: String,
    pub to: String,
}

/// The sort keys of a run of periods: `#` sorts below `$`, so `<period>$` is above every key of that
/// period.
pub fn key_range(run: &PeriodRun) -> KeyRange {
    KeyRange {
        granularity: run.granularity,
        from: format!("{}#", period_key_prefix(run.granularity, run.first)),
        to: format!("{}$", period_key_prefix(run.granularity, run.last)),
    }
}

/// The key ranges that cover the query's hour window once (see [`RecordQuery::rollup_periods`]).
pub fn rollup_key_ranges(query: &RecordQuery) -> Vec<KeyRange> {
    query.rollup_periods().iter().map(key_range).collect()
}

/// Rollup items of the query's family whose sort key is in `range` and whose slot is one of `slots`,
/// with the same optional filters.
pub fn rollup_query(query: &RecordQuery, slots: &[&str], range: &KeyRange) -> QueryParameters {
    let mut expression = Expression::new();
    let family = expression.equals(ROLLUP_PARTITION_KEY, "family", AttributeValue::S(query.family.clone()));
    let keys = expression.between(
        ROLLUP_SORT_KEY,
        AttributeValue::S(range.from.clone()),
        AttributeValue::S(range.to.clone()),
    );
    let mut filters = filters(query, &mut expression);
    filters.extend(rollup_origin_filters(query, &mut expression));
    let slots = slots.iter().map(|slot| AttributeValue::S((*slot).to_owned()));
    filters.push(expression.one_of("slot", "slot", slots));
    QueryParameters {
        key_condition: format!("{family} AND {keys}"),
        filter: all_of(filters),
        projection: None,
        expression,
    }
}

#[cfg(test)]
mod tests {
    use timing_domain::timestamp::Timestamp;

    use super::*;

    fn query() -> RecordQuery {
        RecordQuery {
            family: "web".into(),
            from: Timestamp::parse("2026-11-01T00:00:00Z").unwrap(),
            to: Timestamp::parse("2026-11-02T00:00:00Z").unwrap(),
            account: None,
            region: None,
            cluster: None,
            revisions: vec![],
            launch_type: None,
            snapshotter: None,
        }
    }

    #[test]
    fn window_is_half_open_to_the_millisecond() {
        let parameters = record_query(&query());
        assert_eq!(
            parameters.key_condition,
            "#family = :family AND #createdAt BETWEEN :from AND :to"
        );
        let values = &parameters.expression.values;
        assert_eq!(values[":from"], AttributeValue::S("2026-11-01T00:00:00.000Z".into()));
        assert_eq!(values[":to"], AttributeValue::S("2026-11-01T23:59:59.999Z".into()));
        assert_eq!(parameters.filter, None);
    }

    #[test]
    fn account_and_region_filter_records_by_their_arn_and_rollup_items_by_attribute() {
        let arn = |region: &str, account: &str| format!("arn:aws:ecs:{region}:{account}:task/prod/0123abcd");
        let matches = |query: &RecordQuery, task_arn: &str| {
            let parameters = record_query(query);
            let fragment = parameters.expression.values[":origin"].as_s().unwrap().clone();
            assert_eq!(parameters.filter.as_deref(), Some("contains(#taskArn, :origin)"));
            task_arn.contains(&fragment)
        };
        let both = RecordQuery {
            account: Some("111122223333".into()),
            region: Some("eu-west-1".into()),
            ..query()
        };
        assert!(matches(&both, &arn("eu-west-1", "111122223333")));
        assert!(!matches(&both, &arn("eu-west-2", "111122223333")));
        assert!(!matches(&both, &arn("eu-west-1", "444455556666")));
        let account = RecordQuery {
            account: Some("111122223333".into()),
            ..query()
        };
        assert!(matches(&account, &arn("ap-south-1", "111122223333")));
        assert!(!matches(&account, &arn("ap-south-1", "211122223333")));
        let region = RecordQuery {
            region: Some("eu-west-1".into()),
            ..query()
        };
        assert!(matches(&region, &arn("eu-west-1", "111122223333")));
        // A region that is a prefix of another is not that one.
        assert!(!matches(&region, &arn("eu-west-10", "111122223333")));

        let range = &rollup_key_ranges(&both)[0];
        let rollups = rollup_query(&both, &["startup"], range);
        assert_eq!(
            rollups.filter.as_deref(),
            Some("#account = :account AND #region = :region AND #slot IN (:slot0)")
        );
    }

    #[test]
    fn user_strings_become_values_never_expression_text() {
        let hostile = "x) OR attribute_exists(#taskArn) OR (#family = :family";
        let parameters = record_query(&RecordQuery {
            cluster: Some(hostile.into()),
            launch_type: Some("FARGATE".into()),
            revisions: vec![3, 12],
            ..query()
        });
        let filter = parameters.filter.unwrap();
        assert_eq!(
            filter,
            "#clusterName = :clusterName AND #launchType = :launchType AND #revision IN (:revision0, :revision1)"
        );
        assert_eq!(
            parameters.expression.values[":clusterName"],
            AttributeValue::S(hostile.into())
        );
        assert_eq!(
            parameters.expression.values[":revision1"],
            AttributeValue::N("12".into())
        );

        // The rollup Queries too, with every user string hostile: each reaches DynamoDB as a value only,
        // and every name placeholder stands for one of the product's own attribute names.
        let hostile_query = RecordQuery {
            family: hostile.into(),
            cluster: Some(hostile.into()),
            launch_type: Some(hostile.into()),
            ..query()
        };
        let rollup_parameters = rollup_key_ranges(&hostile_query)
            .into_iter()
            .map(|range| rollup_query(&hostile_query, &["startup"], &range));
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
        for parameters in std::iter::once(record_query(&hostile_query)).chain(rollup_parameters) {
            let expressions = format!("{} {}", parameters.key_condition, parameters.filter.unwrap_or_default());
            assert!(
                !expressions.contains("attribute_exists") && !expressions.contains("x)"),
                "{expressions}"
            );
            let names = &parameters.expression.names;
            assert!(names.values().all(|name| known.contains(&name.as_str())), "{names:?}");
            let hostile_values =
                (parameters.expression.values.values()).filter(|value| **value == AttributeValue::S(hostile.into()));
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
        // An edge on the hour stays where it is: [10:00, 12:00) is hours 10 and 11.
        query.from = Timestamp::parse("2026-11-01T10:00:00Z").unwrap();
        query.to = Timestamp::parse("2026-11-01T12:00:00Z").unwrap();
        let ranges = rollup_key_ranges(&query);
        assert_eq!(
            ranges,
            [KeyRange {
                granularity: Granularity::Hour,
                from: "2026-11-01T10#".into(),
                to: "2026-11-01T11$".into()
            }]
        );
        let parameters = rollup_query(&query, &["startup", "tasks"], &ranges[0]);
        let values = &parameters.expression.values;
        assert_eq!(values[":from"], AttributeValue::S("2026-11-01T10#".into()));
        assert_eq!(values[":to"], AttributeValue::S("2026-11-01T11$".into()));
        assert_eq!(
            parameters.key_condition,
            "#family = :family AND #periodSeries BETWEEN :from AND :to"
        );
        let filter = parameters.filter.unwrap();
        assert!(filter.ends_with("#slot IN (:slot0, :slot1)"), "{filter}");
        assert_eq!(values[":slot1"], AttributeValue::S("tasks".into()));
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
            rollup_key_ranges(&query)
                .into_iter()
                .map(|range| (range.from, range.to))
                .collect::<Vec<_>>()
        };
        let range = |from: &str, to: &str| (from.to_owned(), to.to_owned());
        assert_eq!(
            ranges("2026-11-01T10:30:00Z", "2026-11-04T13:10:00Z"),
            [
                range("2026-11-01T10#", "2026-11-01T23$"),
                range("D#2026-11-02#", "D#2026-11-03$"),
                range("2026-11-04T00#", "2026-11-04T13$"),
            ]
        );
        // A window of exactly one day starting at midnight is that day's items.
        assert_eq!(
            ranges("2026-11-01T00:00:00Z", "2026-11-01T23:00:00.001Z"),
            [range("D#2026-11-01#", "D#2026-11-01$")]
        );
    }

    #[test]
    fn projection_names_every_timing_attribute() {
        let parameters = timing_row_query(&query());
        let projection = parameters.projection.unwrap();
        let names: Vec<&str> = projection
            .split(", ")
            .map(|placeholder| parameters.expression.names[placeholder].as_str())
            .collect();
        // Each attribute under its record name (items written before the stored form) and its stored
        // name where that differs: 7 of the 22 keep theirs (taskArn, family, revision, clusterName,
        // launchType, snapshotter, createdAt).
        assert_eq!(names.len(), 2 * TIMING_ROW_ATTRIBUTES.len() - 7);
        assert!(names.contains(&"rdAt"), "readyAt under its stored name");
        for name in [
            "failedToStart",
            "fts",
            "startedAt",
            "stAt",
            "containers",
            "co",
            "family",
        ] {
            assert!(names.contains(&name), "{name} not projected");
        }
    }
}
