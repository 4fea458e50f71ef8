//! Rollups from the tasks table's stream: what one stream record (a record's image before and after a
//! write) changes in which rollup item. The rollups are a function of the records: a record adds
//! [`Image::contribution`] to its items, so a write adds `contribution(new) − contribution(old)`.
//! How the changes are applied exactly once is `timing-dynamodb`'s (`stream_store`).

use std::collections::{BTreeMap, BTreeSet};

use crate::record::TaskRecord;
use crate::rollup::{Delta, Marker, RollupKey, deltas, known_markers, rollup_retention_seconds};

/// A record as one side of a stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub record: TaskRecord,
    /// The markers of the transaction write path (before the stream): present on records that
    /// path wrote, until the stream path's first write removes them.
    pub legacy_rolled_up: Option<BTreeSet<String>>,
}

impl Image {
    pub fn new(record: TaskRecord) -> Image {
        Image {
            record,
            legacy_rolled_up: None,
        }
    }

    /// What this record has put into the rollups: every marker it knows, or, for a record of the
    /// transaction path, the markers that path's transactions added.
    pub fn contribution(&self) -> BTreeMap<RollupKey, Delta> {
        let markers: Vec<Marker> = match &self.legacy_rolled_up {
            None => known_markers(&self.record),
            Some(rolled_up) => known_markers(&self.record)
                .into_iter()
                .filter(|marker| rolled_up.contains(marker.name()))
                .collect(),
        };
        deltas(&self.record, &markers)
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

fn signed(changes: &mut BTreeMap<RollupKey, ItemChange>, image: &Image, sign: i128) {
    let retention = rollup_retention_seconds(&image.record);
    for (key, delta) in image.contribution() {
        changes.entry(key).or_default().add(&delta, sign, retention);
    }
}

/// What `change` does to each rollup item; items it leaves as they are are absent.
///
/// A write of the transaction path (the new image carries its markers) changes nothing here: its
/// own transaction adds to the rollups. Its first write of a record the stream path already counted
/// re-adds every marker, so that record's contribution is taken back.
pub fn item_changes(change: &StreamChange) -> BTreeMap<RollupKey, ItemChange> {
    let mut changes = BTreeMap::new();
    match change {
        StreamChange::Insert(new) if new.legacy_rolled_up.is_none() => signed(&mut changes, new, 1),
        StreamChange::Insert(_) => {}
        StreamChange::Modify { old, new } => match (&old.legacy_rolled_up, &new.legacy_rolled_up) {
            (_, None) => {
                signed(&mut changes, new, 1);
                signed(&mut changes, old, -1);
            }
            (None, Some(_)) => signed(&mut changes, old, -1),
            (Some(_), Some(_)) => {}
        },
        StreamChange::Remove { by: Removal::Expired, .. } => {}
        StreamChange::Remove { old, by: Removal::Deleted } => signed(&mut changes, old, -1),
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

    fn amounts(pairs: &[(&str, i128)]) -> BTreeMap<String, i128> {
        pairs.iter().map(|(name, amount)| ((*name).to_owned(), *amount)).collect()
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
        let changes = item_changes(&StreamChange::Modify { old: old.clone(), new: new.clone() });
        // Hour: tasks slot gains `started`; startup 20 s, imagePull 5 s... each a new phase slot.
        let counts = &changes[&key(&new, Granularity::Hour, COUNTS_SLOT)];
        assert_eq!(counts.amounts, amounts(&[("started", 1)]));
        let startup = &changes[&key(&new, Granularity::Hour, "startup")];
        let bucket = crate::sketch::Bucket::of_millis(20_000).attribute();
        assert_eq!(
            startup.amounts,
            amounts(&[("count", 1), ("sumMs", 20_000), ("sumSquaresMs", 400_000_000), (&bucket, 1)])
        );
        // The same write seen again changes nothing: old and new are the same record.
        assert!(item_changes(&StreamChange::Modify { old: new.clone(), new }).is_empty());
    }

    #[test]
    fn a_phase_whose_value_changed_moves_bucket() {
        let old = running("2026-11-22T10:00:20Z");
        let new = running("2026-11-22T10:00:40Z");
        let changes = item_changes(&StreamChange::Modify { old: old.clone(), new: new.clone() });
        let startup = &changes[&key(&new, Granularity::Day, "startup")];
        let from = crate::sketch::Bucket::of_millis(20_000).attribute();
        let to = crate::sketch::Bucket::of_millis(40_000).attribute();
        // 40² − 20² = 1200 s² = 1.2e9 ms².
        assert_eq!(
            startup.amounts,
            amounts(&[("sumMs", 20_000), ("sumSquaresMs", 1_200_000_000), (&from, -1), (&to, 1)])
        );
        assert!(!changes.contains_key(&key(&new, Granularity::Day, COUNTS_SLOT)));
    }

    #[test]
    fn a_record_that_changes_series_moves_between_series() {
        let old = running("2026-11-22T10:00:20Z");
        let mut new = old.clone();
        new.record.revision = 4;
        new.record.version = 4;
        let changes = item_changes(&StreamChange::Modify { old: old.clone(), new: new.clone() });
        let counts = |image: &Image| changes[&key(image, Granularity::Hour, COUNTS_SLOT)].amounts.clone();
        assert_eq!(counts(&old), amounts(&[("started", -1), ("tasks", -1)]));
        assert_eq!(counts(&new), amounts(&[("started", 1), ("tasks", 1)]));
    }

    #[test]
    fn expiry_keeps_the_task_and_a_delete_takes_it_back() {
        let old = running("2026-11-22T10:00:20Z");
        let expired = StreamChange::Remove { old: old.clone(), by: Removal::Expired };
        assert!(item_changes(&expired).is_empty());
        let deleted = item_changes(&StreamChange::Remove { old: old.clone(), by: Removal::Deleted });
        let inserted = item_changes(&StreamChange::Insert(old));
        assert_eq!(deleted.len(), inserted.len());
        for (key, change) in &inserted {
            let negated: BTreeMap<String, i128> = change.amounts.iter().map(|(n, a)| (n.clone(), -a)).collect();
            assert_eq!(deleted[key].amounts, negated);
        }
    }

    #[test]
    fn records_of_the_transaction_path_count_what_their_transactions_added() {
        let legacy = |image: Image, markers: &[&str]| Image {
            legacy_rolled_up: Some(markers.iter().map(|m| (*m).to_owned()).collect()),
            ..image
        };
        // The old path wrote and rolled up `task` only; the stream path's write makes it RUNNING.
        let old = legacy(pending(), &["task"]);
        let new = running("2026-11-22T10:00:20Z");
        let changes = item_changes(&StreamChange::Modify { old: old.clone(), new: new.clone() });
        let fresh = item_changes(&StreamChange::Modify { old: pending(), new: new.clone() });
        assert_eq!(changes, fresh, "as if the stream path had counted the task from the start");
        // The old path still writing (its transaction adds): nothing here.
        let both = StreamChange::Modify { old: old.clone(), new: legacy(new.clone(), &["task", "started"]) };
        assert!(item_changes(&both).is_empty());
        // The old path's first transaction on a record the stream path counted: take that back.
        let relapse = StreamChange::Modify { old: new.clone(), new: legacy(new.clone(), &["task", "started"]) };
        let taken_back = item_changes(&relapse);
        let counts = &taken_back[&key(&new, Granularity::Hour, COUNTS_SLOT)];
        assert_eq!(counts.amounts, amounts(&[("started", -1), ("tasks", -1)]));
        assert!(item_changes(&StreamChange::Insert(legacy(pending(), &[]))).is_empty());
    }

    #[test]
    fn a_batch_sums_per_item_and_drops_what_cancels() {
        let first = item_changes(&StreamChange::Insert(pending()));
        let back = item_changes(&StreamChange::Remove { old: pending(), by: Removal::Deleted });
        let key = key(&pending(), Granularity::Hour, COUNTS_SLOT);
        let mut sum = first[&key].clone();
        sum.merge(&back[&key]);
        assert!(sum.is_empty());
    }
}
