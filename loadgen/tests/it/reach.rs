//! Reaching a real backend: request headers with values from the
//! environment (and never written anywhere), and HTTPS through Debian's
//! nginx with a certificate the test makes (a custom CA, the insecure
//! switch, and a refusal without either).

use crate::support::{BIN, checked_report, records, run_bin, temp_dir};
use slo::record::Outcome;
use std::path::Path;
use std::process::{Command, Output};
use testkit::{free_port, nginx, proxy_location, test_certificates};

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn run(scenario: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(["--duration", "2s", "-q"])
        .args(extra)
        .env_remove("LG_TEST_KEY")
        .env_remove("REFSERVER_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const SCENARIO: &str = r#"
name = "reach"
duration = "2s"

[load]
model = "closed"
users = 4

[request]
audio = false

[server]
args = ["--profile", "fast", "--token-interval-ms", "1"]

[headers]
Authorization = "Bearer ${LG_TEST_KEY}"
"#;

#[test]
fn headers_reach_the_target_and_no_output_holds_the_secret() {
    let dir = temp_dir("reach-secret");
    let scenario = dir.join("reach.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    // Two secrets: the API key (scenario, from the environment) and a
    // header given on the command line (from the environment too).
    let key = "k3y-7f41c9e2d8b05a63";
    let trace = "tr4ce-0c9d8e7f6a5b";
    let out = dir.join("ok");
    let o = run(
        &scenario,
        &out,
        &["-H", "X-Trace: ${LG_TRACE}"],
        // The embedded server reads its key from REFSERVER_API_KEY: it
        // answers 401 to a request without it.
        &[
            ("LG_TEST_KEY", key),
            ("LG_TRACE", trace),
            ("REFSERVER_API_KEY", key),
        ],
    );
    let report = checked_report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &report);
    assert_eq!(
        report["target"]["headers"],
        serde_json::json!(["Authorization", "X-Trace"])
    );
    let rows = records(&out);
    assert!(rows.len() > 20 && rows.iter().all(|r| r.outcome == Outcome::Ok));
    let all = files(&out);
    assert!(all.len() >= 8, "{all:?}");
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        for secret in [key, trace] {
            assert!(!contains(&bytes, secret), "{} holds a secret", f.display());
        }
    }
    for stream in [&o.stdout, &o.stderr] {
        assert!(!contains(stream, key) && !contains(stream, trace));
    }

    // Without the key the server refuses every request: a failed run
    // whose errors are the 401s, and still no secret anywhere.
    let out = dir.join("refused");
    let o = run(
        &scenario,
        &out,
        &["-H", "Authorization: Bearer wrong-${LG_TRACE}"],
        &[
            ("LG_TEST_KEY", key),
            ("LG_TRACE", trace),
            ("REFSERVER_API_KEY", key),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let rows = records(&out);
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.outcome == Outcome::HttpStatus && r.status == Some(401)),
        "{:?}",
        rows.first()
    );
    for f in files(&out) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, trace) && !contains(&bytes, key),
            "{}",
            f.display()
        );
    }

    // An unset variable is a usage error naming it and the header.
    let o = run(&scenario, &dir.join("unset"), &[], &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("headers.Authorization") && stderr.contains("LG_TEST_KEY is not set"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_custom_ca_the_insecure_switch_and_neither() {
    let dir = temp_dir("reach-tls");
    let (ca, cert, key) = test_certificates(&dir);
    let upstream = crate::support::reference_server(&["--token-interval-ms", "1"]).await;
    let port = free_port();
    let _nginx = nginx(
        &dir,
        port,
        "",
        &format!(
            "listen 127.0.0.1:{port} ssl;\nssl_certificate {};\nssl_certificate_key {};\n{}",
            cert.display(),
            key.display(),
            proxy_location(upstream.addr, false)
        ),
    );
    let scenario = dir.join("tls.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"tls\"\nduration = \"2s\"\ntarget = \"https://127.0.0.1:{port}\"\n[load]\nmodel = \"closed\"\nusers = 4\n[request]\naudio = false\n"
        ),
    )
    .unwrap();
    let go = |name: &str, extra: Vec<String>| {
        let scenario = scenario.clone();
        let out = dir.join(name);
        let o = tokio::task::block_in_place(|| {
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            run(&scenario, &out, &extra, &[])
        });
        (o, out)
    };

    // `loadgen init` through the same TLS: without the CA the probe
    // fails naming the URL and what to give; with it, the guide's health
    // endpoint answers (chat-v1) and the scenario keeps the CA.
    let url = format!("https://127.0.0.1:{port}");
    let init = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--name",
            name,
            "--target",
            &url,
        ];
        args.extend_from_slice(extra);
        crate::support::loadgen(&args)
    };
    let o = init("tls-init", &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("--ca-cert"),
        "{stderr}"
    );
    let o = init("tls-init", &["--ca-cert", ca.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let written = std::fs::read_to_string(dir.join("tls-init.toml")).unwrap();
    assert!(
        written.contains("the guide's health endpoint")
            && written.contains(&format!(
                "ca_cert = {:?}",
                ca.canonicalize().unwrap().display().to_string()
            )),
        "{written}"
    );

    // Trusting the test CA: every request succeeds, through TLS.
    let (o, out) = go("ca", vec!["--ca-cert".into(), ca.display().to_string()]);
    let report = checked_report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &report);
    assert_eq!(report["target"]["tls_insecure"], false);
    let rows = records(&out);
    assert!(
        rows.len() > 20
            && rows
                .iter()
                .all(|r| r.outcome == Outcome::Ok && r.tokens > 0)
    );
    assert!(
        !std::fs::read_to_string(out.join("report.md"))
            .unwrap()
            .contains("INSECURE")
    );
    // Where the time went: a request that opened its connection has a TCP
    // connect and a TLS handshake of its own (an address: no name
    // resolved). Not every user's first request opens one: the scrapes of
    // the monitoring endpoints before the run leave pooled connections,
    // and a connection hyper finishes in the background after the pool
    // served the request is no request's.
    let connected: Vec<_> = rows.iter().filter(|r| r.connect_us.is_some()).collect();
    assert!(
        (1..=8).contains(&connected.len()),
        "{} connections",
        connected.len()
    );
    for r in &connected {
        assert!(r.dns_us.is_none(), "{r:?}");
        let tls = r.tls_us.expect("a TLS handshake on every new connection");
        assert!(tls > 0 && tls < 5_000_000, "{r:?}");
    }
    for r in &rows {
        let (w, h) = (r.written_us.unwrap(), r.headers_us.unwrap());
        assert!(w <= h, "{r:?}");
        assert!(r.connect_us.is_some() || r.tls_us.is_none(), "{r:?}");
    }
    let phases = &report["phases_ms"];
    assert_eq!(phases["new_connections"], connected.len());
    assert_eq!(phases["tls"]["count"], connected.len());

    // Neither: the certificate is refused, and the errors say why.
    let (o, out) = go("refused", vec![]);
    assert_eq!(o.status.code(), Some(1));
    let rows = records(&out);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r.outcome, Outcome::ConnectionRefused, "{r:?}");
        assert!(r.error.contains("certificate"), "{}", r.error);
    }

    // Insecure: it works, and every report says so at the top.
    let (o, out) = go("insecure", vec!["--insecure".into()]);
    let report = checked_report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &report);
    assert_eq!(report["target"]["tls_insecure"], true);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let head: String = md.lines().take(5).collect::<Vec<_>>().join("\n");
    assert!(head.contains("INSECURE: the TLS certificate"), "{head}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("INSECURE: the TLS certificate"));

    // A CA file that is not one is an error naming it.
    let bogus = dir.join("not-a-ca.pem");
    std::fs::write(&bogus, "hello").unwrap();
    let (o, _) = go(
        "bogus",
        vec!["--ca-cert".into(), bogus.display().to_string()],
    );
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("not-a-ca.pem"), "{stderr}");
    let _ = upstream.stop().await;
}

/// A target whose Redis cache goes away mid-run: every request still
/// succeeds (as cache misses), but the target's health says its cache is
/// unavailable, which is the guide's P2 and fails the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_under_load_is_severity_p2() {
    let dir = temp_dir("reach-redis");
    let port = free_port();
    let redis = testkit::redis_server(port, &dir);
    let cache = format!("redis://127.0.0.1:{port}");
    let upstream =
        crate::support::reference_server(&["--token-interval-ms", "2", "--cache", &cache]).await;
    let scenario = dir.join("redis.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"redis\"\nduration = \"7s\"\ntarget = \"http://{}\"\n[load]\nmodel = \"closed\"\nusers = 4\n[request]\naudio = false\n",
            upstream.addr
        ),
    )
    .unwrap();
    let out = dir.join("out");
    // Redis goes away 2 s into the 7 s run: the health polls at 4 and 6 s
    // see it.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(2));
        drop(redis);
    });
    let o = tokio::task::block_in_place(|| run_bin(&scenario, &out, &[]));
    stopper.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report = checked_report(&out);
    assert_eq!(report["severity"], "P2", "{}", report["severity_reasons"]);
    let why = report["severity_reasons"][0].as_str().unwrap();
    assert!(why.starts_with("cache unavailable"), "{why}");
    assert_eq!(
        report["requests"]["failed"], 0,
        "served as misses, never an error"
    );
    let reasons = report["verdict_reasons"].to_string();
    assert!(
        reasons.contains("severity P2: cache unavailable"),
        "{reasons}"
    );
    let _ = upstream.stop().await;
}
