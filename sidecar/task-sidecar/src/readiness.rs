//! When was the task ready? Pure decisions over the Task Metadata endpoint v4 `/task`: which signal tells
//! (a readiness URL, else the counted containers' health checks, else none: no readiness, never a guess)
//! and what a `/task` body says about the health checks. The polling is in `ready_wait`.

use hyper::Uri;
use serde::Deserialize;
use timing_domain::report::{ImageReport, Readiness, ReadySignal};
use timing_domain::timestamp::Timestamp;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTask {
    #[serde(default)]
    containers: Vec<RawContainer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawContainer {
    #[serde(default)]
    name: String,
    /// Present only for a container whose definition has a health check.
    health: Option<RawHealth>,
}

/// The v4 metadata's `Health` object: its keys are lowerCamelCase, unlike the rest of the response.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHealth {
    status: Option<String>,
    status_since: Option<String>,
}

/// The counted containers (not `excluded`) that have a health check, with their `Health`.
fn health_checked<'a>(task: &'a RawTask, excluded: &'a [String]) -> impl Iterator<Item = (&'a str, &'a RawHealth)> {
    task.containers
        .iter()
        .filter(|c| !excluded.contains(&c.name))
        .filter_map(|c| c.health.as_ref().map(|h| (c.name.as_str(), h)))
}

fn parse(body: &[u8]) -> Result<RawTask, String> {
    serde_json::from_slice(body).map_err(|err| format!("task metadata is not valid JSON: {err}"))
}

/// How readiness is judged: a URL when one is given; else the health checks, when any counted container has
/// one in this `/task` body; else `None` (the report then says nothing about readiness).
pub fn choose_signal(url_given: bool, task_body: &[u8], excluded: &[String]) -> Option<ReadySignal> {
    if url_given {
        return Some(ReadySignal::Url);
    }
    let task = parse(task_body).ok()?;
    health_checked(&task, excluded).next().map(|_| ReadySignal::HealthCheck)
}

/// `Ok(readyAt)` when every counted container with a health check is HEALTHY: the latest of their
/// `statusSince`, when the last of them became healthy. `Err(why not yet)` otherwise (STARTING, UNHEALTHY,
/// UNKNOWN, or a HEALTHY without a readable `statusSince`, which is never guessed).
pub fn judge_health(task_body: &[u8], excluded: &[String]) -> Result<Timestamp, String> {
    let task = parse(task_body)?;
    let mut latest: Option<Timestamp> = None;
    for (name, health) in health_checked(&task, excluded) {
        let status = health.status.as_deref().unwrap_or("(no status)");
        if status != "HEALTHY" {
            return Err(format!("container {name} is {status}"));
        }
        let since = health
            .status_since
            .as_deref()
            .ok_or_else(|| format!("container {name} is HEALTHY without a statusSince"))?;
        let since = Timestamp::parse(since).map_err(|err| format!("container {name}'s statusSince: {err}"))?;
        latest = latest.max(Some(since));
    }
    latest.ok_or_else(|| "no counted container has a health check".to_owned())
}

/// Sets the report's readiness. A readyAt before the task's pullStartedAt is not this task's (task-events
/// refuses it): the readiness is dropped (no readiness, not "not ready": never a guess), the report still
/// goes, and the reason is returned for the log.
pub fn attach(report: &mut ImageReport, readiness: Option<Readiness>) -> Option<String> {
    if let Some((ready_at, pulled)) = readiness
        .and_then(|r| r.ready_at)
        .zip(report.pull_started_at)
        .filter(|(ready_at, pulled)| ready_at < pulled)
    {
        report.readiness = None;
        return Some(format!(
            "readyAt {ready_at} is before pullStartedAt {pulled}; readiness not reported"
        ));
    }
    report.readiness = readiness;
    None
}

/// `--ready-url`: plain http with a host (the task's loopback, e.g. `http://127.0.0.1:8080/health`).
pub fn parse_ready_url(text: &str) -> Result<Uri, String> {
    let uri: Uri = text.parse().map_err(|err| format!("{text:?} is not a URL: {err}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(format!(
            "{text:?}: expected an http:// URL on the task's loopback, e.g. http://127.0.0.1:8080/health"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixture as fixture;
    use serde_json::json;

    fn sidecar() -> Vec<String> {
        vec!["task-sidecar".into()]
    }

    fn task(containers: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "Containers": containers })).unwrap()
    }

    #[test]
    fn a_url_first_then_counted_health_checks_then_nothing() {
        let healthy = fixture("fargate-health-healthy.json");
        let plain = fixture("fargate-soci-with-sidecar.json");
        assert_eq!(choose_signal(true, &plain, &sidecar()), Some(ReadySignal::Url));
        assert_eq!(choose_signal(true, &healthy, &sidecar()), Some(ReadySignal::Url));
        assert_eq!(
            choose_signal(false, &healthy, &sidecar()),
            Some(ReadySignal::HealthCheck)
        );
        assert_eq!(choose_signal(false, &plain, &sidecar()), None);
        // Only the left-out sidecar has a health check: nothing tells when the task was ready.
        let only_sidecar = task(json!([
            {"Name": "app"},
            {"Name": "task-sidecar", "Health": {"status": "HEALTHY", "statusSince": "2026-11-20T10:00:51Z"}}
        ]));
        assert_eq!(choose_signal(false, &only_sidecar, &sidecar()), None);
        assert_eq!(choose_signal(false, &only_sidecar, &[]), Some(ReadySignal::HealthCheck));
    }

    #[test]
    fn ready_when_every_counted_health_check_is_healthy_at_the_latest_status_since() {
        let starting = fixture("fargate-health-starting.json");
        assert_eq!(
            judge_health(&starting, &sidecar()),
            Err("container app is STARTING".into())
        );
        // The app's statusSince, to the millisecond; the sidecar's later one is left out.
        let healthy = fixture("fargate-health-healthy.json");
        assert_eq!(
            judge_health(&healthy, &sidecar()),
            Ok(Timestamp::parse("2026-11-20T10:00:48.123Z").unwrap())
        );
        assert_eq!(
            judge_health(&healthy, &[]),
            Ok(Timestamp::parse("2026-11-20T10:00:51.204Z").unwrap())
        );
        let two = task(json!([
            {"Name": "web", "Health": {"status": "HEALTHY", "statusSince": "2026-11-20T10:01:07.5Z"}},
            {"Name": "worker", "Health": {"status": "HEALTHY", "statusSince": "2026-11-20T10:00:59.25Z"}},
            {"Name": "no-check"}
        ]));
        assert_eq!(
            judge_health(&two, &[]),
            Ok(Timestamp::parse("2026-11-20T10:01:07.500Z").unwrap())
        );
    }

    #[test]
    fn anything_but_healthy_keeps_waiting_and_nothing_is_guessed() {
        let one = |health: serde_json::Value| task(json!([{"Name": "app", "Health": health}]));
        for status in ["STARTING", "UNHEALTHY", "UNKNOWN"] {
            let body = one(json!({"status": status, "statusSince": "2026-11-20T10:00:48Z"}));
            assert_eq!(judge_health(&body, &[]), Err(format!("container app is {status}")));
        }
        let why = |body: &[u8]| judge_health(body, &[]).unwrap_err();
        assert!(why(&one(json!({"status": "HEALTHY"}))).contains("without a statusSince"));
        assert!(why(&one(json!({"status": "HEALTHY", "statusSince": "soon"}))).contains("app's statusSince"));
        assert!(why(&one(json!({}))).contains("(no status)"));
        assert!(why(&task(json!([{"Name": "app"}]))).contains("no counted container"));
        assert!(why(b"{\"Containers\": [").contains("not valid JSON"));
    }

    #[test]
    fn a_ready_time_before_the_pull_is_dropped_and_the_report_kept() {
        let mut report =
            crate::image_report::image_report(&fixture("fargate-health-healthy.json"), &sidecar()).unwrap();
        let at = |text: &str| Some(Timestamp::parse(text).unwrap());
        let ready = |ready_at| Readiness {
            signal: ReadySignal::HealthCheck,
            ready_at,
        };
        assert_eq!(attach(&mut report, Some(ready(at("2026-11-20T10:00:48.123Z")))), None);
        assert_eq!(report.readiness, Some(ready(at("2026-11-20T10:00:48.123Z"))));
        assert!(report.validate().is_ok());
        // Before PullStartedAt (10:00:11.204): no readiness at all, so the report still validates.
        let problem = attach(&mut report, Some(ready(at("2026-11-20T10:00:11.203Z")))).unwrap();
        assert!(problem.contains("before pullStartedAt"), "{problem}");
        assert_eq!(report.readiness, None);
        assert!(report.validate().is_ok());
        assert_eq!(attach(&mut report, None), None);
        assert_eq!(report.readiness, None);
    }

    #[test]
    fn ready_urls_are_plain_http_with_a_host() {
        let uri = parse_ready_url("http://127.0.0.1:8080/health").unwrap();
        assert_eq!(
            (uri.host(), uri.port_u16(), uri.path()),
            (Some("127.0.0.1"), Some(8080), "/health")
        );
        for bad in [
            "https://127.0.0.1/health",
            "127.0.0.1:8080/health",
            "/health",
            "not a url",
        ] {
            assert!(parse_ready_url(bad).is_err(), "{bad}");
        }
    }
}
