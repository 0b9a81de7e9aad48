//! The target's own view: its detailed metrics before and after the run,
//! its health during it, and the deltas, next to the client's figures. A
//! target without the guide's endpoints is fine: it is noted as such.

use serde_json::Value;
use slo::server_view::{
    GuideLatency, GuideSummary, HealthSample, ServerDelta, ServerErrors, ServerView, SystemView,
    Usage,
};
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
) -> ServerView {
    let max_active_streams = health.iter().filter_map(|h| h.active_streams).max();
    let answered = health.iter().any(|h| h.http_status.is_some());
    let count = |s: &str| answered.then(|| health.iter().filter(|h| h.status == s).count() as u64);
    let (health_unhealthy_samples, health_degraded_samples) =
        (count("unhealthy"), count("degraded"));
    let (b, a) = match (&before, &after) {
        (Ok(b), Ok(a)) => (b, a),
        _ => {
            let why = before.err().or(after.err()).unwrap_or_default();
            return ServerView {
                available: false,
                reason: Some(why),
                max_active_streams,
                health,
                health_unhealthy_samples,
                health_degraded_samples,
                ..ServerView::default()
            };
        }
    };
    let m0 = &b["metrics"];
    let m1 = &a["metrics"];
    let diff = |path: &[&str]| -> Option<u64> {
        let get = |v: &Value| path.iter().fold(v, |v, k| &v[*k]).as_u64();
        Some(get(m1)?.saturating_sub(get(m0)?))
    };
    let rate = |hits: Option<u64>, misses: Option<u64>| match (hits, misses) {
        (Some(h), Some(m)) if h + m > 0 => Some(h as f64 * 100.0 / (h + m) as f64),
        _ => None,
    };
    let (total, ok) = (
        diff(&["requests", "total"]),
        diff(&["requests", "successful"]),
    );
    let (kb_hits, kb_misses) = (
        diff(&["cache", "kb", "hits"]),
        diff(&["cache", "kb", "misses"]),
    );
    let (tts_hits, tts_misses) = (
        diff(&["cache", "tts", "hits"]),
        diff(&["cache", "tts", "misses"]),
    );
    let lat = &m1["latency"];
    let sys = system.as_ref().map(|s| &s["system"]);
    ServerView {
        available: true,
        reason: None,
        delta: Some(ServerDelta {
            requests: total,
            successful: ok,
            failed: diff(&["requests", "failed"]),
            success_rate: rate(ok, total.zip(ok).map(|(t, o)| t.saturating_sub(o))),
            errors: ServerErrors {
                openai: diff(&["errors", "openai"]),
                tts: diff(&["errors", "tts"]),
                network: diff(&["errors", "network"]),
                validation: diff(&["errors", "validation"]),
                other: diff(&["errors", "other"]),
            },
            kb_hits,
            kb_misses,
            kb_hit_rate: rate(kb_hits, kb_misses),
            tts_hits,
            tts_misses,
            tts_hit_rate: rate(tts_hits, tts_misses),
        }),
        latency_after: lat.is_object().then(|| GuideLatency {
            first_token: GuideSummary::from_json(&lat["firstToken"]),
            first_audio: GuideSummary::from_json(&lat["firstAudio"]),
            complete: GuideSummary::from_json(&lat["complete"]),
        }),
        before: m0.clone(),
        after: m1.clone(),
        system: sys.filter(|s| s.is_object()).map(|s| SystemView {
            memory: Usage::from_json(&s["memory"]),
            cpu: Usage::from_json(&s["cpu"]),
        }),
        max_active_streams,
        health,
        health_unhealthy_samples,
        health_degraded_samples,
    }
}
