//! How the tasks table stores a record: under 1 KB, so that a write costs 1 unit and its index copy
//! (projection ALL) 1 more (docs/records-and-metrics.md, "Stored form").
//!
//! The domain's [`TaskRecord`] keeps its names; the item differs in three ways:
//! - **Short names** for the attributes only this code reads ([`SHORT_NAMES`], [`CONTAINER_NAMES`]).
//!   Those DynamoDB reads itself keep theirs: the key, the index's keys, the TTL attribute, the version
//!   the condition compares and the attributes the queries filter on.
//! - **Timestamps as epoch milliseconds** (numbers of about 8 bytes instead of 24-character strings),
//!   except `createdAt`, which the index sorts as a string.
//! - **Nothing the task ARN already says**: `taskId`, `region`, `account`, `taskDefinitionArn` and
//!   `clusterArn` are left out when they equal what the ARN (with family, revision and cluster) gives,
//!   and rebuilt on reading. A value that differs is stored; an absent one as an empty string.
//!
//! Reading accepts both forms: items written before this one (every attribute under its record name,
//! timestamps as strings) still decode, and the first write of the new form removes the old names.

use std::collections::HashMap;
use std::sync::LazyLock;

use aws_sdk_dynamodb::types::AttributeValue;
use timing_domain::record::{RECORD_ATTRIBUTES, REPORT_ATTRIBUTES, TaskRecord};
use timing_domain::report::{PulledContainer, Readiness, ReadySignal, Snapshotter};
use timing_domain::timestamp::Timestamp;

pub type Item = HashMap<String, AttributeValue>;

/// (record attribute, stored name).
pub const SHORT_NAMES: [(&str, &str); 31] = [
    ("capacityProviderName", "cp"),
    ("platformVersion", "pv"),
    ("platformFamily", "pf"),
    ("availabilityZone", "az"),
    ("group", "grp"),
    ("startedBy", "sb"),
    ("memory", "mem"),
    ("lastStatus", "ls"),
    ("desiredStatus", "ds"),
    ("stopCode", "sc"),
    ("stoppedReason", "sr"),
    ("connectivity", "cn"),
    ("containers", "co"),
    ("connectivityAt", "cnAt"),
    ("pullStartedAt", "psAt"),
    ("pullStoppedAt", "peAt"),
    ("startedAt", "stAt"),
    ("stoppingAt", "sgAt"),
    ("executionStoppedAt", "xsAt"),
    ("stoppedAt", "spAt"),
    ("updatedAt", "upAt"),
    ("provisioningSeconds", "prov"),
    ("imagePullSeconds", "pull"),
    ("containerStartSeconds", "cst"),
    ("startupSeconds", "sup"),
    ("runSeconds", "run"),
    ("shutdownSeconds", "shut"),
    ("lifetimeSeconds", "life"),
    ("timestampAnomalies", "anom"),
    ("failedToStart", "fts"),
    ("taskId", "id"),
];

/// (container attribute, stored name), inside each element of `co`.
pub const CONTAINER_NAMES: [(&str, &str); 5] = [
    ("name", "n"),
    ("image", "i"),
    ("imageDigest", "d"),
    ("exitCode", "x"),
    ("reason", "r"),
];

/// (report attribute, stored name): the image report's attributes ([`REPORT_ATTRIBUTES`]), apart from
/// [`SHORT_NAMES`] because a state change's write must never remove them. `snapshotter` keeps its name:
/// the queries filter on it.
const REPORT_NAMES: [(&str, &str); 3] = [
    ("reportedContainers", "rc"),
    ("readySignal", "rds"),
    ("readyAt", "rdAt"),
];

/// (pulled container attribute, stored name), inside each element of `rc`.
const PULLED_CONTAINER_NAMES: [(&str, &str); 3] = [("name", "n"), ("snapshotter", "s"), ("excluded", "e")];

/// `readySignal` as stored: one letter, for the same reason as the ledger's codes.
const SIGNAL_CODES: [(ReadySignal, &str); 2] = [(ReadySignal::HealthCheck, "h"), (ReadySignal::Url, "u")];

fn signal_code(signal: ReadySignal) -> &'static str {
    SIGNAL_CODES
        .iter()
        .find(|(known, _)| *known == signal)
        .map_or("?", |(_, code)| code)
}

/// A stored signal code as the record's name (`healthCheck`, `url`); anything else is left for the record's
/// decoding to refuse.
fn signal_name(value: AttributeValue) -> AttributeValue {
    match value
        .as_s()
        .ok()
        .and_then(|code| SIGNAL_CODES.iter().find(|(_, c)| c == code))
    {
        Some((signal, _)) => AttributeValue::S(signal.name().to_owned()),
        None => value,
    }
}

/// The attributes an image report adds to its task's item, in stored form.
pub fn report_item(
    snapshotter: Snapshotter,
    containers: &[PulledContainer],
    readiness: Option<Readiness>,
) -> Result<Item, serde_dynamo::Error> {
    let mut list = serde_dynamo::to_attribute_value(containers)?;
    rename_list(&mut list, &PULLED_CONTAINER_NAMES, true);
    let mut item = Item::from([
        (
            "snapshotter".to_owned(),
            AttributeValue::S(snapshotter.name().to_owned()),
        ),
        ("rc".to_owned(), list),
    ]);
    if let Some(readiness) = readiness {
        item.insert(
            "rds".to_owned(),
            AttributeValue::S(signal_code(readiness.signal).to_owned()),
        );
        if let Some(ready_at) = readiness.ready_at {
            item.insert("rdAt".to_owned(), AttributeValue::N(ready_at.millis().to_string()));
        }
    }
    Ok(item)
}

/// Record attributes stored as epoch milliseconds (their stored names are in [`SHORT_NAMES`], and
/// `readyAt`'s in [`REPORT_NAMES`]).
const TIMESTAMPS: [&str; 9] = [
    "readyAt",
    "connectivityAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "executionStoppedAt",
    "stoppedAt",
    "updatedAt",
];

/// Attributes left out when the task ARN gives them; `taskId`'s stored name, when it must be stored,
/// is in [`SHORT_NAMES`], the others keep their record names (they are rarely stored at all).
const DERIVED: [&str; 5] = ["taskId", "region", "account", "taskDefinitionArn", "clusterArn"];

/// Every name a record's attribute may be stored under, in either form: what a write removes when the
/// version it writes lacks it.
pub static STORED_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut names: Vec<&str> = RECORD_ATTRIBUTES.to_vec();
    names.extend(SHORT_NAMES.iter().map(|(_, short)| *short));
    names
});

/// `name` through a table of (record name, stored name): to its stored name, or back.
fn translate(table: &[(&'static str, &'static str)], name: &str, to_stored: bool) -> Option<&'static str> {
    table
        .iter()
        .find(|(long, short)| name == if to_stored { *long } else { *short })
        .map(|(long, short)| if to_stored { *short } else { *long })
}

fn stored_name(name: &str) -> &str {
    translate(&SHORT_NAMES, name, true).unwrap_or(name)
}

fn record_name(name: &str) -> Option<&'static str> {
    translate(&SHORT_NAMES, name, false).or_else(|| translate(&REPORT_NAMES, name, false))
}

/// The names to project for `attributes` (record names): each under both forms.
pub fn projected_names(attributes: &[&'static str]) -> Vec<&'static str> {
    let mut names = attributes.to_vec();
    names.extend(attributes.iter().filter_map(|attribute| {
        translate(&SHORT_NAMES, attribute, true).or_else(|| translate(&REPORT_NAMES, attribute, true))
    }));
    names
}

/// What the task ARN `arn:<partition>:ecs:<region>:<account>:task/…` gives, with the record's family,
/// revision and cluster name.
fn derived_values(item: &Item) -> Option<[(&'static str, String); 5]> {
    let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok());
    let task_arn = text("taskArn")?;
    let mut parts = task_arn.splitn(6, ':');
    let (_, partition, _, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let task_id = resource.rsplit('/').next()?;
    let family = text("family")?;
    let revision = item.get("revision")?.as_n().ok()?;
    let cluster = text("clusterName")?;
    let prefix = format!("arn:{partition}:ecs:{region}:{account}");
    Some([
        ("taskId", task_id.to_owned()),
        ("region", region.to_owned()),
        ("account", account.to_owned()),
        (
            "taskDefinitionArn",
            format!("{prefix}:task-definition/{family}:{revision}"),
        ),
        ("clusterArn", format!("{prefix}:cluster/{cluster}")),
    ])
}

/// Stands for "absent" where an absent attribute would mean "as the task ARN says".
fn absent() -> AttributeValue {
    AttributeValue::Null(true)
}

/// The item that stores `record` (the bookkeeping attributes aside). Never the report's attributes: only
/// the report's own write sets them (`report_item`), whatever a record read back carries.
pub fn stored_item(record: &TaskRecord) -> Result<Item, serde_dynamo::Error> {
    let mut item: Item = serde_dynamo::to_item(record)?;
    for name in REPORT_ATTRIBUTES {
        item.remove(name);
    }
    Ok(stored_form(item))
}

/// `item` (a record as serde_dynamo writes it, record names) in its stored form.
pub fn stored_form(mut item: Item) -> Item {
    if let Some(derived) = derived_values(&item) {
        for (name, value) in derived {
            match item.get(name) {
                Some(AttributeValue::S(stored)) if *stored == value => {
                    item.remove(name);
                }
                // Absent, where reading would rebuild it: say so.
                None => {
                    item.insert(name.to_owned(), absent());
                }
                Some(_) => {}
            }
        }
    }
    let mut stored = Item::with_capacity(item.len());
    for (name, mut value) in item {
        if TIMESTAMPS.contains(&name.as_str())
            && let Some(millis) = value.as_s().ok().and_then(|text| Timestamp::parse(text).ok())
        {
            value = AttributeValue::N(millis.millis().to_string());
        }
        if name == "containers" {
            rename_containers(&mut value, true);
        }
        stored.insert(stored_name(&name).to_owned(), value);
    }
    stored
}

/// `item` (either form) under the record's names, ready for serde_dynamo.
pub fn record_form(item: Item) -> Item {
    // Only the stored form leaves out what the ARN says; the form before always has `taskId`, and an
    // attribute it lacks was absent.
    let stored_form = !item.contains_key("taskId");
    // Both spellings of one attribute: only a write of the code before this form, after one of this
    // form, leaves them (during a deploy, or after a rollback), and that later write is the record name.
    let written_since: Vec<&'static str> = SHORT_NAMES
        .iter()
        .filter(|(long, short)| item.contains_key(*long) && item.contains_key(*short))
        .map(|(_, short)| *short)
        .collect();
    let mut record = Item::with_capacity(item.len() + DERIVED.len());
    for (name, mut value) in item {
        if written_since.contains(&name.as_str()) {
            continue;
        }
        let name = record_name(&name).map_or(name, str::to_owned);
        if TIMESTAMPS.contains(&name.as_str())
            && let Some(millis) = value.as_n().ok().and_then(|n| n.parse::<i64>().ok())
        {
            value = AttributeValue::S(Timestamp::from_millis(millis).to_string());
        }
        match name.as_str() {
            "containers" => rename_containers(&mut value, false),
            "reportedContainers" => rename_list(&mut value, &PULLED_CONTAINER_NAMES, false),
            "readySignal" => value = signal_name(value),
            _ => {}
        }
        record.insert(name, value);
    }
    if stored_form && let Some(derived) = derived_values(&record) {
        for (name, value) in derived {
            match record.get(name) {
                None => {
                    record.insert(name.to_owned(), AttributeValue::S(value));
                }
                Some(AttributeValue::Null(_)) => {
                    record.remove(name);
                }
                Some(_) => {}
            }
        }
    }
    record
}

/// Each container's attributes (`containers`, a list of maps) to their stored names, or back.
fn rename_containers(value: &mut AttributeValue, to_stored: bool) {
    rename_list(value, &CONTAINER_NAMES, to_stored);
}

/// Each map of a list to its stored names through `table`, or back.
fn rename_list(value: &mut AttributeValue, table: &[(&'static str, &'static str)], to_stored: bool) {
    let AttributeValue::L(elements) = value else {
        return;
    };
    for element in elements {
        if let AttributeValue::M(map) = element {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(name, value)| {
                    let renamed = translate(table, &name, to_stored).map_or(name, str::to_owned);
                    (renamed, value)
                })
                .collect();
        }
    }
}

/// (ledger key, stored code). Frozen: a stored code must mean the same metric for as long as records
/// live, whatever later happens to the short names.
const LEDGER_CODES: [(&str, &str); 21] = [
    ("TasksStarted", "S"),
    ("TasksStopped", "X"),
    ("TasksFailedToStart", "F"),
    ("ProvisioningTime", "prov"),
    ("ImagePullTime", "pull"),
    ("ContainerStartTime", "cst"),
    ("TaskStartupTime", "sup"),
    ("RunTime", "run"),
    ("ShutdownTime", "shut"),
    ("TaskLifetime", "life"),
    ("TimestampAnomalies/provisioning", "!prov"),
    ("TimestampAnomalies/imagePull", "!pull"),
    ("TimestampAnomalies/containerStart", "!cst"),
    ("TimestampAnomalies/startup", "!sup"),
    ("TimestampAnomalies/run", "!run"),
    ("TimestampAnomalies/shutdown", "!shut"),
    ("TimestampAnomalies/lifetime", "!life"),
    // One letter, as the counts: with the report a record is within a few bytes of 1 KB.
    ("TaskReadyTime", "R"),
    ("WarmUpTime", "W"),
    // Never in a ledger (anomalies of the phases to ready are not emitted), coded all the same.
    ("TimestampAnomalies/ready", "!rdy"),
    ("TimestampAnomalies/warmUp", "!warm"),
];

/// A ledger key as stored (a key without a code, one a later version adds, is stored as it is).
pub fn ledger_code(key: &str) -> String {
    LEDGER_CODES
        .iter()
        .find(|(long, _)| *long == key)
        .map_or(key, |(_, code)| code)
        .to_owned()
}

/// A stored ledger member (a code, or a key stored whole before the codes) as its key.
pub fn ledger_key(stored: &str) -> String {
    LEDGER_CODES
        .iter()
        .find(|(_, code)| *code == stored)
        .map_or(stored, |(long, _)| long)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use timing_domain::event::parse_event;

    fn record(detail: serde_json::Value) -> TaskRecord {
        let envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs",
            "time": "2024-03-01T10:05:00Z", "region": "eu-west-1", "account": "111122223333", "detail": detail});
        TaskRecord::from_event(parse_event(envelope.to_string().as_bytes()).unwrap(), 90).unwrap()
    }

    fn stopped() -> TaskRecord {
        record(json!({
            "taskArn": "arn:aws:ecs:eu-west-1:111122223333:task/prod/0123abcd",
            "clusterArn": "arn:aws:ecs:eu-west-1:111122223333:cluster/prod",
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:12",
            "version": 6, "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "launchType": "FARGATE",
            "createdAt": "2024-03-01T10:00:00Z", "pullStartedAt": "2024-03-01T10:00:01.5Z",
            "pullStoppedAt": "2024-03-01T10:00:03Z", "startedAt": "2024-03-01T10:00:04.25Z",
            "stoppingAt": "2024-03-01T10:04:00Z", "executionStoppedAt": "2024-03-01T10:04:01Z",
            "stoppedAt": "2024-03-01T10:04:30.125Z", "stopCode": "EssentialContainerExited",
            "containers": [{"name": "app", "image": "repo/web:1", "imageDigest": "sha256:aa", "exitCode": 0}]
        }))
    }

    fn item(record: &TaskRecord) -> Item {
        serde_dynamo::to_item(record).unwrap()
    }

    #[test]
    fn the_stored_form_reads_back_as_the_same_record() {
        let record = stopped();
        let stored = stored_form(item(&record));
        assert_eq!(
            serde_dynamo::from_item::<_, TaskRecord>(record_form(stored.clone())).unwrap(),
            record
        );
        // 2024-03-01T10:04:30.125Z = 1709287470125 ms (date -u -d 2024-03-01T10:04:30Z +%s, then .125).
        assert_eq!(stored["spAt"], AttributeValue::N("1709287470125".into()));
        assert_eq!(
            stored["co"].as_l().unwrap()[0].as_m().unwrap()["d"],
            AttributeValue::S("sha256:aa".into())
        );
        for derived in DERIVED {
            assert!(!stored.contains_key(derived), "{derived} is what the ARN says");
        }
        for kept in [
            "taskArn",
            "family",
            "revision",
            "clusterName",
            "launchType",
            "createdAt",
            "expiresAt",
            "version",
        ] {
            assert!(stored.contains_key(kept), "{kept} keeps its name");
        }
    }

    #[test]
    fn the_report_with_readiness_reads_back_onto_the_record() {
        let ready_at = Timestamp::parse("2024-03-01T10:00:31.5Z").unwrap();
        for signal in [ReadySignal::HealthCheck, ReadySignal::Url] {
            let mut stored = stored_item(&stopped()).unwrap();
            let readiness = Readiness {
                signal,
                ready_at: Some(ready_at),
            };
            stored.extend(report_item(Snapshotter::Soci, &[], Some(readiness)).unwrap());
            // 2024-03-01T10:00:31Z = 1709287231 (date -u -d ... +%s), then the half second.
            assert_eq!(stored["rdAt"], AttributeValue::N("1709287231500".into()));
            let record: TaskRecord = serde_dynamo::from_item(record_form(stored)).unwrap();
            assert_eq!(
                (record.ready_signal, record.ready_at, record.snapshotter),
                (Some(signal), Some(ready_at), Some(Snapshotter::Soci))
            );
            // 10:00:31.5 - 10:00:04.25 (startedAt)
            assert_eq!(record.phase_seconds(timing_domain::timing::Phase::WarmUp), Some(27.25));
        }
    }

    #[test]
    fn what_the_arn_does_not_say_is_stored() {
        let mut record = stopped();
        record.region = None;
        record.account = Some("999999999999".into());
        record.cluster_arn = Some("arn:aws:ecs:eu-west-1:111122223333:cluster/other".into());
        let stored = stored_form(item(&record));
        assert_eq!(stored["region"], AttributeValue::Null(true), "absent, not derived");
        assert_eq!(stored["account"], AttributeValue::S("999999999999".into()));
        assert!(stored.contains_key("clusterArn"));
        assert!(!stored.contains_key("taskDefinitionArn"));
        assert_eq!(
            serde_dynamo::from_item::<_, TaskRecord>(record_form(stored)).unwrap(),
            record
        );
    }

    #[test]
    fn the_form_before_reads_as_it_did() {
        let record = stopped();
        assert_eq!(
            serde_dynamo::from_item::<_, TaskRecord>(record_form(item(&record))).unwrap(),
            record
        );
        // What it left out was absent: nothing is derived for it.
        let mut sparse = stopped();
        (sparse.region, sparse.account, sparse.cluster_arn) = (None, None, None);
        assert_eq!(
            serde_dynamo::from_item::<_, TaskRecord>(record_form(item(&sparse))).unwrap(),
            sparse
        );
    }

    #[test]
    fn empty_values_stay_empty() {
        let mut record = stopped();
        record.region = Some(String::new());
        let stored = stored_form(item(&record));
        assert_eq!(
            serde_dynamo::from_item::<_, TaskRecord>(record_form(stored)).unwrap(),
            record
        );
    }

    #[test]
    fn a_write_of_the_form_before_after_one_of_this_form_wins() {
        // This form's write, then (during a deploy) the code before writes a newer version over it: it
        // sets record names and leaves the short ones.
        let mut newer = stopped();
        newer.version = 7;
        newer.stop_code = Some("UserInitiated".into());
        let mut both = stored_form(item(&stopped()));
        both.extend(item(&newer));
        let read: TaskRecord = serde_dynamo::from_item(record_form(both)).unwrap();
        assert_eq!(read, newer);
    }

    #[test]
    fn ledger_codes_cover_every_key_a_record_can_have() {
        use timing_domain::metrics::{ANOMALY_KEY_PREFIX, TASKS_FAILED_TO_START, TASKS_STARTED, TASKS_STOPPED};
        use timing_domain::timing::Phase;
        let mut keys = vec![
            TASKS_STARTED.to_owned(),
            TASKS_STOPPED.to_owned(),
            TASKS_FAILED_TO_START.to_owned(),
        ];
        for phase in Phase::ALL {
            keys.push(phase.metric_name().to_owned());
            keys.push(format!("{ANOMALY_KEY_PREFIX}{}", phase.name()));
        }
        for key in keys {
            assert_ne!(ledger_code(&key), key, "{key} has no code");
        }
    }

    #[test]
    fn every_record_attribute_has_one_stored_name() {
        let mut seen = std::collections::BTreeSet::new();
        for name in RECORD_ATTRIBUTES {
            assert!(seen.insert(stored_name(name)), "{name}: stored name taken twice");
            assert_eq!(record_name(stored_name(name)).unwrap_or(name), name);
        }
        for (_, short) in SHORT_NAMES {
            assert!(
                !RECORD_ATTRIBUTES.contains(&short),
                "{short} is also a record attribute"
            );
        }
    }

    #[test]
    fn ledger_codes_round_trip_and_unknown_keys_pass_through() {
        for key in [
            "TasksStarted",
            "TaskStartupTime",
            "TimestampAnomalies/imagePull",
            "SomethingNew",
        ] {
            assert_eq!(ledger_key(&ledger_code(key)), key);
        }
        assert_eq!(ledger_code("TaskStartupTime"), "sup");
        assert_eq!(ledger_code("TimestampAnomalies/imagePull"), "!pull");
        assert_eq!(ledger_code("SomethingNew"), "SomethingNew");
        let codes: std::collections::BTreeSet<_> = LEDGER_CODES.iter().map(|(_, code)| *code).collect();
        assert_eq!(codes.len(), LEDGER_CODES.len(), "codes are distinct");
    }
}
