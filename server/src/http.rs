//! The HTTP surface: routes, the chat handler, the monitoring and admin
//! endpoints, and the SSE encoding of pipeline steps.

use crate::client_id;
use crate::faults::FaultsPatch;
use crate::metrics::now_iso;
use crate::pipeline::{Job, Step};
pub use crate::shared::AppState;
use crate::shared::{STEP_BUFFER, dropped_connection, json_body, unauthorized};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use wire::monitoring::{self, RolloutRequest, paths};
use wire::protocol::{BodyErrorKind, ErrorBody, ErrorKind, NonStreamAnswer, streams_at};

pub fn app(state: AppState) -> Router {
    Router::new()
        .route(wire::protocol::CHAT_PATH, post(chat))
        .route(paths::HEALTH, get(health))
        .route(paths::SUMMARY, get(summary))
        .route(paths::DETAILED, get(detailed))
        .route(paths::EVENTS, get(events))
        .route(paths::FEATURE_FLAGS, get(feature_flags))
        .route(paths::ROLLOUT, post(rollout))
        .route(paths::SYSTEM, get(system))
        .route(paths::ADMIN_FAULTS, get(get_faults).post(set_faults))
        .route(paths::PROMETHEUS, get(prometheus))
        .route(paths::DASHBOARD, get(dashboard))
        .route(
            wire::openai::CHAT_COMPLETIONS_PATH,
            post(crate::openai::chat_completions),
        )
        .route(wire::openai::MODELS_PATH, get(crate::openai::models))
        .fallback(not_found)
        .with_state(state)
}

fn error(status: StatusCode, kind: BodyErrorKind, message: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody::new(kind, message))).into_response()
}

fn json_ok(v: impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

async fn chat(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let received = tokio::time::Instant::now();
    let metrics = &app.engine.metrics;
    let reject = |status, message: String| {
        metrics.rejected(ErrorKind::Validation, &message);
        tracing::warn!(
            status = u16::from(status),
            "Chat request rejected: {message}"
        );
        error(status, BodyErrorKind::Validation, message)
    };

    if !crate::shared::has_api_key(&app, &headers) {
        // Refused at the door, as an API gateway would: not a chat request.
        return unauthorized(error(
            StatusCode::UNAUTHORIZED,
            BodyErrorKind::Unauthorized,
            "this endpoint needs Authorization: Bearer <the server's API key>",
        ));
    }
    let bytes = match json_body(&headers, body, app.body_timeout).await {
        Ok(b) => b,
        Err((status, message)) => return reject(status, message),
    };
    let input = match wire::protocol::ChatRequest::parse(&bytes) {
        Ok(i) => i,
        Err(message) => return reject(StatusCode::BAD_REQUEST, message),
    };

    let client_id = input
        .client_id
        .unwrap_or_else(|| client_id::generate_client_id(&mut rand::rng()));
    let streaming = streams_at(&client_id, app.flags.streaming_percentage());
    let Some(guard) = metrics.try_begin(app.max_streams, streaming, &client_id, &input.chatbot_id)
    else {
        let message = crate::shared::refuse_over_limit(&app);
        tracing::warn!(clientId = %client_id, maxStreams = app.max_streams, "Overloaded: concurrent stream limit reached");
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            BodyErrorKind::Overloaded,
            message,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    tracing::debug!(clientId = %client_id, chatbotId = %input.chatbot_id, streaming, "Stream start");

    let job = Job {
        client_id,
        chatbot_id: input.chatbot_id,
        prompt_ids: app.engine.prompt_ids(&input.message),
        message: input.message,
        audio: input.audio,
        streaming,
        received,
        max_tokens: None,
        min_tokens: None,
    };
    let (tx, rx) = mpsc::channel(STEP_BUFFER);
    let engine = Arc::clone(&app.engine);
    let task = AbortOnDropHandle::new(tokio::spawn(
        async move { engine.run(job, guard, tx).await },
    ));
    if streaming {
        crate::shared::stream_response(&app, crate::sse::response(rx, task, ChatEvents))
    } else {
        collect_answer(rx, task).await
    }
}

/// The JSON answer of a client outside the streaming rollout.
async fn collect_answer(mut rx: mpsc::Receiver<Step>, _task: AbortOnDropHandle<()>) -> Response {
    let (mut client_id, mut text, mut audio) = (String::new(), String::new(), Vec::new());
    while let Some(step) = rx.recv().await {
        match step {
            Step::Start(s) => client_id = s.client_id,
            Step::Token(t) => text.push_str(&t),
            Step::Audio(a) => audio.push(*a),
            Step::Done(metrics) => {
                return axum::Json(NonStreamAnswer {
                    success: true,
                    streaming: false,
                    client_id,
                    text,
                    audio,
                    metrics: *metrics,
                })
                .into_response();
            }
            Step::Error(e) => {
                let kind = match e.kind {
                    ErrorKind::Openai => BodyErrorKind::Openai,
                    ErrorKind::Tts => BodyErrorKind::Tts,
                    ErrorKind::Network => BodyErrorKind::Network,
                    ErrorKind::Validation => BodyErrorKind::Validation,
                    ErrorKind::Other => BodyErrorKind::Other,
                };
                return error(StatusCode::BAD_GATEWAY, kind, e.message);
            }
            Step::Drop => return dropped_connection(),
        }
    }
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        BodyErrorKind::Other,
        "the answer ended without a result",
    )
}

/// The pipeline's steps as the chat stream's named events.
struct ChatEvents;

impl crate::sse::Render for ChatEvents {
    fn render(&mut self, step: Step, out: &mut bytes::BytesMut) -> std::io::Result<()> {
        use crate::sse::event;
        match step {
            Step::Start(s) => event(Some("start"), &s, out),
            Step::Token(text) => event(Some("token"), &wire::protocol::Token { text }, out),
            Step::Audio(a) => crate::sse::event_with(Some("audio"), out, |w| a.write_json(w)),
            Step::Done(d) => event(Some("done"), &d, out),
            Step::Error(e) => event(Some("error"), &e, out),
            Step::Drop => Err(crate::sse::dropped()),
        }
    }
}

async fn health(State(app): State<AppState>) -> Response {
    let cache = app.engine.cache_state().await;
    let body = app.engine.metrics.health(&cache);
    let status = if body.status == monitoring::HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

async fn summary(State(app): State<AppState>) -> Response {
    json_ok(app.engine.metrics.summary())
}

async fn detailed(State(app): State<AppState>) -> Response {
    json_ok(app.engine.metrics.detailed())
}

async fn system(State(app): State<AppState>) -> Response {
    json_ok(app.engine.metrics.system_answer())
}

async fn events(State(app): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = match q.get("limit") {
        None => monitoring::EVENTS_DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=monitoring::EVENTS_MAX_LIMIT).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    BodyErrorKind::Validation,
                    format!(
                        "limit must be a whole number from 1 to {}, got {raw:?}",
                        monitoring::EVENTS_MAX_LIMIT
                    ),
                );
            }
        },
    };
    json_ok(app.engine.metrics.events(limit))
}

async fn feature_flags(State(app): State<AppState>) -> Response {
    json_ok(app.flags.answer())
}

/// A request allowed to take an admin action; rejects with 401 or 403.
struct Admin {
    peer: SocketAddr,
}

impl axum::extract::FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Self, Response> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .ok_or_else(|| {
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    BodyErrorKind::Other,
                    "the server was started without peer addresses",
                )
            })?;
        authorize(app, &parts.headers, peer)?;
        Ok(Admin { peer })
    }
}

/// Admin actions: a bearer token when the server has one, else loopback only.
#[allow(clippy::result_large_err)]
fn authorize(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Response> {
    match &app.admin_token {
        Some(token) => {
            let given = crate::shared::bearer(headers);
            if given == Some(token.as_str()) {
                Ok(())
            } else {
                Err(unauthorized(error(
                    StatusCode::UNAUTHORIZED,
                    BodyErrorKind::Unauthorized,
                    if given.is_some() {
                        "the bearer token is wrong; send Authorization: Bearer <the server's admin token>"
                    } else {
                        "this admin action needs Authorization: Bearer <the server's admin token>"
                    },
                )))
            }
        }
        None if peer.ip().is_loopback() => Ok(()),
        None => Err(error(
            StatusCode::FORBIDDEN,
            BodyErrorKind::Forbidden,
            format!(
                "admin actions are open to loopback clients only (this one is {}); start the server with --admin-token to allow remote admins",
                peer.ip()
            ),
        )),
    }
}

fn parse_json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(format!("Content-Type must be application/json, got '{ct}'"));
    }
    serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))
}

async fn rollout(
    State(app): State<AppState>,
    Admin { peer }: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = parse_json_body(&headers, &body).and_then(|v| RolloutRequest::parse(&v));
    let RolloutRequest {
        feature,
        percentage,
    } = match parsed {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, BodyErrorKind::Validation, m),
    };
    let previous = app.flags.set_streaming_percentage(percentage);
    let metrics = &app.engine.metrics;
    metrics.set_rollout(percentage);
    metrics.event(monitoring::Event::FlagChange {
        timestamp: now_iso(),
        feature: feature.clone(),
        percentage,
        previous,
        by: peer.ip().to_string(),
    });
    tracing::warn!(feature = %feature, percentage, previous, by = %peer.ip(), "Feature flag changed");
    json_ok(monitoring::Rollout {
        success: true,
        timestamp: now_iso(),
        feature,
        percentage,
        previous,
    })
}

/// `GET` and `POST /api/admin/faults`: the faults in force.
#[derive(serde::Serialize)]
struct FaultsAnswer {
    success: bool,
    faults: crate::faults::Faults,
}

async fn get_faults(State(app): State<AppState>, _admin: Admin) -> Response {
    json_ok(FaultsAnswer {
        success: true,
        faults: app.engine.faults(),
    })
}

async fn set_faults(
    State(app): State<AppState>,
    Admin { peer }: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let patch = parse_json_body(&headers, &body).and_then(|v| {
        serde_json::from_value::<FaultsPatch>(v)
            .map_err(|e| format!("the faults body is not valid: {e}"))
    });
    let faults = match patch.map(|p| p.apply(&app.engine.faults())) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, BodyErrorKind::Validation, m),
    };
    if let Err(e) = faults.validate() {
        return error(
            StatusCode::BAD_REQUEST,
            BodyErrorKind::Validation,
            e.to_string(),
        );
    }
    app.engine.set_faults(faults.clone());
    app.engine.metrics.event(monitoring::Event::FaultChange {
        timestamp: now_iso(),
        faults: serde_json::to_value(&faults).expect("faults serialize"),
        by: peer.ip().to_string(),
    });
    tracing::warn!(faults = ?faults, by = %peer.ip(), "Injected faults changed");
    json_ok(FaultsAnswer {
        success: true,
        faults,
    })
}

async fn prometheus(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        app.engine.metrics.prometheus((
            app.engine.model.waiting(),
            app.engine.model.generating(),
            app.engine.model.slots(),
        )),
    )
        .into_response()
}

/// The guide's simple HTML dashboard, done well: everything it needs is
/// in the binary (no CDN); it refreshes every 5 s.
async fn dashboard() -> Response {
    axum::response::Html(include_str!("dashboard.html")).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        BodyErrorKind::NotFound,
        format!(
            "no endpoint at {}; see the README for the endpoints",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(token: Option<&str>) -> AppState {
        let mut c = crate::Config::from_args(["--profile", "fast"]).unwrap();
        c.admin_token = token.map(str::to_owned);
        c.state()
    }

    #[test]
    fn without_a_token_only_loopback_may_act() {
        let app = state(None);
        let h = HeaderMap::new();
        assert!(authorize(&app, &h, "127.0.0.1:9".parse().unwrap()).is_ok());
        assert!(authorize(&app, &h, "[::1]:9".parse().unwrap()).is_ok());
        let denied = authorize(&app, &h, "10.1.2.3:9".parse().unwrap()).unwrap_err();
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn with_a_token_the_peer_does_not_matter() {
        let app = state(Some("t"));
        let mut h = HeaderMap::new();
        let remote: SocketAddr = "10.1.2.3:9".parse().unwrap();
        assert_eq!(
            authorize(&app, &h, remote).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(authorize(&app, &h, remote).is_ok());
        assert!(authorize(&app, &h, "127.0.0.1:9".parse().unwrap()).is_ok());
    }
}
