//! The project's metadata fixtures and the published responses in ../shared/task-metadata (when
//! present), each against values written out by hand from the file.

use std::path::{Path, PathBuf};

use task_sidecar::metadata::{SyncStatus, parse_task_metadata};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (file, cluster, family, revision, service, ClockErrorBound and status or None, reference as epoch ms)
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<(f64, SyncStatus, i64)>,
);

fn check(path: &Path, expected: &Expected) {
    let body = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let parsed = parse_task_metadata(&body).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let (_, cluster, family, revision, service, clock) = *expected;
    let identity = &parsed.identity;
    assert_eq!(
        (
            identity.cluster_name.as_str(),
            identity.family.as_str(),
            identity.revision.as_str(),
            identity.service_name.as_deref()
        ),
        (cluster, family, revision, service),
        "{}",
        path.display()
    );
    let got = parsed
        .clock
        .map(|c| (c.error_bound_ms, c.status, c.reference.timestamp_millis()));
    assert_eq!(got, clock, "{}", path.display());
}

#[test]
fn project_fixtures() {
    let expected: [Expected; 4] = [
        (
            "fargate-service-synchronized.json",
            "trading-prod",
            "order-matcher",
            "42",
            Some("order-matcher-svc"),
            Some((0.382, SyncStatus::Synchronized, 1_795_335_245_000)),
        ),
        (
            "fargate-not-synchronized.json",
            "batch",
            "settlement",
            "7",
            None,
            Some((12.75, SyncStatus::NotSynchronized, 1_795_334_398_125)),
        ),
        (
            "ec2-no-clock-drift.json",
            "reporting",
            "nightly-report",
            "3",
            None,
            None,
        ),
        (
            "fargate-container-level.json",
            "edge",
            "edge-proxy",
            "19",
            None,
            Some((1.204, SyncStatus::Synchronized, 1_795_329_000_000)),
        ),
    ];
    for case in &expected {
        check(&workspace().join("fixtures/task-metadata").join(case.0), case);
    }
}

#[test]
fn published_responses_in_shared() {
    let dir = workspace().join("../shared/task-metadata");
    if !dir.exists() {
        eprintln!("skipped: {} is not there", dir.display());
        return;
    }
    let expected: [Expected; 2] = [
        // ClockDrift at task level; 2023-07-21T16:09:17Z.
        (
            "awsdocs-fargate-v4-task-example-2023.json",
            "MyEmptyCluster",
            "sample-fargate",
            "5",
            None,
            Some((0.446931, SyncStatus::Synchronized, 1_689_955_757_000)),
        ),
        // ClockDrift inside the container; 2021-09-07T16:57:44Z.
        (
            "awsdocs-fargate-v4-task-example-2021-containerlevel-clockdrift.json",
            "default",
            "curltest",
            "3",
            None,
            Some((0.5458234999999999, SyncStatus::Synchronized, 1_631_033_864_000)),
        ),
    ];
    for case in &expected {
        check(&dir.join(case.0), case);
    }
}
