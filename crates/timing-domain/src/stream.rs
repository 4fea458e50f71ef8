//! Rollups from the tasks table's stream: what one stream record (a record's image before and after a
//! write) changes in which rollup item. The rollups are a function of the records: a record adds
//! [`Image::contribution`] to its items, so a write adds `contribution(new) − contribution(old)`.
//! How the changes are applied exactly once is `timing-dynamodb`'s (`stream_store`).

use std::collections::{BTreeMap, BTreeSet};

use crate::record::TaskRecord;
use crate::rollup::{Delta, Marker, RollupKey, deltas, known_markers, rollup_retention_seconds, without_origin};

/// A record as one side of a stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub record: TaskRecord,
    /// Written by the stream path's task-events (it marks its writes), whose records the consumer counts.
    /// A record the transaction path wrote last counts what that path's transactions added.
    pub stream_path: bool,
    /// The transaction path's markers on the record (empty on records it never rolled up).
    pub legacy_rolled_up: BTreeSet<String>,
    /// Written by a task-events that keys rollups by account and region (it marks its writes). A record
    /// written before counts under the keys without them, where it was added: a write that crosses the
    /// upgrade moves the task from those items to its account's, as a change of series would.
    pub by_account: bool,
}

impl Image {
    /// A record written by the stream path.
    pub fn new(record: TaskRecord) -> Image {
        Image {
            record,
            stream_path: true,
            legacy_rolled_up: BTreeSet::new(),
            by_account: true,
        }
    }

    /// A record the transaction path wrote last, with the markers its transactions added.
    pub fn legacy(record: TaskRecord, rolled_up: &[&str]) -> Image {
        Image {
            record,
            stream_path: false,
            legacy_rolled_up: rolled_up.iter().map(|marker| (*marker).to_owned()).collect(),
            by_account: false,
        }
    }

    fn markers_in(&self, names: &BTreeSet<String>) -> Vec<Marker> {
        known_markers(&self.record)
            .into_iter()
            .filter(|marker| names.contains(marker.name()))
            .collect()
    }

    /// What this record has put into the rollups: every marker it knows (stream path), or the markers
    /// the transaction path's transactions added.
    pub fn contribution(&self) -> BTreeMap<RollupKey, Delta> {
        let markers = match self.stream_path {
            true => known_markers(&self.record),
            false => self.markers_in(&self.legacy_rolled_up),
        };
        self.keyed(deltas(&self.record, &markers))
    }

    fn keyed(&self, deltas: BTreeMap<RollupKey, Delta>) -> BTreeMap<RollupKey, Delta> {
        match self.by_account {
            true => deltas,
            false => without_origin(deltas),
        }
    }
}

/// Who removed a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// DynamoDB's TTL expiry: the rollups keep the task (history outlives the records).
    Expired,
    /// Anyone else: the task leaves the rollups too.
    Deleted,
}

/// One stream record, as the rollups see it.
// One lives at a time, per stream record: boxing the images would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StreamChange {
    Insert(Image),
    Modify { old: Image, new: Image },
    Remove { old: Image, by: Removal },
}

/// A signed change to one rollup item: amounts by attribute (no zeros), and the retention its
/// records carry (see [`rollup_retention_seconds`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemChange {
    pub amounts: BTreeMap<String, i128>,
    pub retention_seconds: Option<i64>,
}

impl ItemChange {
    fn add(&mut self, delta: &Delta, sign: i128, retention_seconds: Option<i64>) {
        for (name, amount) in delta.fields() {
            let amount = i128::try_from(amount).unwrap_or(i128::MAX);
            *self.amounts.entry(name.into_owned()).or_default() += sign * amount;
        }
        self.retention_seconds = self.retention_seconds.max(retention_seconds);
    }

    /// Adds `other` (the next record's change to the same item).
    pub fn merge(&mut self, other: &ItemChange) {
        for (name, amount) in &other.amounts {
            *self.amounts.entry(name.clone()).or_default() += amount;
        }
        self.amounts.retain(|_, amount| *amount != 0);
        self.retention_seconds = self.retention_seconds.max(other.retention_seconds);
    }

    pub fn is_empty(&self) -> bool {
        self.amounts.is_empty()
    }
}

fn signed(
    changes: &mut BTreeMap<RollupKey, ItemChange>,
    image: &Image,
    deltas: BTreeMap<RollupKey, Delta>,
    sign: i128,
) {
    let retention = rollup_retention_seconds(&image.record);
    for (key, delta) in deltas {
        changes.entry(key).or_default().add(&delta, sign, retention);
    }
}

/// What `change` does to each rollup item; items it leaves as they are are absent.
///
/// `contribution(new) − contribution(old)`, less what a transaction of the transaction path added itself
/// (the markers that joined the record's `rolledUp`): during an upgrade both paths may write a task.
pub fn item_changes(change: &StreamChange) -> BTreeMap<RollupKey, ItemChange> {
    let mut changes = BTreeMap::new();
    match change {
        StreamChange::Insert(new) => signed(&mut changes, new, new.contribution(), 1),
        StreamChange::Modify { old, new } => {
            signed(&mut changes, new, new.contribution(), 1);
            signed(&mut changes, old, old.contribution(), -1);
            let added: BTreeSet<String> = new
                .legacy_rolled_up
                .difference(&old.legacy_rolled_up)
                .cloned()
                .collect();
            // The transaction path keyed its items without account and region, whoever wrote the record.
            signed(
                &mut changes,
                new,
                without_origin(deltas(&new.record, &new.markers_in(&added))),
                -1,
            );
        }
        StreamChange::Remove {
            by: Removal::Expired, ..
        } => {}
        StreamChange::Remove {
            old,
            by: Removal::Deleted,
        } => signed(&mut changes, old, old.contribution(), -1),
    }
    changes.retain(|_, change| {
        change.amounts.retain(|_, amount| *amount != 0);
        !change.is_empty()
    });
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;
    use crate::rollup::{COUNTS_SLOT, Granularity, Series};
    use serde_json::json;

    fn record(version: u64, detail: serde_json::Value) -> TaskRecord {
        let mut detail = detail;
        detail["taskArn"] = json!("arn:aws:ecs:us-east-1:1:task/prod/t1");
        detail["version"] = json!(version);
        detail
            .as_object_mut()
            .unwrap()
            .entry("taskDefinitionArn")
            .or_insert(json!("arn:aws:ecs:us-east-1:1:task-definition/web:3"));
        let envelope = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": detail});
        TaskRecord::from_event(parse_event(envelope.to_string().as_bytes()).unwrap(), 30).unwrap()
    }

    fn pending() -> Image {
        Image::new(record(
            1,
            json!({"lastStatus": "PROVISIONING", "createdAt": "2026-11-22T10:00:00Z"}),
        ))
    }

    fn running(started_at: &str) -> Image {
        Image::new(record(
            3,
            json!({"lastStatus": "RUNNING", "createdAt": "2026-11-22T10:00:00Z",
            "pullStartedAt": "2026-11-22T10:00:10Z", "pullStoppedAt": "2026-11-22T10:00:15Z", "startedAt": started_at}),
        ))
    }

    fn key(image: &Image, granularity: Granularity, slot: &'static str) -> RollupKey {
        (Series::of(&image.record, granularity).unwrap(), slot)
    }

    /// The changes as if no item had an account: what a read across every account sums.
    fn folded(changes: BTreeMap<RollupKey, ItemChange>) -> BTreeMap<RollupKey, ItemChange> {
        let mut folded: BTreeMap<RollupKey, ItemChange> = BTreeMap::new();
        for ((mut series, slot), change) in changes {
            series.origin = None;
            folded.entry((series, slot)).or_default().merge(&change);
        }
        folded.retain(|_, change| !change.is_empty());
        folded
    }

    fn amounts(pairs: &[(&str, i128)]) -> BTreeMap<String, i128> {
        pairs
            .iter()
            .map(|(name, amount)| ((*name).to_owned(), *amount))
            .collect()
    }

    #[test]
    fn an_insert_adds_what_the_record_knows_to_its_hour_and_day() {
        let changes = item_changes(&StreamChange::Insert(pending()));
        assert_eq!(changes.len(), 2);
        for granularity in Granularity::BOTH {
            let change = &changes[&key(&pending(), granularity, COUNTS_SLOT)];
            assert_eq!(change.amounts, amounts(&[("tasks", 1)]));
            // 30 days of retention past the record's createdAt second.
            assert_eq!(change.retention_seconds, Some(30 * 86_400));
        }
    }

    #[test]
    fn a_modify_adds_only_what_became_known() {
        let old = pending();
        let new = running("2026-11-22T10:00:20Z");
        let changes = item_changes(&StreamChange::Modify {
            old: old.clone(),
            new: new.clone(),
        });
        // Hour: tasks slot gains `started`; startup 20 s, imagePull 5 s... each a new phase slot.
        let counts = &changes[&key(&new, Granularity::Hour, COUNTS_SLOT)];
        assert_eq!(counts.amounts, amounts(&[("started", 1)]));
        let startup = &changes[&key(&new, Granularity::Hour, "startup")];
        let bucket = crate::sketch::Bucket::of_millis(20_000).attribute();
        assert_eq!(
            startup.amounts,
            amounts(&[
                ("count", 1),
                ("sumMs", 20_000),
                ("sumSquaresMs", 400_000_000),
                (&bucket, 1)
            ])
        );
        // The same write seen again changes nothing: old and new are the same record.
        assert!(item_changes(&StreamChange::Modify { old: new.clone(), new }).is_empty());
    }

    #[test]
    fn a_write_across_the_account_keys_upgrade_moves_the_task_to_its_accounts_items() {
        let mut old = pending();
        old.by_account = false;
        let new = running("2026-11-22T10:00:20Z");
        let changes = item_changes(&StreamChange::Modify {
            old: old.clone(),
            new: new.clone(),
        });
        let before = key(&old, Granularity::Hour, COUNTS_SLOT);
        let mut unkeyed = before.clone();
        unkeyed.0.origin = None;
        let origin = before.0.origin.clone().unwrap();
        assert_eq!((origin.account.as_str(), origin.region.as_str()), ("1", "us-east-1"));
        // Out of the item the old record was added to (no account), whole, into its account's.
        assert_eq!(changes[&unkeyed].amounts, amounts(&[("tasks", -1)]));
        assert_eq!(changes[&before].amounts, amounts(&[("tasks", 1), ("started", 1)]));
        // Written again before the upgrade: it stays where it was.
        let mut old_again = running("2026-11-22T10:00:20Z");
        old_again.by_account = false;
        let same = item_changes(&StreamChange::Modify {
            old: old.clone(),
            new: old_again,
        });
        assert!(same.keys().all(|(series, _)| series.origin.is_none()), "{same:?}");
    }

    #[test]
    fn a_phase_whose_value_changed_moves_bucket() {
        let old = running("2026-11-22T10:00:20Z");
        let new = running("2026-11-22T10:00:40Z");
        let changes = item_changes(&StreamChange::Modify {
            old: old.clone(),
            new: new.clone(),
        });
        let startup = &changes[&key(&new, Granularity::Day, "startup")];
        let from = crate::sketch::Bucket::of_millis(20_000).attribute();
        let to = crate::sketch::Bucket::of_millis(40_000).attribute();
        // 40² − 20² = 1200 s² = 1.2e9 ms².
        assert_eq!(
            startup.amounts,
            amounts(&[
                ("sumMs", 20_000),
                ("sumSquaresMs", 1_200_000_000),
                (&from, -1),
                (&to, 1)
            ])
        );
        assert!(!changes.contains_key(&key(&new, Granularity::Day, COUNTS_SLOT)));
    }

    #[test]
    fn a_record_that_changes_series_moves_between_series() {
        let old = running("2026-11-22T10:00:20Z");
        let mut new = old.clone();
        new.record.revision = 4;
        new.record.version = 4;
        let changes = item_changes(&StreamChange::Modify {
            old: old.clone(),
            new: new.clone(),
        });
        let counts = |image: &Image| changes[&key(image, Granularity::Hour, COUNTS_SLOT)].amounts.clone();
        assert_eq!(counts(&old), amounts(&[("started", -1), ("tasks", -1)]));
        assert_eq!(counts(&new), amounts(&[("started", 1), ("tasks", 1)]));
    }

    #[test]
    fn readiness_adds_ready_and_warm_up_once_the_start_is_known() {
        let ready_at = crate::timestamp::Timestamp::parse("2026-11-22T10:00:45Z").unwrap();
        let with_ready = |image: &Image| {
            let mut image = image.clone();
            image.record.ready_at = Some(ready_at);
            image
        };
        // The report before the task started: ready (45 s) counts; warm-up waits for startedAt.
        let early = item_changes(&StreamChange::Modify {
            old: pending(),
            new: with_ready(&pending()),
        });
        let slots: BTreeSet<&str> = early.keys().map(|(_, slot)| *slot).collect();
        assert_eq!(slots, BTreeSet::from(["ready"]));
        assert_eq!(
            early[&key(&pending(), Granularity::Hour, "ready")].amounts["sumMs"],
            45_000
        );
        // Then RUNNING (started 10:00:20): warm-up 25 s joins; ready is not counted again.
        let later = item_changes(&StreamChange::Modify {
            old: with_ready(&pending()),
            new: with_ready(&running("2026-11-22T10:00:20Z")),
        });
        assert!(!later.contains_key(&key(&pending(), Granularity::Hour, "ready")));
        assert_eq!(
            later[&key(&pending(), Granularity::Hour, "warmUp")].amounts["sumMs"],
            25_000
        );
        // Ready before ECS said RUNNING: counted as an anomaly, never as a warm-up.
        let mut too_early = running("2026-11-22T10:00:50Z");
        too_early.record.ready_at = Some(ready_at);
        let anomaly = item_changes(&StreamChange::Insert(too_early.clone()));
        assert!(!anomaly.contains_key(&key(&too_early, Granularity::Hour, "warmUp")));
        assert_eq!(
            anomaly[&key(&too_early, Granularity::Hour, COUNTS_SLOT)].amounts["timestampAnomalies"],
            1
        );
    }

    #[test]
    fn expiry_keeps_the_task_and_a_delete_takes_it_back() {
        let old = running("2026-11-22T10:00:20Z");
        let expired = StreamChange::Remove {
            old: old.clone(),
            by: Removal::Expired,
        };
        assert!(item_changes(&expired).is_empty());
        let deleted = item_changes(&StreamChange::Remove {
            old: old.clone(),
            by: Removal::Deleted,
        });
        let inserted = item_changes(&StreamChange::Insert(old));
        assert_eq!(deleted.len(), inserted.len());
        for (key, change) in &inserted {
            let negated: BTreeMap<String, i128> = change.amounts.iter().map(|(n, a)| (n.clone(), -a)).collect();
            assert_eq!(deleted[key].amounts, negated);
        }
    }

    #[test]
    fn records_of_the_transaction_path_count_what_their_transactions_added() {
        let legacy = |image: Image, markers: &[&str]| Image::legacy(image.record, markers);
        let new = running("2026-11-22T10:00:20Z");
        let fresh = item_changes(&StreamChange::Modify {
            old: pending(),
            new: new.clone(),
        });
        // The old path wrote and rolled up `task` only; the stream path's write makes it RUNNING: as if
        // the stream path had counted the task from the start.
        // Its `task` also moves from the items without account to its account's (folded here; see
        // a_write_across_the_account_keys_upgrade_moves_the_task_to_its_accounts_items).
        let upgraded = StreamChange::Modify {
            old: legacy(pending(), &["task"]),
            new: new.clone(),
        };
        assert_eq!(folded(item_changes(&upgraded)), folded(fresh));
        // The old path wrote the record and died before its transaction: nothing was counted, all is due.
        let unrolled = StreamChange::Modify {
            old: legacy(pending(), &[]),
            new: new.clone(),
        };
        assert_eq!(
            item_changes(&unrolled),
            item_changes(&StreamChange::Insert(new.clone()))
        );
        // The old path's own writes and transactions: its transactions add, so nothing here.
        assert!(item_changes(&StreamChange::Insert(legacy(pending(), &[]))).is_empty());
        let transaction = StreamChange::Modify {
            old: legacy(new.clone(), &["task"]),
            new: legacy(
                new.clone(),
                &[
                    "task",
                    "started",
                    "startup",
                    "imagePull",
                    "provisioning",
                    "containerStart",
                ],
            ),
        };
        assert!(item_changes(&transaction).is_empty());
        let write = StreamChange::Modify {
            old: legacy(pending(), &["task"]),
            new: legacy(new.clone(), &["task"]),
        };
        assert!(item_changes(&write).is_empty());
        // An old invocation still running after the upgrade rolls up a record the stream path counted:
        // its transaction re-added every marker, so they are taken back.
        let mut relapsed = new.clone();
        relapsed.legacy_rolled_up = ["task".to_owned(), "started".to_owned()].into();
        let taken_back = item_changes(&StreamChange::Modify {
            old: new.clone(),
            new: relapsed,
        });
        // From the items it added them to: the transaction path's, without account and region.
        let mut unkeyed = key(&new, Granularity::Hour, COUNTS_SLOT);
        unkeyed.0.origin = None;
        assert_eq!(taken_back[&unkeyed].amounts, amounts(&[("started", -1), ("tasks", -1)]));
        assert!(taken_back.keys().all(|(series, _)| series.origin.is_none()));
    }

    #[test]
    fn a_batch_sums_per_item_and_drops_what_cancels() {
        let first = item_changes(&StreamChange::Insert(pending()));
        let back = item_changes(&StreamChange::Remove {
            old: pending(),
            by: Removal::Deleted,
        });
        let key = key(&pending(), Granularity::Hour, COUNTS_SLOT);
        let mut sum = first[&key].clone();
        sum.merge(&back[&key]);
        assert!(sum.is_empty());
    }
}
