//! The connection level of the fault matrix, over raw sockets: idle,
//! half-sent and slow connections are closed by their timeouts, the
//! connection limit answers 503 and frees itself, HTTP/1.0 and pipelined
//! requests are answered, a stalled body gets 408, and a shutdown does
//! not wait for clients that are still sending headers.
//!
//! Timeouts are judged against the configured value with a stated
//! tolerance: closed no earlier than the timeout less 100 ms, and no later
//! than the timeout plus 1.5 s (a busy 2-core machine).

use crate::support::{body, chat, eventually, get_json, metric, start};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LATE: Duration = Duration::from_millis(1500);
const EARLY: Duration = Duration::from_millis(100);

/// Reads until the server closes; the bytes and when it closed.
async fn until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    let at = tokio::time::timeout(within, read)
        .await
        .expect("the server closed the connection in time");
    (all, at)
}

fn assert_closed_by(what: &str, began: Instant, closed: Instant, timeout: Duration) {
    let took = closed - began;
    assert!(
        took + EARLY >= timeout && took <= timeout + LATE,
        "{what}: closed after {took:?}, timeout {timeout:?}"
    );
}

fn chat_request(version: &str, extra: &str) -> Vec<u8> {
    let b = serde_json::to_string(&body("opening hours", None, false)).unwrap();
    format!(
        "POST /api/chat/stream {version}\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{b}",
        b.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_kept_alive_connections_are_closed_by_their_timeouts() {
    let header = Duration::from_millis(500);
    let keep_alive = Duration::from_millis(900);
    let server = start(&[
        "--profile",
        "fast",
        "--header-read-timeout",
        "500ms",
        "--keep-alive-timeout",
        "900ms",
        "--idle-timeout",
        "5s",
    ])
    .await;
    let url = server.url();

    // A connection that sends nothing: its first request must come within
    // the header-read timeout.
    let began = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (bytes, closed) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(bytes.is_empty());
    assert_closed_by("silent", began, closed, header);

    // Slowloris: a header line a byte at a time, every 100 ms, never
    // finished: closed at the header-read timeout although bytes keep coming.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let began = Instant::now();
    let dribble = async {
        for b in b"GET /api/metrics/health/streaming HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter().cycle() {
            if slow.write_all(&[*b]).await.is_err() {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!()
    };
    let closed = tokio::time::timeout(Duration::from_secs(5), dribble)
        .await
        .expect("the slow sender was cut");
    // The write that fails comes after the close: up to 2 more 100 ms ticks.
    assert_closed_by(
        "slowloris",
        began,
        closed,
        header + Duration::from_millis(200),
    );

    // Kept alive: a request answered, then the next one must come within
    // the keep-alive timeout.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    kept.write_all(b"GET /api/metrics/health/streaming HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = kept.read(&mut buf).await.unwrap();
    let answered = Instant::now();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let (_, closed) = until_closed(&mut kept, Duration::from_secs(5)).await;
    assert_closed_by("keep-alive", answered, closed, keep_alive);

    assert!(
        metric(
            &url,
            "chatbot_connections_timed_out_total{timeout=\"header_read\"}"
        )
        .await
            >= 2.0
    );
    assert!(
        metric(
            &url,
            "chatbot_connections_timed_out_total{timeout=\"keep_alive\"}"
        )
        .await
            >= 1.0
    );
    let _ = server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_a_silent_one_is_closed_when_idle() {
    // The body must arrive within the header-read timeout (500 ms): one
    // that trickles gets 408, its connection stays usable.
    let server = start(&[
        "--profile",
        "fast",
        "--header-read-timeout",
        "500ms",
        "--idle-timeout",
        "10s",
    ])
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let began = Instant::now();
    s.write_all(b"POST /api/chat/stream HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"chat")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("--header-read-timeout"), "{text}");
    let took = began.elapsed();
    assert!(
        took + EARLY >= Duration::from_millis(500) && took < Duration::from_millis(500) + LATE,
        "{took:?}"
    );
    let _ = server.stop().await;

    // With a short idle timeout (and a long header one), a request whose
    // body stops arriving is closed when nothing moved for the idle time.
    let server = start(&[
        "--profile",
        "fast",
        "--header-read-timeout",
        "10s",
        "--idle-timeout",
        "700ms",
    ])
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /api/chat/stream HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"chat")
        .await
        .unwrap();
    let sent = Instant::now();
    let (bytes, closed) = until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert_closed_by("idle", sent, closed, Duration::from_millis(700));
    let url = server.url();
    assert_eq!(
        metric(
            &url,
            "chatbot_connections_timed_out_total{timeout=\"idle\"}"
        )
        .await,
        1.0
    );
    let _ = server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_a_new_client_gets_503_until_idle_ones_time_out() {
    let server = start(&[
        "--profile",
        "fast",
        "--max-connections",
        "40",
        "--header-read-timeout",
        "1s",
    ])
    .await;
    let url = server.url();
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Give the server the time to accept them all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let (bytes, _) = until_closed(&mut extra, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(text.contains("Retry-After: 1"), "{text}");
    assert!(
        text.contains("\"overloaded\"") && text.contains("--max-connections"),
        "{text}"
    );
    // The idle ones time out; then new clients are served again.
    for s in &mut idle {
        let (b, _) = until_closed(s, Duration::from_secs(5)).await;
        assert!(b.is_empty());
    }
    let r = chat(&url, &body("hello", None, false)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.names().last(), Some(&"done"));
    assert!(metric(&url, "chatbot_connections_refused_total").await >= 1.0);
    eventually(async || metric(&url, "chatbot_open_connections").await <= 1.0).await;
    let _ = server.stop().await;
}

#[tokio::test]
async fn http_1_0_and_pipelined_requests_are_answered() {
    let server = start(&["--profile", "fast"]).await;
    // HTTP/1.0: no chunked encoding; the stream ends with the connection.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&chat_request("HTTP/1.0", "")).await.unwrap();
    let (bytes, _) = until_closed(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&bytes);
    let (head, stream) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    let mut events = Vec::new();
    slo::sse::SseParser::new().feed(stream.as_bytes(), &mut |e| events.push(e.event.to_owned()));
    assert_eq!(events.first().map(String::as_str), Some("start"));
    assert_eq!(events.last().map(String::as_str), Some("done"), "{stream}");

    // Pipelined: a stream, then two monitoring requests, in one write; the
    // answers come back whole and in order.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut all = chat_request("HTTP/1.1", "");
    all.extend_from_slice(b"GET /api/metrics/health/streaming HTTP/1.1\r\nHost: t\r\n\r\n");
    all.extend_from_slice(
        b"GET /api/metrics/streaming/summary HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    s.write_all(&all).await.unwrap();
    let (bytes, _) = until_closed(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&bytes);
    let statuses: Vec<usize> = text.match_indices("HTTP/1.1 ").map(|(i, _)| i).collect();
    assert_eq!(statuses.len(), 3, "{text}");
    let done = text.find("event: done").expect("the stream finished");
    let health = text.find("\"checks\"").expect("the health answer");
    let summary = text.find("\"totalRequests\"").expect("the summary answer");
    assert!(
        done < statuses[1] && statuses[1] < health && health < statuses[2] && statuses[2] < summary,
        "{text}"
    );
    let _ = server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_does_not_wait_for_clients_still_sending_headers() {
    // A 30 s grace, three clients half-way through their headers and no
    // stream: the server stops at once.
    let server = start(&["--profile", "fast", "--shutdown-grace", "30s"]).await;
    let mut half = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"POST /api/chat/stream HTTP/1.1\r\nHost: t\r\nContent-Ty")
            .await
            .unwrap();
        half.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = Instant::now();
    server.stop().await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "stopped after {:?}",
        began.elapsed()
    );
    for s in &mut half {
        let (b, _) = until_closed(s, Duration::from_secs(2)).await;
        assert!(b.is_empty());
    }

    // With a stream open as well: the stop waits for that stream only.
    let server = start(&[
        "--profile",
        "fast",
        "--first-token-ms",
        "50",
        "--token-interval-ms",
        "10",
        "--shutdown-grace",
        "30s",
    ])
    .await;
    let url = server.url();
    let open = tokio::spawn({
        let url = url.clone();
        async move { chat(&url, &body("a stream that finishes", None, false)).await }
    });
    eventually(async || {
        get_json(&url, "/api/metrics/streaming/summary").await.1["summary"]["activeStreams"] == 1
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /api/chat/stream HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let began = Instant::now();
    server.stop().await.unwrap();
    let r = open.await.unwrap();
    assert_eq!(r.names().last(), Some(&"done"), "the open stream finished");
    // About 100 tokens at 10 ms: the stream's second, not the 30 s grace.
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn a_10_mb_body_is_refused_before_it_is_read() {
    let server = start(&["--profile", "fast"]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /api/chat/stream HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n")
        .await
        .unwrap();
    // Send the body while the answer comes: the server answers without
    // reading it (writes may then fail: the connection is closed).
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..160 {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut head = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut head))
        .await
        .expect("answered without waiting for 10 MB")
        .unwrap();
    let text = String::from_utf8_lossy(&head[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("64 KiB"), "{text}");
    writer.abort();
    let _ = server.stop().await;
}

/// A graceful reload: a stream open across it finishes whole; a kept-alive
/// connection idle at the reload is not closed under its client: its next
/// request is answered, with `Connection: close`, and then it closes; new
/// connections are accepted throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_finishes_open_streams_and_closes_idle_connections_after_their_next_answer() {
    let mut server = start(&[
        "--profile",
        "fast",
        "--first-token-ms",
        "100",
        "--token-interval-ms",
        "5",
        "--keep-alive-timeout",
        "10s",
    ])
    .await;
    let url = server.url();
    // Kept alive and idle.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    let get = b"GET /api/metrics/health/streaming HTTP/1.1\r\nHost: t\r\n\r\n";
    kept.write_all(get).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // A stream open across the reload.
    let open = tokio::spawn({
        let url = url.clone();
        async move { chat(&url, &body("across a reload", None, true)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.reload(), 1);
    // New connections are answered by the new generation.
    let fresh = chat(&url, &body("after the reload", None, true)).await;
    assert_eq!(fresh.names().last(), Some(&"done"), "{:?}", fresh.names());
    let across = open.await.unwrap();
    assert_eq!(across.names().last(), Some(&"done"), "{:?}", across.names());
    // The idle connection: still open, answers once more, then closes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    kept.write_all(get).await.unwrap();
    let (answer, _) = until_closed(&mut kept, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    let _ = server.stop().await;
}
