//! Developer tool behind `make local-up` and `make demo` (not shipped).
//!
//!   devtool create-tables          create the tasks table named by TABLE_NAME and the rollup table
//!                                  named by ROLLUP_TABLE_NAME (idempotent)
//!   devtool demo-events DIR [SEED] write the demo's deliveries as DIR/events/0001.json, ... and the
//!                                  generator's own durations as DIR/truth.json
//!   devtool report DIR             per-task table of the demo's tasks, read back from DynamoDB through
//!                                  the family index and checked against DIR/truth.json
//!   devtool release-events DIR     write the deliveries of a release the demo catches: more tasks of
//!                                  checkout:9 and the first of checkout:15, whose image pulls slower
//!   devtool account-events DIR     write the deliveries of a second account (central mode) whose cluster
//!                                  and family have the demo's names: its own checkout:15, not slower

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use task_timing_tests::generator::{Profile, demo_stream};
use task_timing_tests::local::{Error, create_rollup_table, create_tasks_table, dynamodb_from_env};
use timing_domain::query::RecordQuery;
use timing_domain::report::Snapshotter;
use timing_domain::timestamp::Timestamp;
use timing_domain::timing::Phase;
use timing_dynamodb::TaskStore;
use timing_dynamodb::keys::{DEFAULT_ROLLUP_TABLE_NAME, DEFAULT_TABLE_NAME};

/// Chosen so that the demo shows a failed start, a Spot interruption and lazy-loading fallbacks among its 24 tasks.
const DEMO_SEED: u64 = 20;

fn table_name() -> String {
    std::env::var("TABLE_NAME").unwrap_or_else(|_| DEFAULT_TABLE_NAME.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["create-tables"] => {
            let client = dynamodb_from_env().await?;
            create_tasks_table(&client, &table_name()).await?;
            let rollups = std::env::var("ROLLUP_TABLE_NAME").unwrap_or_else(|_| DEFAULT_ROLLUP_TABLE_NAME.to_owned());
            create_rollup_table(&client, &rollups).await
        }
        ["demo-events", dir, rest @ ..] => {
            let seed = rest
                .first()
                .map_or(Ok(DEMO_SEED), |s| s.parse::<u64>())
                .map_err(|_| "SEED must be a whole number")?;
            write_demo_events(dir, seed)
        }
        ["report", dir] => report(dir).await,
        ["release-events", dir] => write_release_events(dir),
        ["account-events", dir] => write_account_events(dir),
        _ => Err(
            "usage: devtool create-tables | demo-events DIR [SEED] | report DIR | release-events DIR | account-events DIR"
                .into(),
        ),
    }
}

fn write_demo_events(dir: &str, seed: u64) -> Result<(), Error> {
    let profiles = [
        // A third of the indexed family's tasks fall back to pulling whole (what the fallback alarm is for).
        Profile {
            fallback_rate: 0.35,
            ..Profile::with_index("checkout-soci", 14)
        },
        Profile::without_index("checkout", 9),
    ];
    let (tasks, stream) = demo_stream(
        seed,
        &[(profiles[0].clone(), 12), (profiles[1].clone(), 12)],
        chrono::Utc::now().timestamp_millis(),
    );
    write_events(&format!("{dir}/events"), &stream)?;
    let truth: Vec<Value> = tasks
        .iter()
        .map(|t| {
            json!({"taskArn": t.truth.task_arn, "family": t.truth.family, "startupMillis": t.truth.startup(),
            "imagePullMillis": t.truth.image_pull,
            // Readiness arrives with the report: no report, no phases to ready.
            "warmUpMillis": t.report.as_ref().and(t.truth.phase_millis(Phase::WarmUp)),
            "readyMillis": t.report.as_ref().and(t.truth.phase_millis(Phase::Ready)),
            "snapshotter": if t.report.is_some() { t.truth.snapshotter } else { "unreported" }})
        })
        .collect();
    std::fs::write(format!("{dir}/truth.json"), serde_json::to_vec_pretty(&truth)?)?;
    let distinct: usize = tasks.iter().map(|t| t.events.len()).sum();
    let reports = tasks.iter().filter(|t| t.report.is_some()).count();
    let indexed = tasks
        .iter()
        .filter(|t| t.truth.family == profiles[0].family && !t.truth.failed_to_start);
    let fallbacks = indexed.filter(|t| t.truth.snapshotter == "overlayfs").count();
    println!(
        "Generated {} tasks ({} with a SOCI index, {} without; {} failed to start, {} Spot interruptions): {distinct} state changes and {reports} image reports sent as {} deliveries, with duplicates, late RUNNING events and early reports; {fallbacks} {} tasks fell back to overlayfs.",
        tasks.len(),
        profiles[0].family,
        profiles[1].family,
        tasks.iter().filter(|t| t.truth.failed_to_start).count(),
        tasks.iter().filter(|t| t.truth.spot_interrupted).count(),
        stream.len(),
        profiles[0].family,
    );
    Ok(())
}

fn write_events(dir: &str, stream: &[Value]) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    for (index, event) in stream.iter().enumerate() {
        std::fs::write(
            format!("{dir}/{:04}.json", index + 1),
            serde_json::to_vec_pretty(event)?,
        )?;
    }
    Ok(())
}

/// Chosen so that both revisions have at least the watch's 20 start-ups (checkout:9 with the 11 of the demo's
/// default seed that start).
const RELEASE_SEED: u64 = 15;

/// A release the regression watch must catch: checkout:15's image is half again as large, so its pull
/// takes 36 s at the median instead of 24 s; checkout:9 keeps running beside it.
fn write_release_events(dir: &str) -> Result<(), Error> {
    let slower = Profile {
        image_pull: (36.0, 0.30),
        ..Profile::without_index("checkout", 15)
    };
    let (more_of_9, of_15) = (14, 24);
    let (tasks, stream) = demo_stream(
        RELEASE_SEED,
        &[(Profile::without_index("checkout", 9), more_of_9), (slower, of_15)],
        chrono::Utc::now().timestamp_millis(),
    );
    write_events(dir, &stream)?;
    let started = |revision: &str| {
        tasks
            .iter()
            .filter(|t| {
                t.events[0]["detail"]["taskDefinitionArn"]
                    .as_str()
                    .is_some_and(|arn| arn.ends_with(&format!(":task-definition/{revision}")))
            })
            .filter(|t| t.truth.startup().is_some())
            .count()
    };
    println!(
        "Released checkout:15 (image pull 36 s at the median instead of 24 s): {more_of_9} more tasks of checkout:9 ({} started) and {of_15} of checkout:15 ({} started), {} deliveries.",
        started("checkout:9"),
        started("checkout:15"),
        stream.len()
    );
    Ok(())
}

/// The second account of the demo's organisation, and its seed.
const OTHER_ACCOUNT: &str = "444455556666";
const ACCOUNT_SEED: u64 = 22;

fn write_account_events(dir: &str) -> Result<(), Error> {
    let theirs = Profile {
        account: OTHER_ACCOUNT.into(),
        ..Profile::without_index("checkout", 15)
    };
    let count = 12;
    let (_, stream) = demo_stream(
        ACCOUNT_SEED,
        &[(theirs.clone(), count)],
        chrono::Utc::now().timestamp_millis(),
    );
    write_events(dir, &stream)?;
    println!(
        "Account {OTHER_ACCOUNT} ({}) forwards its events to the central bus: {count} tasks of its own checkout:15 on its own \
         cluster {}, the same names as this account's, image pull 24 s at the median; {} deliveries.",
        theirs.region,
        theirs.cluster,
        stream.len()
    );
    Ok(())
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}"))
}

/// The generator's milliseconds as the seconds the record must hold.
fn expected_seconds(truth: &Value, key: &str) -> Option<f64> {
    truth[key].as_i64().map(|millis| millis as f64 / 1000.0)
}

async fn report(dir: &str) -> Result<(), Error> {
    let truth: Vec<Value> = serde_json::from_slice(&std::fs::read(format!("{dir}/truth.json"))?)?;
    let truth: BTreeMap<&str, &Value> = truth.iter().filter_map(|t| Some((t["taskArn"].as_str()?, t))).collect();
    let families: BTreeSet<&str> = truth.values().filter_map(|t| t["family"].as_str()).collect();
    let store = TaskStore::new(dynamodb_from_env().await?, table_name());
    let row = |cells: [&str; 11]| {
        println!(
            "| {:<32} | {:<13} | {:>3} | {:<24} | {:<24} | {:>9} | {:>10} | {:>9} | {:>7} | {:<11} | {:<25} |",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            cells[6],
            cells[7],
            cells[8],
            cells[9],
            cells[10]
        )
    };
    row([
        "task id",
        "family",
        "rev",
        "createdAt",
        "startedAt",
        "startup s",
        "img pull s",
        "warm-up s",
        "ready s",
        "snapshotter",
        "stopCode",
    ]);
    println!(
        "|{:-<34}|{:-<15}|{:->5}|{:-<26}|{:-<26}|{:->11}|{:->12}|{:->11}|{:->9}|{:-<13}|{:-<27}|",
        "", "", ":", "", "", ":", ":", ":", ":", "", ""
    );
    let (mut checked, mut mismatches) = (0, Vec::new());
    for family in families {
        // Through the (family, createdAt) index, as the summary function reads.
        let every_time = RecordQuery {
            family: (*family).to_owned(),
            from: Timestamp::from_millis(0),
            to: Timestamp::parse("9999-12-31T23:59:59.999Z")?,
            account: None,
            region: None,
            cluster: None,
            revisions: Vec::new(),
            launch_type: None,
            snapshotter: None,
        };
        let page = store.newest_first(&every_time, 100_000, None, u64::MAX).await?;
        let records: Vec<_> = (page.records.into_iter().rev())
            .filter(|r| truth.contains_key(r.task_arn.as_str()))
            .collect();
        for record in &records {
            let started = record
                .started_at
                .map_or_else(|| "(failed to start)".to_owned(), |t| t.to_string());
            let created = record.created_at.map_or_else(String::new, |t| t.to_string());
            let revision = record.revision.to_string();
            let (startup, pull) = (seconds(record.startup_seconds), seconds(record.image_pull_seconds));
            let (warm_up, ready) = (record.phase_seconds(Phase::WarmUp), record.phase_seconds(Phase::Ready));
            row([
                &record.task_id,
                &record.family,
                &revision,
                &created,
                &started,
                &startup,
                &pull,
                &seconds(warm_up),
                &seconds(ready),
                Snapshotter::label(record.snapshotter),
                record.stop_code.as_deref().unwrap_or("-"),
            ]);
            let expected = truth[record.task_arn.as_str()];
            checked += 1;
            if record.startup_seconds != expected_seconds(expected, "startupMillis")
                || record.image_pull_seconds != expected_seconds(expected, "imagePullMillis")
                || warm_up != expected_seconds(expected, "warmUpMillis")
                || ready != expected_seconds(expected, "readyMillis")
                || expected["snapshotter"].as_str() != Some(Snapshotter::label(record.snapshotter))
            {
                mismatches.push(record.task_id.clone());
            }
        }
    }

    if checked != truth.len() || !mismatches.is_empty() {
        return Err(format!(
            "{checked} of {} tasks found; durations differ from the generator's for {mismatches:?}",
            truth.len()
        )
        .into());
    }
    println!(
        "\nAll {checked} records match the durations the generator sampled, to the millisecond (warm-up and ready included), and the snapshotter its sidecar reported."
    );
    Ok(())
}
