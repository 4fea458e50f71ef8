//! The sidecar's second job: once per task, what each container was pulled with (`Snapshotter` of the
//! Task Metadata endpoint v4 `/task`), sent to task-events as a custom EventBridge event. The schema is
//! task-events' own (`timing_domain::report`), so the two cannot drift apart.

use serde::Deserialize;
use timing_domain::report::{ImageReport, REPORT_SCHEMA_VERSION, ReportedContainer};
use timing_domain::timestamp::Timestamp;

use crate::metadata::MetadataError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTask {
    cluster: Option<String>,
    #[serde(rename = "TaskARN")]
    task_arn: Option<String>,
    family: Option<String>,
    revision: Option<String>,
    pull_started_at: Option<String>,
    pull_stopped_at: Option<String>,
    #[serde(default)]
    containers: Vec<RawContainer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawContainer {
    name: Option<String>,
    image: Option<String>,
    #[serde(rename = "ImageID")]
    image_id: Option<String>,
    /// Absent on EC2, Windows and platform versions before 1.4.0: reported as absent, never guessed.
    snapshotter: Option<String>,
    created_at: Option<String>,
    started_at: Option<String>,
}

fn field(field: &str, problem: impl Into<String>) -> MetadataError {
    MetadataError::Field {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

fn timestamp(text: Option<String>, name: &str) -> Result<Option<Timestamp>, MetadataError> {
    text.map(|text| Timestamp::parse(&text).map_err(|err| field(name, err.to_string())))
        .transpose()
}

/// The report a `/task` response gives, leaving `excluded` containers out of the task's snapshotter.
pub fn image_report(body: &[u8], excluded: &[String]) -> Result<ImageReport, MetadataError> {
    let raw: RawTask = serde_json::from_slice(body).map_err(|err| MetadataError::Json(err.to_string()))?;
    let required = |value: Option<String>, name: &str| value.ok_or_else(|| field(name, "is missing"));
    let revision = required(raw.revision, "Revision")?;
    let revision = revision
        .parse::<u32>()
        .map_err(|_| field("Revision", format!("{revision:?} is not a revision number")))?;
    let mut containers = Vec::with_capacity(raw.containers.len());
    for (index, container) in raw.containers.into_iter().enumerate() {
        let name = required(container.name, &format!("Containers[{index}].Name"))?;
        containers.push(ReportedContainer {
            created_at: timestamp(container.created_at, &format!("Containers[{name}].CreatedAt"))?,
            started_at: timestamp(container.started_at, &format!("Containers[{name}].StartedAt"))?,
            name,
            image: container.image,
            image_id: container.image_id,
            snapshotter: container.snapshotter,
        });
    }
    let report = ImageReport {
        schema_version: REPORT_SCHEMA_VERSION,
        task_arn: required(raw.task_arn, "TaskARN")?,
        cluster_arn: required(raw.cluster, "Cluster")?,
        family: required(raw.family, "Family")?,
        revision,
        pull_started_at: timestamp(raw.pull_started_at, "PullStartedAt")?,
        pull_stopped_at: timestamp(raw.pull_stopped_at, "PullStoppedAt")?,
        containers,
        excluded_containers: excluded.to_vec(),
        // Set once known (`readiness`), after the wait for it.
        readiness: None,
    };
    // What task-events would refuse is refused here, where it can be logged with the response.
    report.validate().map_err(|err| field("(report)", err.to_string()))?;
    Ok(report)
}

/// The container's own name, from `GET ${ECS_CONTAINER_METADATA_URI_V4}` (the container metadata, not the
/// task's): the sidecar leaves itself out of the task's snapshotter unless told otherwise.
pub fn own_container_name(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Container {
        #[serde(rename = "Name")]
        name: String,
    }
    serde_json::from_slice::<Container>(body)
        .ok()
        .map(|container| container.name)
        .filter(|name| !name.is_empty())
}

/// Whether every counted container has started: before that, a container's snapshotter may not be
/// known yet, so the report waits (up to a bound) for it.
pub fn all_started(report: &ImageReport) -> bool {
    report
        .containers
        .iter()
        .filter(|c| !report.excluded_containers.contains(&c.name))
        .all(|c| c.started_at.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixture as fixture;
    use timing_domain::report::Snapshotter;

    #[test]
    fn each_container_as_the_metadata_says_and_the_task_from_its_counted_containers() {
        let soci = image_report(&fixture("fargate-soci-with-sidecar.json"), &["task-sidecar".into()]).unwrap();
        assert_eq!(soci.family, "checkout-soci");
        assert_eq!(soci.revision, 14);
        let snapshotters: Vec<Option<&str>> = soci.containers.iter().map(|c| c.snapshotter.as_deref()).collect();
        assert_eq!(snapshotters, [Some("soci"), Some("overlayfs")]);
        assert_eq!(
            soci.snapshotter(),
            Snapshotter::Soci,
            "the sidecar's own overlayfs left out"
        );
        assert_eq!(
            soci.containers[0].started_at,
            Some(Timestamp::parse("2026-11-20T10:00:21.512Z").unwrap()),
            "nanoseconds truncated to milliseconds"
        );
        // Counted, the sidecar makes it mixed.
        let counted = image_report(&fixture("fargate-soci-with-sidecar.json"), &[]).unwrap();
        assert_eq!(counted.snapshotter(), Snapshotter::Mixed);
        let overlay = image_report(&fixture("fargate-overlayfs.json"), &["task-sidecar".into()]).unwrap();
        assert_eq!(overlay.snapshotter(), Snapshotter::Overlayfs);
    }

    #[test]
    fn no_snapshotter_field_is_unknown_never_guessed() {
        let ec2 = image_report(&fixture("ec2-no-clock-drift.json"), &[]).unwrap();
        assert!(ec2.containers.iter().all(|c| c.snapshotter.is_none()));
        assert_eq!(ec2.snapshotter(), Snapshotter::Unknown);
    }

    #[test]
    fn a_container_not_started_yet_holds_the_report_back() {
        let mut report = image_report(&fixture("fargate-soci-with-sidecar.json"), &[]).unwrap();
        assert!(all_started(&report));
        report.containers[0].started_at = None;
        assert!(!all_started(&report));
        report.excluded_containers = vec![report.containers[0].name.clone()];
        assert!(all_started(&report));
    }

    #[test]
    fn the_sidecar_finds_its_own_name_in_its_container_metadata() {
        let body = br#"{"DockerId": "ea32192c8553fbff", "Name": "task-sidecar", "DockerName": "ecs-task-sidecar-1", "Image": "x"}"#;
        assert_eq!(own_container_name(body).as_deref(), Some("task-sidecar"));
        assert_eq!(own_container_name(b"{}"), None);
        assert_eq!(own_container_name(br#"{"Name": ""}"#), None);
        assert_eq!(own_container_name(b"not json"), None);
    }

    #[test]
    fn malformed_metadata_names_the_field() {
        let body = br#"{"Cluster": "prod", "TaskARN": "arn:aws:ecs:us-east-1:1:task/prod/t", "Family": "web", "Revision": "x"}"#;
        assert!(image_report(body, &[]).unwrap_err().to_string().contains("Revision"));
        let body =
            br#"{"Cluster": "prod", "TaskARN": "arn:aws:ecs:us-east-1:1:task/prod/t", "Family": "web", "Revision": "3",
            "Containers": [{"Name": "app", "StartedAt": "soon"}]}"#;
        assert!(
            image_report(body, &[])
                .unwrap_err()
                .to_string()
                .contains("Containers[app].StartedAt")
        );
    }
}
