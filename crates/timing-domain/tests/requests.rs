//! Request validation: every refusal names the field and what was wrong, before any data access
//! (parse_request has no store to reach).

use serde_json::{Value, json};
use timing_domain::request::{Format, GroupBy, Limits, Query, parse_request};
use timing_domain::timestamp::Timestamp;
use timing_domain::timing::Phase;
use timing_domain::token::{PageToken, TokenKey, request_fingerprint};

fn now() -> Timestamp {
    Timestamp::parse("2026-11-22T12:00:00Z").unwrap()
}

fn key() -> TokenKey {
    TokenKey::from_secret(&"k".repeat(32)).unwrap()
}

fn parse(request: &Value) -> Result<Query, String> {
    parse_request(request.to_string().as_bytes(), &Limits::default(), now(), &key())
        .map(|r| r.query)
        .map_err(|e| e.0)
}

fn refusal(request: Value) -> String {
    match parse(&request) {
        Ok(query) => panic!("accepted {request}: {query:?}"),
        Err(message) => message,
    }
}

#[test]
fn summary_defaults_are_the_last_24_hours_all_phases_by_family_and_revision() {
    let Query::Summary(summary) = parse(&json!({"query": "summary", "family": "web"})).unwrap() else {
        panic!("not a summary")
    };
    assert_eq!(summary.filters.to, now());
    assert_eq!(
        summary.filters.to.millis() - summary.filters.from.millis(),
        24 * 3_600_000
    );
    assert_eq!(summary.phases, Phase::ALL.to_vec());
    assert_eq!(summary.group_by, vec![GroupBy::Family, GroupBy::Revision]);
}

#[test]
fn filters_are_normalised() {
    let request = json!({"query": "summary", "family": "web", "revisions": [12, 3, 12],
        "cluster": "arn:aws:ecs:eu-west-1:111122223333:cluster/prod", "launchType": "FARGATE",
        "from": "2026-11-01T00:00:00+01:00", "to": "2026-11-02T00:00:00Z",
        "phases": ["startup", "imagePull"], "groupBy": ["imageDigest"], "format": "table", "exact": true});
    let parsed = parse_request(request.to_string().as_bytes(), &Limits::default(), now(), &key()).unwrap();
    assert_eq!(parsed.format, Format::Table);
    let Query::Summary(summary) = parsed.query else {
        panic!()
    };
    assert_eq!(summary.filters.revisions, vec![3, 12]);
    assert_eq!(summary.filters.cluster.as_deref(), Some("prod"));
    assert_eq!(summary.filters.from.to_string(), "2026-10-31T23:00:00.000Z");
    assert_eq!(summary.phases, vec![Phase::Startup, Phase::ImagePull]);
    assert_eq!(summary.group_by, vec![GroupBy::ImageDigest]);
}

#[test]
fn snapshotter_filters_and_groups_from_the_rollups() {
    for name in ["soci", "overlayfs", "mixed", "unknown", "unreported"] {
        let request = json!({"query": "summary", "family": "web", "snapshotter": name, "groupBy": ["snapshotter"]});
        let Query::Summary(summary) = parse(&request).unwrap() else {
            panic!()
        };
        assert_eq!(summary.filters.snapshotter.as_deref(), Some(name));
        assert_eq!(
            (summary.group_by.as_slice(), summary.exact),
            ([GroupBy::Snapshotter].as_slice(), false)
        );
    }
}

#[test]
fn account_and_region_filter_and_group_every_query_from_the_rollups_too() {
    let request = json!({"query": "summary", "family": "web", "account": "111122223333", "region": "us-gov-west-1",
        "groupBy": ["account", "region", "revision"]});
    let Query::Summary(summary) = parse(&request).unwrap() else {
        panic!()
    };
    assert_eq!(
        (summary.filters.account.as_deref(), summary.filters.region.as_deref()),
        (Some("111122223333"), Some("us-gov-west-1"))
    );
    assert_eq!(
        (summary.group_by.as_slice(), summary.exact),
        ([GroupBy::Account, GroupBy::Region, GroupBy::Revision].as_slice(), false)
    );
    let compare = json!({"query": "compare", "baseline": {"family": "web", "account": "111122223333"},
        "candidate": {"family": "web", "account": "444455556666"}});
    let Query::Compare(compare) = parse(&compare).unwrap() else {
        panic!()
    };
    assert_eq!(compare.baseline.account.as_deref(), Some("111122223333"));
    assert_eq!(compare.candidate.account.as_deref(), Some("444455556666"));
    let tasks = json!({"query": "tasks", "family": "web", "region": "eu-west-1"});
    let Query::Tasks(tasks) = parse(&tasks).unwrap() else {
        panic!()
    };
    assert_eq!(tasks.filters.region.as_deref(), Some("eu-west-1"));
}

#[test]
fn every_bad_request_gets_a_specific_message() {
    let cases = [
        (json!({"family": "web"}), "query: required"),
        (
            json!({"query": "average", "family": "web"}),
            "query: expected \"summary\", \"compare\", \"tasks\" or \"regressions\", got \"average\"",
        ),
        (json!({"query": "summary", "famly": "web"}), "unknown field `famly`"),
        (json!({"query": "summary"}), "family: required"),
        (json!({"query": "summary", "family": ""}), "family: must not be empty"),
        (
            json!({"query": "summary", "family": "web app"}),
            "family: a task definition family is 1 to 255 letters",
        ),
        (
            json!({"query": "summary", "family": 7}),
            "family: invalid type: integer `7`, expected a string",
        ),
        (
            json!({"query": "summary", "family": "web", "revisions": ["3"]}),
            "revisions[0]: invalid type: string \"3\"",
        ),
        (
            json!({"query": "summary", "family": "web", "revisions": []}),
            "revisions: list at least one revision",
        ),
        (
            json!({"query": "summary", "family": "web", "revisions": [0]}),
            "revisions: revisions start at 1",
        ),
        (
            json!({"query": "summary", "family": "web", "revisions": [-1]}),
            "revisions[0]: invalid value: integer `-1`",
        ),
        (
            json!({"query": "summary", "family": "web", "launchType": "fargate"}),
            "launchType: expected one of FARGATE, EC2, EXTERNAL, MANAGED_INSTANCES, got \"fargate\"",
        ),
        (
            json!({"query": "summary", "family": "web", "cluster": ""}),
            "cluster: must not be empty",
        ),
        (
            json!({"query": "summary", "family": "web", "cluster": "arn:aws:ecs:eu-west-1:1:task/x"}),
            "cluster: ",
        ),
        (
            json!({"query": "summary", "family": "web", "cluster": "prod) OR attribute_exists(#taskArn"}),
            "cluster: a cluster name is 1 to 255 letters, digits, hyphens and underscores (or give the cluster's ARN), got \"prod) OR",
        ),
        (
            json!({"query": "summary", "family": "web", "from": "yesterday"}),
            "from: ",
        ),
        (
            json!({"query": "summary", "family": "web", "from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
            "from (2026-11-02T00:00:00.000Z) must be before to (2026-11-01T00:00:00.000Z)",
        ),
        (
            json!({"query": "summary", "family": "web", "from": "2026-09-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
            "from..to spans 61.0 days, more than the 31-day limit (MAX_WINDOW_DAYS)",
        ),
        (
            json!({"query": "summary", "family": "web", "phases": []}),
            "phases: list at least one phase",
        ),
        (
            json!({"query": "summary", "family": "web", "phases": ["pull"]}),
            "phases[0]: unknown phase \"pull\"; expected one of provisioning, imagePull",
        ),
        (
            json!({"query": "summary", "family": "web", "phases": ["run", "run"]}),
            "phases[1]: \"run\" is listed twice",
        ),
        (
            json!({"query": "summary", "family": "web", "groupBy": ["az"]}),
            "groupBy[0]: unknown dimension \"az\"",
        ),
        (
            json!({"query": "summary", "family": "web", "limit": 5}),
            "field `limit` does not apply to query \"summary\"",
        ),
        (
            json!({"query": "summary", "family": "web", "format": "csv"}),
            "format: expected \"json\", \"table\" or (for compare) \"svg\", got \"csv\"",
        ),
        (
            json!({"query": "summary", "family": "web", "format": "svg"}),
            "format: \"svg\" draws a comparison; it applies to query \"compare\" only",
        ),
        (
            json!({"query": "compare", "candidate": {"family": "web"}}),
            "baseline: required for query \"compare\"",
        ),
        (
            json!({"query": "compare", "baseline": {"family": "web"}, "candidate": {"family": "web", "phases": ["run"]}}),
            "field `phases` does not apply to candidate (filters)",
        ),
        (
            json!({"query": "compare", "baseline": {"family": "web"}, "candidate": {}}),
            "candidate.family: required",
        ),
        (
            json!({"query": "compare", "family": "web", "baseline": {"family": "web"}, "candidate": {"family": "api"}}),
            "field `family` does not apply to query \"compare\"",
        ),
        (
            json!({"query": "tasks", "family": "web", "limit": 0}),
            "limit: must be from 1 to 1000 (the page size limit), got 0",
        ),
        (
            json!({"query": "tasks", "family": "web", "limit": 1001}),
            "limit: must be from 1 to 1000",
        ),
        (
            json!({"query": "tasks", "family": "web", "nextToken": "abc"}),
            "nextToken: not a token this function issued",
        ),
        (
            json!({"query": "tasks", "family": "web", "groupBy": ["family"]}),
            "field `groupBy` does not apply to query \"tasks\"",
        ),
        (
            json!({"query": "summary", "family": "web", "groupBy": ["family", "availabilityZone"]}),
            "groupBy: \"availabilityZone\" needs \"exact\": true (the rollups are kept by family, revision, cluster, launchType, snapshotter, account and region)",
        ),
        (
            json!({"query": "summary", "family": "web", "account": "1111-2222-3333"}),
            "account: an AWS account id is 12 digits, got \"1111-2222-3333\"",
        ),
        (
            json!({"query": "tasks", "family": "web", "region": "eu-west"}),
            "region: an AWS region name such as \"eu-west-1\", got \"eu-west\"",
        ),
        (
            json!({"query": "compare", "baseline": {"family": "web", "account": "111122223333"},
                "candidate": {"family": "web", "region": "EU-WEST-1"}}),
            "candidate.region: an AWS region name such as \"eu-west-1\", got \"EU-WEST-1\"",
        ),
        (
            json!({"query": "compare", "baseline": {"family": "web", "snapshotter": "soci"},
                "candidate": {"family": "web", "snapshotter": "lazy"}}),
            "candidate.snapshotter: expected one of soci, overlayfs, mixed, unknown, unreported (no image report), got \"lazy\"",
        ),
        (
            json!({"query": "summary", "family": "web", "exact": "yes"}),
            "exact: invalid type: string \"yes\", expected a boolean",
        ),
        (
            json!({"query": "tasks", "family": "web", "exact": true}),
            "field `exact` does not apply to query \"tasks\"",
        ),
        (json!(["summary"]), "request is not a valid JSON object"),
    ];
    for (request, expected) in cases {
        let message = refusal(request.clone());
        assert!(
            message.starts_with(expected),
            "{request}\n  got:      {message}\n  expected: {expected}…"
        );
    }
}

#[test]
fn malformed_json_is_refused_with_its_position() {
    let message = parse_request(b"{\"query\": \"summary\",", &Limits::default(), now(), &key())
        .unwrap_err()
        .0;
    assert!(message.contains("EOF while parsing"), "{message}");
}

#[test]
fn a_token_resumes_its_own_request_and_no_other() {
    let request = json!({"query": "tasks", "family": "web", "limit": 10});
    let fingerprint = request_fingerprint(&[Some("web"), None, None, None, None, Some("None")]);
    let token = PageToken {
        after: timing_domain::query::PageKey {
            task_arn: "arn:aws:ecs:us-east-1:1:task/c/t".into(),
            family: "web".into(),
            created_at: "2026-11-22T01:00:00.000Z".into(),
        },
        window: (1_000, 2_000),
        fingerprint,
    }
    .seal(&key());
    let mut next = request.clone();
    next["nextToken"] = json!(token);
    let Query::Tasks(tasks) = parse(&next).unwrap() else {
        panic!()
    };
    assert_eq!((tasks.filters.from.millis(), tasks.filters.to.millis()), (1_000, 2_000));
    assert_eq!(tasks.after.unwrap().task_arn, "arn:aws:ecs:us-east-1:1:task/c/t");

    let mut other_filters = next.clone();
    other_filters["cluster"] = json!("prod");
    assert!(refusal(other_filters).starts_with("nextToken: was issued for a request with different filters"));
    // Another account's tasks are another listing.
    let mut other_account = next.clone();
    other_account["account"] = json!("111122223333");
    assert!(refusal(other_account).starts_with("nextToken: was issued for a request with different filters"));
    let mut tampered = next.clone();
    tampered["nextToken"] = json!(token.replacen('e', "f", 1));
    let message = refusal(tampered);
    assert!(
        message.starts_with("nextToken: failed its integrity check") || message.starts_with("nextToken: not a token"),
        "{message}"
    );
}

#[test]
fn the_whole_payload_is_judged_not_its_first_value() {
    let raw = |bytes: &[u8]| {
        parse_request(bytes, &Limits::default(), now(), &key())
            .map(|_| ())
            .map_err(|e| e.0)
    };
    let request = br#"{"query":"summary","family":"web"}"#;
    assert_eq!(raw(request), Ok(()));
    assert_eq!(raw(&[request.as_slice(), b" \n"].concat()), Ok(()));
    let trailing = raw(&[request.as_slice(), b" x"].concat()).unwrap_err();
    assert!(
        trailing.starts_with("request has bytes after its JSON object: trailing characters"),
        "{trailing}"
    );
    let second_object = raw(&[request.as_slice(), request.as_slice()].concat()).unwrap_err();
    assert!(
        second_object.starts_with("request has bytes after its JSON object"),
        "{second_object}"
    );
    assert!(raw(b"").unwrap_err().starts_with("empty request"));
    assert!(raw(b" \n\t").unwrap_err().starts_with("empty request"));
    // A valid request padded past the limit with spaces, which JSON allows: refused by its size.
    let mut padded = request.to_vec();
    padded.resize(64 * 1024 + 1, b' ');
    assert_eq!(
        raw(&padded).unwrap_err(),
        "request of 65537 bytes is larger than the 65536-byte limit"
    );
    padded.truncate(64 * 1024);
    assert_eq!(raw(&padded), Ok(()));
}

#[test]
fn regressions_look_back_a_week_over_every_family_unless_told() {
    let Query::Regressions(all) = parse(&json!({"query": "regressions"})).unwrap() else {
        panic!("not a regressions query")
    };
    assert_eq!(
        (all.family, all.min_tasks, all.min_change, all.publish),
        (None, 20, 0.10, false)
    );
    assert_eq!(all.filters.to, now());
    assert_eq!(all.filters.to.millis() - all.filters.from.millis(), 7 * 86_400_000);
    let Query::Regressions(one) = parse(&json!({"query": "regressions", "family": "web", "cluster": "prod",
        "minTasks": 50, "minChange": 0, "from": "2026-11-20T00:00:00Z"}))
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (one.family.as_deref(), one.filters.family.as_str()),
        (Some("web"), "web")
    );
    assert_eq!((one.min_tasks, one.min_change, one.publish), (50, 0.0, false));
    let Query::Regressions(scheduled) = parse(&json!({"query": "regressions", "publish": true})).unwrap() else {
        panic!()
    };
    assert!(scheduled.publish);
    // A lowered window limit shortens the default window instead of refusing the schedule's request.
    let short = Limits {
        max_window_days: 3,
        ..Limits::default()
    };
    let parsed = parse_request(br#"{"query":"regressions","publish":true}"#, &short, now(), &key()).unwrap();
    let Query::Regressions(short) = parsed.query else {
        panic!()
    };
    assert_eq!(short.filters.to.millis() - short.filters.from.millis(), 3 * 86_400_000);
    assert_eq!(one.filters.cluster.as_deref(), Some("prod"));
    for (request, message) in [
        (
            json!({"query": "regressions", "revisions": [3]}),
            "field `revisions` does not apply to query \"regressions\" (it picks the revisions)",
        ),
        (
            json!({"query": "regressions", "minTasks": 4}),
            "minTasks: must be from 5 to 100000 (start-up values each revision needs), got 4",
        ),
        (
            json!({"query": "regressions", "minChange": -0.1}),
            "minChange: a share from 0 to 10 (0.1 is \"p50 at least 10 % longer\"), got -0.1",
        ),
        (
            json!({"query": "regressions", "family": "a b"}),
            "family: a task definition family",
        ),
        (
            json!({"query": "summary", "family": "web", "publish": true}),
            "field `publish` does not apply",
        ),
        (
            json!({"query": "regressions", "format": "svg"}),
            "format: \"svg\" draws a comparison",
        ),
        (
            json!({"query": "regressions", "publish": true, "cluster": "staging"}),
            "publish: the published StartupRegression is the schedule's judgement of every family with the defaults; `cluster` would change it",
        ),
    ] {
        let got = refusal(request);
        assert!(got.starts_with(message), "{got}");
    }
}
