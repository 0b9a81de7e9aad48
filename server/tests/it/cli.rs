//! The `refserver` binary: its errors, its JSON logs, and graceful shutdown
//! on SIGTERM.

use crate::support::{body, chat, eventually, get_json};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_refserver");

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} should name {n:?}");
    }
}

#[test]
fn bad_flags_and_profile_files_are_named() {
    fails_with(&["--fail-tts", "2"], &["--fail-tts", "0 to 1"]);
    fails_with(
        &["--fail-openai", "0.7", "--fail-other", "0.7"],
        &["at most 1"],
    );
    fails_with(&["--listen", "localhost"], &["--listen", "localhost"]);
    fails_with(&["--profile", "warp"], &["--profile", "baseline"]);
    fails_with(&["--first-token-ms", "-3"], &["--first-token-ms"]);
    fails_with(&["--streaming-percent", "101"], &["--streaming-percent"]);
    fails_with(&["--max-streams", "0"], &["--max-streams"]);
    fails_with(
        &["--profile-file", "/nonexistent/p.toml"],
        &["/nonexistent/p.toml"],
    );
    let dir = testkit::Scratch::new("refserver-cli");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "first_token_ms = 150\ntoken_intervall_ms = 20\n").unwrap();
    fails_with(
        &["--profile-file", file.to_str().unwrap()],
        &["bad.toml", "line 2", "token_intervall_ms"],
    );
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--profile",
        "--profile-file",
        "--first-token-ms",
        "--model-slots",
        "--model-tokens-per-sec",
        "--max-streams",
        "--fail-network",
        "--stall-ms",
        "--tts-slowdown-ms",
        "--admin-token",
        "--seed",
        "--shutdown-grace",
    ] {
        assert!(help.contains(flag), "--help documents {flag}");
    }
}

/// Starts the binary on an ephemeral port; returns it, its address and its
/// stdout lines.
fn spawn(args: &[&str]) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--seed",
            "3",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first log line");
    let j: Value = serde_json::from_str(&first).expect("JSON logs");
    let addr = j["listen"]
        .as_str()
        .expect("the listening line names the address")
        .to_owned();
    (child, format!("http://{addr}"), rx)
}

/// Waits until the server is answering one stream.
async fn stream_open(url: &str) {
    eventually(async || {
        get_json(url, "/api/metrics/streaming/summary").await.1["summary"]["activeStreams"] == 1
    })
    .await;
}

fn sigterm(child: &Child) {
    let ok = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refserver did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_lets_open_streams_finish_and_logs_are_json_lines() {
    // About 100 tokens at 10 ms: a stream of about a second.
    let (mut child, url, lines) = spawn(&["--profile", "fast", "--token-interval-ms", "10"]);
    let b = body("What are your opening hours?", Some("chat-9-logs"), true);
    let open = tokio::spawn({
        let url = url.clone();
        async move { chat(&url, &b).await }
    });
    stream_open(&url).await;
    sigterm(&child);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = crate::support::http()
        .post(format!("{url}/api/chat/stream"))
        .json(&body("too late", None, false))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections after SIGTERM");
    let r = open.await.unwrap();
    assert_eq!(r.names().last(), Some(&"done"), "the open stream finished");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");

    let logs: Vec<Value> = lines
        .try_iter()
        .map(|l| serde_json::from_str(&l).expect("every line is JSON"))
        .collect();
    let complete = logs
        .iter()
        .find(|l| l["message"] == "Stream complete")
        .expect("a Stream complete line");
    assert_eq!(complete["level"], "INFO");
    assert_eq!(complete["clientId"], "chat-9-logs");
    let done = &r.first("done").unwrap().data;
    for key in [
        "firstTokenLatency",
        "firstAudioLatency",
        "duration",
        "wordCount",
    ] {
        assert_eq!(
            complete[key], done[key],
            "{key} in the log line and in done"
        );
    }
    assert!(logs.iter().any(|l| l["message"] == "SIGTERM received"));
    // The guide's log analysis reads these lines as they are.
    let text: Vec<String> = logs.iter().map(|l| l.to_string()).collect();
    let summary = slo::logs::analyze(text.iter().map(String::as_str), 2000);
    assert_eq!((summary.complete, summary.malformed), (1, 0));
    assert_eq!(
        summary.first_token_ms.max.expect("measured") as u64,
        done["firstTokenLatency"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn past_the_grace_period_open_streams_are_cut() {
    // About 100 tokens at 100 ms: a ten-second stream, a 300 ms grace.
    let (mut child, url, lines) = spawn(&[
        "--profile",
        "fast",
        "--token-interval-ms",
        "100",
        "--shutdown-grace",
        "300ms",
    ]);
    let b = body("a slow answer", None, false);
    let open = tokio::spawn({
        let url = url.clone();
        async move { chat(&url, &b).await }
    });
    stream_open(&url).await;
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert!(status.success());
    let r = open.await.unwrap();
    assert!(
        !r.names().contains(&"done"),
        "the stream was cut, not finished"
    );
    // The log says the server cut it, and does not blame the client.
    let logs: Vec<String> = lines.try_iter().collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("the shutdown grace period ended before it finished")),
        "{logs:#?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("Client disconnected")),
        "{logs:#?}"
    );
}
