//! Everything the server counts, and the monitoring endpoints' JSON built
//! from it, key for key as in the monitoring guide. One lock guards the
//! counters and histograms; it is taken once when a request starts and
//! once when it ends, never per token.

use crate::system::SystemSnapshot;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use slo::format::{percent, ratio_percent, uptime};
use slo::histogram::LatencyHistogram;
use slo::protocol::ErrorKind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The health endpoint judges the last five minutes, like the guide's
/// error-rate alert.
pub const HEALTH_WINDOW: Duration = Duration::from_secs(300);
const WINDOW_CAP: usize = 100_000;

/// Latency buckets in seconds: they resolve every target, warning and
/// critical level of the guide (0.5/1/2 s first token, 1.5/2/3 s first
/// audio, 3/5/8 s complete).
pub const BUCKETS: [f64; 15] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 15.0, 30.0,
];

type Labels = Vec<(String, String)>;

/// The health check levels (guide, "Key Performance Indicators").
pub mod thresholds {
    pub const ERROR_RATE_WARN: f64 = 2.0;
    pub const ERROR_RATE_FAIL: f64 = 5.0;
    pub const FIRST_TOKEN_P95_WARN_MS: u64 = 1000;
    pub const FIRST_TOKEN_P95_FAIL_MS: u64 = 2000;
    pub const ACTIVE_STREAMS_WARN: u64 = 200;
    pub const ACTIVE_STREAMS_FAIL: u64 = 500;
    pub const MEMORY_WARN: f64 = 80.0;
    pub const MEMORY_FAIL: f64 = 90.0;
    pub const CPU_WARN: f64 = 80.0;
    pub const CPU_FAIL: f64 = 90.0;
}

#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    active: AtomicU64,
    state: Mutex<State>,
    events: Mutex<VecDeque<Value>>,
    events_capacity: usize,
    system: Mutex<SystemSnapshot>,
    registry: Registry,
    prom: Prom,
    cache_backend: &'static str,
}

#[derive(Debug, Default)]
struct State {
    total: u64,
    successful: u64,
    failed: u64,
    errors: [u64; 5],
    streams_total: u64,
    streams_completed: u64,
    streams_failed: u64,
    kb: HitMiss,
    tts: HitMiss,
    first_token: LatencyHistogram,
    first_audio: LatencyHistogram,
    complete: LatencyHistogram,
    window: VecDeque<Recent>,
}

#[derive(Debug, Default, Clone, Copy)]
struct HitMiss {
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Recent {
    at: Instant,
    ok: bool,
    first_token_us: u64,
}

#[derive(Debug)]
struct Prom {
    requests: Counter,
    success: Counter,
    failed: Counter,
    errors: Family<Labels, Counter>,
    cache_hits: Family<Labels, Counter>,
    cache_misses: Family<Labels, Counter>,
    active: Gauge,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    rollout: Gauge,
    rss: Gauge,
    memory_limit: Gauge,
    cpu: Counter<f64, AtomicU64>,
    cpu_usage: Gauge<f64, AtomicU64>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// How one successful request went, measured by the server.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    pub first_token: Duration,
    pub first_audio: Option<Duration>,
    pub complete: Duration,
}

impl Metrics {
    pub fn new(events_capacity: usize, cache_backend: &'static str) -> Self {
        let prom = Prom {
            requests: Counter::default(),
            success: Counter::default(),
            failed: Counter::default(),
            errors: Family::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            active: Gauge::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rollout: Gauge::default(),
            rss: Gauge::default(),
            memory_limit: Gauge::default(),
            cpu: Counter::default(),
            cpu_usage: Gauge::default(),
        };
        let mut r = Registry::default();
        r.register(
            "chatbot_requests",
            "Chat requests received",
            prom.requests.clone(),
        );
        r.register(
            "chatbot_requests_success",
            "Chat requests answered in full",
            prom.success.clone(),
        );
        r.register(
            "chatbot_requests_failed",
            "Chat requests that failed",
            prom.failed.clone(),
        );
        r.register(
            "chatbot_errors",
            "Failed requests by the guide's error type",
            prom.errors.clone(),
        );
        r.register(
            "chatbot_cache_hits",
            "Cache hits by cache (kb, tts)",
            prom.cache_hits.clone(),
        );
        r.register(
            "chatbot_cache_misses",
            "Cache misses by cache (kb, tts)",
            prom.cache_misses.clone(),
        );
        r.register(
            "chatbot_active_streams",
            "Requests being answered now",
            prom.active.clone(),
        );
        r.register(
            "chatbot_latency_seconds",
            "Server-side latency from request received, by stage (first_token, first_audio, complete)",
            prom.latency.clone(),
        );
        r.register(
            "chatbot_streaming_rollout_percent",
            "Rollout percentage of the streaming feature",
            prom.rollout.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            prom.rss.clone(),
        );
        r.register(
            "process_memory_limit_bytes",
            "Memory allocated to the process (cgroup limit or machine total)",
            prom.memory_limit.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "CPU time used by the server process",
            prom.cpu.clone(),
        );
        r.register(
            "process_cpu_usage_ratio",
            "CPU use over the last second as a share of all cores (0-1)",
            prom.cpu_usage.clone(),
        );
        for kind in ErrorKind::ALL {
            let _ = prom.errors.get_or_create(&label("type", kind.as_str()));
        }
        for stage in ["first_token", "first_audio", "complete"] {
            let _ = prom.latency.get_or_create(&label("stage", stage));
        }
        for cache in ["kb", "tts"] {
            let _ = prom.cache_hits.get_or_create(&label("cache", cache));
            let _ = prom.cache_misses.get_or_create(&label("cache", cache));
        }
        Self {
            started: Instant::now(),
            active: AtomicU64::new(0),
            state: Mutex::default(),
            events: Mutex::new(VecDeque::with_capacity(events_capacity.min(4096))),
            events_capacity,
            system: Mutex::default(),
            registry: r,
            prom,
            cache_backend,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("metrics lock")
    }

    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// A request turned away before it started (validation, overload).
    pub fn rejected(&self, kind: ErrorKind, message: &str) {
        let mut s = self.state();
        s.total += 1;
        s.failed += 1;
        s.errors[kind.index()] += 1;
        s.push_recent(false, 0);
        drop(s);
        self.prom.requests.inc();
        self.prom.failed.inc();
        self.prom
            .errors
            .get_or_create(&label("type", kind.as_str()))
            .inc();
        self.event(json!({
            "timestamp": now_iso(),
            "type": "error",
            "clientId": null,
            "chatbotId": null,
            "error": { "type": kind.as_str(), "message": message },
        }));
    }

    /// A request starts being answered, unless `max_active` requests are
    /// being answered already (then `None`: the caller answers 503). The
    /// guard ends it.
    pub fn try_begin(
        self: &Arc<Self>,
        max_active: u64,
        streaming: bool,
        client_id: &str,
        chatbot_id: &str,
    ) -> Option<StreamGuard> {
        let active = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_active).then_some(n + 1)
            })
            .ok()?
            + 1;
        {
            let mut s = self.state();
            s.total += 1;
            if streaming {
                s.streams_total += 1;
            }
        }
        self.prom.requests.inc();
        self.prom.active.set(active as i64);
        self.event(json!({
            "timestamp": now_iso(),
            "type": "stream_start",
            "clientId": client_id,
            "chatbotId": chatbot_id,
            "streaming": streaming,
        }));
        Some(StreamGuard {
            metrics: Arc::clone(self),
            streaming,
            client_id: client_id.to_owned(),
            chatbot_id: chatbot_id.to_owned(),
            finished: false,
        })
    }

    /// [`Metrics::try_begin`] without a limit.
    pub fn begin(
        self: &Arc<Self>,
        streaming: bool,
        client_id: &str,
        chatbot_id: &str,
    ) -> StreamGuard {
        self.try_begin(u64::MAX, streaming, client_id, chatbot_id)
            .expect("no limit")
    }

    pub fn kb_lookup(&self, hit: bool) {
        self.state().kb.count(hit);
        self.prom_cache("kb", hit);
    }

    pub fn tts_lookup(&self, hit: bool) {
        self.state().tts.count(hit);
        self.prom_cache("tts", hit);
    }

    fn prom_cache(&self, cache: &str, hit: bool) {
        let family = if hit {
            &self.prom.cache_hits
        } else {
            &self.prom.cache_misses
        };
        family.get_or_create(&label("cache", cache)).inc();
    }

    pub fn set_rollout(&self, percentage: u8) {
        self.prom.rollout.set(i64::from(percentage));
    }

    pub fn set_system(&self, snap: SystemSnapshot) {
        let previous = std::mem::replace(&mut *self.system.lock().expect("system lock"), snap);
        self.prom
            .rss
            .set(i64::try_from(snap.rss_bytes).unwrap_or(i64::MAX));
        self.prom
            .memory_limit
            .set(i64::try_from(snap.limit_bytes).unwrap_or(i64::MAX));
        let delta = snap.cpu_seconds - previous.cpu_seconds;
        if delta > 0.0 {
            self.prom.cpu.inc_by(delta);
        }
        self.prom.cpu_usage.set(snap.cpu_percent / 100.0);
    }

    pub fn system(&self) -> SystemSnapshot {
        *self.system.lock().expect("system lock")
    }

    /// Appends to the recent-events ring.
    pub fn event(&self, event: Value) {
        if self.events_capacity == 0 {
            return;
        }
        let mut ev = self.events.lock().expect("events lock");
        if ev.len() == self.events_capacity {
            ev.pop_front();
        }
        ev.push_back(event);
    }

    fn finish(&self, streaming: bool, outcome: Result<Timings, ErrorKind>) {
        let active = self.active.fetch_sub(1, Ordering::Relaxed) - 1;
        self.prom.active.set(active as i64);
        let mut s = self.state();
        match outcome {
            Ok(t) => {
                s.successful += 1;
                if streaming {
                    s.streams_completed += 1;
                }
                s.first_token.record(t.first_token);
                if let Some(a) = t.first_audio {
                    s.first_audio.record(a);
                }
                s.complete.record(t.complete);
                s.push_recent(true, t.first_token.as_micros() as u64);
                drop(s);
                self.prom.success.inc();
                let obs = |stage: &str, d: Duration| {
                    self.prom
                        .latency
                        .get_or_create(&label("stage", stage))
                        .observe(d.as_secs_f64());
                };
                obs("first_token", t.first_token);
                if let Some(a) = t.first_audio {
                    obs("first_audio", a);
                }
                obs("complete", t.complete);
            }
            Err(kind) => {
                s.failed += 1;
                s.errors[kind.index()] += 1;
                if streaming {
                    s.streams_failed += 1;
                }
                s.push_recent(false, 0);
                drop(s);
                self.prom.failed.inc();
                self.prom
                    .errors
                    .get_or_create(&label("type", kind.as_str()))
                    .inc();
            }
        }
    }

    /// `GET /api/metrics/health/streaming`: the body and whether the
    /// server is unhealthy (HTTP 503).
    pub fn health(&self) -> (Value, bool) {
        use thresholds::*;
        let active = self.active();
        let (count, failed, p95_ms) = {
            let mut s = self.state();
            s.prune(Instant::now());
            let count = s.window.len() as u64;
            let failed = s.window.iter().filter(|r| !r.ok).count() as u64;
            let mut ft: Vec<u64> = s
                .window
                .iter()
                .filter(|r| r.ok)
                .map(|r| r.first_token_us)
                .collect();
            (count, failed, p95_ms(&mut ft))
        };
        let error_rate = ratio_percent(failed, count, 0.0);
        let mut issues = Vec::new();
        let mut level = Level::Pass;
        let mut check = |status: Level, issue: String| {
            if status != Level::Pass {
                issues.push(issue);
            }
            level = level.max(status);
            status.as_str()
        };
        let error_status = check(
            Level::of(error_rate > ERROR_RATE_WARN, error_rate > ERROR_RATE_FAIL),
            format!(
                "error rate {error_rate:.1}% over the last {} minutes is above {}",
                HEALTH_WINDOW.as_secs() / 60,
                if error_rate > ERROR_RATE_FAIL {
                    "5% (critical)"
                } else {
                    "2% (warning)"
                }
            ),
        );
        let latency_status = check(
            Level::of(
                p95_ms > FIRST_TOKEN_P95_WARN_MS,
                p95_ms > FIRST_TOKEN_P95_FAIL_MS,
            ),
            format!(
                "p95 first token latency {p95_ms}ms is above {}",
                if p95_ms > FIRST_TOKEN_P95_FAIL_MS {
                    "2000ms (critical)"
                } else {
                    "1000ms (warning)"
                }
            ),
        );
        let streams_status = check(
            Level::of(active > ACTIVE_STREAMS_WARN, active > ACTIVE_STREAMS_FAIL),
            format!(
                "{active} active streams is above {}",
                if active > ACTIVE_STREAMS_FAIL {
                    "500 (critical)"
                } else {
                    "200 (warning)"
                }
            ),
        );
        let body = json!({
            "success": true,
            "status": level.health(),
            "timestamp": now_iso(),
            "checks": {
                "errorRate": {
                    "status": error_status,
                    "value": format!("{error_rate:.1}%"),
                    "threshold": "≤5%",
                },
                "latency": {
                    "status": latency_status,
                    "value": format!("{p95_ms}ms"),
                    "threshold": "≤1000ms",
                },
                "redis": { "status": "pass", "value": self.cache_backend },
                "activeStreams": { "status": streams_status, "value": active },
            },
            "issues": issues,
        });
        (body, level == Level::Fail)
    }

    /// `GET /api/metrics/streaming/summary`.
    pub fn summary(&self) -> Value {
        let active = self.active();
        let s = self.state();
        json!({
            "success": true,
            "timestamp": now_iso(),
            "summary": {
                "uptime": uptime(self.uptime_secs()),
                "totalRequests": s.total,
                "successRate": percent(s.successful, s.total, 1, 100.0),
                "activeStreams": active,
                "avgFirstTokenLatency": s.first_token.summary_ms().avg,
                "avgCompleteLatency": s.complete.summary_ms().avg,
                "cacheHitRate": {
                    "kb": s.kb.rate(),
                    "tts": s.tts.rate(),
                },
                "errorCount": s.failed,
            }
        })
    }

    /// `GET /api/metrics/streaming`.
    pub fn detailed(&self) -> Value {
        let active = self.active();
        let s = self.state();
        let error_total: u64 = s.errors.iter().sum();
        let errors = |k: ErrorKind| s.errors[k.index()];
        let share = |k: ErrorKind| percent(errors(k), error_total, 1, 0.0);
        let up = self.uptime_secs();
        json!({
            "success": true,
            "timestamp": now_iso(),
            "metrics": {
                "uptime": up,
                "uptimeFormatted": uptime(up),
                "requests": {
                    "total": s.total,
                    "successful": s.successful,
                    "failed": s.failed,
                    "active": active,
                    "successRate": percent(s.successful, s.total, 2, 100.0),
                },
                "latency": {
                    "firstToken": s.first_token.summary_ms(),
                    "firstAudio": s.first_audio.summary_ms(),
                    "complete": s.complete.summary_ms(),
                },
                "cache": {
                    "kb": s.kb.json(),
                    "tts": s.tts.json(),
                },
                "errors": {
                    "openai": errors(ErrorKind::Openai),
                    "tts": errors(ErrorKind::Tts),
                    "network": errors(ErrorKind::Network),
                    "validation": errors(ErrorKind::Validation),
                    "other": errors(ErrorKind::Other),
                    "breakdown": {
                        "openai": share(ErrorKind::Openai),
                        "tts": share(ErrorKind::Tts),
                        "network": share(ErrorKind::Network),
                        "validation": share(ErrorKind::Validation),
                        "other": share(ErrorKind::Other),
                    }
                },
                "streaming": {
                    "totalStreams": s.streams_total,
                    "activeCount": active,
                    "completedCount": s.streams_completed,
                    "errorCount": s.streams_failed,
                }
            }
        })
    }

    /// `GET /api/metrics/streaming/events?limit=N`, newest first.
    pub fn events(&self, limit: usize) -> Value {
        let ev = self.events.lock().expect("events lock");
        let events: Vec<&Value> = ev.iter().rev().take(limit).collect();
        json!({
            "success": true,
            "timestamp": now_iso(),
            "count": events.len(),
            "events": events,
        })
    }

    /// `GET /api/metrics/system`: memory and CPU against the guide's
    /// "System Health" levels.
    pub fn system_json(&self) -> Value {
        use thresholds::*;
        let snap = self.system();
        let mem = snap.memory_percent();
        let cpu = snap.cpu_percent;
        json!({
            "success": true,
            "timestamp": now_iso(),
            "system": {
                "memory": {
                    "rssBytes": snap.rss_bytes,
                    "limitBytes": snap.limit_bytes,
                    "usage": format!("{mem:.1}%"),
                    "status": Level::of(mem > MEMORY_WARN, mem > MEMORY_FAIL).as_str(),
                },
                "cpu": {
                    "usage": format!("{cpu:.1}%"),
                    "cores": snap.cores,
                    "cpuSeconds": snap.cpu_seconds,
                    "status": Level::of(cpu > CPU_WARN, cpu > CPU_FAIL).as_str(),
                },
            }
        })
    }

    /// `GET /metrics` in the Prometheus text exposition format (0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

impl State {
    fn push_recent(&mut self, ok: bool, first_token_us: u64) {
        let now = Instant::now();
        self.prune(now);
        if self.window.len() == WINDOW_CAP {
            self.window.pop_front();
        }
        self.window.push_back(Recent {
            at: now,
            ok,
            first_token_us,
        });
    }

    fn prune(&mut self, now: Instant) {
        while self
            .window
            .front()
            .is_some_and(|r| now.duration_since(r.at) > HEALTH_WINDOW)
        {
            self.window.pop_front();
        }
    }
}

impl HitMiss {
    fn count(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
    }

    fn rate(&self) -> String {
        percent(self.hits, self.hits + self.misses, 1, 0.0)
    }

    fn json(&self) -> Value {
        json!({ "hits": self.hits, "misses": self.misses, "hitRate": self.rate() })
    }
}

/// p95 in whole ms of microsecond samples (nearest rank); 0 when empty.
fn p95_ms(samples: &mut [u64]) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * 0.95).ceil() as usize;
    (samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0).round() as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Pass,
    Warn,
    Fail,
}

impl Level {
    fn of(warn: bool, fail: bool) -> Level {
        if fail {
            Level::Fail
        } else if warn {
            Level::Warn
        } else {
            Level::Pass
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Pass => "pass",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }

    fn health(self) -> &'static str {
        match self {
            Level::Pass => "healthy",
            Level::Warn => "degraded",
            Level::Fail => "unhealthy",
        }
    }
}

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_owned(), value.to_owned())]
}

/// Now, as the guide writes timestamps: `2025-10-11T10:30:00.000Z`.
pub fn now_iso() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Ends one request in the metrics exactly once. Dropped without
/// [`StreamGuard::complete`] or [`StreamGuard::fail`] (the client went
/// away, the task was aborted), it counts a `network` failure.
#[derive(Debug)]
pub struct StreamGuard {
    metrics: Arc<Metrics>,
    streaming: bool,
    client_id: String,
    chatbot_id: String,
    finished: bool,
}

impl StreamGuard {
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn complete(mut self, t: Timings, done: &slo::protocol::Done) {
        self.finished = true;
        self.metrics.finish(self.streaming, Ok(t));
        self.metrics.event(json!({
            "timestamp": now_iso(),
            "type": "stream_complete",
            "clientId": self.client_id,
            "chatbotId": self.chatbot_id,
            "metrics": {
                "firstTokenLatency": done.first_token_latency,
                "duration": done.duration,
                "wordCount": done.word_count,
            }
        }));
    }

    pub fn fail(mut self, kind: ErrorKind, message: &str) {
        self.record_failure(kind, message);
    }

    fn record_failure(&mut self, kind: ErrorKind, message: &str) {
        self.finished = true;
        self.metrics.finish(self.streaming, Err(kind));
        self.metrics.event(json!({
            "timestamp": now_iso(),
            "type": "error",
            "clientId": self.client_id,
            "chatbotId": self.chatbot_id,
            "error": { "type": kind.as_str(), "message": message },
        }));
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(
                clientId = %self.client_id,
                chatbotId = %self.chatbot_id,
                errorType = "network",
                "Client disconnected before the stream ended"
            );
            self.record_failure(
                ErrorKind::Network,
                "client disconnected before the stream ended",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(p95_ms(&mut v), 95);
        assert_eq!(p95_ms(&mut []), 0);
    }

    #[test]
    fn health_levels_follow_the_error_rate() {
        let m = Arc::new(Metrics::new(10, "in-memory"));
        let (body, unhealthy) = m.health();
        assert_eq!(body["status"], "healthy");
        assert!(!unhealthy);
        for _ in 0..97 {
            let g = m.begin(true, "c", "b");
            g.complete(
                Timings {
                    first_token: Duration::from_millis(100),
                    first_audio: None,
                    complete: Duration::from_millis(200),
                },
                &slo::protocol::Done {
                    word_count: 1,
                    first_token_latency: 100,
                    first_audio_latency: None,
                    duration: 200,
                    kb_cache: slo::protocol::CacheOutcome::Hit,
                    tts_cache_hits: 0,
                    tts_cache_misses: 0,
                },
            );
        }
        for _ in 0..3 {
            m.rejected(ErrorKind::Validation, "bad");
        }
        let (body, unhealthy) = m.health();
        assert_eq!(body["status"], "degraded", "{body}");
        assert_eq!(body["checks"]["errorRate"]["value"], "3.0%");
        assert!(!unhealthy);
        for _ in 0..5 {
            drop(m.begin(true, "c", "b")); // dropped: a network failure
        }
        let (body, unhealthy) = m.health();
        assert_eq!(body["status"], "unhealthy");
        assert!(unhealthy);
        assert_eq!(body["issues"].as_array().unwrap().len(), 1);
        assert_eq!(m.active(), 0);
    }
}
