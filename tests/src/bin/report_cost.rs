//! What an image report adds to a task's DynamoDB writes, against the local stack: TASKS stopped tasks (6
//! state changes each) through task-events and the stream through task-rollups, without and with a report
//! sent right after RUNNING, counting every UpdateItem (an SDK interceptor) and its write units (DynamoDB's
//! rule: the larger of the item before and after, per started KB; the index copy of a record with its
//! family counts again). Two rates: each task's stream records in batches of their own ("alone", a quiet
//! family), and every task's in the same batches ("together", a busy one).
//!
//!   cargo run --release -p task-timing-tests --bin report_cost [TASKS]     default 40

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use task_timing_tests::generator::{Lifecycle, Profile, lifecycle};
use task_timing_tests::harness::TestStack;
use task_timing_tests::local::{Error, dynamodb_from_env};

/// UpdateItem requests: (record writes, rollup item writes).
#[derive(Debug, Default, Clone)]
struct Requests(Arc<Mutex<(u64, u64)>>);

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(update) = context.input().downcast_ref::<UpdateItemInput>()
            && let Ok(mut counts) = self.0.lock()
        {
            match update.key().is_some_and(|key| key.contains_key("periodSeries")) {
                true => counts.1 += 1,
                false => counts.0 += 1,
            }
        }
        Ok(())
    }
}

/// The largest item now in `table`, in write units (started KB): what its costliest write cost at most.
async fn largest_units(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<u64, Error> {
    let mut pages = client.scan().table_name(table).into_paginator().send();
    let mut largest = 0;
    while let Some(page) = pages.next().await {
        for item in page?.items.unwrap_or_default() {
            let item: HashMap<_, _> = item;
            let units = task_timing_tests::sizing::write_units(task_timing_tests::sizing::item_bytes(&item)) as u64;
            largest = largest.max(units);
        }
    }
    Ok(largest)
}

/// (record requests, rollup requests, largest record's and rollup item's write units) for `tasks`, with or
/// without reports.
async fn run(tasks: &[Lifecycle], reports: bool, together: bool) -> Result<(u64, u64, u64, u64), Error> {
    let plain = dynamodb_from_env().await?;
    let requests = Requests::default();
    let counted =
        aws_sdk_dynamodb::Client::from_conf(plain.config().to_builder().interceptor(requests.clone()).build());
    let stack = TestStack::with_client(counted.clone())
        .await?
        .with_consumer_client(counted);
    for task in tasks {
        for event in &task.events {
            stack.deliver(event).await?;
            if reports
                && event["detail"]["lastStatus"] == "RUNNING"
                && let Some(report) = &task.report
            {
                stack.deliver(report).await?;
            }
        }
        if !together {
            stack.drain().await?;
        }
    }
    stack.drain().await?;
    let (records, rollups) = requests.0.lock().map(|counts| *counts).unwrap_or_default();
    let record_units = largest_units(&plain, &stack.table).await?;
    let rollup_units = largest_units(&plain, &stack.rollup_table).await?;
    Ok((records, rollups, record_units, rollup_units))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let count = std::env::args()
        .nth(1)
        .map(|n| n.parse::<usize>())
        .transpose()?
        .unwrap_or(40);
    let mut rng = fastrand::Rng::with_seed(21);
    let profile = Profile {
        failure_rate: 0.0,
        spot_interruption_rate: 0.0,
        ..Profile::with_index("cost", 1)
    };
    // All in one hour, so "together" shares rollup items as a busy family's tasks do.
    let tasks: Vec<Lifecycle> = (0..count)
        .map(|i| lifecycle(&mut rng, &profile, 1_795_165_200_000 + i as i64 * 1000))
        .collect();
    println!(
        "| {count} stopped tasks, 6 state changes each | record UpdateItems per task | rollup UpdateItems per task | largest record / rollup item, write units |"
    );
    println!("|---|---:|---:|---:|");
    for together in [false, true] {
        for reports in [false, true] {
            let (records, rollups, record_units, rollup_units) = run(&tasks, reports, together).await?;
            println!(
                "| {}, {} | {:.2} | {:.2} | {record_units} / {rollup_units} |",
                if together {
                    "together (one family's busy hour)"
                } else {
                    "alone (a quiet family)"
                },
                if reports { "with the image report" } else { "without" },
                records as f64 / count as f64,
                rollups as f64 / count as f64,
            );
        }
    }
    Ok(())
}
