//! Everything the server counts. One lock guards the counters and
//! histograms; it is taken once when a request starts and once when it
//! ends, never per token. [`StreamGuard`] ends each request exactly once;
//! `prom` is the Prometheus registry kept beside the counts; `answers`
//! builds the monitoring endpoints' answers from them.

mod answers;
mod prom;
mod vllm;

pub use prom::BUCKETS;

use crate::cache::Lookup;
use crate::system::SystemSnapshot;
use prom::Prom;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use wire::histogram::LatencyHistogram;
use wire::monitoring::{CacheCounts, Event, EventMetrics, HEALTH_WINDOW};
use wire::protocol::{ErrorKind, StreamError};

/// The most requests the health window remembers.
const WINDOW_CAP: usize = 100_000;

#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    active: AtomicU64,
    /// The shutdown grace ended: what is still open is cut by the server.
    grace_over: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
    events: Mutex<VecDeque<Event>>,
    events_capacity: usize,
    system: Mutex<SystemSnapshot>,
    prom: Prom,
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
    /// First tokens of the health window, as they happened (µs).
    first_tokens: VecDeque<(Instant, u64)>,
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
}

impl Metrics {
    pub fn new(events_capacity: usize) -> Self {
        Self {
            started: Instant::now(),
            active: AtomicU64::new(0),
            grace_over: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::default(),
            events: Mutex::new(VecDeque::with_capacity(events_capacity.min(4096))),
            events_capacity,
            system: Mutex::default(),
            prom: Prom::new(),
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
        s.push_recent(false);
        drop(s);
        self.prom.rejected(kind);
        self.event(Event::Error {
            timestamp: now_iso(),
            client_id: None,
            chatbot_id: None,
            error: StreamError {
                kind,
                message: message.to_owned(),
            },
        });
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
        self.prom.started(active);
        self.event(Event::StreamStart {
            timestamp: now_iso(),
            client_id: client_id.to_owned(),
            chatbot_id: chatbot_id.to_owned(),
            streaming,
        });
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

    /// A KB lookup; an unavailable cache counts as a miss (it was served
    /// as one) and as unavailable.
    /// A prompt of `tokens` looked up in the model's prefix cache, `hit`
    /// of them found.
    pub fn prefix_lookup(&self, tokens: u64, hit: u64) {
        self.prom.prefix(tokens, hit);
    }

    pub fn kb_lookup(&self, found: &Lookup) {
        self.state().kb.count(found.is_hit());
        self.prom.cache("kb", found);
    }

    pub fn tts_lookup(&self, found: &Lookup) {
        self.state().tts.count(found.is_hit());
        self.prom.cache("tts", found);
    }

    /// The cache backend's last ping: its round trip, or down.
    pub fn cache_ping(&self, rtt: Option<std::time::Duration>) {
        self.prom.cache_ping(rtt);
    }

    pub fn set_rollout(&self, percentage: u8) {
        self.prom.set_rollout(percentage);
    }

    pub fn set_connections(&self, open: usize) {
        self.prom.set_connections(open);
    }

    pub fn connection_refused(&self) {
        self.prom.connection_refused();
    }

    /// A connection closed by its `timeout` (header_read, keep_alive, idle).
    pub fn connection_timed_out(&self, timeout: &str) {
        self.prom.connection_timed_out(timeout);
    }

    /// The shutdown grace ended: the streams still open are the server's
    /// to close (and its log says so, not the client's).
    pub fn grace_over(&self) {
        self.grace_over.store(true, Ordering::Relaxed);
    }

    pub fn set_system(&self, snap: SystemSnapshot) {
        let previous = std::mem::replace(&mut *self.system.lock().expect("system lock"), snap);
        self.prom.set_system(&previous, &snap);
    }

    pub fn system(&self) -> SystemSnapshot {
        *self.system.lock().expect("system lock")
    }

    /// Appends to the recent-events ring.
    pub fn event(&self, event: Event) {
        if self.events_capacity == 0 {
            return;
        }
        let mut ev = self.events.lock().expect("events lock");
        if ev.len() == self.events_capacity {
            ev.pop_front();
        }
        ev.push_back(event);
    }

    /// A stream's first token, when it is sent: the latency figures, the
    /// health window and the Prometheus histogram count it then, not when
    /// the stream ends (a stream of minutes would show nothing meanwhile).
    pub fn first_token(&self, latency: Duration) {
        let now = Instant::now();
        let mut s = self.state();
        s.first_token.record(latency);
        s.prune(now);
        if s.first_tokens.len() == WINDOW_CAP {
            s.first_tokens.pop_front();
        }
        s.first_tokens
            .push_back((now, u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)));
        drop(s);
        self.prom.observe("first_token", latency);
        self.prom.vllm.first_token(latency);
    }

    /// A stream's first audio chunk, when it is sent.
    pub fn first_audio(&self, latency: Duration) {
        self.state().first_audio.record(latency);
        self.prom.observe("first_audio", latency);
    }

    /// `outcome`: the complete latency of a success, or the failure's kind.
    fn finish(&self, streaming: bool, outcome: Result<Duration, ErrorKind>) {
        let active = self.active.fetch_sub(1, Ordering::Relaxed) - 1;
        self.prom.set_active(active);
        let mut s = self.state();
        match outcome {
            Ok(complete) => {
                s.successful += 1;
                if streaming {
                    s.streams_completed += 1;
                }
                s.complete.record(complete);
                s.push_recent(true);
                drop(s);
                self.prom.succeeded(complete);
            }
            Err(kind) => {
                s.failed += 1;
                s.errors[kind.index()] += 1;
                if streaming {
                    s.streams_failed += 1;
                }
                s.push_recent(false);
                drop(s);
                self.prom.failed(kind);
            }
        }
    }

    /// `GET /metrics` in the Prometheus text exposition format (0.0.4),
    /// with the model's slots as they are now (`waiting`, `running` of
    /// `slots`).
    pub fn prometheus(&self, (waiting, running, slots): (usize, usize, usize)) -> String {
        self.prom.vllm.set_model(waiting, running, slots);
        self.prom.encode()
    }

    fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

impl State {
    fn push_recent(&mut self, ok: bool) {
        let now = Instant::now();
        self.prune(now);
        if self.window.len() == WINDOW_CAP {
            self.window.pop_front();
        }
        self.window.push_back(Recent { at: now, ok });
    }

    fn prune(&mut self, now: Instant) {
        while self
            .window
            .front()
            .is_some_and(|r| now.duration_since(r.at) > HEALTH_WINDOW)
        {
            self.window.pop_front();
        }
        while self
            .first_tokens
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > HEALTH_WINDOW)
        {
            self.first_tokens.pop_front();
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

    fn counts(&self) -> CacheCounts {
        CacheCounts::new(self.hits, self.misses)
    }
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

    /// A success, `complete` after it was received (its first token and
    /// first audio were counted when they were sent).
    pub fn complete(mut self, complete: Duration, done: &wire::protocol::Done) {
        self.finished = true;
        self.metrics.finish(self.streaming, Ok(complete));
        self.metrics.prom.vllm.answered(complete, done.word_count);
        self.metrics.event(Event::StreamComplete {
            timestamp: now_iso(),
            client_id: std::mem::take(&mut self.client_id),
            chatbot_id: std::mem::take(&mut self.chatbot_id),
            metrics: EventMetrics {
                first_token_latency: done.first_token_latency,
                duration: done.duration,
                word_count: done.word_count,
            },
        });
    }

    pub fn fail(mut self, kind: ErrorKind, message: &str) {
        self.record_failure(kind, message);
    }

    fn record_failure(&mut self, kind: ErrorKind, message: &str) {
        self.finished = true;
        self.metrics.finish(self.streaming, Err(kind));
        self.metrics.event(Event::Error {
            timestamp: now_iso(),
            client_id: Some(std::mem::take(&mut self.client_id)),
            chatbot_id: Some(std::mem::take(&mut self.chatbot_id)),
            error: StreamError {
                kind,
                message: message.to_owned(),
            },
        });
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.finished && self.metrics.grace_over.load(Ordering::Relaxed) {
            tracing::warn!(
                clientId = %self.client_id,
                chatbotId = %self.chatbot_id,
                errorType = "network",
                "Stream closed by the server: the shutdown grace period ended before it finished"
            );
            self.record_failure(
                ErrorKind::Network,
                "closed by the server at shutdown (grace period over)",
            );
        } else if !self.finished {
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
    use wire::monitoring::HealthStatus;

    #[test]
    fn health_follows_the_requests_that_ended() {
        let m = Arc::new(Metrics::new(10));
        assert_eq!(
            m.health(&wire::monitoring::CacheState::InMemory).status,
            HealthStatus::Healthy
        );
        for _ in 0..97 {
            let g = m.begin(true, "c", "b");
            m.first_token(Duration::from_millis(100));
            g.complete(
                Duration::from_millis(200),
                &wire::protocol::Done {
                    word_count: 1,
                    first_token_latency: 100,
                    first_audio_latency: None,
                    duration: 200,
                    kb_cache: wire::protocol::CacheOutcome::Hit,
                    tts_cache_hits: 0,
                    tts_cache_misses: 0,
                },
            );
        }
        for _ in 0..3 {
            m.rejected(ErrorKind::Validation, "bad");
        }
        let h = m.health(&wire::monitoring::CacheState::InMemory);
        assert_eq!(h.status, HealthStatus::Degraded, "{h:?}");
        assert_eq!(h.checks.error_rate.value, "3.0%");
        assert_eq!(h.checks.latency.value, "100ms");
        for _ in 0..5 {
            drop(m.begin(true, "c", "b")); // dropped: a network failure
        }
        let h = m.health(&wire::monitoring::CacheState::InMemory);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.issues.len(), 1);
        assert_eq!(m.active(), 0);
        assert_eq!(m.detailed().metrics.errors.network, 5);
        assert_eq!(m.events(100).count, 10, "the ring keeps the last 10");
    }

    /// Long streams (issue 16): 50 streams in flight, each past its first
    /// token, none finished. The latency shows their first tokens, and the
    /// success rate is over finished requests (the ones in flight are
    /// `activeStreams`, not failures).
    #[test]
    fn streams_in_flight_show_their_first_tokens_and_are_not_failures() {
        let m = Arc::new(Metrics::new(10));
        let open: Vec<StreamGuard> = (0..50)
            .map(|_| {
                let g = m.begin(true, "c", "b");
                m.first_token(Duration::from_millis(300));
                g
            })
            .collect();
        let h = m.health(&wire::monitoring::CacheState::InMemory);
        assert_eq!(h.checks.latency.value, "300ms", "{h:?}");
        assert_eq!(h.status, HealthStatus::Healthy, "{h:?}");
        let s = m.summary().summary;
        assert_eq!((s.active_streams, s.total_requests), (50, 50));
        assert_eq!(s.success_rate, "100.0%");
        assert_eq!(s.avg_first_token_latency, 300);
        assert_eq!(m.detailed().metrics.requests.success_rate, "100.00%");
        assert!(
            m.prometheus((0, 0, 0))
                .contains("chatbot_latency_seconds_count{stage=\"first_token\"} 50"),
            "{}",
            m.prometheus((0, 0, 0))
        );
        drop(open); // the clients go: network failures, now finished
        assert_eq!(m.summary().summary.success_rate, "0.0%");
    }
}
