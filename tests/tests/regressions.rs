//! The regression watch against the local stack: generated tasks through task-events, the table's stream
//! through task-rollups (which keeps the family index), then task-summary's `regressions` query, checked
//! against the generator's own durations and the test on the exact values.

use std::sync::{Arc, Mutex};

use fastrand::Rng;
use serde_json::{Value, json};
use task_timing_tests::generator::{Lifecycle, Profile, deliveries, lifecycle};
use task_timing_tests::harness::{TestStack, deliver};
use timing_domain::emf_check::validate_emf;
use timing_domain::request::Limits;
use timing_domain::stats::mann_whitney_u;
use timing_domain::timestamp::Timestamp;

const HOUR: i64 = 3_600_000;

fn day_start(day: &str) -> i64 {
    Timestamp::parse(&format!("{day}T00:00:00Z")).unwrap().millis()
}

/// `count` tasks of the profile created over six hours from 09:00 on `day`.
fn tasks(rng: &mut Rng, profile: &Profile, count: usize, day: &str) -> Vec<Lifecycle> {
    (0..count)
        .map(|_| {
            let created = day_start(day) + 9 * HOUR + rng.i64(0..6 * HOUR);
            lifecycle(rng, profile, created)
        })
        .collect()
}

fn startups(lifecycles: &[Lifecycle], family: &str, revision: u32) -> Vec<f64> {
    let definition = format!(":task-definition/{family}:{revision}");
    lifecycles
        .iter()
        .filter(|task| {
            task.events[0]["detail"]["taskDefinitionArn"]
                .as_str()
                .is_some_and(|arn| arn.ends_with(&definition))
        })
        .filter_map(|task| task.truth.startup())
        .map(|millis| millis as f64)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_revision_is_judged_against_the_one_before_and_only_a_slower_one_is_flagged() {
    let stack = TestStack::new().await.unwrap();
    let mut rng = Rng::with_seed(2112);
    // checkout:15's image is half again as large (its pull 24 s → 36 s); payments:4 changes nothing;
    // search runs one revision; inventory's tasks are on another day, outside the window asked.
    let slower_pull = Profile {
        image_pull: (36.0, 0.30),
        ..Profile::without_index("checkout", 15)
    };
    let mut lifecycles = Vec::new();
    for (profile, count, day) in [
        (Profile::without_index("checkout", 9), 24, "2026-11-20"),
        (slower_pull, 24, "2026-11-20"),
        (Profile::without_index("payments", 3), 24, "2026-11-20"),
        (Profile::without_index("payments", 4), 24, "2026-11-20"),
        (Profile::without_index("search", 2), 6, "2026-11-20"),
        (Profile::without_index("inventory", 1), 6, "2026-11-18"),
        (Profile::without_index("inventory", 2), 6, "2026-11-18"),
    ] {
        lifecycles.extend(tasks(&mut rng, &profile, count, day));
    }
    // Four deliveries at a time, as concurrent invocations would write.
    let stream = deliveries(&mut rng, &lifecycles, 2, true);
    let mut workers = tokio::task::JoinSet::new();
    for chunk in stream.chunks(stream.len().div_ceil(4)) {
        let (handler, chunk) = (stack.handler.clone(), chunk.to_vec());
        workers.spawn(async move {
            for event in chunk {
                deliver(&handler, &event).await.unwrap();
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    stack.drain().await.unwrap();

    let published: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = published.clone();
    let handler = stack
        .summary(Limits::default(), None)
        .with_metrics_sink(Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned())));
    let now = Timestamp::from_millis(day_start("2026-11-21") + 6 * HOUR);
    let ask = |request: Value| {
        let handler = &handler;
        async move {
            let answer = handler.handle_at(request.to_string().as_bytes(), now).await.unwrap();
            serde_json::to_value(answer).unwrap()
        }
    };
    // The hourly schedule's request: the last 7 days, every family in the index.
    let answer = ask(json!({"query": "regressions", "publish": true})).await;
    assert_eq!(answer["startupRegressions"], json!(["checkout"]), "{answer:#}");
    let families: Vec<&str> = answer["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["checkout", "inventory", "payments", "search"]);
    let family = |name: &str| {
        answer["families"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["family"] == name)
            .unwrap()
            .clone()
    };

    let checkout = family("checkout");
    assert_eq!(
        (&checkout["baseline"]["revision"], &checkout["candidate"]["revision"]),
        (&json!(9), &json!(15))
    );
    let startup = &checkout["phases"][0];
    assert_eq!(
        (&startup["phase"], &startup["verdict"]),
        (&json!("startup"), &json!("regression"))
    );
    // The counts are the generator's tasks that started; the p is close to the test on their exact values
    // (the rollups only know each value to its 2 %-wide bucket).
    let (base, cand) = (
        startups(&lifecycles, "checkout", 9),
        startups(&lifecycles, "checkout", 15),
    );
    assert_eq!(
        (
            startup["baseline"]["count"].as_u64(),
            startup["candidate"]["count"].as_u64()
        ),
        (Some(base.len() as u64), Some(cand.len() as u64))
    );
    let exact = mann_whitney_u(&cand, &base).unwrap();
    let p = startup["mannWhitneyP"].as_f64().unwrap();
    assert!(
        p < 0.01 && (p.ln() - exact.p_value.ln()).abs() < 1.0,
        "{p} vs exact {}",
        exact.p_value
    );
    let effect = startup["probabilityCandidateLonger"].as_f64().unwrap();
    assert!(
        (effect - exact.probability_of_superiority).abs() < 0.02,
        "{effect} vs {}",
        exact.probability_of_superiority
    );
    assert_eq!(checkout["phases"][1]["verdict"], "regression");

    let payments = family("payments");
    assert_eq!(payments["startupRegression"], false);
    let (base, cand) = (
        startups(&lifecycles, "payments", 3),
        startups(&lifecycles, "payments", 4),
    );
    let exact = mann_whitney_u(&cand, &base).unwrap();
    assert_eq!(
        payments["phases"][0]["verdict"] == "noSignificantChange",
        exact.p_value >= 0.01
    );
    assert_eq!(payments["phases"][0]["verdict"], "noSignificantChange");
    assert_eq!(
        family("search")["summary"],
        "only revision 2 ran in the window: nothing to compare it with"
    );
    // Inventory ran two days before: in the window, but none of its revisions is new.
    assert_eq!(
        family("inventory")["summary"],
        "no tasks in the last day: no new revision to judge"
    );

    // One document per family judged, valid EMF, 1 for checkout only.
    let documents: Vec<Value> = published
        .lock()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(answer["published"], 4);
    let flags: Vec<(String, u64)> = documents
        .iter()
        .map(|d| {
            validate_emf(d).unwrap();
            (
                d["TaskFamily"].as_str().unwrap().to_owned(),
                d["StartupRegression"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("checkout".to_owned(), 1),
            ("inventory".to_owned(), 0),
            ("payments".to_owned(), 0),
            ("search".to_owned(), 0)
        ]
    );

    // Inventory's day, by itself: found through the index, nothing published without "publish".
    let earlier =
        ask(json!({"query": "regressions", "from": "2026-11-18T00:00:00Z", "to": "2026-11-19T00:00:00Z"})).await;
    assert_eq!(earlier["families"][0]["family"], "inventory");
    assert_eq!(earlier["families"].as_array().unwrap().len(), 1);
    assert!(earlier.get("published").is_none());
    assert_eq!(published.lock().unwrap().len(), 4);
    // The window's last day is the day before `to`: a window ending at midnight lists none of that day.
    let to_midnight =
        ask(json!({"query": "regressions", "from": "2026-11-18T00:00:00Z", "to": "2026-11-20T00:00:00Z"})).await;
    assert_eq!(to_midnight["families"].as_array().unwrap().len(), 1, "{to_midnight:#}");
    // Asked by name, a family with no tasks in the window is answered, not left out.
    let idle = ask(json!({"query": "regressions", "family": "orders"})).await;
    assert_eq!(idle["families"][0]["summary"], "no tasks in the window");
    // One family asked by name reads no index; a stricter minimum leaves it untested.
    let strict = ask(json!({"query": "regressions", "family": "checkout", "minTasks": 1000,
        "from": "2026-11-19T00:00:00Z"}))
    .await;
    assert_eq!(strict["families"][0]["phases"][0]["verdict"], "notEnoughData");
    assert_eq!(strict["startupRegressions"], json!([]));
    let table = ask(json!({"query": "regressions", "from": "2026-11-19T00:00:00Z", "format": "table"})).await;
    let text = table["text"].as_str().unwrap();
    assert!(text.contains("Start-up regressions: checkout."), "{text}");
    assert!(text.contains("| checkout | 9 → 15    | startup   |"), "{text}");
}
