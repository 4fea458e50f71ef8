//! docs/records-and-metrics.md's size table: a stopped task's record by DynamoDB's sizing rules, in the
//! stored form before and since it was made compact, with the bookkeeping a write leaves on it. The ledger
//! before the last write is taken as the whole ledger (an upper bound). Events: the last event of
//! generated lifecycles, then every file given (for example ../shared/ecs-events/*.json).
//!
//! Then the image report: its event's size, and the largest generated record with the report's attributes
//! and bookkeeping added (what a task that reported costs per write from then on).
//!
//!   cargo run --release -p task-timing-tests --bin record_sizes -- ../shared/ecs-events/*.json

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use task_timing_tests::generator::{Profile, lifecycle};
use task_timing_tests::local::Error;
use task_timing_tests::sizing::{item_bytes, write_units};
use timing_domain::event::parse_event;
use timing_domain::metrics::ledger_keys;
use timing_domain::record::TaskRecord;
use timing_domain::report::parse_report;
use timing_dynamodb::keys::{
    METRICS_EMITTED, METRICS_EMITTED_BEFORE, REPORT_LEDGER, REPORT_WRITE_ID, ROLLUPS_BY_ACCOUNT, ROLLUPS_FROM_STREAM,
    WRITE_ID,
};
use timing_dynamodb::record_item::{ledger_code, report_item, stored_item};

/// `item` with the bookkeeping of a write: a 16-character write id, the stream mark, the ledger twice.
fn with_bookkeeping(mut item: HashMap<String, AttributeValue>, ledger: Vec<String>) -> HashMap<String, AttributeValue> {
    item.insert(WRITE_ID.into(), AttributeValue::S("0123456789abcdef".into()));
    item.insert(ROLLUPS_FROM_STREAM.into(), AttributeValue::Bool(true));
    item.insert(ROLLUPS_BY_ACCOUNT.into(), AttributeValue::Bool(true));
    if !ledger.is_empty() {
        item.insert(METRICS_EMITTED.into(), AttributeValue::Ss(ledger.clone()));
        item.insert(METRICS_EMITTED_BEFORE.into(), AttributeValue::Ss(ledger));
    }
    item
}

fn sizes(record: &TaskRecord) -> Result<(usize, usize), Error> {
    let keys = ledger_keys(record);
    let before = with_bookkeeping(serde_dynamo::to_item(record)?, keys.iter().cloned().collect());
    let codes = keys.iter().map(|key| ledger_code(key)).collect();
    let now = with_bookkeeping(stored_item(record)?, codes);
    Ok((item_bytes(&before), item_bytes(&now)))
}

/// The report event (2 containers: the app and the sidecar, as the generator sends it), and the largest
/// of 50 generated stopped records with the report merged: its attributes, its write id and the ledger
/// at report time (the whole ledger: an upper bound).
fn report_sizes(rng: &mut fastrand::Rng) -> Result<Vec<(String, usize)>, Error> {
    let mut largest = (0, 0);
    let mut event_bytes = 0;
    for i in 0..50 {
        let task = lifecycle(rng, &Profile::with_index("bench", 1), 1_795_000_000_000 + i * 1000);
        let (Some(last), Some(report)) = (task.events.last(), task.report.as_ref()) else {
            continue;
        };
        event_bytes = event_bytes.max(report.to_string().len());
        let record = TaskRecord::from_event(parse_event(last.to_string().as_bytes())?, 90)?;
        let report = parse_report(report.to_string().as_bytes())?.detail;
        let keys = ledger_keys(&record);
        let codes: Vec<String> = keys.iter().map(|key| ledger_code(key)).collect();
        let mut item = with_bookkeeping(stored_item(&record)?, codes.clone());
        let before = item_bytes(&item);
        item.extend(report_item(
            report.snapshotter(),
            &report.pulled_containers(),
            report.readiness,
        )?);
        item.insert(REPORT_WRITE_ID.into(), AttributeValue::S("0123456789abcdef".into()));
        item.insert(REPORT_LEDGER.into(), AttributeValue::Ss(codes));
        largest = largest.max((item_bytes(&item), before));
    }
    Ok(vec![
        (
            "the report event (PutEvents entry, 2 containers), largest".into(),
            event_bytes,
        ),
        ("largest generated stopped record, without the report".into(), largest.1),
        ("the same record with the report merged".into(), largest.0),
    ])
}

fn main() -> Result<(), Error> {
    let mut rows = Vec::new();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut generated = Vec::new();
    for i in 0..50 {
        let task = lifecycle(&mut rng, &Profile::with_index("bench", 1), 1_795_000_000_000 + i * 1000);
        let last = task.events.last().ok_or("a lifecycle has events")?;
        generated.push(sizes(&TaskRecord::from_event(
            parse_event(last.to_string().as_bytes())?,
            90,
        )?)?);
    }
    let largest = generated
        .iter()
        .max_by_key(|(_, now)| *now)
        .copied()
        .unwrap_or_default();
    let report_rows = report_sizes(&mut rng)?;
    rows.push(("50 generated stopped Fargate tasks, the largest".to_owned(), largest));
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path)?;
        // Some samples are not whole events (a `detail` alone): the parser's refusal says why.
        let event = match parse_event(&bytes) {
            Ok(event) => event,
            Err(err) => {
                eprintln!("{path}: skipped: {err}");
                continue;
            }
        };
        let status = event.detail.last_status.clone().unwrap_or_default();
        let record = TaskRecord::from_event(event, 90)?;
        let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
        rows.push((format!("{name} ({status})"), sizes(&record)?));
    }
    println!("| record | before | write units | stored form | write units |");
    println!("|---|---:|---:|---:|---:|");
    for (name, (before, now)) in rows {
        println!(
            "| {name} | {before} B | {} | {now} B | {} |",
            write_units(before),
            write_units(now)
        );
    }
    println!();
    println!("| with the image report | bytes | cost |");
    println!("|---|---:|---:|");
    for (index, (name, bytes)) in report_rows.into_iter().enumerate() {
        let cost = match index {
            // PutEvents bills per 64 KB chunk of an entry.
            0 => "1 PutEvents entry".to_owned(),
            _ => format!("{} write units", write_units(bytes)),
        };
        println!("| {name} | {bytes} B | {cost} |");
    }
    Ok(())
}
