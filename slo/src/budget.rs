//! Error budgets: an availability objective (a success rate, goodput, an
//! error rate) with `budget = "30d"` gets a second judgment, the burn
//! rate this run's failures would cause: the share that failed over the
//! share the objective allows (a 99 % target allows 1 %; failing 2 % of
//! requests burns the budget twice as fast as it accrues, and a 30-day
//! budget is gone in 15 days).
//!
//! The burn is judged against the guide's alerting: its error-rate alert
//! fires at an error rate over 2 % for five minutes, twice the 1 % its
//! 99 % success target allows, and its critical level is 5 %, five times
//! it. So a burn over 1 misses the target (the budget will not last its
//! period), over 2 is at warning (the guide's alert would fire: a fast
//! burn), over 5 critical. The burn carries the rate's 95 % interval
//! (Wilson's), so it is decided as every figure with evidence is.

use crate::evidence::Interval;
use crate::objective::{BudgetView, Direction, FailOn, Judged, Objective};
use serde_json::json;

/// The burn rates the guide's alerting stands for (see the module).
pub const MISSED: f64 = 1.0;
pub const FAST_BURN: f64 = 2.0;
pub const CRITICAL_BURN: f64 = 5.0;

/// The burn of `period_s` judged from the objective's own judgment `j`
/// (its value and interval, in percent) over `measured_s` seconds.
pub fn judge(
    o: &Objective,
    j: &Judged,
    (period_s, measured_s): (f64, f64),
    fail_on: FailOn,
) -> Judged {
    // As fractions that failed: the value and its interval's sides.
    let min = o.direction == Direction::Min;
    let allowed = if min { 100.0 - o.target } else { o.target };
    let failed = |v: f64| if min { 100.0 - v } else { v };
    let burn = |v: f64| failed(v) / allowed;
    let value = j.value.map(burn);
    let interval = j.interval.as_ref().map(|i| {
        // A success rate's upper bound is the burn's lower one.
        let (lo, hi) = match o.direction {
            Direction::Min => (i.hi, i.lo),
            Direction::Max => (i.lo, i.hi),
        };
        Interval {
            lo: lo.map(burn),
            hi: hi.map(burn),
            min_samples: 0,
        }
    });
    let period = humantime::format_duration(std::time::Duration::from_secs_f64(period_s));
    let rule = Objective {
        name: format!("{}: budget burn over {period}", o.name),
        metric: "budget.burn".to_owned(),
        source: o.source,
        direction: Direction::Max,
        target: MISSED,
        warning: Some(FAST_BURN),
        critical: Some(CRITICAL_BURN),
        required: o.required,
        capacity: None,
        window: None,
        budget: None,
    };
    let doc = match value {
        Some(v) => json!({ "budget": {
            "burn": v,
            "count": j.samples.unwrap_or(0),
            "evidence": { "burn": interval },
        }}),
        None => serde_json::Value::Null,
    };
    let mut judged = rule.judge(&doc, &serde_json::Value::Null, fail_on);
    judged.metric = format!("{}.burn", o.metric);
    judged.budget = value.map(|b| BudgetView {
        objective: o.name.clone(),
        period_s,
        allowed_pct: allowed,
        failed_pct: j.value.map_or(0.0, failed),
        consumed_pct: b * measured_s / period_s * 100.0,
        exhausted_in_s: (b > 0.0).then(|| period_s / b),
    });
    judged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{Level, SloFile};

    fn objective(text: &str) -> Objective {
        SloFile::from_toml(&format!("name = \"b\"\n[[objective]]\n{text}"), "slo.toml")
            .map(|mut f| f.objectives.remove(0))
            .unwrap()
    }

    fn success(ok: u64, n: u64) -> serde_json::Value {
        json!({ "requests": {
            "count": n,
            "success_rate": ok as f64 / n as f64 * 100.0,
            "evidence": { "success_rate": crate::evidence::proportion(ok, n) },
        }})
    }

    fn burn_of(o: &Objective, doc: &serde_json::Value, measured_s: f64) -> Judged {
        let j = o.judge(doc, &serde_json::Value::Null, FailOn::Warning);
        judge(o, &j, (30.0 * 86400.0, measured_s), FailOn::Warning)
    }

    const SUCCESS: &str = "name = \"success\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 99\nbudget = \"30d\"\n";

    #[test]
    fn two_percent_failing_burns_a_one_percent_budget_twice_as_fast() {
        let o = objective(SUCCESS);
        // 2 % of 10,000 failed over an hour.
        let b = burn_of(&o, &success(9800, 10_000), 3600.0);
        assert!((b.value.unwrap() - 2.0).abs() < 1e-9, "{b:?}");
        let v = b.budget.clone().unwrap();
        assert_eq!(v.allowed_pct, 1.0);
        assert!((v.failed_pct - 2.0).abs() < 1e-9);
        // Gone in 15 days; the hour used 2/720 of it.
        assert!((v.exhausted_in_s.unwrap() - 15.0 * 86400.0).abs() < 1e-3);
        assert!((v.consumed_pct - 2.0 / 720.0 * 100.0).abs() < 1e-9);
        assert_eq!(b.metric, "requests.success_rate.burn");
        assert_eq!(b.name, "success: budget burn over 30days");
        // 2.0 exactly is not past the fast-burn line (> 2) but its
        // interval straddles it: not decided.
        assert_eq!(b.level, Level::Inconclusive, "{b:?}");
    }

    #[test]
    fn the_burn_is_decided_by_the_rates_interval() {
        let o = objective(SUCCESS);
        // 3 % of 10,000: burn 3, its interval [2.68, 3.35] past 2: warning.
        let b = burn_of(&o, &success(9700, 10_000), 600.0);
        assert_eq!(b.level, Level::Warning, "{b:?}");
        let i = b.interval.unwrap();
        assert!(i.lo.unwrap() > 2.0 && i.hi.unwrap() < 5.0, "{i:?}");
        // 3 of 100: the same burn, but the interval reaches below 2.
        let b = burn_of(&o, &success(97, 100), 600.0);
        assert_eq!(b.level, Level::Inconclusive, "{b:?}");
        // 0.5 %: within the budget, shown so.
        let b = burn_of(&o, &success(19_900, 20_000), 600.0);
        assert_eq!(b.level, Level::Ok, "{b:?}");
        // 10 %: critical.
        let b = burn_of(&o, &success(900, 1000), 600.0);
        assert_eq!(b.level, Level::Critical, "{b:?}");
        // Nothing failed: no end to the budget.
        let b = burn_of(&o, &success(1000, 1000), 600.0);
        assert_eq!(b.budget.unwrap().exhausted_in_s, None);
    }

    #[test]
    fn an_error_rate_keeps_its_budget_the_other_way_up() {
        let o = objective(
            "name = \"errors\"\nmetric = \"requests.error_rate\"\ndirection = \"max\"\ntarget = 0.5\nbudget = \"7d\"\n",
        );
        let doc = json!({ "requests": {
            "count": 10_000,
            "error_rate": 1.5,
            "evidence": { "error_rate": crate::evidence::proportion(150, 10_000) },
        }});
        let b = burn_of(&o, &doc, 60.0);
        assert!((b.value.unwrap() - 3.0).abs() < 1e-9, "{b:?}");
        assert_eq!(b.budget.unwrap().allowed_pct, 0.5);
    }

    #[test]
    fn a_budget_needs_a_rate_and_room_to_fail() {
        for (text, says) in [
            (
                "name = \"x\"\nmetric = \"latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 500\nbudget = \"30d\"\n",
                "a budget is kept on the client's share",
            ),
            (
                "name = \"x\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 100\nbudget = \"30d\"\n",
                "leaves no failure allowed",
            ),
        ] {
            let e = SloFile::from_toml(&format!("name = \"b\"\n[[objective]]\n{text}"), "slo.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(says) && e.contains("slo.toml"), "{e}");
        }
    }
}
