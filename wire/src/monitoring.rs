//! The monitoring endpoints of the guide, as types: their paths, every
//! answer key for key, the guide's thresholds and windows, and the health
//! judgment. The reference server serializes these types and nothing else;
//! the load generator's scraper, `loadgen watch` and `slo::alerts` read
//! them back. Their JSON Schemas are committed under
//! `reports/schema/monitoring/` (`slo::schema`).

use crate::format::{percent, ratio_percent};
use crate::histogram::LatencySummary;
use crate::protocol::ErrorKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The endpoints' paths (docs/protocol.md 2 and 3).
pub mod paths {
    pub const HEALTH: &str = "/api/metrics/health/streaming";
    pub const SUMMARY: &str = "/api/metrics/streaming/summary";
    pub const DETAILED: &str = "/api/metrics/streaming";
    pub const EVENTS: &str = "/api/metrics/streaming/events";
    pub const FEATURE_FLAGS: &str = "/api/metrics/feature-flags";
    pub const ROLLOUT: &str = "/api/metrics/feature-flags/rollout";
    pub const SYSTEM: &str = "/api/metrics/system";
    pub const ADMIN_FAULTS: &str = "/api/admin/faults";
    pub const PROMETHEUS: &str = "/metrics";
    pub const DASHBOARD: &str = "/dashboard";
    /// A Prometheus server's alerts API (Prometheus's, not the target's:
    /// a drill reads it).
    pub const PROMETHEUS_ALERTS: &str = "/api/v1/alerts";
}

/// The guide's levels ("Key Performance Indicators", "System Health",
/// "Alert Rules"): above the first a check warns, above the second it
/// fails. The alert rules use the same numbers.
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
    /// The KB cache hit rate alerts below these (percent).
    pub const KB_HIT_RATE_WARN: f64 = 40.0;
    pub const KB_HIT_RATE_FAIL: f64 = 20.0;
    /// The TTS cache hit rate alerts below these (percent).
    pub const TTS_HIT_RATE_WARN: f64 = 30.0;
    pub const TTS_HIT_RATE_FAIL: f64 = 10.0;
    /// The success rate alerts below these (percent).
    pub const SUCCESS_RATE_WARN: f64 = 98.0;
    pub const SUCCESS_RATE_FAIL: f64 = 95.0;
    pub const FIRST_AUDIO_P95_WARN_MS: u64 = 2000;
    pub const FIRST_AUDIO_P95_FAIL_MS: u64 = 3000;
    pub const COMPLETE_P95_WARN_MS: u64 = 5000;
    pub const COMPLETE_P95_FAIL_MS: u64 = 8000;
}

/// The window of the health check and of the guide's error-rate alert.
pub const HEALTH_WINDOW: Duration = Duration::from_secs(300);

/// The events endpoint's `limit`: default and range.
pub const EVENTS_DEFAULT_LIMIT: usize = 50;
pub const EVENTS_MAX_LIMIT: usize = 1000;

/// The rule a streaming rollout follows, as the flags endpoint states it.
pub const ROLLOUT_RULE: &str = "a request streams when fnv1a64(clientId) % 100 < percentage";

/// The features a rollout can name.
pub const FEATURES: &[&str] = &["streaming"];

/// What `POST /api/admin/faults` may set (each optional; absent keeps its
/// value): the rates of each injected failure and stall, 0 to 1, and the
/// delays in ms.
pub const FAULT_KEYS: &[&str] = &[
    "openai_rate",
    "tts_rate",
    "network_rate",
    "other_rate",
    "stall_rate",
    "stall_ms",
    "tts_slowdown_ms",
    "model_slowdown_ms",
    "streaming_bug_rate",
];

/// One check's status.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

impl CheckStatus {
    /// `fail` above the fail level, else `warn` above the warn level.
    pub fn above<T: PartialOrd>(value: T, warn: T, fail: T) -> CheckStatus {
        if value > fail {
            CheckStatus::Fail
        } else if value > warn {
            CheckStatus::Warn
        } else {
            CheckStatus::Pass
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// The health endpoint's overall status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    fn of(worst: CheckStatus) -> HealthStatus {
        match worst {
            CheckStatus::Pass => HealthStatus::Healthy,
            CheckStatus::Warn => HealthStatus::Degraded,
            CheckStatus::Fail => HealthStatus::Unhealthy,
        }
    }
}

/// `GET /api/metrics/health/streaming` (HTTP 503 when `unhealthy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub success: bool,
    pub status: HealthStatus,
    pub timestamp: String,
    pub checks: HealthChecks,
    pub issues: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthChecks {
    pub error_rate: Check<String>,
    pub latency: Check<String>,
    pub redis: Check<String>,
    pub active_streams: Check<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check<V> {
    pub status: CheckStatus,
    pub value: V,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
}

/// The caches' backend as the health check sees it: the guide's `redis`
/// check passes when it is in memory or a Redis answered its ping, and
/// warns (the service is degraded: the guide's "cache unavailable") when
/// Redis does not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheState {
    InMemory,
    Connected,
    Unavailable(String),
}

/// What the health check judges: the last [`HEALTH_WINDOW`] and now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthInput {
    /// Requests that ended in the window, and how many of them failed.
    pub ended: u64,
    pub failed: u64,
    /// p95 first-token latency of the window's successes, whole ms.
    pub first_token_p95_ms: u64,
    pub active_streams: u64,
}

impl Health {
    /// The guide's health check: each check against its thresholds, the
    /// worst one the status, an issue per check that is not `pass`.
    pub fn judge(input: HealthInput, cache: &CacheState, timestamp: String) -> Health {
        use thresholds::*;
        let error_rate = ratio_percent(input.failed, input.ended, 0.0);
        let p95 = input.first_token_p95_ms;
        let active = input.active_streams;
        let mut issues = Vec::new();
        let mut worst = CheckStatus::Pass;
        let mut check = |status: CheckStatus, issue: String| {
            if status != CheckStatus::Pass {
                issues.push(issue);
            }
            worst = worst.max(status);
            status
        };
        let level = |fail: bool, critical: &str, warning: &str| {
            if fail {
                format!("{critical} (critical)")
            } else {
                format!("{warning} (warning)")
            }
        };
        let error_status = check(
            CheckStatus::above(error_rate, ERROR_RATE_WARN, ERROR_RATE_FAIL),
            format!(
                "error rate {error_rate:.1}% over the last {} minutes is above {}",
                HEALTH_WINDOW.as_secs() / 60,
                level(error_rate > ERROR_RATE_FAIL, "5%", "2%")
            ),
        );
        let latency_status = check(
            CheckStatus::above(p95, FIRST_TOKEN_P95_WARN_MS, FIRST_TOKEN_P95_FAIL_MS),
            format!(
                "p95 first token latency {p95}ms is above {}",
                level(p95 > FIRST_TOKEN_P95_FAIL_MS, "2000ms", "1000ms")
            ),
        );
        let streams_status = check(
            CheckStatus::above(active, ACTIVE_STREAMS_WARN, ACTIVE_STREAMS_FAIL),
            format!(
                "{active} active streams is above {}",
                level(active > ACTIVE_STREAMS_FAIL, "500", "200")
            ),
        );
        let (redis_status, redis_value) = match cache {
            CacheState::InMemory => (CheckStatus::Pass, "in-memory".to_owned()),
            CacheState::Connected => (CheckStatus::Pass, "connected".to_owned()),
            CacheState::Unavailable(why) => (
                check(CheckStatus::Warn, format!("cache unavailable: {why}")),
                "unavailable".to_owned(),
            ),
        };
        Health {
            success: true,
            status: HealthStatus::of(worst),
            timestamp,
            checks: HealthChecks {
                error_rate: Check {
                    status: error_status,
                    value: format!("{error_rate:.1}%"),
                    threshold: Some("≤5%".into()),
                },
                latency: Check {
                    status: latency_status,
                    value: format!("{p95}ms"),
                    threshold: Some("≤1000ms".into()),
                },
                redis: Check {
                    status: redis_status,
                    value: redis_value,
                    threshold: None,
                },
                active_streams: Check {
                    status: streams_status,
                    value: active,
                    threshold: None,
                },
            },
            issues,
        }
    }
}

/// p95 in whole ms of microsecond samples (nearest rank); 0 when empty.
pub fn p95_ms(samples: &mut [u64]) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * 0.95).ceil() as usize;
    (samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0).round() as u64
}

/// `GET /api/metrics/streaming/summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub success: bool,
    pub timestamp: String,
    pub summary: SummaryFigures,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryFigures {
    /// `5d 12h 30m`.
    pub uptime: String,
    pub total_requests: u64,
    /// `99.2%`.
    pub success_rate: String,
    pub active_streams: u64,
    /// ms.
    pub avg_first_token_latency: u64,
    pub avg_complete_latency: u64,
    pub cache_hit_rate: CacheHitRates,
    pub error_count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CacheHitRates {
    pub kb: String,
    pub tts: String,
}

/// `GET /api/metrics/streaming`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Detailed {
    pub success: bool,
    pub timestamp: String,
    pub metrics: DetailedMetrics,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailedMetrics {
    /// Seconds.
    pub uptime: u64,
    pub uptime_formatted: String,
    pub requests: Requests,
    pub latency: Latency,
    pub cache: Caches,
    pub errors: Errors,
    pub streaming: Streaming,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requests {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    pub active: u64,
    /// `99.72%`.
    pub success_rate: String,
}

/// Each stage's avg/p50/p95/p99 in whole ms since the server started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub first_token: LatencySummary,
    pub first_audio: LatencySummary,
    pub complete: LatencySummary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Caches {
    pub kb: CacheCounts,
    pub tts: CacheCounts,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    /// `65.4%` (`0.0%` before the first lookup).
    pub hit_rate: String,
}

impl CacheCounts {
    pub fn new(hits: u64, misses: u64) -> CacheCounts {
        CacheCounts {
            hits,
            misses,
            hit_rate: percent(hits, hits.saturating_add(misses), 1, 0.0),
        }
    }
}

/// Failures by the guide's type, and each one's share of all failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Errors {
    pub openai: u64,
    pub tts: u64,
    pub network: u64,
    pub validation: u64,
    pub other: u64,
    pub breakdown: ErrorShares,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorShares {
    pub openai: String,
    pub tts: String,
    pub network: String,
    pub validation: String,
    pub other: String,
}

impl Errors {
    /// From counts indexed by [`ErrorKind::index`].
    pub fn new(counts: [u64; 5]) -> Errors {
        let total: u64 = counts.iter().sum();
        let n = |k: ErrorKind| counts[k.index()];
        let share = |k: ErrorKind| percent(n(k), total, 1, 0.0);
        Errors {
            openai: n(ErrorKind::Openai),
            tts: n(ErrorKind::Tts),
            network: n(ErrorKind::Network),
            validation: n(ErrorKind::Validation),
            other: n(ErrorKind::Other),
            breakdown: ErrorShares {
                openai: share(ErrorKind::Openai),
                tts: share(ErrorKind::Tts),
                network: share(ErrorKind::Network),
                validation: share(ErrorKind::Validation),
                other: share(ErrorKind::Other),
            },
        }
    }

    pub fn get(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::Openai => self.openai,
            ErrorKind::Tts => self.tts,
            ErrorKind::Network => self.network,
            ErrorKind::Validation => self.validation,
            ErrorKind::Other => self.other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Streaming {
    pub total_streams: u64,
    pub active_count: u64,
    pub completed_count: u64,
    pub error_count: u64,
}

/// `GET /api/metrics/streaming/events?limit=N`, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Events {
    pub success: bool,
    pub timestamp: String,
    pub count: usize,
    pub events: Vec<Event>,
}

/// One entry of the recent-events ring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    StreamStart {
        timestamp: String,
        client_id: String,
        chatbot_id: String,
        streaming: bool,
    },
    #[serde(rename_all = "camelCase")]
    StreamComplete {
        timestamp: String,
        client_id: String,
        chatbot_id: String,
        metrics: EventMetrics,
    },
    /// A failed request; a rejected one has no client or chatbot id.
    #[serde(rename_all = "camelCase")]
    Error {
        timestamp: String,
        client_id: Option<String>,
        chatbot_id: Option<String>,
        error: crate::protocol::StreamError,
    },
    FlagChange {
        timestamp: String,
        feature: String,
        percentage: u8,
        previous: u8,
        /// The admin's address.
        by: String,
    },
    FaultChange {
        timestamp: String,
        /// The server's injected faults after the change.
        faults: serde_json::Value,
        by: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventMetrics {
    pub first_token_latency: u64,
    pub duration: u64,
    pub word_count: u64,
}

/// `GET /api/metrics/system`: memory and CPU against the guide's "System
/// Health" levels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct System {
    pub success: bool,
    pub timestamp: String,
    pub system: SystemFigures,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SystemFigures {
    pub memory: Memory,
    pub cpu: Cpu,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub rss_bytes: u64,
    pub limit_bytes: u64,
    /// `45.2%` of the limit.
    pub usage: String,
    pub status: CheckStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    /// `45.2%` of all cores.
    pub usage: String,
    pub cores: usize,
    pub cpu_seconds: f64,
    pub status: CheckStatus,
}

impl SystemFigures {
    /// Memory and CPU use (percent) judged against the guide's levels.
    pub fn judge(
        rss_bytes: u64,
        limit_bytes: u64,
        memory_percent: f64,
        cpu_percent: f64,
        cores: usize,
        cpu_seconds: f64,
    ) -> SystemFigures {
        use thresholds::*;
        SystemFigures {
            memory: Memory {
                rss_bytes,
                limit_bytes,
                usage: format!("{memory_percent:.1}%"),
                status: CheckStatus::above(memory_percent, MEMORY_WARN, MEMORY_FAIL),
            },
            cpu: Cpu {
                usage: format!("{cpu_percent:.1}%"),
                cores,
                cpu_seconds,
                status: CheckStatus::above(cpu_percent, CPU_WARN, CPU_FAIL),
            },
        }
    }
}

/// `GET /api/metrics/feature-flags`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureFlags {
    pub success: bool,
    pub timestamp: String,
    pub flags: Flags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Flags {
    pub streaming: Flag,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    pub enabled: bool,
    pub percentage: u8,
    pub updated_at: String,
    pub rule: String,
}

/// `POST /api/metrics/feature-flags/rollout`'s body, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RolloutRequest {
    /// One of [`FEATURES`].
    pub feature: String,
    /// 0 to 100.
    pub percentage: u8,
}

impl RolloutRequest {
    /// The body checked rule by rule; the error names the field.
    pub fn parse(body: &serde_json::Value) -> Result<RolloutRequest, String> {
        use serde_json::Value;
        let obj = body.as_object().ok_or(
            "the body must be a JSON object like {\"feature\": \"streaming\", \"percentage\": 50}",
        )?;
        let feature = match obj.get("feature") {
            None => return Err("feature is required, e.g. \"streaming\"".into()),
            Some(Value::String(f)) if FEATURES.contains(&f.as_str()) => f.clone(),
            Some(Value::String(f)) => {
                return Err(format!(
                    "feature '{f}' is unknown; known features: {}",
                    FEATURES.join(", ")
                ));
            }
            Some(other) => return Err(format!("feature must be a string, got {other}")),
        };
        let percentage = match obj.get("percentage") {
            None => return Err("percentage is required: a whole number from 0 to 100".into()),
            Some(v) => v.as_u64().filter(|p| *p <= 100).ok_or_else(|| {
                format!("percentage must be a whole number from 0 to 100, got {v}")
            })?,
        };
        Ok(RolloutRequest {
            feature,
            percentage: percentage as u8,
        })
    }
}

/// The rollout endpoint's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rollout {
    pub success: bool,
    pub timestamp: String,
    pub feature: String,
    pub percentage: u8,
    pub previous: u8,
}

/// The guide's own example answers, read into the types (tests of both
/// sides build on them).
pub mod examples {
    use super::*;

    /// The health check on a window of `ended` requests.
    pub fn health(ended: u64, failed: u64, p95: u64, active: u64) -> Health {
        let input = HealthInput {
            ended,
            failed,
            first_token_p95_ms: p95,
            active_streams: active,
        };
        Health::judge(input, &CacheState::InMemory, "t".into())
    }

    pub fn summary() -> Summary {
        serde_json::from_str(
            r#"{"success": true, "timestamp": "2025-10-11T10:30:00.000Z",
            "summary": {"uptime": "5d 12h 30m", "totalRequests": 15234, "successRate": "99.2%",
            "activeStreams": 12, "avgFirstTokenLatency": 485, "avgCompleteLatency": 2834,
            "cacheHitRate": {"kb": "65.4%", "tts": "58.2%"}, "errorCount": 42}}"#,
        )
        .expect("the guide's summary")
    }

    pub fn detailed() -> Detailed {
        serde_json::from_str(
            r#"{"success": true, "timestamp": "2025-10-11T10:30:00.000Z", "metrics": {
            "uptime": 475800, "uptimeFormatted": "5d 12h 30m",
            "requests": {"total": 15234, "successful": 15192, "failed": 42, "active": 12, "successRate": "99.72%"},
            "latency": {"firstToken": {"avg": 485, "p50": 420, "p95": 680, "p99": 920},
              "firstAudio": {"avg": 1245, "p50": 1180, "p95": 1520, "p99": 1890},
              "complete": {"avg": 2834, "p50": 2650, "p95": 3420, "p99": 4580}},
            "cache": {"kb": {"hits": 9876, "misses": 5234, "hitRate": "65.4%"},
              "tts": {"hits": 7845, "misses": 5623, "hitRate": "58.2%"}},
            "errors": {"openai": 12, "tts": 8, "network": 5, "validation": 15, "other": 2,
              "breakdown": {"openai": "28.6%", "tts": "19.0%", "network": "11.9%", "validation": "35.7%", "other": "4.8%"}},
            "streaming": {"totalStreams": 15234, "activeCount": 12, "completedCount": 15192, "errorCount": 42}}}"#,
        )
        .expect("the guide's detailed metrics")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use examples::health;
    use serde_json::json;

    #[test]
    fn the_guides_examples_are_answers_of_these_types() {
        let d = examples::detailed();
        assert_eq!(d.metrics.cache.kb, CacheCounts::new(9876, 5234));
        assert_eq!(Errors::new([12, 8, 5, 15, 2]), d.metrics.errors);
        assert_eq!(examples::summary().summary.error_count, 42);
        let events: Events = serde_json::from_str(
            r#"{"success": true, "timestamp": "2025-10-11T10:30:00.000Z", "events": [
            {"timestamp": "2025-10-11T10:29:45.123Z", "type": "stream_complete",
             "clientId": "chat-1760185530974-abc123", "chatbotId": "60f7b3b3e6b6f40015e6b6f4",
             "metrics": {"firstTokenLatency": 420, "duration": 2650, "wordCount": 145}}],
            "count": 50}"#,
        )
        .unwrap();
        assert!(
            matches!(&events.events[0], Event::StreamComplete { metrics, .. } if metrics.word_count == 145)
        );
    }

    #[test]
    fn p95_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(p95_ms(&mut v), 95);
        assert_eq!(p95_ms(&mut []), 0);
    }

    #[test]
    fn an_unavailable_cache_degrades_the_health_and_says_why() {
        let input = HealthInput {
            ended: 10,
            failed: 0,
            first_token_p95_ms: 100,
            active_streams: 1,
        };
        let ok = Health::judge(input, &CacheState::Connected, "t".into());
        assert_eq!(ok.status, HealthStatus::Healthy);
        assert_eq!(ok.checks.redis.value, "connected");
        let down = Health::judge(
            input,
            &CacheState::Unavailable("redis://127.0.0.1:1: refused".into()),
            "t".into(),
        );
        assert_eq!(down.status, HealthStatus::Degraded);
        assert_eq!(down.checks.redis.status, CheckStatus::Warn);
        assert_eq!(down.checks.redis.value, "unavailable");
        assert_eq!(
            down.issues,
            ["cache unavailable: redis://127.0.0.1:1: refused"]
        );
    }

    #[test]
    fn health_is_its_worst_check() {
        let h = health(0, 0, 0, 0);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert!(h.issues.is_empty());
        let h = health(100, 3, 100, 0);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(h.checks.error_rate.value, "3.0%");
        assert_eq!(
            h.issues,
            ["error rate 3.0% over the last 5 minutes is above 2% (warning)"]
        );
        let h = health(100, 0, 2001, 501);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.issues.len(), 2);
        assert!(
            h.issues[1].ends_with("above 500 (critical)"),
            "{:?}",
            h.issues
        );
        // At a threshold is not above it.
        assert_eq!(health(100, 2, 1000, 200).status, HealthStatus::Healthy);
    }

    #[test]
    fn answers_read_back_as_they_were_written() {
        let h = health(10, 1, 1200, 3);
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Health>(&text).unwrap(), h);
        assert!(!text.contains("\"threshold\":null"), "{text}");
        let c = CacheCounts::new(2, 1);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v, json!({"hits": 2, "misses": 1, "hitRate": "66.7%"}));
        assert_eq!(serde_json::from_value::<CacheCounts>(v).unwrap(), c);
        let e = Event::Error {
            timestamp: "t".into(),
            client_id: None,
            chatbot_id: None,
            error: crate::protocol::StreamError {
                kind: ErrorKind::Validation,
                message: "bad".into(),
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["clientId"], serde_json::Value::Null);
        assert_eq!(v["error"]["type"], "validation");
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }

    #[test]
    fn a_rollout_names_the_field_it_breaks() {
        assert_eq!(
            RolloutRequest::parse(&json!({"feature": "streaming", "percentage": 0})).unwrap(),
            RolloutRequest {
                feature: "streaming".into(),
                percentage: 0
            }
        );
        let e = RolloutRequest::parse(&json!({"feature": "streaming", "percentage": 101}));
        assert!(e.unwrap_err().contains("percentage"));
        let e = RolloutRequest::parse(&json!({"feature": "audio", "percentage": 1}));
        assert!(e.unwrap_err().contains("'audio' is unknown"));
        let e = RolloutRequest::parse(&json!({"percentage": 1.5, "feature": "streaming"}));
        assert!(e.unwrap_err().contains("whole number"));
        assert!(RolloutRequest::parse(&json!([])).is_err());
    }
}
