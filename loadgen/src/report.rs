//! Turning a run's figures into `report.json` and the reports for people
//! (`report.md`, `junit.xml`, `report.html`); shared by `run` and by
//! `loadgen report DIR`, which rebuilds them from the saved files.

use anyhow::Context;
use serde_json::{Value, json};
use slo::aggregate::{Aggregate, GoodputLimits};
use slo::objective::{Direction, Gate, Judged, SloFile, Source};
use slo::report::{Report, ScenarioInfo, TargetInfo, Verdict};
use slo::severity::Severity;
use std::path::{Path, PathBuf};

pub const REPORT_JSON: &str = "report.json";
pub const REPORT_MD: &str = "report.md";
pub const JUNIT_XML: &str = "junit.xml";
pub const REPORT_HTML: &str = "report.html";

/// What a report says besides the figures.
#[derive(Debug, Clone)]
pub struct Meta {
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    pub load: Value,
    pub started_at: String,
    pub elapsed_s: f64,
    pub measured_s: f64,
    pub warmup_s: f64,
    pub interrupted: Option<String>,
    pub server: Value,
    pub self_check: Value,
    pub slo: Option<(PathBuf, SloFile)>,
    /// What fails the run.
    pub gate: Gate,
    pub open_model: bool,
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

pub fn build(meta: Meta, agg: &Aggregate) -> Report {
    let figures = agg.figures(
        std::time::Duration::from_secs_f64(meta.measured_s),
        meta.open_model,
    );
    let client_doc = serde_json::to_value(&figures).expect("figures serialize");
    // No SLO file: the documented default policy judges the run.
    let default_policy = slo::objective::default_policy();
    let policy = meta.slo.as_ref().map_or(&default_policy, |(_, f)| f);
    let judged: Vec<Judged> = policy
        .objectives
        .iter()
        .map(|o| o.judge(&client_doc, &meta.server, meta.gate.fail_on))
        .collect();
    let trustworthy = meta.self_check["trustworthy"] != false;
    let untrusted: Vec<String> = meta.self_check["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let (mut verdict, mut reasons) =
        slo::report::verdict(&judged, &meta.gate, trustworthy, &untrusted);
    if let Some(why) = &meta.interrupted {
        verdict = Verdict::Fail;
        reasons.push(format!("the run did not complete: {why}"));
    }
    // Whatever the SLO file says (or if there is none), a run in which
    // nothing succeeded cannot pass.
    let q = &figures.requests;
    if q.total == 0 {
        verdict = Verdict::Fail;
        reasons.push("no request was measured".to_owned());
    } else if q.ok == 0 {
        verdict = Verdict::Fail;
        reasons.push(format!("all {} requests failed", q.total));
    }
    let (severity, severity_reasons) = slo::severity::classify(&figures, &judged);
    // An incident is never a pass, whatever the SLO file says.
    if let Some(sev @ (Severity::P1 | Severity::P2)) = severity {
        verdict = Verdict::Fail;
        reasons.extend(
            severity_reasons
                .iter()
                .map(|r| format!("severity {sev:?}: {r}")),
        );
    }
    Report {
        schema_version: slo::report::SCHEMA_VERSION,
        verdict,
        verdict_reasons: reasons,
        scenario: meta.scenario,
        target: meta.target,
        load: meta.load,
        started_at: meta.started_at,
        elapsed_s: meta.elapsed_s,
        measured_s: meta.measured_s,
        warmup_s: meta.warmup_s,
        interrupted: meta.interrupted,
        figures,
        timeseries: agg.series(),
        server: meta.server,
        self_check: meta.self_check,
        slo_file: meta.slo.as_ref().map(|(p, _)| p.display().to_string()),
        fail_on: meta.gate.fail_on,
        allow_missing: meta.gate.allow_missing,
        accept_inconclusive: meta.gate.accept_inconclusive,
        slo: judged,
        severity,
        severity_reasons,
        files: json!({
            "csv": crate::recorder::CSV_FILE,
            "interval_log": crate::recorder::HLOG_FILE,
            "goose_html": "goose.html",
            "goose_json": "goose.json",
            "report": REPORT_JSON,
            "markdown": REPORT_MD,
            "junit": JUNIT_XML,
            "html": REPORT_HTML,
        }),
    }
}

/// Writes `report.json`, `report.md`, `junit.xml` and `report.html`.
pub fn write_all(out: &Path, r: &Report) -> anyhow::Result<()> {
    let files = [
        (
            REPORT_JSON,
            serde_json::to_string_pretty(r).expect("the report serializes"),
        ),
        (REPORT_MD, slo::render::markdown::render(r)),
        (JUNIT_XML, slo::render::junit::render(r)),
        (REPORT_HTML, slo::render::html::render(r)),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
