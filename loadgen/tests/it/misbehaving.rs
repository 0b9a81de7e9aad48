//! A small misbehaving server written here, over real sockets on
//! 127.0.0.1: each way a target can break the protocol or the connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How the misbehaving server answers each request.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaves {
    /// A whole, valid stream with tokens and `done`, but no `audio` event.
    NoAudio,
    /// `done`, then the connection stays open (and silent) for 30 s.
    DoneThenOpen,
    /// One `data:` line that never ends.
    EndlessEvent,
    /// One 50 MB line, then the end of the event.
    HugeLine,
    /// A token every 200 ms for 20 s, then `done`.
    Slow,
    /// 503 to everything.
    Overloaded,
    /// Reads the request and never answers (for 60 s).
    Silent,
    /// The stream's headers, then nothing (for 60 s).
    HeadersOnly,
    /// A token every 10 ms for 60 s, never `done`.
    EndlessStream,
    /// Bytes that are not SSE, some not UTF-8.
    Garbage,
    /// `200` with a JSON body that is not the protocol's answer.
    JsonBody,
    /// The stream's headers, then the connection closes.
    CloseAfterHeaders,
    /// This status with `Retry-After: 1` and a plain-text body.
    Status(u16),
    /// Every other connection is reset before any answer; the others get
    /// a whole stream.
    Resets,
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n";
const DONE: &str = "event: done\ndata: {\"wordCount\":2,\"firstTokenLatency\":1,\"firstAudioLatency\":null,\"duration\":2,\"kbCache\":\"hit\",\"ttsCacheHits\":0,\"ttsCacheMisses\":0}\n\n";

/// Starts a server that misbehaves as told; it lives as long as the test
/// process (each connection on a thread of its own).
pub fn misbehaving(kind: Misbehaves) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().flatten().enumerate() {
            std::thread::spawn(move || {
                let _ = match kind {
                    Misbehaves::Resets => answer_or_reset(stream, n),
                    _ => answer(stream, kind),
                };
            });
        }
    });
    url
}

/// Reads one request; returns its method.
fn read_request(s: &mut TcpStream) -> std::io::Result<String> {
    // Headers, then the body by its content-length.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(head.split(' ').next().unwrap_or_default().to_owned())
}

fn answer(mut s: TcpStream, kind: Misbehaves) -> std::io::Result<()> {
    loop {
        let method = read_request(&mut s)?;
        match kind {
            Misbehaves::NoAudio => {
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")?;
                let body = format!(
                    "event: start\ndata: {{\"clientId\":\"x\",\"chatbotId\":\"y\"}}\n\nevent: token\ndata: {{\"text\":\"hi \"}}\n\nevent: token\ndata: {{\"text\":\"there\"}}\n\n{DONE}"
                );
                write!(s, "{:x}\r\n{body}\r\n0\r\n\r\n", body.len())?;
                // Keep-alive: the next request on the same connection.
            }
            // The monitoring endpoints are absent (404 at once), so the
            // run's scrapes do not wait out their timeout on this server.
            Misbehaves::DoneThenOpen if method == "get" => {
                s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")?;
            }
            Misbehaves::DoneThenOpen => {
                s.write_all(SSE_HEAD.as_bytes())?;
                s.write_all(b"event: token\ndata: {\"text\":\"hi\"}\n\n")?;
                s.write_all(DONE.as_bytes())?;
                std::thread::sleep(Duration::from_secs(30));
                return Ok(());
            }
            Misbehaves::EndlessEvent => {
                s.write_all(SSE_HEAD.as_bytes())?;
                s.write_all(b"data: ")?;
                let chunk = vec![b'x'; 64 * 1024];
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(60) {
                    s.write_all(&chunk)?;
                }
                return Ok(());
            }
            Misbehaves::HugeLine => {
                s.write_all(SSE_HEAD.as_bytes())?;
                s.write_all(b"event: token\ndata: ")?;
                let chunk = vec![b'y'; 1 << 20];
                for _ in 0..50 {
                    s.write_all(&chunk)?;
                }
                s.write_all(b"\n\n")?;
                s.write_all(DONE.as_bytes())?;
                return Ok(());
            }
            Misbehaves::Slow => {
                s.write_all(SSE_HEAD.as_bytes())?;
                for _ in 0..100 {
                    s.write_all(b"event: token\ndata: {\"text\":\"slow \"}\n\n")?;
                    std::thread::sleep(Duration::from_millis(200));
                }
                s.write_all(DONE.as_bytes())?;
                return Ok(());
            }
            Misbehaves::Overloaded => {
                s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: 2\r\n\r\n{}")?;
            }
            Misbehaves::Silent => {
                std::thread::sleep(Duration::from_secs(60));
                return Ok(());
            }
            Misbehaves::HeadersOnly => {
                s.write_all(SSE_HEAD.as_bytes())?;
                std::thread::sleep(Duration::from_secs(60));
                return Ok(());
            }
            Misbehaves::EndlessStream => {
                s.write_all(SSE_HEAD.as_bytes())?;
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(60) {
                    s.write_all(b"event: token\ndata: {\"text\":\"more \"}\n\n")?;
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Ok(());
            }
            Misbehaves::Garbage => {
                s.write_all(SSE_HEAD.as_bytes())?;
                s.write_all(b"\xff\xfe\x00garbage\nevent: token\ndata: \xc3\x28 not json\n\n")?;
                return Ok(());
            }
            Misbehaves::JsonBody => {
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{\"hello\":\"world\"}")?;
            }
            Misbehaves::CloseAfterHeaders => {
                s.write_all(SSE_HEAD.as_bytes())?;
                return Ok(());
            }
            Misbehaves::Status(code) => {
                write!(
                    s,
                    "HTTP/1.1 {code} Whatever\r\ncontent-type: text/plain\r\nretry-after: 1\r\ncontent-length: 4\r\n\r\noops"
                )?;
            }
            Misbehaves::Resets => unreachable!("answered in answer_or_reset"),
        }
    }
}

/// Resets: a connection whose number is odd is closed with the request
/// unread (the kernel then resets it); an even one gets a whole stream.
fn answer_or_reset(mut s: TcpStream, n: usize) -> std::io::Result<()> {
    if n % 2 == 1 {
        // Wait for the request to be in the buffer, read none of it.
        std::thread::sleep(Duration::from_millis(20));
        return Ok(());
    }
    read_request(&mut s)?;
    s.write_all(SSE_HEAD.as_bytes())?;
    s.write_all(b"event: token\ndata: {\"text\":\"fine\"}\n\n")?;
    s.write_all(DONE.as_bytes())?;
    Ok(())
}
