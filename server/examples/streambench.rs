//! The server's end-to-end benchmark client (BENCHMARKS.md): an external
//! process that talks raw HTTP/1.1 over loopback, so its own cost per
//! stream is a socket and a small task.
//!
//! ```text
//! streambench hold URL N        open N streams, hold them, report the server's memory
//! streambench rate URL C SECS   C connections in a loop for SECS, report streams/s
//! ```
//!
//! Run the server with `--profile fast --model-slots 0 --max-streams 20000`
//! (and `--token-interval-ms 1000` for `hold`, so streams stay open).

#![allow(clippy::print_stdout)] // a benchmark client reports on stdout

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOT: &str = "60f7b3b3e6b6f40015e6b6f4";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: streambench hold URL N | streambench rate URL CONNECTIONS SECONDS [audio]";
    let addr = args
        .get(2)
        .expect(usage)
        .trim_start_matches("http://")
        .to_owned();
    match args.get(1).map(String::as_str) {
        Some("hold") => hold(&addr, args[3].parse().expect(usage)).await,
        Some("rate") => {
            let audio = args.get(5).is_some_and(|a| a == "audio");
            rate(
                &addr,
                args[3].parse().expect(usage),
                args[4].parse().expect(usage),
                audio,
            )
            .await
        }
        _ => panic!("{usage}"),
    }
}

fn request(addr: &str, n: usize, audio: bool) -> Vec<u8> {
    let body = format!(
        r#"{{"chatbotId":"{BOT}","message":"benchmark question {n}","clientId":"bench-{n}","audio":{audio}}}"#
    );
    format!(
        "POST /api/chat/stream HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn get(addr: &str, path: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(body).expect("a JSON body")
}

async fn server_rss(addr: &str) -> u64 {
    // The server samples itself once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    get(addr, "/api/metrics/system").await["system"]["memory"]["rssBytes"]
        .as_u64()
        .unwrap()
}

/// Opens `n` streams, waits until each has its first token, reads the
/// server's memory, then closes them all.
async fn hold(addr: &str, n: usize) {
    let idle = server_rss(addr).await;
    let t0 = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (addr, tx) = (addr.to_owned(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = match TcpStream::connect(&addr).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            s.write_all(&request(&addr, i, false)).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            loop {
                let k = s.read(&mut buf).await.unwrap_or(0);
                if k == 0 {
                    let _ = tx.send(Err("closed before the first token".into()));
                    return;
                }
                seen.extend_from_slice(&buf[..k]);
                if seen.windows(12).any(|w| w == b"event: token") {
                    break;
                }
            }
            let _ = tx.send(Ok(()));
            // Hold the stream open until the task is aborted.
            loop {
                if s.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
            }
        }));
        if i % 500 == 499 {
            tokio::task::yield_now().await;
        }
    }
    drop(tx);
    let (mut ok, mut failed) = (0usize, 0usize);
    while ok + failed < n {
        match rx.recv().await {
            Some(Ok(())) => ok += 1,
            Some(Err(e)) => {
                if failed == 0 {
                    eprintln!("first failure: {e}");
                }
                failed += 1;
            }
            None => break,
        }
    }
    let opened_in = t0.elapsed();
    let summary = get(addr, "/api/metrics/streaming/summary").await;
    let active = summary["summary"]["activeStreams"].as_u64().unwrap();
    let loaded = server_rss(addr).await;
    let per = (loaded.saturating_sub(idle)) as f64 / ok.max(1) as f64;
    println!(
        "streams open: {ok} (failed {failed}) in {:.2} s; server active streams {active}; server RSS idle {:.1} MiB, with streams {:.1} MiB; {:.1} KiB per open stream",
        opened_in.as_secs_f64(),
        idle as f64 / 1048576.0,
        loaded as f64 / 1048576.0,
        per / 1024.0
    );
    for t in tasks {
        t.abort();
    }
}

/// `c` connections, each sending one request after another for `secs`.
async fn rate(addr: &str, c: usize, secs: u64, audio: bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..c {
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut done, mut failed, mut bytes) = (0u64, 0u64, 0u64);
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = worker;
            while Instant::now() < deadline {
                let Ok(mut s) = TcpStream::connect(&addr).await else {
                    failed += 1;
                    continue;
                };
                s.write_all(&request(&addr, n % 1000, audio)).await.unwrap();
                let mut tail = Vec::new();
                loop {
                    let k = s.read(&mut buf).await.unwrap_or(0);
                    if k == 0 {
                        break;
                    }
                    bytes += k as u64;
                    tail.extend_from_slice(&buf[..k]);
                    if tail.len() > 64 {
                        tail.drain(..tail.len() - 64);
                    }
                }
                let text = String::from_utf8_lossy(&tail);
                if text.contains("event: done") || bytes > 0 && text.contains("\"ttsCacheMisses\"")
                {
                    done += 1;
                } else {
                    failed += 1;
                }
                n += c;
            }
            (done, failed, bytes)
        }));
    }
    let (mut done, mut failed, mut bytes) = (0, 0, 0);
    for t in tasks {
        let (d, f, b) = t.await.unwrap();
        done += d;
        failed += f;
        bytes += b;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{done} streams completed ({failed} failed) in {secs:.1} s over {c} connections, audio {audio}: {:.0} streams/s, {:.1} MiB/s",
        done as f64 / secs,
        bytes as f64 / secs / 1048576.0
    );
}
