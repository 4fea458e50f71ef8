//! One table for many accounts and regions (central mode, docs/organisation.md), against the local stack:
//! two accounts run a cluster `shop-prod` and a family `checkout` of the same names and revisions, and a
//! third origin is the first account in another region. Their tasks go through task-events and the
//! stream; every answer is checked against the generator's own durations, per account.

use fastrand::Rng;
use serde_json::{Value, json};
use task_timing_tests::generator::{Lifecycle, Profile, deliveries, lifecycle};
use task_timing_tests::harness::{TestStack, deliver};
use timing_domain::request::Limits;
use timing_domain::stats::describe;
use timing_domain::timestamp::Timestamp;

const HOUR: i64 = 3_600_000;
const A: &str = "123456789012";
const B: &str = "444455556666";
const DAY: &str = "2026-11-20";

fn day_start() -> i64 {
    Timestamp::parse(&format!("{DAY}T00:00:00Z")).unwrap().millis()
}

fn profile(account: &str, region: &str, revision: u32) -> Profile {
    Profile {
        account: account.into(),
        region: region.into(),
        ..Profile::without_index("checkout", revision)
    }
}

fn origin_of(task: &Lifecycle) -> (String, String) {
    let parts: Vec<&str> = task.truth.task_arn.split(':').collect();
    (parts[4].to_owned(), parts[3].to_owned())
}

/// The generator's start-ups (s) of one origin's tasks, and how many tasks it has.
fn truth(lifecycles: &[Lifecycle], account: &str, region: &str, revision: Option<u32>) -> (usize, Vec<f64>) {
    let tasks: Vec<&Lifecycle> = lifecycles
        .iter()
        .filter(|task| origin_of(task) == (account.to_owned(), region.to_owned()))
        .filter(|task| {
            revision.is_none_or(|revision| {
                task.events[0]["detail"]["taskDefinitionArn"]
                    .as_str()
                    .is_some_and(|arn| arn.ends_with(&format!(":{revision}")))
            })
        })
        .collect();
    let startups = tasks
        .iter()
        .filter_map(|task| task.truth.startup())
        .map(|millis| millis as f64 / 1000.0)
        .collect();
    (tasks.len(), startups)
}

fn group<'a>(answer: &'a Value, account: &str, region: &str) -> &'a Value {
    answer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"]["account"] == account && g["key"]["region"] == region)
        .unwrap_or_else(|| panic!("no group {account} {region} in {answer:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_with_the_same_names_never_mix_and_every_query_filters_and_groups_by_account() {
    let stack = TestStack::new().await.unwrap();
    let mut rng = Rng::with_seed(2222);
    // B's revision 15 pulls a larger image; A's revision 15 and A's tasks in us-east-1 change nothing.
    let mut slower = profile(B, "eu-west-1", 15);
    slower.image_pull = (36.0, 0.30);
    let mut lifecycles = Vec::new();
    for (profile, count) in [
        (profile(A, "eu-west-1", 14), 24),
        (profile(A, "eu-west-1", 15), 24),
        (profile(B, "eu-west-1", 14), 24),
        (slower, 24),
        (profile(A, "us-east-1", 15), 10),
    ] {
        for _ in 0..count {
            let created = day_start() + 9 * HOUR + rng.i64(0..6 * HOUR);
            lifecycles.push(lifecycle(&mut rng, &profile, created));
        }
    }
    for event in deliveries(&mut rng, &lifecycles, 2, true) {
        deliver(&stack.handler, &event).await.unwrap();
    }
    stack.drain().await.unwrap();

    // An account may not report another account's task: the central bus admits every member, so B could
    // put a report naming one of A's tasks. It is refused: the task (whose own report this test never
    // sends) stays unreported instead of taking the forged snapshotter.
    let a_task = lifecycles
        .iter()
        .find(|task| origin_of(task).0 == A && task.report.is_some())
        .unwrap();
    let mut forged = a_task.report.clone().unwrap();
    forged["account"] = json!(B);
    forged["detail"]["containers"][0]["snapshotter"] = json!("soci");
    let refused = deliver(&stack.handler, &forged).await.unwrap_err().to_string();
    assert!(refused.contains("an account reports only its own tasks"), "{refused}");

    let summary = stack.summary(Limits::default(), None);
    let now = Timestamp::from_millis(day_start() + 20 * HOUR);
    let ask = |request: Value| {
        let summary = &summary;
        async move {
            let answer = summary.handle_at(request.to_string().as_bytes(), now).await.unwrap();
            serde_json::to_value(answer).unwrap()
        }
    };
    let window = json!({"from": format!("{DAY}T00:00:00Z"), "to": format!("{DAY}T23:00:00Z")});
    let with = |mut request: Value| {
        for (key, value) in window.as_object().unwrap() {
            request[key] = value.clone();
        }
        request
    };

    // By account and region, from the rollups and from the records: the same counts, the generator's.
    for exact in [false, true] {
        let answer = ask(with(
            json!({"query": "summary", "family": "checkout", "phases": ["startup"],
            "groupBy": ["account", "region"], "exact": exact}),
        ))
        .await;
        assert_eq!(answer["groups"].as_array().unwrap().len(), 3, "{answer:#}");
        for (account, region) in [(A, "eu-west-1"), (B, "eu-west-1"), (A, "us-east-1")] {
            let (tasks, startups) = truth(&lifecycles, account, region, None);
            let group = group(&answer, account, region);
            assert_eq!(
                group["tasks"].as_u64(),
                Some(tasks as u64),
                "{exact} {account} {region}"
            );
            let p50 = group["phases"][0]["p50"].as_f64().unwrap();
            let expected = describe(&startups).unwrap().p50;
            // Exact to the millisecond from records; within the buckets' 1 % from the rollups.
            let tolerance = if exact { 0.0005 } else { expected * 0.01 + 0.0005 };
            assert!(
                (p50 - expected).abs() <= tolerance,
                "{exact} {account} {region}: {p50} vs {expected}"
            );
        }
    }

    // Filters: one account, one region, both; the records' and the rollups' answers agree.
    for (filter, account, region) in [
        (json!({"account": B}), B, "eu-west-1"),
        (json!({"region": "us-east-1"}), A, "us-east-1"),
        (json!({"account": A, "region": "eu-west-1"}), A, "eu-west-1"),
    ] {
        for exact in [false, true] {
            let mut request = with(json!({"query": "summary", "family": "checkout", "phases": ["startup"],
                "groupBy": ["account", "region"], "exact": exact}));
            for (key, value) in filter.as_object().unwrap() {
                request[key] = value.clone();
            }
            let answer = ask(request).await;
            let groups = answer["groups"].as_array().unwrap();
            assert_eq!(groups.len(), 1, "{filter} {exact}: {answer:#}");
            assert_eq!(
                groups[0]["tasks"].as_u64(),
                Some(truth(&lifecycles, account, region, None).0 as u64)
            );
        }
    }

    // Task listings of one account hold that account's tasks only, and say whose they are.
    let listing = ask(with(
        json!({"query": "tasks", "family": "checkout", "account": B, "limit": 100}),
    ))
    .await;
    let rows = listing["tasks"].as_array().unwrap();
    assert_eq!(rows.len(), truth(&lifecycles, B, "eu-west-1", None).0);
    assert!(
        rows.iter()
            .all(|row| row["account"] == B && row["region"] == "eu-west-1")
    );
    let listing = ask(with(
        json!({"query": "tasks", "family": "checkout", "account": A, "limit": 100}),
    ))
    .await;
    let forged_task = listing["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| a_task.truth.task_arn.ends_with(row["taskId"].as_str().unwrap()))
        .unwrap();
    assert_eq!(
        forged_task["snapshotter"], "unreported",
        "the forged report left no trace"
    );

    // Compare one account's revision 15 with another's.
    let compare = ask(json!({"query": "compare", "exact": true, "phases": ["imagePull"],
        "baseline": with(json!({"family": "checkout", "account": A, "region": "eu-west-1", "revisions": [15]})),
        "candidate": with(json!({"family": "checkout", "account": B, "revisions": [15]}))}))
    .await;
    let pull = &compare["phases"][0];
    assert_eq!(pull["significant"], true, "{compare:#}");
    assert!(pull["p50Ratio"].as_f64().unwrap() > 1.2, "{compare:#}");

    // The regression watch judges each account's checkout apart: only B's release is slower.
    let regressions = ask(json!({"query": "regressions"})).await;
    assert_eq!(
        regressions["startupRegressions"],
        json!([format!("checkout ({B} eu-west-1)")]),
        "{regressions:#}"
    );
    let judged: Vec<(String, String, String)> = regressions["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |key: &str| f[key].as_str().unwrap_or("-").to_owned();
            (
                text("account"),
                text("region"),
                f["phases"][0]["verdict"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert_eq!(judged.len(), 3, "{regressions:#}");
    assert!(judged.contains(&(B.to_owned(), "eu-west-1".to_owned(), "regression".to_owned())));
    let a_verdict = judged
        .iter()
        .find(|(account, region, _)| account == A && region == "eu-west-1")
        .unwrap();
    assert_ne!(a_verdict.2, "regression");
}
