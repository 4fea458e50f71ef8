//! Data points waiting for CloudWatch. Bounded: during an outage the oldest points are dropped
//! first (and counted), so memory stays fixed; a point leaves only once CloudWatch accepted it.

use std::collections::VecDeque;

use crate::metrics::Datum;

/// PutMetricData accepts at most 1,000 data points per call.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug)]
pub struct Buffer {
    points: VecDeque<Datum>,
    capacity: usize,
    dropped: u64,
}

impl Buffer {
    pub fn new(capacity: usize) -> Buffer {
        Buffer {
            points: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Adds points in order; returns how many old points were dropped to make room.
    pub fn push(&mut self, data: impl IntoIterator<Item = Datum>) -> usize {
        let mut dropped = 0;
        for datum in data {
            if self.points.len() == self.capacity {
                self.points.pop_front();
                dropped += 1;
            }
            self.points.push_back(datum);
        }
        self.dropped += dropped as u64;
        dropped
    }

    /// The oldest points, at most `MAX_BATCH`, still in the buffer until [`Buffer::confirm`].
    pub fn next_batch(&self) -> Vec<Datum> {
        self.points.iter().take(MAX_BATCH).cloned().collect()
    }

    /// CloudWatch accepted the first `count` points of the last batch.
    pub fn confirm(&mut self, count: usize) {
        self.points.drain(..count.min(self.points.len()));
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Points dropped since start because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Unit;
    use chrono::{TimeZone, Utc};

    fn point(value: f64) -> Datum {
        Datum {
            metric: "ClockErrorBound",
            unit: Unit::Milliseconds,
            value,
            timestamp: Utc.timestamp_opt(1_795_341_600 + value as i64, 0).unwrap(),
            dimensions: Vec::new(),
        }
    }

    #[test]
    fn points_leave_only_when_confirmed_and_in_order() {
        let mut buffer = Buffer::new(10);
        buffer.push((0..4).map(|v| point(v as f64)));
        let batch = buffer.next_batch();
        assert_eq!(batch.len(), 4);
        // A failed call confirms nothing: the same points come back, with their own timestamps.
        assert_eq!(buffer.next_batch(), batch);
        buffer.confirm(3);
        assert_eq!(buffer.next_batch(), vec![point(3.0)]);
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts_them() {
        let mut buffer = Buffer::new(3);
        assert_eq!(buffer.push((0..5).map(|v| point(v as f64))), 2);
        let values: Vec<f64> = buffer.next_batch().iter().map(|d| d.value).collect();
        assert_eq!((values, buffer.dropped()), (vec![2.0, 3.0, 4.0], 2));
    }

    #[test]
    fn batches_hold_at_most_a_thousand_points() {
        let mut buffer = Buffer::new(2500);
        buffer.push((0..2500).map(|v| point(v as f64)));
        assert_eq!(buffer.next_batch().len(), MAX_BATCH);
        buffer.confirm(MAX_BATCH);
        buffer.confirm(MAX_BATCH);
        assert_eq!(buffer.next_batch().len(), 500);
        assert_eq!(buffer.next_batch()[0].value, 2000.0);
    }
}
