//! The reference server's engine figures under the names a vLLM server
//! gives them (its `/metrics`), so a scrape with the vLLM preset reads
//! this server as it would read vLLM: requests waiting for a model slot
//! and generating in one, the share of slots in use (this server's
//! stand-in for KV cache usage), the prefix cache's tokens looked up and
//! found, tokens generated, and the first-token and request latencies.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// vLLM's bucket bounds for time to first token, seconds.
const FIRST_TOKEN_BUCKETS: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// vLLM's bucket bounds for a request's latency, seconds.
const E2E_BUCKETS: [f64; 19] = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0,
];

#[derive(Debug)]
pub(super) struct Vllm {
    waiting: Gauge,
    running: Gauge,
    kv_usage: Gauge<f64, AtomicU64>,
    prefix_queries: Counter,
    prefix_hits: Counter,
    generation_tokens: Counter,
    first_token: Histogram,
    e2e: Histogram,
}

impl Vllm {
    pub(super) fn register(r: &mut Registry) -> Vllm {
        let v = Vllm {
            waiting: Gauge::default(),
            running: Gauge::default(),
            kv_usage: Gauge::default(),
            prefix_queries: Counter::default(),
            prefix_hits: Counter::default(),
            generation_tokens: Counter::default(),
            first_token: Histogram::new(FIRST_TOKEN_BUCKETS),
            e2e: Histogram::new(E2E_BUCKETS),
        };
        r.register(
            "vllm:num_requests_waiting",
            "Requests waiting for a model slot (--model-slots)",
            v.waiting.clone(),
        );
        r.register(
            "vllm:num_requests_running",
            "Requests generating in a model slot",
            v.running.clone(),
        );
        r.register(
            "vllm:kv_cache_usage_perc",
            "Model slots in use over slots, 0 to 1 (0 without --model-slots): this server's stand-in for KV cache usage",
            v.kv_usage.clone(),
        );
        r.register(
            "vllm:prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache (--prefix-cache-blocks)",
            v.prefix_queries.clone(),
        );
        r.register(
            "vllm:prefix_cache_hits",
            "Prompt tokens found in the prefix cache",
            v.prefix_hits.clone(),
        );
        r.register(
            "vllm:generation_tokens",
            "Tokens generated (answers' tokens, counted when the answer ends)",
            v.generation_tokens.clone(),
        );
        r.register(
            "vllm:time_to_first_token_seconds",
            "Time from request received to its first token",
            v.first_token.clone(),
        );
        r.register(
            "vllm:e2e_request_latency_seconds",
            "Time from request received to its answer's end, answered in full",
            v.e2e.clone(),
        );
        v
    }

    pub(super) fn set_model(&self, waiting: usize, running: usize, slots: usize) {
        self.waiting.set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.running.set(i64::try_from(running).unwrap_or(i64::MAX));
        self.kv_usage.set(if slots == 0 {
            0.0
        } else {
            running as f64 / slots as f64
        });
    }

    pub(super) fn prefix(&self, tokens: u64, hit: u64) {
        self.prefix_queries.inc_by(tokens);
        self.prefix_hits.inc_by(hit);
    }

    pub(super) fn first_token(&self, d: Duration) {
        self.first_token.observe(d.as_secs_f64());
    }

    pub(super) fn answered(&self, complete: Duration, tokens: u64) {
        self.e2e.observe(complete.as_secs_f64());
        self.generation_tokens.inc_by(tokens);
    }
}
