//! The project's own fixtures and the published samples, through the real handler into DynamoDB
//! on the local stack. Expected durations are worked out by hand from each file's timestamps.

use serde_json::{Value, json};
use task_events::Outcome;
use task_timing_tests::harness::{TestStack, fixture, published_samples};
use timing_domain::record::TaskRecord;

/// The phases, in order: provisioning, imagePull, containerStart, startup, run, shutdown, lifetime.
type Phases = [Option<f64>; 7];

fn phases(record: &TaskRecord) -> Phases {
    [
        record.provisioning_seconds,
        record.image_pull_seconds,
        record.container_start_seconds,
        record.startup_seconds,
        record.run_seconds,
        record.shutdown_seconds,
        record.lifetime_seconds,
    ]
}

async fn stored(stack: &TestStack, event: &Value) -> TaskRecord {
    let arn = event["detail"]["taskArn"].as_str().unwrap();
    stack.store.get(arn).await.unwrap().expect("record written").0
}

#[tokio::test]
async fn running_then_stopped_fargate_task() {
    let stack = TestStack::new().await.unwrap();
    let running = fixture("web-soci-running.json");
    let response = stack.deliver(&running).await.unwrap();
    assert_eq!(response.outcome, Outcome::Written);
    let record = stored(&stack, &running).await;
    // 09:15:03.861-09:14:52.117, 09:15:06.04-09:15:03.861, 09:15:10-09:15:06.04, 09:15:10-09:14:52.117
    assert_eq!(
        phases(&record),
        [Some(11.744), Some(2.179), Some(3.96), Some(17.883), None, None, None]
    );
    assert_eq!(
        (record.family.as_str(), record.revision, record.cluster_name.as_str()),
        ("checkout-soci", 14, "shop-prod")
    );

    let stopped = fixture("web-soci-stopped.json");
    stack.deliver(&stopped).await.unwrap();
    let record = stored(&stack, &stopped).await;
    // run: 10:02:30.982-09:15:10 (executionStoppedAt); shutdown: 10:03:02.25-10:02:31.5; lifetime: 10:03:02.25-09:14:52.117
    assert_eq!(
        phases(&record),
        [
            Some(11.744),
            Some(2.179),
            Some(3.96),
            Some(17.883),
            Some(2840.982),
            Some(30.75),
            Some(2890.133)
        ]
    );
    assert_eq!((record.version, record.last_status.as_deref()), (6, Some("STOPPED")));
    assert_eq!(record.containers[0].exit_code, Some(0));

    // The RUNNING event again, late: stale, nothing changes, nothing is emitted.
    let before = stack.documents().len();
    assert_eq!(stack.deliver(&running).await.unwrap().outcome, Outcome::Stale);
    assert_eq!(stored(&stack, &stopped).await, record);
    assert_eq!(stack.documents().len(), before);

    let emissions = stack.emissions();
    assert_eq!(
        emissions.len(),
        9,
        "7 phases + TasksStarted + TasksStopped: {emissions:?}"
    );
    assert!(emissions.values().all(|values| values.len() == 1));
}

#[tokio::test]
async fn failed_start_anomaly_ec2_and_spot_notice() {
    let stack = TestStack::new().await.unwrap();
    let cases: [(&str, Phases, &[&str]); 4] = [
        // 11:00:12.25-11:00:00.5, 11:00:40-11:00:12.25, no start, shutdown 11:00:55.9-11:00:41.1, lifetime 11:00:55.9-11:00:00.5
        (
            "failed-to-start.json",
            [Some(11.75), Some(27.75), None, None, None, Some(14.8), Some(55.4)],
            &[
                "ImagePullTime",
                "ProvisioningTime",
                "ShutdownTime",
                "TaskLifetime",
                "TasksFailedToStart",
                "TasksStopped",
            ],
        ),
        // pull 12:00:09.25-12:00:09.5 is negative; containerStart 12:00:12-12:00:09.25
        (
            "clock-skew-anomaly.json",
            [Some(9.5), None, Some(2.75), Some(12.0), None, None, None],
            &[
                "ContainerStartTime",
                "ProvisioningTime",
                "TaskStartupTime",
                "TasksStarted",
                "TimestampAnomalies/imagePull",
            ],
        ),
        // 22:41:07.08-22:41:05.7
        (
            "ec2-old-arn-running.json",
            [None, None, None, Some(1.38), None, None, None],
            &["TaskStartupTime", "TasksStarted"],
        ),
        // 13:00:10-13:00, 13:00:35.125-13:00:10, 13:00:37.5-13:00:35.125, 13:00:37.5-13:00; the notice is not a stop
        (
            "spot-termination-notice.json",
            [Some(10.0), Some(25.125), Some(2.375), Some(37.5), None, None, None],
            &[
                "ContainerStartTime",
                "ImagePullTime",
                "ProvisioningTime",
                "TaskStartupTime",
                "TasksStarted",
            ],
        ),
    ];
    for (name, expected, metrics) in cases {
        let event = fixture(name);
        let response = stack.deliver(&event).await.unwrap();
        assert_eq!(response.metrics_emitted, metrics.to_vec(), "{name}");
        assert_eq!(phases(&stored(&stack, &event).await), expected, "{name}");
    }
    let failed = stored(&stack, &fixture("failed-to-start.json")).await;
    assert!(failed.failed_to_start);
    let skewed = stored(&stack, &fixture("clock-skew-anomaly.json")).await;
    assert_eq!(skewed.timestamp_anomalies.get("imagePull"), Some(&-0.25));
    let ec2 = stored(&stack, &fixture("ec2-old-arn-running.json")).await;
    assert_eq!(
        (
            ec2.task_id.as_str(),
            ec2.cluster_name.as_str(),
            ec2.launch_type.as_deref()
        ),
        ("5e0d6c1b-2a39-4f48-b7c6-d5e4f3a2b190", "batch", None)
    );
    let anomaly_document = stack
        .documents()
        .into_iter()
        .find(|d| d.get("TimestampAnomalies").is_some())
        .unwrap();
    assert_eq!(anomaly_document["TimestampAnomalies"], json!(1));
}

#[tokio::test]
async fn rejected_events_write_nothing() {
    let stack = TestStack::new().await.unwrap();
    let invalid = stack
        .deliver(&fixture("invalid-version-as-string.json"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        invalid.contains("`detail.version`") && invalid.contains("invalid type: string \"3\""),
        "{invalid}"
    );
    let other = stack
        .deliver(&fixture("not-an-ecs-event.json"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        other.contains("not an ECS task state change") && other.contains("aws.ec2"),
        "{other}"
    );
    let arn = fixture("invalid-version-as-string.json")["detail"]["taskArn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(stack.store.get(&arn).await.unwrap().is_none());
    assert!(stack.documents().is_empty());
}

/// Published samples (../shared/ecs-events), with durations worked out by hand.
#[tokio::test]
async fn published_samples_replay() {
    let Some(samples) = published_samples() else {
        eprintln!("../shared/ecs-events not found: published samples skipped");
        return;
    };
    let stack = TestStack::new().await.unwrap();
    let expected: [(&str, Phases); 7] = [
        // 17:57:52.103-17:57:34.402, 3 s pull, 3 s container start, 17:57:58.103-17:57:34.402
        (
            "awsdocs-ecs-developer-guide-1.json",
            [Some(17.701), Some(3.0), Some(3.0), Some(23.701), None, None, None],
        ),
        // EC2, no pull timestamps: 16:41:06.8-16:41:05.702
        (
            "awsdocs-ecs-developer-guide-2.json",
            [None, None, None, Some(1.098), None, None, None],
        ),
        ("newrelic-nri-flex-1.json", [None; 7]),
        // 14:19:27.907-14:19:14.98, 14:19:32.427-14:19:27.907, 14:19:34.52-14:19:32.427, 14:19:34.52-14:19:14.98
        (
            "arkime-aws-aio-1.json",
            [Some(12.927), Some(4.52), Some(2.093), Some(19.54), None, None, None],
        ),
        // + run 15:28:48.391-14:19:34.52, shutdown 15:29:11.177-15:28:04.974, lifetime 15:29:11.177-14:19:14.98
        (
            "arkime-aws-aio-2.json",
            [
                Some(12.927),
                Some(4.52),
                Some(2.093),
                Some(19.54),
                Some(4153.871),
                Some(66.203),
                Some(4196.197),
            ],
        ),
        // run ends at executionStoppedAt 18:06:23Z (no fraction), not stoppingAt 18:06:23.679
        (
            "cisagov-crossfeed-1.json",
            [
                Some(20.096),
                Some(7.0),
                Some(4.0),
                Some(31.096),
                Some(2.306),
                Some(23.55),
                Some(57.631),
            ],
        ),
        // detail only (wrapped below): 08:25:20.296-08:25:12.083, 0.053 s pull, ..., run 08:53:13.734-08:25:21.073
        (
            "airflow-dag-ec2-capacityprovider-detail-only-1.json",
            [
                Some(8.213),
                Some(0.053),
                Some(0.724),
                Some(8.99),
                Some(1672.661),
                Some(0.0),
                Some(1681.671),
            ],
        ),
    ];
    for (name, phases_expected) in expected {
        let mut event = samples
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from ../shared/ecs-events"))
            .clone();
        if event.get("detail").is_none() {
            event = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": event});
        }
        stack
            .deliver(&event)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(phases(&stored(&stack, &event).await), phases_expected, "{name}");
    }
    let old_format = stored(&stack, &samples["awsdocs-ecs-developer-guide-2.json"]).await;
    assert_eq!(
        (old_format.task_id.as_str(), old_format.cluster_name.as_str()),
        ("b99d40b3-5176-4f71-9a52-9dbd6f1cebef", "default")
    );
    let ec2 = stored(
        &stack,
        &json!({"detail": samples["airflow-dag-ec2-capacityprovider-detail-only-1.json"]}),
    )
    .await;
    assert_eq!(
        (ec2.family.as_str(), ec2.revision, ec2.capacity_provider_name.as_deref()),
        ("engine", 51, Some("skynet-ecs_provider"))
    );
    // Every sample file is covered above (a new one must be added with its expectations).
    assert_eq!(samples.len(), expected.len(), "samples: {:?}", samples.keys());
}
