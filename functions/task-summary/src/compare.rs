//! "Is the candidate really faster than the baseline?": per phase, both sides' figures, their
//! difference and ratio, a two-sided Mann–Whitney U test and a seeded bootstrap interval.

use serde::Serialize;
use timing_domain::query::RecordQuery;
use timing_domain::stats::{PValueMethod, bootstrap_median_difference, describe, mann_whitney_u};
use timing_domain::timing::Phase;

use timing_dynamodb::ReadCount;

use crate::answer::{PERCENTILE_DEFINITION, TaskCounts, millis_rounded};

/// Below this p-value a difference is called significant.
pub const ALPHA: f64 = 0.05;
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Fixed, so the same data always gives the same interval.
pub const BOOTSTRAP_SEED: u64 = 20_261_122;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Brief {
    pub count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
}

impl Brief {
    fn of(values: &[f64]) -> Brief {
        let described = describe(values);
        Brief {
            count: values.len(),
            mean: described.as_ref().map(|d| millis_rounded(d.mean)),
            p50: described.as_ref().map(|d| millis_rounded(d.p50)),
            p90: described.as_ref().map(|d| millis_rounded(d.p90)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// U of the baseline sample: pairs (baseline, candidate) with the baseline longer, ties ½.
    pub u: f64,
    pub p_value: f64,
    pub method: PValueMethod,
    /// The chance that a candidate task's phase is shorter than a baseline task's (ties ½); 0.5: no effect.
    pub probability_candidate_shorter: f64,
    /// 2·probabilityCandidateShorter − 1: +1 every candidate shorter, −1 every candidate longer.
    pub rank_biserial: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseComparison {
    pub phase: &'static str,
    pub baseline: Brief,
    pub candidate: Brief,
    /// candidate − baseline, seconds: negative means the candidate is faster.
    pub mean_difference: Option<f64>,
    /// candidate / baseline.
    pub mean_ratio: Option<f64>,
    pub p50_difference: Option<f64>,
    pub p50_ratio: Option<f64>,
    pub mann_whitney: Option<TestResult>,
    /// 95% bootstrap interval of median(candidate) − median(baseline), seconds.
    pub median_difference_ci95: Option<[f64; 2]>,
    pub significant: bool,
    pub verdict: String,
}

pub(crate) fn ratio(candidate: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (candidate, baseline) {
        (Some(c), Some(b)) if b != 0.0 => Some((c / b * 10_000.0).round() / 10_000.0),
        _ => None,
    }
}

pub(crate) fn difference(candidate: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    Some(millis_rounded(candidate? - baseline?))
}

pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    pub filters: RecordQuery,
    #[serde(flatten)]
    pub counts: TaskCounts,
    pub read: ReadCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub test: &'static str,
    pub alpha: f64,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
    pub percentiles: &'static str,
}

pub const METHOD: Method = Method {
    test: "two-sided Mann-Whitney U (exact without ties for n1*n2 <= 400, else normal with tie and continuity correction)",
    alpha: ALPHA,
    bootstrap_resamples: BOOTSTRAP_RESAMPLES,
    bootstrap_seed: BOOTSTRAP_SEED,
    percentiles: PERCENTILE_DEFINITION,
};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareAnswer {
    pub query: &'static str,
    pub baseline: Side,
    pub candidate: Side,
    pub source: &'static str,
    pub precision: &'static str,
    pub method: Method,
    pub phases: Vec<PhaseComparison>,
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
