//! The answers, built from the rows read: pure functions, so every statistic is testable without I/O.
//! Durations are in seconds, rounded to the millisecond the records hold.

use std::collections::BTreeMap;

use serde::Serialize;
use timing_domain::query::RecordQuery;
use timing_domain::record::TimingRow;
use timing_domain::stats::{Distribution, describe};
use timing_domain::timing::Phase;
use timing_dynamodb::ReadCount;

use timing_domain::request::GroupBy;

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
        })
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCounts {
    pub tasks: u64,
    pub started: u64,
    pub stopped: u64,
    pub failed_to_start: u64,
    /// (task, phase) pairs whose end precedes their start: left out of the phase statistics.
    pub timestamp_anomalies: u64,
}

/// What a group collects while the pages stream by: counts, and the values of each requested phase.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    pub counts: TaskCounts,
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
        self.counts.timestamp_anomalies += row.timestamp_anomalies.len() as u64;
        for (values, phase) in self.values.iter_mut().zip(phases) {
            if let Some(seconds) = row.phase_seconds(*phase) {
                values.push(seconds);
            }
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
    pub counts: TaskCounts,
    pub phases: Vec<PhaseStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryAnswer {
    pub query: &'static str,
    pub filters: RecordQuery,
    pub group_by: Vec<&'static str>,
    pub source: &'static str,
    pub precision: &'static str,
    pub percentiles: &'static str,
    pub read: ReadCount,
    pub groups: Vec<GroupSummary>,
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
        query: "summary",
        filters,
        group_by: group_by.iter().map(|d| d.name()).collect(),
        source: "records",
        precision: crate::rollups::EXACT_PRECISION,
        percentiles: PERCENTILE_DEFINITION,
        read,
        groups,
    }
}
