//! The load generator's check of itself (report.json's `self_check`): the
//! lag of its own scheduler, its CPU use and its stalls, judged. A run in
//! which the client was the bottleneck is not trustworthy, with the
//! reason, and its numbers cannot pass a gate.

use serde::{Deserialize, Serialize};

/// Scheduler lag (p99) above which the client's own timing is suspect.
pub const MAX_LAG_P99_MS: f64 = 50.0;
/// Average CPU (share of the cores the process may run on) above which
/// the client is saturated.
pub const MAX_CPU_PERCENT: f64 = 90.0;
/// Share of the measured requests a stall may overlap before the run is
/// not trustworthy.
pub const MAX_STALLED_PERCENT: f64 = 1.0;

/// Whether the client's own timing can be trusted, and the figures that
/// say so. A report rebuilt without the run's own report.json has no
/// figures and is not trustworthy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SelfCheck {
    pub trustworthy: bool,
    /// Why not, in words.
    pub reasons: Vec<String>,
    #[serde(flatten)]
    pub figures: Option<SelfCheckFigures>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SelfCheckFigures {
    /// Worth knowing, but the numbers stand.
    pub warnings: Vec<String>,
    /// The lag of the client's own 10 ms timer.
    pub scheduler_lag_ms: LagFigures,
    /// CPU use as a share of the cores the process may run on.
    pub cpu_percent_avg: f64,
    pub cpu_percent_max: f64,
    /// The cores the process may run on (affinity and cgroup quota).
    pub cores: usize,
    /// Stalls of the scheduler longer than the flag level.
    pub stalls: u64,
    pub longest_stall_ms: f64,
    /// Measured requests that a stall overlapped.
    pub stalled_requests: u64,
    /// The process's peak resident memory over the run (Linux `VmHWM`),
    /// the embedded server's included when it ran in the process.
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LagFigures {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// What the client saw of itself over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observed {
    pub lag_ms: LagFigures,
    pub cpu_percent_avg: f64,
    pub cpu_percent_max: f64,
    pub cores: usize,
    pub stalls: u64,
    pub longest_stall_ms: f64,
    /// Of `measured` requests, `stalled` were overlapped by a stall.
    pub stalled: u64,
    pub measured: u64,
    /// The embedded server ran in the same process (its CPU counts here).
    pub shares_process: bool,
    pub peak_rss_mb: Option<f64>,
}

impl SelfCheck {
    /// Judges what the client saw against [`MAX_LAG_P99_MS`],
    /// [`MAX_CPU_PERCENT`] and [`MAX_STALLED_PERCENT`].
    pub fn judge(o: Observed) -> SelfCheck {
        let mut reasons = Vec::new();
        let mut warnings = Vec::new();
        if o.lag_ms.p99 > MAX_LAG_P99_MS {
            reasons.push(format!(
                "the load generator's scheduler lagged {:.1} ms at p99 (limit {MAX_LAG_P99_MS} ms): its own timing is not trustworthy",
                o.lag_ms.p99
            ));
        }
        let (avg, max) = (o.cpu_percent_avg, o.cpu_percent_max);
        if avg > MAX_CPU_PERCENT {
            let who = if o.shares_process {
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
        let (stalled, measured, longest) = (o.stalled, o.measured, o.longest_stall_ms);
        let share = if measured == 0 {
            0.0
        } else {
            stalled as f64 * 100.0 / measured as f64
        };
        if share > MAX_STALLED_PERCENT {
            reasons.push(format!(
                "the load generator's scheduler stalled {} times (longest {longest:.0} ms), overlapping {stalled} of {measured} measured requests ({share:.1}%, limit {MAX_STALLED_PERCENT}%): their latencies include the client's own stall (CSV column client_stall_us)",
                o.stalls
            ));
        } else if stalled > 0 {
            warnings.push(format!(
                "{stalled} requests were overlapped by a stall of the load generator (longest {longest:.0} ms)"
            ));
        }
        SelfCheck {
            trustworthy: reasons.is_empty(),
            reasons,
            figures: Some(SelfCheckFigures {
                warnings,
                scheduler_lag_ms: o.lag_ms,
                cpu_percent_avg: avg,
                cpu_percent_max: max,
                cores: o.cores,
                stalls: o.stalls,
                longest_stall_ms: longest,
                stalled_requests: stalled,
                peak_rss_mb: o.peak_rss_mb,
            }),
        }
    }

    /// For a report rebuilt without the run's own: nothing says the client
    /// was sound, so it fails closed.
    pub fn not_recorded() -> SelfCheck {
        SelfCheck {
            trustworthy: false,
            reasons: vec!["the run's self-check was not recorded (no report.json)".into()],
            figures: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> Observed {
        Observed {
            lag_ms: LagFigures {
                p50: 1.0,
                p99: 1.0,
                max: 2.0,
            },
            cpu_percent_avg: 30.0,
            cpu_percent_max: 30.0,
            cores: 2,
            measured: 100,
            ..Observed::default()
        }
    }

    #[test]
    fn a_lagging_saturated_or_stalled_client_is_not_trustworthy() {
        let ok = SelfCheck::judge(calm());
        assert!(ok.trustworthy && ok.reasons.is_empty(), "{ok:?}");
        let mut lagging = calm();
        lagging.lag_ms.p99 = 51.0;
        let v = SelfCheck::judge(lagging);
        assert!(!v.trustworthy);
        assert!(v.reasons[0].contains("scheduler lagged 51.0 ms"), "{v:?}");
        let busy = Observed {
            cpu_percent_avg: 95.0,
            cpu_percent_max: 95.0,
            shares_process: true,
            ..calm()
        };
        let v = SelfCheck::judge(busy);
        assert!(v.reasons[0].contains("embedded reference server"), "{v:?}");
        let peak = Observed {
            cpu_percent_max: 95.0,
            ..calm()
        };
        let v = SelfCheck::judge(peak);
        assert!(v.trustworthy);
        assert_eq!(v.figures.unwrap().warnings.len(), 1);
        let stalled = Observed {
            stalls: 1,
            longest_stall_ms: 1500.0,
            stalled: 2,
            measured: 100,
            ..calm()
        };
        let v = SelfCheck::judge(stalled);
        assert!(v.reasons[0].contains("stalled 1 times"), "{v:?}");
        // At the limit (1 of 100) the numbers stand, with a warning.
        let v = SelfCheck::judge(Observed {
            stalled: 1,
            ..stalled
        });
        assert!(v.trustworthy, "{v:?}");
    }

    #[test]
    fn not_recorded_fails_and_reads_back() {
        let v = SelfCheck::not_recorded();
        assert!(!v.trustworthy);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 2, "{json}");
        assert_eq!(serde_json::from_value::<SelfCheck>(json).unwrap(), v);
        let judged = SelfCheck::judge(calm());
        let json = serde_json::to_value(&judged).unwrap();
        assert_eq!(json["scheduler_lag_ms"]["p99"], 1.0);
        assert_eq!(serde_json::from_value::<SelfCheck>(json).unwrap(), judged);
    }
}
