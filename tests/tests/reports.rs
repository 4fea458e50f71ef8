//! The sidecar's image report merged with the state changes: in every position among them, once or
//! twice, it leaves the same record, emits each metric by snapshotter once, and moves the task's rollups
//! into its snapshotter's series exactly once.

use std::collections::BTreeMap;

use fastrand::Rng;
use serde_json::{Value, json};
use task_timing_tests::generator::{Lifecycle, Profile, lifecycle};
use task_timing_tests::harness::{TestStack, with_task_suffix};
use timing_domain::report::{ReadySignal, Snapshotter};
use timing_domain::timestamp::Timestamp;
use timing_domain::timing::Phase;

const CREATED_AT: i64 = 1_795_000_000_000; // 2026-11-18T11:06:40Z (date -u -d @1795000000)

/// A task of the indexed profile that started, with its report's snapshotter set to `snapshotter`.
fn started_task(seed: u64, family: &str, snapshotter: &str) -> Lifecycle {
    let mut rng = Rng::with_seed(seed);
    let task = loop {
        let task = lifecycle(&mut rng, &Profile::with_index(family, 3), CREATED_AT);
        if !task.truth.failed_to_start {
            break task;
        }
    };
    let mut task = task;
    if let Some(report) = task.report.as_mut() {
        report["detail"]["containers"][0]["snapshotter"] = json!(snapshotter);
    }
    task
}

/// By-snapshotter emissions, by (task, metric): their values and the snapshotter they went out under.
fn snapshotter_emissions(stack: &TestStack) -> BTreeMap<(String, String), Vec<(f64, String)>> {
    let mut emissions: BTreeMap<(String, String), Vec<(f64, String)>> = BTreeMap::new();
    for document in stack.documents().into_iter().filter(|d| d.get("Snapshotter").is_some()) {
        let task = document["taskArn"].as_str().unwrap().to_owned();
        for directive in document["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap().to_owned();
                let value = document[&name].as_f64().unwrap();
                let by = document["Snapshotter"].as_str().unwrap().to_owned();
                emissions.entry((task.clone(), name)).or_default().push((value, by));
            }
        }
    }
    emissions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_report_anywhere_among_the_state_changes_once_or_twice_merges_once() {
    let stack = TestStack::new().await.unwrap();
    let task = started_task(5, "web-soci", "soci");
    let report = task.report.clone().unwrap();
    let (events, last) = (task.events.len(), task.events.len() - 1);
    let mut cases = 0;
    for reversed in [false, true] {
        for position in 0..=events {
            for twice in [false, true] {
                let suffix = format!("-r{}-{position}-{}", u8::from(reversed), u8::from(twice));
                let mut stream: Vec<Value> = task.events.clone();
                if reversed {
                    stream.reverse();
                }
                stream.insert(position, report.clone());
                if twice {
                    stream.insert((position + 3) % stream.len(), report.clone());
                }
                for event in stream {
                    stack.deliver(&with_task_suffix(event, &suffix)).await.unwrap();
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 2 * (events + 1) * 2);

    // The reference: the newest state change alone, then the report.
    stack
        .deliver(&with_task_suffix(task.events[last].clone(), "-ref"))
        .await
        .unwrap();
    stack.deliver(&with_task_suffix(report.clone(), "-ref")).await.unwrap();
    let arn = |suffix: &str| format!("{}{suffix}", task.truth.task_arn);
    let (reference, _) = stack.store.get(&arn("-ref")).await.unwrap().unwrap();
    assert_eq!(reference.snapshotter, Some(Snapshotter::Soci));
    assert_eq!(
        reference.version, task.truth.final_version,
        "the report changed no version"
    );
    let containers: Vec<&str> = reference.reported_containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(containers, ["app", "task-sidecar"]);
    let pulled: Vec<(Option<&str>, bool)> = reference
        .reported_containers
        .iter()
        .map(|c| (c.snapshotter.as_deref(), c.excluded))
        .collect();
    assert_eq!(pulled, [(Some("soci"), false), (Some("overlayfs"), true)]);
    // The phases to ready, against the generator's durations (createdAt + start-up + warm-up = readyAt).
    let warm_up_millis = task.truth.warm_up.unwrap();
    let ready_millis = task.truth.startup().unwrap() + warm_up_millis;
    assert_eq!(reference.ready_at.map(|t| t.millis()), Some(CREATED_AT + ready_millis));
    let (ready, warm_up) = (ready_millis as f64 / 1000.0, warm_up_millis as f64 / 1000.0);
    assert_eq!(reference.phase_seconds(Phase::Ready), Some(ready));
    assert_eq!(reference.phase_seconds(Phase::WarmUp), Some(warm_up));

    let standard = stack.emissions();
    let by_snapshotter = snapshotter_emissions(&stack);
    let pull = task.truth.image_pull.unwrap() as f64 / 1000.0;
    let startup = task.truth.startup().unwrap() as f64 / 1000.0;
    for reversed in [0, 1] {
        for position in 0..=events {
            for twice in [0, 1] {
                let task_arn = arn(&format!("-r{reversed}-{position}-{twice}"));
                let (record, _) = stack.store.get(&task_arn).await.unwrap().unwrap();
                assert_eq!(
                    (
                        record.snapshotter,
                        &record.reported_containers,
                        record.version,
                        record.startup_seconds,
                        record.ready_at
                    ),
                    (
                        reference.snapshotter,
                        &reference.reported_containers,
                        reference.version,
                        reference.startup_seconds,
                        reference.ready_at
                    ),
                    "{task_arn}"
                );
                // Each metric once: the state changes' own, and by snapshotter with the generator's values.
                assert!(
                    standard
                        .iter()
                        .filter(|((t, _), _)| *t == task_arn)
                        .all(|(_, v)| v.len() == 1),
                    "{task_arn}"
                );
                // The phases to ready by family and revision: once, with the generator's values,
                // whichever write came second.
                let standard_of = |metric: &str| standard.get(&(task_arn.clone(), metric.to_owned())).cloned();
                assert_eq!(standard_of("TaskReadyTime"), Some(vec![ready]), "{task_arn}");
                assert_eq!(standard_of("WarmUpTime"), Some(vec![warm_up]), "{task_arn}");
                let mine = |metric: &str| by_snapshotter.get(&(task_arn.clone(), metric.to_owned())).cloned();
                let soci = |value: f64| Some(vec![(value, "soci".to_owned())]);
                assert_eq!(mine("ImagePullTime"), soci(pull), "{task_arn}");
                assert_eq!(mine("TaskStartupTime"), soci(startup), "{task_arn}");
                assert_eq!(mine("TasksBySnapshotter"), soci(1.0), "{task_arn}");
                assert_eq!(mine("TaskReadyTime"), soci(ready), "{task_arn}");
                assert_eq!(mine("WarmUpTime"), soci(warm_up), "{task_arn}");
                assert_eq!(mine("LazyLoadingFallbacks"), None, "web-soci is not a listed family");
            }
        }
    }

    // The rollups: every task in the soci series once, none left in the unreported one.
    stack.drain().await.unwrap();

    let handler = stack.summary(Default::default(), None);
    let request = json!({"query": "summary", "family": "web-soci", "groupBy": ["snapshotter"],
        "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z", "phases": ["startup", "ready", "warmUp"]});
    let answer = handler.handle(request.to_string().as_bytes()).await.unwrap();
    let answer = serde_json::to_value(answer).unwrap();
    // Every task once in each phase to ready, all with the same value: the mean is that value.
    let phases = answer["groups"][0]["phases"].as_array().unwrap();
    for (stats, value) in phases[1..].iter().zip([ready, warm_up]) {
        assert_eq!(stats["count"], cases + 1, "{answer}");
        assert_eq!(stats["mean"].as_f64(), Some(value), "{answer}");
    }
    let groups: Vec<(String, u64)> = answer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"]["snapshotter"].as_str().unwrap().to_owned(),
                g["tasks"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("soci".to_owned(), cases as u64 + 1)], "{answer}");
    let filtered = json!({"query": "summary", "family": "web-soci", "snapshotter": "unreported",
        "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z"});
    let answer = serde_json::to_value(handler.handle(filtered.to_string().as_bytes()).await.unwrap()).unwrap();
    assert_eq!(answer["groups"], json!([]), "{answer}");
}

#[tokio::test]
async fn a_fallback_of_a_listed_family_is_counted_and_a_bad_report_writes_nothing() {
    let stack = TestStack::new().await.unwrap();
    // The harness lists checkout-soci as expected to lazy-load.
    let task = started_task(6, "checkout-soci", "overlayfs");
    let report = task.report.clone().unwrap();
    let answer = stack.deliver(&report).await.unwrap();
    assert_eq!(answer.snapshotter, Some(Snapshotter::Overlayfs));
    assert_eq!(answer.metrics_emitted, ["TasksBySnapshotter", "LazyLoadingFallbacks"]);
    let again = stack.deliver(&report).await.unwrap();
    assert!(again.metrics_emitted.is_empty(), "a second report emits nothing");
    // Before any state change the item holds only the report: no record yet, and queries do not see it.
    assert!(stack.store.get(&task.truth.task_arn).await.unwrap().is_none());

    let mut bad = report.clone();
    bad["detail"]["taskArn"] = json!("arn:aws:ecs:eu-west-1:123456789012:task/shop-prod/0badreport");
    bad["detail"]["containers"][0]["snapshotter"] = json!("soci lazily");
    let err = stack.deliver(&bad).await.unwrap_err().to_string();
    assert!(err.contains("detail.containers[0].snapshotter"), "{err}");
    let item = stack
        .store
        .client()
        .get_item()
        .table_name(&stack.table)
        .key(
            "taskArn",
            aws_sdk_dynamodb::types::AttributeValue::S(
                "arn:aws:ecs:eu-west-1:123456789012:task/shop-prod/0badreport".into(),
            ),
        )
        .send()
        .await
        .unwrap();
    assert!(item.item.is_none(), "nothing written for a bad report");
}

/// The SVG comparison parses as SVG and draws both groups, named with their counts, under the verdict.
#[tokio::test]
async fn the_svg_comparison_draws_both_groups() {
    let stack = TestStack::new().await.unwrap();
    let (mut lazy, mut whole) = (0, 0);
    for seed in 0..24 {
        let snapshotter = if seed % 3 == 0 { "overlayfs" } else { "soci" };
        let task = started_task(100 + seed, "svg-soci", snapshotter);
        stack.deliver(task.events.last().unwrap()).await.unwrap();
        stack.deliver(task.report.as_ref().unwrap()).await.unwrap();
        if snapshotter == "soci" { lazy += 1 } else { whole += 1 }
    }
    stack.drain().await.unwrap();
    let handler = stack.summary(Default::default(), None);
    // `tasks` by snapshotter: exactly the tasks that reported it, each saying so.
    let listing = json!({"query": "tasks", "family": "svg-soci", "snapshotter": "overlayfs", "limit": 100,
        "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z"});
    let listing = serde_json::to_value(handler.handle(listing.to_string().as_bytes()).await.unwrap()).unwrap();
    assert_eq!(listing["count"], whole, "{listing}");
    let tasks = listing["tasks"].as_array().unwrap();
    assert!(tasks.iter().all(|task| task["snapshotter"] == "overlayfs"), "{listing}");
    for exact in [true, false] {
        let request = json!({"query": "compare", "format": "svg", "exact": exact, "phases": ["imagePull", "startup"],
            "baseline": {"family": "svg-soci", "snapshotter": "overlayfs", "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z"},
            "candidate": {"family": "svg-soci", "snapshotter": "soci", "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z"}});
        let answer = serde_json::to_value(handler.handle(request.to_string().as_bytes()).await.unwrap()).unwrap();
        assert_eq!(
            (&answer["format"], &answer["phase"]),
            (&json!("svg"), &json!("startup"))
        );
        let svg = answer["svg"].as_str().unwrap();
        let document = roxmltree::Document::parse(svg).unwrap_or_else(|err| panic!("{err}: {svg}"));
        assert_eq!(document.root_element().tag_name().name(), "svg");
        let texts: Vec<&str> = document.descendants().filter_map(|node| node.text()).collect();
        let has = |needle: &str| texts.iter().any(|text| text.contains(needle));
        assert!(
            has(&format!("baseline svg-soci (overlayfs): n = {whole}")),
            "exact {exact}: {texts:?}"
        );
        assert!(
            has(&format!("candidate svg-soci (soci): n = {lazy}")),
            "exact {exact}: {texts:?}"
        );
        assert!(has("startup: "), "the title names the phase and its verdict: {texts:?}");
        // One step line per group (the legend's two samples are paths of two points).
        let long_lines = document
            .descendants()
            .filter(|node| node.tag_name().name() == "polyline")
            .filter(|node| {
                node.attribute("points")
                    .is_some_and(|points| points.split(' ').count() >= 2 * whole)
            })
            .count();
        assert_eq!(long_lines, 2, "exact {exact}");
    }
}

/// A write whose answer is lost (applied, then the SDK's attempt times out and it retries): the retry finds
/// its own write and emits what it made due, once. Once for the report's write, once for a state change's
/// write that finds the report.
#[tokio::test]
async fn a_lost_answer_on_either_write_still_emits_each_metric_by_snapshotter_once() {
    use task_timing_tests::faults::{Fault, FaultPlan, dynamodb_with_faults};
    for report_first in [false, true] {
        let plan = FaultPlan {
            rate: 1.0,
            kinds: vec![Fault::LostAnswer],
            outage: None,
            seed: 3,
            limit: 1,
        };
        let (client, counts, switch) = dynamodb_with_faults(plan).await.unwrap();
        switch.set(false);
        let stack = TestStack::with_client(client).await.unwrap();
        let task = started_task(40, "lost-soci", "soci");
        let report = task.report.clone().unwrap();
        let running = task
            .events
            .iter()
            .position(|e| e["detail"]["lastStatus"] == "RUNNING")
            .unwrap();
        // With the report first, RUNNING comes first too, so the write that loses its answer is the task's
        // first. moto (5.2.5) aliases `SET metricsEmittedBefore = if_not_exists(metricsEmitted, …)` to the set
        // that the same request's `ADD metricsEmitted` then grows, where DynamoDB reads every operand from
        // the item as it was: on moto a recovered write over an existing ledger would find nothing due.
        let mut order: Vec<usize> = (0..task.events.len()).collect();
        if report_first {
            stack.deliver(&report).await.unwrap();
            order.retain(|index| *index != running);
            order.insert(0, running);
        }
        for index in order {
            let event = &task.events[index];
            // The write that completes the pair (phases and snapshotter) loses its answer.
            switch.set(index == running && report_first);
            let answer = stack.deliver(event).await.unwrap();
            switch.set(false);
            if index == running && report_first {
                assert!(answer.recovered_write, "the state change's retry found its own write");
            }
            if index == running && !report_first {
                switch.set(true);
                let answer = stack.deliver(&report).await.unwrap();
                switch.set(false);
                assert!(answer.recovered_write, "the report's retry found its own write");
            }
        }
        assert_eq!(counts.injected(Fault::LostAnswer), 1);
        let emitted = snapshotter_emissions(&stack);
        for metric in [
            "ImagePullTime",
            "TaskStartupTime",
            "TasksBySnapshotter",
            "TaskReadyTime",
            "WarmUpTime",
        ] {
            let values = emitted.get(&(task.truth.task_arn.clone(), metric.to_owned()));
            assert_eq!(
                values.map(Vec::len),
                Some(1),
                "{metric}, report first: {report_first}: {emitted:?}"
            );
        }
    }
}

/// Readiness as the report says it, never guessed: none without a signal, none when not ready within the
/// sidecar's bound, and a readyAt before ECS said RUNNING counted as an anomaly, not as a warm-up.
#[tokio::test]
async fn no_signal_or_not_ready_gives_no_phases_to_ready_and_an_early_ready_is_an_anomaly() {
    let stack = TestStack::new().await.unwrap();
    let edits: [(&str, Value); 3] = [
        ("none", Value::Null),
        ("late", json!({"signal": "url"})),
        ("early", json!({"signal": "url", "readyAt": "EARLY"})),
    ];
    let mut arns = BTreeMap::new();
    for (seed, (case, readiness)) in (200..).zip(edits) {
        let task = started_task(seed, "ready-soci", "soci");
        let mut report = task.report.clone().unwrap();
        let started_at =
            Timestamp::parse(task.events.last().unwrap()["detail"]["startedAt"].as_str().unwrap()).unwrap();
        match (&readiness, readiness.get("readyAt")) {
            (Value::Null, _) => {
                report["detail"].as_object_mut().unwrap().remove("readiness");
            }
            (_, None) => report["detail"]["readiness"] = readiness.clone(),
            // 250 ms before startedAt: the URL answered before ECS recorded the task RUNNING.
            (_, Some(_)) => {
                report["detail"]["readiness"] = json!({"signal": "url",
                    "readyAt": Timestamp::from_millis(started_at.millis() - 250).to_string()})
            }
        }
        for event in std::iter::once(&report).chain(&task.events) {
            stack.deliver(event).await.unwrap();
        }
        arns.insert(case, (task.truth.task_arn.clone(), started_at));
    }
    let standard = stack.emissions();
    let by_snapshotter = snapshotter_emissions(&stack);
    for (case, (arn, started_at)) in &arns {
        let (record, _) = stack.store.get(arn).await.unwrap().unwrap();
        let expected_signal = (*case != "none").then_some(ReadySignal::Url);
        let expected_ready = (*case == "early").then(|| Timestamp::from_millis(started_at.millis() - 250));
        assert_eq!(
            (record.ready_signal, record.ready_at),
            (expected_signal, expected_ready),
            "{case}"
        );
        assert_eq!(record.phase_seconds(Phase::WarmUp), None, "{case}");
        assert_eq!(
            record.phase_anomaly(Phase::WarmUp),
            (*case == "early").then_some(-0.25),
            "{case}"
        );
        // Ready (createdAt to readyAt) is still a duration for the early one; nothing for the others.
        let ready = standard.get(&(arn.clone(), "TaskReadyTime".to_owned()));
        assert_eq!(ready.map(Vec::len), (*case == "early").then_some(1), "{case}");
        assert!(
            !standard.contains_key(&(arn.clone(), "WarmUpTime".to_owned())),
            "{case}"
        );
        let not_ready = by_snapshotter.get(&(arn.clone(), "TasksNotReady".to_owned()));
        assert_eq!(not_ready.map(Vec::len), (*case == "late").then_some(1), "{case}");
    }
    stack.drain().await.unwrap();
    let handler = stack.summary(Default::default(), None);
    // From the rollups and from the records alike: the early task's anomaly, the late one not ready.
    for exact in [false, true] {
        let request = json!({"query": "summary", "family": "ready-soci", "phases": ["ready", "warmUp"], "exact": exact,
            "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z"});
        let answer = serde_json::to_value(handler.handle(request.to_string().as_bytes()).await.unwrap()).unwrap();
        let group = &answer["groups"][0];
        assert_eq!(
            (&group["tasks"], &group["timestampAnomalies"], &group["notReady"]),
            (&json!(3), &json!(1), &json!(1)),
            "exact {exact}: {answer}"
        );
        assert_eq!(
            (&group["phases"][0]["count"], &group["phases"][1]["count"]),
            (&json!(1), &json!(0)),
            "exact {exact}: {answer}"
        );
    }
    // `tasks` shows what the report said.
    let listing = json!({"query": "tasks", "family": "ready-soci", "limit": 10,
        "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z"});
    let listing = serde_json::to_value(handler.handle(listing.to_string().as_bytes()).await.unwrap()).unwrap();
    let signals: Vec<&Value> = listing["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["readySignal"])
        .collect();
    assert_eq!(signals.iter().filter(|s| **s == "url").count(), 2, "{listing}");
}
