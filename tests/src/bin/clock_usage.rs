//! `make bench`: task-sidecar's resource use, the release binary against the metadata stand-in (a
//! Fargate task that lazy-loaded, with ClockDrift) and the local stack.
//!
//! 1. The image report as a one-shot container (`report`): its whole CPU time and peak memory, from
//!    getrusage of the exited child.
//! 2. The clock job alone (`run --no-image-report`) and with the report beside it (`run`), sampling every
//!    100 ms: CPU per sample is the CPU between the 20th and the last sample divided by the samples in
//!    between (start-up, and the report, which is sent in the first second, are not counted); memory
//!    (VmRSS, VmHWM) from /proc at the end.
//!
//!   clock_usage BINARY SAMPLES

use std::process::{Command, Stdio};
use std::time::Duration;

use task_timing_tests::clock::{MetadataStandIn, Reply};
use task_timing_tests::local::Error;
use task_timing_tests::procfs::{children_usage, cpu_seconds, memory_kib};

const FIXTURE: &str = "fixtures/task-metadata/fargate-soci-with-sidecar.json";

/// (samples measured, CPU ms per sample, RSS KiB, peak RSS KiB) of `run` with `extra` arguments.
async fn run_usage(
    binary: &str,
    standin: &MetadataStandIn,
    samples: u64,
    extra: &[&str],
) -> Result<(u64, f64, u64, u64), Error> {
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let listen = listen.to_string();
    let mut args = vec![
        "run",
        "--interval",
        "100ms",
        "--namespace",
        "Bench/TaskSidecar",
        "--listen",
        &listen,
    ];
    args.extend(extra);
    let mut child = Command::new(binary)
        .args(&args)
        .env("ECS_CONTAINER_METADATA_URI_V4", &standin.endpoint)
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let start = standin.served();
    while standin.served() < start + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (first, cpu_first) = (standin.served(), cpu_seconds(pid)?);
    while standin.served() < first + samples {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (last, cpu_last) = (standin.served(), cpu_seconds(pid)?);
    let (rss, peak) = (memory_kib(pid, "VmRSS:")?, memory_kib(pid, "VmHWM:")?);
    child.kill()?;
    child.wait()?;
    let per_sample_ms = (cpu_last - cpu_first) * 1000.0 / (last - first) as f64;
    Ok((last - first, per_sample_ms, rss, peak))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: clock_usage BINARY SAMPLES";
    let binary = args.next().ok_or(usage)?;
    let samples: u64 = args.next().ok_or(usage)?.parse()?;
    let standin = MetadataStandIn::start(Reply::Json(std::fs::read(FIXTURE)?)).await?;

    // The one-shot report first: getrusage(RUSAGE_CHILDREN) then holds this child alone.
    let output = Command::new(&binary)
        .args(["report", "--exclude-container", "task-sidecar"])
        .env("ECS_CONTAINER_METADATA_URI_V4", &standin.endpoint)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "task-sidecar report failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let (report_cpu, report_peak) = children_usage()?;
    println!("| image report, one-shot (`task-sidecar report`) | CPU, whole run | peak RSS |");
    println!("|---|---:|---:|");
    println!(
        "| read /task, build, PutEvents, exit | {:.1} ms | {:.1} MiB |",
        report_cpu * 1000.0,
        report_peak as f64 / 1024.0
    );
    println!();

    let clock = run_usage(&binary, &standin, samples, &["--no-image-report"]).await?;
    let both = run_usage(&binary, &standin, samples, &["--exclude-container", "task-sidecar"]).await?;
    println!(
        "| `task-sidecar run` | samples measured | CPU per sample (read, parse, publish) | RSS | peak RSS | binary size |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let size = std::fs::metadata(&binary)?.len();
    for (name, (measured, per_sample_ms, rss, peak)) in [
        ("clock job alone (`--no-image-report`)", clock),
        ("with the image report", both),
    ] {
        println!(
            "| {name} | {measured} | {per_sample_ms:.3} ms | {:.1} MiB | {:.1} MiB | {size} bytes |",
            rss as f64 / 1024.0,
            peak as f64 / 1024.0,
        );
    }
    Ok(())
}
