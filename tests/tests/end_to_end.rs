//! Through the Lambda runtime path: `cargo lambda invoke` against the function that `make test`
//! serves with `cargo lambda watch`, then the record read back from DynamoDB.

use std::process::Command;

use serde_json::Value;
use shared::store::{DEFAULT_TABLE_NAME, TaskStore};
use task_timing_tests::harness::{fixture, with_task_suffix};
use task_timing_tests::local::{dynamodb_from_env, unique_name};

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
    assert_eq!(ledger.len(), 9);

    let rejected = invoke(&fixture("invalid-version-as-string.json")).unwrap_err();
    assert!(
        rejected.contains("InvalidEvent") && rejected.contains("detail.version"),
        "{rejected}"
    );
}

#[test]
fn summary_queries_through_the_lambda_runtime() {
    // A family of its own, so the figures are exact whatever else the shared table holds.
    let unique = unique_name("e2e").replace('-', "");
    let family = format!("checkout{}", &unique[unique.len() - 12..]);
    let mut stopped = with_task_suffix(fixture("web-soci-stopped.json"), &format!("-{unique}"));
    stopped["detail"]["taskDefinitionArn"] = Value::String(format!(
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/{family}:14"
    ));
    assert_eq!(invoke(&stopped).unwrap()["outcome"], "written");
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
