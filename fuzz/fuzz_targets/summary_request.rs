//! Any bytes as a task-summary request: validated against the default limits with a fixed clock and
//! token key. No panic, no hang; a rejection names what was wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timing_domain::timestamp::Timestamp;
use timing_domain::request::{Limits, parse_request};
use timing_domain::token::TokenKey;

fuzz_target!(|payload: &[u8]| {
    let (Ok(key), Ok(now)) = (
        TokenKey::from_secret("fuzzing-secret-0123456789abcdef0123456789"),
        Timestamp::parse("2026-11-22T12:00:00Z"),
    ) else {
        panic!("the fixed key and clock are valid");
    };
    if let Err(err) = parse_request(payload, &Limits::default(), now, &key) {
        assert!(!err.to_string().is_empty(), "a rejection without a message");
    }
});
