//! The metrics of imported events. In Lambda, task-events prints EMF documents and CloudWatch Logs extracts
//! them; an import runs elsewhere, so it puts the same documents into a log group with PutLogEvents, which
//! CloudWatch extracts metrics from as well. CloudWatch Logs refuses events more than 14 days old, so the
//! documents of older events are left out and counted: those tasks' values live in the records and the
//! rollups (every summary has them), not in CloudWatch metrics.

/// How old an EMF document may be to be sent: 14 days (PutLogEvents' limit) less an hour for the import's
/// own duration.
pub const MAX_AGE_MILLIS: i64 = 14 * 86_400_000 - 3_600_000;
/// PutLogEvents' limits per request: events, bytes (each event counts 26 more), and the span of one batch.
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD_BYTES: usize = 26;
pub const MAX_BATCH_SPAN_MILLIS: i64 = 24 * 3_600_000;

/// One EMF document and its metric timestamp (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub timestamp: i64,
    pub line: String,
}

/// The metric timestamp of an EMF document (`_aws.Timestamp`).
pub fn emf_timestamp(line: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(line).ok()?["_aws"]["Timestamp"].as_i64()
}

/// The oldest metric timestamp sent at `now`.
pub fn cutoff(now: i64) -> i64 {
    now - MAX_AGE_MILLIS
}

/// Splits `documents` into those at or after `cutoff` and the count of those before it.
pub fn sendable(documents: Vec<Document>, cutoff: i64) -> (Vec<Document>, u64) {
    let (keep, old): (Vec<Document>, Vec<Document>) = documents.into_iter().partition(|d| d.timestamp >= cutoff);
    (keep, old.len() as u64)
}

/// PutLogEvents batches: in time order, each within the limits above.
pub fn batches(mut documents: Vec<Document>) -> Vec<Vec<Document>> {
    documents.sort_by_key(|d| d.timestamp);
    let mut batches: Vec<Vec<Document>> = Vec::new();
    let mut bytes = 0;
    for document in documents {
        let size = document.line.len() + EVENT_OVERHEAD_BYTES;
        let fits = batches.last().is_some_and(|batch| {
            batch.len() < MAX_BATCH_EVENTS
                && bytes + size <= MAX_BATCH_BYTES
                && batch
                    .first()
                    .is_some_and(|first| document.timestamp - first.timestamp < MAX_BATCH_SPAN_MILLIS)
        });
        if !fits {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(batch) = batches.last_mut() {
            batch.push(document);
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(timestamp: i64, size: usize) -> Document {
        Document {
            timestamp,
            line: "x".repeat(size),
        }
    }

    #[test]
    fn documents_older_than_cloudwatch_accepts_are_left_out_and_counted() {
        let now = 100 * 86_400_000;
        let documents = vec![
            document(now - MAX_AGE_MILLIS, 1),
            document(now - MAX_AGE_MILLIS - 1, 1),
            document(now, 1),
        ];
        let (keep, too_old) = sendable(documents, cutoff(now));
        assert_eq!((keep.len(), too_old), (2, 1));
    }

    #[test]
    fn batches_are_in_time_order_and_within_every_limit() {
        let day = 86_400_000;
        // Out of order, across two days, one document of 600 KB.
        let documents = vec![
            document(day + 5, 10),
            document(3, 10),
            document(2, 600_000),
            document(4, 600_000),
            document(day + 2, 10),
        ];
        let batches = batches(documents);
        let shape: Vec<Vec<i64>> = batches
            .iter()
            .map(|b| b.iter().map(|d| d.timestamp).collect())
            .collect();
        // 2 and 4 cannot share 1 MB; day + 5 is 24 h and 1 ms after 4, so it starts a batch of its own.
        assert_eq!(shape, vec![vec![2, 3], vec![4, day + 2], vec![day + 5]]);
        let many = (0..MAX_BATCH_EVENTS as i64 + 1).map(|t| document(t, 1)).collect();
        assert_eq!(
            super::batches(many).iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_BATCH_EVENTS, 1]
        );
    }

    #[test]
    fn the_timestamp_is_the_documents_own() {
        assert_eq!(
            emf_timestamp(r#"{"_aws": {"Timestamp": 1700000000123}, "X": 1}"#),
            Some(1_700_000_000_123)
        );
        assert_eq!(emf_timestamp("not json"), None);
    }
}
