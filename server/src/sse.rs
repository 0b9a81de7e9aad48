//! A stream's body: the pipeline's steps as SSE bytes, for both chat
//! protocols (each renders a step its own way, [`Render`]).
//!
//! Every step already waiting when the connection asks for more goes out
//! in one frame (one write): under load, or with the `fast` profile, the
//! pipeline is often ahead of the socket. Nothing waits to be coalesced: a
//! frame holds what is due now, so no event leaves later than it would
//! alone. A comment (`:`) keeps an idle stream alive every 15 s.

use crate::pipeline::Step;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::BytesMut;
use http_body::Frame;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::task::AbortOnDropHandle;

/// How long a stream may stay silent before a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A frame takes no more waiting steps once it holds this many bytes (an
/// audio chunk, ~200 KB, ends its frame).
const FRAME_BYTES: usize = 16 * 1024;

/// Turns one step into the bytes of its events.
pub trait Render: Send + Unpin + 'static {
    /// Appends the step's events to `out`; an error ends the body there
    /// (the connection breaks off, as for an injected network fault).
    fn render(&mut self, step: Step, out: &mut BytesMut) -> std::io::Result<()>;
}

/// Appends `data: <json>\n\n`, after `event: <name>\n` when named.
pub fn event<T: serde::Serialize>(
    name: Option<&str>,
    data: &T,
    out: &mut BytesMut,
) -> std::io::Result<()> {
    event_with(name, out, |w| serde_json::to_writer(w, data))
}

/// [`event`] with the JSON written by `write` (an audio chunk's JSON is
/// written by `wire`, where it is compiled optimized).
pub fn event_with(
    name: Option<&str>,
    out: &mut BytesMut,
    write: impl FnOnce(&mut dyn std::io::Write) -> serde_json::Result<()>,
) -> std::io::Result<()> {
    use bytes::BufMut;
    if let Some(name) = name {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"data: ");
    // serde_json writes no raw newline: the data is one line.
    write(&mut (&mut *out).writer()).map_err(std::io::Error::other)?;
    out.put_slice(b"\n\n");
    Ok(())
}

/// The injected network fault: the body breaks off.
pub fn dropped() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "injected network fault",
    )
}

/// The response of a stream: `text/event-stream`, not cached.
pub fn response<R: Render>(
    rx: mpsc::Receiver<Step>,
    task: AbortOnDropHandle<()>,
    render: R,
) -> Response {
    let body = StepBody {
        rx,
        _task: task,
        render,
        failed: None,
        ended: false,
        idle: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
    };
    let mut r = Response::new(Body::new(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

struct StepBody<R> {
    rx: mpsc::Receiver<Step>,
    /// Aborts the pipeline task when the response is dropped (client gone).
    _task: AbortOnDropHandle<()>,
    render: R,
    /// A step ended the body with an error, to give after the bytes before it.
    failed: Option<std::io::Error>,
    ended: bool,
    idle: Pin<Box<Sleep>>,
}

impl<R: Render> StepBody<R> {
    /// Renders `step` and every step already waiting behind it.
    fn frame(&mut self, step: Step) -> Bytes {
        let mut out = BytesMut::new();
        let mut next = Some(step);
        while let Some(step) = next.take() {
            if let Err(e) = self.render.render(step, &mut out) {
                self.failed = Some(e);
                break;
            }
            if out.len() >= FRAME_BYTES {
                break;
            }
            next = self.rx.try_recv().ok();
        }
        out.freeze()
    }
}

impl<R: Render> http_body::Body for StepBody<R> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            this.ended = true;
            return Poll::Ready(Some(Err(e)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(step)) => {
                    let bytes = this.frame(step);
                    this.idle.as_mut().reset(Instant::now() + KEEP_ALIVE);
                    if !bytes.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(bytes))));
                    }
                    if let Some(e) = this.failed.take() {
                        // The first step failed: nothing to send before it.
                        this.ended = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    // Steps that render as nothing (audio in an OpenAI
                    // stream): wait for the next.
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    ready!(this.idle.as_mut().poll(cx));
                    this.idle.as_mut().reset(Instant::now() + KEEP_ALIVE);
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b":\n\n")))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.failed.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    struct Names;

    impl Render for Names {
        fn render(&mut self, step: Step, out: &mut BytesMut) -> std::io::Result<()> {
            match step {
                Step::Token(text) => event(Some("token"), &text, out),
                Step::Drop => Err(dropped()),
                // Renders as nothing, as audio does in an OpenAI stream.
                Step::Error(_) => Ok(()),
                _ => unreachable!("the tests send tokens, errors and drops"),
            }
        }
    }

    fn body() -> (mpsc::Sender<Step>, Body) {
        let (tx, rx) = mpsc::channel(32);
        let task = AbortOnDropHandle::new(tokio::spawn(async {}));
        (tx, response(rx, task, Names).into_body())
    }

    async fn next(body: &mut Body) -> Option<Result<Bytes, String>> {
        let frame = body.frame().await?;
        Some(
            frame
                .map(|f| f.into_data().expect("data"))
                .map_err(|e| e.to_string()),
        )
    }

    fn token(t: &str) -> Step {
        Step::Token(t.to_owned())
    }

    #[tokio::test]
    async fn steps_due_together_go_in_one_frame_and_a_later_one_alone() {
        let (tx, mut body) = body();
        for t in ["a", "b", "c"] {
            tx.send(token(t)).await.unwrap();
        }
        let first = next(&mut body).await.unwrap().unwrap();
        assert_eq!(
            &first[..],
            b"event: token\ndata: \"a\"\n\nevent: token\ndata: \"b\"\n\nevent: token\ndata: \"c\"\n\n"
        );
        // Nothing waits for company: one step sent alone is a frame alone.
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(token("d")).await.unwrap();
            tx
        });
        let second = next(&mut body).await.unwrap().unwrap();
        assert_eq!(&second[..], b"event: token\ndata: \"d\"\n\n");
        drop(later.await.unwrap());
        assert!(
            next(&mut body).await.is_none(),
            "the body ends with the channel"
        );
    }

    #[tokio::test]
    async fn a_step_that_renders_as_nothing_makes_no_frame() {
        let (tx, mut body) = body();
        let silent = || {
            Step::Error(wire::protocol::StreamError {
                kind: wire::protocol::ErrorKind::Other,
                message: String::new(),
            })
        };
        tx.send(silent()).await.unwrap();
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(token("a")).await.unwrap();
            tx.send(silent()).await.unwrap();
        });
        assert_eq!(
            &next(&mut body).await.unwrap().unwrap()[..],
            b"event: token\ndata: \"a\"\n\n"
        );
        later.await.unwrap();
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test]
    async fn a_drop_ends_the_body_after_the_events_before_it() {
        let (tx, mut body) = body();
        tx.send(token("a")).await.unwrap();
        tx.send(Step::Drop).await.unwrap();
        tx.send(token("never")).await.unwrap();
        assert_eq!(
            &next(&mut body).await.unwrap().unwrap()[..],
            b"event: token\ndata: \"a\"\n\n"
        );
        let e = next(&mut body).await.unwrap().unwrap_err();
        assert!(e.contains("injected network fault"), "{e}");
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_gets_a_comment_every_15_s() {
        let (tx, mut body) = body();
        let t0 = Instant::now();
        assert_eq!(&next(&mut body).await.unwrap().unwrap()[..], b":\n\n");
        assert_eq!(t0.elapsed(), KEEP_ALIVE);
        tx.send(token("a")).await.unwrap();
        next(&mut body).await.unwrap().unwrap();
        // An event restarts the wait.
        let t1 = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(&next(&mut body).await.unwrap().unwrap()[..], b":\n\n");
        assert_eq!(t1.elapsed(), KEEP_ALIVE);
    }
}
