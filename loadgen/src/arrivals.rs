//! The open model's arrivals at a rate: evenly spaced, Poisson, or gamma
//! with a burstiness factor (vLLM's `--burstiness`: 1 is Poisson, lower is
//! burstier, higher more even), at a rate that may ramp through stages
//! (k6's ramping arrival rate). Arrivals are drawn in operational time (a
//! process of rate 1: gaps of 1, Exp(1) or Gamma(k, 1/k)) and mapped
//! onto the run's clock through the rate's integral, so every shape has
//! the rate the stages give, second by second.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp1, Gamma};

/// Gaps between arrivals in operational time (mean 1).
#[derive(Debug)]
pub enum Gaps {
    Even,
    Poisson(Box<StdRng>),
    Gamma(Box<StdRng>, Gamma<f64>),
}

impl Gaps {
    /// `burstiness`: the gamma's shape (1 draws as Poisson does).
    pub fn new(arrival: slo::scenario::Arrival, burstiness: f64, seed: u64) -> Gaps {
        let rng = || Box::new(StdRng::seed_from_u64(seed ^ 0x5eed));
        match arrival {
            slo::scenario::Arrival::Constant => Gaps::Even,
            slo::scenario::Arrival::Poisson => Gaps::Poisson(rng()),
            slo::scenario::Arrival::Gamma => Gaps::Gamma(
                rng(),
                Gamma::new(burstiness, 1.0 / burstiness).expect("a checked burstiness"),
            ),
        }
    }

    pub fn draw(&mut self) -> f64 {
        match self {
            Gaps::Even => 1.0,
            Gaps::Poisson(rng) => Exp1.sample(rng.as_mut()),
            Gaps::Gamma(rng, g) => g.sample(rng.as_mut()),
        }
    }
}

/// A rate over the run's time: `start` at 0, then each stage ramping
/// linearly to its target over its duration; the last target after.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// (from, length, rate at from, rate at from + length) in seconds.
    segments: Vec<(f64, f64, f64, f64)>,
    last: f64,
}

impl Profile {
    pub fn new(start: f64, stages: &[(f64, f64)]) -> Profile {
        let (mut t, mut rate) = (0.0, start);
        let mut segments = Vec::new();
        for &(target, length) in stages {
            segments.push((t, length, rate, target));
            t += length;
            rate = target;
        }
        Profile {
            segments,
            last: rate,
        }
    }

    /// The run's time at which the rate's integral reaches `area`
    /// (infinite when it never does).
    pub fn time_at(&self, mut area: f64) -> f64 {
        for &(from, length, a, b) in &self.segments {
            let whole = (a + b) / 2.0 * length;
            if area > whole {
                area -= whole;
                continue;
            }
            // a·τ + (b − a)/(2·length)·τ² = area
            let slope = (b - a) / length;
            let tau = if slope.abs() < 1e-12 {
                if a <= 0.0 {
                    continue;
                }
                area / a
            } else {
                (-a + (a * a + 2.0 * slope * area).max(0.0).sqrt()) / slope
            };
            return from + tau.clamp(0.0, length);
        }
        let end = self.segments.last().map_or(0.0, |s| s.0 + s.1);
        if self.last > 0.0 {
            end + area / self.last
        } else {
            f64::INFINITY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slo::scenario::Arrival;

    fn arrivals(gaps: &mut Gaps, profile: &Profile, until: f64) -> Vec<f64> {
        let mut u = 0.0;
        let mut out = Vec::new();
        loop {
            let t = profile.time_at(u);
            if t >= until {
                return out;
            }
            out.push(t);
            u += gaps.draw();
        }
    }

    #[test]
    fn a_constant_rate_is_evenly_spaced() {
        let a = arrivals(
            &mut Gaps::new(Arrival::Constant, 1.0, 1),
            &Profile::new(20.0, &[]),
            1.0,
        );
        assert_eq!(a.len(), 20);
        assert!(
            a.iter()
                .enumerate()
                .all(|(i, t)| (t - i as f64 * 0.05).abs() < 1e-12)
        );
    }

    #[test]
    fn gamma_gaps_have_the_rate_and_the_burstiness_asked() {
        let profile = Profile::new(100.0, &[]);
        for (arrival, k) in [
            (Arrival::Poisson, 1.0),
            (Arrival::Gamma, 0.25),
            (Arrival::Gamma, 4.0),
        ] {
            let a = arrivals(&mut Gaps::new(arrival, k, 7), &profile, 400.0);
            let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
            let n = gaps.len() as f64;
            let mean = gaps.iter().sum::<f64>() / n;
            let cv = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n).sqrt() / mean;
            // Mean gap 1/rate; coefficient of variation 1/sqrt(k) (a
            // Poisson process's is 1).
            assert!((mean - 0.01).abs() < 0.0003, "{arrival:?} {k}: mean {mean}");
            assert!(
                (cv - 1.0 / k.sqrt()).abs() < 0.05,
                "{arrival:?} {k}: cv {cv}"
            );
        }
    }

    #[test]
    fn stages_ramp_the_rate_second_by_second() {
        // 10/s, ramping to 30/s over 10 s, then holding for 5 s, then down
        // to 0 over 5 s: each second's arrivals are its mean rate.
        let profile = Profile::new(10.0, &[(30.0, 10.0), (30.0, 5.0), (0.0, 5.0)]);
        let a = arrivals(&mut Gaps::new(Arrival::Constant, 1.0, 1), &profile, 30.0);
        let in_second = |s: usize| {
            a.iter()
                .filter(|t| **t >= s as f64 && **t < s as f64 + 1.0)
                .count()
        };
        for s in 0..10 {
            let expect = 10.0 + 2.0 * (s as f64 + 0.5);
            assert!(
                (in_second(s) as f64 - expect).abs() <= 1.0,
                "second {s}: {}",
                in_second(s)
            );
        }
        for s in 10..15 {
            assert_eq!(in_second(s), 30, "second {s}");
        }
        assert!(
            (in_second(17) as f64 - 15.0).abs() <= 1.0,
            "{}",
            in_second(17)
        );
        // Ramped down to 0: nothing after the last stage (the last one as
        // the rate reaches 0, at 20 s).
        assert_eq!(a.iter().filter(|t| **t > 20.0 + 1e-9).count(), 0);
        assert!(
            (a.len() as f64 - (200.0 + 150.0 + 75.0)).abs() <= 1.0,
            "{}",
            a.len()
        );
    }
}
