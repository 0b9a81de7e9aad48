//! `report.json`: the whole result of a run, the contract CI jobs read.
//! Stable keys: `verdict`, `latency_ms.{first_token,first_audio,complete}`
//! with `p50`, `p95`, `p99`, `max`, `count` (and `corrected` under an open
//! model), `requests.{total,ok,failed}`, `errors` by type, `slo`.

use crate::aggregate::{Figures, Second};
use crate::objective::{FailOn, Gate, Judged, Level};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
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
    #[serde(flatten)]
    pub figures: Figures,
    pub timeseries: Vec<Second>,
    /// The target's own metrics (see the README).
    pub server: Value,
    pub self_check: Value,
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
    pub files: Value,
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
        .map(|j| match j.level {
            Level::Inconclusive => format!(
                "{}: {} is inconclusive: {} samples, 95% interval {}; about {} samples would decide it (pass --accept-inconclusive to accept it)",
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
                "{}: {} is {} (threshold {})",
                j.name,
                j.value.map_or("no data".to_owned(), |v| format!("{v:.2}")),
                match level {
                    Level::Critical => "critical",
                    Level::Warning => "at warning",
                    _ => "past its target",
                },
                j.threshold
            ),
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

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub description: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetInfo {
    pub url: String,
    /// The reference server started in-process.
    pub embedded: bool,
}
