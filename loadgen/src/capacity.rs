//! `loadgen capacity SCENARIO`: the highest sustainable arrival rate at
//! which every objective that load moves holds, shown with evidence. The
//! target is warmed once, then each step is a full run (an open model at
//! the step's rate, with its own warm-up) that goes on until its deciding
//! percentiles are decided or its cap; the embedded reference server is
//! started once for the whole search. The search itself is
//! `slo::capacity`.

use crate::plan::Plan;
use crate::run;
use anyhow::{Context, bail};
use slo::capacity::{
    CapacityReport, Measured, Next, Outcome, ReportMeta, Role, Search, SearchConfig, StepPlan,
    WarmUp,
};
use slo::objective::Objective;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CapacityArgs {
    /// The shortest measured part of a step.
    pub step_duration: Duration,
    pub step_warmup: Duration,
    /// A step's cap on its first try (at least twice the time its
    /// percentiles' minimum of requests takes at its rate).
    pub step_max_duration: Duration,
    /// The target's warm-up before the idle step, at the start rate.
    pub warm: Duration,
    pub search: SearchConfig,
    pub expected_rps: Option<f64>,
    /// `--max-time`: the search ends, as interrupted, after this long.
    pub max_time: Option<Duration>,
}

/// What a step takes at most beyond its measured part and its warm-up:
/// the requests in flight drain (the request timeout, then a second),
/// and the run starts and writes its reports (a few seconds allowed).
fn step_overhead(plan: &Plan) -> Duration {
    plan.scenario.request.timeout + Duration::from_secs(1) + Duration::from_secs(3)
}

/// The longest this search can take, whatever the target answers (see
/// `slo::capacity::worst_case`): the steps at most and their seconds.
pub fn worst_case(plan: &Plan, args: &CapacityArgs) -> (usize, f64) {
    let deciding: Vec<Objective> = plan
        .slo
        .as_ref()
        .map(|(_, f)| {
            f.objectives
                .iter()
                .filter(|o| o.capacity_role() == slo::objective::CapacityRole::Decides)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    slo::capacity::worst_case(
        &args.search,
        &slo::capacity::StepBounds {
            warm_s: args.warm.as_secs_f64(),
            warmup_s: args.step_warmup.as_secs_f64(),
            duration_s: args.step_duration.as_secs_f64(),
            cap_s: args.step_max_duration.as_secs_f64(),
            min_requests: min_requests(&deciding).max(plan.scenario.min_requests),
            overhead_s: step_overhead(plan).as_secs_f64(),
        },
    )
}

/// What `capacity --dry-run` prints after the run plan: the search's
/// rates and the worst case of its wall time.
pub fn describe_search(plan: &Plan, args: &CapacityArgs) -> String {
    let c = &args.search;
    let (steps, seconds) = worst_case(plan, args);
    let bound = Duration::from_secs(seconds.ceil() as u64);
    format!(
        "capacity search: idle step at {} requests/s (down to {} if it is not carried), ramp x{} up to {}, bisection to {:.0} %, up to {} tries a rate\n\
         steps: {}s each at least ({}s warm-up), capped at {}s on a first try (or twice the time of the percentiles' requests), doubled on each try\n\
         worst case: {steps} steps, {} ({:.0} s) with the warm-up{}\n",
        c.start,
        c.min,
        c.factor,
        c.max,
        c.precision * 100.0,
        c.max_tries,
        args.step_duration.as_secs_f64(),
        args.step_warmup.as_secs_f64(),
        args.step_max_duration.as_secs_f64(),
        humantime::format_duration(bound),
        seconds,
        match args.max_time {
            Some(t) => format!(
                "; --max-time ends it after {}",
                humantime::format_duration(t)
            ),
            None => "; --max-time bounds it".to_owned(),
        }
    )
}

/// The fewest measured requests the deciding client-side percentiles
/// need (a p95: 100; see `slo::evidence::min_samples`).
pub fn min_requests(objectives: &[Objective]) -> u64 {
    objectives
        .iter()
        .filter_map(Objective::min_samples)
        .max()
        .unwrap_or(0)
}

/// The cap of a step's measured part: `--step-max-duration`, or twice the
/// time its minimum of requests takes at its rate if longer; doubled on
/// each try.
pub fn step_cap(args: &CapacityArgs, min_requests: u64, next: &Next) -> Duration {
    let for_samples = Duration::from_secs_f64(2.0 * min_requests as f64 / next.rate);
    args.step_max_duration.max(for_samples) * next.cap_factor()
}

/// The plan of one open-model run at `rate` against `url`.
fn open_run(base: &Plan, url: &str, rate: f64, out: PathBuf) -> Plan {
    let mut plan = base.clone();
    plan.target = Some(url.to_owned());
    plan.scenario.target = Some(url.to_owned());
    plan.scenario.load = slo::scenario::Load {
        // A search keeps the file's arrival process even on a closed model.
        arrival: base.scenario.load.arrival,
        burstiness: base.scenario.load.burstiness,
        shape: base.scenario.load.open_at(rate).shape,
    };
    plan.out = out;
    plan.quiet = true;
    // The search decides each step from its judged objectives, not from
    // the run's own verdict.
    plan.gate.accept_inconclusive = true;
    plan
}

pub async fn capacity(
    base: &Plan,
    args: &CapacityArgs,
    mut say: impl FnMut(&str),
) -> anyhow::Result<CapacityReport> {
    let Some((_, slo_file)) = &base.slo else {
        bail!(
            "capacity needs objectives to hold: give the scenario an `slo` file or pass --slo FILE"
        );
    };
    // One target for the whole search: the reference server is started
    // once, not per step.
    let (url, embedded) = crate::embedded::target(base.target.as_deref(), &base.scenario.server)?;
    let mut search = Search::new(
        args.search.clone(),
        slo_file,
        base.gate.fail_on,
        base.gate.allow_missing,
    );
    // --max-time: a step under way when it runs out is stopped as Ctrl-C
    // stops a run (asked again should a new step have begun meanwhile);
    // no step starts after it.
    let deadline = args.max_time.map(|t| {
        (
            tokio::time::Instant::now() + t,
            humantime::format_duration(t),
        )
    });
    let timer = deadline.clone().map(|(at, t)| tokio::spawn(stop_at(at, t)));
    let out_of_time = |search: &mut Search| match &deadline {
        Some((at, t)) if tokio::time::Instant::now() >= *at => {
            search.interrupted = true;
            search.stopped = Some(format!(
                "the search's --max-time ({t}) ran out after {} steps",
                search.steps.len()
            ));
            true
        }
        _ => false,
    };
    let warm = warm_up(base, args, &url, &mut search, &mut say).await?;
    while let Some(next) = search.next() {
        if out_of_time(&mut search) {
            break;
        }
        let n = search.steps.len() + 1;
        let deciding: Vec<Objective> = slo_file
            .objectives
            .iter()
            .filter(|o| search.deciding().any(|d| d.name == o.name))
            .cloned()
            .collect();
        let min = min_requests(&deciding).max(base.scenario.min_requests);
        let cap = step_cap(args, min, &next);
        let dir = format!(
            "{n:02}-{:.3}rps{}",
            next.rate,
            if next.attempt > 1 {
                format!("-try{}", next.attempt)
            } else {
                String::new()
            }
        );
        let mut plan = open_run(base, &url, next.rate, base.out.join("steps").join(dir));
        plan.scenario.duration = args.step_duration;
        plan.scenario.warmup = args.step_warmup;
        plan.scenario.min_requests = min;
        plan.scenario.until_conclusive = true;
        plan.scenario.max_duration = Some(cap.max(args.step_duration));
        plan.sizing = Some(deciding.clone());
        plan.stop_on_breach = true;
        create(&plan.out)?;
        let report = run::run(&plan).await?;
        if let Some(why) = &report.interrupted {
            search.interrupted = true;
            search.stopped = Some(format!("step {n} was interrupted: {why}"));
            break;
        }
        let measured = measured(&report, &next, (min, cap), &deciding, base.gate.fail_on);
        let step = search.record(next, measured);
        say(&describe(n, step));
        let decided_idle = step.outcome == Outcome::Idle;
        for o in search
            .objectives
            .iter()
            .filter(|o| decided_idle && matches!(o.role, Role::FailsAtIdle | Role::UndecidedAtIdle))
        {
            say(&format!("  {}: {}", o.name, o.why.as_deref().unwrap_or("")));
        }
    }
    if let Some(t) = timer {
        t.abort();
    }
    drop(embedded);
    let report = CapacityReport::new(
        &search,
        ReportMeta {
            scenario: base.scenario.name.clone(),
            target: url,
            slo_file: base.slo.as_ref().map(|(p, _)| p.display().to_string()),
            step: StepPlan {
                duration_s: args.step_duration.as_secs_f64(),
                warmup_s: args.step_warmup.as_secs_f64(),
                cap_s: args.step_max_duration.as_secs_f64(),
            },
            warm,
            expected_rps: args.expected_rps,
        },
    );
    write(&base.out, &report)?;
    Ok(report)
}

/// Asks the run under way to stop once `at` is reached: the search's
/// --max-time (asked again should a new step have begun meanwhile).
async fn stop_at(at: tokio::time::Instant, t: humantime::FormattedDuration) {
    tokio::time::sleep_until(at).await;
    let why = format!("the search's --max-time ({t}) ran out");
    loop {
        if crate::stop::reason().is_none() {
            crate::stop::request(&why, false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `--warm`: a run at the start rate before the first step, not judged;
/// a target that answers nothing in it stops the search.
async fn warm_up(
    base: &Plan,
    args: &CapacityArgs,
    url: &str,
    search: &mut Search,
    say: &mut impl FnMut(&str),
) -> anyhow::Result<Option<WarmUp>> {
    if args.warm.is_zero() {
        return Ok(None);
    }
    let mut plan = open_run(base, url, args.search.start, base.out.join("warm"));
    plan.scenario.duration = args.warm;
    plan.scenario.warmup = Duration::ZERO;
    plan.scenario.min_requests = 0;
    plan.scenario.until_conclusive = false;
    plan.scenario.max_duration = None;
    create(&plan.out)?;
    let report = run::run(&plan).await?;
    say(&format!(
        "warm-up: {} requests in {:.0} s at {:.2} requests/s (not judged)",
        report.figures.requests.total, report.measured_s, args.search.start
    ));
    if let Some(why) = &report.interrupted {
        search.interrupted = true;
        search.stopped = Some(format!("the warm-up was interrupted: {why}"));
    } else if report.figures.requests.total > 0
        && let Some(why) = slo::report::nothing_succeeded(&report.figures)
    {
        // No step can hold against a target that answers nothing.
        search.stopped = Some(format!(
            "in the warm-up at {:.2} requests/s {why}: the target fails without load; capacity is undefined",
            args.search.start
        ));
    }
    Ok(Some(WarmUp {
        rate: args.search.start,
        duration_s: report.measured_s,
        requests: report.figures.requests.total,
    }))
}

/// What a step's run measured, for the search.
fn measured(
    report: &slo::report::Report,
    next: &Next,
    (min, cap): (u64, Duration),
    deciding: &[Objective],
    fail_on: slo::objective::FailOn,
) -> Measured {
    let f = &report.figures;
    let measured_s = report.measured_s;
    let per_s = |count: u64| {
        if measured_s > 0.0 {
            count as f64 / measured_s
        } else {
            0.0
        }
    };
    let server = &report.server;
    let other_failures: Vec<String> = slo::report::nothing_succeeded(f).into_iter().collect();
    let target_failing = slo::report::shown_failing(f, deciding, fail_on);
    Measured {
        offered_rps: next.rate,
        sent_rps: per_s(f.requests.total - f.requests.dropped),
        achieved_rps: per_s(f.requests.ok),
        measured_s,
        requests: f.requests.total,
        min_requests: min,
        cap_s: cap.as_secs_f64(),
        dropped: f.requests.dropped,
        late: f.requests.late,
        success_rate: f.requests.success_rate,
        client_saturated: !report.self_check.trustworthy,
        other_failures,
        target_failing,
        server_max_active_streams: server.max_active_streams,
        server_first_token_p95_ms: server
            .latency_after
            .as_ref()
            .and_then(|l| l.first_token.as_ref())
            .and_then(|s| s.p95),
        first_token_p50_ms: f.scheduled_latency_ms.first_token.p50,
        first_token_p95_ms: f.scheduled_latency_ms.first_token.p95,
        first_token_p99_ms: f.scheduled_latency_ms.first_token.p99,
        complete_p95_ms: f.scheduled_latency_ms.complete.p95,
        objectives: report.slo.clone(),
    }
}

/// One line per step on the terminal.
fn describe(n: usize, s: &slo::capacity::Step) -> String {
    let m = &s.measured;
    let what = match s.outcome {
        Outcome::Idle => "idle".to_owned(),
        Outcome::Held => "held".to_owned(),
        Outcome::ClientSaturated => "client saturated".to_owned(),
        Outcome::Repeated if m.client_saturated => {
            "not trusted by the load generator's self-check: repeating".to_owned()
        }
        Outcome::Repeated => format!(
            "inconclusive ({}): repeating longer",
            s.undecided.join(", ")
        ),
        Outcome::Inconclusive => format!(
            "inconclusive after {} tries ({}): not held",
            s.attempt,
            s.undecided.join(", ")
        ),
        Outcome::Breached | Outcome::NotIdle => format!(
            "{} ({})",
            if s.outcome == Outcome::NotIdle {
                "not carried, not idle"
            } else {
                "breached"
            },
            s.breached
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "step {n}: {:.2} requests/s offered, {:.2} achieved, {} requests in {:.0} s (at least {}), p95 first token {}: {what}",
        m.offered_rps,
        m.achieved_rps,
        m.requests,
        m.measured_s,
        m.min_requests,
        m.first_token_p95_ms
            .map_or("not measured".to_owned(), |v| format!("{v:.0} ms")),
    )
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CapacityArgs {
        CapacityArgs {
            step_duration: Duration::from_secs(20),
            step_warmup: Duration::from_secs(5),
            step_max_duration: Duration::from_secs(60),
            warm: Duration::from_secs(30),
            search: SearchConfig {
                start: 1.0,
                max: 100.0,
                min: 0.1,
                factor: 2.0,
                precision: 0.1,
                max_steps: 40,
                max_tries: 3,
            },
            expected_rps: None,
            max_time: None,
        }
    }

    #[test]
    fn a_step_needs_its_percentiles_minimum_and_time_to_collect_it() {
        let kpi = crate::files::read_slo_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/slo/kpi.toml"),
        )
        .unwrap();
        // p95s: 100 requests; a p99 among them: 500.
        assert_eq!(min_requests(&kpi.objectives), 100);
        let mut with_p99 = kpi.objectives.clone();
        with_p99[0].metric = "scheduled_latency_ms.first_token.p99".into();
        assert_eq!(min_requests(&with_p99), 500);
        // Server-side figures and rates need none.
        assert_eq!(min_requests(&kpi.objectives[3..4]), 0);
        let next = |rate: f64, attempt: u32| Next {
            rate,
            attempt,
            idle: false,
        };
        // 100 requests at 1/s: 200 s, over the 60 s cap; at 10/s, 60 s.
        assert_eq!(
            step_cap(&args(), 100, &next(1.0, 1)),
            Duration::from_secs(200)
        );
        assert_eq!(
            step_cap(&args(), 100, &next(10.0, 1)),
            Duration::from_secs(60)
        );
        // Doubled on each repeat.
        assert_eq!(
            step_cap(&args(), 100, &next(10.0, 3)),
            Duration::from_secs(240)
        );
    }
}
