//! The `server` section of `report.json`: what the target's own monitoring
//! endpoints said about the run. Typed, so the metric paths a server-side
//! objective may name are known from this type (see [`crate::metric_paths`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerView {
    /// False when the target has no readable metrics endpoint.
    pub available: bool,
    /// Why not, when not available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The change over the run of the target's detailed metrics.
    #[serde(default)]
    pub delta: Option<ServerDelta>,
    /// The target's latency percentiles after the run (the guide's
    /// `latency` block, in ms).
    #[serde(default)]
    pub latency_after: Option<GuideLatency>,
    /// The detailed metrics before and after, as the target sent them
    /// (shown, not judged).
    #[serde(default)]
    pub before: Value,
    #[serde(default)]
    pub after: Value,
    #[serde(default)]
    pub system: Option<SystemView>,
    /// The most active streams the health polls saw.
    #[serde(default)]
    pub max_active_streams: Option<u64>,
    #[serde(default)]
    pub health: Vec<HealthSample>,
    /// Health samples that said `unhealthy` / `degraded`; null when the
    /// health endpoint never answered (absent is not zero).
    #[serde(default)]
    pub health_unhealthy_samples: Option<u64>,
    #[serde(default)]
    pub health_degraded_samples: Option<u64>,
    /// The target's prefix cache over the run, from its Prometheus
    /// metrics; null when it exposes none (or they went backwards: a
    /// restart).
    #[serde(default)]
    pub prefix_cache: Option<PrefixCacheView>,
}

/// Prompt tokens the target looked up in its prefix cache over the run,
/// and those it found (vLLM's `vllm:prefix_cache_queries` / `_hits`, or
/// the reference server's `chatbot_prefix_cache_queries` / `_hits`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrefixCacheView {
    /// The counter read, e.g. `vllm:prefix_cache_queries_total`.
    pub metric: String,
    pub queries: u64,
    pub hits: u64,
    /// Percent of the queried tokens found; null without queries.
    pub hit_rate: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerDelta {
    pub requests: Option<u64>,
    pub successful: Option<u64>,
    pub failed: Option<u64>,
    /// Percent; null without requests.
    pub success_rate: Option<f64>,
    pub errors: ServerErrors,
    pub kb_hits: Option<u64>,
    pub kb_misses: Option<u64>,
    pub kb_hit_rate: Option<f64>,
    pub tts_hits: Option<u64>,
    pub tts_misses: Option<u64>,
    pub tts_hit_rate: Option<f64>,
}

/// Failures by the guide's type, counted by the server over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerErrors {
    pub openai: Option<u64>,
    pub tts: Option<u64>,
    pub network: Option<u64>,
    pub validation: Option<u64>,
    pub other: Option<u64>,
}

/// The guide's `latency` block: each stage's avg/p50/p95/p99 in ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuideLatency {
    pub first_token: Option<GuideSummary>,
    pub first_audio: Option<GuideSummary>,
    pub complete: Option<GuideSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GuideSummary {
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// `/api/metrics/system`'s `system` block; usages are percents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SystemView {
    pub memory: Option<Usage>,
    pub cpu: Option<Usage>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Usage {
    /// Percent (the guide writes `"45.2%"`; read as its number).
    pub usage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthSample {
    /// Seconds since the run started.
    pub t: f64,
    pub status: String,
    pub http_status: Option<u16>,
    pub active_streams: Option<u64>,
    /// The health's `redis` check value (`connected`, `in-memory`,
    /// `unavailable`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
}
