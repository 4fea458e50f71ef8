//! Answers from the hourly and daily rollups: the same shapes as the exact answers, built from counts, exact
//! sums and log-bucketed histograms instead of values. Pure.

use std::collections::BTreeMap;

use timing_domain::arn::Origin;
use timing_domain::report::Snapshotter;
use timing_domain::rollup::{Delta, PhaseRollup, RollupItem};
use timing_domain::sketch::LogHistogram;
use timing_domain::timing::Phase;

use timing_domain::request::GroupBy;
use timing_domain::rollup::Counts;

use crate::model::{Brief, KeyPart, PhaseComparison, PhaseStats, PhaseValues, difference, millis_rounded, ratio};

/// What a group collects from rollup items: counts, and one merged rollup per requested phase.
#[derive(Debug, Clone, Default)]
pub struct RollupAccumulator {
    pub counts: Counts,
    pub phases: Vec<PhaseRollup>,
}

impl RollupAccumulator {
    pub fn add(&mut self, item: &RollupItem, phases: &[Phase]) {
        if self.phases.len() != phases.len() {
            self.phases.resize(phases.len(), PhaseRollup::default());
        }
        match &item.delta {
            Delta::Counts(counts) => self.counts.add(counts),
            Delta::Phase(rollup) => {
                if let Some(i) = phases.iter().position(|phase| phase.name() == item.slot) {
                    self.phases[i].merge(rollup);
                }
            }
        }
    }
}

/// The item's value of each grouping dimension (rollups keep family, revision, cluster, launch type and
/// snapshotter).
pub fn rollup_group_key(item: &RollupItem, group_by: &[GroupBy]) -> Vec<KeyPart> {
    group_by
        .iter()
        .map(|dimension| match dimension {
            GroupBy::Family => KeyPart::Text(item.family.clone()),
            GroupBy::Revision => KeyPart::Number(item.revision),
            GroupBy::Cluster => KeyPart::Text(item.cluster_name.clone()),
            GroupBy::LaunchType => KeyPart::Text(item.launch_type.clone().unwrap_or_else(|| "-".to_owned())),
            GroupBy::Snapshotter => KeyPart::Text(Snapshotter::label(item.snapshotter).to_owned()),
            // Items from before rollups were kept by account name neither (docs/organisation.md).
            GroupBy::Account => origin_part(item, |origin| &origin.account),
            GroupBy::Region => origin_part(item, |origin| &origin.region),
            // The request parser refuses these without "exact": true.
            GroupBy::AvailabilityZone | GroupBy::ImageDigest => KeyPart::Text("-".to_owned()),
        })
        .collect()
}

fn origin_part(item: &RollupItem, part: impl Fn(&Origin) -> &String) -> KeyPart {
    KeyPart::Text(
        item.origin
            .as_ref()
            .map_or(NOT_KEPT, |origin| part(origin).as_str())
            .to_owned(),
    )
}

/// The account and region of rollup items written before rollups were kept by account.
pub const NOT_KEPT: &str = "(not kept)";

fn seconds(millis: Option<f64>) -> Option<f64> {
    millis.map(|ms| millis_rounded(ms / 1000.0))
}

fn quantile(histogram: &LogHistogram, q: f64) -> Option<f64> {
    seconds(histogram.quantile_millis(q))
}

pub fn rollup_phase_stats(phase: Phase, rollup: &PhaseRollup) -> PhaseStats {
    let h = &rollup.histogram;
    let values = (|| {
        Some(PhaseValues {
            mean: seconds(rollup.mean_millis())?,
            stddev: seconds(rollup.stddev_millis())?,
            min: seconds(h.min_millis())?,
            p50: quantile(h, 0.50)?,
            p90: quantile(h, 0.90)?,
            p95: quantile(h, 0.95)?,
            p99: quantile(h, 0.99)?,
            max: seconds(h.max_millis())?,
        })
    })();
    PhaseStats {
        phase: phase.name(),
        count: rollup.count as usize,
        values,
    }
}

pub fn brief(rollup: &PhaseRollup) -> Brief {
    Brief {
        count: rollup.count as usize,
        mean: seconds(rollup.mean_millis()),
        p50: quantile(&rollup.histogram, 0.50),
        p90: quantile(&rollup.histogram, 0.90),
    }
}

/// Both sides' figures and their differences; no test, since rollups hold no individual values.
pub fn rollup_compare_phase(phase: Phase, baseline: &PhaseRollup, candidate: &PhaseRollup) -> PhaseComparison {
    let (base, cand) = (brief(baseline), brief(candidate));
    let verdict = if base.count == 0 || cand.count == 0 {
        format!(
            "not enough data: {} baseline and {} candidate values",
            base.count, cand.count
        )
    } else {
        "not tested: rollups hold no individual values; ask with \"exact\": true for the Mann-Whitney test".to_owned()
    };
    PhaseComparison {
        phase: phase.name(),
        mean_difference: difference(cand.mean, base.mean),
        mean_ratio: ratio(cand.mean, base.mean),
        p50_difference: difference(cand.p50, base.p50),
        p50_ratio: ratio(cand.p50, base.p50),
        baseline: base,
        candidate: cand,
        mann_whitney: None,
        median_difference_ci95: None,
        significant: false,
        verdict,
    }
}

pub type RollupGroups = BTreeMap<Vec<KeyPart>, RollupAccumulator>;

impl RollupAccumulator {
    pub fn merge(&mut self, other: &RollupAccumulator) {
        self.counts.add(&other.counts);
        if self.phases.len() < other.phases.len() {
            self.phases.resize(other.phases.len(), PhaseRollup::default());
        }
        for (mine, theirs) in self.phases.iter_mut().zip(&other.phases) {
            mine.merge(theirs);
        }
    }
}

/// Groups keyed `[account, region, rest…]` ([`GroupBy::Account`], [`GroupBy::Region`] first) as groups
/// keyed by the rest, per origin (None: items from before rollups were kept by account).
pub fn split_by_origin(groups: RollupGroups) -> BTreeMap<Option<Origin>, RollupGroups> {
    let mut split: BTreeMap<Option<Origin>, RollupGroups> = BTreeMap::new();
    for (key, accumulator) in groups {
        let origin = match key.as_slice() {
            [KeyPart::Text(account), KeyPart::Text(region), ..] if account != NOT_KEPT => Some(Origin {
                account: account.clone(),
                region: region.clone(),
            }),
            _ => None,
        };
        let rest = key.into_iter().skip(2).collect();
        split.entry(origin).or_default().insert(rest, accumulator);
    }
    split
}

/// The one account and region of a split that also holds older items: the upgraded single-account stack,
/// whose older items can only be that account's (a stack switched to central mode at the upgrade could be
/// wrong here: docs/organisation.md).
pub fn lone_origin(split: &BTreeMap<Option<Origin>, RollupGroups>) -> Option<Origin> {
    match (split.contains_key(&None), split.len()) {
        (true, 2) => split.keys().flatten().next().cloned(),
        _ => None,
    }
}

/// Moves the older items' groups into `origin`'s.
pub fn merge_older_into(split: &mut BTreeMap<Option<Origin>, RollupGroups>, origin: &Origin) {
    if let Some(older) = split.remove(&None) {
        let target = split.entry(Some(origin.clone())).or_default();
        for (key, accumulator) in older {
            target.entry(key).or_default().merge(&accumulator);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timing_domain::rollup::Counts;
    use timing_domain::stats::describe;

    fn phase_item(slot: &str, values: &[u64]) -> RollupItem {
        let mut rollup = PhaseRollup::default();
        values.iter().for_each(|v| rollup.add_millis(*v));
        RollupItem {
            family: "web".into(),
            revision: 3,
            cluster_name: "prod".into(),
            launch_type: Some("FARGATE".into()),
            snapshotter: None,
            origin: None,
            slot: slot.into(),
            delta: Delta::Phase(rollup),
        }
    }

    #[test]
    fn statistics_from_merged_hours_match_the_exact_ones_within_their_precision() {
        let hours: [&[u64]; 3] = [&[12_000, 15_500, 9_001], &[30_250], &[11_111, 0, 14_000, 60_000]];
        let mut accumulator = RollupAccumulator::default();
        for values in hours {
            accumulator.add(&phase_item("startup", values), &[Phase::Startup]);
        }
        accumulator.add(
            &RollupItem {
                slot: "tasks".into(),
                delta: Delta::Counts(Counts {
                    tasks: 9,
                    started: 8,
                    ..Counts::default()
                }),
                ..phase_item("tasks", &[])
            },
            &[Phase::Startup],
        );
        let all: Vec<f64> = hours.concat().iter().map(|ms| *ms as f64 / 1000.0).collect();
        let exact = describe(&all).unwrap();
        let stats = rollup_phase_stats(Phase::Startup, &accumulator.phases[0]);
        let values = stats.values.unwrap();
        assert_eq!(stats.count, 8);
        assert_eq!((accumulator.counts.tasks, accumulator.counts.started), (9, 8));
        assert_eq!(values.mean, millis_rounded(exact.mean));
        assert!(
            (values.stddev - exact.stddev).abs() < 0.001,
            "{} vs {}",
            values.stddev,
            exact.stddev
        );
        for (estimate, exact) in [
            (values.p50, exact.p50),
            (values.p90, exact.p90),
            (values.p99, exact.p99),
            (values.min, exact.min),
            (values.max, exact.max),
        ] {
            // 1% of the value, plus the half millisecond of rounding to whole milliseconds.
            assert!(
                (estimate - exact).abs() <= exact * 0.01 + 0.0005,
                "{estimate} vs {exact}"
            );
        }
    }

    #[test]
    fn groups_split_by_account_and_region_and_older_items_join_a_lone_account() {
        let item = |origin: Option<(&str, &str)>, revision: u32, tasks: u64| RollupItem {
            revision,
            origin: origin.map(|(account, region)| Origin {
                account: account.into(),
                region: region.into(),
            }),
            slot: "tasks".into(),
            delta: Delta::Counts(Counts {
                tasks,
                ..Counts::default()
            }),
            ..phase_item("tasks", &[])
        };
        let by = [GroupBy::Account, GroupBy::Region, GroupBy::Revision];
        let group = |items: &[RollupItem]| {
            let mut groups = RollupGroups::new();
            for item in items {
                groups.entry(rollup_group_key(item, &by)).or_default().add(item, &[]);
            }
            let mut split = split_by_origin(groups);
            if let Some(origin) = lone_origin(&split) {
                merge_older_into(&mut split, &origin);
            }
            split
        };
        let tasks = |split: &BTreeMap<Option<Origin>, RollupGroups>, account: Option<&str>, revision: u32| {
            let origin = account.map(|account| Origin {
                account: account.into(),
                region: "eu-west-1".into(),
            });
            split[&origin][&vec![KeyPart::Number(revision)]].counts.tasks
        };
        let a = Some(("111122223333", "eu-west-1"));
        let b = Some(("444455556666", "eu-west-1"));
        // Two accounts with the same family, revision and cluster: never summed.
        let two = group(&[item(a, 3, 5), item(b, 3, 7), item(None, 3, 11)]);
        assert_eq!(two.len(), 3);
        assert_eq!(
            (
                tasks(&two, Some("111122223333"), 3),
                tasks(&two, Some("444455556666"), 3),
                tasks(&two, None, 3)
            ),
            (5, 7, 11)
        );
        // One account and older items: the upgraded single-account stack, merged.
        let one = group(&[item(a, 3, 5), item(None, 3, 11), item(None, 2, 4)]);
        assert_eq!(one.len(), 1);
        assert_eq!(
            (
                tasks(&one, Some("111122223333"), 3),
                tasks(&one, Some("111122223333"), 2)
            ),
            (16, 4)
        );
        // Merged into the lone account of another read (the watch's last day holding older items only).
        let mut older_only = split_by_origin(BTreeMap::from([(
            rollup_group_key(&item(None, 3, 2), &by),
            RollupAccumulator::default(),
        )]));
        assert_eq!(lone_origin(&older_only), None);
        let a_origin = Origin {
            account: "111122223333".into(),
            region: "eu-west-1".into(),
        };
        merge_older_into(&mut older_only, &a_origin);
        assert_eq!(older_only.keys().collect::<Vec<_>>(), [&Some(a_origin)]);
    }

    #[test]
    fn comparisons_from_rollups_say_they_are_not_tested() {
        let item = |values: &[u64]| match phase_item("run", values).delta {
            Delta::Phase(rollup) => rollup,
            Delta::Counts(_) => unreachable!(),
        };
        let comparison = rollup_compare_phase(Phase::Run, &item(&[10_000, 20_000]), &item(&[5_000, 6_000]));
        assert!(comparison.mann_whitney.is_none() && !comparison.significant);
        assert!(comparison.verdict.contains("\"exact\": true"), "{}", comparison.verdict);
        assert_eq!(comparison.mean_difference, Some(-9.5));
        let empty = rollup_compare_phase(Phase::Run, &item(&[]), &item(&[5_000]));
        assert_eq!(empty.verdict, "not enough data: 0 baseline and 1 candidate values");
    }
}
