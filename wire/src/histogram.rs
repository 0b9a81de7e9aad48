//! Latency histograms: HdrHistogram in microseconds, 3 significant digits,
//! from 1 µs to one hour. Recording allocates nothing.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The highest latency a histogram holds; longer values are clamped to it
/// (and counted, so nothing is lost).
pub const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        let inner = Histogram::new_with_bounds(1, MAX_US, 3)
            .expect("1..=MAX_US with 3 significant digits is a valid histogram");
        Self { inner }
    }

    /// Records one latency; values above [`MAX_US`] are clamped to it.
    pub fn record_us(&mut self, us: u64) {
        self.inner.saturating_record(us.min(MAX_US));
    }

    /// Records `count` samples of one latency (clamped as [`Self::record_us`]).
    pub fn record_us_n(&mut self, us: u64, count: u64) {
        self.inner.saturating_record_n(us.min(MAX_US), count);
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_us(u64::try_from(latency.as_micros()).unwrap_or(MAX_US));
    }

    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The value at quantile `q` (0..=1) in microseconds; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.inner.value_at_quantile(q)
        }
    }

    /// The value of the `rank`-th smallest sample (1-based), as the
    /// lowest (`low`) or highest value its bucket stands for; `None`
    /// outside `1..=len`.
    pub fn value_at_rank_us(&self, rank: u64, low: bool) -> Option<u64> {
        if rank == 0 || rank > self.len() {
            return None;
        }
        let mut seen = 0;
        for v in self.inner.iter_recorded() {
            seen += v.count_at_value();
            if seen >= rank {
                let at = v.value_iterated_to();
                return Some(if low {
                    self.inner.lowest_equivalent(at)
                } else {
                    self.inner.highest_equivalent(at)
                });
            }
        }
        None
    }

    pub fn mean_us(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.inner.mean()
        }
    }

    pub fn max_us(&self) -> u64 {
        if self.is_empty() { 0 } else { self.inner.max() }
    }

    pub fn add(&mut self, other: &LatencyHistogram) {
        self.inner
            .add(&other.inner)
            .expect("histograms of the same bounds always add");
    }

    /// Takes `other`'s samples out again (a sliding window's oldest
    /// second); `other` must have been added before.
    pub fn subtract(&mut self, other: &LatencyHistogram) {
        self.inner
            .subtract(&other.inner)
            .expect("only samples that were added are taken out");
    }

    pub fn reset(&mut self) {
        self.inner.reset();
    }

    pub fn inner(&self) -> &Histogram<u64> {
        &self.inner
    }

    /// The guide's `{avg, p50, p95, p99}` in whole milliseconds.
    pub fn summary_ms(&self) -> LatencySummary {
        let ms = |us: f64| (us / 1000.0).round() as u64;
        LatencySummary {
            avg: ms(self.mean_us()),
            p50: ms(self.quantile_us(0.50) as f64),
            p95: ms(self.quantile_us(0.95) as f64),
            p99: ms(self.quantile_us(0.99) as f64),
        }
    }
}

/// Percentiles as the guide's detailed metrics endpoint shows them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct LatencySummary {
    pub avg: u64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = LatencyHistogram::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary_ms();
        assert_eq!(s.p50, 500);
        assert_eq!(s.p95, 950);
        assert_eq!(s.p99, 990);
        assert_eq!(s.avg, 501); // mean of 1..=1000 is 500.5, rounded up
        assert_eq!(h.len(), 1000);
    }

    #[test]
    fn empty_is_all_zero_and_huge_values_are_clamped() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.summary_ms(), LatencySummary::default());
        h.record(Duration::from_secs(10 * 3600));
        assert_eq!(h.len(), 1);
        assert!(h.max_us() >= MAX_US - MAX_US / 1000);
    }
}
