//! `make bench`: a bootstrap (ours, or the Python reference) run as Lambda runs it, against the
//! Runtime API stand-in (`task_timing_tests::runtime_api`) and the local stack.
//!
//!   runtime_bench init   RUNS   -- COMMAND...   cold starts: process start to the first `GET .../next`
//!   runtime_bench events EVENTS -- COMMAND...   one process handling EVENTS task state changes
//!
//! The command runs with the variables Lambda sets, not this shell's; `-- NAME=VALUE... COMMAND` adds some.
//!
//! Prints one Markdown table row. Init is measured from just before spawn, so it includes exec and
//! the dynamic loader, as Lambda's Init Duration does. Events are RUNNING and STOPPED events of generated
//! lifecycles in version order, each delivered once (what the rule passes); the handler time is from
//! the hand-over of an invocation to its response, DynamoDB calls to the local stack included. CPU per
//! event is the process's CPU after init divided by the events; peak RSS is VmHWM at the end.

use std::process::Child;
use std::time::{Duration, Instant};

use fastrand::Rng;
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::local::{Error, create_tables, dynamodb_from_env, unique_name};
use task_timing_tests::procfs::{cpu_seconds, memory_kib};
use task_timing_tests::runtime_api::{Answer, RuntimeApi, spawn, stop};
use timing_domain::stats::percentile;

const WAIT: Duration = Duration::from_secs(60);

/// Counts what the process writes (its CloudWatch Logs ingestion: EMF lines and application logs)
/// until it exits.
fn count_output(child: &mut Child) -> Result<std::thread::JoinHandle<u64>, Error> {
    let mut stdout = child.stdout.take().ok_or("stdout not piped")?;
    let mut stderr = child.stderr.take().ok_or("stderr not piped")?;
    let errors = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()).unwrap_or(0));
    Ok(std::thread::spawn(move || {
        std::io::copy(&mut stdout, &mut std::io::sink()).unwrap_or(0) + errors.join().unwrap_or(0)
    }))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn cold_starts(runs: usize, command: &[String]) -> Result<(), Error> {
    let mut inits = Vec::new();
    let mut rss_kib = Vec::new();
    for _ in 0..runs {
        let api = RuntimeApi::start().await?;
        let started = Instant::now();
        let child = spawn(&api, command, &[])?;
        let ready = api.first_next(WAIT).await?;
        inits.push(millis(ready - started));
        rss_kib.push(memory_kib(child.id(), "VmHWM")? as f64);
        stop(child)?;
    }
    inits.sort_by(f64::total_cmp);
    rss_kib.sort_by(f64::total_cmp);
    println!(
        "| {} | {runs} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MiB |",
        command.join(" "),
        percentile(&inits, 0.5),
        inits[0],
        percentile(&inits, 0.9),
        percentile(&rss_kib, 0.5) / 1024.0
    );
    Ok(())
}

/// RUNNING and STOPPED events of generated lifecycles, in version order, `count` of them.
fn task_state_changes(count: usize) -> Result<Vec<Vec<u8>>, Error> {
    let mut rng = Rng::with_seed(8);
    let mut events = Vec::new();
    let mut created = 1_795_000_000_000;
    while events.len() < count {
        created += 1_000;
        for event in lifecycle(&mut rng, &Profile::with_index("bench", 1), created).events {
            let status = event["detail"]["lastStatus"].as_str().unwrap_or_default();
            if matches!(status, "RUNNING" | "STOPPED") && events.len() < count {
                events.push(serde_json::to_vec(&event)?);
            }
        }
    }
    Ok(events)
}

async fn events(count: usize, command: &[String]) -> Result<(), Error> {
    let client = dynamodb_from_env().await?;
    let table = unique_name("bench-runtime");
    let rollup_table = create_tables(&client, &table).await?;
    let environment = [
        ("TABLE_NAME", table),
        ("ROLLUP_TABLE_NAME", rollup_table),
        ("SLOW_STARTUP_SECONDS", "60".to_owned()),
        // As `make deploy` configures the functions: JSON application logs at INFO.
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
    ];
    let api = RuntimeApi::start().await?;
    let mut child = spawn(&api, command, &environment)?;
    let output = count_output(&mut child)?;
    api.first_next(WAIT).await?;
    let cpu_after_init = cpu_seconds(child.id())?;
    for event in task_state_changes(count)? {
        api.queue(event);
    }
    let finished = api.finished(count, WAIT * 10).await?;
    let cpu = cpu_seconds(child.id())? - cpu_after_init;
    let peak_rss_kib = memory_kib(child.id(), "VmHWM")?;
    stop(child)?;
    let output_bytes = output.join().map_err(|_| "output counter panicked")?;
    let errors: Vec<&String> = finished
        .iter()
        .filter_map(|(_, answer)| match answer {
            Answer::Error(body) => Some(body),
            Answer::Response => None,
        })
        .collect();
    if let Some(first) = errors.first() {
        return Err(format!("{} of {count} invocations failed; the first: {first}", errors.len()).into());
    }
    let mut handler: Vec<f64> = finished.iter().map(|(took, _)| millis(*took)).collect();
    handler.sort_by(f64::total_cmp);
    println!(
        "| {} | {count} | {:.2} ms | {:.2} ms | {:.2} ms | {:.3} ms | {:.1} MiB | {:.0} B |",
        command.join(" "),
        handler.iter().sum::<f64>() / count as f64,
        percentile(&handler, 0.5),
        percentile(&handler, 0.99),
        cpu * 1000.0 / count as f64,
        peak_rss_kib as f64 / 1024.0,
        output_bytes as f64 / count as f64
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args
        .iter()
        .position(|arg| arg == "--")
        .ok_or("usage: runtime_bench init|events N -- COMMAND...")?;
    let (mode, command) = (&args[..split], &args[split + 1..]);
    match mode {
        [mode, n] if mode == "init" => cold_starts(n.parse()?, command).await,
        [mode, n] if mode == "events" => events(n.parse()?, command).await,
        _ => Err("usage: runtime_bench init|events N -- COMMAND...".into()),
    }
}
