//! Answers from the hourly and daily rollups: the same shapes as the exact answers, built from counts, exact
//! sums and log-bucketed histograms instead of values. Pure.

use std::collections::BTreeMap;

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
            Delta::Counts(counts) => {
                self.counts.tasks += counts.tasks;
                self.counts.started += counts.started;
                self.counts.stopped += counts.stopped;
                self.counts.failed_to_start += counts.failed_to_start;
                self.counts.timestamp_anomalies += counts.timestamp_anomalies;
                self.counts.not_ready += counts.not_ready;
            }
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
            // The request parser refuses these without "exact": true.
            GroupBy::AvailabilityZone | GroupBy::ImageDigest => KeyPart::Text("-".to_owned()),
        })
        .collect()
}

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
