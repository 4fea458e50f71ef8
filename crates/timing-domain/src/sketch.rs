//! Log-bucketed histogram of durations in whole milliseconds, with the DDSketch mapping: a value x > 0
//! goes to bucket ceil(log_gamma(x)), gamma = (1 + a) / (1 − a), and a bucket stands for
//! 2·gamma^i / (gamma + 1), within a relative error a of every value in it. Buckets are plain counts,
//! so histograms merge by adding counts, and in DynamoDB each bucket is its own numeric attribute
//! that concurrent writers increment with `ADD`.

use std::sync::LazyLock;

/// The relative accuracy `a` of every quantile, min and max read from a histogram.
pub const RELATIVE_ACCURACY: f64 = 0.01;

static LN_GAMMA: LazyLock<f64> = LazyLock::new(|| ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln());

pub fn gamma() -> f64 {
    LN_GAMMA.exp()
}

/// Where a value lands: zero-length durations have their own bucket (log 0 is undefined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    Zero,
    Log(i32),
}

/// Attribute name of the zero bucket; log buckets are `b<index>`.
pub const ZERO_ATTRIBUTE: &str = "zero";

impl Bucket {
    pub fn of_millis(millis: u64) -> Bucket {
        if millis == 0 {
            return Bucket::Zero;
        }
        // At most about 2,200 for durations up to 2^53 ms, so the cast cannot truncate.
        Bucket::Log(((millis as f64).ln() / *LN_GAMMA).ceil() as i32)
    }

    /// The value the bucket stands for, milliseconds.
    pub fn value_millis(self) -> f64 {
        match self {
            Bucket::Zero => 0.0,
            Bucket::Log(index) => 2.0 * (f64::from(index) * *LN_GAMMA).exp() / (gamma() + 1.0),
        }
    }

    pub fn attribute(self) -> String {
        match self {
            Bucket::Zero => ZERO_ATTRIBUTE.to_owned(),
            Bucket::Log(index) => format!("b{index}"),
        }
    }

    pub fn from_attribute(name: &str) -> Option<Bucket> {
        if name == ZERO_ATTRIBUTE {
            return Some(Bucket::Zero);
        }
        let digits = name.strip_prefix('b')?;
        // `b` followed by an optional minus and digits only: `b+1` or `b 1` are not buckets.
        let unsigned = digits.strip_prefix('-').unwrap_or(digits);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Bucket::Log)
    }
}

/// Counts per bucket, dense: slot 0 is the zero bucket, slot i + 1 the log bucket i (whole
/// milliseconds never fall below bucket 0). A summary adds up thousands of items of hundreds of
/// buckets each, so adding is an index, not a tree insert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHistogram {
    counts: Vec<u64>,
    total: u64,
}

/// Slots above this would be durations beyond 2^64 ms; an attribute claiming one is malformed.
pub const MAX_LOG_INDEX: i32 = 2300;

fn slot(bucket: Bucket) -> Option<usize> {
    match bucket {
        Bucket::Zero => Some(0),
        Bucket::Log(index) if (0..=MAX_LOG_INDEX).contains(&index) => Some(index as usize + 1),
        Bucket::Log(_) => None,
    }
}

fn bucket_of_slot(slot: usize) -> Bucket {
    match slot {
        0 => Bucket::Zero,
        // Slots are at most MAX_LOG_INDEX + 1, so the index fits.
        n => Bucket::Log((n - 1) as i32),
    }
}

impl LogHistogram {
    pub fn add_millis(&mut self, millis: u64) {
        self.add_count(Bucket::of_millis(millis), 1);
    }

    /// Adds `count` values to `bucket`; false (and nothing added) for a bucket no duration maps to.
    pub fn add_count(&mut self, bucket: Bucket, count: u64) -> bool {
        let Some(slot) = slot(bucket) else { return false };
        if count > 0 {
            if self.counts.len() <= slot {
                self.counts.resize(slot + 1, 0);
            }
            self.counts[slot] += count;
            self.total += count;
        }
        true
    }

    pub fn merge(&mut self, other: &LogHistogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The non-empty buckets, lowest first.
    pub fn buckets(&self) -> impl Iterator<Item = (Bucket, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(slot, count)| (bucket_of_slot(slot), *count))
    }

    pub fn min_millis(&self) -> Option<f64> {
        self.buckets().next().map(|(bucket, _)| bucket.value_millis())
    }

    pub fn max_millis(&self) -> Option<f64> {
        let last = self.counts.iter().rposition(|count| *count > 0)?;
        Some(bucket_of_slot(last).value_millis())
    }

    /// The estimate of the value of 0-based rank `rank` in sorted order.
    fn value_at_rank(&self, rank: u64) -> Option<f64> {
        let mut seen = 0;
        for (bucket, count) in self.buckets() {
            seen += count;
            if rank < seen {
                return Some(bucket.value_millis());
            }
        }
        None
    }

    /// Quantile `q` in [0, 1], milliseconds, with the same type-7 interpolation between the two
    /// closest ranks as the exact path uses. Each rank's estimate is within `a` of the true value,
    /// and the interpolation is a weighted mean of two of them, so the result is within `a` too.
    pub fn quantile_millis(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let h = (self.total - 1) as f64 * q.clamp(0.0, 1.0);
        let below = h.floor() as u64;
        let above = (below + 1).min(self.total - 1);
        let (low, high) = (self.value_at_rank(below)?, self.value_at_rank(above)?);
        Some(low + (h - below as f64) * (high - low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::percentile;

    fn relative_error(estimate: f64, exact: f64) -> f64 {
        if exact == 0.0 {
            estimate.abs()
        } else {
            (estimate - exact).abs() / exact
        }
    }

    #[test]
    fn mapping_follows_the_ddsketch_formula() {
        let g: f64 = 1.01 / 0.99;
        assert!((gamma() - g).abs() < 1e-15);
        for millis in [1u64, 2, 3, 100, 999, 1000, 38_751, 86_400_000] {
            let index = ((millis as f64).ln() / g.ln()).ceil() as i32;
            assert_eq!(Bucket::of_millis(millis), Bucket::Log(index), "{millis}");
            // The value lies in (gamma^(i-1), gamma^i] and its bucket's value is within 1% of it.
            assert!(g.powi(index - 1) < millis as f64 && millis as f64 <= g.powi(index) * (1.0 + 1e-12));
            assert!(relative_error(Bucket::Log(index).value_millis(), millis as f64) <= 0.01 + 1e-12);
        }
        assert_eq!(Bucket::of_millis(0), Bucket::Zero);
        assert_eq!(Bucket::of_millis(1), Bucket::Log(0));
    }

    #[test]
    fn attribute_names_round_trip_and_reject_lookalikes() {
        for bucket in [
            Bucket::Zero,
            Bucket::Log(0),
            Bucket::Log(17),
            Bucket::Log(-3),
            Bucket::Log(1084),
        ] {
            assert_eq!(Bucket::from_attribute(&bucket.attribute()), Some(bucket));
        }
        for name in ["b", "b+1", "b 1", "bx", "count", "b1.5", "b-", "zeroes"] {
            assert_eq!(Bucket::from_attribute(name), None, "{name}");
        }
    }

    #[test]
    fn quantiles_stay_within_one_percent_of_the_exact_type_7_values() {
        let mut rng = fastrand::Rng::with_seed(11);
        for size in [1usize, 2, 3, 10, 101, 5000] {
            let values: Vec<u64> = (0..size)
                .map(|_| match rng.u8(0..20) {
                    0 => 0,
                    1 => rng.u64(1..10),
                    _ => (rng.f64() * 12.0).exp() as u64,
                })
                .collect();
            let mut histogram = LogHistogram::default();
            values.iter().for_each(|v| histogram.add_millis(*v));
            let mut sorted: Vec<f64> = values.iter().map(|v| *v as f64).collect();
            sorted.sort_by(f64::total_cmp);
            for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
                let estimate = histogram.quantile_millis(q).unwrap();
                let exact = percentile(&sorted, q);
                assert!(
                    relative_error(estimate, exact) <= RELATIVE_ACCURACY + 1e-12,
                    "size {size} q {q}: {estimate} vs {exact}"
                );
            }
            assert!(relative_error(histogram.min_millis().unwrap(), sorted[0]) <= 0.01 + 1e-12);
            assert!(relative_error(histogram.max_millis().unwrap(), sorted[size - 1]) <= 0.01 + 1e-12);
            assert_eq!(histogram.count(), size as u64);
        }
    }

    #[test]
    fn buckets_no_duration_reaches_are_refused() {
        let mut histogram = LogHistogram::default();
        assert!(!histogram.add_count(Bucket::Log(-1), 1));
        assert!(!histogram.add_count(Bucket::Log(MAX_LOG_INDEX + 1), 1));
        assert_eq!(histogram.count(), 0);
        // The longest duration there is still has a bucket.
        assert!(histogram.add_count(Bucket::of_millis(u64::MAX), 1));
    }

    #[test]
    fn merging_equals_adding_everything_to_one() {
        let (mut left, mut right, mut all) = (
            LogHistogram::default(),
            LogHistogram::default(),
            LogHistogram::default(),
        );
        for v in [0u64, 5, 17, 17, 1200] {
            left.add_millis(v);
            all.add_millis(v);
        }
        for v in [3u64, 17, 99_999] {
            right.add_millis(v);
            all.add_millis(v);
        }
        left.merge(&right);
        assert_eq!(left, all);
        assert_eq!(all.quantile_millis(0.0), Some(0.0));
        assert_eq!(LogHistogram::default().quantile_millis(0.5), None);
    }
}
