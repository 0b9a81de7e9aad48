//! `protocol = "openai-chat"` through the binary, against the reference
//! server's OpenAI endpoint: streamed and whole answers are measured and
//! judged, the server's `usage` agrees with the chunks counted, injected
//! failures are classified, and a scenario without the [openai] table is a
//! usage error naming the flag.

use crate::support::{Scratch, checked_report, loadgen, records, temp_dir};
use slo::record::Outcome;
use testkit::root;

fn run(name: &str, extra: &[&str]) -> (std::process::Output, Scratch) {
    let out = temp_dir(name);
    let scenario = root().join("scenarios/openai.toml");
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "4s",
        "--max-duration",
        "20s",
        "-q",
    ];
    args.extend_from_slice(extra);
    (loadgen(&args), out)
}

#[test]
fn the_shipped_openai_scenario_measures_and_passes() {
    let (o, out) = run("openai-pass", &[]);
    let report = checked_report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &report);
    let all = records(&out);
    let rows: Vec<_> = all.iter().filter(|r| !r.warmup).collect();
    assert!(rows.len() >= 200, "{} requests", rows.len());
    for r in &rows {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert!(r.streaming);
        assert!(r.tokens > 0 && r.tokens <= 256, "{r:?}");
        assert_eq!(
            r.word_count,
            Some(u64::from(r.tokens)),
            "usage.completion_tokens is the count of content chunks"
        );
        assert_eq!(r.first_audio_us, None);
        let ft = r.first_token_us.unwrap();
        assert!(ft >= 50_000, "{ft} µs with a 50 ms first token injected");
    }
    // The server counted every one (the warm-up's too) as a chat request.
    assert_eq!(report["server"]["available"], true);
    assert_eq!(
        report["server"]["delta"]["requests"].as_u64(),
        Some(all.len() as u64),
        "{}",
        report["server"]["delta"]
    );
}

#[test]
fn failures_and_whole_answers_are_classified() {
    let dir = temp_dir("openai-faults");
    let text = std::fs::read_to_string(root().join("scenarios/openai.toml"))
        .unwrap()
        .replace(
            "slo = \"slo/openai.toml\"",
            &format!(
                "slo = \"{}\"",
                root().join("scenarios/slo/openai.toml").display()
            ),
        )
        .replace(
            "\"--token-interval-ms\", \"5\"]",
            "\"--token-interval-ms\", \"5\", \"--fail-openai\", \"0.5\"]",
        )
        .replace("max_tokens = 256", "max_tokens = 256\nstream = false");
    let scenario = dir.join("openai-faults.toml");
    std::fs::write(&scenario, text).unwrap();
    let out = dir.join("out");
    let o = loadgen(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "3s",
        "--max-duration",
        "6s",
        "-q",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows: Vec<_> = records(&out).into_iter().filter(|r| !r.warmup).collect();
    let failed = rows.iter().filter(|r| r.outcome == Outcome::Openai).count();
    let ok: Vec<_> = rows.iter().filter(|r| r.outcome == Outcome::Ok).collect();
    assert!(
        failed > 0 && !ok.is_empty(),
        "{} failed of {}",
        failed,
        rows.len()
    );
    assert_eq!(failed + ok.len(), rows.len(), "nothing but ok and openai");
    assert!(
        ok.iter()
            .all(|r| !r.streaming && r.word_count == Some(u64::from(r.tokens)))
    );
}

#[test]
fn openai_chat_needs_its_table() {
    let out = temp_dir("openai-usage");
    let o = loadgen(&[
        "run",
        root().join("scenarios/smoke.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--protocol",
        "openai-chat",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("--protocol") && stderr.contains("[openai]"),
        "{stderr}"
    );
}
