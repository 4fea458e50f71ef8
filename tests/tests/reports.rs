//! The sidecar's image report merged with the state changes: in every position among them, once or
//! twice, it leaves the same record, emits each metric by snapshotter once, and moves the task's rollups
//! into its snapshotter's series exactly once.

use std::collections::BTreeMap;

use fastrand::Rng;
use serde_json::{Value, json};
use task_timing_tests::generator::{Lifecycle, Profile, lifecycle};
use task_timing_tests::harness::{TestStack, with_task_suffix};
use timing_domain::report::Snapshotter;

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
                        record.startup_seconds
                    ),
                    (
                        reference.snapshotter,
                        &reference.reported_containers,
                        reference.version,
                        reference.startup_seconds
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
                let mine = |metric: &str| by_snapshotter.get(&(task_arn.clone(), metric.to_owned())).cloned();
                let soci = |value: f64| Some(vec![(value, "soci".to_owned())]);
                assert_eq!(mine("ImagePullTime"), soci(pull), "{task_arn}");
                assert_eq!(mine("TaskStartupTime"), soci(startup), "{task_arn}");
                assert_eq!(mine("TasksBySnapshotter"), soci(1.0), "{task_arn}");
                assert_eq!(mine("LazyLoadingFallbacks"), None, "web-soci is not a listed family");
            }
        }
    }

    // The rollups: every task in the soci series once, none left in the unreported one.
    stack.drain().await.unwrap();

    let handler = stack.summary(Default::default(), None);
    let request = json!({"query": "summary", "family": "web-soci", "groupBy": ["snapshotter"],
        "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z", "phases": ["startup"]});
    let answer = handler.handle(request.to_string().as_bytes()).await.unwrap();
    let answer = serde_json::to_value(answer).unwrap();
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
        if report_first {
            stack.deliver(&report).await.unwrap();
        }
        for (index, event) in task.events.iter().enumerate() {
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
        for metric in ["ImagePullTime", "TaskStartupTime", "TasksBySnapshotter"] {
            let values = emitted.get(&(task.truth.task_arn.clone(), metric.to_owned()));
            assert_eq!(
                values.map(Vec::len),
                Some(1),
                "{metric}, report first: {report_first}: {emitted:?}"
            );
        }
    }
}
