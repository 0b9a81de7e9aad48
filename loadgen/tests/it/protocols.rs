//! `protocol = "template"` and datasets through the binary: the shipped
//! template that describes docs/protocol.md gives the same figures as chat-v1
//! on the same server and seed; a broken template is refused at load time
//! naming the line and key; prompts come from text, JSONL and CSV files in
//! the seeded order; conversations send each turn with its history.

use crate::support::{checked_report, loadgen, records, temp_dir};
use slo::record::{Outcome, RequestRecord};
use std::collections::BTreeMap;
use testkit::root;

/// The shipped template scenario with a short open-model load, as
/// `protocol`: every request at its schedule, so request n asks the same
/// question in either run.
fn equal_load(dir: &std::path::Path, protocol: &str) -> Vec<RequestRecord> {
    let text = std::fs::read_to_string(root().join("scenarios/template.toml"))
        .unwrap()
        .replace(
            "slo = \"slo/kpi.toml\"",
            &format!(
                "slo = \"{}\"",
                root().join("scenarios/slo/kpi.toml").display()
            ),
        )
        .replace(
            "protocol = \"template\"",
            &format!("protocol = \"{protocol}\""),
        )
        .replace(
            "min_requests = 200\nuntil_conclusive = true\nmax_duration = \"45s\"\n",
            "seed = 11\n",
        )
        .replace("warmup = \"2s\"", "warmup = \"0s\"")
        .replace(
            "model = \"closed\"\nusers = 10\nramp_up = \"1s\"",
            "model = \"open\"\nrate = 8.0",
        )
        .replace(
            "\"--tts-hit-ms\", \"2\"]",
            "\"--tts-hit-ms\", \"2\", \"--seed\", \"5\"]",
        );
    // chat-v1 ignores the [template] table only if it is not there.
    let text = if protocol == "chat-v1" {
        let start = text.find("[template]").unwrap();
        let end = text.find("[server]").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    } else {
        text
    };
    let file = dir.join(format!("{protocol}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = dir.join(protocol);
    let o = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "4s",
        "--allow-missing",
        "--accept-inconclusive",
        "-q",
    ]);
    let report = checked_report(&out);
    assert_eq!(
        report["target"]["protocol"],
        protocol,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut rows = records(&out);
    rows.sort_by_key(|r| r.seq);
    rows
}

#[test]
fn the_template_of_protocol_md_gives_the_figures_of_chat_v1() {
    let _turn = crate::support::turn();
    let dir = temp_dir("template-same");
    let v1 = equal_load(&dir, "chat-v1");
    let t = equal_load(&dir, "template");
    assert_eq!(v1.len(), 32, "8/s for 4 s");
    assert_eq!(t.len(), v1.len());
    let what = |r: &RequestRecord| {
        (
            r.outcome,
            r.tokens,
            r.audio_chunks,
            r.word_count,
            r.kb_cache.clone(),
            r.tts_cache_hits,
            r.tts_cache_misses,
            r.prompt_chars,
            r.first_token_us.is_some(),
            r.server_first_token_ms.is_some(),
        )
    };
    for (a, b) in v1.iter().zip(&t) {
        assert_eq!(a.outcome, Outcome::Ok, "{a:?}");
        assert_eq!(what(a), what(b), "request {}", a.seq);
    }
    // The client's latencies agree too (each about the injected 50 ms
    // first token; generous: two runs on a shared machine).
    let p50 = |rows: &[RequestRecord]| {
        let mut v: Vec<u64> = rows.iter().filter_map(|r| r.first_token_us).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (a, b) = (p50(&v1), p50(&t));
    assert!(a >= 50_000 && b >= 50_000, "{a} {b}");
    assert!(a.abs_diff(b) < 25_000, "first token p50 {a} µs vs {b} µs");
}

#[test]
fn a_broken_template_is_refused_naming_the_line_and_key() {
    let dir = temp_dir("template-broken");
    let text = std::fs::read_to_string(root().join("scenarios/template.toml"))
        .unwrap()
        .replace("duration_ms = \"durationMs\"\n", "");
    let file = dir.join("broken.toml");
    std::fs::write(&file, &text).unwrap();
    let o = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    // The second [[template.event]] (audio) lost its duration.
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[template.event]]")
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert!(
        stderr.contains(&format!(
            "broken.toml:{line}: template.event[2].duration_ms"
        )),
        "{stderr}"
    );
    let text = std::fs::read_to_string(root().join("scenarios/template.toml"))
        .unwrap()
        .replace("\"message\": \"{{prompt}}\"", "\"message\": {{prompt}}");
    std::fs::write(&file, &text).unwrap();
    let o = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let line = text.lines().position(|l| l.starts_with("body = ")).unwrap() + 1;
    assert!(
        stderr.contains(&format!("broken.toml:{line}: template.body"))
            && stderr.contains("inside quotes"),
        "{stderr}"
    );
}

const DATASET_SCENARIO: &str = r#"
name = "dataset"
duration = "2s"
seed = 4

[dataset]
file = "FILE"
order = "sequential"

[load]
model = "closed"
users = 1

[request]
audio = false
repeat_ratio = 0.0

[server]
args = ["--profile", "fast", "--token-interval-ms", "1"]
"#;

#[test]
fn prompts_come_from_text_jsonl_and_csv_files_in_order() {
    let dir = temp_dir("datasets");
    // Three prompts of lengths the CSV can tell apart.
    let prompts = [
        "Hours?",
        "Do you ship abroad?",
        "How do I return, say, a lamp?",
    ];
    std::fs::write(dir.join("p.txt"), prompts.join("\n")).unwrap();
    let jsonl: Vec<String> = prompts
        .iter()
        .map(|p| serde_json::json!({"id": 1, "question": p}).to_string())
        .collect();
    std::fs::write(dir.join("p.jsonl"), jsonl.join("\n")).unwrap();
    let csv: Vec<String> = prompts.iter().map(|p| format!("1,\"{p}\"")).collect();
    std::fs::write(
        dir.join("p.csv"),
        format!("id,question\n{}\n", csv.join("\n")),
    )
    .unwrap();
    for (file, extra) in [
        ("p.txt", ""),
        ("p.jsonl", "field = \"question\"\n"),
        ("p.csv", "field = \"question\"\n"),
    ] {
        let scenario = dir.join(format!("{file}.toml"));
        std::fs::write(
            &scenario,
            DATASET_SCENARIO.replace("file = \"FILE\"\n", &format!("file = \"{file}\"\n{extra}")),
        )
        .unwrap();
        let out = dir.join(format!("out-{file}"));
        let o = loadgen(&[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ]);
        crate::support::passed_unless_distrusted(o.status.code(), &checked_report(&out));
        let mut rows = records(&out);
        rows.sort_by_key(|r| r.seq);
        assert!(rows.len() >= 6, "{file}: {} requests", rows.len());
        for r in &rows {
            assert_eq!(r.outcome, Outcome::Ok);
            let want = prompts[(r.seq % 3) as usize].chars().count() as u32;
            assert_eq!(r.prompt_chars, want, "{file}: request {}", r.seq);
        }
    }
    // A bad row is named by file and line, before anything runs.
    std::fs::write(
        dir.join("bad.jsonl"),
        "{\"question\": \"ok\"}\n{\"q\": 1}\n",
    )
    .unwrap();
    let scenario = dir.join("bad.toml");
    std::fs::write(
        &scenario,
        DATASET_SCENARIO.replace(
            "file = \"FILE\"\n",
            "file = \"bad.jsonl\"\nfield = \"question\"\n",
        ),
    )
    .unwrap();
    let o = loadgen(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("bad.jsonl:2:") && stderr.contains("\"question\""),
        "{stderr}"
    );
}

#[test]
fn conversations_send_each_turn_with_its_history() {
    let dir = temp_dir("conversations");
    let lines = [
        r#"{"turns": ["What are your opening hours?", "And on Sundays?", "Thanks, bye!"]}"#,
        r#"{"turns": ["Do you ship abroad?", "How long does it take?", "What does it cost?"]}"#,
    ];
    std::fs::write(dir.join("chats.jsonl"), lines.join("\n")).unwrap();
    let scenario = dir.join("chats.toml");
    std::fs::write(
        &scenario,
        r#"
name = "chats"
duration = "2s"
protocol = "openai-chat"

[openai]
model = "refserver"
max_tokens = 20

[dataset]
file = "chats.jsonl"
turns_field = "turns"

[load]
model = "closed"
users = 2

[request]
audio = false
repeat_ratio = 0.0

[server]
args = ["--profile", "fast", "--token-interval-ms", "1"]
"#,
    )
    .unwrap();
    let out = dir.join("out");
    let o = loadgen(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    crate::support::passed_unless_distrusted(o.status.code(), &checked_report(&out));
    let rows = records(&out);
    assert!(rows.len() >= 12, "{} requests", rows.len());
    // Per user, turns go 0, 1, 2, 0, ...; the server counts the prompt's
    // words over every message, so a later turn's prompt holds the
    // earlier turns and their answers.
    let mut by_user: BTreeMap<usize, Vec<&RequestRecord>> = BTreeMap::new();
    for r in &rows {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        by_user.entry(r.user).or_default().push(r);
    }
    for rows in by_user.values_mut() {
        rows.sort_by_key(|r| r.start_us);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.turn as usize, i % 3, "{r:?}");
            if r.turn > 0 {
                let before = rows[i - 1];
                let own = r.input_tokens.unwrap();
                // At least the earlier prompt, its answer and this question.
                assert!(
                    own > before.input_tokens.unwrap() + before.word_count.unwrap(),
                    "turn {} has {own} input tokens after {:?}",
                    r.turn,
                    before
                );
            }
        }
    }
    let report = checked_report(&out);
    assert!(report["tokens"]["input"].as_u64().unwrap() > 0);
}
