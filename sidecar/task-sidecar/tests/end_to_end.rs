//! The built binary against the metadata stand-in and the local stack (moto behind the CBOR bridge),
//! with CloudWatch cut off for a while: every sample reaches CloudWatch once, at its own time, with
//! its unit and dimensions; the on-demand endpoint and `check` answer by the clock's state; SIGTERM
//! flushes and exits 0.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StandardUnit};
use task_sidecar::reader::{get, http_client};
use task_timing_tests::clock::{MetadataStandIn, OutageProxy, Reply, cloudwatch_from_env};

const BINARY: &str = env!("CARGO_BIN_EXE_task-sidecar");

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/task-metadata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the monitor if the test fails before it stops it.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
        }
    }
}

async fn get_clock(listen: &str, query: &str) -> (u16, serde_json::Value) {
    let uri = format!("http://{listen}/clock{query}").parse().unwrap();
    // Longer than any read the monitor makes on demand (timeout and retry).
    let (status, body) = get(&http_client(), &uri, Duration::from_secs(10)).await.unwrap();
    (
        status.as_u16(),
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn check(listen: &str, max_error_ms: &str) -> i32 {
    let status = Command::new(BINARY)
        .args(["check", "--max-error-ms", max_error_ms, "--listen", listen])
        .env_remove("ECS_CONTAINER_METADATA_URI_V4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    status.code().unwrap_or(-1)
}

/// Every (second, value) CloudWatch holds for `metric` under `dimensions` with statistic `stat`.
async fn points(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    (metric, unit, stat): (&str, StandardUnit, &str),
    dimensions: &[(&str, &str)],
    window: (i64, i64),
) -> Vec<(i64, f64)> {
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(
            dimensions
                .iter()
                .map(|(n, v)| Dimension::builder().name(*n).value(*v).build())
                .collect(),
        ))
        .build();
    let answer = client
        .get_metric_data()
        .start_time(DateTime::from_secs(window.0))
        .end_time(DateTime::from_secs(window.1))
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("q")
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(1)
                        .stat(stat)
                        .unit(unit)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let result = &answer.metric_data_results()[0];
    let mut points: Vec<(i64, f64)> = result
        .timestamps()
        .iter()
        .map(|t| t.secs())
        .zip(result.values().iter().copied())
        .collect();
    points.sort_by_key(|(t, _)| *t);
    points
}

fn total(points: &[(i64, f64)]) -> u64 {
    points.iter().map(|(_, count)| *count as u64).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_survive_an_outage_and_checks_follow_the_clock() {
    let client = cloudwatch_from_env().await.unwrap();
    let standin = MetadataStandIn::start(Reply::Json(fixture("fargate-service-synchronized.json")))
        .await
        .unwrap();
    let bridge: SocketAddr = std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH")
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = OutageProxy::start(bridge).await.unwrap();
    let namespace = format!("Test/ClockMonitor{}", std::process::id());
    let listen = format!("127.0.0.1:{}", free_port());
    let started = chrono::Utc::now().timestamp();
    let mut monitor = Running(Some(
        Command::new(BINARY)
            .args([
                "run",
                // The clock job alone: the image report's metadata reads would count among the samples
                // (tests/infra/test_sidecar_report.py tests the report).
                "--no-image-report",
                "--interval",
                "1s",
                "--namespace",
                &namespace,
                "--listen",
                &listen,
                "--per-task-metrics",
                "--max-sample-age",
                "300ms",
                "--timeout",
                "500ms",
                "--retries",
                "1",
            ])
            .env("ECS_CONTAINER_METADATA_URI_V4", &standin.endpoint)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", format!("http://{}", proxy.address))
            // One attempt per flush: the monitor's own buffer, not the SDK, carries points over the outage.
            .env("AWS_MAX_ATTEMPTS", "1")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Phase 1, interval samples only: up, CloudWatch cut off, up again.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    proxy.set_down(true);
    let outage = (chrono::Utc::now().timestamp() + 1, chrono::Utc::now().timestamp() + 3);
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.set_down(false);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Every answer of the first fixture was an interval sample: each must be in CloudWatch once.
    let first_fixture_samples = standin.set(Reply::Json(fixture("fargate-container-level.json")));

    // Phase 2, on demand. ClockErrorBound 1.204 ms, synchronized.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = get_clock(&listen, "?max_error_ms=2").await;
    assert_eq!(
        (status, body["status"].as_str(), body["withinBound"].as_bool()),
        (200, Some("SYNCHRONIZED"), Some(true)),
        "{body}"
    );
    assert_eq!(body["clockErrorBoundMs"], 1.204);
    let (status, body) = get_clock(&listen, "?max_error_ms=1").await;
    assert_eq!((status, body["withinBound"].as_bool()), (503, Some(false)), "{body}");
    assert_eq!(get_clock(&listen, "?max_error_ms=soon").await.0, 400);
    assert_eq!((check(&listen, "2"), check(&listen, "1")), (0, 1));
    standin.set(Reply::Json(fixture("fargate-not-synchronized.json")));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = get_clock(&listen, "?max_error_ms=100").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("NOT_SYNCHRONIZED")),
        "{body}"
    );
    assert_eq!(check(&listen, "100"), 1);
    // No ClockDrift (EC2): unavailable, and interval samples publish no bound for it.
    standin.set(Reply::Json(fixture("ec2-no-clock-drift.json")));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = get_clock(&listen, "").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("UNAVAILABLE")), "{body}");
    // The endpoint stops answering: reads time out, and the errors are counted under the last task.
    standin.set(Reply::Hang);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = get_clock(&listen, "").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("ERROR")), "{body}");
    assert!(
        body["reason"].as_str().unwrap_or_default().contains("within 500 ms"),
        "{body}"
    );
    // No monitor on that port and no metadata endpoint: `check` fails closed.
    assert_eq!(check(&format!("127.0.0.1:{}", free_port()), "1"), 1);

    // SIGTERM: a last flush, then exit 0.
    let child = monitor.0.take().unwrap();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let logs = String::from_utf8_lossy(&exit.stderr).into_owned();
    assert!(exit.status.success(), "{logs}");
    assert!(logs.contains("final flush done"), "{logs}");

    // What CloudWatch holds for the first fixture: each interval sample once, under each dimension
    // set, the outage's samples at the seconds they were taken.
    let window = (started - 1, chrono::Utc::now().timestamp() + 1);
    let bound = ("ClockErrorBound", StandardUnit::Milliseconds, "SampleCount");
    let cluster = ("ClusterName", "trading-prod");
    let by_family = [cluster, ("TaskFamily", "order-matcher")];
    let counts = points(&client, &namespace, bound.clone(), &by_family, window).await;
    assert_eq!(total(&counts), first_fixture_samples, "{counts:?}");
    let during_outage = counts.iter().filter(|(t, _)| (outage.0..=outage.1).contains(t)).count();
    assert!(
        during_outage >= 2,
        "seconds with samples during the outage {outage:?}: {counts:?}"
    );
    let by_service = [cluster, ("ServiceName", "order-matcher-svc")];
    let by_task = [
        cluster,
        ("TaskFamily", "order-matcher"),
        ("TaskId", "5f1c0e8a9b2d4c7e8f0a1b2c3d4e5f60"),
    ];
    for dims in [&by_service[..], &by_task[..]] {
        assert_eq!(
            total(&points(&client, &namespace, bound.clone(), dims, window).await),
            first_fixture_samples,
            "{dims:?}"
        );
    }
    let values = points(
        &client,
        &namespace,
        ("ClockErrorBound", StandardUnit::Milliseconds, "Maximum"),
        &by_family,
        window,
    )
    .await;
    assert!(values.iter().all(|(_, v)| *v == 0.382), "{values:?}");
    // The unit is part of the metric: asked in seconds, nothing.
    let seconds = points(
        &client,
        &namespace,
        ("ClockErrorBound", StandardUnit::Seconds, "SampleCount"),
        &by_family,
        window,
    )
    .await;
    assert_eq!(total(&seconds), 0, "{seconds:?}");
    let synchronized = points(
        &client,
        &namespace,
        ("ClockSynchronized", StandardUnit::None, "Minimum"),
        &by_family,
        window,
    )
    .await;
    assert!(
        !synchronized.is_empty() && synchronized.iter().all(|(_, v)| *v == 1.0),
        "{synchronized:?}"
    );
    // The fixture's reference is 2026-11-22T08:14:05Z (1,795,335,245 s): age = sample time minus that.
    let ages = points(
        &client,
        &namespace,
        ("ReferenceAge", StandardUnit::Seconds, "Maximum"),
        &by_family,
        window,
    )
    .await;
    assert!(!ages.is_empty());
    for (at, age) in &ages {
        assert!((age - (at - 1_795_335_245) as f64).abs() <= 1.0, "{at}: {age}");
    }
    let errors = points(
        &client,
        &namespace,
        ("MetadataErrors", StandardUnit::Count, "Maximum"),
        &by_family,
        window,
    )
    .await;
    assert!(
        !errors.is_empty() && errors.iter().all(|(_, v)| *v == 0.0),
        "{errors:?}"
    );
    // The EC2 task: reads counted, no bound ever; its timeouts counted as MetadataErrors 1.
    let ec2 = [("ClusterName", "reporting"), ("TaskFamily", "nightly-report")];
    assert_eq!(
        total(&points(&client, &namespace, bound.clone(), &ec2, window).await),
        0
    );
    let ec2_errors = points(
        &client,
        &namespace,
        ("MetadataErrors", StandardUnit::Count, "Maximum"),
        &ec2,
        window,
    )
    .await;
    assert!(ec2_errors.iter().any(|(_, v)| *v == 1.0), "{ec2_errors:?}");
    assert!(ec2_errors.iter().any(|(_, v)| *v == 0.0), "{ec2_errors:?}");
}

/// `check` with no monitor listening reads the metadata itself: every response, the published ones in
/// ../shared/task-metadata (when present), the project's fixtures and faults, served by the stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_each_response_and_fault_from_the_stand_in() {
    let standin = MetadataStandIn::start(Reply::Status(500)).await.unwrap();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/task-metadata");
    // (reply, exit code of `check --max-error-ms 1`, status, ClockErrorBound)
    let mut cases: Vec<(Reply, i32, &str, Option<f64>)> = vec![
        (
            Reply::Json(fixture("fargate-service-synchronized.json")),
            0,
            "SYNCHRONIZED",
            Some(0.382),
        ),
        (
            Reply::Json(fixture("fargate-container-level.json")),
            1,
            "SYNCHRONIZED",
            Some(1.204),
        ),
        (
            Reply::Json(fixture("fargate-not-synchronized.json")),
            1,
            "NOT_SYNCHRONIZED",
            Some(12.75),
        ),
        (Reply::Json(fixture("ec2-no-clock-drift.json")), 1, "UNAVAILABLE", None),
        (
            Reply::Json(b"{\"Cluster\": \"c\", \"TaskARN\": ".to_vec()),
            1,
            "ERROR",
            None,
        ),
        (Reply::Status(500), 1, "ERROR", None),
        (Reply::Status(404), 1, "ERROR", None),
        (Reply::Hang, 1, "ERROR", None),
    ];
    if shared.exists() {
        for (name, bound) in [
            ("awsdocs-fargate-v4-task-example-2023.json", 0.446931),
            (
                "awsdocs-fargate-v4-task-example-2021-containerlevel-clockdrift.json",
                0.5458234999999999,
            ),
        ] {
            let body = std::fs::read(shared.join(name)).unwrap();
            cases.push((Reply::Json(body), 0, "SYNCHRONIZED", Some(bound)));
        }
    }
    let unused = format!("127.0.0.1:{}", free_port());
    for (reply, code, status, bound) in cases {
        let what = format!("{reply:?}").chars().take(60).collect::<String>();
        standin.set(reply);
        let output = Command::new(BINARY)
            .args([
                "check",
                "--max-error-ms",
                "1",
                "--listen",
                &unused,
                "--timeout",
                "300ms",
            ])
            .env("ECS_CONTAINER_METADATA_URI_V4", &standin.endpoint)
            .output()
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(code), "{what}: {answer}");
        assert_eq!(answer["status"], status, "{what}: {answer}");
        assert_eq!(answer["clockErrorBoundMs"].as_f64(), bound, "{what}: {answer}");
    }
}

/// The example task definition's sidecar is not essential, and its command and health check are
/// arguments this binary accepts.
#[test]
fn the_example_task_definition_runs_this_binary() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/task-sidecar-task.json");
    let task: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let containers = task["containerDefinitions"].as_array().unwrap();
    let sidecar = containers.iter().find(|c| c["name"] == "task-sidecar").unwrap();
    assert_eq!(sidecar["essential"], false);
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let health = strings(&sidecar["healthCheck"]["command"]);
    assert_eq!(health[..3], ["CMD", "/task-sidecar", "check"]);
    // Arguments clap cannot parse fail before --help is reached.
    for args in [strings(&sidecar["command"]), health[2..].to_vec()] {
        let status = Command::new(BINARY)
            .args(&args)
            .arg("--help")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
    }
}

/// The one-shot example: a non-essential container that only reports, leaving itself out.
#[test]
fn the_one_shot_example_reports_and_leaves_itself_out() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/image-report-task.json");
    let task: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let containers = task["containerDefinitions"].as_array().unwrap();
    let report = containers.iter().find(|c| c["name"] == "image-report").unwrap();
    assert_eq!(report["essential"], false, "a report that fails must not stop the task");
    let args: Vec<&str> = report["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(args[..3], ["report", "--exclude-container", "image-report"]);
    let status = Command::new(BINARY)
        .args(&args)
        .arg("--help")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{args:?}");
}
