//! The guide's alert rules and health check, evaluated on one poll of the
//! monitoring endpoints (health, summary, detailed metrics).

use crate::objective::lookup;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Stable key: a firing alert with the same key is the same alert.
    pub key: &'static str,
    pub severity: &'static str,
    pub message: String,
}

/// What one poll saw; `None` where an endpoint did not answer with JSON.
#[derive(Clone, Debug, Default)]
pub struct Poll {
    pub health: Option<Value>,
    pub summary: Option<Value>,
    pub detailed: Option<Value>,
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
            severity: "critical",
            message: format!("the target cannot be reached: {why}"),
        });
        return out;
    }
    if let Some(h) = &p.health {
        match h["status"].as_str() {
            Some("healthy") => {}
            Some(status) => {
                let issues: Vec<&str> = h["issues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                out.push(Alert {
                    key: "health",
                    severity: if status == "unhealthy" {
                        "critical"
                    } else {
                        "warning"
                    },
                    message: format!(
                        "health status is {status}{}",
                        if issues.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", issues.join("; "))
                        }
                    ),
                });
            }
            None => out.push(Alert {
                key: "health",
                severity: "critical",
                message: "the health endpoint has no status".into(),
            }),
        }
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
            ("critical", crit)
        } else if beyond(warn) {
            ("warning", warn)
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
        2.0,
        5.0,
        true,
        "%",
    );
    let d = p.detailed.as_ref();
    level(
        "first_token_p95",
        "p95 first token latency",
        d.and_then(|d| lookup(d, "metrics.latency.firstToken.p95")),
        1000.0,
        2000.0,
        true,
        "ms",
    );
    let kb_lookups = d.map_or(0.0, |d| {
        lookup(d, "metrics.cache.kb.hits").unwrap_or(0.0)
            + lookup(d, "metrics.cache.kb.misses").unwrap_or(0.0)
    });
    if kb_lookups > 0.0 {
        level(
            "kb_hit_rate",
            "KB cache hit rate",
            d.and_then(|d| lookup(d, "metrics.cache.kb.hitRate")),
            40.0,
            20.0,
            false,
            "%",
        );
    }
    level(
        "active_streams",
        "active streams",
        p.summary
            .as_ref()
            .and_then(|s| lookup(s, "summary.activeStreams")),
        200.0,
        500.0,
        true,
        "",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_guides_rules() {
        let calm = Poll {
            health: Some(json!({"status": "healthy", "issues": []})),
            summary: Some(json!({"summary": {"activeStreams": 12}})),
            detailed: Some(
                json!({"metrics": {"latency": {"firstToken": {"p95": 680}}, "cache": {"kb": {"hits": 65, "misses": 35, "hitRate": "65.0%"}}}}),
            ),
            unreachable: None,
            error_rate: Some(0.5),
        };
        assert!(evaluate(&calm).is_empty());
        let bad = Poll {
            health: Some(
                json!({"status": "degraded", "issues": ["p95 first token latency 1200ms is above 1000ms (warning)"]}),
            ),
            summary: Some(json!({"summary": {"activeStreams": 600}})),
            detailed: Some(
                json!({"metrics": {"latency": {"firstToken": {"p95": 1200}}, "cache": {"kb": {"hits": 3, "misses": 97, "hitRate": "3.0%"}}}}),
            ),
            unreachable: None,
            error_rate: Some(3.0),
        };
        let a = evaluate(&bad);
        let keys: Vec<(&str, &str)> = a.iter().map(|x| (x.key, x.severity)).collect();
        assert_eq!(
            keys,
            vec![
                ("health", "warning"),
                ("error_rate", "warning"),
                ("first_token_p95", "warning"),
                ("kb_hit_rate", "critical"),
                ("active_streams", "critical")
            ]
        );
        assert!(a[0].message.contains("p95 first token latency 1200ms"));
        let down = Poll {
            unreachable: Some("connection refused".into()),
            ..Poll::default()
        };
        assert_eq!(evaluate(&down)[0].key, "unreachable");
    }
}
