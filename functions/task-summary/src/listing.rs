//! `tasks`: one row per task, newest first, as stored.

use serde::Serialize;
use timing_domain::query::RecordQuery;
use timing_domain::record::TaskRecord;
use timing_domain::timestamp::Timestamp;
use timing_domain::timing::Phase;

use timing_dynamodb::ReadCount;

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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRow {
    pub task_id: String,
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
}

impl From<TaskRecord> for TaskRow {
    fn from(record: TaskRecord) -> TaskRow {
        TaskRow {
            phases: PhaseSeconds {
                provisioning: record.provisioning_seconds,
                image_pull: record.image_pull_seconds,
                container_start: record.container_start_seconds,
                startup: record.startup_seconds,
                run: record.run_seconds,
                shutdown: record.shutdown_seconds,
                lifetime: record.lifetime_seconds,
            },
            task_id: record.task_id,
            family: record.family,
            revision: record.revision,
            cluster: record.cluster_name,
            last_status: record.last_status,
            created_at: record.created_at,
            started_at: record.started_at,
            stopped_at: record.stopped_at,
            stop_code: record.stop_code,
            failed_to_start: record.failed_to_start,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksAnswer {
    pub query: &'static str,
    pub filters: RecordQuery,
    pub count: usize,
    pub tasks: Vec<TaskRow>,
    /// Present while more tasks match: send it back, with the same filters, for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub read: ReadCount,
}
