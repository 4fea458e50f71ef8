//! The regression watch: for each family, its newest revision in the window against the revision before
//! it, on start-up and image pull, from the rollups' histograms (Mann–Whitney over their buckets, about 2 %
//! wide). Pure.
//!
//! A phase is a regression when three things hold: both revisions have at least `min_tasks` values, the
//! two-sided test's p is below [`SIGNIFICANCE`] with the newest revision the slower one, and its p50 is at
//! least `min_change` longer. The last keeps large fleets, where a 2 % shift is significant, from alarming
//! on changes nobody would act on.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;
use timing_domain::arn::Origin;
use timing_domain::rollup::PhaseRollup;
use timing_domain::stats::mann_whitney_binned;
use timing_domain::timing::Phase;

use timing_domain::timestamp::Timestamp;
use timing_dynamodb::ReadCount;

use crate::model::{Brief, Precision, QueryKind, Source, format_p};
use crate::rollups::{RollupAccumulator, brief};

/// The test's significance level: the share of equal revisions it may call different (measured over many
/// seeds by `regression_calibration`, docs/regressions.md).
pub const SIGNIFICANCE: f64 = 0.01;
/// What the watch compares; start-up alone drives [`STARTUP_REGRESSION`].
pub const WATCHED_PHASES: [Phase; 2] = [Phase::Startup, Phase::ImagePull];
/// The metric the hourly schedule publishes per family: 1 for a start-up regression, else 0.
pub const STARTUP_REGRESSION: &str = "StartupRegression";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub min_tasks: u64,
    pub min_change: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Regression,
    /// Significantly slower, but by less than `minChange` at the p50.
    SlowerBelowThreshold,
    Faster,
    NoSignificantChange,
    NotEnoughData,
}

impl Verdict {
    pub const fn text(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::SlowerBelowThreshold => "slower, below minChange",
            Verdict::Faster => "faster",
            Verdict::NoSignificantChange => "no significant change",
            Verdict::NotEnoughData => "not enough data",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRegression {
    pub phase: &'static str,
    pub baseline: Brief,
    pub candidate: Brief,
    /// candidate ÷ baseline − 1: 0.25 is 25 % longer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_change: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_change: Option<f64>,
    /// Two-sided Mann–Whitney p (none below `minTasks` values a side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mann_whitney_p: Option<f64>,
    /// The effect size: the chance that a task of the newest revision takes longer than one of the
    /// revision before (ties count half); 0.5 is no difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability_candidate_longer: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionTasks {
    pub revision: u32,
    pub tasks: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyRegression {
    pub family: String,
    /// The account and region of the tasks judged (absent: rollup items from before they were kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The revision before the newest (none when only one revision ran in the window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<RevisionTasks>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<RevisionTasks>,
    pub phases: Vec<PhaseRegression>,
    pub startup_regression: bool,
    pub summary: String,
}

pub const METHOD: &str = "two-sided Mann-Whitney U over the rollups' log buckets (a bucket's values tie at its mid-rank; normal approximation with tie and continuity correction)";

/// The `regressions` answer: one entry per family with tasks in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegressionsAnswer {
    pub query: QueryKind,
    /// The window, widened to whole hours of createdAt (the rollups' hours).
    pub from: Timestamp,
    pub to: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshotter: Option<String>,
    pub significance: f64,
    pub min_tasks: u64,
    pub min_change: f64,
    pub method: &'static str,
    pub source: Source,
    pub precision: Precision,
    /// The families whose newest revision is a start-up regression ([`FamilyRegression::label`]).
    pub startup_regressions: Vec<String>,
    /// `StartupRegression` documents printed (with `"publish": true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<usize>,
    pub read: ReadCount,
    pub families: Vec<FamilyRegression>,
}

fn change(candidate: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (candidate, baseline) {
        (Some(c), Some(b)) if b > 0.0 => Some(((c / b - 1.0) * 10_000.0).round() / 10_000.0),
        _ => None,
    }
}

/// Whether `candidate` is at least `share` longer than `baseline` (a baseline of 0 is exceeded by anything).
fn longer_by_at_least(candidate: Option<f64>, baseline: Option<f64>, share: f64) -> bool {
    match (candidate, baseline) {
        (Some(candidate), Some(baseline)) => candidate >= baseline * (1.0 + share),
        _ => false,
    }
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

pub fn judge_phase(
    phase: Phase,
    baseline: &PhaseRollup,
    candidate: &PhaseRollup,
    settings: Settings,
) -> PhaseRegression {
    let (base, cand) = (brief(baseline), brief(candidate));
    let (p50_change, p90_change) = (change(cand.p50, base.p50), change(cand.p90, base.p90));
    let enough = baseline.count >= settings.min_tasks && candidate.count >= settings.min_tasks;
    let bins = |rollup: &PhaseRollup| -> Vec<_> { rollup.histogram.buckets().collect() };
    let test = enough
        .then(|| mann_whitney_binned(&bins(candidate), &bins(baseline)))
        .flatten();
    let verdict = match &test {
        None => Verdict::NotEnoughData,
        Some(test) if test.p_value >= SIGNIFICANCE => Verdict::NoSignificantChange,
        Some(test) if test.probability_of_superiority < 0.5 => Verdict::Faster,
        Some(_) if longer_by_at_least(cand.p50, base.p50, settings.min_change) => Verdict::Regression,
        Some(_) => Verdict::SlowerBelowThreshold,
    };
    PhaseRegression {
        phase: phase.name(),
        baseline: base,
        candidate: cand,
        p50_change,
        p90_change,
        mann_whitney_p: test.as_ref().map(|t| t.p_value),
        probability_candidate_longer: test.as_ref().map(|t| round(t.probability_of_superiority, 4)),
        verdict,
    }
}

/// [`judge_recent`] with every revision recent: the newest by number against the next lower one.
pub fn judge_family(
    family: &str,
    revisions: &BTreeMap<u32, RollupAccumulator>,
    settings: Settings,
) -> FamilyRegression {
    let every: BTreeSet<u32> = revisions.keys().copied().collect();
    judge_recent(family, revisions, &every, settings)
}

/// The family's newest revision against the next lower one with tasks in the window. The newest is the
/// highest-numbered revision among `recent` (those with tasks in the last day): after a rollback the
/// revision rolled back from stops being judged a day later, instead of holding the alarm for the window.
/// `revisions` holds each revision's accumulator over [`WATCHED_PHASES`], in that order.
pub fn judge_recent(
    family: &str,
    revisions: &BTreeMap<u32, RollupAccumulator>,
    recent: &BTreeSet<u32>,
    settings: Settings,
) -> FamilyRegression {
    let ran = || revisions.iter().filter(|(_, side)| side.counts.tasks > 0).rev();
    let side = |(revision, accumulator): (&u32, &RollupAccumulator)| RevisionTasks {
        revision: *revision,
        tasks: accumulator.counts.tasks,
    };
    let candidate = ran().find(|(revision, _)| recent.contains(revision));
    let baseline = candidate.and_then(|(newest, _)| ran().find(|(revision, _)| *revision < newest));
    let (Some(candidate), Some(baseline)) = (candidate, baseline) else {
        let summary = match (candidate, ran().next()) {
            (Some((revision, _)), _) => {
                format!("only revision {revision} ran in the window: nothing to compare it with")
            }
            (None, Some(_)) => "no tasks in the last day: no new revision to judge".to_owned(),
            (None, None) => "no tasks in the window".to_owned(),
        };
        return FamilyRegression {
            family: family.to_owned(),
            account: None,
            region: None,
            baseline: None,
            candidate: candidate.map(side),
            phases: Vec::new(),
            startup_regression: false,
            summary,
        };
    };
    let empty = PhaseRollup::default();
    let phases: Vec<PhaseRegression> = WATCHED_PHASES
        .iter()
        .enumerate()
        .map(|(i, phase)| {
            judge_phase(
                *phase,
                baseline.1.phases.get(i).unwrap_or(&empty),
                candidate.1.phases.get(i).unwrap_or(&empty),
                settings,
            )
        })
        .collect();
    let startup_regression = phases
        .iter()
        .any(|p| p.phase == Phase::Startup.name() && p.verdict == Verdict::Regression);
    let judged: Vec<String> = phases.iter().map(|p| phase_sentence(p, settings)).collect();
    FamilyRegression {
        family: family.to_owned(),
        account: None,
        region: None,
        summary: format!("revision {} against {}: {}", candidate.0, baseline.0, judged.join("; ")),
        baseline: Some(side(baseline)),
        candidate: Some(side(candidate)),
        phases,
        startup_regression,
    }
}

impl FamilyRegression {
    pub fn in_origin(mut self, origin: Option<Origin>) -> FamilyRegression {
        (self.account, self.region) = origin.map(|o| (o.account, o.region)).unzip();
        self
    }

    fn qualified(&self) -> String {
        match (&self.account, &self.region) {
            (Some(account), Some(region)) => format!("{} ({account} {region})", self.family),
            _ => self.family.clone(),
        }
    }
}

/// Each judgement's name in answers and tables: its family, and its account and region when the family was
/// judged in more than one (a single account's answers read as they always did).
pub fn labels(judged: &[FamilyRegression]) -> Vec<String> {
    judged
        .iter()
        .map(
            |family| match judged.iter().filter(|other| other.family == family.family).count() {
                1 => family.family.clone(),
                _ => family.qualified(),
            },
        )
        .collect()
}

/// A change as a signed percentage with one decimal, `-` when unknown.
pub fn percent(change: Option<f64>) -> String {
    change.map_or_else(|| "-".to_owned(), |c| format!("{:+.1} %", c * 100.0))
}

fn phase_sentence(phase: &PhaseRegression, settings: Settings) -> String {
    match (phase.verdict, phase.mann_whitney_p) {
        (Verdict::NotEnoughData, _) => format!(
            "{} not tested ({} and {} values, at least {} each needed)",
            phase.phase, phase.baseline.count, phase.candidate.count, settings.min_tasks
        ),
        (verdict, Some(p)) => format!(
            "{} {} (p50 {}, p = {})",
            phase.phase,
            verdict.text(),
            percent(phase.p50_change),
            format_p(p)
        ),
        (verdict, None) => format!("{} {}", phase.phase, verdict.text()),
    }
}

/// The EMF document of one family's `StartupRegression` (0 or 1), by family and across families (the
/// alarm watches the latter's Maximum; the dashboard shows the former).
pub fn regression_emf(namespace: &str, family: &FamilyRegression, timestamp_millis: i64) -> String {
    let startup = family.phases.iter().find(|p| p.phase == Phase::Startup.name());
    json!({
        "_aws": {
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["TaskFamily"], []],
                "Metrics": [{"Name": STARTUP_REGRESSION, "Unit": "Count"}]
            }]
        },
        "TaskFamily": family.family,
        // Properties, not dimensions: a metric per account would multiply the metric count (docs/organisation.md).
        "account": family.account,
        "region": family.region,
        STARTUP_REGRESSION: u8::from(family.startup_regression),
        "baselineRevision": family.baseline.map(|side| side.revision),
        "candidateRevision": family.candidate.map(|side| side.revision),
        "startupP50Change": startup.and_then(|p| p.p50_change),
        "startupMannWhitneyP": startup.and_then(|p| p.mann_whitney_p),
        "summary": family.summary,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use timing_domain::emf_check::validate_emf;
    use timing_domain::rollup::Counts;
    use timing_domain::stats::mann_whitney_u;

    const SETTINGS: Settings = Settings {
        min_tasks: 20,
        min_change: 0.10,
    };

    fn rollup(millis: impl IntoIterator<Item = u64>) -> PhaseRollup {
        let mut rollup = PhaseRollup::default();
        millis.into_iter().for_each(|ms| rollup.add_millis(ms));
        rollup
    }

    fn revision(startups: &[u64], pulls: &[u64]) -> RollupAccumulator {
        RollupAccumulator {
            counts: Counts {
                tasks: startups.len() as u64,
                ..Counts::default()
            },
            phases: vec![rollup(startups.iter().copied()), rollup(pulls.iter().copied())],
        }
    }

    /// 30 start-ups from 30.0 s in steps of 0.5 s, shifted by `shift` ms.
    fn startups(shift: u64) -> Vec<u64> {
        (0..30).map(|i| 30_000 + i * 500 + shift).collect()
    }

    #[test]
    fn a_clearly_slower_newest_revision_is_a_regression_and_the_test_matches_the_values() {
        let revisions = BTreeMap::from([
            (7, revision(&startups(0), &startups(0))),
            (9, revision(&startups(0), &startups(0))),
            (12, revision(&startups(8_000), &startups(200))),
        ]);
        let family = judge_family("checkout", &revisions, SETTINGS);
        assert_eq!(
            (family.baseline.unwrap().revision, family.candidate.unwrap().revision),
            (9, 12)
        );
        assert!(family.startup_regression);
        let startup = &family.phases[0];
        assert_eq!(startup.verdict, Verdict::Regression);
        // The test on the values themselves, which the bins only approximate.
        let values = |ms: Vec<u64>| -> Vec<f64> { ms.into_iter().map(|v| v as f64).collect() };
        let exact = mann_whitney_u(&values(startups(8_000)), &values(startups(0))).unwrap();
        let p = startup.mann_whitney_p.unwrap();
        // The bins (about 2 % wide) hold one or two of these 0.5 s steps each: p stays close.
        assert!((p.ln() - exact.p_value.ln()).abs() < 0.5, "{p} vs {}", exact.p_value);
        assert!((startup.probability_candidate_longer.unwrap() - exact.probability_of_superiority).abs() < 0.02);
        // p50 37.25 s → 45.25 s: +21.5 %, within the bins' 1 %.
        assert!(
            (startup.p50_change.unwrap() - 8.0 / 37.25).abs() < 0.02,
            "{:?}",
            startup.p50_change
        );
        // The pull moved 0.2 s only: not significant.
        assert_eq!(family.phases[1].verdict, Verdict::NoSignificantChange);
        assert!(
            family.summary.starts_with("revision 12 against 9: startup regression"),
            "{}",
            family.summary
        );
    }

    #[test]
    fn significance_alone_is_not_enough_below_min_change_and_faster_is_not_a_regression() {
        // 2,000 tasks a side, 5 % slower: significant, under the 10 % threshold.
        let many = |scale: f64| -> Vec<u64> { (0..2000).map(|i| ((30_000 + i * 10) as f64 * scale) as u64).collect() };
        let slower = BTreeMap::from([(1, revision(&many(1.0), &[])), (2, revision(&many(1.05), &[]))]);
        let family = judge_family("web", &slower, SETTINGS);
        assert_eq!(family.phases[0].verdict, Verdict::SlowerBelowThreshold);
        assert!(!family.startup_regression);
        let strict = judge_family(
            "web",
            &slower,
            Settings {
                min_change: 0.0,
                ..SETTINGS
            },
        );
        assert!(strict.startup_regression);
        let faster = BTreeMap::from([(1, revision(&many(1.0), &[])), (2, revision(&many(0.7), &[]))]);
        assert_eq!(
            judge_family("web", &faster, SETTINGS).phases[0].verdict,
            Verdict::Faster
        );
        // No image pull values at all: not tested, not a regression.
        assert_eq!(
            judge_family("web", &faster, SETTINGS).phases[1].verdict,
            Verdict::NotEnoughData
        );
    }

    #[test]
    fn too_few_tasks_or_one_revision_is_never_a_regression() {
        let few: Vec<u64> = startups(0).into_iter().take(19).collect();
        let revisions = BTreeMap::from([(1, revision(&startups(0), &[])), (2, revision(&few, &[]))]);
        let family = judge_family("web", &revisions, SETTINGS);
        assert_eq!(family.phases[0].verdict, Verdict::NotEnoughData);
        assert!(
            family.summary.contains("30 and 19 values, at least 20 each"),
            "{}",
            family.summary
        );
        let alone = judge_family("web", &BTreeMap::from([(4, revision(&startups(0), &[]))]), SETTINGS);
        assert_eq!((alone.baseline, alone.phases.len()), (None, 0));
        assert_eq!(
            alone.summary,
            "only revision 4 ran in the window: nothing to compare it with"
        );
        // A revision whose tasks all left (zero counts) is not the newest.
        let left = BTreeMap::from([
            (1, revision(&startups(0), &[])),
            (2, revision(&startups(9_000), &[])),
            (3, RollupAccumulator::default()),
        ]);
        assert_eq!(judge_family("web", &left, SETTINGS).candidate.unwrap().revision, 2);
    }

    /// Log-normal start-ups around `median` ms (σ = 0.2 on the log scale), whole milliseconds.
    fn log_normal(rng: &mut fastrand::Rng, median: f64, count: usize) -> Vec<u64> {
        (0..count)
            .map(|_| {
                // Box–Muller: one standard normal from two uniforms.
                let (u, v) = (1.0 - rng.f64(), rng.f64());
                let normal = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                (median * (0.2 * normal).exp()).round() as u64
            })
            .collect()
    }

    #[test]
    fn equal_revisions_are_called_different_at_most_as_often_as_the_significance_level_says() {
        // 2,000 pairs of equal revisions, 24 tasks a side: about 20 significant either way is the test's
        // size (α = 1 %), and fewer flagged, since a flag also needs the newest slower by 10 %. The
        // generator-based figures over 10,000 seeds are in docs/regressions.md.
        let (trials, mut significant, mut flagged) = (2000, 0, 0);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..trials {
            let revisions = BTreeMap::from([
                (1, revision(&log_normal(&mut rng, 37_500.0, 24), &[])),
                (2, revision(&log_normal(&mut rng, 37_500.0, 24), &[])),
            ]);
            let family = judge_family("web", &revisions, SETTINGS);
            significant += usize::from(family.phases[0].mann_whitney_p.unwrap() < SIGNIFICANCE);
            flagged += usize::from(family.startup_regression);
        }
        // Binomial(2000, 0.01): mean 20, sd 4.4; 30 is more than two sd above.
        assert!(significant <= 30, "{significant} of {trials} significant");
        assert!(flagged <= trials / 100, "{flagged} of {trials} flagged");
        // And it can fail: 35 % slower (1.5 standard deviations of the log) is caught nearly always.
        let caught = (0..200)
            .filter(|_| {
                let revisions = BTreeMap::from([
                    (1, revision(&log_normal(&mut rng, 37_500.0, 24), &[])),
                    (2, revision(&log_normal(&mut rng, 50_625.0, 24), &[])),
                ]);
                judge_family("web", &revisions, SETTINGS).startup_regression
            })
            .count();
        assert!(caught >= 180, "{caught} of 200 caught");
    }

    #[test]
    fn after_a_rollback_the_revision_rolled_back_from_is_no_longer_the_newest() {
        let revisions = BTreeMap::from([
            (8, revision(&startups(0), &[])),
            (9, revision(&startups(0), &[])),
            (15, revision(&startups(9_000), &[])),
        ]);
        // 15 still ran in the last day: judged, flagged.
        assert!(judge_recent("web", &revisions, &BTreeSet::from([9, 15]), SETTINGS).startup_regression);
        // Rolled back to 9: 9 is judged against 8, and 15 no longer holds the alarm.
        let rolled_back = judge_recent("web", &revisions, &BTreeSet::from([9]), SETTINGS);
        assert_eq!(
            (
                rolled_back.baseline.unwrap().revision,
                rolled_back.candidate.unwrap().revision
            ),
            (8, 9)
        );
        assert!(!rolled_back.startup_regression);
        let idle = judge_recent("web", &revisions, &BTreeSet::new(), SETTINGS);
        assert_eq!(idle.summary, "no tasks in the last day: no new revision to judge");
        assert!(!idle.startup_regression);
    }

    #[test]
    fn the_published_document_is_valid_emf_with_the_metric_by_family_and_overall() {
        let revisions = BTreeMap::from([(9, revision(&startups(0), &[])), (12, revision(&startups(8_000), &[]))]);
        let family = judge_family("checkout", &revisions, SETTINGS);
        let line = regression_emf("ECS/TaskTiming", &family, 1_796_169_600_000);
        let document: serde_json::Value = serde_json::from_str(&line).unwrap();
        validate_emf(&document).unwrap();
        assert_eq!(document["StartupRegression"], 1);
        assert_eq!(document["TaskFamily"], "checkout");
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["TaskFamily"], []])
        );
        assert_eq!(
            (
                document["baselineRevision"].clone(),
                document["candidateRevision"].clone()
            ),
            (json!(9), json!(12))
        );
    }
}
