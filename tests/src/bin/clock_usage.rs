//! `make bench`: task-sidecar's resource use. Runs the release binary against the metadata stand-in
//! (the project's synchronized fixture) and the local stack, sampling every 100 ms, and reads its CPU
//! time (utime + stime) and memory (VmRSS, VmHWM) from /proc: CPU per sample is the CPU between the
//! 20th and the last sample divided by the samples in between, so start-up is not counted.
//!
//!   clock_usage BINARY SAMPLES

use std::process::{Command, Stdio};
use std::time::Duration;

use task_timing_tests::clock::{MetadataStandIn, Reply};
use task_timing_tests::local::Error;
use task_timing_tests::procfs::{cpu_seconds, memory_kib};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: clock_usage BINARY SAMPLES";
    let binary = args.next().ok_or(usage)?;
    let samples: u64 = args.next().ok_or(usage)?.parse()?;
    let fixture = std::fs::read("fixtures/task-metadata/fargate-service-synchronized.json")?;
    let standin = MetadataStandIn::start(Reply::Json(fixture)).await?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut child = Command::new(&binary)
        .args([
            "run",
            "--interval",
            "100ms",
            "--namespace",
            "Bench/ClockMonitor",
            "--listen",
            &listen.to_string(),
        ])
        .env("ECS_CONTAINER_METADATA_URI_V4", &standin.endpoint)
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    while standin.served() < 20 {
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
    println!("| samples measured | CPU per sample (read, parse, publish) | RSS | peak RSS | binary size |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {per_sample_ms:.3} ms | {:.1} MiB | {:.1} MiB | {} bytes |",
        last - first,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        std::fs::metadata(&binary)?.len()
    );
    Ok(())
}
