//! How often the regression watch calls revisions different: over many seeds, two revisions' generated
//! tasks go into rollups exactly as task-rollups would keep them (log-bucketed histograms) and through
//! `task_summary::regressions::judge_family`. With equal revisions this is the false-alarm rate; with a
//! slower one, the power. Pure: no services.

use std::collections::BTreeMap;

use fastrand::Rng;
use task_summary::regressions::{Settings, Verdict, WATCHED_PHASES, judge_family};
use task_summary::rollups::RollupAccumulator;
use timing_domain::rollup::PhaseRollup;
use timing_domain::timing::Phase;

use crate::generator::{Profile, lifecycle};

/// What the watch said about the start-up of `trials` pairs of revisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub trials: usize,
    /// p below the significance level, either way.
    pub significant: usize,
    /// Judged a start-up regression (significant, newest slower, by at least `minChange` at the p50).
    pub flagged: usize,
}

impl Tally {
    pub fn significant_rate(&self) -> f64 {
        self.significant as f64 / self.trials.max(1) as f64
    }

    pub fn flagged_rate(&self) -> f64 {
        self.flagged as f64 / self.trials.max(1) as f64
    }
}

/// One revision's rollups over the watched phases from `tasks` generated tasks of `profile`.
fn revision(rng: &mut Rng, profile: &Profile, tasks: usize) -> RollupAccumulator {
    let mut side = RollupAccumulator {
        phases: vec![PhaseRollup::default(); WATCHED_PHASES.len()],
        ..RollupAccumulator::default()
    };
    for _ in 0..tasks {
        let task = lifecycle(rng, profile, 1_795_000_000_000);
        side.counts.tasks += 1;
        for (rollup, phase) in side.phases.iter_mut().zip(WATCHED_PHASES) {
            if let Some(millis) = task.truth.phase_millis(phase) {
                rollup.add_millis(u64::try_from(millis).unwrap_or(0));
            }
        }
    }
    side
}

/// `seeds` trials of `tasks` tasks of `baseline` (revision 1) against `tasks` of `candidate` (revision 2).
pub fn tally(
    seeds: std::ops::Range<u64>,
    tasks: usize,
    baseline: &Profile,
    candidate: &Profile,
    settings: Settings,
) -> Tally {
    let mut tally = Tally::default();
    for seed in seeds {
        let mut rng = Rng::with_seed(seed);
        let revisions = BTreeMap::from([
            (1, revision(&mut rng, baseline, tasks)),
            (2, revision(&mut rng, candidate, tasks)),
        ]);
        let judged = judge_family(&baseline.family, &revisions, settings);
        let startup = judged.phases.iter().find(|p| p.phase == Phase::Startup.name());
        tally.trials += 1;
        if startup.is_some_and(|p| {
            matches!(
                p.verdict,
                Verdict::Regression | Verdict::SlowerBelowThreshold | Verdict::Faster
            )
        }) {
            tally.significant += 1;
        }
        tally.flagged += usize::from(judged.startup_regression);
    }
    tally
}

/// The Wilson score interval (95 %) of a rate seen `hits` times in `trials`.
pub fn wilson_95(hits: usize, trials: usize) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let (n, z) = (trials as f64, 1.959_963_984_540_054);
    let p = hits as f64 / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// How often one release is flagged when the watch looks at it again every hour while its tasks accumulate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LooksTally {
    pub trials: usize,
    /// Flagged at one look at least.
    pub any_look: usize,
    /// Flagged at two looks in a row at least (an alarm that needs two hourly datapoints).
    pub two_in_a_row: usize,
}

/// `baseline_tasks` of `baseline` against `candidate`'s tasks as they accumulate, `step` more before
/// each of `looks` looks (the first look sees `step` tasks).
pub fn tally_looks(
    seeds: std::ops::Range<u64>,
    baseline_tasks: usize,
    (step, looks): (usize, usize),
    baseline: &Profile,
    candidate: &Profile,
    settings: Settings,
) -> LooksTally {
    let mut tally = LooksTally::default();
    for seed in seeds {
        let mut rng = Rng::with_seed(seed);
        let mut revisions = BTreeMap::from([
            (1, revision(&mut rng, baseline, baseline_tasks)),
            (2, RollupAccumulator::default()),
        ]);
        let (mut flagged_before, mut any, mut twice) = (false, false, false);
        for _ in 0..looks {
            let more = revision(&mut rng, candidate, step);
            if let Some(side) = revisions.get_mut(&2) {
                side.counts.tasks += more.counts.tasks;
                side.phases.resize(WATCHED_PHASES.len(), PhaseRollup::default());
                for (mine, theirs) in side.phases.iter_mut().zip(&more.phases) {
                    mine.merge(theirs);
                }
            }
            let flagged = judge_family(&baseline.family, &revisions, settings).startup_regression;
            any |= flagged;
            twice |= flagged && flagged_before;
            flagged_before = flagged;
        }
        tally.trials += 1;
        tally.any_look += usize::from(any);
        tally.two_in_a_row += usize::from(twice);
    }
    tally
}
