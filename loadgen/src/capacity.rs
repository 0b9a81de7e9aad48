//! `loadgen capacity SCENARIO`: the highest sustainable arrival rate at
//! which every objective of the SLO file holds. Each step is a full run
//! (an open model at the step's rate, with its own warm-up) against one
//! target (the embedded reference server is started once for the whole
//! search); the search itself is `slo::capacity`.

use crate::plan::Plan;
use crate::run::{self, Embedded};
use anyhow::{Context, bail};
use slo::capacity::{Breach, CapacityReport, Search, SearchConfig, Step};
use slo::objective::Level;
use slo::scenario::{Load, Model};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CapacityArgs {
    pub step_duration: Duration,
    pub step_warmup: Duration,
    pub search: SearchConfig,
    pub expected_rps: Option<f64>,
}

pub async fn capacity(
    base: &Plan,
    args: &CapacityArgs,
    mut say: impl FnMut(&str),
) -> anyhow::Result<CapacityReport> {
    if base.slo.is_none() {
        bail!(
            "capacity needs objectives to hold: give the scenario an `slo` file or pass --slo FILE"
        );
    }
    let embedded = match &base.target {
        Some(_) => None,
        None => Some(Embedded::start(&base.scenario.server.args)?),
    };
    let url = base
        .target
        .clone()
        .unwrap_or_else(|| embedded.as_ref().map(|e| e.url.clone()).unwrap_or_default());
    let mut search = Search::new(args.search.clone());
    while let Some(rate) = search.next_rate() {
        let n = search.steps.len() + 1;
        let mut plan = base.clone();
        plan.target = Some(url.clone());
        plan.scenario.target = Some(url.clone());
        plan.scenario.duration = args.step_duration;
        plan.scenario.warmup = args.step_warmup;
        plan.scenario.load = Load {
            model: Model::Open,
            rate: Some(rate),
            arrival: base.scenario.load.arrival,
            max_users: base.scenario.load.max_users,
            max_lateness: base.scenario.load.max_lateness,
            users: None,
            ramp_up: None,
            test_plan: None,
        };
        plan.out = base.out.join("steps").join(format!("{n:02}-{rate:.3}rps"));
        std::fs::create_dir_all(&plan.out)
            .with_context(|| format!("cannot create {}", plan.out.display()))?;
        plan.quiet = true;
        // Inconclusive percentiles are judged by their point estimate below.
        plan.accept_inconclusive = true;
        let report = run::run(&plan).await?;
        if let Some(why) = &report.interrupted {
            search.stopped = Some(format!("step {n} was interrupted: {why}"));
            break;
        }
        let f = &report.figures;
        // Until the search repeats or lengthens inconclusive steps (issue
        // 17), a step judges a percentile by its point estimate.
        let point = |j: &slo::objective::Judged| match j.level {
            Level::Inconclusive => j.point_level,
            level => level,
        };
        let mut breached: Vec<(Level, Breach)> = report
            .slo
            .iter()
            .map(|j| (point(j), j))
            .filter(|(level, j)| step_fails(*level, j, &plan))
            .map(|(level, j)| {
                (
                    level,
                    Breach {
                        name: j.name.clone(),
                        level: slo::render::level_word(level).to_owned(),
                        value: j.value,
                        threshold: j.threshold,
                    },
                )
            })
            .collect();
        // Arrivals the step could not send: the offered rate was not carried.
        let dropped = f.requests.dropped;
        if dropped > 0 {
            breached.push((
                Level::Critical,
                Breach {
                    name: "arrivals dropped".into(),
                    level: "critical".into(),
                    value: Some(dropped as f64),
                    threshold: 0.0,
                },
            ));
        }
        // Whatever else failed the run's verdict (all requests failed, an
        // incident severity, a required objective without data) fails the
        // step too: a step holds only when its whole verdict passes.
        if report.verdict == slo::report::Verdict::Fail && breached.is_empty() {
            breached.push((
                Level::Critical,
                Breach {
                    name: report
                        .verdict_reasons
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "the run's verdict".into()),
                    level: "fail".into(),
                    value: None,
                    threshold: 0.0,
                },
            ));
        }
        breached.sort_by_key(|b| std::cmp::Reverse(b.0));
        let step = Step {
            offered_rps: rate,
            achieved_rps: if report.measured_s > 0.0 {
                (f.requests.total - f.requests.dropped) as f64 / report.measured_s
            } else {
                0.0
            },
            // A failed verdict always left a breach above.
            passed: breached.is_empty(),
            critical: report.slo.iter().any(|j| j.level == Level::Critical),
            client_saturated: report.self_check["trustworthy"] == false,
            success_rate: f.requests.success_rate,
            first_token_p50_ms: f.scheduled_latency_ms.first_token.p50,
            first_token_p95_ms: f.scheduled_latency_ms.first_token.p95,
            first_token_p99_ms: f.scheduled_latency_ms.first_token.p99,
            complete_p95_ms: f.scheduled_latency_ms.complete.p95,
            held: report
                .slo
                .iter()
                .filter(|j| !step_fails(point(j), j, &plan))
                .map(|j| j.name.clone())
                .collect(),
            breached: breached.into_iter().map(|(_, b)| b).collect(),
        };
        say(&format!(
            "step {n}: {rate:.2} requests/s offered, {:.2} achieved, p95 first token {}: {}",
            step.achieved_rps,
            step.first_token_p95_ms
                .map_or("not measured".to_owned(), |v| format!("{v:.0} ms")),
            if step.client_saturated {
                "client saturated".to_owned()
            } else if step.passed {
                "held".to_owned()
            } else {
                format!(
                    "failed ({})",
                    step.breached
                        .iter()
                        .map(|b| b.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
        search.record(step);
    }
    drop(embedded);
    let report = CapacityReport::new(
        &search,
        &base.scenario.name,
        &url,
        base.slo.as_ref().map(|(p, _)| p.display().to_string()),
        args.expected_rps,
    );
    write(&base.out, &report)?;
    Ok(report)
}

/// Whether an objective at `level` (its point level when inconclusive)
/// fails a step.
fn step_fails(level: Level, j: &slo::objective::Judged, plan: &Plan) -> bool {
    match level {
        Level::NoData => j.fails(&plan.gate()),
        Level::Inconclusive => false,
        level => plan.fail_on.fails(level),
    }
}

pub fn write(out: &Path, r: &CapacityReport) -> anyhow::Result<()> {
    for (name, text) in [
        (
            "capacity.json",
            serde_json::to_string_pretty(r).expect("the report serializes"),
        ),
        ("capacity.md", slo::render::capacity::markdown(r)),
        ("capacity.html", slo::render::capacity::html(r)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
