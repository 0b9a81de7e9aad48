//! One measured request, as the load generator saw it: the row of the
//! per-request CSV, and how its outcome is classified.

use serde::{Deserialize, Serialize};

/// How a request ended. `Ok` is success; the next five are the guide's
/// error breakdown as the server reported it; the rest are causes only the
/// client can see.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Ok,
    /// An `error` event of type `openai` (or a 502 JSON error of that type).
    Openai,
    Tts,
    Network,
    /// 400, 413 or 415: the server refused the request.
    Validation,
    Other,
    /// The TCP connection could not be made.
    ConnectionRefused,
    /// No end within the request timeout.
    Timeout,
    /// An HTTP status the protocol does not expect here (503, 500, 404 ...).
    HttpStatus,
    /// The stream closed without `done` or `error` (docs/protocol.md 1.1).
    Truncated,
    /// An event the protocol does not allow (bad JSON, missing fields), or
    /// a line, event or answer larger than the configured cap.
    Malformed,
    /// An arrival of an open model that was never sent: no free user
    /// within `max_lateness`. The service did not serve it.
    Dropped,
    /// In flight when the run was stopped (a signal, a write error) and
    /// cancelled after the stop grace: the service was not given the time.
    Interrupted,
}

impl Outcome {
    pub const ALL: [Outcome; 13] = [
        Outcome::Ok,
        Outcome::Openai,
        Outcome::Tts,
        Outcome::Network,
        Outcome::Validation,
        Outcome::Other,
        Outcome::ConnectionRefused,
        Outcome::Timeout,
        Outcome::HttpStatus,
        Outcome::Truncated,
        Outcome::Malformed,
        Outcome::Dropped,
        Outcome::Interrupted,
    ];

    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Openai => "openai",
            Outcome::Tts => "tts",
            Outcome::Network => "network",
            Outcome::Validation => "validation",
            Outcome::Other => "other",
            Outcome::ConnectionRefused => "connection_refused",
            Outcome::Timeout => "timeout",
            Outcome::HttpStatus => "http_status",
            Outcome::Truncated => "truncated",
            Outcome::Malformed => "malformed",
            Outcome::Dropped => "dropped",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// The guide's breakdown type of a failure: a dropped or truncated
    /// stream is `network` (docs/protocol.md 1.1), so are a refused connection
    /// and a timeout; an unexpected status or event is `other`. A dropped
    /// arrival never reached the server: it is its own type, `dropped`; a
    /// request cancelled by a stop is its own type too, `interrupted`.
    pub fn guide_type(self) -> Option<&'static str> {
        Some(match self {
            Outcome::Ok => return None,
            Outcome::Openai => "openai",
            Outcome::Tts => "tts",
            Outcome::Network
            | Outcome::ConnectionRefused
            | Outcome::Timeout
            | Outcome::Truncated => "network",
            Outcome::Validation => "validation",
            Outcome::Other | Outcome::HttpStatus | Outcome::Malformed => "other",
            Outcome::Dropped => "dropped",
            Outcome::Interrupted => "interrupted",
        })
    }
}

/// One request: the per-request CSV row. Times are microseconds; `*_us`
/// latencies count from the moment the request began to be sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub user: usize,
    pub client_id: String,
    pub chatbot_id: String,
    /// Started inside the warm-up window: not in any figure.
    pub warmup: bool,
    /// Open model: when the request was scheduled to start, from the run start.
    pub scheduled_us: Option<u64>,
    /// When it began to be sent, from the run start.
    pub start_us: u64,
    /// `start - scheduled`: added to every latency for the corrected figures.
    pub lateness_us: u64,
    pub status: Option<u16>,
    pub headers_us: Option<u64>,
    pub first_token_us: Option<u64>,
    pub first_audio_us: Option<u64>,
    /// The `done` event (or the whole JSON answer).
    pub complete_us: Option<u64>,
    /// The last byte, error or give-up.
    pub end_us: u64,
    pub streaming: bool,
    pub tokens: u32,
    pub audio_chunks: u32,
    pub underruns: u32,
    pub stall_us: u64,
    pub outcome: Outcome,
    pub error: String,
    pub server_first_token_ms: Option<u64>,
    pub server_first_audio_ms: Option<u64>,
    pub server_duration_ms: Option<u64>,
    pub word_count: Option<u64>,
    /// The KB cache as the target named it: `hit` or `miss` from chat-v1
    /// (typed on the wire, `wire::protocol::CacheOutcome`), any word a
    /// template protocol's field holds (kept as the target wrote it; only
    /// `hit` and `miss` count in the hit rate).
    pub kb_cache: Option<String>,
    pub tts_cache_hits: Option<u64>,
    pub tts_cache_misses: Option<u64>,
    /// How long the load generator's own scheduler was stalled while this
    /// request was open (µs); past [`STALL_FLAG_US`] its latencies may be
    /// the client's, not the server's.
    #[serde(default)]
    pub client_stall_us: u64,
    /// Reasoning chunks (OpenAI `delta.reasoning_content` or `reasoning`):
    /// not tokens of the answer.
    #[serde(default)]
    pub reasoning_tokens: u32,
    /// The first reasoning chunk, from the start.
    #[serde(default)]
    pub first_reasoning_us: Option<u64>,
    /// The server's count of the prompt's tokens (OpenAI
    /// `usage.prompt_tokens`: the whole history of a conversation).
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// Characters of the question sent (the last turn).
    #[serde(default)]
    pub prompt_chars: u32,
    /// The turn of its conversation, from 0 (0 for a single question).
    #[serde(default)]
    pub turn: u32,
    /// Its tokens came in bursts, as through a buffering proxy (see
    /// [`looks_buffered`]).
    #[serde(default)]
    pub buffered: bool,
    /// `[tokens]`: the client's count of the prompt (every message's
    /// text) with the run's tokenizer.
    #[serde(default)]
    pub client_input_tokens: Option<u32>,
    /// `[tokens]`: the client's count of the answer's text.
    #[serde(default)]
    pub client_output_tokens: Option<u32>,
    /// `[tokens] output`: the answer's length asked (`max_tokens`).
    #[serde(default)]
    pub asked_output_tokens: Option<u32>,
    /// Open model and trace: the arrival's index in the schedule, from 0
    /// (every turn of its conversation has it; `loadgen ab` pairs the two
    /// targets' requests by it).
    #[serde(default)]
    pub arrival: Option<u64>,
    /// On a new connection: name resolution, in µs (none for an address,
    /// or on a pooled connection).
    #[serde(default)]
    pub dns_us: Option<u64>,
    /// On a new connection: the TCP connect, in µs.
    #[serde(default)]
    pub connect_us: Option<u64>,
    /// On a new TLS connection: the handshake, in µs.
    #[serde(default)]
    pub tls_us: Option<u64>,
    /// From the send to the body handed to the connection (after any
    /// connecting), in µs; the wait for the response head is
    /// `headers_us - written_us`.
    #[serde(default)]
    pub written_us: Option<u64>,
}

/// Fewer tokens than this tell nothing about buffering.
pub const BUFFER_MIN_TOKENS: u32 = 16;
/// Tokens per burst, on average, from which a stream looks buffered.
pub const BUFFER_MIN_BURST: u32 = 4;
/// A burst: tokens each less than this after the one before.
pub const BURST_GAP_US: u32 = 1_000;

/// Whether a stream looks buffered on its way: at least
/// [`BUFFER_MIN_TOKENS`] tokens that arrived in bursts of
/// [`BUFFER_MIN_BURST`] or more on average (a burst: tokens less than
/// [`BURST_GAP_US`] apart; one burst is the first token arriving with the
/// end). A proxy that buffers (nginx's defaults, an HTTP/1.0 upstream and
/// `proxy_buffering on`) delivers a stream a buffer at a time: measured
/// through Debian's nginx, 10 to 30 tokens a burst when audio chunks
/// fill the buffers between them, all of them at once without audio. A
/// live stream arrives a token a read; a client that reads late bunches
/// two or three, and lagging four token intervals on every read is a
/// stall the self-check reports. A buffer holds the first token back
/// with those after it, so the first burst must be one too: a server that
/// falls behind its own timers under overload sends its later tokens in
/// bunches, but its first token alone (seen in a capacity search: 20
/// streams of a saturated reference server bunched 4 a read on average,
/// their first tokens within 8-50 ms of the server's own stamp). When the
/// server says how long it spent between its first token and the end
/// (`server_span_ms`), under 20 ms means it sent them in a burst itself:
/// not buffering.
pub fn looks_buffered(tokens: u32, gaps_us: &[u32], server_span_ms: Option<u64>) -> bool {
    if tokens < BUFFER_MIN_TOKENS || server_span_ms.is_some_and(|s| s < 20) {
        return false;
    }
    let first_burst = 1 + gaps_us.iter().take_while(|&&g| g < BURST_GAP_US).count() as u64;
    let bursts = 1 + gaps_us.iter().filter(|&&g| g >= BURST_GAP_US).count() as u64;
    first_burst >= u64::from(BUFFER_MIN_BURST)
        && bursts * u64::from(BUFFER_MIN_BURST) <= u64::from(tokens)
}

/// A scheduler stall longer than this distorts the latencies it overlaps
/// (the same 50 ms the self-check allows the timer's p99 lag; shorter
/// lags are common on a busy 2-core machine and move a latency by less
/// than the guide's levels can tell).
pub const STALL_FLAG_US: u64 = 50_000;

impl RequestRecord {
    /// Moves the request `offset_us` later on the time line: its start
    /// and its scheduled start (the latencies are relative and stay). A
    /// shard's records join the merged run's time zero this way.
    pub fn shift(&mut self, offset_us: u64) {
        self.start_us = self.start_us.saturating_add(offset_us);
        self.scheduled_us = self.scheduled_us.map(|s| s.saturating_add(offset_us));
    }

    /// The output tokens of the answer: the server's count where it gave
    /// one (`usage.completion_tokens`, `done.wordCount`), else the token
    /// events counted; and whether it was the server's.
    pub fn output_tokens(&self) -> (u64, bool) {
        match self.word_count {
            Some(n) => (n, true),
            None => (u64::from(self.tokens), false),
        }
    }

    /// An open-model arrival that was never sent: `at_us` is when it was
    /// given up, from the run start.
    pub fn dropped(seq: u64, arrival: u64, scheduled_us: u64, at_us: u64, warmup: bool) -> Self {
        RequestRecord {
            seq,
            arrival: Some(arrival),
            warmup,
            scheduled_us: Some(scheduled_us),
            start_us: at_us,
            lateness_us: at_us.saturating_sub(scheduled_us),
            outcome: Outcome::Dropped,
            error: "dropped: no free user within max_lateness".into(),
            ..RequestRecord::default()
        }
    }
}

/// Audio playback of one request (docs/protocol.md 1.2): playing starts at the
/// first chunk and chunks play back to back; chunk `n+1` arriving after
/// chunks `0..=n` finished is an underrun, and the wait is stall time.
/// `chunks` are (arrival µs, duration ms) in arrival order.
pub fn playback(chunks: &[(u64, u64)]) -> (u32, u64) {
    let mut iter = chunks.iter();
    let Some(&(first, dur)) = iter.next() else {
        return (0, 0);
    };
    let mut ends = first + dur * 1000;
    let (mut underruns, mut stall) = (0u32, 0u64);
    for &(arrival, dur) in iter {
        if arrival > ends {
            underruns += 1;
            stall += arrival - ends;
            ends = arrival;
        }
        ends += dur * 1000;
    }
    (underruns, stall)
}

/// The server's own view of one request, when the protocol reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerFigures {
    pub first_token_ms: Option<u64>,
    pub first_audio_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub word_count: Option<u64>,
    pub kb_cache: Option<String>,
    pub tts_cache_hits: Option<u64>,
    pub tts_cache_misses: Option<u64>,
    /// The server's count of the prompt's tokens.
    pub input_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_counts_underruns_and_stall() {
        assert_eq!(playback(&[]), (0, 0));
        // 2 s of audio at 0; the next chunk at 1.5 s plays on time.
        assert_eq!(playback(&[(0, 2000), (1_500_000, 1000)]), (0, 0));
        // Chunk 1 at 2.5 s: 0.5 s stall; chunk 2 at 3.0 s is early (chunk 1 ends at 3.5 s).
        assert_eq!(
            playback(&[(0, 2000), (2_500_000, 1000), (3_000_000, 500)]),
            (1, 500_000)
        );
        // Two stalls.
        assert_eq!(
            playback(&[(0, 100), (200_000, 100), (400_000, 100)]),
            (2, 200_000)
        );
    }

    #[test]
    fn buffered_streams_are_told_from_live_ones() {
        // 40 tokens 20 ms apart: live.
        assert!(!looks_buffered(40, &[20_000; 39], Some(800)));
        // 40 tokens in one read (gaps 0): the first token came with the end.
        assert!(looks_buffered(40, &[0; 39], Some(800)));
        // 40 tokens in reads of 4, 80 ms apart: a proxy's buffers.
        let fours: Vec<u32> = (1..40)
            .map(|i| if i % 4 == 0 { 80_000 } else { 0 })
            .collect();
        assert!(looks_buffered(40, &fours, None));
        // A client reading late bunches a few: 40 tokens in reads of 3.
        let threes: Vec<u32> = (1..40)
            .map(|i| if i % 3 == 0 { 8_000 } else { 0 })
            .collect();
        assert!(!looks_buffered(40, &threes, None));
        // Too short to tell; a server that produced them at once.
        assert!(!looks_buffered(15, &[0; 14], None));
        assert!(!looks_buffered(40, &[0; 39], Some(5)));
        // A server catching up bunches its later tokens, not its first.
        let late: Vec<u32> = (1..40)
            .map(|i| if i == 1 || i % 5 == 0 { 90_000 } else { 0 })
            .collect();
        assert!(!looks_buffered(40, &late, Some(900)));
        let mut held = late.clone();
        held[0] = 0;
        assert!(looks_buffered(40, &held, Some(900)));
        // Gaps just under the burst limit still bunch.
        assert!(looks_buffered(16, &[BURST_GAP_US - 1; 15], None));
        assert!(!looks_buffered(16, &[BURST_GAP_US; 15], None));
    }

    #[test]
    fn client_side_causes_map_to_the_guide() {
        assert_eq!(Outcome::Truncated.guide_type(), Some("network"));
        assert_eq!(Outcome::HttpStatus.guide_type(), Some("other"));
        assert_eq!(Outcome::Ok.guide_type(), None);
        assert_eq!(
            serde_json::to_value(Outcome::ConnectionRefused).unwrap(),
            "connection_refused"
        );
    }
}
