//! The monitoring endpoints' answers, built from what [`Metrics`] counted:
//! `wire::monitoring`'s types, judged by its rules.

use super::{Metrics, now_iso};
use std::time::Instant;
use wire::format::{percent, uptime};
use wire::monitoring::{
    CacheHitRates, CacheState, Detailed, DetailedMetrics, Errors, Events, Health, HealthInput,
    Latency, Requests, Streaming, Summary, SummaryFigures, System, SystemFigures, p95_ms,
};

impl Metrics {
    /// `GET /api/metrics/health/streaming`: the guide's health check over
    /// the last [`wire::monitoring::HEALTH_WINDOW`].
    pub fn health(&self, cache: &CacheState) -> Health {
        let active_streams = self.active();
        let (ended, failed, first_token_p95_ms) = {
            let mut s = self.state();
            s.prune(Instant::now());
            let ended = s.window.len() as u64;
            let failed = s.window.iter().filter(|r| !r.ok).count() as u64;
            let mut ft: Vec<u64> = s.first_tokens.iter().map(|(_, us)| *us).collect();
            (ended, failed, p95_ms(&mut ft))
        };
        let input = HealthInput {
            ended,
            failed,
            first_token_p95_ms,
            active_streams,
        };
        Health::judge(input, cache, now_iso())
    }

    /// `GET /api/metrics/streaming/summary`.
    pub fn summary(&self) -> Summary {
        let active = self.active();
        let s = self.state();
        Summary {
            success: true,
            timestamp: now_iso(),
            summary: SummaryFigures {
                uptime: uptime(self.uptime_secs()),
                total_requests: s.total,
                // Over finished requests: the ones in flight are
                // `activeStreams`, not failures.
                success_rate: percent(s.successful, s.successful + s.failed, 1, 100.0),
                active_streams: active,
                avg_first_token_latency: s.first_token.summary_ms().avg,
                avg_complete_latency: s.complete.summary_ms().avg,
                cache_hit_rate: CacheHitRates {
                    kb: s.kb.counts().hit_rate,
                    tts: s.tts.counts().hit_rate,
                },
                error_count: s.failed,
            },
        }
    }

    /// `GET /api/metrics/streaming`.
    pub fn detailed(&self) -> Detailed {
        let active = self.active();
        let s = self.state();
        let up = self.uptime_secs();
        Detailed {
            success: true,
            timestamp: now_iso(),
            metrics: DetailedMetrics {
                uptime: up,
                uptime_formatted: uptime(up),
                requests: Requests {
                    total: s.total,
                    successful: s.successful,
                    failed: s.failed,
                    active,
                    success_rate: percent(s.successful, s.successful + s.failed, 2, 100.0),
                },
                latency: Latency {
                    first_token: s.first_token.summary_ms(),
                    first_audio: s.first_audio.summary_ms(),
                    complete: s.complete.summary_ms(),
                },
                cache: wire::monitoring::Caches {
                    kb: s.kb.counts(),
                    tts: s.tts.counts(),
                },
                errors: Errors::new(s.errors),
                streaming: Streaming {
                    total_streams: s.streams_total,
                    active_count: active,
                    completed_count: s.streams_completed,
                    error_count: s.streams_failed,
                },
            },
        }
    }

    /// `GET /api/metrics/streaming/events?limit=N`, newest first.
    pub fn events(&self, limit: usize) -> Events {
        let ring = self.events.lock().expect("events lock");
        let events: Vec<_> = ring.iter().rev().take(limit).cloned().collect();
        Events {
            success: true,
            timestamp: now_iso(),
            count: events.len(),
            events,
        }
    }

    /// `GET /api/metrics/system`: memory and CPU against the guide's
    /// "System Health" levels.
    pub fn system_answer(&self) -> System {
        let snap = self.system();
        System {
            success: true,
            timestamp: now_iso(),
            system: SystemFigures::judge(
                snap.rss_bytes,
                snap.limit_bytes,
                snap.memory_percent(),
                snap.cpu_percent,
                snap.cores,
                snap.cpu_seconds,
            ),
        }
    }
}
