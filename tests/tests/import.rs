//! task-import against moto's CloudWatch Logs: a log group in the SOCI toolbox sample's format (the
//! EventBridge JSON of each event as a message, over several streams), full lifecycles and the RUNNING-only
//! events that sample's rule forwards, bad lines, many pages; stopped and resumed; imported twice.

use std::collections::BTreeMap;

use fastrand::Rng;
use serde_json::{Value, json};
use task_events::{Config, Handler};
use task_import::{CollectingSink, ImportOptions, Importer, MetricsTarget};
use task_timing_tests::generator::{Lifecycle, Profile, lifecycle};
use task_timing_tests::harness::TestStack;
use task_timing_tests::local::unique_name;
use task_timing_tests::log_group::{event_millis, logs_from_env, write_group};

const DAY: i64 = 86_400_000;

fn import_handler(stack: &TestStack) -> Handler<CollectingSink> {
    let config = Config {
        table_name: stack.table.clone(),
        metrics_namespace: "Test/TaskTiming".into(),
        retention_days: 90,
        slow_startup_seconds: None,
        lazy_loading_families: Vec::new(),
    };
    Handler::new(stack.store.clone(), config, CollectingSink::default())
}

/// The sample's rule forwards RUNNING events whose desiredStatus is RUNNING, and nothing else.
fn running_only(task: &Lifecycle) -> Vec<Value> {
    task.events
        .iter()
        .filter(|e| e["detail"]["lastStatus"] == "RUNNING" && e["detail"]["desiredStatus"] == "RUNNING")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_log_group_imports_once_resumes_where_it_stopped_and_keeps_what_it_rejects() {
    let stack = TestStack::new().await.unwrap();
    let logs = logs_from_env().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    // Twelve tasks logged in full and twelve by the sample's RUNNING-only rule, created over the last 12
    // days (CloudWatch Logs takes events at most 14 days old), some events logged twice.
    let mut rng = Rng::with_seed(21);
    let (mut full, mut partial) = (Vec::new(), Vec::new());
    for index in 0..24 {
        let created = now - 12 * DAY + index * DAY / 2;
        let task = lifecycle(&mut rng, &Profile::without_index("import-web", 3), created);
        if index % 2 == 0 {
            full.push(task)
        } else {
            partial.push(task)
        }
    }
    let mut messages: Vec<(i64, String)> = Vec::new();
    for task in &full {
        for (index, event) in task.events.iter().enumerate() {
            messages.push((event_millis(event), event.to_string()));
            if index % 3 == 0 {
                messages.push((event_millis(event), event.to_string()));
            }
        }
    }
    for task in &partial {
        for event in running_only(task) {
            messages.push((event_millis(&event), event.to_string()));
        }
    }
    // What else a log group holds: not JSON, a version as a string, another service's event.
    let bad = [
        "START RequestId: 5c8a not an event".to_owned(),
        json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": {"taskArn": "x", "version": "3"}})
            .to_string(),
        json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}).to_string(),
    ];
    for (index, text) in bad.iter().enumerate() {
        messages.push((now - DAY + index as i64, text.clone()));
    }
    let group = unique_name("/ecs/cluster/events/shop-prod");
    write_group(&logs, &group, &messages, 3).await.unwrap();
    let metrics_group = unique_name("/aws/lambda/test-task-events");
    logs.create_log_group()
        .log_group_name(&metrics_group)
        .send()
        .await
        .unwrap();

    let dir = std::env::temp_dir().join(unique_name("task-import"));
    std::fs::create_dir_all(&dir).unwrap();
    let handler = import_handler(&stack);
    // Metrics of events older than 5 days are not sent (as CloudWatch would refuse those past 14 days).
    let cutoff = now - 5 * DAY;
    let options = |checkpoint: &str, max_pages| ImportOptions {
        log_group: group.clone(),
        from: None,
        to: None,
        page_size: 7,
        metrics: MetricsTarget::LogGroup {
            group: metrics_group.clone(),
            stream: checkpoint.to_owned(),
        },
        checkpoint: Some(dir.join(format!("{checkpoint}.json"))),
        rejected: Some(dir.join("rejected.jsonl")),
        max_pages,
        metrics_cutoff: cutoff,
        concurrency: 4,
    };
    let run = |options: ImportOptions| {
        let (logs, handler) = (&logs, &handler);
        async move {
            let importer = Importer { logs, handler, options };
            importer.run(|_, _| {}).await.unwrap()
        }
    };
    // Stopped after 3 pages, then resumed from its checkpoint.
    let first = run(options("first", Some(3))).await;
    assert!(!first.complete);
    assert_eq!((first.counts.pages, first.counts.read), (3, 21));
    assert!(dir.join("first.json").exists());
    let done = run(options("first", None)).await;
    assert!(done.complete);
    assert!(
        !dir.join("first.json").exists(),
        "a finished import leaves no checkpoint"
    );
    let counts = done.counts;
    let total = messages.len() as u64;
    assert_eq!(counts.read, total, "every message read once: {counts:?}");
    assert_eq!(counts.pages, total.div_ceil(7));
    assert_eq!(counts.rejected, 3);
    assert_eq!(
        counts.written + counts.duplicate + counts.stale + counts.rejected,
        total
    );

    // Each record is the one task-events keeps of the newest event the group holds.
    for task in full.iter().chain(&partial) {
        let (record, _) = stack.store.get(&task.truth.task_arn).await.unwrap().unwrap();
        let is_full = full.iter().any(|t| t.truth.task_arn == task.truth.task_arn);
        let expected_version = if is_full { task.truth.final_version } else { 3 };
        assert_eq!(record.version, expected_version, "{}", task.truth.task_arn);
        if !task.truth.failed_to_start {
            let startup = task.truth.startup().map(|millis| millis as f64 / 1000.0);
            assert_eq!(record.startup_seconds, startup, "{}", task.truth.task_arn);
        }
        assert_eq!(record.is_stopped(), is_full, "{}", task.truth.task_arn);
    }
    // The rejected lines, each with its reason.
    let rejected: Vec<Value> = std::fs::read_to_string(dir.join("rejected.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rejected.len(), 3);
    let reasons: BTreeMap<&str, &str> = rejected
        .iter()
        .map(|r| (r["message"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert!(reasons[bad[0].as_str()].contains("invalid"), "{reasons:?}");
    assert!(reasons[bad[1].as_str()].contains("detail.version"), "{reasons:?}");
    assert!(reasons[bad[2].as_str()].contains("detail-type"), "{reasons:?}");

    // Metrics: sent for the events after the cutoff, counted for those before; each document in the group.
    assert!(counts.metrics_sent > 0 && counts.metrics_too_old > 0, "{counts:?}");
    let mut documents = Vec::new();
    let mut token = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(&metrics_group)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        documents.extend(
            page.events()
                .iter()
                .map(|e| (e.timestamp().unwrap_or(0), e.message().unwrap_or("").to_owned())),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(documents.len() as u64, counts.metrics_sent);
    for (timestamp, message) in &documents {
        let document: Value = serde_json::from_str(message).unwrap();
        assert_eq!(document["_aws"]["Timestamp"].as_i64(), Some(*timestamp));
        assert!(*timestamp >= cutoff);
    }

    // Imported again: nothing new, nothing sent.
    let again = run(options("again", None)).await;
    assert_eq!(
        (
            again.counts.written,
            again.counts.rejected,
            again.counts.metrics_sent,
            again.counts.read
        ),
        (0, 3, 0, total)
    );
    // The stream builds the rollups from the imported records, every task once.
    stack.drain().await.unwrap();
    let summary = stack.summary(Default::default(), None);
    let request = json!({"query": "summary", "family": "import-web", "groupBy": [], "phases": ["startup"],
        "from": chrono::DateTime::from_timestamp_millis(now - 13 * DAY).unwrap().to_rfc3339(),
        "to": chrono::DateTime::from_timestamp_millis(now + DAY).unwrap().to_rfc3339()});
    let answer = serde_json::to_value(summary.handle(request.to_string().as_bytes()).await.unwrap()).unwrap();
    assert_eq!(answer["groups"][0]["tasks"], 24, "{answer}");
    std::fs::remove_dir_all(&dir).unwrap();
}
