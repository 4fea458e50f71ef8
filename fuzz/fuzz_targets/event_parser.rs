//! Any bytes as an EventBridge payload: parsed, and when accepted, carried through the whole pure core
//! (record, ledger, EMF line; the DynamoDB request is the adapter's, outside the domain crate). No panic, no hang; a rejection names what was wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timing_domain::event::parse_event;
use timing_domain::metrics::{emf_document, ledger_keys};
use timing_domain::record::TaskRecord;

fuzz_target!(|payload: &[u8]| {
    let event = match parse_event(payload) {
        Ok(event) => event,
        Err(err) => return assert!(!err.to_string().is_empty(), "a rejection without a message"),
    };
    let record = match TaskRecord::from_event(event, 90) {
        Ok(record) => record,
        Err(err) => return assert!(!err.to_string().is_empty(), "a rejection without a message"),
    };
    let ledger = ledger_keys(&record);
    if let Some(document) = emf_document("Fuzz/TaskTiming", &record, &ledger, 0, Some(60.0)) {
        let line = document.to_line();
        assert!(!line.contains('\n'), "an EMF document must be one line");
    }
});
