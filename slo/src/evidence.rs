//! How sure a percentile is. A percentile of `n` samples is an order
//! statistic; the rank of the true quantile among them is binomial, so
//! two order statistics bound it with a known confidence whatever the
//! distribution (the distribution-free interval of order statistics).
//! With too few samples a side cannot be bounded at all: a p95 of 19
//! requests has no upper bound at 95 %, and a gate must not guess.

use serde::{Deserialize, Serialize};

/// The confidence of every interval the harness reports.
pub const CONFIDENCE: f64 = 0.95;

/// A percentile judged with fewer than `MIN_SAMPLES_FACTOR / (1 - q)`
/// samples (p50: 10, p90: 50, p95: 100, p99: 500) is inconclusive
/// whatever its value.
pub const MIN_SAMPLES_FACTOR: f64 = 5.0;

/// The fewest samples a q-quantile needs to be judged.
pub fn min_samples(q: f64) -> u64 {
    // 1 - 0.9 is 0.09999999999999998 in f64: without the nudge a p90
    // would need 51, not 50.
    (MIN_SAMPLES_FACTOR / (1.0 - q) - 1e-9).ceil() as u64
}

/// The 1-based ranks `(lo, hi)` of the order statistics that bound the
/// q-quantile of the sampled distribution with at least `confidence`
/// (equal tails). `None` on a side that `n` samples cannot bound.
pub fn rank_interval(n: u64, q: f64, confidence: f64) -> (Option<u64>, Option<u64>) {
    if n == 0 {
        return (None, None);
    }
    let tail = (1.0 - confidence) / 2.0;
    // P(X_(l) <= ξ) = P(B >= l) with B ~ Bin(n, q): the largest l with
    // P(B <= l - 1) <= tail. P(X_(u) >= ξ) = P(B <= u - 1): the smallest u
    // with P(B <= u - 1) >= 1 - tail.
    let cdf = BinomialCdf::new(n, q);
    let mut lo = None;
    let mut hi = None;
    for (k, c) in cdf {
        // c = P(B <= k); rank k + 1 has P(B <= (k + 1) - 1) = c.
        if c <= tail {
            lo = Some(k + 1);
        }
        if c >= 1.0 - tail {
            hi = Some(k + 1).filter(|&u| u <= n);
            break;
        }
    }
    (lo, hi)
}

/// P(B <= k) for k = 0, 1, ..., n, skipping the far tails where the
/// terms are below f64's reach (their sum is reported as 0 or 1).
struct BinomialCdf {
    n: u64,
    k: u64,
    ln_pmf: f64,
    ln_ratio: f64,
    sum: f64,
}

impl BinomialCdf {
    fn new(n: u64, q: f64) -> Self {
        let (nf, sd) = (n as f64, (n as f64 * q * (1.0 - q)).sqrt());
        let k = (nf * q - 40.0 * sd - 2.0).floor().max(0.0) as u64;
        let kf = k as f64;
        let ln_pmf = ln_choose(n, k) + kf * q.ln() + (nf - kf) * (1.0 - q).ln();
        BinomialCdf {
            n,
            k,
            ln_pmf,
            ln_ratio: (q / (1.0 - q)).ln(),
            sum: 0.0,
        }
    }
}

impl Iterator for BinomialCdf {
    type Item = (u64, f64);

    fn next(&mut self) -> Option<(u64, f64)> {
        if self.k > self.n {
            return None;
        }
        let k = self.k;
        self.sum = (self.sum + self.ln_pmf.exp()).min(1.0);
        self.ln_pmf += ((self.n - k) as f64 / (k + 1) as f64).ln() + self.ln_ratio;
        self.k += 1;
        Some((k, if self.k > self.n { 1.0 } else { self.sum }))
    }
}

/// The 95 % interval of a rate of `k` in `n` (Wilson's score interval),
/// in percent: the evidence beside a success or error rate. Both sides are
/// bounded for any `n` > 0; `min_samples` is 0 (a rate has no minimum).
pub fn proportion(k: u64, n: u64) -> Interval {
    if n == 0 {
        return Interval::default();
    }
    // z for a two-sided 95 %.
    const Z: f64 = 1.959_963_984_540_054;
    let (lo, hi) = wilson(k as f64, n as f64, Z);
    Interval {
        lo: Some(lo * 100.0),
        hi: Some(hi * 100.0),
        min_samples: 0,
    }
}

/// Wilson's score interval of a proportion `k / n` (`n` > 0) at the
/// normal quantile `z`, as fractions.
pub fn wilson(k: f64, n: f64, z: f64) -> (f64, f64) {
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// P(X <= k) for X ~ Poisson(mean): how likely a count this low is when
/// `mean` was offered (summed in log space, so large means do not
/// underflow).
pub fn poisson_cdf(k: u64, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 1.0;
    }
    let ln_mean = mean.ln();
    (0..=k)
        .map(|i| (i as f64 * ln_mean - mean - ln_gamma(i as f64 + 1.0)).exp())
        .sum::<f64>()
        .min(1.0)
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// ln Γ(x) for x >= 1: shifted up to 10, then Stirling's series.
fn ln_gamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= x.ln();
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    shift + (x - 0.5) * x.ln() - x
        + 0.5 * (2.0 * std::f64::consts::PI).ln()
        + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))
}

/// One percentile's evidence, in the figure's unit (ms).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Interval {
    /// The lower bound; null when `n` samples cannot bound it.
    pub lo: Option<f64>,
    /// The upper bound; null when `n` samples cannot bound it (e.g. a p99
    /// of fewer than 368 samples).
    pub hi: Option<f64>,
    /// The fewest samples this percentile needs to be judged
    /// ([`min_samples`]).
    pub min_samples: u64,
}

/// The evidence of each percentile of one latency.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Evidence {
    /// The confidence of the intervals (0.95).
    pub confidence: f64,
    pub p50: Interval,
    pub p90: Interval,
    pub p95: Interval,
    pub p99: Interval,
}

impl Evidence {
    /// The interval of a percentile.
    pub fn of(&self, p: Percentile) -> &Interval {
        match p {
            Percentile::P50 => &self.p50,
            Percentile::P90 => &self.p90,
            Percentile::P95 => &self.p95,
            Percentile::P99 => &self.p99,
        }
    }
}

/// The percentiles every latency reports, with evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P90,
    P95,
    P99,
}

impl Percentile {
    pub const ALL: [Percentile; 4] = [
        Percentile::P50,
        Percentile::P90,
        Percentile::P95,
        Percentile::P99,
    ];

    /// As report.json names it: `p95`.
    pub fn name(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P95 => "p95",
            Percentile::P99 => "p99",
        }
    }

    /// The one named so (`p95`), if any: a typo is none, never another.
    pub fn named(name: &str) -> Option<Percentile> {
        Percentile::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn quantile(self) -> f64 {
        match self {
            Percentile::P50 => 0.50,
            Percentile::P90 => 0.90,
            Percentile::P95 => 0.95,
            Percentile::P99 => 0.99,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn a_percentile_is_named_exactly() {
        for p in Percentile::ALL {
            assert_eq!(Percentile::named(p.name()), Some(p));
        }
        // A typo is no percentile, never the nearest one.
        assert_eq!(Percentile::named("p9x"), None);
        assert_eq!(Percentile::named("P95"), None);
        assert_eq!(min_samples(Percentile::P95.quantile()), 100);
    }

    #[test]
    fn a_rate_has_wilson_bounds() {
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 0.01;
        // Published values: 5 of 10 is [23.66, 76.34] %; 0 of 1 reaches
        // only z^2 / (1 + z^2) = 79.35 %; 0 of 20 at most 16.11 %.
        let i = proportion(5, 10);
        assert!(close(i.lo, 23.66) && close(i.hi, 76.34), "{i:?}");
        let i = proportion(0, 1);
        assert!(close(i.lo, 0.0) && close(i.hi, 79.35), "{i:?}");
        assert!(close(proportion(0, 20).hi, 16.11));
        let i = proportion(20, 20);
        assert!(close(i.lo, 83.89) && close(i.hi, 100.0), "{i:?}");
        assert_eq!(proportion(0, 0), Interval::default());
    }

    /// P(B <= k) summed exactly from the pmf, for small n.
    fn exact_cdf(n: u64, q: f64, k: u64) -> f64 {
        let mut c = 0.0;
        let mut choose = 1.0f64;
        for i in 0..=k {
            if i > 0 {
                choose = choose * (n - i + 1) as f64 / i as f64;
            }
            c += choose * q.powi(i as i32) * (1.0 - q).powi((n - i) as i32);
        }
        c
    }

    fn exact_ranks(n: u64, q: f64) -> (Option<u64>, Option<u64>) {
        let tail = (1.0 - CONFIDENCE) / 2.0;
        let lo = (1..=n).filter(|&l| exact_cdf(n, q, l - 1) <= tail).max();
        let hi = (1..=n).find(|&u| exact_cdf(n, q, u - 1) >= 1.0 - tail);
        (lo, hi)
    }

    #[test]
    fn ranks_match_exact_binomial_order_statistics() {
        for n in [1, 5, 19, 20, 50, 71, 72, 100, 200, 367, 400, 1000] {
            for q in [0.5, 0.9, 0.95, 0.99] {
                assert_eq!(
                    rank_interval(n, q, CONFIDENCE),
                    exact_ranks(n, q),
                    "n={n} q={q}"
                );
            }
        }
        // A p95 of 19 samples and a p99 of 50 have no upper bound.
        assert_eq!(rank_interval(19, 0.95, CONFIDENCE).1, None);
        assert_eq!(rank_interval(50, 0.99, CONFIDENCE).1, None);
        // The first sample sizes that bound them from above.
        assert!(rank_interval(72, 0.95, CONFIDENCE).1.is_some());
        assert!(rank_interval(71, 0.95, CONFIDENCE).1.is_none());
        assert!(rank_interval(368, 0.99, CONFIDENCE).1.is_some());
        assert!(rank_interval(367, 0.99, CONFIDENCE).1.is_none());
        // The README's table of the fewest samples with an upper bound.
        for (q, n) in [(0.5, 6), (0.9, 36), (0.95, 72), (0.99, 368)] {
            assert!(rank_interval(n, q, CONFIDENCE).1.is_some(), "q={q} n={n}");
            assert!(
                rank_interval(n - 1, q, CONFIDENCE).1.is_none(),
                "q={q} n={n}"
            );
        }
        assert_eq!(min_samples(0.5), 10);
        assert_eq!(min_samples(0.9), 50);
        assert_eq!(min_samples(0.95), 100);
        assert_eq!(min_samples(0.99), 500);
    }

    #[test]
    fn poisson_matches_its_exact_sum() {
        // Exact: e^-m * sum m^i / i!, in plain arithmetic for a small mean.
        for (k, m) in [(0u64, 1.0f64), (3, 2.5), (7, 10.0), (20, 12.0)] {
            let mut term = (-m).exp();
            let mut exact = term;
            for i in 1..=k {
                term *= m / i as f64;
                exact += term;
            }
            assert!((poisson_cdf(k, m) - exact).abs() < 1e-12, "k={k} m={m}");
        }
        // 90 arrivals when 100 were offered is ordinary noise; 70 is not.
        assert!(poisson_cdf(90, 100.0) > 0.15);
        assert!(poisson_cdf(70, 100.0) < 0.002);
        // A large mean stays finite.
        assert!((poisson_cdf(100_000, 100_000.0) - 0.5).abs() < 0.01);
    }

    #[test]
    fn large_counts_agree_with_the_normal_approximation() {
        let n = 1_000_000u64;
        let (lo, hi) = rank_interval(n, 0.99, CONFIDENCE);
        let (lo, hi) = (lo.unwrap() as f64, hi.unwrap() as f64);
        let (mean, sd) = (n as f64 * 0.99, (n as f64 * 0.99 * 0.01).sqrt());
        assert!((lo - (mean - 1.96 * sd)).abs() < 3.0, "{lo}");
        assert!((hi - (mean + 1.96 * sd + 1.0)).abs() < 3.0, "{hi}");
    }

    #[test]
    fn coverage_holds_by_simulation_on_known_distributions() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // Exponential (mean 1) and uniform(0, 1): their true quantiles are known.
        // (name, draw from a uniform, the true quantile function)
        type Dist = (&'static str, fn(f64) -> f64, fn(f64) -> f64);
        let dists: [Dist; 2] = [
            ("exponential", |u| -(1.0 - u).ln(), |q| -(1.0 - q).ln()),
            ("uniform", |u| u, |q| q),
        ];
        for (name, draw, quantile) in dists {
            for (n, q) in [(100u64, 0.5), (200, 0.9), (400, 0.95), (1000, 0.99)] {
                let trials = 1000;
                let mut covered = 0;
                let (lo, hi) = rank_interval(n, q, CONFIDENCE);
                let (lo, hi) = (lo.unwrap() as usize, hi.unwrap() as usize);
                for _ in 0..trials {
                    let mut s: Vec<f64> = (0..n).map(|_| draw(rng.uniform())).collect();
                    s.sort_by(f64::total_cmp);
                    let truth = quantile(q);
                    covered += usize::from(s[lo - 1] <= truth && truth <= s[hi - 1]);
                }
                let rate = covered as f64 / trials as f64;
                // At least 95 % by construction; 1,000 trials add about
                // ±1.4 % of noise (2 sd), so 93 % is the stated floor.
                assert!(rate >= 0.93, "{name} n={n} q={q}: coverage {rate}");
            }
        }
    }
}
