//! Capacity search: the highest arrival rate at which every objective that
//! load can move holds, each step decided on evidence. Pure: the caller
//! runs each step ([`Search::next`]) and hands back what it measured
//! ([`Search::record`]).
//!
//! 1. **Idle.** The first step, at the start rate, establishes which
//!    objectives fail without load. Those are set aside ("fails at idle":
//!    capacity is undefined for them) instead of being turned into a tiny
//!    capacity. If the start rate is not carried (drops, achieved short of
//!    offered), it is not idle: the idle step is tried again lower.
//! 2. **Ramp, then bisect**, geometrically from the idle rate until a step
//!    fails, then between the last held and the first failing rate until
//!    they are within the precision.
//! 3. **Evidence.** A step holds only when every deciding objective is
//!    shown to hold (a percentile's whole 95 % interval on the good side),
//!    and fails only on a shown breach, a dropped arrival, an achieved rate
//!    short of the offered one beyond Poisson noise, or a run in which
//!    nothing succeeded. Anything else is inconclusive: the step is run
//!    again with twice the time cap, up to `max_tries`; still inconclusive,
//!    it counts as not held (the capacity is the highest rate *shown* to
//!    hold).
//!
//! Objectives about the workload mix (cache hit rates) decide nothing
//! unless the SLO file says so ([`crate::objective::CapacityRole`]).

use crate::evidence::{Interval, poisson_cdf};
use crate::objective::{CapacityRole, FailOn, Gate, Judged, Level, SloFile};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchConfig {
    /// The first rate tried, requests/s: the idle step. It must be well
    /// below the capacity (a third of it or less).
    pub start: f64,
    /// Never offer more than this.
    pub max: f64,
    /// Never offer less than this (when the start rate is not carried).
    pub min: f64,
    /// Ramp factor between steps (e.g. 2).
    pub factor: f64,
    /// Bisection stops when (first failing - last held) / last held is at
    /// most this (e.g. 0.1).
    pub precision: f64,
    /// A safety bound on the number of steps.
    pub max_steps: usize,
    /// How many times one rate is run while its deciding percentiles stay
    /// inconclusive, each time with twice the time cap.
    pub max_tries: u32,
}

/// What an objective does in the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A shown breach fails a step.
    Decides,
    /// Reported per step; decides nothing (the workload mix, or the SLO
    /// file said `capacity = "reports"`).
    Reports,
    /// Failed at the idle step: load cannot be what breaks it, so capacity
    /// is undefined for it.
    FailsAtIdle,
    /// Still inconclusive at the idle step after every try: it cannot be
    /// shown to hold even without load.
    UndecidedAtIdle,
}

/// An objective of the SLO file and its role in the search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObjectiveRole {
    pub name: String,
    pub metric: String,
    pub role: Role,
    /// For the idle roles: what the idle step measured.
    pub why: Option<String>,
}

/// What the caller measured in one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Measured {
    /// The arrival rate scheduled, requests/s.
    pub offered_rps: f64,
    /// Requests sent per second of the measured part.
    pub sent_rps: f64,
    /// Successful responses per second of the measured part.
    pub achieved_rps: f64,
    pub measured_s: f64,
    /// Measured requests, dropped arrivals included.
    pub requests: u64,
    /// The fewest measured requests the step was run for: the minimum of
    /// its deciding percentiles.
    pub min_requests: u64,
    /// The time cap of the step's measured part, s.
    pub cap_s: f64,
    /// Arrivals not sent within `max_lateness`.
    pub dropped: u64,
    /// Requests sent more than 10 ms after their schedule.
    pub late: u64,
    pub success_rate: f64,
    /// The load generator itself was the bottleneck (its numbers do not
    /// judge the server).
    pub client_saturated: bool,
    /// Why the run failed besides its objectives (e.g. nothing succeeded).
    pub other_failures: Vec<String>,
    /// Why no rate can hold against this target as it answered: nothing
    /// succeeded, or a success-rate objective shown past its line by its
    /// interval ([`crate::report::shown_failing`]). The step fails at
    /// once and is never repeated; at the start rate it ends the search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_failing: Option<String>,
    /// The most streams the server reported active at once, when it
    /// exposes them.
    pub server_max_active_streams: Option<u64>,
    /// The server's own first-token p95 (its monitoring endpoint), ms.
    pub server_first_token_p95_ms: Option<f64>,
    pub first_token_p50_ms: Option<f64>,
    pub first_token_p95_ms: Option<f64>,
    pub first_token_p99_ms: Option<f64>,
    pub complete_p95_ms: Option<f64>,
    /// Every objective of the SLO file, judged on this step.
    pub objectives: Vec<Judged>,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The idle step: what failed in it is set aside (see [`Role`]).
    Idle,
    /// Every deciding objective was shown to hold.
    Held,
    /// A deciding objective was shown breached, or the load was not carried.
    Breached,
    /// Still inconclusive after every try: counted as not held.
    Inconclusive,
    /// Inconclusive, or the load generator's self-check did not trust the
    /// step: the same rate is run again with twice the time cap.
    Repeated,
    /// The start rate was not carried, so it is not idle: tried lower.
    NotIdle,
    /// The load generator's self-check did not trust the step on every
    /// try: it saturated, and the search stops.
    ClientSaturated,
}

/// One step of the search: what was measured and what it decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Step {
    #[serde(flatten)]
    pub measured: Measured,
    /// The idle step (or a try at it).
    pub idle: bool,
    /// 1 for the first run at this rate, 2 for its repeat, ...
    pub attempt: u32,
    pub outcome: Outcome,
    /// What was shown to fail, worst first.
    pub breached: Vec<Breach>,
    /// Deciding objectives whose interval straddled their line.
    pub undecided: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Breach {
    pub name: String,
    pub level: String,
    pub value: Option<f64>,
    pub threshold: f64,
    /// A percentile's 95 % interval.
    #[serde(default)]
    pub interval: Option<Interval>,
}

/// The level of a breach that is no objective's: why the run failed
/// besides them (e.g. nothing succeeded).
pub const FAILED: &str = "fail";

/// The next step to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Next {
    pub rate: f64,
    pub attempt: u32,
    pub idle: bool,
}

impl Next {
    /// The factor on the step's time cap: doubled with each try.
    pub fn cap_factor(&self) -> u32 {
        1 << self.attempt.saturating_sub(1).min(8)
    }
}

/// What bounds one step's wall time, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepBounds {
    /// The target's warm-up before the search.
    pub warm_s: f64,
    /// Each step's own warm-up.
    pub warmup_s: f64,
    /// The shortest measured part.
    pub duration_s: f64,
    /// The cap of the measured part on a first try (`--step-max-duration`).
    pub cap_s: f64,
    /// The fewest requests the deciding percentiles need: a step's cap is
    /// at least twice the time they take at its rate.
    pub min_requests: u64,
    /// What a step takes beyond its measured part: the requests in flight
    /// drain (the request timeout and a second), the run starts and writes
    /// its reports.
    pub overhead_s: f64,
}

/// The longest a search can take: the steps it can run at most and
/// their wall time, in seconds, whatever the target answers. Every rate
/// the search can try is bounded: the idle tries from the start rate
/// down to the minimum, the ramp up to the maximum, the bisection down
/// to the precision; each rate up to `max_tries` times with its cap
/// doubled each time; no more than `max_steps` steps in all.
pub fn worst_case(cfg: &SearchConfig, b: &StepBounds) -> (usize, f64) {
    let f = cfg.factor;
    let count = |ratio: f64| (ratio.ln() / f.ln() - 1e-9).ceil().max(0.0) as usize;
    // Rates: idle tries at start / f^k >= min, ramp start * f^k <= max
    // (the last one clamped), bisections ((f - 1) halved to the precision).
    let mut rates: Vec<f64> = (0..=count(cfg.start / cfg.min))
        .map(|k| cfg.start / f.powi(k as i32))
        .filter(|r| *r >= cfg.min * (1.0 - 1e-9))
        .collect();
    rates.extend(
        (1..=count(cfg.max / cfg.start)).map(|k| (cfg.start * f.powi(k as i32)).min(cfg.max)),
    );
    let bisections = (((f - 1.0) / cfg.precision).log2().ceil().max(0.0)) as usize;
    // A bisected rate lies above the idle rate: its cap is at most the
    // lowest rate's.
    let lowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    rates.extend(std::iter::repeat_n(lowest, bisections));
    let tries = cfg.max_tries.max(1);
    let step = |rate: f64, attempt: u32| {
        let cap = b.cap_s.max(2.0 * b.min_requests as f64 / rate)
            * f64::from(1u32 << (attempt - 1).min(8));
        b.warmup_s + cap.max(b.duration_s) + b.overhead_s
    };
    let mut steps: Vec<f64> = rates
        .iter()
        .flat_map(|&r| (1..=tries).map(move |a| step(r, a)))
        .collect();
    // The longest ones first, as many as the search may run.
    steps.sort_by(|a, b| b.total_cmp(a));
    steps.truncate(cfg.max_steps);
    (steps.len(), b.warm_s + steps.iter().sum::<f64>())
}

#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    pub cfg: SearchConfig,
    pub fail_on: FailOn,
    pub allow_missing: bool,
    pub objectives: Vec<ObjectiveRole>,
    pub steps: Vec<Step>,
    /// The rate of the idle step, once established.
    pub idle_rps: Option<f64>,
    pub last_pass: Option<f64>,
    pub first_fail: Option<f64>,
    /// Why the search stopped before reaching its precision, if it did.
    pub stopped: Option<String>,
    /// The search was interrupted (by the user or a broken step).
    pub interrupted: bool,
    idle_try: f64,
    repeat: Option<(f64, u32)>,
}

/// The drop in achieved rate below which a step is not carrying its load,
/// when Poisson noise cannot explain it (see [`carried`]).
pub const ACHIEVED_FLOOR: f64 = 0.9;

/// Whether `achieved` of `offered` requests/s over `seconds` is the load
/// carried: no more than 10 % short, or short by no more than Poisson
/// noise explains (P(count this low) >= 2.5 %).
pub fn carried(offered: f64, achieved: f64, seconds: f64) -> bool {
    let expected = offered * seconds;
    let got = achieved * seconds;
    got >= ACHIEVED_FLOOR * expected || poisson_cdf(got.round() as u64, expected) >= 0.025
}

impl Search {
    pub fn new(cfg: SearchConfig, slo: &SloFile, fail_on: FailOn, allow_missing: bool) -> Self {
        let objectives = slo
            .objectives
            .iter()
            .map(|o| ObjectiveRole {
                name: o.name.clone(),
                metric: o.metric.clone(),
                role: match o.capacity_role() {
                    CapacityRole::Decides => Role::Decides,
                    CapacityRole::Reports => Role::Reports,
                },
                why: None,
            })
            .collect();
        Self {
            idle_try: cfg.start,
            cfg,
            fail_on,
            allow_missing,
            objectives,
            steps: Vec::new(),
            idle_rps: None,
            last_pass: None,
            first_fail: None,
            stopped: None,
            interrupted: false,
            repeat: None,
        }
    }

    /// The objectives that decide steps now (the idle step set aside those
    /// failing without load).
    pub fn deciding(&self) -> impl Iterator<Item = &ObjectiveRole> {
        self.objectives.iter().filter(|o| o.role == Role::Decides)
    }

    fn role(&self, name: &str) -> Role {
        self.objectives
            .iter()
            .find(|o| o.name == name)
            .map_or(Role::Reports, |o| o.role)
    }

    /// The next step, or `None` when the search is over.
    pub fn next(&self) -> Option<Next> {
        if self.stopped.is_some() || self.steps.len() >= self.cfg.max_steps {
            return None;
        }
        let idle = self.idle_rps.is_none();
        if let Some((rate, attempt)) = self.repeat {
            return Some(Next {
                rate,
                attempt,
                idle,
            });
        }
        let rate = if idle {
            self.idle_try
        } else {
            match (self.last_pass, self.first_fail) {
                (Some(p), None) if p < self.cfg.max => (p * self.cfg.factor).min(self.cfg.max),
                (Some(p), Some(f)) if (f - p) / p > self.cfg.precision => (p + f) / 2.0,
                _ => return None,
            }
        };
        Some(Next {
            rate,
            attempt: 1,
            idle,
        })
    }

    /// What the deciding objectives and the load say of a step: the
    /// shown breaches (objectives first, then the load's) and the
    /// undecided objectives.
    fn judge(&self, m: &Measured) -> (Vec<Breach>, Vec<Breach>, Vec<String>) {
        let gate = Gate {
            fail_on: self.fail_on,
            allow_missing: self.allow_missing,
            accept_inconclusive: false,
        };
        let mut objectives = Vec::new();
        let mut undecided = Vec::new();
        for j in m
            .objectives
            .iter()
            .filter(|j| self.role(&j.name) == Role::Decides)
        {
            match j.level {
                Level::Inconclusive => undecided.push(j.name.clone()),
                _ if j.fails(&gate) => objectives.push((
                    j.level,
                    Breach {
                        name: j.name.clone(),
                        level: if j.level == Level::NoData {
                            "no data".into()
                        } else {
                            j.level.word().to_owned()
                        },
                        value: j.value,
                        threshold: j.threshold,
                        interval: j.interval.clone(),
                    },
                )),
                _ => {}
            }
        }
        objectives.sort_by_key(|(level, _)| std::cmp::Reverse(*level));
        let mut load = Vec::new();
        let plain = |name: String, value: f64, threshold: f64| Breach {
            name,
            level: "critical".into(),
            value: Some(value),
            threshold,
            interval: None,
        };
        if m.dropped > 0 {
            load.push(plain("arrivals dropped".into(), m.dropped as f64, 0.0));
        }
        if m.measured_s > 0.0 && !carried(m.offered_rps, m.achieved_rps, m.measured_s) {
            load.push(plain(
                "achieved rate".into(),
                m.achieved_rps,
                ACHIEVED_FLOOR * m.offered_rps,
            ));
        }
        for why in &m.other_failures {
            load.push(Breach {
                name: why.clone(),
                level: FAILED.into(),
                value: None,
                threshold: 0.0,
                interval: None,
            });
        }
        (
            objectives.into_iter().map(|(_, b)| b).collect(),
            load,
            undecided,
        )
    }

    fn failed_at(&mut self, rate: f64) {
        self.first_fail = Some(self.first_fail.map_or(rate, |f| f.min(rate)));
    }

    /// Records the step `next` as measured; returns it as decided.
    pub fn record(&mut self, next: Next, m: Measured) -> &Step {
        self.repeat = None;
        let rate = next.rate;
        let (objectives, load, undecided) = self.judge(&m);
        let outcome = if let Some(why) = &m.target_failing {
            // More time or a lower rate cannot change what the target
            // answers: the step fails at once; at the start rate, so does
            // the search.
            self.failed_at(rate);
            if next.idle {
                self.stopped = Some(format!(
                    "at the start rate ({rate:.2} requests/s) {why}: the target fails without load; capacity is undefined"
                ));
            }
            Outcome::Breached
        } else if m.client_saturated && next.attempt < self.cfg.max_tries {
            // One stall of the client's own scheduler makes a step
            // untrustworthy; a client that saturates does so again.
            self.repeat = Some((rate, next.attempt + 1));
            Outcome::Repeated
        } else if m.client_saturated {
            self.stopped = Some(format!(
                "the load generator saturated at {rate:.2} requests/s ({} tries): the server's capacity is at least the last held rate, not measured beyond",
                next.attempt
            ));
            Outcome::ClientSaturated
        } else if next.idle {
            self.record_idle(next, &m, &objectives, &load, &undecided)
        } else if !objectives.is_empty() || !load.is_empty() {
            self.failed_at(rate);
            Outcome::Breached
        } else if !undecided.is_empty() {
            if next.attempt < self.cfg.max_tries {
                self.repeat = Some((rate, next.attempt + 1));
                Outcome::Repeated
            } else {
                self.failed_at(rate);
                Outcome::Inconclusive
            }
        } else {
            self.last_pass = Some(self.last_pass.map_or(rate, |p| p.max(rate)));
            Outcome::Held
        };
        let mut breached = objectives;
        breached.extend(load);
        if m.target_failing.is_some() {
            // What the target answered explains the step before any
            // objective it left without data.
            breached.sort_by_key(|b| b.level != FAILED);
        }
        self.steps.push(Step {
            measured: m,
            idle: next.idle,
            attempt: next.attempt,
            outcome,
            breached,
            undecided,
        });
        self.steps.last().expect("just pushed")
    }

    fn record_idle(
        &mut self,
        next: Next,
        m: &Measured,
        objectives: &[Breach],
        load: &[Breach],
        undecided: &[String],
    ) -> Outcome {
        let rate = next.rate;
        if !load.is_empty() {
            self.failed_at(rate);
            let lower = rate / self.cfg.factor;
            if lower >= self.cfg.min {
                self.idle_try = lower;
            } else {
                self.stopped = Some(format!(
                    "not even {rate:.2} requests/s (at --min-rps) was carried: {}; capacity is undefined",
                    load.iter()
                        .map(|b| b.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            return Outcome::NotIdle;
        }
        if !undecided.is_empty() && next.attempt < self.cfg.max_tries {
            self.repeat = Some((rate, next.attempt + 1));
            return Outcome::Repeated;
        }
        let described = |name: &str| {
            m.objectives
                .iter()
                .find(|j| j.name == name)
                .map(describe)
                .unwrap_or_default()
        };
        for o in self.objectives.iter_mut() {
            if objectives.iter().any(|b| b.name == o.name) {
                o.role = Role::FailsAtIdle;
                o.why = Some(format!(
                    "fails at idle ({rate:.2} requests/s): {}; capacity is undefined for this objective",
                    described(&o.name)
                ));
            } else if undecided.contains(&o.name) {
                o.role = Role::UndecidedAtIdle;
                o.why = Some(format!(
                    "inconclusive at idle ({rate:.2} requests/s) after {} tries: {}; capacity is undefined for this objective",
                    next.attempt,
                    described(&o.name)
                ));
            }
        }
        self.idle_rps = Some(rate);
        if self.deciding().next().is_none() {
            self.stopped = Some(if self.objectives.is_empty() {
                "the SLO file has no objective".into()
            } else {
                "no objective that decides capacity holds at idle: capacity is undefined".into()
            });
        } else {
            self.last_pass = Some(self.last_pass.map_or(rate, |p| p.max(rate)));
        }
        Outcome::Idle
    }

    /// The objectives set aside at the idle step.
    pub fn undefined(&self) -> Vec<ObjectiveRole> {
        self.objectives
            .iter()
            .filter(|o| matches!(o.role, Role::FailsAtIdle | Role::UndecidedAtIdle))
            .cloned()
            .collect()
    }

    /// What failed first: the worst breach (or the first undecided
    /// objective) at the lowest rate that did not hold.
    pub fn limiting_objective(&self) -> Option<Breach> {
        let s = self
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.outcome,
                    Outcome::Breached | Outcome::Inconclusive | Outcome::NotIdle
                )
            })
            .min_by(|a, b| a.measured.offered_rps.total_cmp(&b.measured.offered_rps))?;
        s.breached.first().cloned().or_else(|| {
            let name = s.undecided.first()?;
            let j = s.measured.objectives.iter().find(|j| &j.name == name)?;
            Some(Breach {
                name: name.clone(),
                level: "inconclusive".into(),
                value: j.value,
                threshold: j.threshold,
                interval: j.interval.clone(),
            })
        })
    }

    /// The knee: the highest rate measured before a deciding latency
    /// percentile was shown to rise by half over its idle value (its
    /// interval's lower bound above 1.5 times the idle interval's upper
    /// bound), or before the load stopped being carried. `None` when no
    /// step showed such a rise.
    pub fn knee(&self) -> Option<Knee> {
        let idle = self.steps.iter().rfind(|s| s.outcome == Outcome::Idle)?;
        let base = |name: &str| {
            idle.measured
                .objectives
                .iter()
                .find(|j| j.name == name)
                .and_then(|j| j.interval.as_ref()?.hi)
        };
        let mut steps: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| {
                !matches!(
                    s.outcome,
                    Outcome::ClientSaturated | Outcome::NotIdle | Outcome::Repeated
                ) && s.measured.offered_rps >= idle.measured.offered_rps
            })
            .collect();
        steps.sort_by(|a, b| a.measured.offered_rps.total_cmp(&b.measured.offered_rps));
        let bend = |s: &Step| -> Option<String> {
            if s.breached
                .iter()
                .any(|b| b.name == "arrivals dropped" || b.name == "achieved rate")
            {
                return Some("the offered load was not carried".into());
            }
            s.measured
                .objectives
                .iter()
                .filter(|j| self.role(&j.name) == Role::Decides)
                .find_map(|j| {
                    let lo = j.interval.as_ref()?.lo?;
                    let base = base(&j.name)?;
                    (lo > 1.5 * base).then(|| {
                        format!(
                            "{} rose to {lo:.0}–{} (idle at most {base:.0})",
                            j.name,
                            j.interval
                                .as_ref()
                                .and_then(|i| i.hi)
                                .map_or("unbounded".to_owned(), |h| format!("{h:.0}"))
                        )
                    })
                })
        };
        let (at, why) = steps
            .iter()
            .enumerate()
            .find_map(|(i, s)| Some((i, bend(s)?)))?;
        let before = steps[..at].last()?;
        Some(Knee {
            value: before.measured.offered_rps,
            unit: "requests/s".into(),
            bent_at: steps[at].measured.offered_rps,
            why,
        })
    }
}

/// A judged objective in words: its value, interval and threshold.
fn describe(j: &Judged) -> String {
    let value = j
        .value
        .map_or("not measured".to_owned(), crate::format::num);
    let interval = j.interval.as_ref().map_or(String::new(), |i| {
        format!(" 95% {}", crate::format::interval(i))
    });
    format!(
        "{} = {value}{interval}, threshold {}",
        j.metric, j.threshold
    )
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Knee {
    pub value: f64,
    pub unit: String,
    /// The rate at which the rise was shown.
    pub bent_at: f64,
    /// What rose.
    pub why: String,
}

/// How the search ended, for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A capacity was found (and it meets the expected rate, if given).
    Found,
    /// The capacity is below the expected rate.
    ShortOfExpected,
    /// An objective fails (or cannot be decided) at idle, or no rate held:
    /// capacity is undefined.
    Undefined,
    /// The search was interrupted before it ended.
    Incomplete,
}

/// The target's warm-up before the idle step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WarmUp {
    pub rate: f64,
    pub duration_s: f64,
    /// Requests sent while warming.
    pub requests: u64,
}

/// How each step is run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepPlan {
    /// The shortest measured part.
    pub duration_s: f64,
    /// Each step's own warm-up, excluded from its figures.
    pub warmup_s: f64,
    /// The time cap of the measured part on a first try (doubled on each
    /// repeat).
    pub cap_s: f64,
}

/// `capacity.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CapacityReport {
    pub schema_version: u32,
    pub scenario: String,
    pub target: String,
    pub slo_file: Option<String>,
    pub fail_on: FailOn,
    pub config: SearchConfig,
    pub step: StepPlan,
    pub warm: Option<WarmUp>,
    pub status: Status,
    /// The highest rate shown to hold; `null` when capacity is undefined
    /// (no objective holds at idle, or not even the lowest rate was carried).
    pub max_sustainable: Option<Quantity>,
    /// The rate of the idle step.
    pub idle_rps: Option<f64>,
    /// Objectives set aside at the idle step: capacity is undefined for them.
    pub undefined: Vec<ObjectiveRole>,
    pub limiting_objective: Option<Breach>,
    /// The rate after which latency rises steeply (see the README).
    pub knee: Option<Knee>,
    pub expected_rps: Option<f64>,
    /// `max_sustainable / expected - 1`, percent (negative: short of it).
    pub headroom_percent: Option<f64>,
    pub meets_expected: Option<bool>,
    pub stopped: Option<String>,
    /// Every objective and its role.
    pub objectives: Vec<ObjectiveRole>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Quantity {
    pub value: f64,
    pub unit: String,
}

/// What a report says besides the search.
#[derive(Clone, Debug)]
pub struct ReportMeta {
    pub scenario: String,
    pub target: String,
    pub slo_file: Option<String>,
    pub step: StepPlan,
    pub warm: Option<WarmUp>,
    pub expected_rps: Option<f64>,
}

impl CapacityReport {
    pub fn new(s: &Search, meta: ReportMeta) -> Self {
        let max = s.last_pass;
        let expected = meta.expected_rps;
        let undefined = s.undefined();
        let meets_expected = expected.map(|e| max.is_some_and(|m| m >= e));
        let status = if s.interrupted {
            Status::Incomplete
        } else if max.is_none() || !undefined.is_empty() {
            Status::Undefined
        } else if meets_expected == Some(false) {
            Status::ShortOfExpected
        } else {
            Status::Found
        };
        Self {
            schema_version: 2,
            scenario: meta.scenario,
            target: meta.target,
            slo_file: meta.slo_file,
            fail_on: s.fail_on,
            config: s.cfg.clone(),
            step: meta.step,
            warm: meta.warm,
            status,
            max_sustainable: max.map(|v| Quantity {
                value: v,
                unit: "requests/s".into(),
            }),
            idle_rps: s.idle_rps,
            undefined,
            limiting_objective: s.limiting_objective(),
            knee: s.knee(),
            expected_rps: expected,
            headroom_percent: expected
                .filter(|e| *e > 0.0)
                .and_then(|e| Some((max? / e - 1.0) * 100.0)),
            meets_expected,
            stopped: s.stopped.clone(),
            objectives: s.objectives.clone(),
            steps: s.steps.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
