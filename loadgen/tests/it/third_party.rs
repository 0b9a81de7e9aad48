//! `openai-chat` against an OpenAI-compatible server none of our code
//! wrote: mockllm from PyPI (installed by ci/install.sh), served by
//! uvicorn on loopback. It streams its canned answers a character a chunk
//! and sends no `usage`, so the output tokens are counted from the stream
//! (and the report says so). A run measures and passes its gate; the
//! client's tokenizer counts its streams; a wrong base path is classified
//! and fails it.

use crate::support::{checked_report, records, run_bin, temp_dir};
use slo::record::Outcome;
use std::process::{Command, Stdio};
use testkit::{Daemon, free_port, root, wait_for_port};

const QUESTIONS: [&str; 2] = ["What are your opening hours?", "Do you ship abroad?"];
/// mockllm 0.0.8 streams its default answer whatever the question (its
/// streaming path looks the answer up again as if it were a prompt): the
/// answer every streamed request gets.
const ANSWER: &str = "We are open from nine to five, Monday to Saturday.";

#[test]
fn a_third_party_openai_server_is_measured_classified_and_gated() {
    let dir = temp_dir("third-party");
    // 2 ms a character, give or take half.
    let yml = format!(
        "responses:\n  \"{}\": \"{ANSWER}\"\ndefaults:\n  unknown_response: \"{ANSWER}\"\nsettings:\n  lag_enabled: true\n  lag_factor: 50\n",
        QUESTIONS[0]
    );
    std::fs::write(dir.join("responses.yml"), yml).unwrap();
    let port = free_port();
    let _mock = Daemon(
        Command::new("python3")
            .args(["-m", "uvicorn", "mockllm.server:app", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--log-level", "warning"])
            .env("MOCKLLM_RESPONSES_FILE", dir.join("responses.yml"))
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs mockllm (ci/install.sh installs it from PyPI)"),
    );
    wait_for_port(port, "mockllm (python3 -m uvicorn mockllm.server:app)");
    std::fs::write(dir.join("prompts.txt"), QUESTIONS.join("\n")).unwrap();
    let scenario = dir.join("mock.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
name = "mockllm"
duration = "3s"
warmup = "1s"
target = "http://127.0.0.1:{port}"
protocol = "openai-chat"
slo = "{}"
min_requests = 120
until_conclusive = true
max_duration = "30s"

[openai]
model = "gpt-4o"
max_tokens = 64

[dataset]
file = "prompts.txt"

[load]
model = "closed"
users = 4

[request]
audio = false
timeout = "10s"
"#,
            root().join("scenarios/slo/openai.toml").display()
        ),
    )
    .unwrap();

    let out = dir.join("ok");
    let o = run_bin(&scenario, &out, &[]);
    let report = checked_report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &report);
    let rows: Vec<_> = records(&out).into_iter().filter(|r| !r.warmup).collect();
    assert!(rows.len() >= 120, "{} requests", rows.len());
    for r in &rows {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        // The dataset's questions, one chunk a character of the answer.
        assert!(
            QUESTIONS
                .iter()
                .any(|q| q.chars().count() as u32 == r.prompt_chars),
            "{r:?}"
        );
        assert_eq!(r.tokens as usize, ANSWER.chars().count(), "{r:?}");
        assert_eq!(r.word_count, None, "mockllm streams no usage");
        assert!(r.first_token_us.unwrap() >= 1_000, "{r:?}");
    }
    assert_eq!(
        report["tokens"]["counted_from_stream"].as_u64(),
        Some(report["requests"]["ok"].as_u64().unwrap())
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("counted from the stream"), "{md}");
    // No server metrics: said, not faked.
    assert_eq!(report["server"]["available"], false);

    // The client's own count of the same streams (`[tokens]`, no lengths
    // asked): the answer's cl100k_base tokens, which mockllm, sending no
    // usage, cannot contradict.
    let counted = dir.join("counted.toml");
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(
        &counted,
        format!("{text}\n[tokens]\ntokenizer = \"cl100k_base\"\n"),
    )
    .unwrap();
    let out = dir.join("counted");
    run_bin(
        &counted,
        &out,
        &["--duration", "2s", "--max-duration", "3s"],
    );
    let report = checked_report(&out);
    let cl = tokens::Tokenizer::load("cl100k_base").unwrap();
    let rows: Vec<_> = records(&out)
        .into_iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .collect();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(
            r.client_output_tokens,
            Some(cl.count(ANSWER) as u32),
            "{r:?}"
        );
        assert!(
            QUESTIONS
                .iter()
                .any(|q| Some(cl.count(q) as u32) == r.client_input_tokens),
            "{r:?}"
        );
    }
    let c = &report["tokens"]["client"];
    assert_eq!(c["counted"], report["requests"]["ok"], "{c}");
    assert_eq!(c["compared"], 0, "no usage to compare with: {c}");

    // A wrong base path: every request is mockllm's 404, classified, and
    // the gate fails.
    let out = dir.join("wrong-path");
    let wrong = format!("http://127.0.0.1:{port}/api");
    let o = run_bin(
        &scenario,
        &out,
        &[
            "--target",
            &wrong,
            "--duration",
            "2s",
            "--max-duration",
            "3s",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let rows = records(&out);
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.outcome == Outcome::HttpStatus && r.status == Some(404)),
        "{:?}",
        rows[0]
    );
}
