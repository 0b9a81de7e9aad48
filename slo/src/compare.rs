//! `loadgen compare`: a current run against a baseline run, each metric
//! with a regression tolerance, so a PR can be gated on the last good run
//! of main.

use crate::objective::{Direction, lookup};
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

/// The default checks: latencies may grow 10 % at p95 (15 % at p99), the
/// success rate may drop 1 point and goodput 2 points.
pub fn default_checks() -> Vec<Check> {
    let mut v = Vec::new();
    for m in ["first_token", "first_audio", "complete"] {
        for (stat, pct) in [("p50", 10.0), ("p95", 10.0), ("p99", 15.0)] {
            v.push(Check {
                metric: format!("latency_ms.{m}.{stat}"),
                direction: Direction::Max,
                tolerance: Tolerance::Percent(pct),
            });
        }
    }
    v.push(Check {
        metric: "latency_ms.inter_token.p95".into(),
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

/// `metric=10%` (relative) or `metric=5` (absolute) over the defaults; a
/// metric not among them is added with the direction of its kind.
pub fn apply_override(checks: &mut Vec<Check>, spec: &str) -> Result<(), String> {
    let (metric, tol) = spec
        .split_once('=')
        .ok_or_else(|| format!("--tolerance {spec:?}: expected METRIC=PERCENT% or METRIC=ABSOLUTE, e.g. latency_ms.first_token.p95=5%"))?;
    let tolerance = match tol.strip_suffix('%') {
        Some(p) => Tolerance::Percent(
            p.trim()
                .parse()
                .map_err(|_| format!("--tolerance {spec:?}: {p:?} is not a number"))?,
        ),
        None => Tolerance::Absolute(
            tol.trim()
                .parse()
                .map_err(|_| format!("--tolerance {spec:?}: {tol:?} is not a number"))?,
        ),
    };
    match checks.iter_mut().find(|c| c.metric == metric) {
        Some(c) => c.tolerance = tolerance,
        None => {
            let direction = if metric.starts_with("latency_ms.") || metric.contains("error") {
                Direction::Max
            } else {
                Direction::Min
            };
            checks.push(Check {
                metric: metric.to_owned(),
                direction,
                tolerance,
            });
        }
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
}

/// Each check on two `report.json` documents.
pub fn compare(baseline: &Value, current: &Value, checks: &[Check]) -> Vec<Compared> {
    checks
        .iter()
        .map(|c| {
            let (b, cur) = (lookup(baseline, &c.metric), lookup(current, &c.metric));
            let limit = b.map(|b| {
                let slack = match c.tolerance {
                    Tolerance::Percent(p) => b.abs() * p / 100.0,
                    Tolerance::Absolute(a) => a,
                };
                match c.direction {
                    Direction::Max => b + slack,
                    Direction::Min => b - slack,
                }
            });
            let regressed = match (cur, limit) {
                (Some(v), Some(l)) => match c.direction {
                    Direction::Max => v > l,
                    Direction::Min => v < l,
                },
                _ => false,
            };
            Compared {
                metric: c.metric.clone(),
                baseline: b,
                current: cur,
                limit,
                regressed,
            }
        })
        .collect()
}

/// A Markdown table of the comparison, verdict first.
pub fn markdown(rows: &[Compared]) -> String {
    use crate::render::num;
    let bad = rows.iter().filter(|r| r.regressed).count();
    let mut o = if bad == 0 {
        "## ✅ No regression against the baseline\n\n".to_owned()
    } else {
        format!(
            "## ❌ {bad} regression{} against the baseline\n\n",
            if bad == 1 { "" } else { "s" }
        )
    };
    o.push_str("| metric | baseline | current | limit | |\n| --- | --- | --- | --- | --- |\n");
    let f = |v: Option<f64>| v.map_or("—".to_owned(), num);
    for r in rows {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.metric,
            f(r.baseline),
            f(r.current),
            f(r.limit),
            if r.regressed { "❌ regressed" } else { "ok" }
        ));
    }
    o
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
}
