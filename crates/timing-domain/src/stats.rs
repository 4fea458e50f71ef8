//! Statistics: distribution summaries, the two-sided Mann–Whitney U test (over values, or over counts per
//! bin for the rollups' histograms) and a seeded bootstrap interval for a difference of medians. Pure
//! functions, no I/O.
//!
//! Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's and
//! Excel PERCENTILE.INC's default): for sorted x[0..n] and p in [0, 1], h = (n − 1)·p and
//! value = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).

use serde::Serialize;

/// Count, mean, sample standard deviation, extremes and percentiles of one set of values.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single value.
    pub stddev: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Summarises the values (NaN is not a duration and is rejected by returning None, as is an empty set).
pub fn describe(values: &[f64]) -> Option<Distribution> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let count = sorted.len();
    let mean = sorted.iter().sum::<f64>() / count as f64;
    let squares: f64 = sorted.iter().map(|v| (v - mean) * (v - mean)).sum();
    let stddev = if count > 1 {
        (squares / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some(Distribution {
        count,
        mean,
        stddev,
        min: sorted[0],
        p50: percentile(&sorted, 0.50),
        p90: percentile(&sorted, 0.90),
        p95: percentile(&sorted, 0.95),
        p99: percentile(&sorted, 0.99),
        max: sorted[count - 1],
    })
}

/// Type-7 percentile of already sorted values; `p` in [0, 1]. Panics on an empty slice only in debug.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let below = h.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (h - below as f64) * (sorted[above] - sorted[below])
}

/// How the p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PValueMethod {
    /// The exact distribution of U: no ties, and n1·n2 at most [`EXACT_MAX_PAIRS`].
    Exact,
    /// Normal approximation with tie correction and continuity correction.
    Asymptotic,
}

/// Two-sided Mann–Whitney U test of `first` against `second`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MannWhitney {
    /// U of the first sample: the number of pairs (x from first, y from second) with x > y, ties counting ½.
    pub u: f64,
    pub p_value: f64,
    pub method: PValueMethod,
    /// U / (n1·n2): the probability that a value of the first sample exceeds one of the second
    /// (ties counting ½). 0.5 means no difference.
    pub probability_of_superiority: f64,
    /// 2·U/(n1·n2) − 1, in [−1, 1].
    pub rank_biserial: f64,
}

/// Largest n1·n2 for which the exact distribution of U is counted (the table is n1 × n1·n2 per step).
pub const EXACT_MAX_PAIRS: usize = 400;

pub fn mann_whitney_u(first: &[f64], second: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (first.len(), second.len());
    if n1 == 0 || n2 == 0 || first.iter().chain(second).any(|v| v.is_nan()) {
        return None;
    }
    let mut pooled: Vec<(f64, bool)> = first
        .iter()
        .map(|v| (*v, true))
        .chain(second.iter().map(|v| (*v, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mid-ranks for ties; the tie term Σ(t³ − t) feeds the variance correction.
    let (mut rank_sum_first, mut tie_term, mut start) = (0.0, 0.0, 0);
    while start < pooled.len() {
        let end = pooled[start..]
            .iter()
            .position(|(v, _)| *v != pooled[start].0)
            .map_or(pooled.len(), |o| start + o);
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        let in_first = pooled[start..end].iter().filter(|(_, first)| *first).count();
        rank_sum_first += mid_rank * in_first as f64;
        let ties = (end - start) as f64;
        tie_term += ties * ties * ties - ties;
        start = end;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u = rank_sum_first - n1f * (n1f + 1.0) / 2.0;
    let (p_value, method) = if tie_term == 0.0 && n1 * n2 <= EXACT_MAX_PAIRS {
        (exact_two_sided_p(u, n1, n2), PValueMethod::Exact)
    } else {
        (asymptotic_two_sided_p(u, n1f, n2f, tie_term), PValueMethod::Asymptotic)
    };
    let probability_of_superiority = u / (n1f * n2f);
    Some(MannWhitney {
        u,
        p_value,
        method,
        probability_of_superiority,
        rank_biserial: 2.0 * probability_of_superiority - 1.0,
    })
}

/// Normal approximation: mean n1·n2/2, variance n1·n2/12·((n + 1) − Σ(t³ − t)/(n(n − 1))),
/// continuity correction ½, two-sided.
fn asymptotic_two_sided_p(u: f64, n1: f64, n2: f64, tie_term: f64) -> f64 {
    let n = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0; // every value tied: no evidence of a difference
    }
    let z = ((u - n1 * n2 / 2.0).abs() - 0.5).max(0.0) / variance.sqrt();
    libm::erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// 2·min(P(U ≤ u), P(U ≥ u)) under the null, from the exact count of arrangements.
fn exact_two_sided_p(u: f64, n1: usize, n2: usize) -> f64 {
    let counts = u_counts(n1, n2);
    let total: f64 = counts.iter().sum();
    let u = u.round() as usize;
    let at_most: f64 = counts[..=u].iter().sum();
    let at_least: f64 = counts[u..].iter().sum();
    (2.0 * at_most.min(at_least) / total).min(1.0)
}

/// counts[k] = number of orderings of n1 + n2 distinct values in which U of the first sample is k.
/// Built by adding one value of the first sample at a time to the generating function.
fn u_counts(n1: usize, n2: usize) -> Vec<f64> {
    // f[m][k] for the current number of second-sample values, via the recurrence
    // f(m, n, k) = f(m − 1, n, k − n) + f(m, n − 1, k), computed over n for every m ≤ n1.
    let max_u = n1 * n2;
    let mut table = vec![vec![0.0; max_u + 1]; n1 + 1]; // table[m] = counts for (m, n) at the current n
    for row in table.iter_mut() {
        row[0] = 1.0; // n = 0: U is 0 whatever m
    }
    for n in 1..=n2 {
        let mut next = vec![vec![0.0; max_u + 1]; n1 + 1];
        next[0][0] = 1.0;
        for m in 1..=n1 {
            for k in 0..=m * n {
                let from_first = if k >= n { next[m - 1][k - n] } else { 0.0 };
                next[m][k] = from_first + table[m][k];
            }
        }
        table = next;
    }
    table.swap_remove(n1)
}

/// Two-sided Mann–Whitney U test of `first` against `second` when the values are known only as counts per
/// ordered bin (a rollup's log-bucketed histogram): values in one bin are ties, ranked at the bin's
/// mid-rank, with the tie-corrected normal approximation (there is no exact table for ties). Binning the
/// same way on both sides keeps the test valid under the null; it only loses the order within a bin
/// (about 2 % wide in the rollups' histograms). `first` and `second` list (bin, count), bins in any order.
pub fn mann_whitney_binned<B: Ord + Copy>(first: &[(B, u64)], second: &[(B, u64)]) -> Option<MannWhitney> {
    let mut pooled: std::collections::BTreeMap<B, (u64, u64)> = std::collections::BTreeMap::new();
    for (bin, count) in first {
        pooled.entry(*bin).or_default().0 += count;
    }
    for (bin, count) in second {
        pooled.entry(*bin).or_default().1 += count;
    }
    let (n1, n2) = pooled.values().fold((0u64, 0u64), |(a, b), (x, y)| (a + x, b + y));
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (mut rank_sum_first, mut tie_term, mut below) = (0.0, 0.0, 0u64);
    for (in_first, in_second) in pooled.values() {
        let ties = (in_first + in_second) as f64;
        let mid_rank = below as f64 + (ties + 1.0) / 2.0;
        rank_sum_first += mid_rank * *in_first as f64;
        tie_term += ties * ties * ties - ties;
        below += in_first + in_second;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u = rank_sum_first - n1f * (n1f + 1.0) / 2.0;
    let probability_of_superiority = u / (n1f * n2f);
    Some(MannWhitney {
        u,
        p_value: asymptotic_two_sided_p(u, n1f, n2f, tie_term),
        method: PValueMethod::Asymptotic,
        probability_of_superiority,
        rank_biserial: 2.0 * probability_of_superiority - 1.0,
    })
}

/// Seeded percentile-bootstrap 95% interval for median(candidate) − median(baseline).
pub fn bootstrap_median_difference(
    baseline: &[f64],
    candidate: &[f64],
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if baseline.is_empty() || candidate.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut resample = |values: &[f64], buffer: &mut Vec<f64>| {
        buffer.clear();
        buffer.extend((0..values.len()).map(|_| values[rng.usize(..values.len())]));
        median_in_place(buffer)
    };
    let (mut a, mut b) = (Vec::with_capacity(baseline.len()), Vec::with_capacity(candidate.len()));
    let mut differences: Vec<f64> = (0..resamples)
        .map(|_| resample(candidate, &mut b) - resample(baseline, &mut a))
        .collect();
    differences.sort_by(f64::total_cmp);
    Some((percentile(&differences, 0.025), percentile(&differences, 0.975)))
}

/// The type-7 median by selection, O(n) instead of a sort: the bootstrap takes thousands of them.
fn median_in_place(values: &mut [f64]) -> f64 {
    let upper_index = values.len() / 2;
    let odd = values.len() % 2 == 1;
    let (below, upper, _) = values.select_nth_unstable_by(upper_index, f64::total_cmp);
    let upper = *upper;
    if odd {
        return upper;
    }
    // Even count: the mean of the two middle values; the lower one is the largest of the lower half.
    let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lower + 0.5 * (upper - lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    fn percentiles_follow_type_7() {
        // numpy's documented example: np.percentile([[10, 7, 4], [3, 2, 1]], 50) == 3.5
        let sorted = [1.0, 2.0, 3.0, 4.0, 7.0, 10.0];
        assert_eq!(percentile(&sorted, 0.5), 3.5);
        // h = 5·0.9 = 4.5 -> 7 + 0.5·3; h = 4.75 -> 7 + 0.75·3; h = 4.95 -> 7 + 0.95·3
        assert_eq!(percentile(&sorted, 0.90), 8.5);
        assert_eq!(percentile(&sorted, 0.95), 9.25);
        assert!(close(percentile(&sorted, 0.99), 9.85, 1e-12));
        assert_eq!((percentile(&sorted, 0.0), percentile(&sorted, 1.0)), (1.0, 10.0));
    }

    #[test]
    fn describe_by_hand() {
        let summary = describe(&[4.0, 2.0, 6.0, 8.0]).unwrap();
        // mean 5; squares 9 + 1 + 1 + 9 = 20; sample variance 20/3
        assert_eq!(
            (summary.count, summary.mean, summary.min, summary.max),
            (4, 5.0, 2.0, 8.0)
        );
        assert!(close(summary.stddev, (20.0f64 / 3.0).sqrt(), 1e-12));
        assert_eq!(summary.p50, 5.0);
        assert_eq!(describe(&[3.5]).unwrap().stddev, 0.0);
        assert!(describe(&[]).is_none() && describe(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn mann_whitney_published_example_exact() {
        // scipy.stats.mannwhitneyu documentation example (ages, from Conover): U = 17, exact p = 1/9.
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let test = mann_whitney_u(&males, &females).unwrap();
        assert_eq!((test.u, test.method), (17.0, PValueMethod::Exact));
        assert!(close(test.p_value, 1.0 / 9.0, 1e-12), "{}", test.p_value);
        assert!(close(test.probability_of_superiority, 17.0 / 20.0, 1e-12));
    }

    #[test]
    fn mann_whitney_asymptotic_with_ties() {
        // Same example on the normal approximation: scipy gives p = 0.11134688653314041
        // (mannwhitneyu(..., method="asymptotic")); larger samples with ties: U = 58.5, p = 0.11881752831840264.
        let ages = (vec![19.0, 22.0, 16.0, 29.0, 24.0], vec![20.0, 11.0, 17.0, 12.0]);
        let a = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let b = [2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 8.0, 11.0, 12.0, 12.0, 13.0];
        let tied = mann_whitney_u(&a, &b).unwrap();
        assert_eq!((tied.u, tied.method), (58.5, PValueMethod::Asymptotic));
        assert!(close(tied.p_value, 0.118_817_528_318_402_64, 1e-12), "{}", tied.p_value);
        // The published example through the approximation this module uses for large samples.
        let approximated = asymptotic_two_sided_p(17.0, 5.0, 4.0, 0.0);
        assert!(close(approximated, 0.111_346_886_533_140_41, 1e-12), "{approximated}");
        assert_eq!(mann_whitney_u(&ages.0, &ages.1).unwrap().method, PValueMethod::Exact);
        // All values tied: no difference, not a division by zero.
        assert_eq!(mann_whitney_u(&[3.0, 3.0], &[3.0, 3.0, 3.0]).unwrap().p_value, 1.0);
    }

    #[test]
    fn binned_test_equals_the_test_of_values_when_bins_are_the_values() {
        // The tied samples above as (value, count) bins, listed in no order and split across entries:
        // U = 58.5 and scipy's asymptotic p = 0.11881752831840264, as from the values.
        let bins = |values: &[f64]| -> Vec<(u64, u64)> { values.iter().rev().map(|v| (*v as u64, 1)).collect() };
        let a = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let b = [2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 8.0, 11.0, 12.0, 12.0, 13.0];
        let binned = mann_whitney_binned(&bins(&a), &bins(&b)).unwrap();
        assert_eq!(binned.u, 58.5);
        assert!(
            close(binned.p_value, 0.118_817_528_318_402_64, 1e-12),
            "{}",
            binned.p_value
        );
        assert!(close(binned.probability_of_superiority, 58.5 / (13.0 * 14.0), 1e-12));
        // Counts instead of repeated entries: the same test.
        let counted = mann_whitney_binned(&[(3u64, 3), (1, 1), (2, 2)], &[(3, 1), (4, 2)]).unwrap();
        let listed = mann_whitney_u(&[1.0, 2.0, 2.0, 3.0, 3.0, 3.0], &[3.0, 4.0, 4.0]).unwrap();
        assert_eq!((counted.u, counted.p_value), (listed.u, listed.p_value));
        assert!(mann_whitney_binned::<u64>(&[], &[(1, 2)]).is_none());
        assert!(mann_whitney_binned(&[(1u64, 0)], &[(1, 2)]).is_none());
    }

    #[test]
    fn exact_counts_sum_to_the_binomial() {
        // (n1 + n2 choose n1) orderings: (9 choose 4) = 126, symmetric around n1·n2/2.
        let counts = u_counts(5, 4);
        assert_eq!(counts.iter().sum::<f64>(), 126.0);
        assert_eq!(counts.len(), 21);
        for k in 0..=20 {
            assert_eq!(counts[k], counts[20 - k]);
        }
    }

    #[test]
    fn identical_samples_are_not_different() {
        let values: Vec<f64> = (0..30).map(f64::from).collect();
        let test = mann_whitney_u(&values, &values).unwrap();
        assert_eq!(test.p_value, 1.0);
        assert_eq!(test.rank_biserial, 0.0);
    }

    #[test]
    fn bootstrap_is_seeded_and_covers_a_clear_shift() {
        let baseline: Vec<f64> = (0..200).map(|i| 20.0 + f64::from(i % 17) * 0.5).collect();
        let candidate: Vec<f64> = baseline.iter().map(|v| v - 10.0).collect();
        let interval = bootstrap_median_difference(&baseline, &candidate, 2000, 42).unwrap();
        assert_eq!(
            interval,
            bootstrap_median_difference(&baseline, &candidate, 2000, 42).unwrap()
        );
        // Every resampled median difference of a pure shift by −10 stays near −10.
        assert!(
            interval.0 <= -10.0 + 1.5 && interval.1 >= -10.0 - 1.5 && interval.0 <= interval.1,
            "{interval:?}"
        );
        assert!(interval.1 < 0.0);
        assert!(bootstrap_median_difference(&[], &candidate, 10, 1).is_none());
    }

    #[test]
    fn median_by_selection_equals_median_by_sort() {
        let mut rng = fastrand::Rng::with_seed(3);
        for len in 1..40 {
            let values: Vec<f64> = (0..len).map(|_| f64::from(rng.u8(..20))).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            assert_eq!(
                median_in_place(&mut values.clone()),
                percentile(&sorted, 0.5),
                "{values:?}"
            );
        }
    }
}
