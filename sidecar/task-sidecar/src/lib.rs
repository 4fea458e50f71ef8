//! task-sidecar: a sidecar that reads the ECS Task Metadata endpoint v4 `ClockDrift` every interval,
//! publishes it to CloudWatch, and answers the application beside it on demand; and, once per task,
//! reports what each container was pulled with and, when something tells, when the task was ready
//! (`image_report`, `readiness`, `ready_wait`, `report_sender`).

pub mod buffer;
pub mod check;
pub mod image_report;
pub mod metadata;
pub mod metrics;
pub mod monitor;
pub mod publisher;
pub mod reader;
pub mod readiness;
pub mod ready_wait;
pub mod report_sender;
pub mod sample;
pub mod server;

/// `60`, `60s`, `500ms`, `1.5s`: a duration for the command line (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => at_most_a_day(value * scale, text),
        _ => Err(format!("{text:?} is not a duration (examples: 60, 60s, 500ms)")),
    }
}

/// No option of the sidecar means more than a day; a larger value would only overflow the clocks' sums.
pub fn at_most_a_day(seconds: f64, text: &str) -> Result<std::time::Duration, String> {
    if seconds > 86_400.0 {
        return Err(format!("{text:?} is more than a day"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// A metadata response of the project's own (`fixtures/task-metadata/`), for the unit tests.
#[cfg(test)]
pub(crate) fn test_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../fixtures/task-metadata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(super::parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(super::parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(super::parse_duration("-1").is_err() && super::parse_duration("soon").is_err());
        assert!(super::parse_duration("1e30").is_err() && super::parse_duration("86401s").is_err());
    }
}
