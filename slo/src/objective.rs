//! SLO files and verdicts. An SLO file lists objectives; each names a
//! figure of the run (a dotted path into the client's figures or the
//! server's scraped metrics), a direction, and the guide's three levels.
//!
//! ```toml
//! name = "kpi"
//! [[objective]]
//! name = "first token p95"
//! metric = "latency_ms.first_token.p95"
//! direction = "max"      # the value must stay at or below the levels
//! target = 500
//! warning = 1000
//! critical = 2000
//! ```
//!
//! A value that meets the target is `ok`; one that misses it `target_missed`;
//! beyond the warning level `warning`; beyond the critical level `critical`.

use crate::evidence::Interval;
pub use crate::metric_paths::Source;
use crate::scenario::{FileError, line_of, toml_error};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "objective", default)]
    pub objectives: Vec<Objective>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    pub name: String,
    /// A dotted path into the source's figures, e.g. `latency_ms.first_token.p95`.
    pub metric: String,
    #[serde(default)]
    pub source: Source,
    pub direction: Direction,
    pub target: f64,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// False: a target that does not produce this figure (a backend
    /// without audio, without the guide's endpoints) is not failed for it;
    /// the objective shows as `no_data` and is not judged. True (the
    /// default): `no_data` fails the run.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
    /// Whether `loadgen capacity` lets this objective decide a step. By
    /// default every objective decides except those about the workload
    /// mix (cache hit rates: what the prompts repeat, not what the load
    /// does to the target), which are reported per step only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityRole>,
    /// Judged over every window of this length (whole seconds, sliding a
    /// second at a time over the measured part) instead of the whole run:
    /// `window = "60s"`. A latency percentile of the interval log, or
    /// a figure of a scraped series (see [`crate::windows`]).
    #[serde(
        default,
        with = "crate::durations::opt_duration_str",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub window: Option<std::time::Duration>,
    /// An availability objective's error budget over this period
    /// (`budget = "30d"`): the run is also judged on the rate it burns
    /// it at (see [`crate::budget`]).
    #[serde(
        default,
        with = "crate::durations::opt_duration_str",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub budget: Option<std::time::Duration>,
}

/// What an objective does in a capacity search (see [`Objective::capacity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CapacityRole {
    /// A breach fails the step.
    Decides,
    /// Shown per step; decides nothing.
    Reports,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Level {
    /// The level as reports write it.
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::TargetMissed => "target missed",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::NoData => "no data",
            Level::Inconclusive => "inconclusive",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The value must stay at or below the levels (latencies, error rates).
    Max,
    /// The value must stay at or above the levels (success, hit rates).
    Min,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    TargetMissed,
    Warning,
    Critical,
    /// The figure was not measured (no samples, or the server has no such
    /// endpoint).
    NoData,
    /// A percentile whose confidence interval straddles what the gate
    /// decides, or that has fewer samples than it needs.
    Inconclusive,
}

/// One objective judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Judged {
    pub name: String,
    pub metric: String,
    pub source: Source,
    pub level: Level,
    /// The level of the value alone, whatever its evidence: the same as
    /// `level` unless that is `inconclusive` (or, rarely, an interval's
    /// bound lies past the value and decides a worse level).
    pub point_level: Level,
    pub value: Option<f64>,
    /// The level crossed (or the target, when `ok`).
    pub threshold: f64,
    /// How far the value is on the good side of `threshold` (negative: past it).
    pub margin: Option<f64>,
    /// Whether `no_data` fails the run (see [`Objective::required`]).
    #[serde(default = "yes")]
    pub required: bool,
    /// A percentile's 95 % confidence interval, when the figure has one.
    #[serde(default)]
    pub interval: Option<Interval>,
    /// The samples behind the percentile.
    #[serde(default)]
    pub samples: Option<u64>,
    /// Inconclusive: about how many samples would likely decide it.
    #[serde(default)]
    pub samples_needed: Option<u64>,
    /// Which side of `interval` decided `level` (see
    /// [`Objective::decide`]); absent for a figure without an interval, an
    /// inconclusive one, and reports written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Bound>,
    /// The objective's levels, which the reports draw as bands (absent
    /// from reports written before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Levels>,
    /// A windowed objective: how its windows were judged; the figures
    /// above are its deciding window's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowView>,
    /// A budget's burn: what it was judged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetView>,
    /// A latency objective that missed its target: where the requests'
    /// time went, from the client's connection (see
    /// [`crate::aggregate::PhaseFigures`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// How a windowed objective was judged, beside the deciding window's
/// figures in its `Judged`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowView {
    /// The window's width, in seconds.
    pub width_s: u64,
    /// The windows judged (0: the interval log held no measured second).
    pub windows: u64,
    /// Windows shown past the gate's line.
    pub breached: u64,
    /// Windows that could not be decided (too few samples, or an interval
    /// across the line).
    pub inconclusive: u64,
    /// The window whose figures the objective shows: the worst breached,
    /// else the worst undecided, else the worst value. Seconds since the
    /// run's first request, as requests.csv counts them.
    pub from_s: u64,
    pub to_s: u64,
    /// The measured part was shorter than one window: the one window is
    /// all of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub short: bool,
}

/// What the burn judgment adds to its `Judged`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetView {
    /// The objective this budget is of.
    pub objective: String,
    /// The budget's period, in seconds (30 days: 2,592,000).
    pub period_s: f64,
    /// The share of requests the objective allows to fail, in percent.
    pub allowed_pct: f64,
    /// The share that failed in this run, in percent.
    pub failed_pct: f64,
    /// The share of the period's budget this run's measured part used,
    /// in percent (burn x measured / period).
    pub consumed_pct: f64,
    /// At this burn, how long the whole budget lasts, in seconds (null:
    /// nothing failed).
    pub exhausted_in_s: Option<f64>,
}

/// An objective's direction and levels, as its SLO file gave them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Levels {
    pub direction: Direction,
    pub target: f64,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
}

/// A side of a percentile's confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Lower,
    Upper,
}

impl Bound {
    /// The bound as reason lines name it.
    pub fn word(self) -> &'static str {
        match self {
            Bound::Lower => "lower bound",
            Bound::Upper => "upper bound",
        }
    }

    /// This side of `interval`, when it is known.
    pub fn of(self, interval: &Interval) -> Option<f64> {
        match self {
            Bound::Lower => interval.lo,
            Bound::Upper => interval.hi,
        }
    }
}

/// What an interval decides (see [`Objective::decide`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// This bound is past the decision line: the level it reaches and
    /// the line it crossed.
    Breach(Bound, (Level, f64)),
    /// This bound is on the good side, with the samples the percentile needs.
    Pass(Bound),
    /// The known bounds straddle the line, or a pass lacks samples.
    Undecided,
}

impl SloFile {
    pub fn from_toml(text: &str, file: &str) -> Result<SloFile, FileError> {
        let slo: SloFile = toml::from_str(text).map_err(|e| toml_error(e, file, text))?;
        for (i, o) in slo.objectives.iter().enumerate() {
            let checked = o.validate().and_then(|()| {
                crate::metric_paths::check(o.source, &o.metric).map_err(|m| format!("metric: {m}"))
            });
            if let Err(message) = checked {
                // The i-th [[objective]] table: its line is found by its
                // metric (a bad path) or its name.
                let needle = if message.starts_with("metric: ") {
                    &o.metric
                } else {
                    &o.name
                };
                let line = text
                    .lines()
                    .position(|l| l.contains(&format!("\"{needle}\"")))
                    .map(|p| p + 1)
                    .or_else(|| line_of(text, "objective"));
                return Err(FileError {
                    file: file.to_owned(),
                    line,
                    message: format!("objective {} ({:?}): {message}", i + 1, o.name),
                });
            }
        }
        Ok(slo)
    }
}

impl Objective {
    /// Whether this objective's metric is a rate an error budget can be
    /// kept on (see [`crate::budget`]): a percentage of requests that
    /// succeeded (`min`) or failed (`max`), with room to fail.
    fn check_budget(&self) -> Result<(), String> {
        let o = self;
        let rate = o.metric.ends_with("success_rate")
            || o.metric == "goodput"
            || o.metric.ends_with("error_rate")
            || o.metric.starts_with("errors.");
        if o.source != Source::Client || !rate {
            return Err(format!(
                "budget: a budget is kept on the client's share of requests that succeeded or failed (requests.success_rate, goodput, requests.error_rate, errors.<type>), not {:?}",
                o.metric
            ));
        }
        let room = match o.direction {
            Direction::Min => o.target < 100.0,
            Direction::Max => o.target > 0.0,
        };
        if !room {
            return Err(format!(
                "budget: a target of {} leaves no failure allowed, so no budget to burn",
                o.target
            ));
        }
        Ok(())
    }

    /// This objective's role in a capacity search: as the SLO file says,
    /// else `reports` for a figure of the workload mix (a cache hit rate
    /// or count) and `decides` for every other.
    pub fn capacity_role(&self) -> CapacityRole {
        self.capacity.unwrap_or_else(|| {
            if self
                .metric
                .split('.')
                .any(|k| k.contains("cache") || k.starts_with("kb_") || k.starts_with("tts_"))
            {
                CapacityRole::Reports
            } else {
                CapacityRole::Decides
            }
        })
    }

    /// The fewest samples this objective needs to be judged, when it is a
    /// client-side percentile (`….p95`: 100; see
    /// [`crate::evidence::min_samples`]); `None` for any other figure.
    pub fn min_samples(&self) -> Option<u64> {
        if self.source != Source::Client {
            return None;
        }
        let p = crate::evidence::Percentile::named(self.metric.rsplit('.').next()?)?;
        Some(crate::evidence::min_samples(p.quantile()))
    }

    fn validate(&self) -> Result<(), String> {
        if self.metric.trim().is_empty() {
            return Err("metric: a dotted path such as \"latency_ms.first_token.p95\"".into());
        }
        if let Some(w) = self.window {
            match self.source {
                Source::Client => {
                    crate::metric_paths::interval_log_tag(&self.metric)
                        .map_err(|m| format!("window: {m}"))?;
                }
                // Its path is checked against the scenario's scrapes.
                Source::Engine => {}
                Source::Server => return Err("window: the server's figures are one reading before and one after the run, not a series; judge a latency of the client (source = \"client\") or a scraped series (source = \"engine\") per window".into()),
            }
            if w.as_secs() == 0 || w.subsec_nanos() != 0 {
                return Err(format!(
                    "window: whole seconds, at least \"1s\" (the interval log holds one histogram a second), not {:?}",
                    humantime::format_duration(w).to_string()
                ));
            }
        }
        if self.budget.is_some() {
            self.check_budget()?;
        }
        let levels = [Some(self.target), self.warning, self.critical];
        if levels.iter().flatten().any(|v| !v.is_finite()) {
            return Err("target, warning and critical must be finite numbers".into());
        }
        let ordered = |a: f64, b: f64| match self.direction {
            Direction::Max => a <= b,
            Direction::Min => a >= b,
        };
        let chain: Vec<(&str, f64)> = [
            ("target", Some(self.target)),
            ("warning", self.warning),
            ("critical", self.critical),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        for w in chain.windows(2) {
            if !ordered(w[0].1, w[1].1) {
                return Err(format!(
                    "with direction = \"{}\", {} ({}) must be {} {} ({})",
                    if self.direction == Direction::Max {
                        "max"
                    } else {
                        "min"
                    },
                    w[0].0,
                    w[0].1,
                    if self.direction == Direction::Max {
                        "at most"
                    } else {
                        "at least"
                    },
                    w[1].0,
                    w[1].1
                ));
            }
        }
        Ok(())
    }

    /// The level of one value (no evidence considered) and the threshold it crossed.
    fn level_of(&self, v: f64) -> (Level, f64) {
        let beyond = |v: f64, limit: f64| match self.direction {
            Direction::Max => v > limit,
            Direction::Min => v < limit,
        };
        if self.critical.is_some_and(|c| beyond(v, c)) {
            (Level::Critical, self.critical.unwrap_or(self.target))
        } else if self.warning.is_some_and(|w| beyond(v, w)) {
            (Level::Warning, self.warning.unwrap_or(self.target))
        } else if beyond(v, self.target) {
            (Level::TargetMissed, self.target)
        } else {
            (Level::Ok, self.target)
        }
    }

    /// The level at which `fail_on` starts failing: the decision line. An
    /// objective without the gate's level fails at its nearest lower one
    /// (no `critical`: `--fail-on critical` fails past `warning`, or past
    /// `target`), so a level left out never makes an objective unable to
    /// fail.
    fn decision_line(&self, fail_on: FailOn) -> f64 {
        match fail_on {
            FailOn::Target => self.target,
            FailOn::Warning => self.warning.unwrap_or(self.target),
            FailOn::Critical => self.critical.or(self.warning).unwrap_or(self.target),
        }
    }

    /// The level of one value under a gate: as [`Self::level_of`], raised
    /// to the gate's own level when the value is past the decision line
    /// but the objective lacks the level the gate fails at (a `target`
    /// alone, under `--fail-on warning`, fails past the target).
    fn gated_level(&self, v: f64, fail_on: FailOn) -> (Level, f64) {
        let (level, threshold) = self.level_of(v);
        let line = self.decision_line(fail_on);
        let past = match self.direction {
            Direction::Max => v > line,
            Direction::Min => v < line,
        };
        if past && !fail_on.fails(level) {
            let raised = match fail_on {
                FailOn::Target => Level::TargetMissed,
                FailOn::Warning => Level::Warning,
                FailOn::Critical => Level::Critical,
            };
            (raised, line)
        } else {
            (level, threshold)
        }
    }

    /// Judges this objective against the client's and the server's
    /// figures. A percentile with evidence beside it (see
    /// [`crate::evidence`]) is decided by its interval as
    /// [`Self::decide`] says; otherwise it is `inconclusive`.
    pub fn judge(&self, client: &Value, server: &Value, fail_on: FailOn) -> Judged {
        self.judge_in(
            &Docs {
                client,
                server,
                engine: &Value::Null,
            },
            fail_on,
        )
    }

    /// [`Self::judge`] with the engine's figures too.
    pub fn judge_in(&self, docs: &Docs, fail_on: FailOn) -> Judged {
        let doc = match self.source {
            Source::Client => docs.client,
            Source::Server => docs.server,
            Source::Engine => docs.engine,
        };
        let value = lookup(doc, &self.metric);
        let (point_level, point_threshold) = match value {
            None => (Level::NoData, self.target),
            Some(v) => self.gated_level(v, fail_on),
        };
        let (mut level, mut threshold) = (point_level, point_threshold);
        let evidence = evidence_of(doc, &self.metric);
        let mut samples_needed = None;
        let mut decided_by = None;
        if let (Some(v), Some((n, interval))) = (value, &evidence) {
            match self.decide(interval, *n, fail_on) {
                Decision::Breach(bound, (bound_level, line)) => {
                    decided_by = Some(bound);
                    // The value's own level when it is as bad (it lies
                    // past the bound), else the bound's.
                    if bound_level > point_level {
                        (level, threshold) = (bound_level, line);
                    }
                }
                Decision::Pass(bound) => decided_by = Some(bound),
                Decision::Undecided => {
                    level = Level::Inconclusive;
                    samples_needed = Some(self.samples_needed(v, *n, interval, fail_on));
                }
            }
        }
        let margin = value.map(|v| match self.direction {
            Direction::Max => threshold - v,
            Direction::Min => v - threshold,
        });
        Judged {
            name: self.name.clone(),
            metric: self.metric.clone(),
            source: self.source,
            level,
            point_level,
            value,
            threshold,
            margin,
            required: self.required,
            interval: evidence.as_ref().map(|(_, i)| i.clone()),
            samples: evidence.as_ref().map(|(n, _)| *n),
            samples_needed,
            decided_by,
            window: None,
            budget: None,
            split: None,
            levels: Some(Levels {
                direction: self.direction,
                target: self.target,
                warning: self.warning,
                critical: self.critical,
            }),
        }
    }

    /// What a percentile's interval decides under `fail_on`: the one rule
    /// of every verdict. Whichever side of the interval is known decides
    /// what it shows: the bound that flatters the value (a `max`
    /// objective's lower bound) past the decision line is a breach, however
    /// few the samples and whether or not the other side is bounded; the
    /// other bound on the good side is a pass, once the percentile has the
    /// samples it needs (see [`crate::evidence::min_samples`]). Anything
    /// else (the known bounds straddle the line, or a pass short of
    /// samples) is undecided.
    pub fn decide(&self, interval: &Interval, n: u64, fail_on: FailOn) -> Decision {
        let (good, bad) = match self.direction {
            Direction::Max => ((Bound::Lower, interval.lo), (Bound::Upper, interval.hi)),
            Direction::Min => ((Bound::Upper, interval.hi), (Bound::Lower, interval.lo)),
        };
        if let Some(b) = good.1 {
            let gated = self.gated_level(b, fail_on);
            if fail_on.fails(gated.0) {
                return Decision::Breach(good.0, gated);
            }
        }
        let enough = n >= interval.min_samples;
        match bad.1 {
            Some(b) if enough && !fail_on.fails(self.gated_level(b, fail_on).0) => {
                Decision::Pass(bad.0)
            }
            _ => Decision::Undecided,
        }
    }

    /// About how many samples would decide an inconclusive percentile: an
    /// interval's width shrinks as 1/sqrt(n), so the samples that make its
    /// half-width the distance from the value to the decision line; at
    /// least the percentile's minimum.
    fn samples_needed(&self, v: f64, n: u64, i: &Interval, fail_on: FailOn) -> u64 {
        let line = self.decision_line(fail_on);
        let gap = (v - line).abs();
        let floor = i.min_samples.max(n + 1);
        match (i.lo, i.hi) {
            (Some(lo), Some(hi)) if gap > 0.0 => {
                let half = (hi - lo) / 2.0;
                ((n as f64 * (half / gap).powi(2)).ceil() as u64).max(floor)
            }
            // Unbounded or exactly on the line: at least twice as many.
            _ => floor.max(n * 2),
        }
    }
}

/// The sample count and the interval beside a percentile figure: for
/// `a.b.p95`, `a.b.count` and `a.b.evidence.p95`.
pub fn evidence_of(doc: &Value, path: &str) -> Option<(u64, Interval)> {
    let (parent, stat) = path.rsplit_once('.')?;
    let figures = parent.split('.').try_fold(doc, |v, k| v.get(k))?;
    let interval: Interval =
        serde_json::from_value(figures.get("evidence")?.get(stat)?.clone()).ok()?;
    Some((figures.get("count")?.as_u64()?, interval))
}

/// The policy that judges a run given no SLO file: every request must
/// succeed at the guide's success-rate levels (target 99 %, warning
/// 98 %, critical 95 %). A run with no SLO file is never judged on
/// nothing.
pub fn default_policy() -> SloFile {
    SloFile {
        name: "default policy".into(),
        description: "applied when the run names no SLO file".into(),
        objectives: vec![Objective {
            name: "success rate".into(),
            metric: "requests.success_rate".into(),
            source: Source::Client,
            direction: Direction::Min,
            target: 99.0,
            warning: Some(98.0),
            critical: Some(95.0),
            required: true,
            capacity: None,
            window: None,
            budget: None,
        }],
    }
}

/// A JSON number, or a string like `"99.2%"` or `"450ms"` read as its
/// number (the guide's endpoints write them so); `None` otherwise.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .trim_end_matches('%')
            .trim_end_matches("ms")
            .trim()
            .parse()
            .ok(),
        _ => None,
    }
}

/// A number at a dotted path; strings like `"99.2%"` or `"450ms"` are read
/// as their number (the guide's endpoints write them so).
/// The documents objectives read their figures from, by [`Source`].
pub struct Docs<'a> {
    pub client: &'a Value,
    pub server: &'a Value,
    /// `{scrape: {series: {figure: value}}}` ([`crate::engine::document`]).
    pub engine: &'a Value,
}

pub fn lookup(doc: &Value, path: &str) -> Option<f64> {
    let mut v = doc;
    for key in path.split('.') {
        v = v.get(key)?;
    }
    number(v)
}

impl Judged {
    /// Whether this objective fails the run: its level reached `fail_on`,
    /// it was required and not measured (unless `allow_missing`), or it
    /// was inconclusive (unless `accept_inconclusive`).
    pub fn fails(&self, gate: &Gate) -> bool {
        match self.level {
            Level::NoData => self.required && !gate.allow_missing,
            Level::Inconclusive => !gate.accept_inconclusive,
            level => gate.fail_on.fails(level),
        }
    }

    /// The objective's name as tables show it: a windowed objective says
    /// which window its figures are from.
    pub fn label(&self) -> String {
        match &self.window {
            Some(w) if w.windows > 0 => format!(
                "{} (worst {} s window: {}-{} s)",
                self.name, w.width_s, w.from_s, w.to_s
            ),
            _ => self.name.clone(),
        }
    }
}

/// What fails a run: the level (`--fail-on`), and whether missing data
/// (`--allow-missing`) and inconclusive percentiles
/// (`--accept-inconclusive`) are let through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    pub fail_on: FailOn,
    pub allow_missing: bool,
    pub accept_inconclusive: bool,
}

/// A gate given again to judge a saved run (`report`, `merge`): each
/// flag over what the run was judged by. A level given replaces the
/// run's; a relaxation given (`--allow-missing`, `--accept-inconclusive`)
/// adds to the run's, and one not given keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateOverride {
    pub fail_on: Option<FailOn>,
    pub allow_missing: bool,
    pub accept_inconclusive: bool,
}

impl GateOverride {
    /// The gate that judges again a run judged by `was`.
    pub fn over(self, was: Gate) -> Gate {
        Gate {
            fail_on: self.fail_on.unwrap_or(was.fail_on),
            allow_missing: self.allow_missing || was.allow_missing,
            accept_inconclusive: self.accept_inconclusive || was.accept_inconclusive,
        }
    }
}

/// Which level fails a run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailOn {
    /// Any missed target fails.
    Target,
    /// A warning or critical level fails (the default).
    #[default]
    Warning,
    /// Only a critical level fails.
    Critical,
}

impl FailOn {
    /// Whether `level` fails the run; `no_data` is judged apart (see
    /// [`Judged::fails`]).
    pub fn fails(self, level: Level) -> bool {
        match self {
            FailOn::Target => matches!(
                level,
                Level::TargetMissed | Level::Warning | Level::Critical
            ),
            FailOn::Warning => matches!(level, Level::Warning | Level::Critical),
            FailOn::Critical => level == Level::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first_token_p95() -> Objective {
        Objective {
            name: "first token p95".into(),
            metric: "latency_ms.first_token.p95".into(),
            source: Source::Client,
            direction: Direction::Max,
            target: 500.0,
            warning: Some(1000.0),
            critical: Some(2000.0),
            required: true,
            capacity: None,
            window: None,
            budget: None,
        }
    }

    #[test]
    fn a_level_left_out_never_makes_an_objective_unable_to_fail() {
        let only_target = Objective {
            warning: None,
            critical: None,
            ..first_token_p95()
        };
        let doc = json!({"latency_ms": {"first_token": {"p95": 700.0}}});
        for fail_on in [FailOn::Target, FailOn::Warning, FailOn::Critical] {
            let j = only_target.judge(&doc, &json!({}), fail_on);
            assert!(
                j.fails(&Gate {
                    fail_on,
                    ..Gate::default()
                }),
                "{fail_on:?}: {j:?}"
            );
            assert_eq!(j.threshold, 500.0);
        }
        let ok = json!({"latency_ms": {"first_token": {"p95": 450.0}}});
        assert_eq!(
            only_target.judge(&ok, &json!({}), FailOn::Warning).level,
            Level::Ok
        );
        // No critical: --fail-on critical fails past the warning, not before.
        let no_critical = Objective {
            critical: None,
            ..first_token_p95()
        };
        let at = |ms: f64| {
            no_critical
                .judge(
                    &json!({"latency_ms": {"first_token": {"p95": ms}}}),
                    &json!({}),
                    FailOn::Critical,
                )
                .fails(&Gate {
                    fail_on: FailOn::Critical,
                    ..Gate::default()
                })
        };
        assert!(!at(900.0));
        assert!(at(1100.0));
    }

    #[test]
    fn levels_by_direction() {
        let o = first_token_p95();
        let at = |ms: f64| {
            o.judge(
                &json!({"latency_ms": {"first_token": {"p95": ms}}}),
                &json!({}),
                FailOn::Warning,
            )
        };
        assert_eq!(at(450.0).level, Level::Ok);
        assert_eq!(at(500.0).level, Level::Ok);
        assert_eq!(at(700.0).level, Level::TargetMissed);
        assert_eq!(at(1000.1).level, Level::Warning);
        let c = at(2500.0);
        assert_eq!(
            (c.level, c.threshold, c.margin),
            (Level::Critical, 2000.0, Some(-500.0))
        );
        let min = Objective {
            metric: "successRate".into(),
            source: Source::Server,
            direction: Direction::Min,
            target: 99.0,
            warning: Some(98.0),
            critical: Some(95.0),
            ..o
        };
        assert_eq!(
            min.judge(
                &json!({}),
                &json!({"successRate": "99.2%"}),
                FailOn::Warning
            )
            .level,
            Level::Ok
        );
        assert_eq!(
            min.judge(
                &json!({}),
                &json!({"successRate": "97.0%"}),
                FailOn::Warning
            )
            .level,
            Level::Warning
        );
        assert_eq!(
            min.judge(&json!({}), &json!({}), FailOn::Warning).level,
            Level::NoData
        );
    }

    #[test]
    fn levels_out_of_order_are_named() {
        let text = "name = \"x\"\n[[objective]]\nname = \"ft\"\nmetric = \"latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 500\nwarning = 400\n";
        let e = SloFile::from_toml(text, "x.toml").unwrap_err();
        assert!(
            e.message
                .contains("target (500) must be at most warning (400)"),
            "{e}"
        );
        assert_eq!(e.line, Some(3));
        let e = SloFile::from_toml("name = \"x\"\n[[objective]]\nnam = 1\n", "x.toml").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("nam"), "{e}");
    }

    #[test]
    fn a_gate_given_again_replaces_the_level_and_adds_relaxations() {
        let was = Gate {
            fail_on: FailOn::Critical,
            allow_missing: true,
            accept_inconclusive: false,
        };
        // Nothing given: the run's own gate.
        assert_eq!(GateOverride::default().over(was), was);
        let again = GateOverride {
            fail_on: Some(FailOn::Target),
            allow_missing: false,
            accept_inconclusive: true,
        };
        assert_eq!(
            again.over(was),
            Gate {
                fail_on: FailOn::Target,
                allow_missing: true,
                accept_inconclusive: true,
            }
        );
    }

    #[test]
    fn fail_on_policies() {
        assert!(FailOn::Target.fails(Level::TargetMissed));
        assert!(!FailOn::Warning.fails(Level::TargetMissed));
        assert!(FailOn::Warning.fails(Level::Warning));
        assert!(!FailOn::Critical.fails(Level::Warning));
        assert!(FailOn::Critical.fails(Level::Critical));
        assert!(!FailOn::Target.fails(Level::NoData));
    }

    #[test]
    fn a_percentile_is_decided_only_by_its_whole_interval() {
        let o = first_token_p95(); // target 500, warning 1000, critical 2000
        let doc = |p95: f64, lo: Option<f64>, hi: Option<f64>, n: u64| {
            json!({"latency_ms": {"first_token": {"p95": p95, "count": n,
                "evidence": {"p95": {"lo": lo, "hi": hi, "min_samples": 100}}}}})
        };
        let at = |d: Value| o.judge(&d, &json!({}), FailOn::Warning);
        // Wholly below the warning line: passes at --fail-on warning,
        // even though the interval straddles the target.
        assert_eq!(
            at(doc(450.0, Some(420.0), Some(600.0), 400)).level,
            Level::Ok
        );
        // Wholly past it: a breach.
        assert_eq!(
            at(doc(1500.0, Some(1200.0), Some(1700.0), 400)).level,
            Level::Warning
        );
        // Straddling it: inconclusive, with the samples that would decide it.
        let j = at(doc(990.0, Some(900.0), Some(1100.0), 400));
        assert_eq!(j.level, Level::Inconclusive);
        assert!(j.samples_needed.unwrap() > 400, "{j:?}");
        assert_eq!(j.samples, Some(400));
        // No upper bound (too few samples): never a pass.
        assert_eq!(
            at(doc(100.0, Some(90.0), None, 400)).level,
            Level::Inconclusive
        );
        // Fewer samples than the percentile needs: never a pass.
        assert_eq!(
            at(doc(100.0, Some(90.0), Some(110.0), 99)).level,
            Level::Inconclusive
        );
        // An inconclusive objective fails unless accepted.
        let j = at(doc(990.0, Some(900.0), Some(1100.0), 400));
        let gate = Gate::default();
        assert!(j.fails(&gate));
        assert!(!j.fails(&Gate {
            accept_inconclusive: true,
            ..gate
        }));
    }

    /// The one rule on every shape of interval: each side missing or
    /// known, for a `max` and a `min` objective, at each `--fail-on`.
    #[test]
    fn whichever_bound_is_known_decides_what_it_shows() {
        use Bound::{Lower, Upper};
        use FailOn::{Critical as C, Target as T, Warning as W};
        // What each case must decide: a breach by a bound at a level, a
        // pass by a bound, or inconclusive.
        #[derive(Debug, PartialEq)]
        enum Want {
            Breach(Bound, Level),
            Pass(Bound),
            Undecided,
        }
        use Want::{Breach, Pass, Undecided};
        let max = first_token_p95(); // target 500, warning 1000, critical 2000
        let min = Objective {
            name: "throughput p95".into(),
            metric: "x.p95".into(),
            direction: Direction::Min,
            target: 100.0,
            warning: Some(80.0),
            critical: Some(50.0),
            ..first_token_p95()
        };
        let doc = |o: &Objective, v: f64, lo: Option<f64>, hi: Option<f64>, n: u64| {
            let figure = json!({"p95": v, "count": n,
                "evidence": {"p95": {"lo": lo, "hi": hi, "min_samples": 100}}});
            match o.direction {
                Direction::Max => json!({"latency_ms": {"first_token": figure}}),
                Direction::Min => json!({ "x": figure }),
            }
        };
        #[rustfmt::skip]
        // (objective, value, lower bound, upper bound, samples, gate, want)
        type Case<'a> = (&'a Objective, f64, Option<f64>, Option<f64>, u64, FailOn, Want);
        let cases: Vec<Case> = vec![
            // max: far past critical, only the lower bound known (8 samples).
            (
                &max,
                3025.0,
                Some(3021.0),
                None,
                8,
                T,
                Breach(Lower, Level::Critical),
            ),
            (
                &max,
                3025.0,
                Some(3021.0),
                None,
                8,
                W,
                Breach(Lower, Level::Critical),
            ),
            (
                &max,
                3025.0,
                Some(3021.0),
                None,
                8,
                C,
                Breach(Lower, Level::Critical),
            ),
            // max: only the upper bound known, past the line: it shows nothing.
            (&max, 3025.0, None, Some(3100.0), 8, W, Undecided),
            // max: only the upper bound known, on the good side, with and
            // without the samples a pass needs.
            (&max, 100.0, None, Some(120.0), 400, T, Pass(Upper)),
            (&max, 100.0, None, Some(120.0), 99, T, Undecided),
            // max: only the lower bound known, on the good side: never a pass.
            (&max, 100.0, Some(90.0), None, 400, W, Undecided),
            // max: neither bound known.
            (&max, 3025.0, None, None, 8, W, Undecided),
            (&max, 100.0, None, None, 400, W, Undecided),
            // max: both known; the lower bound past warning, the upper
            // past critical: a breach where warning fails, undecided
            // where only critical does.
            (
                &max,
                1500.0,
                Some(1100.0),
                Some(2500.0),
                400,
                T,
                Breach(Lower, Level::Warning),
            ),
            (
                &max,
                1500.0,
                Some(1100.0),
                Some(2500.0),
                400,
                W,
                Breach(Lower, Level::Warning),
            ),
            (&max, 1500.0, Some(1100.0), Some(2500.0), 400, C, Undecided),
            // max: both known, straddling the target and the warning.
            (&max, 900.0, Some(400.0), Some(1200.0), 400, T, Undecided),
            (&max, 900.0, Some(400.0), Some(1200.0), 400, W, Undecided),
            (&max, 900.0, Some(400.0), Some(1200.0), 400, C, Pass(Upper)),
            // min: only the upper bound known, below critical: a breach.
            (
                &min,
                30.0,
                None,
                Some(40.0),
                8,
                T,
                Breach(Upper, Level::Critical),
            ),
            (
                &min,
                30.0,
                None,
                Some(40.0),
                8,
                W,
                Breach(Upper, Level::Critical),
            ),
            (
                &min,
                30.0,
                None,
                Some(40.0),
                8,
                C,
                Breach(Upper, Level::Critical),
            ),
            // min: only the lower bound known: above the line a pass (with
            // the samples), below it nothing.
            (&min, 150.0, Some(120.0), None, 400, T, Pass(Lower)),
            (&min, 150.0, Some(120.0), None, 50, T, Undecided),
            (&min, 30.0, Some(20.0), None, 400, C, Undecided),
            // min: neither, and both.
            (&min, 30.0, None, None, 400, C, Undecided),
            (
                &min,
                90.0,
                Some(85.0),
                Some(95.0),
                400,
                T,
                Breach(Upper, Level::TargetMissed),
            ),
            (&min, 90.0, Some(85.0), Some(95.0), 400, W, Pass(Lower)),
            (&min, 90.0, Some(70.0), Some(95.0), 400, W, Undecided),
        ];
        for (o, v, lo, hi, n, fail_on, want) in cases {
            let j = o.judge(&doc(o, v, lo, hi, n), &json!({}), fail_on);
            let got = match (j.level, j.decided_by) {
                (Level::Inconclusive, None) => Undecided,
                (level, Some(b)) if fail_on.fails(level) => Breach(b, level),
                (_, Some(b)) => Pass(b),
                other => panic!("{other:?}: {j:?}"),
            };
            let case = format!(
                "{} {v} [{lo:?}, {hi:?}] n={n} --fail-on {fail_on:?}",
                o.name
            );
            assert_eq!(got, want, "{case}");
            // The gate agrees: a breach fails even with inconclusive
            // accepted; a pass passes without it.
            let gate = Gate {
                fail_on,
                accept_inconclusive: true,
                ..Gate::default()
            };
            match want {
                Breach(..) => assert!(j.fails(&gate), "{case}"),
                Pass(_) => assert!(
                    !j.fails(&Gate {
                        accept_inconclusive: false,
                        ..gate
                    }),
                    "{case}"
                ),
                Undecided => assert!(j.samples_needed.is_some(), "{case}"),
            }
        }
    }
}
