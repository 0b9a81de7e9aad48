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

use crate::scenario::{FileError, line_of, read_text, toml_error};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

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
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Where a figure comes from: the load generator's own measurements or the
/// target's monitoring endpoints.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Client,
    Server,
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
}

/// One objective judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Judged {
    pub name: String,
    pub metric: String,
    pub source: Source,
    pub level: Level,
    pub value: Option<f64>,
    /// The level crossed (or the target, when `ok`).
    pub threshold: f64,
    /// How far the value is on the good side of `threshold` (negative: past it).
    pub margin: Option<f64>,
    /// Whether `no_data` fails the run (see [`Objective::required`]).
    #[serde(default = "yes")]
    pub required: bool,
}

impl SloFile {
    pub fn from_file(path: &Path) -> Result<SloFile, FileError> {
        SloFile::from_toml(&read_text(path, "SLO")?, &path.display().to_string())
    }

    pub fn from_toml(text: &str, file: &str) -> Result<SloFile, FileError> {
        let slo: SloFile = toml::from_str(text).map_err(|e| toml_error(e, file, text))?;
        for (i, o) in slo.objectives.iter().enumerate() {
            let checked = o.validate().and_then(|()| {
                crate::paths::check(o.source, &o.metric).map_err(|m| format!("metric: {m}"))
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
    fn validate(&self) -> Result<(), String> {
        if self.metric.trim().is_empty() {
            return Err("metric: a dotted path such as \"latency_ms.first_token.p95\"".into());
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

    /// Judges this objective against the client's and the server's figures.
    pub fn judge(&self, client: &Value, server: &Value) -> Judged {
        let doc = match self.source {
            Source::Client => client,
            Source::Server => server,
        };
        let value = lookup(doc, &self.metric);
        let beyond = |v: f64, limit: f64| match self.direction {
            Direction::Max => v > limit,
            Direction::Min => v < limit,
        };
        let (level, threshold) = match value {
            None => (Level::NoData, self.target),
            Some(v) => {
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
        };
        let margin = value.map(|v| match self.direction {
            Direction::Max => threshold - v,
            Direction::Min => v - threshold,
        });
        Judged {
            name: self.name.clone(),
            metric: self.metric.clone(),
            source: self.source,
            level,
            value,
            threshold,
            margin,
            required: self.required,
        }
    }
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
pub fn lookup(doc: &Value, path: &str) -> Option<f64> {
    let mut v = doc;
    for key in path.split('.') {
        v = v.get(key)?;
    }
    number(v)
}

impl Judged {
    /// Whether this objective fails the run: its level reached `fail_on`,
    /// or it was required and not measured (unless `allow_missing`).
    pub fn fails(&self, fail_on: FailOn, allow_missing: bool) -> bool {
        match self.level {
            Level::NoData => self.required && !allow_missing,
            level => fail_on.fails(level),
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
        }
    }

    #[test]
    fn levels_by_direction() {
        let o = first_token_p95();
        let at = |ms: f64| {
            o.judge(
                &json!({"latency_ms": {"first_token": {"p95": ms}}}),
                &json!({}),
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
            min.judge(&json!({}), &json!({"successRate": "99.2%"}))
                .level,
            Level::Ok
        );
        assert_eq!(
            min.judge(&json!({}), &json!({"successRate": "97.0%"}))
                .level,
            Level::Warning
        );
        assert_eq!(min.judge(&json!({}), &json!({})).level, Level::NoData);
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
    fn fail_on_policies() {
        assert!(FailOn::Target.fails(Level::TargetMissed));
        assert!(!FailOn::Warning.fails(Level::TargetMissed));
        assert!(FailOn::Warning.fails(Level::Warning));
        assert!(!FailOn::Critical.fails(Level::Warning));
        assert!(FailOn::Critical.fails(Level::Critical));
        assert!(!FailOn::Target.fails(Level::NoData));
    }
}
