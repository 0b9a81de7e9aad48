//! The protocol seam: everything that knows the wire format of the target
//! sits behind [`ChatProtocol`], so another streaming protocol (an
//! OpenAI-compatible chat completion, say) is one more implementation and
//! the measurement, load models and reports do not change.

use slo::format::clip;
use slo::protocol::{Audio, Done, ErrorBody, ErrorKind, NonStreamAnswer, StreamError};
use slo::record::Outcome;

/// One question to ask.
#[derive(Clone, Debug)]
pub struct Ask {
    pub chatbot_id: String,
    pub client_id: String,
    pub message: String,
    /// The message's count with the run's tokenizer, when known before
    /// the send (a prompt cut to an exact length): not counted again.
    pub message_tokens: Option<u32>,
    pub audio: bool,
    /// The conversation so far: (question, answer) pairs, oldest first.
    pub history: Vec<(String, String)>,
    /// The history's count with the run's tokenizer, when known (the
    /// turns before counted it as they went).
    pub history_tokens: Option<u32>,
    /// The request's number in the run.
    pub seq: u64,
    /// Open model: its arrival's index in the schedule.
    pub arrival: Option<u64>,
    /// The answer's length asked in tokens (`[tokens] output`), over the
    /// scenario's `max_tokens`.
    pub length: Option<AskedLength>,
}

/// An answer length asked of an OpenAI-compatible target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AskedLength {
    pub tokens: u32,
    /// Also `min_tokens` = `tokens` (vLLM, SGLang).
    pub min_tokens: bool,
    /// Also `ignore_eos = true` (vLLM).
    pub ignore_eos: bool,
}

/// What one stream event means for the measurement.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Start,
    /// A token; `visible` when its text is not empty (first token counts
    /// from the first visible one).
    Token {
        visible: bool,
    },
    /// An audio chunk and how long it plays.
    Audio {
        duration_ms: u64,
    },
    /// The last event of a success, with the server's own figures.
    Done(ServerFigures),
    /// The last event of a failure.
    Error(Failure),
    /// The server's count of the tokens it sent (OpenAI `usage`), before
    /// the last event.
    Usage {
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// A reasoning model's thinking (not a token of the answer).
    Reasoning,
    /// An event this protocol does not measure.
    Ignored,
}

pub use slo::record::ServerFigures;

/// A whole answer given as one JSON body (not a stream).
#[derive(Clone, Debug, PartialEq)]
pub struct WholeAnswer {
    /// The answer's text (the history of a conversation).
    pub text: String,
    pub tokens: u32,
    pub audio_ms: Vec<u64>,
    pub server: ServerFigures,
}

pub trait ChatProtocol: Send + Sync + std::fmt::Debug {
    /// The request path, relative to the target's base URL.
    fn path(&self) -> &str;
    /// PUT instead of POST.
    fn put(&self) -> bool {
        false
    }
    /// The JSON request body.
    fn body(&self, ask: &Ask) -> Vec<u8>;
    /// Interprets one SSE event; an error means the event is malformed.
    fn event(&self, name: &str, data: &str) -> Result<Event, String>;
    /// The text a token event carries (asked only to keep a
    /// conversation's history).
    fn token_text(&self, _name: &str, _data: &str) -> Option<String> {
        None
    }
    /// Interprets a 200 JSON answer (a client outside the streaming rollout).
    fn whole_answer(&self, body: &[u8]) -> Result<WholeAnswer, String>;
    /// Classifies an error answer by its status and body.
    fn error_answer(&self, status: u16, body: &[u8]) -> Failure;
}

/// Why a request did not succeed: the outcome it is counted as, and the
/// words the CSV's `error` column and the report give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub outcome: Outcome,
    pub message: String,
}

impl Failure {
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Failure {
        Failure {
            outcome,
            message: message.into(),
        }
    }

    /// A stream, event or answer the protocol cannot read.
    pub fn malformed(message: impl Into<String>) -> Failure {
        Failure::new(Outcome::Malformed, message)
    }
}

/// The protocol a (validated) scenario names.
pub fn of(scenario: &slo::scenario::Scenario) -> std::sync::Arc<dyn ChatProtocol> {
    use slo::scenario::ProtocolName;
    match (scenario.protocol, &scenario.openai, &scenario.template) {
        (ProtocolName::OpenaiChat, Some(request), _) => std::sync::Arc::new(OpenAiChat {
            request: request.clone(),
        }),
        (ProtocolName::Template, _, Some(t)) => std::sync::Arc::new(Template(t.clone())),
        _ => std::sync::Arc::new(ChatV1),
    }
}

/// docs/protocol.md v1: the reference server's and the production backend's.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChatV1;

fn stream_outcome(kind: ErrorKind) -> Outcome {
    match kind {
        ErrorKind::Openai => Outcome::Openai,
        ErrorKind::Tts => Outcome::Tts,
        ErrorKind::Network => Outcome::Network,
        ErrorKind::Validation => Outcome::Validation,
        ErrorKind::Other => Outcome::Other,
    }
}

fn server_figures(d: &Done) -> ServerFigures {
    ServerFigures {
        first_token_ms: Some(d.first_token_latency),
        first_audio_ms: d.first_audio_latency,
        duration_ms: Some(d.duration),
        word_count: Some(d.word_count),
        kb_cache: Some(
            match d.kb_cache {
                slo::protocol::CacheOutcome::Hit => "hit",
                slo::protocol::CacheOutcome::Miss => "miss",
            }
            .to_owned(),
        ),
        tts_cache_hits: Some(d.tts_cache_hits),
        tts_cache_misses: Some(d.tts_cache_misses),
        input_tokens: None,
    }
}

impl ChatProtocol for ChatV1 {
    fn path(&self) -> &str {
        slo::protocol::CHAT_PATH
    }

    fn body(&self, ask: &Ask) -> Vec<u8> {
        serde_json::to_vec(&slo::protocol::ChatRequest {
            audio: ask.audio,
            chatbot_id: ask.chatbot_id.clone(),
            client_id: Some(ask.client_id.clone()),
            message: ask.message.clone(),
        })
        .expect("a chat request serializes")
    }

    fn event(&self, name: &str, data: &str) -> Result<Event, String> {
        let bad = |what: &str, e: serde_json::Error| {
            format!("a malformed `{what}` event ({e}): {}", clip(data))
        };
        Ok(match name {
            "start" => Event::Start,
            "token" => {
                let t: slo::protocol::Token =
                    serde_json::from_str(data).map_err(|e| bad("token", e))?;
                Event::Token {
                    visible: !t.text.is_empty(),
                }
            }
            "audio" => Event::Audio {
                duration_ms: Audio::duration_ms_of(data).map_err(|e| bad("audio", e))?,
            },
            "done" => Event::Done(server_figures(
                &serde_json::from_str(data).map_err(|e| bad("done", e))?,
            )),
            "error" => {
                let e: StreamError = serde_json::from_str(data).map_err(|e| bad("error", e))?;
                Event::Error(Failure::new(stream_outcome(e.kind), e.message))
            }
            _ => Event::Ignored,
        })
    }

    fn whole_answer(&self, body: &[u8]) -> Result<WholeAnswer, String> {
        let a: NonStreamAnswer = serde_json::from_slice(body).map_err(|e| {
            format!(
                "a malformed JSON answer ({e}): {}",
                clip(&String::from_utf8_lossy(body))
            )
        })?;
        Ok(WholeAnswer {
            tokens: a.text.split_whitespace().count() as u32,
            text: a.text,
            audio_ms: a.audio.iter().map(|x: &Audio| x.duration_ms).collect(),
            server: server_figures(&a.metrics),
        })
    }

    fn error_answer(&self, status: u16, body: &[u8]) -> Failure {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let message = parsed
            .as_ref()
            .map(|b| b.error.message.clone())
            .unwrap_or_else(|| clip(&String::from_utf8_lossy(body)));
        use slo::protocol::BodyErrorKind as K;
        let outcome = match (status, parsed.map(|b| b.error.kind)) {
            (400 | 413 | 415, _) => Outcome::Validation,
            (_, Some(K::Openai)) => Outcome::Openai,
            (_, Some(K::Tts)) => Outcome::Tts,
            (_, Some(K::Network)) => Outcome::Network,
            (_, Some(K::Other)) if status == 502 => Outcome::Other,
            _ => Outcome::HttpStatus,
        };
        Failure::new(outcome, format!("HTTP {status}: {message}"))
    }
}

/// OpenAI chat completions (`POST /v1/chat/completions`): what vLLM,
/// llama.cpp, TGI and Ollama serve. A token is a chunk with non-empty
/// `delta.content` (a role-only or empty chunk is not); the stream ends at
/// `data: [DONE]`; `usage` (asked for with `stream_options.include_usage`)
/// is the server's token count.
#[derive(Clone, Debug)]
pub struct OpenAiChat {
    pub request: slo::scenario::OpenAiRequest,
}

fn openai_outcome(code: Option<&str>) -> Outcome {
    match code {
        Some("model_error") => Outcome::Openai,
        Some("tts_error") => Outcome::Tts,
        Some("network_error") => Outcome::Network,
        _ => Outcome::Other,
    }
}

impl ChatProtocol for OpenAiChat {
    fn path(&self) -> &str {
        slo::openai::CHAT_COMPLETIONS_PATH
    }

    fn body(&self, ask: &Ask) -> Vec<u8> {
        let r = &self.request;
        serde_json::to_vec(&slo::openai::ChatCompletionRequest {
            model: r.model.clone(),
            messages: ask
                .history
                .iter()
                .flat_map(|(q, a)| [("user", q), ("assistant", a)])
                .chain([("user", &ask.message)])
                .map(|(role, content)| slo::openai::Message {
                    role: role.into(),
                    content: content.clone(),
                })
                .collect(),
            stream: r.stream,
            stream_options: r.stream.then_some(slo::openai::StreamOptions {
                include_usage: true,
            }),
            max_tokens: ask.length.map_or(r.max_tokens, |l| Some(l.tokens)),
            max_completion_tokens: None,
            temperature: r.temperature,
            min_tokens: ask.length.filter(|l| l.min_tokens).map(|l| l.tokens),
            ignore_eos: ask.length.filter(|l| l.ignore_eos).map(|_| true),
            user: Some(ask.client_id.clone()),
            extra: r.extra.clone(),
        })
        .expect("a chat completion request serializes")
    }

    fn token_text(&self, _name: &str, data: &str) -> Option<String> {
        let chunk: StreamData = serde_json::from_str(data).ok()?;
        chunk.choices.into_iter().next()?.delta.content
    }

    fn event(&self, _name: &str, data: &str) -> Result<Event, String> {
        if data.trim() == slo::openai::DONE {
            return Ok(Event::Done(ServerFigures::default()));
        }
        let chunk: StreamData = serde_json::from_str(data)
            .map_err(|e| format!("a malformed chunk ({e}): {}", clip(data)))?;
        if let Some(e) = chunk.error {
            return Ok(Event::Error(Failure::new(
                openai_outcome(e.code.as_deref()),
                e.message,
            )));
        }
        if let Some(u) = chunk.usage
            && chunk.choices.is_empty()
        {
            return Ok(Event::Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            });
        }
        let Some(delta) = chunk.choices.first().map(|c| &c.delta) else {
            return Ok(Event::Ignored);
        };
        let filled = |t: &Option<String>| t.as_deref().is_some_and(|t| !t.is_empty());
        Ok(if filled(&delta.content) {
            Event::Token { visible: true }
        } else if filled(&delta.reasoning_content) || filled(&delta.reasoning) {
            Event::Reasoning
        } else {
            Event::Ignored
        })
    }

    fn whole_answer(&self, body: &[u8]) -> Result<WholeAnswer, String> {
        let a: slo::openai::ChatCompletion = serde_json::from_slice(body).map_err(|e| {
            format!(
                "a malformed chat completion ({e}): {}",
                clip(&String::from_utf8_lossy(body))
            )
        })?;
        let tokens = u32::try_from(a.usage.completion_tokens).unwrap_or(u32::MAX);
        Ok(WholeAnswer {
            text: a
                .choices
                .into_iter()
                .next()
                .map(|c| c.message.content)
                .unwrap_or_default(),
            tokens,
            audio_ms: Vec::new(),
            server: ServerFigures {
                word_count: Some(a.usage.completion_tokens),
                input_tokens: Some(a.usage.prompt_tokens),
                ..ServerFigures::default()
            },
        })
    }

    fn error_answer(&self, status: u16, body: &[u8]) -> Failure {
        let parsed: Option<slo::openai::ErrorResponse> = serde_json::from_slice(body).ok();
        let message = parsed
            .as_ref()
            .map(|b| b.error.message.clone())
            .unwrap_or_else(|| clip(&String::from_utf8_lossy(body)));
        let outcome = match (status, &parsed) {
            (400 | 413 | 415 | 422, _) => Outcome::Validation,
            (500..=599, Some(e)) if status != 503 => openai_outcome(e.error.code.as_deref()),
            _ => Outcome::HttpStatus,
        };
        Failure::new(outcome, format!("HTTP {status}: {message}"))
    }
}

/// Any JSON-over-SSE API, as the scenario's `[template]` describes it.
#[derive(Clone, Debug)]
pub struct Template(pub slo::template::Template);

fn outcome_named(name: &str) -> Outcome {
    match name {
        "openai" => Outcome::Openai,
        "tts" => Outcome::Tts,
        "network" => Outcome::Network,
        "validation" => Outcome::Validation,
        _ => Outcome::Other,
    }
}

impl ChatProtocol for Template {
    fn path(&self) -> &str {
        &self.0.path
    }

    fn put(&self) -> bool {
        self.0.method.eq_ignore_ascii_case("PUT")
    }

    fn body(&self, ask: &Ask) -> Vec<u8> {
        self.0
            .render(&slo::template::Values {
                prompt: &ask.message,
                client_id: &ask.client_id,
                chatbot_id: &ask.chatbot_id,
                seq: ask.seq,
                audio: ask.audio,
            })
            .expect("the template was checked when the scenario was loaded")
    }

    fn token_text(&self, name: &str, data: &str) -> Option<String> {
        match self.0.meaning(name, data) {
            Ok(slo::template::Meaning::Token { text }) => Some(text),
            _ => None,
        }
    }

    fn event(&self, name: &str, data: &str) -> Result<Event, String> {
        use slo::template::Meaning;
        Ok(match self.0.meaning(name, data)? {
            Meaning::Token { text } => Event::Token {
                visible: !text.is_empty(),
            },
            Meaning::Audio { duration_ms } => Event::Audio { duration_ms },
            Meaning::Done(f) => Event::Done(f),
            Meaning::Error {
                error_type,
                message,
            } => Event::Error(Failure::new(
                outcome_named(self.0.outcome_of(error_type.as_deref())),
                message,
            )),
            Meaning::Ignore => Event::Ignored,
        })
    }

    fn whole_answer(&self, body: &[u8]) -> Result<WholeAnswer, String> {
        Err(format!(
            "a JSON answer where the template expects a stream (text/event-stream): {}",
            clip(&String::from_utf8_lossy(body))
        ))
    }

    fn error_answer(&self, status: u16, body: &[u8]) -> Failure {
        let outcome = match status {
            400 | 413 | 415 | 422 => Outcome::Validation,
            _ => Outcome::HttpStatus,
        };
        Failure::new(
            outcome,
            format!("HTTP {status}: {}", clip(&String::from_utf8_lossy(body))),
        )
    }
}

/// One `data:` of an OpenAI stream, read once: a chunk's choices and
/// usage, or an in-stream error. The fields a measurement does not need
/// (`id`, `model`, ...) are not required.
#[derive(serde::Deserialize)]
struct StreamData {
    #[serde(default)]
    error: Option<slo::openai::ApiError>,
    #[serde(default)]
    choices: Vec<slo::openai::ChunkChoice>,
    #[serde(default)]
    usage: Option<slo::openai::Usage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_protocol_v1() {
        let p = ChatV1;
        assert_eq!(
            p.event("token", r#"{"text":"Our "}"#).unwrap(),
            Event::Token { visible: true }
        );
        assert_eq!(
            p.event("token", r#"{"text":""}"#).unwrap(),
            Event::Token { visible: false }
        );
        assert_eq!(
            p.event("audio", r#"{"seq":0,"text":"x","format":"pcm_s16le_16000","durationMs":1840,"cached":false,"data":"AAAA"}"#).unwrap(),
            Event::Audio { duration_ms: 1840 }
        );
        let e = p
            .event("error", r#"{"type":"tts","message":"boom"}"#)
            .unwrap();
        assert_eq!(e, Event::Error(Failure::new(Outcome::Tts, "boom")));
        assert!(
            p.event("done", r#"{"wordCount":"many"}"#)
                .unwrap_err()
                .contains("malformed `done`")
        );
        assert_eq!(p.event("ping", "{}").unwrap(), Event::Ignored);
    }

    fn openai() -> OpenAiChat {
        OpenAiChat {
            request: slo::scenario::OpenAiRequest {
                model: "m".into(),
                stream: true,
                max_tokens: Some(64),
                temperature: None,
                extra: serde_json::Map::new(),
            },
        }
    }

    #[test]
    fn chunks_of_openai_chat() {
        let p = openai();
        let chunk = |delta: &str| {
            format!(
                r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{delta},"finish_reason":null}}]}}"#
            )
        };
        assert_eq!(
            p.event("message", &chunk(r#"{"role":"assistant","content":""}"#))
                .unwrap(),
            Event::Ignored,
            "a role-only chunk is not a token"
        );
        assert_eq!(
            p.event("message", &chunk(r#"{"content":"Hi"}"#)).unwrap(),
            Event::Token { visible: true }
        );
        assert_eq!(p.event("message", &chunk("{}")).unwrap(), Event::Ignored);
        for thinking in [
            r#"{"reasoning_content":"Hmm"}"#,
            r#"{"reasoning":"Hmm","content":""}"#,
        ] {
            assert_eq!(
                p.event("message", &chunk(thinking)).unwrap(),
                Event::Reasoning,
                "reasoning is its own figure, not the first token"
            );
        }
        assert_eq!(
            p.event("message", r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}"#).unwrap(),
            Event::Usage { prompt_tokens: 3, completion_tokens: 9 }
        );
        assert_eq!(
            p.event("message", "[DONE]").unwrap(),
            Event::Done(ServerFigures::default())
        );
        assert_eq!(
            p.event("message", r#"{"error":{"message":"boom","type":"server_error","param":null,"code":"model_error"}}"#).unwrap(),
            Event::Error(Failure::new(Outcome::Openai, "boom"))
        );
        assert!(
            p.event("message", "{not json")
                .unwrap_err()
                .contains("malformed chunk")
        );
        let body: serde_json::Value = serde_json::from_slice(&p.body(&Ask {
            chatbot_id: String::new(),
            client_id: "lg-1".into(),
            message: "Hi?".into(),
            message_tokens: None,
            audio: true,
            history: vec![("Hello".into(), "Hi there".into())],
            history_tokens: None,
            seq: 0,
            arrival: None,
            length: None,
        }))
        .unwrap();
        let roles: Vec<_> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| format!("{}: {}", m["role"], m["content"]))
            .collect();
        assert_eq!(
            roles,
            [
                r#""user": "Hello""#,
                r#""assistant": "Hi there""#,
                r#""user": "Hi?""#
            ],
            "a turn goes with its history"
        );
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["user"], "lg-1");
        assert!(body.get("min_tokens").is_none() && body.get("ignore_eos").is_none());
        // A drawn length: over the scenario's max_tokens, with vLLM's
        // extensions when asked.
        let asked = |min_tokens, ignore_eos| -> serde_json::Value {
            serde_json::from_slice(&p.body(&Ask {
                chatbot_id: String::new(),
                client_id: "lg-2".into(),
                message: "Hi?".into(),
                message_tokens: None,
                audio: false,
                history: Vec::new(),
                history_tokens: None,
                seq: 1,
                arrival: None,
                length: Some(AskedLength {
                    tokens: 300,
                    min_tokens,
                    ignore_eos,
                }),
            }))
            .unwrap()
        };
        let b = asked(true, false);
        assert_eq!(
            (&b["max_tokens"], &b["min_tokens"]),
            (&300.into(), &300.into())
        );
        assert!(b.get("ignore_eos").is_none());
        let b = asked(false, true);
        assert_eq!(
            (&b["max_tokens"], &b["ignore_eos"]),
            (&300.into(), &true.into())
        );
        assert!(b.get("min_tokens").is_none());
        let o = p.error_answer(400, br#"{"error":{"message":"x","type":"invalid_request_error","param":"messages","code":null}}"#).outcome;
        assert_eq!(o, Outcome::Validation);
        let o = p.error_answer(
            502,
            br#"{"error":{"message":"x","type":"server_error","param":null,"code":"model_error"}}"#,
        ).outcome;
        assert_eq!(o, Outcome::Openai);
        let o = p.error_answer(
            503,
            br#"{"error":{"message":"x","type":"server_error","param":null,"code":"overloaded"}}"#,
        ).outcome;
        assert_eq!(o, Outcome::HttpStatus);
    }

    #[test]
    fn error_answers() {
        let p = ChatV1;
        let body = br#"{"success":false,"error":{"type":"overloaded","message":"limit of 2"}}"#;
        let Failure {
            outcome: o,
            message: m,
        } = p.error_answer(503, body);
        assert_eq!(o, Outcome::HttpStatus);
        assert!(m.contains("503") && m.contains("limit of 2"));
        let o = p
            .error_answer(
                400,
                br#"{"success":false,"error":{"type":"validation","message":"x"}}"#,
            )
            .outcome;
        assert_eq!(o, Outcome::Validation);
        let o = p
            .error_answer(
                502,
                br#"{"success":false,"error":{"type":"openai","message":"x"}}"#,
            )
            .outcome;
        assert_eq!(o, Outcome::Openai);
        let Failure {
            outcome: o,
            message: m,
        } = p.error_answer(500, b"<html>oops</html>");
        assert_eq!(o, Outcome::HttpStatus);
        assert!(m.contains("oops"));
    }
}
