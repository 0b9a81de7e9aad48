//! `report.json`: the whole result of a run, the contract CI jobs read.
//! Stable keys: `verdict`, `latency_ms.{first_token,first_audio,complete}`
//! with `p50`, `p95`, `p99`, `max`, `count` (and `corrected` under an open
//! model), `requests.{total,ok,failed}`, `errors` by type, `slo`.

use crate::aggregate::{Aggregate, Figures, GoodputLimits, Second};
use crate::objective::{Direction, FailOn, Gate, Judged, Level, SloFile, Source};
use crate::self_check::SelfCheck;
use crate::server_view::ServerView;
use crate::severity::Severity;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// A shard of a sharded run (`--shard I/N`): its part is judged only
    /// merged with the others (`loadgen merge`). Never a pass.
    NotJudged,
}

impl Verdict {
    /// As report.json spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NotJudged => "not_judged",
        }
    }

    /// How the reports say it.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotJudged => "NOT JUDGED",
        }
    }
}

/// A shard's place in a sharded run (`loadgen run --shard I/N`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardInfo {
    /// From 0, as Kubernetes' `JOB_COMPLETION_INDEX`.
    pub index: u32,
    pub count: u32,
    /// The run's seed; the shard draws from it and its index.
    pub seed: u64,
    /// `--start-at` as given (RFC 3339), when one was.
    pub start_at: Option<String>,
    /// Wall time of the shard's time zero (its first request, the zero of
    /// its CSV and interval log), in microseconds since the Unix epoch:
    /// what `loadgen merge` aligns the shards on.
    pub zero_unix_us: u64,
    /// The load of the whole run, before the split.
    pub whole_load: Value,
}

pub use crate::drill::EventRecord;

/// One shard of a merged run, as `loadgen merge` found it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardRow {
    pub index: u32,
    /// The shard's output folder.
    pub dir: String,
    pub requests: u64,
    pub ok: u64,
    /// Its time zero after the earliest shard's (ms).
    pub zero_offset_ms: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub verdict: Verdict,
    /// Why the run failed, in words (empty when it passed).
    pub verdict_reasons: Vec<String>,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    /// The load model as run (after command-line overrides).
    pub load: Value,
    pub started_at: String,
    /// Wall time of the whole run, warm-up included.
    pub elapsed_s: f64,
    /// The measured part (after the warm-up).
    pub measured_s: f64,
    pub warmup_s: f64,
    /// Set when the run ended early (Ctrl-C, SIGTERM), with the reason.
    pub interrupted: Option<String>,
    /// Set on a shard's report (`--shard I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// Set on a merged run's report (`loadgen merge`): its shards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRow>,
    /// What keeps a merged run's shards from being one whole run (each
    /// also a verdict reason).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_problems: Vec<String>,
    /// The scenario's timeline, as applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventRecord>,
    /// The guide's alerts as they fired during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<crate::drill::AlertsSection>,
    /// Each `[[scrape]]` of the scenario over the measured part: its
    /// series and their figures (`slo::engine`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub engine: BTreeMap<String, crate::engine::ScrapeView>,
    /// A drill's incidents, in the guide's incident-report format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<crate::drill::Incident>,
    #[serde(flatten)]
    pub figures: Figures,
    pub timeseries: Vec<Second>,
    /// The target's own metrics (see the README).
    #[serde(serialize_with = "sorted")]
    pub server: ServerView,
    /// The load generator's check of itself.
    #[serde(serialize_with = "sorted")]
    pub self_check: SelfCheck,
    /// The SLO file judged by; `null` when the default policy was
    /// (see [`crate::objective::default_policy`]).
    pub slo_file: Option<String>,
    pub fail_on: FailOn,
    /// `--allow-missing`: objectives with no data did not fail the run.
    #[serde(default)]
    pub allow_missing: bool,
    /// `--accept-inconclusive`: inconclusive percentiles did not fail the run.
    #[serde(default)]
    pub accept_inconclusive: bool,
    pub slo: Vec<Judged>,
    /// The guide's incident severity of what the run saw (null: none).
    pub severity: Option<crate::severity::Severity>,
    pub severity_reasons: Vec<String>,
    /// What a reader must know about how the figures were measured (a
    /// buffered stream, ...), in words.
    #[serde(default)]
    pub findings: Vec<String>,
    /// The files of the run, by role.
    #[serde(serialize_with = "sorted")]
    pub files: Files,
}

/// Writes a section with its keys sorted, as report.json always has (these
/// sections were JSON values before they had types), so a report keeps its
/// bytes.
fn sorted<T: Serialize, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(v)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// The files of a run, by role, relative to its folder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Files {
    pub csv: String,
    pub interval_log: String,
    pub goose_html: String,
    pub goose_json: String,
    pub report: String,
    pub markdown: String,
    pub junit: String,
    pub html: String,
}

impl Report {
    /// The gate this report was judged by.
    pub fn gate(&self) -> Gate {
        Gate {
            fail_on: self.fail_on,
            allow_missing: self.allow_missing,
            accept_inconclusive: self.accept_inconclusive,
        }
    }
}

/// The verdict of judged objectives under a gate policy, plus the
/// client's own trustworthiness. An objective with no data fails unless
/// it is not `required` or `allow_missing` is set.
pub fn verdict(
    slo: &[Judged],
    gate: &Gate,
    trustworthy: bool,
    untrusted_reasons: &[String],
) -> (Verdict, Vec<String>) {
    let mut reasons: Vec<String> = slo
        .iter()
        .filter(|j| j.fails(gate))
        .map(|j| {
            let reason = match j.level {
            Level::Inconclusive => format!(
                "{}: {} is inconclusive: {} samples, 95% interval {}: neither bound decides it; about {} samples would (pass --accept-inconclusive to accept it)",
                j.name,
                j.metric,
                j.samples.unwrap_or(0),
                j.interval.as_ref().map_or("none".to_owned(), |i| format!(
                    "[{}, {}]",
                    i.lo.map_or("-".to_owned(), |v| format!("{v:.1}")),
                    i.hi.map_or("unbounded".to_owned(), |v| format!("{v:.1}"))
                )),
                j.samples_needed.unwrap_or(0)
            ),
            Level::NoData => format!(
                "{}: {} was not measured (no data); mark the objective `required = false` if the target may lack it, or pass --allow-missing",
                j.name, j.metric
            ),
            level => format!(
                "{}: {} is {} (threshold {}){}",
                j.name,
                j.value.map_or("no data".to_owned(), |v| format!("{v:.2}")),
                match level {
                    Level::Critical => "critical",
                    Level::Warning => "at warning",
                    _ => "past its target",
                },
                j.threshold,
                match (j.decided_by, &j.interval) {
                    (Some(b), Some(i)) => format!(
                        "; shown by its 95% interval's {} {} ({} samples)",
                        b.word(),
                        b.of(i).map_or("-".to_owned(), |v| format!("{v:.1}")),
                        j.samples.unwrap_or(0)
                    ),
                    _ => String::new(),
                }
            ),
            };
            let reason = match &j.window {
                Some(w) => format!("{reason}{}", crate::windows::phrase(w)),
                None => reason,
            };
            match &j.split {
                Some(split) => format!("{reason}; {split}"),
                None => reason,
            }
        })
        .collect();
    if !trustworthy {
        reasons.extend(
            untrusted_reasons
                .iter()
                .map(|r| format!("not trustworthy: {r}")),
        );
    }
    (
        if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        reasons,
    )
}

/// What a report says besides the figures.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    pub load: Value,
    pub started_at: String,
    pub elapsed_s: f64,
    pub measured_s: f64,
    pub warmup_s: f64,
    pub interrupted: Option<String>,
    /// A shard's place; an unjudged shard's report judges nothing
    /// (`judge`).
    pub shard: Option<ShardInfo>,
    /// Judge the objectives; `false` only for a shard not asked to.
    pub judge: bool,
    /// A merged run's shards, and what is wrong with the set (a missing,
    /// interrupted or untrustworthy shard): each fails the verdict.
    pub shards: Vec<ShardRow>,
    pub shard_problems: Vec<String>,
    /// The timeline's events as applied; one that failed, or that the run
    /// never reached, fails the run (the drill did not happen as written).
    pub events: Vec<EventRecord>,
    /// The guide's alerts as they fired during the run (a drill's).
    pub alerts: Option<crate::drill::AlertsSection>,
    /// Each `[[scrape]]` of the scenario over the measured part.
    pub engine: BTreeMap<String, crate::engine::ScrapeView>,
    /// The SLO file's windowed objectives, by their place in it, judged
    /// from the run's interval log (see [`crate::windows`]); one missing
    /// here is judged without data.
    pub windowed: BTreeMap<usize, Judged>,
    pub server: ServerView,
    pub self_check: SelfCheck,
    pub slo: Option<(PathBuf, SloFile)>,
    /// What fails the run.
    pub gate: Gate,
    pub open_model: bool,
    /// The files of the run, by role.
    pub files: Files,
}

/// The per-request limits of goodput: for each latency, the tightest
/// target among the client-side `max` objectives on its percentiles.
pub fn goodput_limits(slo: Option<&SloFile>) -> GoodputLimits {
    let mut l = GoodputLimits::default();
    for o in slo.map(|s| s.objectives.as_slice()).unwrap_or_default() {
        if o.source != Source::Client || o.direction != Direction::Max {
            continue;
        }
        let parts: Vec<&str> = o.metric.split('.').collect();
        let stat = parts.last().copied().unwrap_or("");
        if !matches!(stat, "p50" | "p90" | "p95" | "p99" | "max" | "mean") {
            continue;
        }
        let slot = match parts.as_slice() {
            ["latency_ms" | "scheduled_latency_ms", "first_token", ..] => &mut l.first_token_ms,
            ["latency_ms" | "scheduled_latency_ms", "first_audio", ..] => &mut l.first_audio_ms,
            ["latency_ms" | "scheduled_latency_ms", "complete", ..] => &mut l.complete_ms,
            _ => continue,
        };
        *slot = Some(slot.map_or(o.target, |v: f64| v.min(o.target)));
    }
    l
}

/// The report of a run: its figures judged by its SLO file (or the
/// default policy) under its gate, with every rule that fails a run
/// whatever the SLO file says.
pub fn build(meta: RunInfo, agg: &Aggregate) -> Report {
    let mut figures = agg.figures(
        // Read from a file when rebuilt: never a panic on a bad number.
        std::time::Duration::try_from_secs_f64(meta.measured_s).unwrap_or_default(),
        meta.open_model,
    );
    let timeseries = agg.series();
    let is_drill = meta.events.iter().any(|e| !e.expect.is_empty());
    let (incidents, drill_problems) = drill(&meta, &mut figures, &timeseries, is_drill);
    let judged = judge_objectives(&meta, &figures);
    let (severity, severity_reasons) = if meta.judge {
        crate::severity::classify(&figures, &judged, &meta.server)
    } else {
        (None, Vec::new())
    };
    let (verdict, reasons) = decide(
        &meta,
        &figures,
        &judged,
        (&drill_problems, is_drill),
        (severity, &severity_reasons),
    );
    Report {
        schema_version: SCHEMA_VERSION,
        verdict,
        verdict_reasons: reasons,
        findings: figures.findings(),
        scenario: meta.scenario,
        target: meta.target,
        load: meta.load,
        started_at: meta.started_at,
        elapsed_s: meta.elapsed_s,
        measured_s: meta.measured_s,
        warmup_s: meta.warmup_s,
        interrupted: meta.interrupted,
        shard: meta.shard,
        shards: meta.shards,
        shard_problems: meta.shard_problems,
        events: meta.events,
        alerts: meta.alerts,
        engine: meta.engine,
        incidents,
        figures,
        timeseries,
        server: meta.server,
        self_check: meta.self_check,
        slo_file: meta.slo.as_ref().map(|(p, _)| p.display().to_string()),
        fail_on: meta.gate.fail_on,
        allow_missing: meta.gate.allow_missing,
        accept_inconclusive: meta.gate.accept_inconclusive,
        slo: judged,
        severity,
        severity_reasons,
        files: meta.files,
    }
}

/// A drill: the incidents its timeline called for, judged on its alerts
/// (their figures go into `figures.drill`), and what kept it from being
/// judged.
fn drill(
    meta: &RunInfo,
    figures: &mut Figures,
    timeseries: &[crate::aggregate::Second],
    is_drill: bool,
) -> (Vec<crate::drill::Incident>, Vec<String>) {
    let drill = meta
        .alerts
        .as_ref()
        .map(|a| crate::drill::judge(&meta.events, a.judged(), timeseries, meta.elapsed_s));
    let mut drill_problems = Vec::new();
    let mut incidents = Vec::new();
    if let Some(j) = drill {
        figures.drill = j.figures;
        incidents = j.incidents;
        drill_problems = j.problems;
    } else if is_drill {
        drill_problems.push(
            "the timeline expects alerts, but none were evaluated: see the run's log".to_owned(),
        );
    }
    if let Some(why) = meta.alerts.as_ref().and_then(|a| a.unread()) {
        drill_problems.push(why);
    }
    (incidents, drill_problems)
}

/// Every objective of the SLO file (or the default policy) judged on the
/// client's figures and the server's view; none when the run is a part
/// judged only merged.
fn judge_objectives(meta: &RunInfo, figures: &Figures) -> Vec<Judged> {
    let client = serde_json::to_value(figures).expect("figures serialize");
    let server = serde_json::to_value(&meta.server).expect("the server view serializes");
    let engine = crate::engine::document(&meta.engine);
    let docs = crate::objective::Docs {
        client: &client,
        server: &server,
        engine: &engine,
    };
    // No SLO file: the documented default policy judges the run.
    let default_policy = crate::objective::default_policy();
    let policy = meta.slo.as_ref().map_or(&default_policy, |(_, f)| f);
    if meta.judge {
        let fail_on = meta.gate.fail_on;
        let mut judged = Vec::new();
        for (i, o) in policy.objectives.iter().enumerate() {
            let j = match o.window {
                Some(_) => meta
                    .windowed
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| crate::windows::unread(o, fail_on)),
                None => o.judge_in(&docs, fail_on),
            };
            // An error budget: its burn is judged right after.
            let burn = o
                .budget
                .map(|p| crate::budget::judge(o, &j, (p.as_secs_f64(), meta.measured_s), fail_on));
            let mut j = j;
            if j.source == crate::objective::Source::Client && j.level != Level::Ok {
                j.split = crate::phases::split(&j.metric, &figures.phases_ms);
            }
            judged.push(j);
            judged.extend(burn);
        }
        judged
    } else {
        Vec::new()
    }
}

/// The verdict and its reasons: the objectives, the self-check, an
/// interruption, a run where nothing succeeded, the timeline, the drill,
/// the shards, an incident's severity.
fn decide(
    meta: &RunInfo,
    figures: &Figures,
    judged: &[Judged],
    (drill_problems, is_drill): (&[String], bool),
    (severity, severity_reasons): (Option<Severity>, &[String]),
) -> (Verdict, Vec<String>) {
    let (mut verdict, mut reasons) = verdict(
        judged,
        &meta.gate,
        meta.self_check.trustworthy,
        &meta.self_check.reasons,
    );
    if let Some(why) = &meta.interrupted {
        verdict = Verdict::Fail;
        reasons.push(format!("the run did not complete: {why}"));
    }
    // Whatever the SLO file says (or if there is none), a run in which
    // nothing succeeded cannot pass.
    if let Some(why) = nothing_succeeded(figures) {
        verdict = Verdict::Fail;
        reasons.push(why);
    }
    for e in meta.events.iter().filter(|e| !e.ok) {
        verdict = Verdict::Fail;
        reasons.push(format!(
            "timeline event {} (at {} s) did not happen as written: {}",
            e.name,
            crate::format::num(e.at_s),
            e.detail
        ));
    }
    for problem in drill_problems {
        verdict = Verdict::Fail;
        reasons.push(format!("drill: {problem}"));
    }
    // A merged run is only as sound as its weakest shard.
    for problem in &meta.shard_problems {
        verdict = Verdict::Fail;
        reasons.push(problem.clone());
    }
    // An incident is never a pass, whatever the SLO file says; but a
    // drill's incidents are planned: its detection and recovery judge it.
    if let Some(sev @ (Severity::P1 | Severity::P2)) = severity
        && !is_drill
    {
        verdict = Verdict::Fail;
        reasons.extend(
            severity_reasons
                .iter()
                .map(|r| format!("severity {sev:?}: {r}")),
        );
    }
    if !meta.judge {
        // The reasons still say what is incomplete in this part.
        verdict = Verdict::NotJudged;
    }
    (verdict, reasons)
}

/// Whatever the SLO file says (or if there is none), a run in which
/// nothing succeeded cannot pass: why, when it is so, with what the
/// target answered.
pub fn nothing_succeeded(f: &crate::aggregate::Figures) -> Option<String> {
    let q = &f.requests;
    if q.total == 0 {
        Some("no request was measured".to_owned())
    } else if q.ok == 0 {
        Some(format!(
            "every request failed ({} of {}): {}",
            q.failed,
            q.total,
            failure_causes(f)
        ))
    } else {
        None
    }
}

/// What the failures were, most frequent first: the target's HTTP
/// statuses (`HTTP 503 from the target ×12`), then the causes without a
/// status (`connection_refused ×3`).
pub fn failure_causes(f: &crate::aggregate::Figures) -> String {
    let with_status: u64 = f.errors_by_status.values().sum();
    let mut causes: Vec<(String, u64)> = f
        .errors_by_status
        .iter()
        .map(|(s, &n)| (format!("HTTP {s} from the target"), n))
        .collect();
    // The statuses stand for the `http_status` cause (and any other
    // failure that had one); the rest are named by cause.
    let mut rest = with_status;
    for (cause, &n) in &f.errors_by_cause {
        let n = if cause == "http_status" {
            n.saturating_sub(std::mem::take(&mut rest))
        } else {
            n
        };
        if n > 0 {
            causes.push((cause.replace('_', " "), n));
        }
    }
    causes.sort_by_key(|c| std::cmp::Reverse(c.1));
    causes
        .iter()
        .map(|(c, n)| format!("{c} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why more requests cannot save a run: nothing succeeded though some
/// requests ended, or an objective on the success (or error) rate is
/// shown past its line by the rate's 95 % interval (Wilson's) under
/// `fail_on`. A run that sizes itself stops waiting for evidence then,
/// and a capacity step fails at once (see [`crate::capacity`]).
pub fn shown_failing(
    f: &crate::aggregate::Figures,
    objectives: &[crate::objective::Objective],
    fail_on: crate::objective::FailOn,
) -> Option<String> {
    let q = &f.requests;
    if q.total == 0 {
        return None;
    }
    if q.ok == 0 {
        return nothing_succeeded(f);
    }
    objectives
        .iter()
        .filter(|o| o.source == crate::objective::Source::Client)
        .find_map(|o| {
            let k = match o.metric.as_str() {
                "requests.success_rate" => q.ok,
                "requests.error_rate" => q.failed,
                _ => return None,
            };
            let interval = crate::evidence::proportion(k, q.total);
            match o.decide(&interval, q.total, fail_on) {
                crate::objective::Decision::Breach(bound, (level, line)) => Some(format!(
                    "{}: {} is {:.1}% of {} requests, 95% interval {}: its {} is past {line}% ({}); {}",
                    o.name,
                    o.metric,
                    k as f64 * 100.0 / q.total as f64,
                    q.total,
                    crate::format::interval(&interval),
                    bound.word(),
                    level.word(),
                    failure_causes(f)
                )),
                _ => None,
            }
        })
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetInfo {
    pub url: String,
    /// The reference server started in-process.
    pub embedded: bool,
    /// The wire format spoken (`chat-v1`, `openai-chat`, `template`).
    #[serde(default)]
    pub protocol: String,
    /// The names of the headers added to each request (never the values).
    #[serde(default)]
    pub headers: Vec<String>,
    /// The CA bundle trusted besides the system's, when one was given.
    #[serde(default)]
    pub ca_cert: Option<String>,
    /// TLS certificates were not verified (`--insecure`).
    #[serde(default)]
    pub tls_insecure: bool,
}

impl TargetInfo {
    /// What a reader must know about how the target was reached, said at
    /// the top of every report.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.tls_insecure {
            w.push(format!(
                "INSECURE: the TLS certificate of {} was not verified (--insecure / tls.insecure): anyone between the load generator and the target could have answered",
                self.url
            ));
        }
        w
    }
}

#[cfg(test)]
mod build_tests {
    use super::*;
    use crate::objective::Objective;
    use crate::record::{Outcome, RequestRecord};

    fn info() -> RunInfo {
        RunInfo {
            scenario: ScenarioInfo {
                name: "t".into(),
                file: "t.toml".into(),
                description: String::new(),
            },
            target: TargetInfo {
                url: "http://127.0.0.1:9".into(),
                ..TargetInfo::default()
            },
            load: Value::Null,
            started_at: String::new(),
            elapsed_s: 10.0,
            measured_s: 10.0,
            warmup_s: 0.0,
            interrupted: None,
            shard: None,
            judge: true,
            shards: Vec::new(),
            shard_problems: Vec::new(),
            events: Vec::new(),
            alerts: None,
            engine: Default::default(),
            windowed: Default::default(),
            server: ServerView::default(),
            self_check: SelfCheck {
                trustworthy: true,
                ..SelfCheck::default()
            },
            slo: None,
            gate: Gate::default(),
            open_model: false,
            files: Files::default(),
        }
    }

    fn run(ok: u64, failed: u64) -> Aggregate {
        let mut a = Aggregate::default();
        for i in 0..ok + failed {
            let good = i < ok;
            let record = RequestRecord {
                seq: i,
                start_us: i * 1000,
                first_token_us: good.then_some(1000),
                complete_us: good.then_some(2000),
                outcome: if good { Outcome::Ok } else { Outcome::Other },
                ..RequestRecord::default()
            };
            a.add(&record, &[]);
        }
        a
    }

    #[test]
    fn a_sound_run_passes_the_default_policy() {
        let r = build(info(), &run(100, 0));
        assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.verdict_reasons);
    }

    #[test]
    fn what_fails_a_run_whatever_the_slo_file_says() {
        let lenient = SloFile {
            objectives: vec![Objective {
                name: "anything".into(),
                metric: "requests.total".into(),
                source: Source::Client,
                direction: Direction::Min,
                target: 0.0,
                warning: None,
                critical: None,
                required: true,
                capacity: None,
                window: None,
                budget: None,
            }],
            name: "lenient".into(),
            description: String::new(),
        };
        let with = |i: RunInfo| RunInfo {
            slo: Some(("lenient.toml".into(), lenient.clone())),
            ..i
        };
        assert_eq!(build(with(info()), &run(10, 0)).verdict, Verdict::Pass);
        let interrupted = RunInfo {
            interrupted: Some("SIGTERM".into()),
            ..with(info())
        };
        let r = build(interrupted, &run(10, 0));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.verdict_reasons, ["the run did not complete: SIGTERM"]);
        let r = build(with(info()), &run(0, 0));
        assert_eq!(r.verdict_reasons, ["no request was measured"]);
        let r = build(with(info()), &run(0, 3));
        assert!(
            r.verdict_reasons
                .iter()
                .any(|r| r.starts_with("every request failed (3 of 3): ")),
            "{:?}",
            r.verdict_reasons
        );
        // A timeline event the target refused: the drill did not happen.
        let refused = RunInfo {
            events: vec![EventRecord {
                at_s: 2.0,
                name: "spike".into(),
                action: "faults: openai_rate = 1.5".into(),
                ok: false,
                detail: "HTTP 400".into(),
                expect: Vec::new(),
                mitigates: None,
                recover: None,
            }],
            ..with(info())
        };
        let r = build(refused, &run(10, 0));
        assert_eq!(
            r.verdict_reasons,
            ["timeline event spike (at 2 s) did not happen as written: HTTP 400"]
        );
        let untrusted = RunInfo {
            self_check: SelfCheck::not_recorded(),
            ..with(info())
        };
        assert_eq!(build(untrusted, &run(10, 0)).verdict, Verdict::Fail);
        // A drill whose alerts could not be evaluated (a target without the
        // guide's metrics) fails, and says why; so does one whose
        // Prometheus was never read.
        let spike = EventRecord {
            at_s: 2.0,
            name: "spike".into(),
            action: "faults: openai_rate = 0.5".into(),
            ok: true,
            detail: "HTTP 200".into(),
            expect: vec!["ChatbotErrorRateCritical".into()],
            mitigates: None,
            recover: None,
        };
        for judged_by in ["builtin", "prometheus"] {
            let blind = RunInfo {
                events: vec![spike.clone()],
                alerts: Some(crate::drill::AlertsSection {
                    judged_by: judged_by.into(),
                    interval_s: 1.0,
                    scale: 0.02,
                    problems: vec!["http://t/metrics has none of the guide's metrics".into()],
                    ..crate::drill::AlertsSection::default()
                }),
                ..with(info())
            };
            let r = build(blind, &run(10, 0));
            assert_eq!(r.verdict, Verdict::Fail);
            let all = r.verdict_reasons.join("\n");
            assert!(all.contains("none of the guide's metrics"), "{all}");
            assert!(all.contains("never fired after spike"), "{all}");
        }
    }

    #[test]
    fn goodput_takes_the_tightest_client_latency_target() {
        let o = |metric: &str, target: f64, source: Source| Objective {
            name: metric.into(),
            metric: metric.into(),
            source,
            direction: Direction::Max,
            target,
            warning: None,
            critical: None,
            required: true,
            capacity: None,
            window: None,
            budget: None,
        };
        let file = SloFile {
            objectives: vec![
                o(
                    "scheduled_latency_ms.first_token.p95",
                    800.0,
                    Source::Client,
                ),
                o("latency_ms.first_token.p99", 600.0, Source::Client),
                o("latency_ms.complete.p95", 5000.0, Source::Client),
                o("latency_after.firstToken.p95", 100.0, Source::Server),
                o("latency_ms.first_audio.count", 1.0, Source::Client),
            ],
            name: "goodput".into(),
            description: String::new(),
        };
        let l = goodput_limits(Some(&file));
        assert_eq!(l.first_token_ms, Some(600.0));
        assert_eq!(l.complete_ms, Some(5000.0));
        assert_eq!(l.first_audio_ms, None);
        assert_eq!(goodput_limits(None), GoodputLimits::default());
    }
}
