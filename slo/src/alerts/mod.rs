//! The guide's alert rules and health check, evaluated on one poll of the
//! monitoring endpoints (health, summary, detailed metrics).

pub mod eval;
pub mod rules;

use crate::monitoring::{Detailed, Health, HealthStatus, Summary, thresholds::*};
use serde::Serialize;

/// The level of one of our alert rules, as its `severity` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    Warning,
    Critical,
}

impl AlertSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for AlertSeverity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Stable key: a firing alert with the same key is the same alert.
    pub key: &'static str,
    pub severity: AlertSeverity,
    pub message: String,
}

/// What one poll read; `None` where an endpoint gave no answer of its type.
#[derive(Clone, Debug, Default)]
pub struct Poll {
    pub health: Option<Health>,
    pub summary: Option<Summary>,
    pub detailed: Option<Detailed>,
    /// Why the target could not be read, if it could not.
    pub unreachable: Option<String>,
    /// Error rate over the alert window, percent, when known.
    pub error_rate: Option<f64>,
}

/// The rules of the guide's "Alert Rules": error rate > 2 % (critical > 5 %),
/// p95 first token > 1000 ms (critical > 2000), KB cache hit rate < 40 %
/// (critical < 20 %), active streams > 200 (critical > 500), and the health
/// status itself (degraded: warning, unhealthy: critical).
pub fn evaluate(p: &Poll) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(why) = &p.unreachable {
        out.push(Alert {
            key: "unreachable",
            severity: AlertSeverity::Critical,
            message: format!("the target cannot be read: {why}"),
        });
        return out;
    }
    if let Some(h) = &p.health
        && h.status != HealthStatus::Healthy
    {
        out.push(Alert {
            key: "health",
            severity: if h.status == HealthStatus::Unhealthy {
                AlertSeverity::Critical
            } else {
                AlertSeverity::Warning
            },
            message: format!(
                "health status is {}{}",
                h.status.as_str(),
                if h.issues.is_empty() {
                    String::new()
                } else {
                    format!(": {}", h.issues.join("; "))
                }
            ),
        });
    }
    let mut level = |key: &'static str,
                     what: &str,
                     v: Option<f64>,
                     warn: f64,
                     crit: f64,
                     above: bool,
                     unit: &str| {
        let Some(v) = v else { return };
        let beyond = |l: f64| if above { v > l } else { v < l };
        let (sev, limit) = if beyond(crit) {
            (AlertSeverity::Critical, crit)
        } else if beyond(warn) {
            (AlertSeverity::Warning, warn)
        } else {
            return;
        };
        out.push(Alert {
            key,
            severity: sev,
            message: format!(
                "{what} is {v:.1}{unit} (threshold: {} {limit}{unit})",
                if above { ">" } else { "<" }
            ),
        });
    };
    level(
        "error_rate",
        "error rate",
        p.error_rate,
        ERROR_RATE_WARN,
        ERROR_RATE_FAIL,
        true,
        "%",
    );
    let d = p.detailed.as_ref().map(|d| &d.metrics);
    level(
        "first_token_p95",
        "p95 first token latency",
        d.map(|d| d.latency.first_token.p95 as f64),
        FIRST_TOKEN_P95_WARN_MS as f64,
        FIRST_TOKEN_P95_FAIL_MS as f64,
        true,
        "ms",
    );
    if let Some(kb) = d.map(|d| &d.cache.kb)
        && kb.hits.saturating_add(kb.misses) > 0
    {
        level(
            "kb_hit_rate",
            "KB cache hit rate",
            crate::format::percent_value(&kb.hit_rate),
            KB_HIT_RATE_WARN,
            KB_HIT_RATE_FAIL,
            false,
            "%",
        );
    }
    level(
        "active_streams",
        "active streams",
        p.summary.as_ref().map(|s| s.summary.active_streams as f64),
        ACTIVE_STREAMS_WARN as f64,
        ACTIVE_STREAMS_FAIL as f64,
        true,
        "",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::{CacheCounts, examples};

    fn poll(ended: u64, failed: u64, p95: u64, active: u64, kb: (u64, u64)) -> Poll {
        let health = examples::health(ended, failed, p95, active);
        let mut summary = examples::summary();
        summary.summary.active_streams = active;
        let mut detailed = examples::detailed();
        detailed.metrics.latency.first_token.p95 = p95;
        detailed.metrics.cache.kb = CacheCounts::new(kb.0, kb.1);
        Poll {
            health: Some(health),
            summary: Some(summary),
            detailed: Some(detailed),
            unreachable: None,
            error_rate: Some(failed as f64 * 100.0 / ended as f64),
        }
    }

    #[test]
    fn the_guides_rules() {
        assert!(evaluate(&poll(200, 1, 680, 12, (65, 35))).is_empty());
        let a = evaluate(&poll(100, 3, 1200, 600, (3, 97)));
        let keys: Vec<(&str, &str)> = a.iter().map(|x| (x.key, x.severity.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                ("health", "critical"),
                ("error_rate", "warning"),
                ("first_token_p95", "warning"),
                ("kb_hit_rate", "critical"),
                ("active_streams", "critical")
            ]
        );
        assert!(a[0].message.contains("p95 first token latency 1200ms"));
        assert!(a[3].message.contains("3.0% (threshold: < 20%)"), "{a:?}");
        // No KB lookup yet: no hit-rate alert.
        assert!(evaluate(&poll(200, 1, 680, 12, (0, 0))).is_empty());
        let down = Poll {
            unreachable: Some("connection refused".into()),
            ..Poll::default()
        };
        assert_eq!(evaluate(&down)[0].key, "unreachable");
    }
}
