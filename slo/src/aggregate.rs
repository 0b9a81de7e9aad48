//! The figures of a run, built from its request records: latency
//! histograms (uncorrected and coordinated-omission corrected), counts by
//! outcome, audio underruns and a per-second time series. Pure: the load
//! generator feeds records in, reports read figures out.

use crate::evidence::{Evidence, Interval};
use crate::histogram::LatencyHistogram;
use crate::record::{Outcome, RequestRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The latencies the harness measures, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    FirstToken,
    FirstAudio,
    Complete,
    InterToken,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::FirstToken,
        Metric::FirstAudio,
        Metric::Complete,
        Metric::InterToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstToken => "first_token",
            Metric::FirstAudio => "first_audio",
            Metric::Complete => "complete",
            Metric::InterToken => "inter_token",
        }
    }
}

/// All histograms of one kind (the run's, or one interval's).
#[derive(Clone, Debug, Default)]
pub struct Histograms {
    pub first_token: LatencyHistogram,
    pub first_audio: LatencyHistogram,
    pub complete: LatencyHistogram,
    pub inter_token: LatencyHistogram,
    pub first_token_corrected: LatencyHistogram,
    pub first_audio_corrected: LatencyHistogram,
    pub complete_corrected: LatencyHistogram,
    /// Per request: (complete - first token) / (output tokens - 1).
    pub time_per_output_token: LatencyHistogram,
    /// Per request: complete / output tokens, the inverse of the
    /// request's output tokens/s (percentiles map exactly).
    pub per_output_token: LatencyHistogram,
    pub first_reasoning: LatencyHistogram,
}

impl Histograms {
    /// Adds one successful request.
    pub fn add(&mut self, r: &RequestRecord, gaps_us: &[u32]) {
        let late = r.lateness_us;
        if let Some(ft) = r.first_token_us {
            self.first_token.record_us(ft);
            self.first_token_corrected
                .record_us(ft.saturating_add(late));
        }
        if let Some(fa) = r.first_audio_us {
            self.first_audio.record_us(fa);
            self.first_audio_corrected
                .record_us(fa.saturating_add(late));
        }
        if let Some(c) = r.complete_us {
            self.complete.record_us(c);
            self.complete_corrected.record_us(c.saturating_add(late));
        }
        for &g in gaps_us {
            self.inter_token.record_us(u64::from(g));
        }
        let (n, _) = r.output_tokens();
        if let (Some(ft), Some(c)) = (r.first_token_us, r.complete_us) {
            if n >= 2 {
                self.time_per_output_token
                    .record_us(c.saturating_sub(ft) / (n - 1));
            }
            if n >= 1 {
                self.per_output_token.record_us(c / n);
            }
        }
        if let Some(fr) = r.first_reasoning_us {
            self.first_reasoning.record_us(fr);
        }
    }

    /// The named histograms, with their interval-log tags.
    pub fn tagged(&self) -> [(&'static str, &LatencyHistogram); 7] {
        [
            ("first_token", &self.first_token),
            ("first_audio", &self.first_audio),
            ("complete", &self.complete),
            ("inter_token", &self.inter_token),
            ("first_token_corrected", &self.first_token_corrected),
            ("first_audio_corrected", &self.first_audio_corrected),
            ("complete_corrected", &self.complete_corrected),
        ]
    }

    /// Adds another set's samples (histogram addition: exact).
    pub fn merge(&mut self, other: &Histograms) {
        // Destructured: a new histogram cannot be forgotten here.
        let Histograms {
            first_token,
            first_audio,
            complete,
            inter_token,
            first_token_corrected,
            first_audio_corrected,
            complete_corrected,
            time_per_output_token,
            per_output_token,
            first_reasoning,
        } = other;
        self.first_token.add(first_token);
        self.first_audio.add(first_audio);
        self.complete.add(complete);
        self.inter_token.add(inter_token);
        self.first_token_corrected.add(first_token_corrected);
        self.first_audio_corrected.add(first_audio_corrected);
        self.complete_corrected.add(complete_corrected);
        self.time_per_output_token.add(time_per_output_token);
        self.per_output_token.add(per_output_token);
        self.first_reasoning.add(first_reasoning);
    }

    pub fn reset(&mut self) {
        for h in [
            &mut self.first_token,
            &mut self.first_audio,
            &mut self.complete,
            &mut self.inter_token,
            &mut self.first_token_corrected,
            &mut self.first_audio_corrected,
            &mut self.complete_corrected,
            &mut self.time_per_output_token,
            &mut self.per_output_token,
            &mut self.first_reasoning,
        ] {
            h.reset();
        }
    }
}

/// One second of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Second {
    /// Seconds since the run started (the bucket `[t, t+1)`).
    pub t: u64,
    pub started: u64,
    pub completed: u64,
    pub errors: u64,
    /// Streams open at the end of the second (sampled).
    pub active: u64,
    /// Requests that ended in this second and that a stall of the load
    /// generator's own scheduler overlapped (see
    /// [`crate::record::RequestRecord::client_stall_us`]).
    #[serde(default)]
    pub stalled: u64,
    pub p50_first_token_ms: Option<f64>,
    pub p95_first_token_ms: Option<f64>,
    pub p99_first_token_ms: Option<f64>,
    pub p95_complete_ms: Option<f64>,
    // Raw samples (µs) of this second: a full HdrHistogram per second is
    // ~190 KB, which an hour-long soak cannot afford; 8 bytes a request can.
    #[serde(skip)]
    first_token: Vec<u64>,
    #[serde(skip)]
    complete: Vec<u64>,
}

impl Second {
    /// Second `t` with nothing in it yet.
    pub fn empty(t: u64) -> Second {
        Second {
            t,
            ..Second::default()
        }
    }
}

/// A drill's figures for one timeline event (`drill.<event>.*`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DrillFigures {
    /// From the incident's event to the first of its expected alerts
    /// firing, seconds; `None`: none fired.
    pub detect_s: Option<f64>,
    /// From the mitigation to the incident being over, seconds; `None`:
    /// not by the end of the run.
    pub recover_s: Option<f64>,
}

/// Everything counted over a run.
#[derive(Clone, Debug, Default)]
pub struct Aggregate {
    pub histograms: Histograms,
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Failed requests by the HTTP status the target answered them with
    /// (none for a failure before or without a status, or with a 2xx).
    pub failed_statuses: BTreeMap<u16, u64>,
    pub total: u64,
    pub late: u64,
    pub warmup_excluded: u64,
    /// Requests during which the load generator's own scheduler stalled
    /// (see [`crate::record::RequestRecord::client_stall_us`]).
    pub client_stalled: u64,
    /// The warm-up's length: the per-second series starts after it.
    pub warmup_s: f64,
    pub tokens: u64,
    /// Output tokens of the successful requests (see
    /// [`RequestRecord::output_tokens`]).
    pub output_tokens: u64,
    /// Successful requests whose output tokens were counted from the
    /// stream because the server gave no count.
    pub output_counted: u64,
    pub input_tokens: u64,
    /// `[tokens]`: the client's counts.
    pub client_tokens: ClientTokens,
    pub reasoning_tokens: u64,
    pub requests_with_reasoning: u64,
    pub underruns: u64,
    pub requests_with_underrun: u64,
    pub requests_with_audio: u64,
    /// Successful streams long enough to tell buffering, and those that
    /// looked buffered.
    pub streams_checked: u64,
    pub streams_buffered: u64,
    pub stall: LatencyHistogram,
    /// Open model: each sent request's lateness against its schedule.
    pub send_error: LatencyHistogram,
    pub kb_hits: u64,
    pub kb_misses: u64,
    pub tts_hits: u64,
    pub tts_misses: u64,
    pub series: Vec<Second>,
    /// Per-request latency limits (µs) that make a request count toward
    /// goodput; see [`GoodputLimits`].
    pub goodput_limits: GoodputLimits,
    pub good: u64,
    /// Where the requests' time went before their first token.
    pub phases: PhaseHistograms,
}

/// The phases of the measured requests that got a response head (see
/// [`RequestRecord::dns_us`] and the fields after it).
#[derive(Clone, Debug, Default)]
pub struct PhaseHistograms {
    pub dns: LatencyHistogram,
    pub connect: LatencyHistogram,
    pub tls: LatencyHistogram,
    pub written: LatencyHistogram,
    pub head: LatencyHistogram,
    pub after_head: LatencyHistogram,
}

impl PhaseHistograms {
    pub fn add(&mut self, r: &RequestRecord) {
        let Some(head) = r.headers_us else {
            return;
        };
        for (h, v) in [
            (&mut self.dns, r.dns_us),
            (&mut self.connect, r.connect_us),
            (&mut self.tls, r.tls_us),
            (&mut self.written, r.written_us),
        ] {
            if let Some(v) = v {
                h.record_us(v);
            }
        }
        self.head
            .record_us(head.saturating_sub(r.written_us.unwrap_or(0)));
        if let Some(ft) = r.first_token_us {
            self.after_head.record_us(ft.saturating_sub(head));
        }
    }

    /// Adds another part's phases (histogram addition: exact).
    pub fn merge(&mut self, other: &PhaseHistograms) {
        // Destructured: a new phase cannot be forgotten here.
        let PhaseHistograms {
            dns,
            connect,
            tls,
            written,
            head,
            after_head,
        } = other;
        self.dns.add(dns);
        self.connect.add(connect);
        self.tls.add(tls);
        self.written.add(written);
        self.head.add(head);
        self.after_head.add(after_head);
    }

    pub fn figures(&self) -> PhaseFigures {
        let of = |h: &LatencyHistogram| LatencyFigures::of(h, None);
        PhaseFigures {
            new_connections: self.connect.len(),
            dns: of(&self.dns),
            connect: of(&self.connect),
            tls: of(&self.tls),
            written: of(&self.written),
            head: of(&self.head),
            after_head: of(&self.after_head),
        }
    }
}

/// Where the time went before the first token, in ms, from the client's
/// own connection: on new connections, name resolution, the TCP connect
/// and the TLS handshake; on every request that got a response head, the
/// send until the body was handed to the connection (`written`), the
/// wait from there to the response head (`head`: the target's queue and
/// its work before answering), and from the head to the first token
/// (`after_head`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseFigures {
    /// Requests that opened a connection (the others used a pooled one).
    pub new_connections: u64,
    pub dns: LatencyFigures,
    pub connect: LatencyFigures,
    pub tls: LatencyFigures,
    pub written: LatencyFigures,
    pub head: LatencyFigures,
    pub after_head: LatencyFigures,
}

/// The per-request objectives: a request is *good* when it succeeded and
/// each of its latencies (measured from its scheduled start under an open
/// model) is within its limit. A limit of `None` does not apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GoodputLimits {
    pub first_token_ms: Option<f64>,
    pub first_audio_ms: Option<f64>,
    pub complete_ms: Option<f64>,
}

impl GoodputLimits {
    pub fn admits(&self, r: &RequestRecord) -> bool {
        let within = |v: Option<u64>, limit: Option<f64>| match (v, limit) {
            (Some(v), Some(l)) => v.saturating_add(r.lateness_us) as f64 <= l * 1000.0,
            _ => true,
        };
        r.outcome.is_ok()
            && within(r.first_token_us, self.first_token_ms)
            && within(r.first_audio_us, self.first_audio_ms)
            && within(r.complete_us, self.complete_ms)
    }
}

/// A request that started this much after its schedule is `late`.
pub const LATE_US: u64 = 10_000;

impl Aggregate {
    /// Adds a finished (or dropped) request. Warm-up requests count only
    /// as excluded: they are in no figure, the time series included.
    pub fn add(&mut self, r: &RequestRecord, gaps_us: &[u32]) {
        if r.warmup {
            self.warmup_excluded += 1;
            return;
        }
        let start_s = r.scheduled_us.unwrap_or(r.start_us) / 1_000_000;
        let end_s = r.start_us.saturating_add(r.end_us) / 1_000_000;
        self.second(start_s).started += 1;
        let sec = self.second(end_s);
        if r.outcome.is_ok() {
            sec.completed += 1;
            if let Some(ft) = r.first_token_us {
                sec.first_token.push(ft.saturating_add(r.lateness_us));
            }
            if let Some(c) = r.complete_us {
                sec.complete.push(c.saturating_add(r.lateness_us));
            }
        } else {
            sec.errors += 1;
        }
        self.total += 1;
        self.phases.add(r);
        *self.outcomes.entry(r.outcome).or_default() += 1;
        if let Some(status) = r
            .status
            .filter(|s| !r.outcome.is_ok() && !(200..300).contains(s))
        {
            *self.failed_statuses.entry(status).or_default() += 1;
        }
        if r.lateness_us > LATE_US && r.outcome != Outcome::Dropped {
            self.late += 1;
        }
        if r.scheduled_us.is_some() && r.outcome != Outcome::Dropped {
            self.send_error.record_us(r.lateness_us);
        }
        if r.client_stall_us > crate::record::STALL_FLAG_US {
            self.client_stalled += 1;
            self.second(end_s).stalled += 1;
        }
        self.tokens = self.tokens.saturating_add(u64::from(r.tokens));
        if r.audio_chunks > 0 {
            self.requests_with_audio += 1;
            self.underruns = self.underruns.saturating_add(u64::from(r.underruns));
            self.requests_with_underrun += u64::from(r.underruns > 0);
            self.stall.record_us(r.stall_us);
        }
        match r.kb_cache.as_deref() {
            Some("hit") => self.kb_hits += 1,
            Some("miss") => self.kb_misses += 1,
            _ => {}
        }
        self.tts_hits = self.tts_hits.saturating_add(r.tts_cache_hits.unwrap_or(0));
        self.tts_misses = self
            .tts_misses
            .saturating_add(r.tts_cache_misses.unwrap_or(0));
        if r.outcome.is_ok() {
            self.histograms.add(r, gaps_us);
            if r.streaming && r.tokens >= crate::record::BUFFER_MIN_TOKENS {
                self.streams_checked += 1;
                self.streams_buffered += u64::from(r.buffered);
            }
            let (n, from_server) = r.output_tokens();
            self.output_tokens = self.output_tokens.saturating_add(n);
            self.output_counted += u64::from(!from_server);
            self.input_tokens = self
                .input_tokens
                .saturating_add(r.input_tokens.unwrap_or(0));
            self.client_tokens.add(r);
        }
        if r.reasoning_tokens > 0 {
            self.reasoning_tokens = self
                .reasoning_tokens
                .saturating_add(u64::from(r.reasoning_tokens));
            self.requests_with_reasoning += 1;
        }
        if self.goodput_limits.admits(r) {
            self.good += 1;
        }
    }

    /// Records the open streams at second `t` (not during the warm-up).
    pub fn sample_active(&mut self, t: u64, active: u64, warmup: bool) {
        if !warmup {
            self.second(t).active = active;
        }
    }

    fn second(&mut self, t: u64) -> &mut Second {
        let t = t.min(24 * 3600) as usize;
        while self.series.len() <= t {
            let n = self.series.len() as u64;
            self.series.push(Second::empty(n));
        }
        &mut self.series[t]
    }

    /// Adds the figures of another part of the same run whose times
    /// count from the same zero (a shard's, its records shifted by
    /// [`crate::record::RequestRecord::shift`]): histograms added, counts
    /// summed, the per-second series added second by second (the open
    /// streams too: each part sampled its own). The result is what one
    /// aggregate of both parts' records gives (`merge`'s property test).
    pub fn merge(&mut self, other: &Aggregate) {
        // Destructured: a new field cannot be forgotten here.
        let Aggregate {
            histograms,
            outcomes,
            failed_statuses,
            total,
            late,
            warmup_excluded,
            client_stalled,
            warmup_s,
            tokens,
            output_tokens,
            output_counted,
            input_tokens,
            client_tokens,
            reasoning_tokens,
            requests_with_reasoning,
            underruns,
            requests_with_underrun,
            requests_with_audio,
            streams_checked,
            streams_buffered,
            stall,
            send_error,
            kb_hits,
            kb_misses,
            tts_hits,
            tts_misses,
            series,
            goodput_limits: _,
            good,
            phases,
        } = other;
        self.histograms.merge(histograms);
        self.phases.merge(phases);
        self.client_tokens.merge(client_tokens);
        for (o, n) in outcomes {
            let c = self.outcomes.entry(*o).or_default();
            *c = c.saturating_add(*n);
        }
        for (status, n) in failed_statuses {
            let c = self.failed_statuses.entry(*status).or_default();
            *c = c.saturating_add(*n);
        }
        for (mine, theirs) in [
            (&mut self.total, total),
            (&mut self.late, late),
            (&mut self.warmup_excluded, warmup_excluded),
            (&mut self.client_stalled, client_stalled),
            (&mut self.tokens, tokens),
            (&mut self.output_tokens, output_tokens),
            (&mut self.output_counted, output_counted),
            (&mut self.input_tokens, input_tokens),
            (&mut self.reasoning_tokens, reasoning_tokens),
            (&mut self.requests_with_reasoning, requests_with_reasoning),
            (&mut self.underruns, underruns),
            (&mut self.requests_with_underrun, requests_with_underrun),
            (&mut self.requests_with_audio, requests_with_audio),
            (&mut self.streams_checked, streams_checked),
            (&mut self.streams_buffered, streams_buffered),
            (&mut self.kb_hits, kb_hits),
            (&mut self.kb_misses, kb_misses),
            (&mut self.tts_hits, tts_hits),
            (&mut self.tts_misses, tts_misses),
            (&mut self.good, good),
        ] {
            *mine = mine.saturating_add(*theirs);
        }
        self.warmup_s = self.warmup_s.max(*warmup_s);
        self.stall.add(stall);
        self.send_error.add(send_error);
        for s in series {
            let mine = self.second(s.t);
            mine.started = mine.started.saturating_add(s.started);
            mine.completed = mine.completed.saturating_add(s.completed);
            mine.errors = mine.errors.saturating_add(s.errors);
            mine.active = mine.active.saturating_add(s.active);
            mine.stalled = mine.stalled.saturating_add(s.stalled);
            mine.first_token.extend_from_slice(&s.first_token);
            mine.complete.extend_from_slice(&s.complete);
        }
    }

    pub fn ok(&self) -> u64 {
        self.outcomes.get(&Outcome::Ok).copied().unwrap_or(0)
    }

    pub fn failed(&self) -> u64 {
        self.total - self.ok()
    }

    /// Arrivals of an open model that were never sent.
    pub fn dropped(&self) -> u64 {
        self.outcomes.get(&Outcome::Dropped).copied().unwrap_or(0)
    }

    /// The per-second series after the warm-up, with each second's
    /// percentiles measured from the scheduled start.
    pub fn series(&self) -> Vec<Second> {
        let first = self.warmup_s.max(0.0).floor() as usize;
        self.series
            .iter()
            .skip(first)
            .map(|s| {
                let mut ft = s.first_token.clone();
                let mut c = s.complete.clone();
                ft.sort_unstable();
                c.sort_unstable();
                Second {
                    p50_first_token_ms: nearest_rank(&ft, 0.50).map(ms),
                    p95_first_token_ms: nearest_rank(&ft, 0.95).map(ms),
                    p99_first_token_ms: nearest_rank(&ft, 0.99).map(ms),
                    p95_complete_ms: nearest_rank(&c, 0.95).map(ms),
                    first_token: Vec::new(),
                    complete: Vec::new(),
                    ..s.clone()
                }
            })
            .collect()
    }

    /// The `latency_ms`, `requests`, `errors` and `audio` figures.
    pub fn figures(&self, measured: Duration, open_model: bool) -> Figures {
        let h = &self.histograms;
        let (errors, errors_by_cause) = self.errors_by_type_and_cause();
        let secs = measured.as_secs_f64().max(1e-9);
        let (latency_ms, scheduled_latency_ms) = self.latency_tables(open_model);
        Figures {
            goodput: self.percent_of_total(self.good),
            goodput_limits: self.goodput_limits,
            distributions: self.distributions(open_model),
            requests: RequestFigures {
                total: self.total,
                ok: self.ok(),
                failed: self.failed(),
                dropped: self.dropped(),
                late: self.late,
                client_stalled: self.client_stalled,
                warmup_excluded: self.warmup_excluded,
                error_rate: self.percent_of_total(self.failed()),
                success_rate: self.percent_of_total(self.ok()),
                send_error_ms: open_model.then(|| LatencyFigures::of(&self.send_error, None)),
            },
            error_rates: errors
                .iter()
                .map(|(k, &n)| (k.clone(), self.percent_of_total(n)))
                .collect(),
            errors,
            errors_by_cause,
            errors_by_status: self
                .failed_statuses
                .iter()
                .map(|(s, &n)| (s.to_string(), n))
                .collect(),
            latency_ms,
            scheduled_latency_ms,
            phases_ms: self.phases.figures(),
            tokens: TokenFigures {
                output: self.output_tokens,
                input: self.input_tokens,
                counted_from_stream: self.output_counted,
                output_per_s: self.output_tokens as f64 / secs,
                per_request_per_s: RateFigures::inverse_of(&h.per_output_token),
                reasoning: self.reasoning_tokens,
                requests_with_reasoning: self.requests_with_reasoning,
                client: self.client_tokens.clone(),
            },
            audio: AudioFigures {
                requests_with_audio: self.requests_with_audio,
                underruns: self.underruns,
                requests_with_underrun: self.requests_with_underrun,
                stall_ms: LatencyFigures::of(&self.stall, None),
            },
            streams: StreamFigures {
                checked: self.streams_checked,
                buffered: self.streams_buffered,
                buffered_share: (self.streams_checked > 0)
                    .then(|| self.streams_buffered as f64 * 100.0 / self.streams_checked as f64),
            },
            throughput: Throughput {
                requests_per_s: self.total as f64 / secs,
                ok_per_s: self.ok() as f64 / secs,
                tokens_per_s: self.tokens as f64 / secs,
            },
            cache: CacheFigures {
                kb_hit_rate: rate(self.kb_hits, self.kb_misses),
                tts_hit_rate: rate(self.tts_hits, self.tts_misses),
                kb_hits: self.kb_hits,
                kb_misses: self.kb_misses,
                tts_hits: self.tts_hits,
                tts_misses: self.tts_misses,
            },
            drill: BTreeMap::new(),
        }
    }

    /// `n` as a percentage of every request (0 when there were none).
    fn percent_of_total(&self, n: u64) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / self.total as f64
        }
    }

    /// Failures counted by the guide's error types (each type present,
    /// zero or not) and by cause.
    fn errors_by_type_and_cause(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let mut errors: BTreeMap<String, u64> = ["openai", "tts", "network", "validation", "other"]
            .into_iter()
            .map(|k| (k.to_owned(), 0))
            .collect();
        let mut by_cause = BTreeMap::new();
        for (&o, &n) in &self.outcomes {
            if let Some(t) = o.guide_type() {
                *errors.entry(t.to_owned()).or_default() += n;
                *by_cause.entry(o.as_str().to_owned()).or_default() += n;
            }
        }
        (errors, by_cause)
    }

    /// The distributions' points, as the user saw them: from the schedule
    /// under an open model.
    fn distributions(&self, open_model: bool) -> Distributions {
        let h = &self.histograms;
        let distribution = |u: &LatencyHistogram, c: &LatencyHistogram| -> Vec<[f64; 2]> {
            let h = if open_model { c } else { u };
            if h.is_empty() {
                return Vec::new();
            }
            DISTRIBUTION_QUANTILES
                .iter()
                .map(|&q| [q, ms(h.quantile_us(q))])
                .collect()
        };
        Distributions {
            first_token: distribution(&h.first_token, &h.first_token_corrected),
            first_audio: distribution(&h.first_audio, &h.first_audio_corrected),
            complete: distribution(&h.complete, &h.complete_corrected),
        }
    }

    /// The latency table (from the send, with the corrected figures under
    /// an open model) and the scheduled one (as the user saw it).
    fn latency_tables(&self, open_model: bool) -> (LatencyTable, LatencyTable) {
        let h = &self.histograms;
        let lat = |u: &LatencyHistogram, c: Option<&LatencyHistogram>| LatencyFigures {
            corrected: c
                .filter(|_| open_model)
                .map(|c| Box::new(LatencyFigures::of(c, None))),
            ..LatencyFigures::of(u, None)
        };
        let user = |u: &LatencyHistogram, c: &LatencyHistogram| {
            LatencyFigures::of(if open_model { c } else { u }, None)
        };
        (
            LatencyTable {
                first_token: lat(&h.first_token, Some(&h.first_token_corrected)),
                first_audio: lat(&h.first_audio, Some(&h.first_audio_corrected)),
                complete: lat(&h.complete, Some(&h.complete_corrected)),
                inter_token: lat(&h.inter_token, None),
                time_per_output_token: lat(&h.time_per_output_token, None),
                first_reasoning: lat(&h.first_reasoning, None),
            },
            LatencyTable {
                first_token: user(&h.first_token, &h.first_token_corrected),
                first_audio: user(&h.first_audio, &h.first_audio_corrected),
                complete: user(&h.complete, &h.complete_corrected),
                inter_token: LatencyFigures::of(&h.inter_token, None),
                time_per_output_token: LatencyFigures::of(&h.time_per_output_token, None),
                first_reasoning: LatencyFigures::of(&h.first_reasoning, None),
            },
        )
    }
}

/// The nearest-rank quantile of sorted samples; `None` when empty.
fn nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    let n = sorted.len();
    (n > 0).then(|| sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1])
}

fn rate(hits: u64, misses: u64) -> Option<f64> {
    (hits + misses > 0).then(|| hits as f64 * 100.0 / (hits + misses) as f64)
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// Percentiles of one latency, in milliseconds (µs precision). With no
/// sample every figure but `count` is `null`: absent is not zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencyFigures {
    pub count: u64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// Open model: the same measured from each request's scheduled start.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub corrected: Option<Box<LatencyFigures>>,
    /// How sure each percentile is: its 95 % confidence interval and the
    /// samples it needs (see [`crate::evidence`]); null with no sample.
    #[serde(default)]
    pub evidence: Option<Evidence>,
}

impl LatencyFigures {
    /// The value of a percentile.
    pub fn percentile(&self, p: crate::evidence::Percentile) -> Option<f64> {
        use crate::evidence::Percentile;
        match p {
            Percentile::P50 => self.p50,
            Percentile::P90 => self.p90,
            Percentile::P95 => self.p95,
            Percentile::P99 => self.p99,
        }
    }

    pub fn of(h: &LatencyHistogram, corrected: Option<&LatencyHistogram>) -> Self {
        let some = |v: f64| (!h.is_empty()).then_some(v);
        Self {
            count: h.len(),
            mean: some((h.mean_us() / 1000.0 * 1000.0).round() / 1000.0),
            p50: some(ms(h.quantile_us(0.50))),
            p90: some(ms(h.quantile_us(0.90))),
            p95: some(ms(h.quantile_us(0.95))),
            p99: some(ms(h.quantile_us(0.99))),
            max: some(ms(h.max_us())),
            corrected: corrected.map(|c| Box::new(LatencyFigures::of(c, None))),
            evidence: (!h.is_empty()).then(|| evidence_of(h)),
        }
    }
}

/// The 95 % interval of each percentile of `h`, in ms.
fn evidence_of(h: &LatencyHistogram) -> Evidence {
    let n = h.len();
    let interval = |p: crate::evidence::Percentile| {
        let q = p.quantile();
        let (lo, hi) = crate::evidence::rank_interval(n, q, crate::evidence::CONFIDENCE);
        Interval {
            lo: lo.and_then(|r| h.value_at_rank_us(r, true)).map(ms),
            hi: hi.and_then(|r| h.value_at_rank_us(r, false)).map(ms),
            min_samples: crate::evidence::min_samples(q),
        }
    };
    use crate::evidence::Percentile::{P50, P90, P95, P99};
    Evidence {
        confidence: crate::evidence::CONFIDENCE,
        p50: interval(P50),
        p90: interval(P90),
        p95: interval(P95),
        p99: interval(P99),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencyTable {
    pub first_token: LatencyFigures,
    pub first_audio: LatencyFigures,
    pub complete: LatencyFigures,
    pub inter_token: LatencyFigures,
    /// Per request, (complete - first token) / (output tokens - 1): the
    /// LLM tools' TPOT.
    #[serde(default)]
    pub time_per_output_token: LatencyFigures,
    /// The first reasoning chunk (models that think before they answer).
    #[serde(default)]
    pub first_reasoning: LatencyFigures,
}

/// Output tokens, as the LLM benchmarks count them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenFigures {
    /// Output tokens of the successful requests: the server's count where
    /// it gave one (`usage.completion_tokens`, `done.wordCount`), else the
    /// token events counted.
    pub output: u64,
    /// Prompt tokens of the successful requests, as the server counted
    /// them (OpenAI `usage.prompt_tokens`; 0 when it gives no count).
    pub input: u64,
    /// Successful requests whose count is the token events counted (the
    /// server gave none).
    pub counted_from_stream: u64,
    /// `output` per second of the measured part.
    pub output_per_s: f64,
    /// Each successful request's output tokens / its complete time.
    pub per_request_per_s: RateFigures,
    /// Reasoning chunks (not in `output`).
    pub reasoning: u64,
    pub requests_with_reasoning: u64,
    /// `[tokens]`: the client's own counts, with the run's tokenizer,
    /// beside the server's above.
    #[serde(default)]
    pub client: ClientTokens,
}

/// `[tokens]`: the client's own counts of the successful requests, and
/// how they compare with the server's and with what was asked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientTokens {
    /// Successful requests the client counted (a tokenizer was given).
    pub counted: u64,
    /// Their prompts' tokens (every message) and their answers' tokens,
    /// by the client's tokenizer.
    pub input: u64,
    pub output: u64,
    /// Counted requests where the server also counted (`usage`), and its
    /// counts of their prompts and answers.
    pub compared: u64,
    pub server_input: u64,
    pub server_output: u64,
    /// Compared requests whose prompt or answer count differs from the
    /// server's: another tokenizer, or the server's chat template (its
    /// prompt count includes it).
    pub disagreements: u64,
    /// Successful requests asked for an answer length (`[tokens] output`,
    /// sent as `max_tokens`), and those whose answer came back shorter (by
    /// the server's count where it gave one, else the client's).
    pub asked: u64,
    pub short: u64,
}

impl ClientTokens {
    fn add(&mut self, r: &RequestRecord) {
        if let (Some(input), Some(output)) = (r.client_input_tokens, r.client_output_tokens) {
            self.counted += 1;
            self.input = self.input.saturating_add(u64::from(input));
            self.output = self.output.saturating_add(u64::from(output));
            if let (Some(si), Some(so)) = (r.input_tokens, r.word_count) {
                self.compared += 1;
                self.server_input = self.server_input.saturating_add(si);
                self.server_output = self.server_output.saturating_add(so);
                self.disagreements += u64::from(si != u64::from(input) || so != u64::from(output));
            }
        }
        if let Some(asked) = r.asked_output_tokens {
            self.asked += 1;
            let served = r
                .word_count
                .or(r.client_output_tokens.map(u64::from))
                .unwrap_or(0);
            self.short += u64::from(served < u64::from(asked));
        }
    }

    fn merge(&mut self, o: &ClientTokens) {
        let ClientTokens {
            counted,
            input,
            output,
            compared,
            server_input,
            server_output,
            disagreements,
            asked,
            short,
        } = o;
        for (mine, theirs) in [
            (&mut self.counted, counted),
            (&mut self.input, input),
            (&mut self.output, output),
            (&mut self.compared, compared),
            (&mut self.server_input, server_input),
            (&mut self.server_output, server_output),
            (&mut self.disagreements, disagreements),
            (&mut self.asked, asked),
            (&mut self.short, short),
        ] {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// Percentiles of a per-request rate, where low is bad: `p5` is the rate
/// that 95 % of requests reach or beat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RateFigures {
    pub count: u64,
    pub p50: Option<f64>,
    pub p10: Option<f64>,
    pub p5: Option<f64>,
    pub p1: Option<f64>,
}

impl RateFigures {
    /// From a histogram of µs per unit: the rate's q-quantile is the
    /// inverse of the time's (1 - q)-quantile.
    fn inverse_of(h: &LatencyHistogram) -> RateFigures {
        let at = |q: f64| {
            (!h.is_empty()).then(|| {
                let us = h.quantile_us(q).max(1) as f64;
                (1e6 / us * 1000.0).round() / 1000.0
            })
        };
        RateFigures {
            count: h.len(),
            p50: at(0.50),
            p10: at(0.90),
            p5: at(0.95),
            p1: at(0.99),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestFigures {
    /// Requests sent after the warm-up.
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    /// Scheduled but never sent: later than `max_lateness` (open model).
    /// Counted in `total` and `failed`: the service did not serve them.
    pub dropped: u64,
    /// Sent more than 10 ms after their schedule (open model).
    pub late: u64,
    /// Open model (a rate or a trace): how late each sent request left
    /// against its schedule, the send-time error (dropped ones are in
    /// `dropped`).
    #[serde(default)]
    pub send_error_ms: Option<LatencyFigures>,
    /// Requests that a stall of the load generator's own scheduler
    /// overlapped: their latencies may be the client's, not the server's.
    pub client_stalled: u64,
    pub warmup_excluded: u64,
    /// `ok / total`, percent.
    pub success_rate: f64,
    /// `failed / total`, percent.
    pub error_rate: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AudioFigures {
    pub requests_with_audio: u64,
    pub underruns: u64,
    pub requests_with_underrun: u64,
    /// Stall time per request with audio.
    pub stall_ms: LatencyFigures,
}

/// How the streams arrived (see [`crate::record::looks_buffered`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamFigures {
    /// Successful streams with enough tokens to tell.
    pub checked: u64,
    /// Those whose tokens came in bursts, as through a buffering proxy.
    pub buffered: u64,
    /// `buffered / checked`, percent; `null` when none could be checked.
    pub buffered_share: Option<f64>,
}

impl Figures {
    /// What a reader must know about how the figures were measured, said
    /// at the top of the report.
    pub fn findings(&self) -> Vec<String> {
        let mut f = Vec::new();
        let s = &self.streams;
        if s.buffered > 0 {
            f.push(format!(
                "BUFFERED: {} of {} streams ({}%) arrived in bursts, the first token with the end or a buffer at a time: something between the load generator and the server (a proxy's response buffering, e.g. nginx `proxy_buffering on` without `X-Accel-Buffering: no`) holds the stream back, and first-token latency measures the buffer, not the model",
                s.buffered,
                s.checked,
                crate::format::num(s.buffered_share.unwrap_or(0.0)),
            ));
        }
        let c = &self.tokens.client;
        let mean = |n: u64, of: u64| crate::format::num(n as f64 / of.max(1) as f64);
        if c.disagreements > 0 {
            f.push(format!(
                "TOKEN COUNTS: in {} of {} requests the client's count and the server's differ (prompts: {} client, {} server on average; answers: {} client, {} server): another tokenizer than the server's, or its chat template, which its prompt count includes. The token figures use the server's counts; tokens.client has the client's",
                c.disagreements,
                c.compared,
                mean(c.input, c.counted),
                mean(c.server_input, c.compared),
                mean(c.output, c.counted),
                mean(c.server_output, c.compared),
            ));
        }
        if c.short > 0 {
            f.push(format!(
                "SHORT ANSWERS: {} of {} answers asked for a length came back shorter: the target stops at its end-of-sequence token unless told otherwise (tokens.min_tokens or tokens.ignore_eos, where it honours them)",
                c.short, c.asked
            ));
        }
        f
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Throughput {
    pub requests_per_s: f64,
    pub ok_per_s: f64,
    pub tokens_per_s: f64,
}

/// Cache outcomes as the server's `done` events reported them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CacheFigures {
    pub kb_hit_rate: Option<f64>,
    pub tts_hit_rate: Option<f64>,
    pub kb_hits: u64,
    pub kb_misses: u64,
    pub tts_hits: u64,
    pub tts_misses: u64,
}

/// Quantiles at which the distributions (CDFs) are given.
pub const DISTRIBUTION_QUANTILES: [f64; 17] = [
    0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 1.0,
];

/// `[quantile, ms]` points of each latency's distribution (the corrected
/// one under an open model).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Distributions {
    pub first_token: Vec<[f64; 2]>,
    pub first_audio: Vec<[f64; 2]>,
    pub complete: Vec<[f64; 2]>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Figures {
    /// Percent of requests that succeeded within every per-request limit.
    pub goodput: f64,
    pub goodput_limits: GoodputLimits,
    pub distributions: Distributions,
    pub requests: RequestFigures,
    /// Failures by the guide's breakdown type.
    pub errors: BTreeMap<String, u64>,
    /// Failures by cause as the client saw it.
    pub errors_by_cause: BTreeMap<String, u64>,
    /// Failures by the HTTP status the target answered them with (`"503"`);
    /// failures without a status (refused, reset, timed out) are not here.
    #[serde(default)]
    pub errors_by_status: BTreeMap<String, u64>,
    /// Failures by the guide's type, percent of all requests.
    pub error_rates: BTreeMap<String, f64>,
    /// Latencies from each request's start as sent.
    pub latency_ms: LatencyTable,
    /// Latencies from each request's intended start: its schedule under an
    /// open model (coordinated omission corrected), its send under a
    /// closed model (where the two are the same). Verdicts judge these.
    pub scheduled_latency_ms: LatencyTable,
    /// Where the time went before the first token (see [`PhaseFigures`]);
    /// empty in reports written before it was kept.
    #[serde(default)]
    pub phases_ms: PhaseFigures,
    pub audio: AudioFigures,
    /// Output tokens (TPOT is `latency_ms.time_per_output_token`).
    #[serde(default)]
    pub tokens: TokenFigures,
    /// Streams that looked buffered on their way.
    #[serde(default)]
    pub streams: StreamFigures,
    pub throughput: Throughput,
    pub cache: CacheFigures,
    /// A drill's times to detect and to recover, by timeline event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drill: BTreeMap<String, DrillFigures>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(start_s: u64, ft_ms: u64, late_ms: u64) -> RequestRecord {
        RequestRecord {
            start_us: start_s * 1_000_000 + late_ms * 1000,
            scheduled_us: Some(start_s * 1_000_000),
            lateness_us: late_ms * 1000,
            first_token_us: Some(ft_ms * 1000),
            complete_us: Some(ft_ms * 3000),
            end_us: ft_ms * 3000,
            tokens: 10,
            kb_cache: Some("hit".into()),
            ..RequestRecord::default()
        }
    }

    #[test]
    fn time_per_output_token_and_rates_per_request() {
        let mut a = Aggregate::default();
        // 100 ms to the first of 11 tokens, 1100 ms complete: 100 ms a
        // token after the first; 10 tokens/s over the whole request.
        let r = RequestRecord {
            first_token_us: Some(100_000),
            complete_us: Some(1_100_000),
            end_us: 1_100_000,
            tokens: 11,
            ..RequestRecord::default()
        };
        a.add(&r, &[]);
        // The server's count wins over the events counted.
        a.add(
            &RequestRecord {
                word_count: Some(21),
                reasoning_tokens: 4,
                first_reasoning_us: Some(50_000),
                ..r.clone()
            },
            &[],
        );
        let f = a.figures(Duration::from_secs(2), false);
        let tpot = &f.latency_ms.time_per_output_token;
        assert_eq!(tpot.count, 2);
        // HdrHistogram keeps 3 significant digits.
        let near = |v: Option<f64>, want: f64| (v.unwrap() - want).abs() <= want / 500.0;
        assert!(near(tpot.max, 100.0) && near(tpot.p50, 50.0), "{tpot:?}");
        assert_eq!(f.tokens.output, 32);
        assert_eq!(f.tokens.counted_from_stream, 1);
        assert_eq!(f.tokens.output_per_s, 16.0);
        let rate = &f.tokens.per_request_per_s;
        assert_eq!(rate.count, 2);
        // 11 tokens in 1.1 s (10/s) and 21 in 1.1 s (~19.09/s): the slow
        // tail is the 10/s request.
        // p50 of two: nearest rank, the faster one (21 tokens in 1.1 s).
        assert!(near(rate.p5, 10.0) && near(rate.p50, 19.09), "{rate:?}");
        assert_eq!(f.tokens.reasoning, 4);
        assert_eq!(f.tokens.requests_with_reasoning, 1);
        assert!(near(f.latency_ms.first_reasoning.p50, 50.0));
    }

    #[test]
    fn goodput_counts_requests_within_every_limit() {
        let mut a = Aggregate {
            goodput_limits: GoodputLimits {
                first_token_ms: Some(150.0),
                first_audio_ms: None,
                complete_ms: Some(400.0),
            },
            ..Aggregate::default()
        };
        a.add(&ok(1, 100, 0), &[]); // 100 ms first token, 300 ms complete: good
        a.add(&ok(1, 140, 0), &[]); // complete 420 ms: over
        a.add(&ok(1, 100, 60), &[]); // 160 ms from its schedule: over
        a.add(
            &RequestRecord {
                outcome: Outcome::Openai,
                ..ok(1, 10, 0)
            },
            &[],
        );
        let f = a.figures(Duration::from_secs(1), true);
        assert_eq!(f.goodput, 25.0);
    }

    #[test]
    fn warmup_is_excluded_and_lateness_corrects() {
        let mut a = Aggregate::default();
        a.add(
            &RequestRecord {
                warmup: true,
                ..ok(0, 100, 0)
            },
            &[],
        );
        a.add(&ok(2, 100, 0), &[1000, 2000]);
        a.add(&ok(2, 100, 400), &[]);
        a.add(
            &RequestRecord {
                outcome: Outcome::Truncated,
                first_token_us: None,
                complete_us: None,
                ..ok(3, 1, 0)
            },
            &[],
        );
        a.add(
            &RequestRecord::dropped(9, 9, 3_000_000, 4_500_000, false),
            &[],
        );
        let f = a.figures(Duration::from_secs(4), true);
        // The dropped arrival counts: the service did not serve it.
        assert_eq!(f.requests.total, 4);
        assert_eq!(f.requests.ok, 2);
        assert_eq!(f.requests.failed, 2);
        assert_eq!(f.requests.dropped, 1);
        assert_eq!(f.requests.success_rate, 50.0);
        assert_eq!(f.errors["dropped"], 1);
        assert_eq!(f.requests.late, 1);
        assert_eq!(f.requests.warmup_excluded, 1);
        assert_eq!(f.errors["network"], 1);
        assert_eq!(f.errors_by_cause["truncated"], 1);
        assert_eq!(f.latency_ms.first_token.count, 2);
        assert_eq!(f.latency_ms.first_token.max, Some(100.031));
        let corrected = f.latency_ms.first_token.corrected.clone().unwrap();
        assert!(
            (corrected.max.unwrap() - 500.0).abs() < 1.0,
            "{corrected:?}"
        );
        assert_eq!(f.scheduled_latency_ms.first_token, *corrected);
        // Nothing measured is null, not zero.
        assert_eq!(f.latency_ms.first_audio.count, 0);
        assert_eq!(f.latency_ms.first_audio.p95, None);
        let json = serde_json::to_value(&f).unwrap();
        assert!(json["latency_ms"]["first_audio"]["p95"].is_null());
        assert_eq!(f.latency_ms.inter_token.count, 2);
        assert_eq!(f.cache.kb_hit_rate, Some(100.0));
        a.warmup_s = 1.5;
        let series = a.series();
        // The warm-up's seconds are not in the series: it starts at second 1.
        assert_eq!(series[0].t, 1);
        assert_eq!(series[0].started, 0);
        let second = |t: u64| series.iter().find(|s| s.t == t).unwrap();
        assert_eq!(second(2).started, 2);
        // Second 2 completed one request (first token 100 ms, complete 300 ms);
        // the corrected one (400 ms late) ended in second 2 as well.
        assert_eq!(second(2).p50_first_token_ms, Some(100.0));
        assert_eq!(second(2).p99_first_token_ms, Some(500.0));
        assert_eq!(second(2).p95_complete_ms, Some(700.0));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }
}
