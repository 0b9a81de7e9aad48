//! The target's own view: its detailed metrics before and after the run,
//! its health during it, and the deltas, next to the client's figures. A
//! target without the guide's endpoints is fine: it is noted as such.

use serde::Serialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub const METRICS: &str = "/api/metrics/streaming";
pub const HEALTH: &str = "/api/metrics/health/streaming";
pub const SYSTEM: &str = "/api/metrics/system";

#[derive(Clone, Debug)]
pub struct Scraper {
    client: reqwest::Client,
    base: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HealthSample {
    pub t: f64,
    pub status: String,
    pub http_status: Option<u16>,
    pub active_streams: Option<u64>,
}

impl Scraper {
    pub fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("a plain HTTP client builds"),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The JSON at `path`, or why not.
    pub async fn get(&self, path: &str) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .json::<Value>()
            .await
            .map_err(|e| format!("{url}: HTTP {status}, not JSON ({e})"))?;
        Ok((status, body))
    }

    /// Polls the health endpoint every `every` until aborted.
    pub async fn poll_health(
        self,
        started: Instant,
        every: Duration,
        out: Arc<Mutex<Vec<HealthSample>>>,
    ) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let t = started.elapsed().as_secs_f64();
            let sample = match self.get(HEALTH).await {
                Ok((code, v)) => HealthSample {
                    t,
                    status: v["status"].as_str().unwrap_or("unknown").to_owned(),
                    http_status: Some(code),
                    active_streams: v["checks"]["activeStreams"]["value"].as_u64(),
                },
                Err(_) => HealthSample {
                    t,
                    status: "unreachable".into(),
                    http_status: None,
                    active_streams: None,
                },
            };
            out.lock().expect("health lock").push(sample);
        }
    }
}

/// The `server` section of the report: what the target said, and the
/// source document for server-side objectives.
pub fn section(
    before: Result<Value, String>,
    after: Result<Value, String>,
    system: Option<Value>,
    health: Vec<HealthSample>,
) -> Value {
    let (b, a) = match (&before, &after) {
        (Ok(b), Ok(a)) => (b, a),
        _ => {
            let why = before.err().or(after.err()).unwrap_or_default();
            return json!({ "available": false, "reason": why, "health": health });
        }
    };
    let m0 = &b["metrics"];
    let m1 = &a["metrics"];
    let diff = |path: &[&str]| -> Value {
        let get = |v: &Value| path.iter().fold(v, |v, k| &v[*k]).as_u64();
        match (get(m0), get(m1)) {
            (Some(x), Some(y)) => json!(y.saturating_sub(x)),
            _ => Value::Null,
        }
    };
    let rate = |hits: &Value, misses: &Value| match (hits.as_u64(), misses.as_u64()) {
        (Some(h), Some(m)) if h + m > 0 => json!(h as f64 * 100.0 / (h + m) as f64),
        _ => Value::Null,
    };
    let (total, ok) = (
        diff(&["requests", "total"]),
        diff(&["requests", "successful"]),
    );
    let (kb_h, kb_m) = (
        diff(&["cache", "kb", "hits"]),
        diff(&["cache", "kb", "misses"]),
    );
    let (tts_h, tts_m) = (
        diff(&["cache", "tts", "hits"]),
        diff(&["cache", "tts", "misses"]),
    );
    let success_rate = match (total.as_u64(), ok.as_u64()) {
        (Some(t), Some(o)) if t > 0 => json!(o as f64 * 100.0 / t as f64),
        _ => Value::Null,
    };
    let max_active = health.iter().filter_map(|h| h.active_streams).max();
    let unhealthy = health.iter().filter(|h| h.status == "unhealthy").count();
    let degraded = health.iter().filter(|h| h.status == "degraded").count();
    json!({
        "available": true,
        "delta": {
            "requests": total,
            "successful": ok,
            "failed": diff(&["requests", "failed"]),
            "success_rate": success_rate,
            "errors": {
                "openai": diff(&["errors", "openai"]),
                "tts": diff(&["errors", "tts"]),
                "network": diff(&["errors", "network"]),
                "validation": diff(&["errors", "validation"]),
                "other": diff(&["errors", "other"]),
            },
            "kb_hits": kb_h, "kb_misses": kb_m, "kb_hit_rate": rate(&kb_h, &kb_m),
            "tts_hits": tts_h, "tts_misses": tts_m, "tts_hit_rate": rate(&tts_h, &tts_m),
        },
        "latency_after": m1["latency"],
        "before": m0,
        "after": m1,
        "system": system.map(|s| s["system"].clone()).unwrap_or(Value::Null),
        "max_active_streams": max_active,
        "health": health,
        "health_unhealthy_samples": unhealthy,
        "health_degraded_samples": degraded,
    })
}
