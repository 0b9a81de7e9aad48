//! Where each request's time went, through the binary: Debian's nginx in
//! front of the reference server, holding requests back with
//! `limit_req` (10 a second, the excess queued: nginx delays them before
//! it proxies, so before the response head), and a host name to resolve.
//! The split puts the delay before the head; the first token after the
//! head stays the server's own; each new connection resolved the name.
//! (The TLS phase is checked in `reach`, behind nginx's TLS.)

use crate::support::{checked_report, judged, records, run_bin, scenario, temp_dir};
use testkit::{free_port, nginx, proxy_location};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_at_the_proxy_is_put_before_the_response_head() {
    let dir = temp_dir("phases");
    let upstream =
        crate::support::reference_server(&["--first-token-ms", "20", "--token-interval-ms", "1"])
            .await;
    let port = free_port();
    let _nginx = nginx(
        &dir,
        port,
        "limit_req_zone $binary_remote_addr zone=slow:1m rate=10r/s;",
        &format!(
            "listen 127.0.0.1:{port};\nlimit_req zone=slow burst=200;\n{}",
            proxy_location(upstream.addr, false)
        ),
    );
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"phases\"\n[[objective]]\nname = \"first token p95\"\nmetric = \"latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 200\n",
    )
    .unwrap();
    // 20 arrivals a second for 2 s against 10 let through a second: the
    // k-th request waits about k/10 - k/20 s at nginx, up to ~2 s.
    let file = scenario(
        &dir,
        &format!(
            "name = \"phases\"\nduration = \"2s\"\ntarget = \"http://localhost:{port}\"\nslo = \"slo.toml\"\n\
             [load]\nmodel = \"open\"\nrate = 20.0\narrival = \"constant\"\nmax_users = 100\n\
             [request]\naudio = false\nrepeat_ratio = 0.0\n"
        ),
    );
    let out = dir.join("out");
    let o = tokio::task::block_in_place(|| run_bin(&file, &out, &[]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let report = checked_report(&out);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let rows = records(&out);
    assert!(rows.len() >= 30, "{} requests", rows.len());

    // Before the head: the queue (stated tolerance: the later half of the
    // requests waited at least 300 ms; the server answers its head in
    // well under 50 ms). After it: the server's first token, 20 ms.
    let phases = &report["phases_ms"];
    let head_p95 = phases["head"]["p95"].as_f64().unwrap();
    let after_p95 = phases["after_head"]["p95"].as_f64().unwrap();
    assert!(head_p95 > 700.0, "{phases}");
    assert!(after_p95 < 200.0, "{phases}");
    let mut waits: Vec<u64> = rows
        .iter()
        .map(|r| r.headers_us.unwrap() - r.written_us.unwrap())
        .collect();
    waits.sort_unstable();
    assert!(waits[waits.len() / 2] > 300_000, "{waits:?}");

    // Each new connection resolved `localhost` and connected (no TLS).
    let connected: Vec<_> = rows.iter().filter(|r| r.connect_us.is_some()).collect();
    assert!(!connected.is_empty());
    assert_eq!(phases["new_connections"], connected.len());
    for r in &connected {
        assert!(r.dns_us.is_some() && r.tls_us.is_none(), "{r:?}");
    }

    // The failing objective says where its time went.
    let ft = judged(&report, "first token p95");
    let split = ft["split"].as_str().unwrap();
    assert!(
        split.contains("the response head") && split.contains("new connections"),
        "{split}"
    );
    assert!(
        report["verdict_reasons"]
            .to_string()
            .contains("where the time went"),
        "{}",
        report["verdict_reasons"]
    );
}
