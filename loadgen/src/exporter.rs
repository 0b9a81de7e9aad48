//! `loadgen run --metrics-listen ADDR`: the load generator's own figures
//! in Prometheus's text format (at `/metrics`) while it runs, so a dashboard follows a
//! soak or a sharded run as it goes. The counts are the recorder's, made
//! from the same records as report.json's, so once the run has ended they
//! equal the report's (`--metrics-linger` keeps them up for a last scrape).

use crate::client_probe::ClientProbe;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use slo::record::RequestRecord;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;

/// The metrics, updated by the recorder (requests) and read at each
/// scrape (what is sampled: open streams, the self-check).
pub struct Exporter {
    registry: Registry,
    requests: Family<Labels, Counter>,
    warmup: Counter,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    active: Gauge,
    lag_p99: Gauge<f64, AtomicU64>,
    lag_max: Gauge<f64, AtomicU64>,
    stalls: Gauge,
    cpu: Gauge<f64, AtomicU64>,
    /// What the sampled gauges are read from.
    open: Arc<AtomicI64>,
    probe: Arc<Mutex<ClientProbe>>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(server::metrics::BUCKETS)
}

impl Exporter {
    /// `scenario` and `shard` label `loadgen_run_info`; `open` and `probe`
    /// are the run's open streams and self-check.
    pub fn new(
        scenario: &str,
        shard: Option<(u32, u32)>,
        open: Arc<AtomicI64>,
        probe: Arc<Mutex<ClientProbe>>,
    ) -> Exporter {
        let mut registry = Registry::default();
        let requests: Family<Labels, Counter> = Family::default();
        let warmup = Counter::default();
        let latency: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let active = Gauge::default();
        let lag_p99: Gauge<f64, AtomicU64> = Gauge::default();
        let lag_max: Gauge<f64, AtomicU64> = Gauge::default();
        let stalls = Gauge::default();
        let cpu: Gauge<f64, AtomicU64> = Gauge::default();
        let info: Family<Labels, Gauge> = Family::default();
        info.get_or_create(&vec![
            ("scenario".to_owned(), scenario.to_owned()),
            (
                "shard".to_owned(),
                shard.map_or("none".to_owned(), |(i, n)| format!("{i}/{n}")),
            ),
        ])
        .set(1);
        registry.register(
            "loadgen_run_info",
            "The run: its scenario and shard (always 1)",
            info,
        );
        registry.register(
            "loadgen_requests",
            "Measured requests ended, by outcome (report.json's requests and errors; dropped arrivals included)",
            requests.clone(),
        );
        registry.register(
            "loadgen_warmup_requests",
            "Requests of the warm-up, in no figure",
            warmup.clone(),
        );
        registry.register(
            "loadgen_latency_seconds",
            "Successful measured requests' latencies from their scheduled start, by latency (first_token, first_audio, complete)",
            latency.clone(),
        );
        registry.register(
            "loadgen_active_streams",
            "Requests in flight",
            active.clone(),
        );
        registry.register(
            "loadgen_scheduler_lag_p99_seconds",
            "Self-check: the 99th percentile of the client's own 10 ms timer's lag so far",
            lag_p99.clone(),
        );
        registry.register(
            "loadgen_scheduler_lag_max_seconds",
            "Self-check: the longest lag of the client's own timer so far",
            lag_max.clone(),
        );
        registry.register(
            "loadgen_client_stalls",
            "Self-check: stalls of the client's scheduler so far",
            stalls.clone(),
        );
        registry.register(
            "loadgen_cpu_percent",
            "Self-check: the process's CPU use in the last second, as a share of its cores",
            cpu.clone(),
        );
        Exporter {
            registry,
            requests,
            warmup,
            latency,
            active,
            lag_p99,
            lag_max,
            stalls,
            cpu,
            open,
            probe,
        }
    }

    /// Counts one ended request (the recorder calls it for each).
    pub fn observe(&self, r: &RequestRecord) {
        if r.warmup {
            self.warmup.inc();
            return;
        }
        self.requests
            .get_or_create(&vec![("outcome".to_owned(), r.outcome.as_str().to_owned())])
            .inc();
        if !r.outcome.is_ok() {
            return;
        }
        for (name, v) in [
            ("first_token", r.first_token_us),
            ("first_audio", r.first_audio_us),
            ("complete", r.complete_us),
        ] {
            if let Some(us) = v {
                self.latency
                    .get_or_create(&vec![("latency".to_owned(), name.to_owned())])
                    .observe(us.saturating_add(r.lateness_us) as f64 / 1e6);
            }
        }
    }

    /// The text a scrape gets, the sampled gauges read now.
    pub fn encode(&self) -> String {
        self.active.set(self.open.load(Ordering::Relaxed).max(0));
        let live = self.probe.lock().expect("probe lock").live();
        self.lag_p99.set(live.lag_p99_ms / 1000.0);
        self.lag_max.set(live.lag_max_ms / 1000.0);
        self.stalls
            .set(i64::try_from(live.stalls).unwrap_or(i64::MAX));
        self.cpu.set(live.cpu_percent);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding into a String cannot fail");
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, exporter: Arc<Exporter>) {
    use axum::routing::get;
    // The path Prometheus scrapes by default, as the server serves it.
    let app = axum::Router::new().route(
        slo::monitoring::paths::PROMETHEUS,
        get(move || {
            let e = Arc::clone(&exporter);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    e.encode(),
                )
            }
        }),
    );
    let _ = axum::serve(listener, app).await;
}
