//! Behind Debian's nginx, as the guide's deployment is: a proxy that
//! buffers streams is found and fails the shipped gate; one that does not
//! (by its configuration or the server's `X-Accel-Buffering: no`) gives
//! the figures of a direct run; and `loadgen logs` over nginx's access log
//! in the guide's `streaming` format agrees with the run's own CSV.

use crate::support::{loadgen, records, run_bin, temp_dir};
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
    let _turn = crate::support::turn();
    let dir = temp_dir("proxy-logs");
    let upstream =
        crate::support::reference_server(&["--first-token-ms", "50", "--token-interval-ms", "2"])
            .await;
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
    let o = tokio::task::block_in_place(|| run_bin(&scenario, &out, &[]));
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

/// One 3 s run of 4 closed users with the shipped KPI gate against
/// `target`: its report.json.
fn kpi_run(dir: &std::path::Path, name: &str, target: &str) -> serde_json::Value {
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(
        &scenario,
        format!(
            "name = \"{name}\"\nduration = \"3s\"\ntarget = \"{target}\"\nslo = \"{}\"\n[load]\nmodel = \"closed\"\nusers = 4\n[request]\naudio = true\n",
            testkit::root().join("scenarios/slo/kpi.toml").display()
        ),
    )
    .unwrap();
    let out = dir.join(name);
    let o = run_bin(
        &scenario,
        &out,
        &["--allow-missing", "--accept-inconclusive"],
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report = crate::support::checked_report(&out);
    assert!(
        report["requests"]["ok"].as_u64().unwrap() >= 8,
        "{name}: {report}"
    );
    report
}

fn buffered_level(report: &serde_json::Value) -> &str {
    report["slo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "buffered streams")
        .expect("kpi.toml judges buffered streams")["level"]
        .as_str()
        .unwrap()
}

fn p50(report: &serde_json::Value, latency: &str) -> f64 {
    report["latency_ms"][latency]["p50"].as_f64().unwrap()
}

/// Four runs against the same reference server profile: direct; through
/// nginx with `proxy_buffering on` and a server that leaves buffering to
/// the proxy (found: every stream buffered, the shipped gate fails); with
/// `proxy_buffering off`; and with buffering on but the server's
/// `X-Accel-Buffering: no`. The last two match the direct run: first
/// token and complete medians within 15 ms (a proxy hop on loopback;
/// buffering moves the first token by ~170 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffering_proxy_is_found_and_an_unbuffered_one_matches_a_direct_run() {
    let _turn = crate::support::turn();
    let dir = temp_dir("proxy-buffering");
    let profile = [
        "--listen",
        "127.0.0.1:0",
        "--profile",
        "fast",
        "--first-token-ms",
        "50",
        "--token-interval-ms",
        "5",
    ];
    let leaves_it = server::spawn(
        &server::Config::from_args(profile.iter().copied().chain(["--no-accel-header"])).unwrap(),
    )
    .await
    .unwrap();
    let says_no = server::spawn(&server::Config::from_args(profile).unwrap())
        .await
        .unwrap();
    let proxy = |name: &str, upstream, buffering| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let port = free_port();
        let daemon = nginx(
            &d,
            port,
            "",
            &format!(
                "listen 127.0.0.1:{port};\n{}",
                proxy_location(upstream, buffering)
            ),
        );
        (daemon, format!("http://127.0.0.1:{port}"))
    };
    let (_on, on_url) = proxy("nginx-on", leaves_it.addr, true);
    let (_off, off_url) = proxy("nginx-off", leaves_it.addr, false);
    let (_hinted, hinted_url) = proxy("nginx-hinted", says_no.addr, true);

    let (direct, buffered, off, hinted) = tokio::task::block_in_place(|| {
        (
            kpi_run(&dir, "direct", &format!("http://{}", leaves_it.addr)),
            kpi_run(&dir, "buffered", &on_url),
            kpi_run(&dir, "off", &off_url),
            kpi_run(&dir, "hinted", &hinted_url),
        )
    });

    // Buffered: found in every stream, said, and the gate fails on it.
    let s = &buffered["streams"];
    assert_eq!(s["checked"], buffered["requests"]["ok"], "{s}");
    assert_eq!(s["buffered"], s["checked"], "{s}");
    assert_eq!(s["buffered_share"].as_f64(), Some(100.0));
    assert_eq!(buffered_level(&buffered), "critical");
    assert_eq!(buffered["verdict"], "fail");
    assert!(
        buffered["verdict_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("buffered streams")),
        "{}",
        buffered["verdict_reasons"]
    );
    let finding = buffered["findings"][0].as_str().unwrap();
    assert!(finding.starts_with("BUFFERED: "), "{finding}");
    let md = std::fs::read_to_string(dir.join("buffered/report.md")).unwrap();
    assert!(md.contains("> **⚠ BUFFERED: "), "{md}");
    // What buffering does to the figures: the first token waits for a
    // buffer to fill (measured: ~220 ms against ~52 ms direct).
    assert!(
        p50(&buffered, "first_token") > p50(&direct, "first_token") + 100.0,
        "buffered {} ms, direct {} ms",
        p50(&buffered, "first_token"),
        p50(&direct, "first_token")
    );

    // Unbuffered, either way: nothing found, the figures of a direct run.
    for (name, r) in [("direct", &direct), ("off", &off), ("hinted", &hinted)] {
        assert_eq!(r["streams"]["buffered"], 0, "{name}: {}", r["streams"]);
        assert!(r["streams"]["checked"].as_u64().unwrap() >= 8, "{name}");
        assert_eq!(buffered_level(r), "ok", "{name}");
        assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{name}");
    }
    for (name, r) in [("off", &off), ("hinted", &hinted)] {
        for latency in ["first_token", "complete"] {
            let (a, b) = (p50(r, latency), p50(&direct, latency));
            assert!(
                (a - b).abs() < 15.0,
                "{name}: {latency} p50 {a} ms through nginx, {b} ms direct"
            );
        }
    }
    let _ = leaves_it.stop().await;
    let _ = says_no.stop().await;
}
