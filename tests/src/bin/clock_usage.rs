//! `make bench`: clock-monitor's resource use. Runs the release binary against the metadata stand-in
//! (the project's synchronized fixture) and the local stack, sampling every 100 ms, and reads its CPU
//! time (utime + stime) and memory (VmRSS, VmHWM) from /proc: CPU per sample is the CPU between the
//! 20th and the last sample divided by the samples in between, so start-up is not counted.
//!
//!   clock_usage BINARY SAMPLES

use std::process::{Command, Stdio};
use std::time::Duration;

use task_timing_tests::clock::{MetadataStandIn, Reply};
use task_timing_tests::local::Error;

fn cpu_seconds(pid: u32) -> Result<f64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses): utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').ok_or("malformed /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // USER_HZ is 100 on Linux.
    Ok(ticks / 100.0)
}

fn memory_kib(pid: u32, field: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line.split_whitespace().nth(1).ok_or("malformed line")?.parse()?)
}

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
