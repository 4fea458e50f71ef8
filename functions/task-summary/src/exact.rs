//! Answers from the records themselves: every value of every task in the window, so percentiles are
//! exact and `compare` can test its difference. Pure: the handler streams the rows in.

use std::collections::BTreeMap;

use timing_domain::arn::Origin;
use timing_domain::query::RecordQuery;
use timing_domain::record::TimingRow;
use timing_domain::report::Snapshotter;
use timing_domain::request::GroupBy;
use timing_domain::rollup::Counts;
use timing_domain::stats::{bootstrap_median_difference, mann_whitney_u};
use timing_domain::timing::Phase;
use timing_dynamodb::ReadCount;

use crate::model::{
    ALPHA, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Brief, GroupSummary, KeyPart, PERCENTILE_DEFINITION, PhaseComparison,
    PhaseStats, Precision, QueryKind, Source, SummaryAnswer, TestResult, difference, format_p, millis_rounded, ratio,
};

/// The row's value of each grouping dimension; `-` stands for "not reported".
pub fn group_key(row: &TimingRow, group_by: &[GroupBy]) -> Vec<KeyPart> {
    let text = |value: &Option<String>| KeyPart::Text(value.clone().unwrap_or_else(|| "-".to_owned()));
    group_by
        .iter()
        .map(|dimension| match dimension {
            GroupBy::Family => KeyPart::Text(row.family.clone()),
            GroupBy::Revision => KeyPart::Number(row.revision),
            GroupBy::Cluster => KeyPart::Text(row.cluster_name.clone()),
            GroupBy::LaunchType => text(&row.launch_type),
            GroupBy::AvailabilityZone => text(&row.availability_zone),
            GroupBy::ImageDigest => KeyPart::Text(row.image_digest_key()),
            GroupBy::Snapshotter => KeyPart::Text(Snapshotter::label(row.snapshotter).to_owned()),
            GroupBy::Account => text(&Origin::of_task_arn(&row.task_arn).map(|origin| origin.account)),
            GroupBy::Region => text(&Origin::of_task_arn(&row.task_arn).map(|origin| origin.region)),
        })
        .collect()
}

/// What a group collects while the pages stream by: counts, and the values of each requested phase.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    pub counts: Counts,
    pub values: Vec<Vec<f64>>,
}

impl Accumulator {
    pub fn add(&mut self, row: &TimingRow, phases: &[Phase]) {
        if self.values.len() != phases.len() {
            self.values.resize(phases.len(), Vec::new());
        }
        self.counts.tasks += 1;
        self.counts.started += u64::from(row.started_at.is_some());
        self.counts.stopped += u64::from(row.stopped_at.is_some());
        self.counts.failed_to_start += u64::from(row.failed_to_start);
        self.counts.timestamp_anomalies += row.anomaly_count();
        self.counts.not_ready += u64::from(row.not_ready());
        for (values, phase) in self.values.iter_mut().zip(phases) {
            if let Some(seconds) = row.phase_seconds(*phase) {
                values.push(seconds);
            }
        }
    }
}

pub fn summary_answer(
    filters: RecordQuery,
    group_by: &[GroupBy],
    phases: &[Phase],
    groups: BTreeMap<Vec<KeyPart>, Accumulator>,
    read: ReadCount,
) -> SummaryAnswer {
    let groups = groups
        .into_iter()
        .map(|(key, accumulator)| GroupSummary {
            key: group_by.iter().map(|d| d.name()).zip(key).collect(),
            counts: accumulator.counts,
            phases: phases
                .iter()
                .enumerate()
                .map(|(i, phase)| PhaseStats::of(*phase, accumulator.values.get(i).map_or(&[][..], Vec::as_slice)))
                .collect(),
        })
        .collect();
    SummaryAnswer {
        query: QueryKind::Summary,
        filters,
        group_by: group_by.iter().map(|d| d.name()).collect(),
        source: Source::Records,
        precision: Precision(Source::Records),
        percentiles: PERCENTILE_DEFINITION,
        read,
        groups,
    }
}

pub fn compare_phase(phase: Phase, baseline: &[f64], candidate: &[f64]) -> PhaseComparison {
    let (base, cand) = (Brief::of(baseline), Brief::of(candidate));
    let mann_whitney = mann_whitney_u(baseline, candidate).map(|test| TestResult {
        u: test.u,
        p_value: test.p_value,
        method: test.method,
        probability_candidate_shorter: test.probability_of_superiority,
        rank_biserial: test.rank_biserial,
    });
    let interval = bootstrap_median_difference(baseline, candidate, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
        .map(|(low, high)| [millis_rounded(low), millis_rounded(high)]);
    let significant = mann_whitney.is_some_and(|test| test.p_value < ALPHA);
    let p50_difference = difference(cand.p50, base.p50);
    let verdict = match (&mann_whitney, p50_difference, base.p50) {
        (None, ..) => format!(
            "not enough data: {} baseline and {} candidate values",
            base.count, cand.count
        ),
        (Some(test), Some(delta), Some(base_p50)) if significant => {
            let direction = if test.probability_candidate_shorter > 0.5 {
                "shorter"
            } else {
                "longer"
            };
            let percent = if base_p50 != 0.0 {
                format!(" ({:+.1}%)", delta / base_p50 * 100.0)
            } else {
                String::new()
            };
            format!(
                "candidate {direction}: p50 {:+.3} s{percent}, p = {}",
                delta,
                format_p(test.p_value)
            )
        }
        (Some(test), ..) => format!("no significant difference (p = {})", format_p(test.p_value)),
    };
    PhaseComparison {
        phase: phase.name(),
        baseline: base,
        candidate: cand,
        mean_difference: difference(cand.mean, base.mean),
        mean_ratio: ratio(cand.mean, base.mean),
        p50_difference,
        p50_ratio: ratio(cand.p50, base.p50),
        mann_whitney,
        median_difference_ci95: interval,
        significant,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_ratios_and_verdicts() {
        // Candidate clearly shorter: 8 values each, no overlap, exact p = 2/C(16,8) = 2/12870.
        let baseline: Vec<f64> = (0..8).map(|i| 30.0 + f64::from(i)).collect();
        let candidate: Vec<f64> = (0..8).map(|i| 10.0 + f64::from(i)).collect();
        let comparison = compare_phase(Phase::Startup, &baseline, &candidate);
        assert_eq!(comparison.p50_difference, Some(-20.0));
        assert_eq!(comparison.mean_difference, Some(-20.0));
        assert_eq!(
            comparison.p50_ratio,
            Some((13.5f64 / 33.5 * 10_000.0).round() / 10_000.0)
        );
        let test = comparison.mann_whitney.unwrap();
        assert_eq!(test.u, 64.0);
        assert!((test.p_value - 2.0 / 12_870.0).abs() < 1e-15);
        assert_eq!((test.probability_candidate_shorter, test.rank_biserial), (1.0, 1.0));
        assert!(comparison.significant);
        assert_eq!(
            comparison.verdict,
            "candidate shorter: p50 -20.000 s (-59.7%), p = 1.6e-4"
        );
        let [low, high] = comparison.median_difference_ci95.unwrap();
        // The interval holds the observed difference and excludes no difference.
        assert!(low <= -20.0 && (-20.0..0.0).contains(&high), "[{low}, {high}]");
    }

    #[test]
    fn same_data_is_not_significant_and_empty_sides_say_so() {
        let values = [1.0, 2.0, 3.0, 4.0];
        let same = compare_phase(Phase::Run, &values, &values);
        assert!(!same.significant);
        assert_eq!(same.verdict, "no significant difference (p = 1.000)");
        let empty = compare_phase(Phase::Run, &values, &[]);
        assert_eq!(
            (empty.mann_whitney, empty.p50_ratio, empty.verdict.as_str()),
            (None, None, "not enough data: 4 baseline and 0 candidate values")
        );
    }
}
