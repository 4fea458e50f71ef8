//! docs/reliability.md's bad-input table: each input through the real parsers (task-events' event parser
//! and record, task-summary's request validation), with the answer it gets and how long that took.
//! Exits non-zero if any input panics, or is accepted when it must be refused.
//!
//!   cargo run --release -p task-timing-tests --bin bad_inputs

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use serde_json::{Value, json};
use task_timing_tests::harness::fixture;
use timing_domain::event::parse_event;
use timing_domain::query::PageKey;
use timing_domain::record::TaskRecord;
use timing_domain::request::{Limits, parse_request};
use timing_domain::timestamp::Timestamp;
use timing_domain::token::{PageToken, TokenKey, request_fingerprint};

const MB: usize = 1 << 20;

fn event_answer(payload: &[u8]) -> Result<String, String> {
    let event = parse_event(payload).map_err(|err| err.to_string())?;
    let record = TaskRecord::from_event(event, 90).map_err(|err| err.to_string())?;
    Ok(format!(
        "accepted: {} version {}",
        record.task_arn.chars().take(60).collect::<String>(),
        record.version
    ))
}

fn summary_answer(payload: &[u8], key: &TokenKey) -> Result<String, String> {
    let now = Timestamp::parse("2026-11-22T12:00:00Z").map_err(|err| err.to_string())?;
    parse_request(payload, &Limits::default(), now, key)
        .map(|request| format!("accepted: {:?}", request.query).chars().take(80).collect())
        .map_err(|err| err.0)
}

/// `json` followed by spaces (JSON's own whitespace) up to `size` bytes.
fn padded(json: &[u8], size: usize) -> Vec<u8> {
    let mut padded = json.to_vec();
    padded.resize(size, b' ');
    padded
}

fn with_detail(change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut event = fixture("web-soci-stopped.json");
    change(&mut event["detail"]);
    event.to_string().into_bytes()
}

fn cell(text: &str) -> String {
    let short: String = text.chars().take(170).collect();
    let ellipsis = if text.chars().count() > 170 { "…" } else { "" };
    format!("{}{ellipsis}", short.replace('|', "\\|").replace('\n', " "))
}

fn main() {
    let stopped = fixture("web-soci-stopped.json").to_string().into_bytes();
    let mut non_utf8 = stopped.clone();
    non_utf8.splice(40..40, [0xff, 0xfe]);
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let mut other_service = fixture("web-soci-stopped.json");
    other_service["source"] = json!("aws.ec2");
    let mut instance_event = fixture("web-soci-stopped.json");
    instance_event["detail-type"] = json!("ECS Container Instance State Change");

    let event_inputs: Vec<(&str, Vec<u8>, bool)> = vec![
        ("a valid STOPPED event (the project's fixture)", stopped.clone(), true),
        ("empty payload", Vec::new(), false),
        ("a valid event, then ` x`", [stopped.as_slice(), b" x"].concat(), false),
        (
            "a valid event, then a second one",
            [stopped.as_slice(), &stopped].concat(),
            false,
        ),
        (
            "a valid event padded with spaces to 256 KB + 1",
            padded(&stopped, timing_domain::event::MAX_EVENT_BYTES + 1),
            false,
        ),
        (
            "truncated JSON (the fixture cut in half)",
            stopped[..stopped.len() / 2].to_vec(),
            false,
        ),
        ("not JSON", b"ECS task stopped".to_vec(), false),
        ("non-UTF-8 bytes inside the JSON", non_utf8, false),
        ("JSON nested 10,000 deep", nested, false),
        (
            "`version` as a string",
            with_detail(|d| d["version"] = json!("7")),
            false,
        ),
        (
            "`createdAt` as a number",
            with_detail(|d| d["createdAt"] = json!(1_795_000_000_000_i64)),
            false,
        ),
        (
            "`containers` as an object",
            with_detail(|d| d["containers"] = json!({"name": "web"})),
            false,
        ),
        (
            "`taskArn` missing",
            with_detail(|d| d.as_object_mut().map(|o| o.remove("taskArn")).map(drop).unwrap_or(())),
            false,
        ),
        (
            "`detail` missing",
            json!({"source": "aws.ecs", "detail-type": "ECS Task State Change"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "`taskArn` not an ECS task ARN",
            with_detail(|d| d["taskArn"] = json!("arn:aws:s3:::bucket/key")),
            false,
        ),
        (
            "`taskArn` of 1 MB",
            with_detail(|d| {
                d["taskArn"] = json!(format!("arn:aws:ecs:eu-west-1:123456789012:task/c/{}", "a".repeat(MB)))
            }),
            false,
        ),
        (
            "`group` of 1 MB",
            with_detail(|d| d["group"] = json!("g".repeat(MB))),
            false,
        ),
        (
            "`stoppedReason` of 200 KB (under EventBridge's limit)",
            with_detail(|d| d["stoppedReason"] = json!("r".repeat(200 * 1024))),
            true,
        ),
        (
            "100,000 containers",
            with_detail(|d| d["containers"] = json!(vec![d["containers"][0].clone(); 100_000])),
            false,
        ),
        (
            "`createdAt` in year 99999",
            with_detail(|d| d["createdAt"] = json!("99999-01-01T00:00:00Z")),
            false,
        ),
        (
            "`createdAt` before 1970 (a valid instant: durations stay exact)",
            with_detail(|d| d["createdAt"] = json!("1969-12-31T23:59:59Z")),
            true,
        ),
        (
            "`startedAt` without a zone",
            with_detail(|d| d["startedAt"] = json!("2026-11-22T10:00:00")),
            false,
        ),
        (
            "`startedAt` with a space for T (RFC 3339 allows it)",
            with_detail(|d| d["startedAt"] = json!("2026-11-22 10:00:00Z")),
            true,
        ),
        (
            "`startedAt` on 30 February",
            with_detail(|d| d["startedAt"] = json!("2026-02-30T10:00:00Z")),
            false,
        ),
        (
            "`startedAt` with an offset (+05:30)",
            with_detail(|d| d["startedAt"] = json!("2026-11-22T15:30:00+05:30")),
            true,
        ),
        ("`version` negative", with_detail(|d| d["version"] = json!(-1)), false),
        (
            "`version` above 2^64",
            with_detail(|d| d["version"] = json!(1e20)),
            false,
        ),
        (
            "an event of another service (source aws.ec2)",
            other_service.to_string().into_bytes(),
            false,
        ),
        (
            "an ECS Container Instance State Change",
            instance_event.to_string().into_bytes(),
            false,
        ),
    ];

    let key = TokenKey::from_secret(&"k".repeat(32)).unwrap_or_else(|err| panic!("{err}"));
    let fingerprint = request_fingerprint(&[Some("web"), None, None, None, None, Some("None")]);
    let token = PageToken {
        after: PageKey {
            task_arn: "arn:aws:ecs:us-east-1:1:task/c/t".into(),
            family: "web".into(),
            created_at: "2026-11-22T01:00:00.000Z".into(),
        },
        window: (1_000, 2_000),
        fingerprint,
    }
    .seal(&key);
    let foreign = TokenKey::from_secret(&"z".repeat(32)).unwrap_or_else(|err| panic!("{err}"));
    let foreign_token = PageToken::open(
        &token,
        &key,
        &request_fingerprint(&[Some("web"), None, None, None, None, Some("None")]),
    )
    .map(|opened| opened.seal(&foreign))
    .unwrap_or_default();
    let tasks = |token: &str| {
        json!({"query": "tasks", "family": "web", "limit": 10, "nextToken": token})
            .to_string()
            .into_bytes()
    };
    let mut non_utf8_request = br#"{"query":"summary","family":"web"}"#.to_vec();
    non_utf8_request.splice(29..29, [0xc3, 0x28]);
    let summary_inputs: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "a valid summary request",
            br#"{"query":"summary","family":"web"}"#.to_vec(),
            true,
        ),
        ("empty request", Vec::new(), false),
        (
            "a valid request, then ` x`",
            br#"{"query":"summary","family":"web"} x"#.to_vec(),
            false,
        ),
        (
            "a valid request padded with spaces to 64 KiB + 1",
            padded(br#"{"query":"summary","family":"web"}"#, 64 * 1024 + 1),
            false,
        ),
        ("truncated JSON", br#"{"query":"summary","fam"#.to_vec(), false),
        ("non-UTF-8 bytes in a string", non_utf8_request, false),
        ("unknown query", br#"{"query":"drop","family":"web"}"#.to_vec(), false),
        (
            "unknown field (a typo)",
            br#"{"query":"summary","famly":"web"}"#.to_vec(),
            false,
        ),
        (
            "`limit` as a string",
            br#"{"query":"tasks","family":"web","limit":"10"}"#.to_vec(),
            false,
        ),
        (
            "family `web\" OR 1=1 --`",
            json!({"query": "summary", "family": "web\" OR 1=1 --"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "family `#family`",
            json!({"query": "summary", "family": "#family"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "cluster `prod) OR attribute_exists(#taskArn`",
            json!({"query": "summary", "family": "web", "cluster": "prod) OR attribute_exists(#taskArn"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "launchType `FARGATE OR :x`",
            json!({"query": "summary", "family": "web", "launchType": "FARGATE OR :x"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "family of 1 MB",
            json!({"query": "summary", "family": "f".repeat(MB)})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "100,000 revisions",
            json!({"query": "summary", "family": "web", "revisions": (1..=100_000).collect::<Vec<u32>>()})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "a window of 400 days",
            json!({"query": "summary", "family": "web", "from": "2025-10-18T00:00:00Z"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "`from` in another format",
            json!({"query": "summary", "family": "web", "from": "22/11/2026"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "`to` before `from`",
            json!({"query": "summary", "family": "web", "from": "2026-11-22T00:00:00Z", "to": "2026-11-21T00:00:00Z"})
                .to_string()
                .into_bytes(),
            false,
        ),
        (
            "`limit` of 1,000,000",
            br#"{"query":"tasks","family":"web","limit":1000000}"#.to_vec(),
            false,
        ),
        ("its own nextToken, unchanged", tasks(&token), true),
        (
            "nextToken with one character changed",
            tasks(&token.replacen('e', "f", 1)),
            false,
        ),
        (
            "nextToken issued by another deployment (other key)",
            tasks(&foreign_token),
            false,
        ),
        ("nextToken that is not a token", tasks("not-a-token"), false),
        (
            "nextToken sent with other filters",
            json!({"query": "tasks", "family": "web", "cluster": "prod", "nextToken": token})
                .to_string()
                .into_bytes(),
            false,
        ),
    ];

    let mut wrong = Vec::new();
    println!("| parser | input | size | answer | time |\n|---|---|---:|---|---:|");
    let rows = event_inputs
        .into_iter()
        .map(|(what, payload, accept)| ("task-events", what, payload, accept))
        .chain(
            summary_inputs
                .into_iter()
                .map(|(what, payload, accept)| ("task-summary", what, payload, accept)),
        );
    for (parser, what, payload, accept) in rows {
        let started = Instant::now();
        let answer = catch_unwind(AssertUnwindSafe(|| match parser {
            "task-events" => event_answer(&payload),
            _ => summary_answer(&payload, &key),
        }));
        let took = started.elapsed();
        let text = match &answer {
            Err(_) => {
                wrong.push(format!("{parser}: {what}: panicked"));
                "PANIC".to_owned()
            }
            Ok(Ok(accepted)) => {
                if !accept {
                    wrong.push(format!("{parser}: {what}: accepted"));
                }
                accepted.clone()
            }
            Ok(Err(refusal)) => {
                if accept || refusal.is_empty() {
                    wrong.push(format!("{parser}: {what}: refused: {refusal}"));
                }
                format!("refused: {refusal}")
            }
        };
        println!(
            "| {parser} | {what} | {} B | {} | {:.2} ms |",
            payload.len(),
            cell(&text),
            took.as_secs_f64() * 1000.0
        );
    }
    if !wrong.is_empty() {
        eprintln!("{} inputs answered wrongly:\n{}", wrong.len(), wrong.join("\n"));
        std::process::exit(1);
    }
}
