//! Capacity search: the highest arrival rate at which every objective
//! holds. A geometric ramp until the first breach, then bisection between
//! the last passing and the first failing rate, until they are within the
//! precision. Pure: the caller runs each step and reports its result.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchConfig {
    /// The first rate tried (requests/s).
    pub start: f64,
    /// Never offer more than this.
    pub max: f64,
    /// Never offer less than this (when even `start` fails).
    pub min: f64,
    /// Ramp factor between steps (e.g. 2).
    pub factor: f64,
    /// Bisection stops when (first failing - last passing) / last passing
    /// is at most this (e.g. 0.1).
    pub precision: f64,
    /// A safety bound on the number of steps.
    pub max_steps: usize,
}

/// One step of the search, as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Step {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub passed: bool,
    /// An objective reached its critical level.
    pub critical: bool,
    /// The load generator itself was the bottleneck (its numbers do not
    /// judge the server).
    pub client_saturated: bool,
    pub success_rate: f64,
    pub first_token_p50_ms: Option<f64>,
    pub first_token_p95_ms: Option<f64>,
    pub first_token_p99_ms: Option<f64>,
    pub complete_p95_ms: Option<f64>,
    /// Objectives that failed, worst first, with level and value.
    pub breached: Vec<Breach>,
    /// Objectives that held.
    pub held: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Breach {
    pub name: String,
    pub level: String,
    pub value: Option<f64>,
    pub threshold: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    pub cfg: SearchConfig,
    pub steps: Vec<Step>,
    pub last_pass: Option<f64>,
    pub first_fail: Option<f64>,
    /// Why the search stopped before reaching its precision, if it did.
    pub stopped: Option<String>,
}

impl Search {
    pub fn new(cfg: SearchConfig) -> Self {
        Self {
            cfg,
            steps: Vec::new(),
            last_pass: None,
            first_fail: None,
            stopped: None,
        }
    }

    /// The rate of the next step, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        if self.stopped.is_some() || self.steps.len() >= self.cfg.max_steps {
            return None;
        }
        match (self.last_pass, self.first_fail) {
            (None, None) => Some(self.cfg.start),
            // Ramping up.
            (Some(p), None) => {
                if p >= self.cfg.max {
                    None
                } else {
                    Some((p * self.cfg.factor).min(self.cfg.max))
                }
            }
            // Even the lowest rate tried failed: ramp down.
            (None, Some(f)) => {
                let r = f / self.cfg.factor;
                (r >= self.cfg.min).then_some(r)
            }
            (Some(p), Some(f)) => {
                if (f - p) / p <= self.cfg.precision {
                    None
                } else {
                    Some((p + f) / 2.0)
                }
            }
        }
    }

    pub fn record(&mut self, step: Step) {
        let rate = step.offered_rps;
        if step.client_saturated {
            self.stopped = Some(format!(
                "the load generator saturated at {rate:.2} requests/s: the server's capacity is at least the last passing rate, not measured beyond"
            ));
        } else if step.passed {
            self.last_pass = Some(self.last_pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.first_fail = Some(self.first_fail.map_or(rate, |f| f.min(rate)));
            if step.critical && self.last_pass.is_none() && rate <= self.cfg.min {
                self.stopped = Some(format!(
                    "an objective is critical even at {rate:.2} requests/s"
                ));
            }
        }
        self.steps.push(step);
    }

    /// The objective that broke first: the worst breach at the lowest
    /// failing rate.
    pub fn limiting_objective(&self) -> Option<&Breach> {
        self.steps
            .iter()
            .filter(|s| !s.passed && !s.client_saturated)
            .min_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps))
            .and_then(|s| s.breached.first())
    }

    /// The knee of the latency curve: the highest rate whose p95 first
    /// token is still within 1.5x of the p95 at the lowest rate measured.
    pub fn knee(&self) -> Option<f64> {
        let mut by_rate: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| !s.client_saturated && s.first_token_p95_ms.is_some_and(|v| v > 0.0))
            .collect();
        by_rate.sort_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps));
        let base = by_rate.first()?.first_token_p95_ms?;
        by_rate
            .iter()
            .take_while(|s| s.first_token_p95_ms.is_some_and(|v| v <= base * 1.5))
            .last()
            .map(|s| s.offered_rps)
    }
}

/// `capacity.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CapacityReport {
    pub schema_version: u32,
    pub scenario: String,
    pub target: String,
    pub slo_file: Option<String>,
    pub config: SearchConfig,
    pub max_sustainable: Quantity,
    pub limiting_objective: Option<Breach>,
    /// The rate after which latency rises steeply (see the README).
    pub knee: Option<Quantity>,
    pub expected_rps: Option<f64>,
    /// `max_sustainable / expected - 1`, percent (negative: short of it).
    pub headroom_percent: Option<f64>,
    pub meets_expected: Option<bool>,
    pub stopped: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Quantity {
    pub value: f64,
    pub unit: String,
}

impl CapacityReport {
    pub fn new(
        s: &Search,
        scenario: &str,
        target: &str,
        slo_file: Option<String>,
        expected: Option<f64>,
    ) -> Self {
        let max = s.last_pass.unwrap_or(0.0);
        let rps = |v: f64| Quantity {
            value: v,
            unit: "requests/s".into(),
        };
        Self {
            schema_version: 1,
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            slo_file,
            config: s.cfg.clone(),
            max_sustainable: rps(max),
            limiting_objective: s.limiting_objective().cloned(),
            knee: s.knee().map(rps),
            expected_rps: expected,
            headroom_percent: expected
                .filter(|e| *e > 0.0)
                .map(|e| (max / e - 1.0) * 100.0),
            meets_expected: expected.map(|e| max >= e),
            stopped: s.stopped.clone(),
            steps: s.steps.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service of capacity `c`: p95 latency `base / (1 - rho)`; an
    /// objective of `limit` ms.
    fn service(rate: f64, c: f64, base: f64, limit: f64) -> Step {
        let rho = rate / c;
        let p95 = if rho >= 1.0 {
            60_000.0
        } else {
            base / (1.0 - rho)
        };
        let passed = p95 <= limit;
        Step {
            offered_rps: rate,
            achieved_rps: rate.min(c),
            passed,
            critical: p95 > 4.0 * limit,
            client_saturated: false,
            success_rate: 100.0,
            first_token_p50_ms: Some(p95 * 0.7),
            first_token_p95_ms: Some(p95),
            first_token_p99_ms: Some(p95 * 1.2),
            complete_p95_ms: Some(p95 * 3.0),
            breached: if passed {
                vec![]
            } else {
                vec![Breach {
                    name: "first token p95".into(),
                    level: "warning".into(),
                    value: Some(p95),
                    threshold: limit,
                }]
            },
            held: if passed {
                vec!["first token p95".into()]
            } else {
                vec![]
            },
        }
    }

    fn cfg() -> SearchConfig {
        SearchConfig {
            start: 1.0,
            max: 1000.0,
            min: 0.05,
            factor: 2.0,
            precision: 0.05,
            max_steps: 30,
        }
    }

    fn run(c: f64) -> Search {
        let mut s = Search::new(cfg());
        while let Some(r) = s.next_rate() {
            s.record(service(r, c, 100.0, 500.0));
        }
        s
    }

    #[test]
    fn finds_the_rate_where_the_objective_breaks() {
        for c in [3.0, 10.0, 37.0, 250.0] {
            let s = run(c);
            // p95 = 100 / (1 - r/c) <= 500  <=>  r <= 0.8 c
            let truth = 0.8 * c;
            let found = s.last_pass.unwrap();
            assert!(
                found <= truth && found >= truth * (1.0 - 0.06),
                "capacity {c}: found {found}, truth {truth}"
            );
            assert!(s.steps.len() < 20, "{} steps", s.steps.len());
            assert_eq!(s.limiting_objective().unwrap().name, "first token p95");
            let knee = s.knee().unwrap();
            assert!(knee <= found, "knee {knee} before the capacity {found}");
        }
    }

    #[test]
    fn ramps_down_when_the_start_fails_and_stops_at_max() {
        let s = run(0.5);
        let found = s.last_pass.unwrap();
        assert!((0.38..=0.4).contains(&found), "{found}");
        let mut big = Search::new(SearchConfig { max: 8.0, ..cfg() });
        while let Some(r) = big.next_rate() {
            big.record(service(r, 1e9, 100.0, 500.0));
        }
        assert_eq!(big.last_pass, Some(8.0));
        assert!(big.first_fail.is_none());
    }

    #[test]
    fn a_saturated_client_stops_the_search_without_blaming_the_server() {
        let mut s = Search::new(cfg());
        s.record(service(1.0, 100.0, 100.0, 500.0));
        let mut sat = service(2.0, 100.0, 100.0, 500.0);
        sat.client_saturated = true;
        s.record(sat);
        assert_eq!(s.next_rate(), None);
        assert_eq!(s.last_pass, Some(1.0));
        assert!(
            s.stopped
                .as_ref()
                .unwrap()
                .contains("load generator saturated")
        );
        let r = CapacityReport::new(&s, "x", "t", None, Some(2.0));
        assert_eq!(r.meets_expected, Some(false));
        assert_eq!(r.headroom_percent, Some(-50.0));
    }
}
