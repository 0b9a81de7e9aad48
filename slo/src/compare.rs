//! `loadgen compare`: a current run against a baseline run, each metric
//! with a regression tolerance, so a PR can be gated on the last good run
//! of main.

use crate::evidence::Interval;
use crate::objective::{Direction, evidence_of, lookup};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How much worse a metric may get: relative (percent of the baseline)
/// or absolute (in the metric's unit).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
        // A phase taking longer is worse; how many connections opened is
        // neither (a pool that keeps them is not a regression of the target).
        "phases_ms" if leaf != "count" && leaf != "new_connections" => Some(Direction::Max),
        "errors" | "error_rates" | "errors_by_cause" | "errors_by_status" => Some(Direction::Max),
        "audio" if leaf != "count" && leaf != "requests_with_audio" => Some(Direction::Max),
        "requests" if parts.get(1) == Some(&"send_error_ms") && leaf != "count" => {
            Some(Direction::Max)
        }
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
    crate::metric_paths::check(crate::objective::Source::Client, metric)
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
    /// Neither a regression nor within tolerance: the intervals lack a
    /// side the comparison needs (too few samples). Fails a comparison
    /// unless accepted (`--accept-inconclusive`).
    #[serde(default)]
    pub inconclusive: bool,
    /// Why it regressed, or why it could not be compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The 95 % intervals, for a percentile.
    #[serde(default)]
    pub baseline_interval: Option<Interval>,
    #[serde(default)]
    pub current_interval: Option<Interval>,
}

impl Compared {
    /// Whether this row fails the comparison: a regression, or an
    /// inconclusive row unless accepted.
    pub fn fails(&self, accept_inconclusive: bool) -> bool {
        self.regressed || (self.inconclusive && !accept_inconclusive)
    }
}

/// What a row says.
enum Said {
    Within,
    Regressed(String),
    Inconclusive(String),
    NotCompared(String),
}

/// Each check on two `report.json` documents. A percentile with evidence
/// in both is compared by its intervals, so the noise of two runs is not
/// called a regression and too few samples are never called "no
/// regression":
/// - regressed when the current interval's good side (a latency's lower
///   bound) lies past the baseline's far side plus the tolerance, or,
///   when the baseline's far side is unbounded, past its value plus the
///   tolerance (its near side known);
/// - within tolerance when that is not so and both intervals are
///   bounded on both sides;
/// - inconclusive otherwise.
pub fn compare(baseline: &Value, current: &Value, checks: &[Check]) -> Vec<Compared> {
    checks
        .iter()
        .map(|c| {
            let (b, cur) = (lookup(baseline, &c.metric), lookup(current, &c.metric));
            let (bi, ci) = (
                evidence_of(baseline, &c.metric).map(|(_, i)| i),
                evidence_of(current, &c.metric).map(|(_, i)| i),
            );
            let slack = |v: f64| {
                let s = match c.tolerance {
                    Tolerance::Percent(p) => v.abs() * p / 100.0,
                    Tolerance::Absolute(a) => a,
                };
                match c.direction {
                    Direction::Max => v + s,
                    Direction::Min => v - s,
                }
            };
            let past = |v: f64, limit: f64| match c.direction {
                Direction::Max => v > limit,
                Direction::Min => v < limit,
            };
            // A side of an interval: the far one (a latency's upper bound)
            // or the near one.
            let side = |i: &Interval, far: bool| match (c.direction, far) {
                (Direction::Max, true) | (Direction::Min, false) => i.hi,
                _ => i.lo,
            };
            let (limit, said) = match (cur, b) {
                // A figure the baseline had and the current run lacks is a
                // regression: the gate fails closed.
                (None, Some(_)) => (
                    None,
                    Said::Regressed("missing in the current report".to_owned()),
                ),
                (_, None) => (
                    None,
                    Said::NotCompared("not in the baseline: not compared".to_owned()),
                ),
                (Some(cur), Some(b)) => match (&bi, &ci) {
                    (Some(bi), Some(ci)) => {
                        let bounded = |i: &Interval| i.lo.is_some() && i.hi.is_some();
                        // The baseline's far side, or its value when only
                        // its near side is known.
                        let base = side(bi, true).or(side(bi, false).map(|_| b));
                        let limit = base.map(slack);
                        let said = match (limit, side(ci, false)) {
                            (Some(l), Some(v)) if past(v, l) => Said::Regressed(
                                if side(bi, true).is_some() {
                                    String::new()
                                } else {
                                    "shown by the current interval against the baseline's value: the baseline's interval is unbounded on its far side".to_owned()
                                },
                            ),
                            _ if bounded(bi) && bounded(ci) => Said::Within,
                            _ if !bounded(bi) => Said::Inconclusive(
                                "the baseline's interval is unbounded: too few samples to compare".to_owned(),
                            ),
                            _ => Said::Inconclusive(
                                "the current interval is unbounded: too few samples to compare".to_owned(),
                            ),
                        };
                        (limit, said)
                    }
                    _ => {
                        let limit = slack(b);
                        let said = if past(cur, limit) {
                            Said::Regressed(String::new())
                        } else {
                            Said::Within
                        };
                        (Some(limit), said)
                    }
                },
            };
            let (regressed, inconclusive, note) = match said {
                Said::Within => (false, false, String::new()),
                // Where the added time went, when both runs kept phases.
                Said::Regressed(n) => {
                    let moved = crate::phases::moved(&c.metric, baseline, current);
                    let n = match moved {
                        Some(m) if n.is_empty() => m,
                        Some(m) => format!("{n}; {m}"),
                        None => n,
                    };
                    (true, false, n)
                }
                Said::Inconclusive(n) => (false, true, n),
                Said::NotCompared(n) => (false, false, n),
            };
            Compared {
                metric: c.metric.clone(),
                baseline: b,
                current: cur,
                limit,
                regressed,
                inconclusive,
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
        for m in crate::metric_paths::catalogue(crate::objective::Source::Client) {
            if m.ends_with("p95") || m.contains("rate") {
                assert!(direction_of(m).is_some(), "{m}");
            }
        }
    }

    fn latency(p99: f64, lo: Option<f64>, hi: Option<f64>) -> Value {
        json!({"scheduled_latency_ms": {"complete": {"p99": p99, "count": 8,
            "evidence": {"p99": {"lo": lo, "hi": hi, "min_samples": 500}}}}})
    }

    fn p99_check() -> Vec<Check> {
        vec![Check {
            metric: "scheduled_latency_ms.complete.p99".into(),
            direction: Direction::Max,
            tolerance: Tolerance::Percent(15.0),
        }]
    }

    #[test]
    fn too_few_samples_are_inconclusive_never_no_regression() {
        let checks = p99_check();
        let base = latency(3025.0, Some(3021.0), None);
        // Ten times slower, shown by the current lower bound against the
        // baseline's value (its far side unbounded, its near side known).
        let slower = latency(30249.0, Some(30208.0), None);
        let row = &compare(&base, &slower, &checks)[0];
        assert!(row.regressed && !row.inconclusive, "{row:?}");
        assert!(row.fails(true), "a regression fails whatever is accepted");
        // The same figure: nothing shows a regression, and nothing shows
        // it within tolerance either.
        let same = latency(3025.0, Some(3021.0), None);
        let row = &compare(&base, &same, &checks)[0];
        assert!(!row.regressed && row.inconclusive, "{row:?}");
        assert!(
            row.note.contains("baseline's interval is unbounded"),
            "{row:?}"
        );
        assert!(row.fails(false) && !row.fails(true));
        // A baseline with no bound at all: not even a regression can be shown.
        let bare = latency(3025.0, None, None);
        let row = &compare(&bare, &slower, &checks)[0];
        assert!(!row.regressed && row.inconclusive, "{row:?}");
        // The current side unbounded: inconclusive, named.
        let bounded = latency(3025.0, Some(3000.0), Some(3050.0));
        let row = &compare(&bounded, &same, &checks)[0];
        assert!(
            row.inconclusive && row.note.contains("current interval"),
            "{row:?}"
        );
        // Both bounded and overlapping: within tolerance, as before.
        let row = &compare(&bounded, &bounded, &checks)[0];
        assert!(!row.regressed && !row.inconclusive, "{row:?}");
        // Both bounded, the current wholly past the baseline's far side
        // plus 15 %: regressed.
        let far = latency(4000.0, Some(3900.0), Some(4100.0));
        let row = &compare(&bounded, &far, &checks)[0];
        assert!(row.regressed && row.note.is_empty(), "{row:?}");
        assert!((row.limit.unwrap() - 3507.5).abs() < 1e-6, "{row:?}");
    }
}
