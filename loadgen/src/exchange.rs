//! One chat request through goose's own client: sent as a `GooseRequest`
//! named `chat` (so goose's status, error and request accounting stay
//! intact), its body read as it arrives and parsed with the WHATWG SSE
//! parser, every moment stamped on the monotonic clock.

use crate::protocol::{Ask, ChatProtocol, Event, Failure, ServerFigures};
use crate::shared::{Msg, Shared};
use futures_util::StreamExt;
use goose::goose::GooseResponse;
use goose::prelude::*;
use slo::record::{Outcome, RequestRecord, playback};
use slo::sse::SseParser;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, timeout_at};

/// How long the end of a body may take after `done` or `error` for the
/// connection to be reused; past it the connection is closed.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What the body told us, stamped as it arrived.
#[derive(Default)]
struct Stamps {
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    tokens: u32,
    gaps_us: Vec<u32>,
    audio: Vec<(u64, u64)>,
    first_audio: Option<Instant>,
    first_reasoning: Option<Instant>,
    reasoning: u32,
    done: Option<Instant>,
    /// A conversation's answer, kept for its history.
    answer: Option<String>,
    end: Option<Failure>,
    server: ServerFigures,
}

impl Stamps {
    fn token(&mut self, at: Instant, visible: bool) {
        if let Some(prev) = self.last_token {
            self.gaps_us
                .push(u32::try_from(us(at - prev)).unwrap_or(u32::MAX));
        }
        self.last_token = Some(at);
        self.tokens += 1;
        if visible && self.first_token.is_none() {
            self.first_token = Some(at);
        }
    }

    fn audio(&mut self, at: Instant, start: Instant, duration_ms: u64) {
        self.first_audio.get_or_insert(at);
        self.audio.push((us(at - start), duration_ms));
    }

    /// One event of the stream, at `at` (`start`: the request's).
    fn on_event(
        &mut self,
        protocol: &dyn ChatProtocol,
        event: &str,
        data: &str,
        (at, start): (Instant, Instant),
    ) {
        match protocol.event(event, data) {
            Ok(Event::Token { visible }) => {
                self.token(at, visible);
                if let Some(answer) = self.answer.as_mut()
                    && let Some(text) = protocol.token_text(event, data)
                {
                    answer.push_str(&text);
                }
            }
            Ok(Event::Audio { duration_ms }) => self.audio(at, start, duration_ms),
            Ok(Event::Done(server)) => {
                self.done = Some(at);
                // A count the server gave before its last event stands.
                let word_count = server.word_count.or(self.server.word_count);
                let input_tokens = server.input_tokens.or(self.server.input_tokens);
                self.server = ServerFigures {
                    word_count,
                    input_tokens,
                    ..server
                };
            }
            Ok(Event::Usage {
                prompt_tokens,
                completion_tokens,
            }) => {
                self.server.word_count = Some(completion_tokens);
                self.server.input_tokens = Some(prompt_tokens);
            }
            Ok(Event::Reasoning) => {
                self.first_reasoning.get_or_insert(at);
                self.reasoning += 1;
            }
            Ok(Event::Error(failure)) => self.end = Some(failure),
            Ok(Event::Start | Event::Ignored) => {}
            Err(m) => self.end = Some(Failure::malformed(m)),
        }
    }
}

/// A turn's answer, kept for the conversation's next turn: its text, and
/// the client's count of the whole exchange (history, question and
/// answer) when the run counts tokens.
#[derive(Debug)]
pub struct Answered {
    pub text: String,
    pub tokens: Option<u32>,
}

/// Sends one request and records it; returns its answer when it succeeded
/// and a conversation (or the client's token count) keeps it.
/// `scheduled` is its intended start under an open model. In phases: the
/// request, the exchange on the wire, the record filled from what
/// arrived, goose's accounting.
pub async fn exchange(
    user: &mut GooseUser,
    shared: &Shared,
    scheduled: Option<Instant>,
    ask: &Ask,
) -> Result<Option<Answered>, Box<TransactionError>> {
    let seq = ask.seq;
    // The whole URL: a target with a path (`https://host/prefix`) keeps it
    // (goose would replace it with an absolute path).
    let path = format!("{}{}", shared.base_url, shared.protocol.path());
    let phases = crate::phases::Cell::default();
    let request = chat_request(user, shared, ask, &path, &phases)?;
    let clock = shared.clock();
    let start = Instant::now();
    shared.active.fetch_add(1, Ordering::Relaxed);
    let sent = tokio::select! {
        // Boxed: goose's request future is large and lives only until the
        // head; inline it would size this whole exchange for its life.
        r = Box::pin(crate::phases::scope(phases.clone(), user.request(request))) => Some(r),
        () = shared.cancel.cancelled() => None,
    };
    let mut rec = RequestRecord {
        seq,
        user: user.weighted_users_index,
        client_id: ask.client_id.clone(),
        chatbot_id: ask.chatbot_id.clone(),
        warmup: scheduled.unwrap_or(start) < clock.warmup_end,
        scheduled_us: scheduled.map(|s| us(s.saturating_duration_since(clock.started))),
        start_us: us(start.saturating_duration_since(clock.started)),
        lateness_us: scheduled.map_or(0, |s| us(start.saturating_duration_since(s))),
        prompt_chars: u32::try_from(ask.message.chars().count()).unwrap_or(u32::MAX),
        turn: u32::try_from(ask.history.len()).unwrap_or(u32::MAX),
        arrival: ask.arrival,
        ..RequestRecord::default()
    };
    let mut stamps = Stamps {
        answer: (shared.multi_turn || shared.tokens.is_some()).then(String::new),
        ..Stamps::default()
    };
    let crate::phases::Durations {
        dns_us,
        connect_us,
        tls_us,
        written_us,
    } = phases.lock().expect("phases lock").durations(start);
    (rec.dns_us, rec.connect_us, rec.tls_us, rec.written_us) =
        (dns_us, connect_us, tls_us, written_us);
    let goose = receive(sent, shared, start, &mut stamps, &mut rec).await;
    let end = Instant::now();
    shared.active.fetch_sub(1, Ordering::Relaxed);

    rec.end_us = us(end - start);
    if let Some(work) = &shared.tokens {
        count_tokens(&work.tokenizer, ask, stamps.answer.as_deref(), &mut rec);
    }
    let answer = if stamps.done.is_some() && stamps.end.is_none() {
        stamps.answer.take().map(|text| Answered {
            text,
            tokens: rec
                .client_input_tokens
                .zip(rec.client_output_tokens)
                .map(|(i, o)| i.saturating_add(o)),
        })
    } else {
        None
    };
    fill_record(&mut rec, &mut stamps, start);
    if rec.outcome.is_ok() {
        goose_latencies(user, &rec).await?;
    }
    // Only a failure needs its tag for goose (no allocation per success).
    let failure =
        (!rec.outcome.is_ok()).then(|| format!("{}: {}", rec.outcome.as_str(), rec.error));
    if !rec.warmup {
        shared.measured_done.fetch_add(1, Ordering::Relaxed);
    }
    let _ = shared.records.send(Msg {
        record: Box::new(rec),
        gaps_us: stamps.gaps_us,
    });
    match goose {
        // A 2xx answer goose counted as a success, but the stream failed.
        Some(mut g) if g.success => match failure {
            Some(tag) => user.set_failure(&tag, &mut g, None, None).map(|()| None),
            None => Ok(answer),
        },
        _ => Ok(None),
    }
}

/// The client's counts of the prompt (every message) and of the answer,
/// and the answer length asked, with the run's tokenizer: what the ask
/// already knows (a cut's exact length, the history's count) is not
/// counted again.
fn count_tokens(
    tokenizer: &tokens::Tokenizer,
    ask: &Ask,
    answer: Option<&str>,
    rec: &mut RequestRecord,
) {
    let count = |text: &str| u32::try_from(tokenizer.count(text)).unwrap_or(u32::MAX);
    let before = ask.history_tokens.unwrap_or_else(|| {
        ask.history
            .iter()
            .map(|(q, a)| count(q).saturating_add(count(a)))
            .fold(0, u32::saturating_add)
    });
    let message = ask.message_tokens.unwrap_or_else(|| count(&ask.message));
    rec.client_input_tokens = Some(before.saturating_add(message));
    rec.client_output_tokens = answer.map(count);
    rec.asked_output_tokens = ask.length.map(|l| l.tokens);
}

/// The ask as a goose request named `chat`, with the protocol's method,
/// path and body and the run's timeout.
fn chat_request<'a>(
    user: &mut GooseUser,
    shared: &Shared,
    ask: &Ask,
    path: &'a str,
    phases: &crate::phases::Cell,
) -> Result<GooseRequest<'a>, Box<TransactionError>> {
    let method = if shared.protocol.put() {
        GooseMethod::Put
    } else {
        GooseMethod::Post
    };
    let builder = user
        .get_request_builder(&method, path)?
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .timeout(shared.timeout);
    // The body stamps when the connection takes it; its length is said
    // (it is sent with Content-Length, as a plain body is).
    let body = shared.protocol.body(ask);
    let builder = builder
        .header("content-length", body.len())
        .body(reqwest::Body::wrap(crate::phases::Body::new(
            body,
            phases.clone(),
        )));
    Ok(GooseRequest::builder()
        .method(method)
        .path(path)
        .name("chat")
        .set_request_builder(builder)
        .build())
}

type Sent = Option<Result<GooseResponse, Box<TransactionError>>>;

/// The answer's head and body, read into `stamps` and `rec`; returns
/// goose's record of the request, kept for its accounting (the response
/// is read on its own, its head dropped before the body: see
/// [`read_body`]).
async fn receive(
    sent: Sent,
    shared: &Shared,
    start: Instant,
    stamps: &mut Stamps,
    rec: &mut RequestRecord,
) -> Option<goose::metrics::GooseRequestMetric> {
    let deadline = start + shared.timeout;
    let (goose, response) = match sent {
        Some(Ok(GooseResponse { request, response })) => (Some(request), response),
        Some(Err(e)) => {
            stamps.end = Some(Failure::new(
                Outcome::Other,
                format!("the request could not be built: {e}"),
            ));
            return None;
        }
        None => {
            stamps.end = Some(interrupted());
            return None;
        }
    };
    match response {
        Err(e) => {
            let outcome = if e.is_connect() {
                Outcome::ConnectionRefused
            } else if e.is_timeout() {
                Outcome::Timeout
            } else {
                Outcome::Truncated
            };
            stamps.end = Some(Failure::new(outcome, error_chain(&e)));
        }
        Ok(resp) => {
            rec.headers_us = Some(us(start.elapsed()));
            rec.status = Some(resp.status().as_u16());
            let cancelled = tokio::select! {
                () = read_body(resp, shared, start, deadline, stamps, rec) => false,
                () = shared.cancel.cancelled() => true,
            };
            if cancelled && stamps.done.is_none() && stamps.end.is_none() {
                stamps.end = Some(interrupted());
            }
        }
    }
    goose
}

/// The record's latencies, counts, server figures and outcome, from what
/// arrived.
fn fill_record(rec: &mut RequestRecord, stamps: &mut Stamps, start: Instant) {
    rec.first_token_us = stamps.first_token.map(|t| us(t - start));
    rec.first_audio_us = stamps.first_audio.map(|t| us(t - start));
    rec.first_reasoning_us = stamps.first_reasoning.map(|t| us(t - start));
    rec.reasoning_tokens = stamps.reasoning;
    rec.tokens = rec.tokens.max(stamps.tokens);
    rec.audio_chunks = rec.audio_chunks.max(stamps.audio.len() as u32);
    let (underruns, stall) = playback(&stamps.audio);
    rec.underruns = underruns;
    rec.stall_us = stall;
    // The target's word for its KB cache, moved, not copied.
    rec.kb_cache = stamps.server.kb_cache.take();
    let s = &stamps.server;
    rec.server_first_token_ms = s.first_token_ms;
    rec.server_first_audio_ms = s.first_audio_ms;
    rec.server_duration_ms = s.duration_ms;
    rec.word_count = s.word_count;
    rec.tts_cache_hits = s.tts_cache_hits;
    rec.tts_cache_misses = s.tts_cache_misses;
    rec.input_tokens = s.input_tokens;
    rec.buffered = rec.streaming
        && slo::record::looks_buffered(
            stamps.tokens,
            &stamps.gaps_us,
            s.duration_ms
                .zip(s.first_token_ms)
                .map(|(d, f)| d.saturating_sub(f)),
        );
    match (stamps.done, stamps.end.take()) {
        (Some(done), None) => {
            rec.complete_us = Some(us(done - start));
            rec.outcome = Outcome::Ok;
        }
        (_, Some(Failure { outcome, message })) => {
            rec.outcome = outcome;
            rec.error = message;
        }
        (None, None) => {
            rec.outcome = Outcome::Truncated;
            rec.error = "the stream closed without done or error".into();
        }
    }
}

/// goose's own report carries the three latencies of a success too.
async fn goose_latencies(user: &mut GooseUser, rec: &RequestRecord) -> TransactionResult {
    for (name, value) in [
        ("first_token", rec.first_token_us),
        ("first_audio", rec.first_audio_us),
        ("complete", rec.complete_us),
    ] {
        if let Some(v) = value {
            user.record_custom_request_duration(
                "SSE",
                name,
                Duration::from_micros(v),
                true,
                None,
                None,
            )
            .await?;
        }
    }
    Ok(())
}

async fn read_body(
    resp: reqwest::Response,
    shared: &Shared,
    start: Instant,
    deadline: Instant,
    stamps: &mut Stamps,
    rec: &mut RequestRecord,
) {
    let status = resp.status().as_u16();
    let is_sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    if status != 200 || !is_sse {
        read_whole(resp, status, shared, deadline, stamps, rec).await;
        return;
    }
    rec.streaming = true;
    // The body alone: the head's header values share hyper's first read
    // buffer, which a stream would otherwise hold beside a second one
    // for its whole life (about 8 KiB a stream).
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::with_limit(shared.max_event_bytes);
    let protocol = &shared.protocol;
    loop {
        match timeout_at(deadline, body.next()).await {
            Err(_) => {
                if stamps.done.is_none() && stamps.end.is_none() {
                    stamps.end = Some(Failure::new(
                        Outcome::Timeout,
                        format!("no end of stream within {:?}", shared.timeout),
                    ));
                }
                return;
            }
            Ok(Some(Err(e))) => {
                if stamps.done.is_none() && stamps.end.is_none() {
                    stamps.end = Some(broken_body(&e, shared.timeout));
                }
                return;
            }
            Ok(None) => return,
            Ok(Some(Ok(bytes))) => {
                let at = Instant::now();
                parser.feed(&bytes, &mut |ev| {
                    if stamps.done.is_some() || stamps.end.is_some() {
                        return; // nothing counts after the last event
                    }
                    stamps.on_event(protocol.as_ref(), ev.event, ev.data, (at, start));
                });
                if parser.overflowed() && stamps.end.is_none() && stamps.done.is_none() {
                    stamps.end = Some(Failure::malformed(format!(
                        "an SSE line or event is larger than request.max_event_bytes ({} bytes): connection closed",
                        shared.max_event_bytes
                    )));
                }
                // The request ends at `done` or `error`. A server that ends
                // the body at once gets its connection back in the pool; one
                // that does not is never waited for: the connection closes.
                if stamps.done.is_some() || stamps.end.is_some() {
                    let mut left = shared.max_event_bytes;
                    let _ = tokio::time::timeout(DRAIN_GRACE, async {
                        while let Some(Ok(rest)) = body.next().await {
                            left = left.saturating_sub(rest.len());
                            if left == 0 {
                                break;
                            }
                        }
                    })
                    .await;
                    return;
                }
            }
        }
    }
}

/// An answer that is not an event stream (an error, or a whole answer):
/// read whole, within the deadline and `request.max_body_bytes`.
async fn read_whole(
    mut resp: reqwest::Response,
    status: u16,
    shared: &Shared,
    deadline: Instant,
    stamps: &mut Stamps,
    rec: &mut RequestRecord,
) {
    let body = match timeout_at(deadline, read_all(&mut resp, shared.max_body_bytes)).await {
        Err(_) => {
            stamps.end = Some(Failure::new(
                Outcome::Timeout,
                format!("no whole answer within {:?}", shared.timeout),
            ));
            return;
        }
        Ok(Err(BodyError::Http(e))) => {
            stamps.end = Some(broken_body(&e, shared.timeout));
            return;
        }
        Ok(Err(BodyError::TooLarge)) => {
            stamps.end = Some(Failure::malformed(format!(
                "the answer is larger than request.max_body_bytes ({} bytes): connection closed",
                shared.max_body_bytes
            )));
            return;
        }
        Ok(Ok(b)) => b,
    };
    let at = Instant::now();
    if status != 200 {
        stamps.end = Some(shared.protocol.error_answer(status, &body));
        return;
    }
    match shared.protocol.whole_answer(&body) {
        Ok(a) => {
            // Not a stream: first token = first audio = complete = body received.
            stamps.first_token = Some(at);
            if !a.audio_ms.is_empty() {
                stamps.first_audio = Some(at);
            }
            stamps.done = Some(at);
            stamps.server = a.server;
            if let Some(answer) = stamps.answer.as_mut() {
                *answer = a.text;
            }
            rec.tokens = a.tokens;
            rec.audio_chunks = a.audio_ms.len() as u32;
        }
        Err(m) => stamps.end = Some(Failure::malformed(m)),
    }
}

/// A request cancelled by a stop of the run (see [`crate::stop`]).
fn interrupted() -> Failure {
    Failure::new(
        Outcome::Interrupted,
        format!(
            "in flight when the run was stopped ({}): cancelled after the stop grace",
            crate::stop::reason().unwrap_or_else(|| "stopped".to_owned())
        ),
    )
}

enum BodyError {
    Http(reqwest::Error),
    TooLarge,
}

/// A body that could not be read to its end: the request's timeout ran
/// out, or the connection broke.
fn broken_body(e: &reqwest::Error, timeout: Duration) -> Failure {
    if e.is_timeout() {
        Failure::new(
            Outcome::Timeout,
            format!("no end of the answer within {timeout:?}"),
        )
    } else {
        Failure::new(
            Outcome::Truncated,
            format!("the answer broke off: {}", error_chain(e)),
        )
    }
}

/// The whole body, up to `max` bytes.
async fn read_all(resp: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Http)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error with its causes: "error sending request: connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
