//! Behind Debian's nginx, as the guide's deployment is: a run through a
//! reverse proxy that does not buffer streams, and `loadgen logs` over
//! nginx's access log in the guide's `streaming` format, which agrees with
//! the run's own CSV.

use crate::support::{loadgen, records, temp_dir, turn};
use slo::record::Outcome;
use testkit::{free_port, nginx, proxy_location};

/// The guide's `log_format streaming` (its "Nginx" section), verbatim.
const STREAMING: &str = r#"log_format streaming '$remote_addr - $remote_user [$time_local] '
                    '"$request" $status $body_bytes_sent '
                    '"$http_referer" "$http_user_agent" '
                    'rt=$request_time uct="$upstream_connect_time" '
                    'uht="$upstream_header_time" urt="$upstream_response_time"';"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_streaming_logs_agree_with_the_run() {
    let dir = temp_dir("proxy-logs");
    let config = server::Config::from_args([
        "--listen",
        "127.0.0.1:0",
        "--profile",
        "fast",
        "--first-token-ms",
        "50",
        "--token-interval-ms",
        "2",
    ])
    .unwrap();
    let upstream = server::spawn(&config).await.unwrap();
    let port = free_port();
    let log = dir.join("streaming.log");
    let _nginx = nginx(
        &dir,
        port,
        STREAMING,
        &format!(
            "listen 127.0.0.1:{port};\naccess_log {} streaming;\n{}",
            log.display(),
            proxy_location(upstream.addr, false)
        ),
    );
    let scenario = dir.join("proxy.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"proxy\"\nduration = \"3s\"\ntarget = \"http://127.0.0.1:{port}\"\n[load]\nmodel = \"closed\"\nusers = 4\n[request]\naudio = false\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = tokio::task::block_in_place(|| {
        let _turn = turn();
        loadgen(&[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
    });
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = records(&out);
    assert!(rows.len() > 20 && rows.iter().all(|r| r.outcome == Outcome::Ok));
    let _ = upstream.stop().await;
    // nginx writes a line when a request ends: every one has by now.
    let summary = |slower: &str| -> serde_json::Value {
        let o = loadgen(&[
            "logs",
            log.to_str().unwrap(),
            "--slower-than",
            slower,
            "--json",
            "--path",
            "/api/chat/stream",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let s = summary("0");
    let n = rows.len() as u64;
    assert_eq!(s["requests"].as_u64(), Some(n), "{s}");
    assert_eq!(s["malformed"], 0);
    // The scrapes went through nginx too: listed by path, not counted.
    assert!(
        s["by_path"]["GET /api/metrics/streaming"].as_u64().unwrap() >= 2,
        "{s}"
    );
    assert_eq!(s["statuses"]["200"].as_u64(), Some(n));
    assert_eq!(s["request_time_ms"]["count"].as_u64(), Some(n));
    assert_eq!(s["upstream_header_ms"]["count"].as_u64(), Some(n));
    assert_eq!(s["slow"].as_array().unwrap().len() as u64, n);
    assert_eq!(summary("100000")["slow"].as_array().unwrap().len(), 0);
    // nginx's whole-request time and the client's complete time describe
    // the same streams (nginx's resolution is 1 ms; stated tolerance 25 ms
    // on the medians: a proxy hop on loopback).
    let mut complete: Vec<u64> = rows.iter().filter_map(|r| r.complete_us).collect();
    complete.sort_unstable();
    let client_p50 = complete[complete.len() / 2] as f64 / 1000.0;
    let nginx_p50 = s["request_time_ms"]["p50"].as_f64().unwrap();
    assert!(
        (client_p50 - nginx_p50).abs() < 25.0,
        "client complete p50 {client_p50} ms, nginx rt p50 {nginx_p50} ms"
    );
    // The text output names the four times.
    let o = loadgen(&["logs", log.to_str().unwrap(), "--path", "/api/chat/stream"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("upstream header (uht)") && text.contains(&format!("{n} requests")),
        "{text}"
    );
}
