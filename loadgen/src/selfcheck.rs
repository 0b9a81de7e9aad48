//! The load generator watches itself: the lag of its own scheduler (a
//! timer that should fire every 10 ms) and its process's CPU use. A run
//! in which the client was the bottleneck is marked not trustworthy, with
//! the reason, so its numbers cannot pass a gate.

use serde::Serialize;
use slo::histogram::LatencyHistogram;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Scheduler lag (p99) above which the client's own timing is suspect.
pub const MAX_LAG_P99_MS: f64 = 50.0;
/// Average CPU (share of all cores) above which the client is saturated.
pub const MAX_CPU_PERCENT: f64 = 90.0;

#[derive(Clone, Debug, Default, Serialize)]
pub struct SelfCheck {
    pub trustworthy: bool,
    /// Why not, in words.
    pub reasons: Vec<String>,
    /// Worth knowing, but the numbers stand.
    pub warnings: Vec<String>,
    pub scheduler_lag_ms: LagFigures,
    pub cpu_percent_avg: f64,
    pub cpu_percent_max: f64,
    pub cores: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LagFigures {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Default)]
pub struct Watch {
    lag: LatencyHistogram,
    cpu: Vec<f64>,
    cores: usize,
}

/// Samples until the task is aborted.
pub async fn watch(state: Arc<Mutex<Watch>>) {
    let period = Duration::from_millis(10);
    let mut sampler = server::system::Sampler::new();
    sampler.sample();
    let mut expected = Instant::now() + period;
    let mut next_cpu = Instant::now() + Duration::from_secs(1);
    loop {
        tokio::time::sleep_until(expected).await;
        let now = Instant::now();
        let lag = now.saturating_duration_since(expected);
        let mut w = state.lock().expect("watch lock");
        w.lag.record(lag);
        if now >= next_cpu {
            let s = sampler.sample();
            w.cpu.push(s.cpu_percent);
            w.cores = s.cores;
            next_cpu = now + Duration::from_secs(1);
        }
        drop(w);
        expected = now + period;
    }
}

impl Watch {
    /// The verdict on the client; `shares_process` when the embedded
    /// server ran in this process (its CPU is counted here too).
    pub fn verdict(&self, shares_process: bool) -> SelfCheck {
        let ms = |us: u64| us as f64 / 1000.0;
        let lag = LagFigures {
            p50: ms(self.lag.quantile_us(0.5)),
            p99: ms(self.lag.quantile_us(0.99)),
            max: ms(self.lag.max_us()),
        };
        let avg = if self.cpu.is_empty() {
            0.0
        } else {
            self.cpu.iter().sum::<f64>() / self.cpu.len() as f64
        };
        let max = self.cpu.iter().copied().fold(0.0, f64::max);
        let mut reasons = Vec::new();
        let mut warnings = Vec::new();
        if lag.p99 > MAX_LAG_P99_MS {
            reasons.push(format!(
                "the load generator's scheduler lagged {:.1} ms at p99 (limit {MAX_LAG_P99_MS} ms): its own timing is not trustworthy",
                lag.p99
            ));
        }
        if avg > MAX_CPU_PERCENT {
            let who = if shares_process {
                " (this includes the embedded reference server)"
            } else {
                ""
            };
            reasons.push(format!(
                "the load generator's process used {avg:.0}% of the CPU on average (limit {MAX_CPU_PERCENT}%){who}: it was the bottleneck"
            ));
        } else if max > MAX_CPU_PERCENT {
            warnings.push(format!("the load generator's CPU peaked at {max:.0}%"));
        }
        SelfCheck {
            trustworthy: reasons.is_empty(),
            reasons,
            warnings,
            scheduler_lag_ms: lag,
            cpu_percent_avg: avg,
            cpu_percent_max: max,
            cores: self.cores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lagging_or_saturated_client_is_not_trustworthy() {
        let mut w = Watch {
            cores: 2,
            ..Watch::default()
        };
        for _ in 0..1000 {
            w.lag.record(Duration::from_millis(1));
            w.cpu.push(30.0);
        }
        let ok = w.verdict(false);
        assert!(ok.trustworthy && ok.reasons.is_empty());
        for _ in 0..50 {
            w.lag.record(Duration::from_millis(120));
        }
        let lagging = w.verdict(false);
        assert!(!lagging.trustworthy);
        assert!(
            lagging.reasons[0].contains("scheduler lagged"),
            "{:?}",
            lagging.reasons
        );
        let mut busy = Watch {
            cores: 2,
            ..Watch::default()
        };
        busy.lag.record(Duration::from_millis(1));
        busy.cpu = vec![95.0; 10];
        let v = busy.verdict(true);
        assert!(!v.trustworthy);
        assert!(
            v.reasons[0].contains("embedded reference server"),
            "{:?}",
            v.reasons
        );
    }
}
