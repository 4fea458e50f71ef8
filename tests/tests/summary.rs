//! task-summary against the local stack: generated tasks written by the real task-events handler,
//! then every answer checked against figures this file computes itself from the generator's truth.

use std::collections::BTreeSet;

use fastrand::Rng;
use serde_json::{Value, json};
use task_summary::HandlerError;
use task_timing_tests::generator::{Profile, TaskTruth, lifecycle};
use task_timing_tests::harness::TestStack;
use timing_domain::request::Limits;
use timing_domain::timestamp::Timestamp;
use timing_domain::timing::Phase;

const HOUR: i64 = 3_600_000;

fn now() -> Timestamp {
    Timestamp::parse("2026-11-22T12:00:00Z").unwrap()
}

struct Task {
    truth: TaskTruth,
    revision: u32,
    created: i64,
    stopped: bool,
}

/// 36 tasks of revision 3 (no index) and 36 of revision 4 (SOCI index) in the last 20 hours, every
/// fifth one still running, and 6 more created 30 hours ago (outside the default window).
async fn dataset(seed: u64) -> (TestStack, Vec<Task>) {
    let stack = TestStack::new().await.unwrap();
    let mut rng = Rng::with_seed(seed);
    let profiles = [Profile::without_index("web", 3), Profile::with_index("web", 4)];
    let mut tasks = Vec::new();
    for index in 0..78 {
        let profile = &profiles[index % 2];
        let created = if index < 72 {
            now().millis() - rng.i64(HOUR..20 * HOUR)
        } else {
            now().millis() - 30 * HOUR
        };
        let mut task = lifecycle(&mut rng, profile, created);
        let running = index % 5 == 0 && !task.truth.failed_to_start;
        let event = if running {
            // Version 3 is RUNNING: nothing after start is known yet.
            task.truth.run = None;
            task.truth.shutdown = None;
            task.events[2].clone()
        } else {
            task.events.last().unwrap().clone()
        };
        stack.deliver(&event).await.unwrap();
        tasks.push(Task {
            truth: task.truth,
            revision: profile.revision,
            created,
            stopped: !running,
        });
    }
    (stack, tasks)
}

fn in_default_window(task: &Task) -> bool {
    task.created >= now().millis() - 24 * HOUR && task.created < now().millis()
}

async fn ask(handler: &task_summary::Handler, request: Value) -> Result<Value, HandlerError> {
    let answer = handler.handle_at(request.to_string().as_bytes(), now()).await?;
    Ok(serde_json::to_value(answer).unwrap())
}

/// Type-7 percentile, written out independently of timing_domain::stats.
fn expected_percentile(sorted: &[f64], p: f64) -> f64 {
    let position = p * (sorted.len() as f64 - 1.0);
    let lower = position.floor() as usize;
    let weight = position - lower as f64;
    match sorted.get(lower + 1) {
        Some(next) => sorted[lower] * (1.0 - weight) + next * weight,
        None => sorted[lower],
    }
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    // Answers are rounded to the millisecond.
    assert!(
        (actual - expected).abs() <= 0.000_501,
        "{what}: got {actual}, expected {expected}"
    );
}

#[tokio::test]
async fn summary_statistics_equal_independent_figures_across_many_pages() {
    let (stack, tasks) = dataset(11).await;
    // Seven items per Query call, so the summary must follow about a dozen pages.
    let handler = stack.summary(Limits::default(), Some(7));
    let answer = ask(&handler, json!({"query": "summary", "family": "web", "exact": true}))
        .await
        .unwrap();

    let in_window: Vec<&Task> = tasks.iter().filter(|t| in_default_window(t)).collect();
    assert_eq!(answer["read"]["itemsRead"], in_window.len());
    assert!(answer["read"]["queryCalls"].as_u64().unwrap() >= (in_window.len() as u64).div_ceil(7));
    let groups = answer["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for (group, revision) in groups.iter().zip([3, 4]) {
        assert_eq!(group["key"], json!({"family": "web", "revision": revision}));
        let mine: Vec<&&Task> = in_window.iter().filter(|t| t.revision == revision).collect();
        let count = |keep: &dyn Fn(&Task) -> bool| mine.iter().filter(|t| keep(t)).count();
        assert_eq!(group["tasks"], mine.len());
        assert_eq!(group["started"], count(&|t| !t.truth.failed_to_start));
        assert_eq!(group["stopped"], count(&|t| t.stopped));
        assert_eq!(group["failedToStart"], count(&|t| t.truth.failed_to_start));
        assert_eq!(group["timestampAnomalies"], 0);
        let phases = group["phases"].as_array().unwrap();
        // No image reports here, so no readiness: the phases to ready are empty, never guessed.
        for (stats, phase) in phases[Phase::FROM_EVENTS.len()..].iter().zip(Phase::TO_READY) {
            assert_eq!(
                (stats["phase"].as_str(), stats["count"].as_u64()),
                (Some(phase.name()), Some(0))
            );
        }
        for (stats, phase) in phases.iter().zip(Phase::FROM_EVENTS) {
            let what = format!("revision {revision} {}", phase.name());
            let mut values: Vec<f64> = mine
                .iter()
                .filter_map(|t| t.truth.phase_millis(phase))
                .map(|millis| millis as f64 / 1000.0)
                .collect();
            values.sort_by(|a, b| a.partial_cmp(b).unwrap());
            assert_eq!(stats["phase"], phase.name());
            assert_eq!(stats["count"], values.len(), "{what}");
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            assert_close(&stats["mean"], mean, &format!("{what} mean"));
            assert_close(&stats["stddev"], variance.sqrt(), &format!("{what} stddev"));
            assert_close(&stats["min"], values[0], &format!("{what} min"));
            assert_close(&stats["max"], values[values.len() - 1], &format!("{what} max"));
            for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)] {
                assert_close(&stats[name], expected_percentile(&values, p), &format!("{what} {name}"));
            }
        }
    }
}

#[tokio::test]
async fn compare_tells_the_index_revision_apart() {
    let (stack, tasks) = dataset(12).await;
    let handler = stack.summary(Limits::default(), None);
    let side = |revision: u32| json!({"family": "web", "revisions": [revision]});
    let answer = ask(
        &handler,
        json!({"query": "compare", "baseline": side(3), "candidate": side(4), "phases": ["imagePull", "provisioning"], "exact": true}),
    )
    .await
    .unwrap();
    let values = |revision: u32, phase: Phase| -> Vec<f64> {
        let mut values: Vec<f64> = tasks
            .iter()
            .filter(|t| in_default_window(t) && t.revision == revision)
            .filter_map(|t| t.truth.phase_millis(phase))
            .map(|millis| millis as f64 / 1000.0)
            .collect();
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        values
    };
    for (comparison, phase) in answer["phases"]
        .as_array()
        .unwrap()
        .iter()
        .zip([Phase::ImagePull, Phase::Provisioning])
    {
        let (baseline, candidate) = (values(3, phase), values(4, phase));
        assert_eq!(comparison["baseline"]["count"], baseline.len());
        assert_eq!(comparison["candidate"]["count"], candidate.len());
        let p50_difference = expected_percentile(&candidate, 0.5) - expected_percentile(&baseline, 0.5);
        assert_close(&comparison["p50Difference"], p50_difference, "p50 difference");
        // U of the baseline by counting pairs, ties ½.
        let u: f64 = baseline
            .iter()
            .flat_map(|b| {
                candidate.iter().map(move |c| {
                    if b > c {
                        1.0
                    } else if b == c {
                        0.5
                    } else {
                        0.0
                    }
                })
            })
            .sum();
        assert_eq!(comparison["mannWhitney"]["u"], u);
        let shorter = u / (baseline.len() * candidate.len()) as f64;
        assert_eq!(comparison["mannWhitney"]["probabilityCandidateShorter"], shorter);
    }
    // The index shortens the pull (4 s against 24 s medians in the generator); provisioning is the same profile.
    let pull = &answer["phases"][0];
    assert_eq!(pull["significant"], true);
    assert!(
        pull["verdict"]
            .as_str()
            .unwrap()
            .starts_with("candidate shorter: p50 -"),
        "{pull}"
    );
    let [low, high] = [0, 1].map(|i| pull["medianDifferenceCi95"][i].as_f64().unwrap());
    assert!(low <= pull["p50Difference"].as_f64().unwrap() && high < 0.0, "{pull}");
    let provisioning = &answer["phases"][1];
    assert!(
        provisioning["mannWhitney"]["pValue"].as_f64().unwrap() > 0.001,
        "{provisioning}"
    );
}

#[tokio::test]
async fn tasks_pages_cover_the_window_once_newest_first() {
    let (stack, tasks) = dataset(13).await;
    let handler = stack.summary(Limits::default(), None);
    let expected: BTreeSet<String> = tasks
        .iter()
        .filter(|t| in_default_window(t))
        .map(|t| t.truth.task_arn.rsplit('/').next().unwrap().to_owned())
        .collect();
    let mut request = json!({"query": "tasks", "family": "web", "limit": 7});
    let (mut seen, mut created, mut pages) = (Vec::new(), Vec::new(), 0);
    loop {
        let answer = ask(&handler, request.clone()).await.unwrap();
        pages += 1;
        for task in answer["tasks"].as_array().unwrap() {
            seen.push(task["taskId"].as_str().unwrap().to_owned());
            created.push(task["createdAt"].as_str().unwrap().to_owned());
        }
        match answer.get("nextToken") {
            Some(token) => request["nextToken"] = token.clone(),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected.len(), "each task once");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
    assert_eq!(pages, expected.len().div_ceil(7));

    // A token altered by one character is refused before any read.
    let first = ask(&handler, json!({"query": "tasks", "family": "web", "limit": 7}))
        .await
        .unwrap();
    let token = first["nextToken"].as_str().unwrap();
    let flipped = if token.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{flipped}", &token[..token.len() - 1]);
    let refused = ask(
        &handler,
        json!({"query": "tasks", "family": "web", "limit": 7, "nextToken": tampered}),
    )
    .await;
    assert!(matches!(refused, Err(HandlerError::InvalidRequest(_))), "{refused:?}");

    let table = ask(
        &handler,
        json!({"query": "tasks", "family": "web", "limit": 3, "format": "table"}),
    )
    .await
    .unwrap();
    let text = table["text"].as_str().unwrap();
    // Header, separator and three rows.
    assert_eq!(
        text.lines().filter(|line| line.starts_with("| ")).count(),
        2 + 3,
        "{text}"
    );
    assert!(table["nextToken"].is_string());
}

#[tokio::test]
async fn filters_window_edges_and_limits() {
    let (stack, tasks) = dataset(14).await;
    let handler = stack.summary(Limits::default(), None);
    let count = |answer: &Value| answer["read"]["itemsMatched"].as_u64().unwrap();
    let summary = |extra: Value| {
        let mut request = json!({"query": "summary", "family": "web", "exact": true});
        request
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        request
    };
    let in_window = tasks.iter().filter(|t| in_default_window(t)).count() as u64;
    let revision_3 = tasks.iter().filter(|t| in_default_window(t) && t.revision == 3).count() as u64;
    assert_eq!(count(&ask(&handler, summary(json!({}))).await.unwrap()), in_window);
    assert_eq!(
        count(&ask(&handler, summary(json!({"revisions": [3]}))).await.unwrap()),
        revision_3
    );
    assert_eq!(
        count(&ask(&handler, summary(json!({"cluster": "shop-prod"}))).await.unwrap()),
        in_window
    );
    assert_eq!(
        count(&ask(&handler, summary(json!({"cluster": "elsewhere"}))).await.unwrap()),
        0
    );
    assert_eq!(
        count(&ask(&handler, summary(json!({"launchType": "EC2"}))).await.unwrap()),
        0
    );
    assert_eq!(
        count(
            &ask(&handler, json!({"query": "summary", "family": "api", "exact": true}))
                .await
                .unwrap()
        ),
        0
    );

    // [from, to): a task created exactly at `from` is in, one created exactly at `to` is out.
    let edge = Timestamp::from_millis(tasks[0].created).to_string();
    let from_edge = ask(&handler, summary(json!({"from": edge, "to": now().to_string()})))
        .await
        .unwrap();
    let later = tasks
        .iter()
        .filter(|t| t.created >= tasks[0].created && t.created < now().millis())
        .count();
    assert_eq!(count(&from_edge), later as u64);
    let until_edge = ask(&handler, summary(json!({"from": "2026-11-21T00:00:00Z", "to": edge})))
        .await
        .unwrap();
    let earlier = tasks
        .iter()
        .filter(|t| t.created < tasks[0].created && t.created >= now().millis() - 36 * HOUR)
        .count();
    assert_eq!(count(&until_edge), earlier as u64);

    let tight = stack.summary(
        Limits {
            max_rows: 10,
            ..Limits::default()
        },
        Some(4),
    );
    match ask(&tight, summary(json!({}))).await {
        Err(HandlerError::LimitExceeded(message)) => {
            assert!(
                message.contains("more than 10 records") && message.contains("MAX_ROWS"),
                "{message}"
            );
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_requests_never_reach_the_store() {
    let stack = TestStack::new().await.unwrap();
    // A handler whose tables do not exist: any read would fail with StoreUnavailable.
    let mut stack = stack;
    stack.store = timing_dynamodb::TaskStore::new(
        task_timing_tests::local::dynamodb_from_env().await.unwrap(),
        "no-such-table",
    )
    .with_rollup_table("no-such-rollup-table");
    let handler = stack.summary(Limits::default(), None);
    for request in [
        json!({"query": "summary", "family": ""}),
        json!({"query": "summary", "family": "web", "from": "2026-11-23T00:00:00Z"}),
        json!({"query": "tasks", "family": "web", "nextToken": "e30.AAAA"}),
        json!({"query": "compare", "baseline": {"family": "web"}}),
    ] {
        let answer = ask(&handler, request.clone()).await;
        assert!(
            matches!(answer, Err(HandlerError::InvalidRequest(_))),
            "{request}: {answer:?}"
        );
    }
    let valid = ask(&handler, json!({"query": "summary", "family": "web"})).await;
    assert!(matches!(valid, Err(HandlerError::Store(_))), "{valid:?}");
}
