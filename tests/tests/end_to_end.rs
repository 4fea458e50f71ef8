//! Through the Lambda runtime path: `cargo lambda invoke` against the function that `make test`
//! serves with `cargo lambda watch`, then the record read back from DynamoDB; and the bootstraps
//! themselves against the Runtime API stand-in, for payloads no well-behaved client sends.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use task_timing_tests::harness::{fixture, repo_root, with_task_suffix};
use task_timing_tests::local::{dynamodb_from_env, unique_name};
use task_timing_tests::runtime_api::{Answer, RuntimeApi, spawn, stop};
use task_timing_tests::stream::{Consumer, PollerPlan, StreamPoller};
use timing_domain::event::MAX_EVENT_BYTES;
use timing_dynamodb::TaskStore;
use timing_dynamodb::keys::{DEFAULT_ROLLUP_TABLE_NAME, DEFAULT_TABLE_NAME};

/// Invokes task-events with the event; Ok(answer) on success, Err(output) when the function failed.
fn invoke(event: &Value) -> Result<Value, String> {
    invoke_function("task-events", event)
}

fn invoke_function(function: &str, payload: &Value) -> Result<Value, String> {
    let port = std::env::var("LAMBDA_INVOKE_PORT").expect("LAMBDA_INVOKE_PORT is not set: run through `make test`");
    let output = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port,
        ])
        .args(["--data-ascii", &payload.to_string()])
        .output()
        .expect("cargo lambda is installed by make (in .venv)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        serde_json::from_str(text.trim()).map_err(|e| format!("{e}: {text}"))
    } else {
        Err(text)
    }
}

#[tokio::test]
async fn invoke_through_the_lambda_runtime() {
    let suffix = format!("-{}", unique_name("e2e").replace('-', ""));
    let running = with_task_suffix(fixture("web-soci-running.json"), &suffix);
    let stopped = with_task_suffix(fixture("web-soci-stopped.json"), &suffix);

    let answers: Vec<Value> = [&stopped, &running, &stopped]
        .iter()
        .map(|event| invoke(event).unwrap())
        .collect();
    let outcomes: Vec<&str> = answers.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["written", "stale", "duplicate"]);
    assert_eq!(answers[0]["metricsEmitted"].as_array().unwrap().len(), 9);

    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| DEFAULT_TABLE_NAME.to_owned());
    let store = TaskStore::new(dynamodb_from_env().await.unwrap(), table);
    let arn = stopped["detail"]["taskArn"].as_str().unwrap();
    let (record, ledger) = store
        .get(arn)
        .await
        .unwrap()
        .expect("record written through the runtime");
    // 09:15:10-09:14:52.117 and 10:03:02.25-09:14:52.117, by hand
    assert_eq!(
        (record.startup_seconds, record.lifetime_seconds, record.version),
        (Some(17.883), Some(2890.133), 6)
    );
    // The 9 it emitted, and the two phases to ready, whose start is known and which wait for a report.
    assert_eq!(ledger.len(), 11);
    assert!(ledger.contains("TaskReadyTime") && ledger.contains("WarmUpTime"));

    let rejected = invoke(&fixture("invalid-version-as-string.json")).unwrap_err();
    assert!(
        rejected.contains("InvalidEvent") && rejected.contains("detail.version"),
        "{rejected}"
    );

    // Issue 23 as reported: a valid event of a new task, then " x", from a file.
    let suffix = format!("-{}", unique_name("e2e").replace('-', ""));
    let running = with_task_suffix(fixture("web-soci-running.json"), &suffix);
    let file = repo_root().join(".local").join(format!("trailing{suffix}.json"));
    std::fs::write(&file, format!("{running} x")).unwrap();
    let port = std::env::var("LAMBDA_INVOKE_PORT").unwrap();
    let output = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "task-events",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port,
        ])
        .arg("--data-file")
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        text.contains("InvalidEvent") && text.contains("trailing characters"),
        "{text}"
    );
    let arn = running["detail"]["taskArn"].as_str().unwrap();
    assert!(store.get(arn).await.unwrap().is_none(), "{arn} was written");
}

/// A bootstrap as `make test` built it (tools/stack.sh builds both functions before serving them).
fn bootstrap(function: &str) -> String {
    // This test's executable is target/debug/deps/end_to_end-HASH; the bootstraps are in target/debug.
    let exe = std::env::current_exe().unwrap();
    let path: PathBuf = exe.ancestors().nth(2).unwrap().join(function);
    assert!(
        path.exists(),
        "{} is not built: run through `make test`",
        path.display()
    );
    path.display().to_string()
}

/// Hands each payload to a fresh process of the function through the Runtime API stand-in, one after
/// the other; their answers (response or error body), in order.
async fn through_the_runtime(function: &str, payloads: Vec<Vec<u8>>) -> Vec<Answer> {
    let tables = [
        (
            "TABLE_NAME",
            std::env::var("TABLE_NAME").unwrap_or_else(|_| DEFAULT_TABLE_NAME.to_owned()),
        ),
        (
            "ROLLUP_TABLE_NAME",
            std::env::var("ROLLUP_TABLE_NAME").unwrap_or_else(|_| DEFAULT_ROLLUP_TABLE_NAME.to_owned()),
        ),
    ];
    let api = RuntimeApi::start().await.unwrap();
    let child = spawn(&api, &[bootstrap(function)], &tables).unwrap();
    let count = payloads.len();
    for payload in payloads {
        api.queue(payload);
    }
    let finished = api.finished(count, Duration::from_secs(60)).await;
    stop(child).unwrap();
    finished.unwrap().into_iter().map(|(_, answer)| answer).collect()
}

fn error_message(answer: &Answer) -> String {
    match answer {
        Answer::Error(body) => body.clone(),
        Answer::Response => panic!("accepted"),
    }
}

/// Issue 23: lambda_runtime reads only the first JSON value of an invocation body; the functions judge
/// the whole body, so trailing bytes, padding past the size limit and an empty body are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_judge_the_whole_invocation_body() {
    let suffix = format!("-{}", unique_name("e2e").replace('-', ""));
    let event = with_task_suffix(fixture("web-soci-running.json"), &suffix).to_string();
    let arn = format!(
        "{}{suffix}",
        fixture("web-soci-running.json")["detail"]["taskArn"].as_str().unwrap()
    );
    let mut padded = event.clone().into_bytes();
    padded.resize(MAX_EVENT_BYTES + 1, b' ');
    let answers = through_the_runtime(
        "task-events",
        vec![format!("{event} x").into_bytes(), padded, Vec::new(), b" \n".to_vec()],
    )
    .await;
    let messages: Vec<String> = answers.iter().map(error_message).collect();
    let expected = [
        "trailing characters at line 1 column",
        &format!("event of {} bytes is larger than", MAX_EVENT_BYTES + 1),
        "empty payload",
        "empty payload",
    ];
    for (message, expected) in messages.iter().zip(expected) {
        assert!(
            message.contains("InvalidEvent") && message.contains(expected),
            "{message}"
        );
    }
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| DEFAULT_TABLE_NAME.to_owned());
    let store = TaskStore::new(dynamodb_from_env().await.unwrap(), table);
    assert!(
        store.get(&arn).await.unwrap().is_none(),
        "a refused payload was written"
    );

    // The same event alone is written, through the same path: the check above can see a write.
    let answers = through_the_runtime("task-events", vec![event.into_bytes()]).await;
    assert_eq!(answers, [Answer::Response]);
    assert!(store.get(&arn).await.unwrap().is_some());

    let request = r#"{"query":"tasks","family":"web"}"#;
    let mut padded = request.as_bytes().to_vec();
    padded.resize(64 * 1024 + 1, b' ');
    let answers = through_the_runtime(
        "task-summary",
        vec![
            format!("{request} x").into_bytes(),
            padded,
            Vec::new(),
            request.as_bytes().to_vec(),
        ],
    )
    .await;
    let expected = [
        "request has bytes after its JSON object",
        "request of 65537 bytes is larger than the 65536-byte limit",
        "empty request",
    ];
    for (answer, expected) in answers.iter().zip(expected) {
        let message = error_message(answer);
        assert!(
            message.contains("InvalidRequest") && message.contains(expected),
            "{message}"
        );
    }
    assert_eq!(answers[3], Answer::Response);
}

#[tokio::test]
async fn summary_queries_through_the_lambda_runtime() {
    // A family of its own, so the figures are exact whatever else the shared table holds.
    let unique = unique_name("e2e").replace('-', "");
    let family = format!("checkout{}", &unique[unique.len() - 12..]);
    let mut stopped = with_task_suffix(fixture("web-soci-stopped.json"), &format!("-{unique}"));
    stopped["detail"]["taskDefinitionArn"] = Value::String(format!(
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/{family}:14"
    ));
    assert_eq!(invoke(&stopped).unwrap()["outcome"], "written");
    // The rollups follow through the stream: task-rollups through `cargo lambda invoke`, as the local
    // stack's poller does (it may apply the same records too: each is applied once).
    let port = std::env::var("LAMBDA_INVOKE_PORT").unwrap();
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| DEFAULT_TABLE_NAME.to_owned());
    let client = dynamodb_from_env().await.unwrap();
    let consumer = Consumer::CargoLambda { port };
    let mut poller = StreamPoller::open(&client, &table, consumer, PollerPlan::PLAIN)
        .await
        .unwrap();
    let drained = poller.drain().await.unwrap();
    assert!(drained.records >= 1 && drained.batches_applied >= 1, "{drained}");
    let task_id = stopped["detail"]["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let window = |query: &str| serde_json::json!({"query": query, "family": family, "from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"});

    let summary = invoke_function("task-summary", &window("summary")).unwrap();
    let group = &summary["groups"][0];
    assert_eq!(
        (group["key"]["revision"].as_u64(), group["tasks"].as_u64()),
        (Some(14), Some(1))
    );
    let startup = &group["phases"][3];
    // 09:15:10 − 09:14:52.117, by hand. From the rollups: the mean exact, the p50 within 1%.
    assert_eq!(summary["source"], "rollups");
    assert_eq!(
        (startup["phase"].as_str(), startup["mean"].as_f64()),
        (Some("startup"), Some(17.883))
    );
    let p50 = startup["p50"].as_f64().unwrap();
    assert!((p50 - 17.883).abs() <= 0.01 * 17.883, "{p50}");
    let mut exact = window("summary");
    exact["exact"] = serde_json::json!(true);
    let exact = invoke_function("task-summary", &exact).unwrap();
    assert_eq!(exact["groups"][0]["phases"][3]["p50"].as_f64(), Some(17.883));

    let tasks = invoke_function("task-summary", &window("tasks")).unwrap();
    assert_eq!(tasks["tasks"][0]["taskId"], task_id);
    assert!(tasks.get("nextToken").is_none());

    let side = serde_json::json!({"family": family, "from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"});
    let compare = serde_json::json!({"query": "compare", "baseline": side, "candidate": side, "phases": ["startup"], "exact": true, "format": "table"});
    let text = invoke_function("task-summary", &compare).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains("| startup") && text.contains("no significant difference"),
        "{text}"
    );

    let refused = invoke_function("task-summary", &serde_json::json!({"query": "summary"})).unwrap_err();
    assert!(
        refused.contains("InvalidRequest") && refused.contains("family: required"),
        "{refused}"
    );
}
