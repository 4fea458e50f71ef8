//! What an import has done so far: the figures its progress lines and its checkpoint carry.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub pages: u64,
    /// Log events read.
    pub read: u64,
    pub written: u64,
    /// Already recorded (this version, or the log held the event twice, or an earlier import brought it).
    pub duplicate: u64,
    /// Older than the task's recorded version.
    pub stale: u64,
    /// Not a task state change (or an image report) task-events accepts: kept, with the reason, in the
    /// rejected-lines file.
    pub rejected: u64,
    /// EMF documents sent to the metrics log group.
    pub metrics_sent: u64,
    /// EMF documents left out: older than CloudWatch accepts (the records and rollups keep the values).
    pub metrics_too_old: u64,
}

impl Counts {
    /// One progress line: the counts and the rate since `elapsed` began.
    pub fn line(&self, elapsed: Duration) -> String {
        let rate = match elapsed.as_secs_f64() {
            seconds if seconds > 0.0 => self.read as f64 / seconds,
            _ => 0.0,
        };
        format!(
            "{} events read ({} pages): {} written, {} duplicate, {} stale, {} rejected; {} EMF documents sent, {} too old for CloudWatch; {rate:.0} events/s",
            self.read,
            self.pages,
            self.written,
            self.duplicate,
            self.stale,
            self.rejected,
            self.metrics_sent,
            self.metrics_too_old
        )
    }

    /// Adds what a resumed import had already done.
    pub fn add(&mut self, other: &Counts) {
        self.pages += other.pages;
        self.read += other.read;
        self.written += other.written;
        self.duplicate += other.duplicate;
        self.stale += other.stale;
        self.rejected += other.rejected;
        self.metrics_sent += other.metrics_sent;
        self.metrics_too_old += other.metrics_too_old;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_gives_every_count_and_the_rate() {
        let counts = Counts {
            pages: 3,
            read: 300,
            written: 200,
            duplicate: 90,
            stale: 5,
            rejected: 5,
            metrics_sent: 120,
            metrics_too_old: 40,
        };
        let line = counts.line(Duration::from_secs(2));
        assert!(
            line.starts_with("300 events read (3 pages): 200 written, 90 duplicate, 5 stale, 5 rejected;"),
            "{line}"
        );
        assert!(line.ends_with("; 150 events/s"), "{line}");
        let mut total = counts;
        total.add(&counts);
        assert_eq!((total.read, total.metrics_too_old), (600, 80));
    }
}
