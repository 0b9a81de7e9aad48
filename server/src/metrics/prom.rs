//! The Prometheus registry: what `GET /metrics` exposes, updated as
//! requests start and end.

use crate::system::SystemSnapshot;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use wire::protocol::ErrorKind;

/// Latency buckets in seconds: they resolve every target, warning and
/// critical level of the guide (0.5/1/2 s first token, 1.5/2/3 s first
/// audio, 3/5/8 s complete).
pub const BUCKETS: [f64; 15] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 15.0, 30.0,
];

type Labels = Vec<(String, String)>;

#[derive(Debug)]
pub(super) struct Prom {
    registry: Registry,
    requests: Counter,
    success: Counter,
    failed: Counter,
    errors: Family<Labels, Counter>,
    cache_hits: Family<Labels, Counter>,
    cache_misses: Family<Labels, Counter>,
    cache_unavailable: Family<Labels, Counter>,
    prefix_queries: Counter,
    prefix_hits: Counter,
    cache_up: Gauge,
    cache_ping: Gauge<f64, AtomicU64>,
    active: Gauge,
    connections: Gauge,
    connections_refused: Counter,
    connections_timed_out: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    rollout: Gauge,
    rss: Gauge,
    memory_limit: Gauge,
    cpu: Counter<f64, AtomicU64>,
    cpu_usage: Gauge<f64, AtomicU64>,
    /// The same figures under vLLM's names.
    pub(super) vllm: super::vllm::Vllm,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_owned(), value.to_owned())]
}

impl Prom {
    pub(super) fn new() -> Prom {
        let mut registry = Registry::default();
        let mut p = Prom {
            requests: Counter::default(),
            success: Counter::default(),
            failed: Counter::default(),
            errors: Family::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cache_unavailable: Family::default(),
            prefix_queries: Counter::default(),
            prefix_hits: Counter::default(),
            cache_up: Gauge::default(),
            cache_ping: Gauge::default(),
            active: Gauge::default(),
            connections: Gauge::default(),
            connections_refused: Counter::default(),
            connections_timed_out: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rollout: Gauge::default(),
            rss: Gauge::default(),
            memory_limit: Gauge::default(),
            cpu: Counter::default(),
            cpu_usage: Gauge::default(),
            vllm: super::vllm::Vllm::register(&mut registry),
            registry,
        };
        let r = &mut p.registry;
        r.register(
            "chatbot_requests",
            "Chat requests received",
            p.requests.clone(),
        );
        r.register(
            "chatbot_requests_success",
            "Chat requests answered in full",
            p.success.clone(),
        );
        r.register(
            "chatbot_requests_failed",
            "Chat requests that failed",
            p.failed.clone(),
        );
        r.register(
            "chatbot_errors",
            "Failed requests by the guide's error type",
            p.errors.clone(),
        );
        r.register(
            "chatbot_cache_hits",
            "Cache hits by cache (kb, tts)",
            p.cache_hits.clone(),
        );
        r.register(
            "chatbot_cache_misses",
            "Cache misses by cache (kb, tts)",
            p.cache_misses.clone(),
        );
        r.register(
            "chatbot_cache_unavailable",
            "Cache lookups served as misses because the cache did not answer, by cache (kb, tts)",
            p.cache_unavailable.clone(),
        );
        r.register(
            "chatbot_prefix_cache_queries",
            "Prompt tokens looked up in the model's prefix cache (--prefix-cache-blocks)",
            p.prefix_queries.clone(),
        );
        r.register(
            "chatbot_prefix_cache_hits",
            "Prompt tokens found in the model's prefix cache: their prefill is skipped",
            p.prefix_hits.clone(),
        );
        r.register(
            "chatbot_cache_up",
            "1 when the cache backend answered its last check (always 1 in memory), 0 when not",
            p.cache_up.clone(),
        );
        r.register(
            "chatbot_cache_ping_seconds",
            "Round trip of the last ping of the cache backend (Redis)",
            p.cache_ping.clone(),
        );
        r.register(
            "chatbot_active_streams",
            "Requests being answered now",
            p.active.clone(),
        );
        r.register(
            "chatbot_open_connections",
            "TCP connections open now",
            p.connections.clone(),
        );
        r.register(
            "chatbot_connections_refused",
            "Connections answered 503 and closed at the connection limit (--max-connections)",
            p.connections_refused.clone(),
        );
        r.register(
            "chatbot_connections_timed_out",
            "Connections closed by a timeout, by timeout (header_read, keep_alive, idle)",
            p.connections_timed_out.clone(),
        );
        r.register(
            "chatbot_latency_seconds",
            "Server-side latency from request received, by stage (first_token, first_audio, complete)",
            p.latency.clone(),
        );
        r.register(
            "chatbot_streaming_rollout_percent",
            "Rollout percentage of the streaming feature",
            p.rollout.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            p.rss.clone(),
        );
        r.register(
            "process_memory_limit_bytes",
            "Memory allocated to the process (cgroup limit or machine total)",
            p.memory_limit.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "CPU time used by the server process",
            p.cpu.clone(),
        );
        r.register(
            "process_cpu_usage_ratio",
            "CPU use over the last second as a share of all cores (0-1)",
            p.cpu_usage.clone(),
        );
        for kind in ErrorKind::ALL {
            let _ = p.errors.get_or_create(&label("type", kind.as_str()));
        }
        for stage in ["first_token", "first_audio", "complete"] {
            let _ = p.latency.get_or_create(&label("stage", stage));
        }
        for cache in ["kb", "tts"] {
            let _ = p.cache_hits.get_or_create(&label("cache", cache));
            let _ = p.cache_misses.get_or_create(&label("cache", cache));
            let _ = p.cache_unavailable.get_or_create(&label("cache", cache));
        }
        for timeout in ["header_read", "keep_alive", "idle"] {
            let _ = p
                .connections_timed_out
                .get_or_create(&label("timeout", timeout));
        }
        p.cache_up.set(1);
        p
    }

    pub(super) fn set_connections(&self, open: usize) {
        self.connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    pub(super) fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub(super) fn connection_timed_out(&self, timeout: &str) {
        self.connections_timed_out
            .get_or_create(&label("timeout", timeout))
            .inc();
    }

    pub(super) fn started(&self, active: u64) {
        self.requests.inc();
        self.set_active(active);
    }

    pub(super) fn set_active(&self, active: u64) {
        self.active.set(i64::try_from(active).unwrap_or(i64::MAX));
    }

    pub(super) fn rejected(&self, kind: ErrorKind) {
        self.requests.inc();
        self.failed(kind);
    }

    pub(super) fn failed(&self, kind: ErrorKind) {
        self.failed.inc();
        self.errors
            .get_or_create(&label("type", kind.as_str()))
            .inc();
    }

    pub(super) fn succeeded(&self, complete: Duration) {
        self.success.inc();
        self.observe("complete", complete);
    }

    /// A latency of `stage`, as it happens.
    pub(super) fn observe(&self, stage: &str, d: Duration) {
        self.latency
            .get_or_create(&label("stage", stage))
            .observe(d.as_secs_f64());
    }

    pub(super) fn cache(&self, cache: &str, found: &crate::cache::Lookup) {
        let family = if found.is_hit() {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        family.get_or_create(&label("cache", cache)).inc();
        if matches!(found, crate::cache::Lookup::Unavailable(_)) {
            self.cache_unavailable
                .get_or_create(&label("cache", cache))
                .inc();
            self.cache_up.set(0);
        }
    }

    pub(super) fn prefix(&self, tokens: u64, hit: u64) {
        self.prefix_queries.inc_by(tokens);
        self.prefix_hits.inc_by(hit);
        self.vllm.prefix(tokens, hit);
    }

    pub(super) fn cache_ping(&self, rtt: Option<std::time::Duration>) {
        self.cache_up.set(i64::from(rtt.is_some()));
        if let Some(rtt) = rtt {
            self.cache_ping.set(rtt.as_secs_f64());
        }
    }

    pub(super) fn set_rollout(&self, percentage: u8) {
        self.rollout.set(i64::from(percentage));
    }

    pub(super) fn set_system(&self, previous: &SystemSnapshot, snap: &SystemSnapshot) {
        self.rss
            .set(i64::try_from(snap.rss_bytes).unwrap_or(i64::MAX));
        self.memory_limit
            .set(i64::try_from(snap.limit_bytes).unwrap_or(i64::MAX));
        let delta = snap.cpu_seconds - previous.cpu_seconds;
        if delta > 0.0 {
            self.cpu.inc_by(delta);
        }
        self.cpu_usage.set(snap.cpu_percent / 100.0);
    }

    /// The text exposition format (0.0.4).
    pub(super) fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
