//! The target's own view: its detailed metrics before and after the run,
//! its health during it, and the deltas, next to the client's figures. A
//! target without the guide's endpoints is fine: it is noted as such.

use serde::de::DeserializeOwned;
use serde_json::Value;
use slo::alerts::eval::parse_exposition;
use slo::histogram::LatencySummary;
use slo::monitoring::{self, Detailed, Health, System, paths};
use slo::server_view::{
    GuideLatency, GuideSummary, HealthSample, ServerDelta, ServerErrors, ServerView, SystemView,
    Usage,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct Scraper {
    client: reqwest::Client,
    base: String,
}

/// How long one monitoring answer may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// The most a monitoring answer may hold. The guide's are a few KiB (the
/// event log of 1,000 events, ~300 KiB); a target that sends more, or a
/// stream without end, is not read further (unbounded, one such answer held
/// 2-3 GB for the length of the scrape timeout).
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// Why a monitoring answer could not be read, in the words the report
/// gives: each names the URL or the endpoint, but `NotOk`, whose caller
/// (the scrape of the detailed metrics) is known by its place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    /// No answer: refused, timed out, broken off.
    #[error("{url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// An answer, but not a 2xx one where only that can be read.
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// An answer, but not a 200 one where the run's figures need it.
    #[error("HTTP {status}")]
    NotOk { status: u16 },
    #[error("{url}: HTTP {status}, not JSON ({reason})")]
    NotJson {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("{url}: HTTP {status}, not UTF-8 text")]
    NotText { url: String, status: u16 },
    #[error(
        "{url}: HTTP {status}, an answer over {} MiB (not the guide's): not read further",
        MAX_ANSWER_BYTES >> 20
    )]
    TooLarge { url: String, status: u16 },
    /// JSON, but not the guide's answer at that endpoint.
    #[error(
        "{path} does not answer with the guide's JSON ({reason}); see reports/schema/monitoring/"
    )]
    NotTheGuides { path: String, reason: String },
}

impl Scraper {
    pub fn new(base: &str) -> Self {
        crate::client::tls_provider();
        Self::with_client(
            base,
            reqwest::Client::builder()
                .build()
                .expect("a plain HTTP client builds"),
        )
    }

    /// A scraper on the run's client (its headers and TLS trust).
    pub fn with_client(base: &str, client: reqwest::Client) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL of `path` on this target (what errors name).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The JSON at `path`, or why not.
    pub async fn get(&self, path: &str) -> Result<(u16, Value), ScrapeError> {
        let (url, status, bytes) = self.fetch(path).await?;
        let body = serde_json::from_slice::<Value>(&bytes).map_err(|e| ScrapeError::NotJson {
            url,
            status,
            reason: e.to_string(),
        })?;
        Ok((status, body))
    }

    /// The text at `path` (a Prometheus exposition), or why not; only a
    /// 2xx answer is text to read.
    pub async fn text(&self, path: &str) -> Result<String, ScrapeError> {
        let (url, status, bytes) = self.fetch(path).await?;
        if !(200..300).contains(&status) {
            return Err(ScrapeError::Status { url, status });
        }
        String::from_utf8(bytes).map_err(|_| ScrapeError::NotText { url, status })
    }

    /// The URL, status and body at `path`, at most [`MAX_ANSWER_BYTES`].
    async fn fetch(&self, path: &str) -> Result<(String, u16, Vec<u8>), ScrapeError> {
        let url = self.url(path);
        // With its causes: reqwest's own words ("error sending request")
        // say nothing of a refused connection or a certificate.
        let unreachable = |e: reqwest::Error| ScrapeError::Unreachable {
            url: url.clone(),
            reason: format!("{:#}", anyhow::Error::from(e.without_url())),
        };
        let mut resp = self
            .client
            .get(&url)
            .timeout(SCRAPE_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ScrapeError::TooLarge { url, status });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((url, status, bytes))
    }

    /// The answer at `path` read as the guide's `T`, or why not (naming
    /// the URL and the field that does not fit).
    pub async fn read<T: DeserializeOwned>(&self, path: &str) -> Result<(u16, T), ScrapeError> {
        let (status, v) = self.get(path).await?;
        parse(path, v).map(|t| (status, t))
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
            let sample = match self.get(paths::HEALTH).await {
                Ok((code, v)) => {
                    let health = parse::<Health>(paths::HEALTH, v).ok();
                    HealthSample {
                        t,
                        status: health
                            .as_ref()
                            .map_or("unknown", |h| h.status.as_str())
                            .to_owned(),
                        http_status: Some(code),
                        active_streams: health.as_ref().map(|h| h.checks.active_streams.value),
                        cache: health.map(|h| h.checks.redis.value),
                    }
                }
                Err(_) => HealthSample {
                    t,
                    status: "unreachable".into(),
                    http_status: None,
                    active_streams: None,
                    cache: None,
                },
            };
            out.lock().expect("health lock").push(sample);
        }
    }
}

/// The `server` section of the report: what the target said, and the
/// source document for server-side objectives.
pub fn section(
    before: Result<Value, ScrapeError>,
    after: Result<Value, ScrapeError>,
    system: Option<Value>,
    health: Vec<HealthSample>,
) -> ServerView {
    let max_active_streams = health.iter().filter_map(|h| h.active_streams).max();
    let answered = health.iter().any(|h| h.http_status.is_some());
    let count = |s: &str| answered.then(|| health.iter().filter(|h| h.status == s).count() as u64);
    let (health_unhealthy_samples, health_degraded_samples) =
        (count("unhealthy"), count("degraded"));
    let read = |r: Result<Value, ScrapeError>| -> Result<(Value, monitoring::DetailedMetrics), ScrapeError> {
        let v = r?;
        let d = parse::<Detailed>(paths::DETAILED, v.clone())?;
        Ok((v, d.metrics))
    };
    let ((b, d0), (a, d1)) = match read(before).and_then(|b| Ok((b, read(after)?))) {
        Ok(both) => both,
        Err(why) => {
            return ServerView {
                available: false,
                reason: Some(why.to_string()),
                max_active_streams,
                health,
                health_unhealthy_samples,
                health_degraded_samples,
                ..ServerView::default()
            };
        }
    };
    let diff = |f: fn(&monitoring::DetailedMetrics) -> u64| Some(f(&d1).saturating_sub(f(&d0)));
    let rate = |hits: Option<u64>, misses: Option<u64>| match (hits, misses) {
        (Some(h), Some(m)) if h + m > 0 => Some(h as f64 * 100.0 / (h + m) as f64),
        _ => None,
    };
    let (total, ok) = (diff(|m| m.requests.total), diff(|m| m.requests.successful));
    let (kb_hits, kb_misses) = (diff(|m| m.cache.kb.hits), diff(|m| m.cache.kb.misses));
    let (tts_hits, tts_misses) = (diff(|m| m.cache.tts.hits), diff(|m| m.cache.tts.misses));
    let summary = |s: &LatencySummary| {
        Some(GuideSummary {
            avg: Some(s.avg as f64),
            p50: Some(s.p50 as f64),
            p95: Some(s.p95 as f64),
            p99: Some(s.p99 as f64),
        })
    };
    let lat = &d1.latency;
    let system = system.and_then(|v| parse::<System>(paths::SYSTEM, v).ok());
    let usage = |usage: &str, status: monitoring::CheckStatus| {
        Some(Usage {
            usage: slo::format::percent_value(usage),
            status: Some(status.as_str().to_owned()),
        })
    };
    ServerView {
        available: true,
        reason: None,
        delta: Some(ServerDelta {
            requests: total,
            successful: ok,
            failed: diff(|m| m.requests.failed),
            success_rate: rate(ok, total.zip(ok).map(|(t, o)| t.saturating_sub(o))),
            errors: ServerErrors {
                openai: diff(|m| m.errors.openai),
                tts: diff(|m| m.errors.tts),
                network: diff(|m| m.errors.network),
                validation: diff(|m| m.errors.validation),
                other: diff(|m| m.errors.other),
            },
            kb_hits,
            kb_misses,
            kb_hit_rate: rate(kb_hits, kb_misses),
            tts_hits,
            tts_misses,
            tts_hit_rate: rate(tts_hits, tts_misses),
        }),
        latency_after: Some(GuideLatency {
            first_token: summary(&lat.first_token),
            first_audio: summary(&lat.first_audio),
            complete: summary(&lat.complete),
        }),
        before: b["metrics"].clone(),
        after: a["metrics"].clone(),
        system: system.map(|s| SystemView {
            memory: usage(&s.system.memory.usage, s.system.memory.status),
            cpu: usage(&s.system.cpu.usage, s.system.cpu.status),
        }),
        max_active_streams,
        health,
        health_unhealthy_samples,
        health_degraded_samples,
        prefix_cache: None,
    }
}

/// The counter families of a prefix cache, queries then hits: the
/// reference server's first (it exposes vLLM's names too, with the same
/// counts), then vLLM's.
const PREFIX_COUNTERS: [(&str, &str); 2] = [
    (
        "chatbot_prefix_cache_queries_total",
        "chatbot_prefix_cache_hits_total",
    ),
    (
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
    ),
];

/// The target's prefix cache over the run, from its Prometheus text
/// before and after (every label set summed: vLLM labels by model and
/// engine); `None` when it has no such counters or they went backwards.
pub fn prefix_cache(before: &str, after: &str) -> Option<slo::server_view::PrefixCacheView> {
    let (before, after) = (
        parse_exposition(before).ok()?,
        parse_exposition(after).ok()?,
    );
    let total = |samples: &[slo::alerts::eval::Sample], name: &str| {
        let mut it = samples.iter().filter(|x| x.name == name).peekable();
        it.peek()?;
        Some(it.map(|x| x.value).sum::<f64>())
    };
    PREFIX_COUNTERS.iter().find_map(|(queries, hits)| {
        let change = |name: &str| {
            let d = total(&after, name)? - total(&before, name).unwrap_or(0.0);
            (d >= 0.0).then_some(d as u64)
        };
        let (q, h) = (change(queries)?, change(hits)?);
        Some(slo::server_view::PrefixCacheView {
            metric: (*queries).to_owned(),
            queries: q,
            hits: h,
            hit_rate: (q > 0).then(|| h as f64 * 100.0 / q as f64),
        })
    })
}

/// `v` read as the answer at `path`, or why it is not one.
fn parse<T: DeserializeOwned>(path: &str, v: Value) -> Result<T, ScrapeError> {
    serde_json::from_value(v).map_err(|e| ScrapeError::NotTheGuides {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::ScrapeError as E;
    use super::prefix_cache;

    /// The words are the report's `server.reason` and the drill's
    /// problems: typed, they read as they did when they were strings.
    #[test]
    fn each_scrape_error_reads_as_the_report_gave_it() {
        let url = || "http://127.0.0.1:9/api/metrics/detailed".to_owned();
        let cases = [
            (
                E::Unreachable {
                    url: url(),
                    reason: "connection refused".into(),
                },
                "http://127.0.0.1:9/api/metrics/detailed: connection refused",
            ),
            (
                E::Status {
                    url: url(),
                    status: 404,
                },
                "http://127.0.0.1:9/api/metrics/detailed: HTTP 404",
            ),
            (E::NotOk { status: 503 }, "HTTP 503"),
            (
                E::NotJson {
                    url: url(),
                    status: 200,
                    reason: "expected value at line 1 column 1".into(),
                },
                "http://127.0.0.1:9/api/metrics/detailed: HTTP 200, not JSON (expected value at line 1 column 1)",
            ),
            (
                E::NotText {
                    url: url(),
                    status: 200,
                },
                "http://127.0.0.1:9/api/metrics/detailed: HTTP 200, not UTF-8 text",
            ),
            (
                E::TooLarge {
                    url: url(),
                    status: 200,
                },
                "http://127.0.0.1:9/api/metrics/detailed: HTTP 200, an answer over 8 MiB (not the guide's): not read further",
            ),
            (
                E::NotTheGuides {
                    path: "/api/metrics/detailed".into(),
                    reason: "missing field `metrics`".into(),
                },
                "/api/metrics/detailed does not answer with the guide's JSON (missing field `metrics`); see reports/schema/monitoring/",
            ),
        ];
        for (e, words) in cases {
            assert_eq!(e.to_string(), words);
        }
    }

    #[test]
    fn a_prefix_cache_is_read_from_vllm_or_the_reference_server_counters() {
        let vllm = |q: u64, h: u64| {
            format!(
                "# TYPE vllm:prefix_cache_queries counter\nvllm:prefix_cache_queries_total{{engine=\"0\",model_name=\"m\"}} {q}\nvllm:prefix_cache_queries_total{{engine=\"1\",model_name=\"m\"}} 100\n# TYPE vllm:prefix_cache_hits counter\nvllm:prefix_cache_hits_total{{engine=\"0\",model_name=\"m\"}} {h}\n"
            )
        };
        let p = prefix_cache(&vllm(1000, 200), &vllm(3000, 1200)).unwrap();
        assert_eq!((p.queries, p.hits, p.hit_rate), (2000, 1000, Some(50.0)));
        assert_eq!(p.metric, "vllm:prefix_cache_queries_total");
        let ours = "chatbot_prefix_cache_queries_total 0\nchatbot_prefix_cache_hits_total 0\n";
        let p = prefix_cache(ours, ours).unwrap();
        assert_eq!((p.queries, p.hit_rate), (0, None), "no queries: no rate");
        assert_eq!(
            prefix_cache(&vllm(3000, 1200), &vllm(10, 0)),
            None,
            "a restart"
        );
        assert_eq!(prefix_cache("up 1\n", "up 1\n"), None, "no prefix cache");
    }
}
