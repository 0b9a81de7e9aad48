//! The OpenAI chat completions endpoint (`POST /v1/chat/completions`,
//! `GET /v1/models`), driven by the same pipeline, profiles, capacity,
//! faults and metrics as the chat stream. Audio does not apply. The wire
//! types are `wire::openai`'s.

use crate::client_id;
use crate::pipeline::{Job, Step};
use crate::shared::{AppState, STEP_BUFFER, dropped_connection, json_body};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use wire::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, ChunkChoice, DONE, Delta,
    ErrorResponse, Message, ModelEntry, ModelList, Usage,
};
use wire::protocol::ErrorKind;

/// The model the reference server names in `/v1/models`; any name is
/// answered.
pub const MODEL: &str = "refserver";

fn openai_error(status: StatusCode, kind: &str, code: Option<&str>, message: String) -> Response {
    (status, axum::Json(ErrorResponse::new(kind, code, message))).into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `GET /v1/models`.
pub async fn models() -> Response {
    axum::Json(ModelList {
        object: "list".into(),
        data: vec![ModelEntry {
            id: MODEL.into(),
            object: "model".into(),
            created: 0,
            owned_by: "refserver".into(),
        }],
    })
    .into_response()
}

/// What every chunk of one answer repeats.
#[derive(Clone, Debug)]
struct Answer {
    id: String,
    created: u64,
    model: String,
    prompt_tokens: u64,
    include_usage: bool,
    max_tokens: Option<usize>,
}

impl Answer {
    fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
            }],
            usage: None,
        }
    }

    /// `length` when the answer stopped at `max_tokens`.
    fn finish_reason(&self, tokens: u64) -> &'static str {
        if self.max_tokens.is_some_and(|m| m as u64 == tokens) {
            "length"
        } else {
            "stop"
        }
    }

    /// A failure's error body, as OpenAI-compatible servers send it.
    fn error(kind: ErrorKind, message: String) -> ErrorResponse {
        let code = match kind {
            ErrorKind::Openai => "model_error",
            ErrorKind::Tts => "tts_error",
            ErrorKind::Network => "network_error",
            ErrorKind::Validation => "invalid_request",
            ErrorKind::Other => "internal_error",
        };
        ErrorResponse::new("server_error", Some(code), message)
    }
}

static ANSWERS: AtomicU64 = AtomicU64::new(0);

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = tokio::time::Instant::now();
    let metrics = &app.engine.metrics;
    let reject = |status: StatusCode, message: String, param: Option<String>| {
        metrics.rejected(ErrorKind::Validation, &message);
        tracing::warn!(
            status = u16::from(status),
            "Chat completion rejected: {message}"
        );
        let mut body = ErrorResponse::new("invalid_request_error", None, message);
        body.error.param = param;
        (status, axum::Json(body)).into_response()
    };
    if !crate::shared::has_api_key(&app, &headers) {
        // Refused at the door, as an API gateway would: not a chat request.
        let body = ErrorResponse::new(
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided; send Authorization: Bearer <the server's API key>"
                .to_owned(),
        );
        return crate::shared::unauthorized(
            (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response(),
        );
    }
    let bytes = match json_body(&headers, body, app.body_timeout).await {
        Ok(b) => b,
        Err((status, message)) => return reject(status, message, None),
    };
    let request = match ChatCompletionRequest::parse(&bytes) {
        Ok(r) => r,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e.message, e.param),
    };
    let client_id = request
        .user
        .clone()
        .unwrap_or_else(|| client_id::generate_client_id(&mut rand::rng()));
    let streaming = request.stream;
    let Some(guard) = metrics.try_begin(app.max_streams, streaming, &client_id, &request.model)
    else {
        let message = crate::shared::refuse_over_limit(&app);
        let mut r = openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("overloaded"),
            message,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    // Every message's tokens, in order: what the model reads (and what
    // its prefix cache sees).
    let prompt_ids: Vec<u32> = request
        .messages
        .iter()
        .flat_map(|m| app.engine.prompt_ids(&m.content))
        .collect();
    let answer = Answer {
        id: format!("chatcmpl-{}", ANSWERS.fetch_add(1, Ordering::Relaxed)),
        created: unix_now(),
        model: request.model.clone(),
        prompt_tokens: prompt_ids.len() as u64,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
        max_tokens: request.max_limit().map(|m| m as usize),
    };
    let job = Job {
        client_id,
        chatbot_id: request.model.clone(),
        message: request.question().to_owned(),
        audio: false,
        streaming,
        received,
        max_tokens: answer.max_tokens,
        min_tokens: request.min_limit().map(|m| m as usize),
        prompt_ids,
    };
    let (tx, rx) = mpsc::channel(STEP_BUFFER);
    let engine = Arc::clone(&app.engine);
    let task = AbortOnDropHandle::new(tokio::spawn(
        async move { engine.run(job, guard, tx).await },
    ));
    if streaming {
        let chunks = Chunks { answer, tokens: 0 };
        crate::shared::stream_response(&app, crate::sse::response(rx, task, chunks))
    } else {
        collect(rx, task, answer).await
    }
}

/// The non-streamed answer: every token, then one JSON.
async fn collect(
    mut rx: mpsc::Receiver<Step>,
    _task: AbortOnDropHandle<()>,
    answer: Answer,
) -> Response {
    let mut text = String::new();
    let mut tokens = 0u64;
    while let Some(step) = rx.recv().await {
        match step {
            Step::Start(_) | Step::Audio(_) => {}
            Step::Token(t) => {
                text.push_str(&t);
                tokens += 1;
            }
            Step::Done(_) => {
                return axum::Json(ChatCompletion {
                    id: answer.id.clone(),
                    object: "chat.completion".into(),
                    created: answer.created,
                    model: answer.model.clone(),
                    choices: vec![Choice {
                        index: 0,
                        message: Message {
                            role: "assistant".into(),
                            content: text,
                        },
                        finish_reason: answer.finish_reason(tokens).into(),
                    }],
                    usage: Usage::new(answer.prompt_tokens, tokens),
                })
                .into_response();
            }
            Step::Error(e) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    axum::Json(Answer::error(e.kind, e.message)),
                )
                    .into_response();
            }
            Step::Drop => return dropped_connection(),
        }
    }
    openai_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        None,
        "the answer ended without a result".into(),
    )
}

/// The pipeline's steps as `data:` chunks, ending with `data: [DONE]`.
struct Chunks {
    answer: Answer,
    tokens: u64,
}

impl crate::sse::Render for Chunks {
    /// The events one step becomes (none for audio, several for the end).
    fn render(&mut self, step: Step, out: &mut bytes::BytesMut) -> std::io::Result<()> {
        let data =
            |v: &ChatCompletionChunk, out: &mut bytes::BytesMut| crate::sse::event(None, v, out);
        let done = |out: &mut bytes::BytesMut| {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(DONE.as_bytes());
            out.extend_from_slice(b"\n\n");
        };
        let a = &self.answer;
        match step {
            Step::Start(_) => {
                let role = Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                    ..Delta::default()
                };
                data(&a.chunk(role, None), out)
            }
            Step::Token(text) => {
                self.tokens += 1;
                let token = Delta {
                    role: None,
                    content: Some(text),
                    ..Delta::default()
                };
                data(&a.chunk(token, None), out)
            }
            Step::Audio(_) => Ok(()),
            Step::Done(_) => {
                let finish = a.finish_reason(self.tokens);
                data(&a.chunk(Delta::default(), Some(finish)), out)?;
                if a.include_usage {
                    let mut usage = a.chunk(Delta::default(), None);
                    usage.choices.clear();
                    usage.usage = Some(Usage::new(a.prompt_tokens, self.tokens));
                    data(&usage, out)?;
                }
                done(out);
                Ok(())
            }
            Step::Error(e) => {
                crate::sse::event(None, &Answer::error(e.kind, e.message), out)?;
                done(out);
                Ok(())
            }
            Step::Drop => Err(crate::sse::dropped()),
        }
    }
}
