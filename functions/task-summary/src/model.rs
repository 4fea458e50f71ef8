//! What task-summary answers, whatever the data came from: the answer types, the constants that
//! describe how figures were computed, and the small arithmetic shared by both sources. `exact`
//! builds these from records, `rollups` from rollup items, `table` renders them.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use timing_domain::arn::Origin;
use timing_domain::query::RecordQuery;
use timing_domain::record::TaskRecord;
use timing_domain::report::{ReadySignal, Snapshotter};
use timing_domain::rollup::Counts;
use timing_domain::stats::{Distribution, PValueMethod, describe};
use timing_domain::timestamp::Timestamp;
use timing_domain::timing::Phase;
use timing_dynamodb::ReadCount;

/// Which query an answer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryKind {
    Summary,
    Compare,
    Tasks,
    Regressions,
}

/// Where the figures came from: every record in the window, or the hourly and daily rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Records,
    Rollups,
}

impl Source {
    /// What one item read is, for the read line of a table.
    pub const fn items(self) -> &'static str {
        match self {
            Source::Records => "records",
            Source::Rollups => "rollup items",
        }
    }

    /// How exact the figures from this source are (the answer's `precision`).
    pub const fn precision(self) -> &'static str {
        match self {
            Source::Records => "exact: every record in the window read",
            Source::Rollups => {
                "count, sum, mean and stddev exact; min, max and percentiles within 1% relative error \
                 (log buckets, DDSketch mapping, a = 0.01); window widened to whole hours of createdAt"
            }
        }
    }
}

/// Serialized as the sentence [`Source::precision`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision(pub Source);

impl Serialize for Precision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.precision())
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.precision())
    }
}

pub const PERCENTILE_DEFINITION: &str =
    "linear interpolation between closest ranks (Hyndman-Fan type 7, numpy default)";

pub fn millis_rounded(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum KeyPart {
    Number(u32),
    Text(String),
}

impl std::fmt::Display for KeyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyPart::Number(n) => write!(f, "{n}"),
            KeyPart::Text(t) => f.write_str(t),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseStats {
    pub phase: &'static str,
    pub count: usize,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub values: Option<PhaseValues>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseValues {
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl PhaseStats {
    pub fn of(phase: Phase, values: &[f64]) -> PhaseStats {
        let count = values.len();
        let values = describe(values).map(|d: Distribution| PhaseValues {
            mean: millis_rounded(d.mean),
            stddev: millis_rounded(d.stddev),
            min: d.min,
            p50: millis_rounded(d.p50),
            p90: millis_rounded(d.p90),
            p95: millis_rounded(d.p95),
            p99: millis_rounded(d.p99),
            max: d.max,
        });
        PhaseStats {
            phase: phase.name(),
            count,
            values,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    pub key: BTreeMap<&'static str, KeyPart>,
    #[serde(flatten)]
    pub counts: Counts,
    pub phases: Vec<PhaseStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryAnswer {
    pub query: QueryKind,
    pub filters: RecordQuery,
    pub group_by: Vec<&'static str>,
    pub source: Source,
    pub precision: Precision,
    pub percentiles: &'static str,
    pub read: ReadCount,
    pub groups: Vec<GroupSummary>,
}

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
    pub fn of(values: &[f64]) -> Brief {
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

pub fn ratio(candidate: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (candidate, baseline) {
        (Some(c), Some(b)) if b != 0.0 => Some((c / b * 10_000.0).round() / 10_000.0),
        _ => None,
    }
}

pub fn difference(candidate: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    Some(millis_rounded(candidate? - baseline?))
}

pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    pub filters: RecordQuery,
    #[serde(flatten)]
    pub counts: Counts,
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
    pub query: QueryKind,
    pub baseline: Side,
    pub candidate: Side,
    pub source: Source,
    pub precision: Precision,
    pub method: Method,
    pub phases: Vec<PhaseComparison>,
}

pub const ROLLUP_PERCENTILES: &str =
    "type 7 interpolation between the bucket estimates of the two closest ranks (each within 1% of the exact value)";

pub const ROLLUP_METHOD: Method = Method {
    test: "none: rollups hold no individual values; repeat with \"exact\": true for the two-sided Mann-Whitney U test",
    alpha: ALPHA,
    bootstrap_resamples: 0,
    bootstrap_seed: 0,
    percentiles: ROLLUP_PERCENTILES,
};

/// The phases of one task in lifecycle order, seconds; absent while unknown or anomalous.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSeconds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_up: Option<f64>,
}

impl PhaseSeconds {
    pub fn get(&self, phase: Phase) -> Option<f64> {
        match phase {
            Phase::Provisioning => self.provisioning,
            Phase::ImagePull => self.image_pull,
            Phase::ContainerStart => self.container_start,
            Phase::Startup => self.startup,
            Phase::Run => self.run,
            Phase::Shutdown => self.shutdown,
            Phase::Lifetime => self.lifetime,
            Phase::Ready => self.ready,
            Phase::WarmUp => self.warm_up,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRow {
    pub task_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub family: String,
    pub revision: u32,
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    pub phases: PhaseSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    pub failed_to_start: bool,
    /// From the task's image report: `soci`, `overlayfs`, `mixed`, `unknown`, or `unreported`.
    pub snapshotter: &'static str,
    /// When the task was ready, as its report says (absent: no report, no signal, or not ready in time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Timestamp>,
    /// What the report judged readiness by: `healthCheck` or `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_signal: Option<ReadySignal>,
}

impl From<TaskRecord> for TaskRow {
    fn from(record: TaskRecord) -> TaskRow {
        // The task ARN's, as every answer groups and filters by (the envelope's may be absent).
        let (account, region) = Origin::of_task_arn(&record.task_arn)
            .map(|origin| (origin.account, origin.region))
            .unzip();
        TaskRow {
            phases: PhaseSeconds {
                provisioning: record.provisioning_seconds,
                image_pull: record.image_pull_seconds,
                container_start: record.container_start_seconds,
                startup: record.startup_seconds,
                run: record.run_seconds,
                shutdown: record.shutdown_seconds,
                lifetime: record.lifetime_seconds,
                ready: record.phase_seconds(Phase::Ready),
                warm_up: record.phase_seconds(Phase::WarmUp),
            },
            ready_at: record.ready_at,
            ready_signal: record.ready_signal,
            task_id: record.task_id,
            account,
            region,
            family: record.family,
            revision: record.revision,
            cluster: record.cluster_name,
            last_status: record.last_status,
            created_at: record.created_at,
            started_at: record.started_at,
            stopped_at: record.stopped_at,
            stop_code: record.stop_code,
            failed_to_start: record.failed_to_start,
            snapshotter: Snapshotter::label(record.snapshotter),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksAnswer {
    pub query: QueryKind,
    pub filters: RecordQuery,
    pub count: usize,
    pub tasks: Vec<TaskRow>,
    /// Present while more tasks match: send it back, with the same filters, for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub read: ReadCount,
}
