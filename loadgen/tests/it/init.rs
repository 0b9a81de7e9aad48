//! `loadgen init` against real servers: the reference server (its guide
//! health endpoint: chat-v1; asked for openai-chat: its model list),
//! llmock from PyPI (an OpenAI-compatible mock none of our code wrote:
//! openai-chat with its first model), and Python's own http.server
//! (neither: a template skeleton). The files it writes check, run and
//! pass; it never overwrites; a target that does not answer is named.

use crate::support::{checked_report, loadgen, passed_unless_distrusted, run_bin, temp_dir};
use std::path::Path;
use std::process::{Command, Stdio};
use testkit::{Daemon, free_port, wait_for_port};

/// `loadgen init ARGS --dir DIR --name NAME`, which must succeed: the
/// scenario's and the SLO file's text.
fn init(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let o = loadgen(
        &[
            &["init", "--dir", dir.to_str().unwrap(), "--name", name],
            args,
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("next: loadgen run"), "{stderr}");
    let read = |f: String| std::fs::read_to_string(dir.join(f)).unwrap();
    (
        read(format!("{name}.toml")),
        read(format!("{name}-slo.toml")),
    )
}

/// Runs the written scenario briefly; it must pass (unless the self-check
/// on a busy machine distrusts it).
fn runs_and_passes(dir: &Path, name: &str) -> serde_json::Value {
    let out = dir.join(format!("{name}-run"));
    let o = run_bin(
        &dir.join(format!("{name}.toml")),
        &out,
        &["--duration", "2s", "--warmup", "0s"],
    );
    let report = checked_report(&out);
    passed_unless_distrusted(o.status.code(), &report);
    report
}

#[test]
fn the_reference_server_gets_chat_v1_and_the_guides_kpis_and_on_request_openai() {
    let dir = temp_dir("init-refserver");
    // The smoke scenario's server: fast, but a token each 5 ms (not in
    // bursts, which the guide's buffered-streams objective would fail).
    let (_s, port) = crate::support::refserver(&[
        "--profile",
        "fast",
        "--first-token-ms",
        "50",
        "--token-interval-ms",
        "5",
    ]);
    let url = format!("http://127.0.0.1:{port}");
    let (scenario, slo) = init(&dir, "ref", &["--target", &url]);
    assert!(
        scenario.contains(&format!("target = \"{url}\"")),
        "{scenario}"
    );
    assert!(
        !scenario.contains("protocol ="),
        "chat-v1 is the default: {scenario}"
    );
    assert!(
        scenario.contains("the guide's health endpoint"),
        "{scenario}"
    );
    assert!(scenario.contains("audio = true"), "{scenario}");
    // The guide's KPIs, as the shipped file has them.
    for kpi in [
        "first token p95",
        "first audio p95",
        "complete p95",
        "success rate",
    ] {
        assert!(slo.contains(&format!("name = \"{kpi}\"")), "{slo}");
    }
    let report = runs_and_passes(&dir, "ref");
    assert_eq!(report["target"]["protocol"], "chat-v1");
    assert!(
        report["requests"]["ok"].as_u64().unwrap() >= 200,
        "min_requests"
    );

    // Asked for the other protocol, the same server's model list.
    let (scenario, slo) = init(
        &dir,
        "ref-openai",
        &["--target", &url, "--protocol", "openai-chat"],
    );
    assert!(
        scenario.contains("protocol = \"openai-chat\""),
        "{scenario}"
    );
    assert!(scenario.contains("model = \"refserver\""), "{scenario}");
    assert!(scenario.contains("audio = false"), "{scenario}");
    assert!(slo.contains("latency_ms.inter_token.p95"), "{slo}");
    let report = runs_and_passes(&dir, "ref-openai");
    assert_eq!(report["target"]["protocol"], "openai-chat");

    // Never overwritten: the second init fails, naming the file, and the
    // file is as it was.
    let o = loadgen(&["init", "--dir", dir.to_str().unwrap(), "--name", "ref"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ref.toml exists") && stderr.contains("never overwrites"),
        "{stderr}"
    );
    let again = std::fs::read_to_string(dir.join("ref.toml")).unwrap();
    assert!(again.contains(&url), "{again}");
}

#[test]
fn a_third_party_openai_server_gets_openai_chat_with_its_first_model() {
    let dir = temp_dir("init-llmock");
    let port = free_port();
    let _mock = Daemon(
        Command::new("llmock")
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--log-level", "warning"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llmock runs (ci/install.sh installs it from PyPI)"),
    );
    wait_for_port(port, "llmock serve");
    let url = format!("http://127.0.0.1:{port}");
    let (scenario, _) = init(&dir, "mock", &["--target", &url]);
    assert!(
        scenario.contains("protocol = \"openai-chat\""),
        "{scenario}"
    );
    // llmock lists gpt-4o first.
    assert!(scenario.contains("model = \"gpt-4o\""), "{scenario}");
    assert!(scenario.contains("an OpenAI model list"), "{scenario}");
    let report = runs_and_passes(&dir, "mock");
    assert!(
        report["requests"]["ok"].as_u64().unwrap() >= 200,
        "{}",
        report["requests"]
    );
}

#[test]
fn a_server_that_speaks_neither_gets_a_template_to_fill_in() {
    let dir = temp_dir("init-template");
    let port = free_port();
    let _http = Daemon(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs http.server"),
    );
    wait_for_port(port, "python3 -m http.server");
    let url = format!("http://127.0.0.1:{port}");
    let (scenario, _) = init(&dir, "other", &["--target", &url]);
    assert!(scenario.contains("protocol = \"template\""), "{scenario}");
    assert!(
        scenario.contains("[template]") && scenario.contains("EDIT"),
        "{scenario}"
    );
    // Both probes are named with what they got.
    assert!(
        scenario.contains("/api/metrics/health/streaming: HTTP 404")
            && scenario.contains("/v1/models: HTTP 404"),
        "{scenario}"
    );
    // Headers given to init go into the scenario as given: a variable
    // stays a reference (read for the probe and the check).
    let o = Command::new(crate::support::BIN)
        .args(["init", "--dir", dir.to_str().unwrap(), "--name", "keyed"])
        .args([
            "--target",
            &url,
            "-H",
            "Authorization: Bearer ${INIT_TEST_KEY}",
        ])
        .env("INIT_TEST_KEY", "s3cret")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let scenario = std::fs::read_to_string(dir.join("keyed.toml")).unwrap();
    assert!(!scenario.contains("s3cret"), "{scenario}");
    assert!(
        scenario.contains("\"Authorization\" = \"Bearer ${INIT_TEST_KEY}\""),
        "{scenario}"
    );
}

#[test]
fn a_target_that_does_not_answer_is_named() {
    let dir = temp_dir("init-down");
    let url = format!("http://127.0.0.1:{}", free_port());
    let o = loadgen(&["init", "--dir", dir.to_str().unwrap(), "--target", &url]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("does not answer"),
        "{stderr}"
    );
    assert!(!dir.join("my-backend.toml").exists(), "nothing written");
}
