//! `loadgen watch` and `loadgen logs`: the guide's alert scripts and log
//! one-liners as commands, against the reference server, a target whose
//! health the test controls, and a local webhook receiver.

use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

/// A tiny HTTP server: `respond(path, body)` gives the answer; returns the
/// base URL and every (path, body) it was sent.
async fn http_server(
    respond: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (respond, log) = (Arc::new(respond), Arc::clone(&seen));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (respond, log) = (Arc::clone(&respond), Arc::clone(&log));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and a body of Content-Length bytes.
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                            let body = text[end + 4..].to_owned();
                            log.lock().unwrap().push((path.clone(), body.clone()));
                            let (status, answer) = respond(&path, &body);
                            let resp = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                                answer.len()
                            );
                            let _ = s.write_all(resp.as_bytes()).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn watch_once_passes_a_healthy_server_and_fails_an_unreachable_one() {
    let running = crate::support::reference_server(&[]).await;
    let url = running.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["watch", &url, "--once"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("OK") && err.contains("status healthy"),
        "{err}"
    );
    running.stop().await.unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["watch", &closed, "--once"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a network error is an alert: {err}"
    );
    assert!(
        err.contains("FIRING") && err.contains("unreachable"),
        "{err}"
    );
}

#[tokio::test]
async fn transitions_are_printed_and_posted_to_the_webhook() {
    let status = Arc::new(Mutex::new("healthy"));
    let s = Arc::clone(&status);
    let (target, _) = http_server(move |path, _| {
        let st = *s.lock().unwrap();
        let body = if path.starts_with("/api/metrics/health/streaming") {
            let issues: Vec<&str> = if st == "healthy" {
                vec![]
            } else {
                vec!["error rate 7.0% over the last 5 minutes is above 5% (critical)"]
            };
            serde_json::json!({"success": true, "status": st, "timestamp": "2025-10-11T10:30:00.000Z",
                "checks": {"errorRate": {"status": "pass", "value": "0.5%", "threshold": "≤5%"},
                    "latency": {"status": "pass", "value": "450ms", "threshold": "≤1000ms"},
                    "redis": {"status": "pass", "value": "connected"},
                    "activeStreams": {"status": "pass", "value": 3}},
                "issues": issues})
        } else if path.starts_with("/api/metrics/streaming/summary") {
            serde_json::json!({"success": true, "timestamp": "2025-10-11T10:30:00.000Z",
                "summary": {"uptime": "1m 0s", "totalRequests": 100, "successRate": "100.0%",
                "activeStreams": 3, "avgFirstTokenLatency": 300, "avgCompleteLatency": 900,
                "cacheHitRate": {"kb": "70.0%", "tts": "50.0%"}, "errorCount": 0}})
        } else {
            let stage = serde_json::json!({"avg": 300, "p50": 280, "p95": 450, "p99": 500});
            serde_json::json!({"success": true, "timestamp": "2025-10-11T10:30:00.000Z", "metrics": {
                "uptime": 60, "uptimeFormatted": "1m 0s",
                "requests": {"total": 100, "successful": 100, "failed": 0, "active": 3, "successRate": "100.00%"},
                "latency": {"firstToken": stage, "firstAudio": stage, "complete": stage},
                "cache": {"kb": {"hits": 70, "misses": 30, "hitRate": "70.0%"},
                    "tts": {"hits": 5, "misses": 5, "hitRate": "50.0%"}},
                "errors": {"openai": 0, "tts": 0, "network": 0, "validation": 0, "other": 0,
                    "breakdown": {"openai": "0.0%", "tts": "0.0%", "network": "0.0%", "validation": "0.0%", "other": "0.0%"}},
                "streaming": {"totalStreams": 100, "activeCount": 3, "completedCount": 100, "errorCount": 0}}})
        };
        (200, body.to_string())
    })
    .await;
    let (hook, received) = http_server(|_, _| (200, "ok".into())).await;
    let args = loadgen::watch::WatchArgs {
        url: target,
        interval: std::time::Duration::from_millis(100),
        once: false,
        webhook: Some(format!("{hook}/hook")),
        count: 9,
    };
    let flipper = {
        let status = Arc::clone(&status);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            *status.lock().unwrap() = "unhealthy";
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            *status.lock().unwrap() = "healthy";
        })
    };
    let mut lines = Vec::new();
    let firing_at_end = loadgen::watch::watch(&args, |l| lines.push(l.to_owned())).await;
    flipper.await.unwrap();
    assert!(!firing_at_end);
    let posts: Vec<serde_json::Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(
        posts.len(),
        2,
        "one alert, one resolve: {posts:?} / {lines:?}"
    );
    let first = posts[0]["text"].as_str().unwrap();
    assert!(
        first.contains("FIRING")
            && first.contains("[critical] health")
            && first.contains("error rate 7.0%"),
        "{first}"
    );
    assert!(
        posts[1]["text"].as_str().unwrap().contains("RESOLVED"),
        "{posts:?}"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn logs_summarizes_a_log_and_skips_bad_lines() {
    let dir = crate::support::temp_dir("logs");
    let file = dir.join("app.log");
    let mut text = String::new();
    for (i, ft) in [400u64, 450, 500, 2600].iter().enumerate() {
        text.push_str(&format!("{{\"timestamp\":\"2026-11-27T10:00:0{i}Z\",\"level\":\"INFO\",\"message\":\"Stream complete\",\"clientId\":\"c{i}\",\"firstTokenLatency\":{ft},\"firstAudioLatency\":{},\"duration\":{},\"wordCount\":90}}\n", ft + 700, ft + 2000));
    }
    text.push_str("garbage line\n{\"level\":\"ERROR\",\"message\":\"Stream failed: upstream model timed out\",\"errorType\":\"openai\"}\n");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(BIN)
        .args(["logs", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("6 lines, 1 malformed (skipped), 4 complete streams"),
        "{s}"
    );
    assert!(
        s.contains("slower than 2000 ms (first token): 1") && s.contains("c3"),
        "{s}"
    );
    assert!(s.contains("errors by type: openai 1"), "{s}");
    let out = Command::new(BIN)
        .args([
            "logs",
            file.to_str().unwrap(),
            "--json",
            "--slower-than",
            "420",
        ])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["slow"].as_array().unwrap().len(), 3);
    assert_eq!(j["first_token_ms"]["count"], 4);
    let out = Command::new(BIN)
        .args(["logs", "/nonexistent.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.log"));
}
