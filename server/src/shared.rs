//! What the handlers of both chat protocols (`http`, `openai`) share:
//! the app state, reading a JSON body, a connection that breaks off. A
//! leaf: it imports neither of them.

use crate::flags::FeatureFlags;
use crate::pipeline::Engine;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use wire::protocol::MAX_BODY_BYTES;

/// Everything a handler reaches.
#[derive(Clone, Debug)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub flags: Arc<FeatureFlags>,
    /// Above this many requests in progress, a new one gets 503.
    pub max_streams: u64,
    /// When set, admin actions need `Authorization: Bearer <token>`;
    /// when not, only loopback clients may take them.
    pub admin_token: Option<String>,
    /// When set, the chat endpoints need `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Streams carry `X-Accel-Buffering: no` (nginx then never buffers
    /// them, whatever its `proxy_buffering`).
    pub accel_header: bool,
    /// A request's body must arrive within this (`--header-read-timeout`).
    pub body_timeout: std::time::Duration,
}

/// A stream's response, with `X-Accel-Buffering: no` unless the server
/// was told to leave buffering to the proxy's configuration.
pub fn stream_response(app: &AppState, r: impl axum::response::IntoResponse) -> Response {
    let mut r = r.into_response();
    if app.accel_header {
        r.headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    r
}

/// The bearer token of a request, if any. The scheme is case-insensitive
/// (RFC 7235: `bearer x` is `Bearer x`), spaces after it are skipped.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
        .filter(|t| !t.is_empty())
}

/// A 401 with the challenge that says which scheme to use.
pub fn unauthorized(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Whether a chat request carries the server's API key (always, when the
/// server has none). The key is never logged or echoed.
pub fn has_api_key(app: &AppState, headers: &HeaderMap) -> bool {
    app.api_key
        .as_deref()
        .is_none_or(|key| bearer(headers) == Some(key))
}

/// Steps buffered between the pipeline and a slow client: a tokio channel
/// allocates a block of 32 at its start, so 32 cost no more than fewer, and
/// a frame then takes up to 32 steps that are due at once.
pub const STEP_BUFFER: usize = 32;

/// A chat request's body: JSON, at most [`MAX_BODY_BYTES`], whole within
/// `within`; else the status (415, 413, 400, 408) and why.
pub async fn json_body(
    headers: &HeaderMap,
    body: Body,
    within: std::time::Duration,
) -> Result<Bytes, (StatusCode, String)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_json = content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    if !is_json {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/json, got {}",
                content_type.map_or("none".to_owned(), |c| format!("'{c}'"))
            ),
        ));
    }
    let too_large = || {
        format!(
            "the body is over {} KiB; send a shorter message",
            MAX_BODY_BYTES / 1024
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, too_large()));
    }
    let read = tokio::time::timeout(within, axum::body::to_bytes(body, MAX_BODY_BYTES));
    match read.await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} (--header-read-timeout)",
                humantime::format_duration(within)
            ),
        )),
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                Err((StatusCode::PAYLOAD_TOO_LARGE, too_large()))
            } else {
                Err((
                    StatusCode::BAD_REQUEST,
                    format!("the body could not be read: {e}"),
                ))
            }
        }
    }
}

/// A 200 whose body breaks off: the connection is closed mid-response.
pub fn dropped_connection() -> Response {
    let body = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected network fault",
        ))
    });
    Response::new(Body::from_stream(body))
}

/// A request over the concurrent-stream limit: counted as an `other`
/// failure; what to tell the client (with a 503 and `Retry-After: 1`).
pub fn refuse_over_limit(app: &AppState) -> String {
    let message = format!(
        "the server is answering its limit of {} concurrent requests; retry after 1 s",
        app.max_streams
    );
    app.engine
        .metrics
        .rejected(wire::protocol::ErrorKind::Other, &message);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            bearer(&h).map(str::to_owned)
        };
        assert_eq!(with("Bearer t1").as_deref(), Some("t1"));
        assert_eq!(with("bearer t1").as_deref(), Some("t1"));
        assert_eq!(with("BEARER  t1").as_deref(), Some("t1"));
        assert_eq!(with("Basic dTpw"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
