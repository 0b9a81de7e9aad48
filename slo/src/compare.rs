//! `loadgen compare`: a current run against a baseline run, each metric
//! with a regression tolerance, so a PR can be gated on the last good run
//! of main.

use crate::evidence::Interval;
use crate::objective::{Direction, evidence_of, lookup};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How much worse a metric may get: relative (percent of the baseline)
/// or absolute (in the metric's unit).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Tolerance {
    Percent(f64),
    Absolute(f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub metric: String,
    pub direction: Direction,
    pub tolerance: Tolerance,
}

/// The default checks, on latencies as the user saw them
/// (`scheduled_latency_ms`: from the schedule under an open model):
/// p50 and p95 may grow 10 %, p99 15 %, inter-token p95 15 %; the success
/// rate may drop 1 point and goodput 2 points.
pub fn default_checks() -> Vec<Check> {
    let mut v = Vec::new();
    for m in ["first_token", "first_audio", "complete"] {
        for (stat, pct) in [("p50", 10.0), ("p95", 10.0), ("p99", 15.0)] {
            v.push(Check {
                metric: format!("scheduled_latency_ms.{m}.{stat}"),
                direction: Direction::Max,
                tolerance: Tolerance::Percent(pct),
            });
        }
    }
    v.push(Check {
        metric: "scheduled_latency_ms.inter_token.p95".into(),
        direction: Direction::Max,
        tolerance: Tolerance::Percent(15.0),
    });
    v.push(Check {
        metric: "requests.success_rate".into(),
        direction: Direction::Min,
        tolerance: Tolerance::Absolute(1.0),
    });
    v.push(Check {
        metric: "goodput".into(),
        direction: Direction::Min,
        tolerance: Tolerance::Absolute(2.0),
    });
    v
}

/// Which way a figure of report.json gets worse: `Max` when higher is
/// worse (latencies, failures, drops), `Min` when lower is worse (success,
/// goodput, hit rates, throughput); `None` for counts that are neither
/// (e.g. `requests.total`), whose direction a tolerance must state.
pub fn direction_of(metric: &str) -> Option<Direction> {
    let parts: Vec<&str> = metric.split('.').collect();
    let leaf = *parts.last()?;
    match parts[0] {
        "latency_ms" | "scheduled_latency_ms" if leaf != "count" => Some(Direction::Max),
        "errors" | "error_rates" | "errors_by_cause" => Some(Direction::Max),
        "audio" if leaf != "count" && leaf != "requests_with_audio" => Some(Direction::Max),
        "requests" => match leaf {
            "failed" | "dropped" | "late" | "error_rate" | "client_stalled" => Some(Direction::Max),
            "ok" | "success_rate" => Some(Direction::Min),
            _ => None,
        },
        "goodput" | "throughput" => Some(Direction::Min),
        "cache" if leaf.ends_with("hit_rate") => Some(Direction::Min),
        _ => None,
    }
}

/// `metric=10%` (relative) or `metric=5` (absolute) over the defaults,
/// optionally with the direction, `metric=5%:max` (higher is worse) or
/// `metric=5%:min` (lower is worse). The metric must be a figure of
/// report.json; one without a known direction must state it.
pub fn apply_override(checks: &mut Vec<Check>, spec: &str) -> Result<(), String> {
    let usage = "expected METRIC=PERCENT% or METRIC=ABSOLUTE, optionally with :max (higher is worse) or :min (lower is worse), e.g. latency_ms.first_token.p95=5%";
    let (metric, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("--tolerance {spec:?}: {usage}"))?;
    let metric = metric.trim();
    crate::paths::check(crate::objective::Source::Client, metric)
        .map_err(|e| format!("--tolerance {spec:?}: {e}"))?;
    let (tol, stated) = match rest.rsplit_once(':') {
        Some((t, "max")) => (t, Some(Direction::Max)),
        Some((t, "min")) => (t, Some(Direction::Min)),
        Some((_, d)) => {
            return Err(format!(
                "--tolerance {spec:?}: direction {d:?} is neither max nor min; {usage}"
            ));
        }
        None => (rest, None),
    };
    let number = |t: &str| {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("--tolerance {spec:?}: {t:?} is not a number >= 0; {usage}"))
    };
    let tolerance = match tol.strip_suffix('%') {
        Some(p) => Tolerance::Percent(number(p)?),
        None => Tolerance::Absolute(number(tol)?),
    };
    let direction = stated.or_else(|| direction_of(metric)).ok_or_else(|| {
        format!("--tolerance {spec:?}: {metric} has no known direction: add :max (higher is worse) or :min (lower is worse)")
    })?;
    match checks.iter_mut().find(|c| c.metric == metric) {
        Some(c) => {
            c.tolerance = tolerance;
            c.direction = direction;
        }
        None => checks.push(Check {
            metric: metric.to_owned(),
            direction,
            tolerance,
        }),
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compared {
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// The worst the current value may be.
    pub limit: Option<f64>,
    pub regressed: bool,
    /// Why it regressed, or why it could not be compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The 95 % intervals, for a percentile.
    #[serde(default)]
    pub baseline_interval: Option<Interval>,
    #[serde(default)]
    pub current_interval: Option<Interval>,
}

/// Each check on two `report.json` documents. A percentile with evidence
/// in both is compared by its intervals: it regressed only when the
/// current interval lies wholly past the baseline interval's far side
/// plus the tolerance, so the noise of two runs is not called a
/// regression.
pub fn compare(baseline: &Value, current: &Value, checks: &[Check]) -> Vec<Compared> {
    checks
        .iter()
        .map(|c| {
            let (b, cur) = (lookup(baseline, &c.metric), lookup(current, &c.metric));
            let (bi, ci) = (
                evidence_of(baseline, &c.metric).map(|(_, i)| i),
                evidence_of(current, &c.metric).map(|(_, i)| i),
            );
            // The baseline's side the current value must get past, and the
            // current value's side that must get past it.
            let (base_edge, cur_edge) = match (&bi, &ci, c.direction) {
                (Some(bi), Some(ci), Direction::Max) => (bi.hi, ci.lo),
                (Some(bi), Some(ci), Direction::Min) => (bi.lo, ci.hi),
                _ => (b, cur),
            };
            let limit = base_edge.map(|b| {
                let slack = match c.tolerance {
                    Tolerance::Percent(p) => b.abs() * p / 100.0,
                    Tolerance::Absolute(a) => a,
                };
                match c.direction {
                    Direction::Max => b + slack,
                    Direction::Min => b - slack,
                }
            });
            // A figure the baseline had and the current run lacks is a
            // regression: the gate fails closed.
            let (regressed, note) = match (cur, b, limit) {
                (None, Some(_), _) => (true, "missing in the current report".to_owned()),
                (_, None, _) => (false, "not in the baseline: not compared".to_owned()),
                (Some(_), Some(_), None) => (
                    false,
                    "the baseline's interval is unbounded: too few samples to compare".to_owned(),
                ),
                (Some(_), Some(_), Some(l)) => match cur_edge {
                    Some(v) => {
                        let worse = match c.direction {
                            Direction::Max => v > l,
                            Direction::Min => v < l,
                        };
                        (worse, String::new())
                    }
                    None => (
                        false,
                        "the current interval is unbounded: too few samples to compare".to_owned(),
                    ),
                },
            };
            Compared {
                metric: c.metric.clone(),
                baseline: b,
                current: cur,
                limit,
                regressed,
                note,
                baseline_interval: bi,
                current_interval: ci,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_regression_beyond_tolerance_is_flagged() {
        let base = json!({"latency_ms": {"first_token": {"p95": 500.0}}, "requests": {"success_rate": 99.5}});
        let checks = vec![
            Check {
                metric: "latency_ms.first_token.p95".into(),
                direction: Direction::Max,
                tolerance: Tolerance::Percent(10.0),
            },
            Check {
                metric: "requests.success_rate".into(),
                direction: Direction::Min,
                tolerance: Tolerance::Absolute(1.0),
            },
        ];
        assert!(compare(&base, &base, &checks).iter().all(|r| !r.regressed));
        let slower = json!({"latency_ms": {"first_token": {"p95": 560.0}}, "requests": {"success_rate": 99.0}});
        let rows = compare(&base, &slower, &checks);
        assert!(rows[0].regressed && !rows[1].regressed);
        assert_eq!(rows[0].limit, Some(550.0));
        let mut c = checks.clone();
        apply_override(&mut c, "latency_ms.first_token.p95=20%").unwrap();
        assert!(!compare(&base, &slower, &c)[0].regressed);
        assert!(
            apply_override(&mut c, "nonsense")
                .unwrap_err()
                .contains("METRIC=")
        );
    }

    #[test]
    fn missing_is_a_regression_and_every_metric_has_a_direction() {
        let base = json!({"latency_ms": {"first_token": {"p95": 500.0}}});
        let checks = vec![Check {
            metric: "latency_ms.first_token.p95".into(),
            direction: Direction::Max,
            tolerance: Tolerance::Percent(10.0),
        }];
        for current in [
            json!({}),
            json!({"latency_ms": {"first_token": {"p95": null}}}),
        ] {
            let rows = compare(&base, &current, &checks);
            assert!(rows[0].regressed, "{rows:?}");
        }
        let mut c = Vec::new();
        apply_override(&mut c, "requests.dropped=0").unwrap();
        assert_eq!(c[0].direction, Direction::Max);
        let e = apply_override(&mut c, "requests.total=5%").unwrap_err();
        assert!(e.contains(":max"), "{e}");
        apply_override(&mut c, "requests.total=5%:min").unwrap();
        assert_eq!(c[1].direction, Direction::Min);
        let e = apply_override(&mut c, "requests.dropd=1").unwrap_err();
        assert!(e.contains("requests.dropped"), "{e}");
        for m in crate::paths::catalogue(crate::objective::Source::Client) {
            if m.ends_with("p95") || m.contains("rate") {
                assert!(direction_of(m).is_some(), "{m}");
            }
        }
    }
}
