//! Workloads by token length (`[tokens]`), through the binary against
//! the embedded reference server: prompts cut to drawn lengths, answers
//! asked for a length, and the client's counts beside the server's.

use crate::support::{checked_report, records, run_bin, temp_dir};
use std::path::{Path, PathBuf};

fn scenario(dir: &Path, server_args: &str, tokens: &str) -> PathBuf {
    let file = dir.join("tokens.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"tokens\"\nduration = \"3s\"\nwarmup = \"0s\"\nprotocol = \"openai-chat\"\n\
             [server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"10\", \"--token-interval-ms\", \"1\"{server_args}]\n\
             [load]\nmodel = \"open\"\nrate = 10.0\n[request]\nrepeat_ratio = 0.0\n[openai]\nmodel = \"m\"\n\
             [tokens]\n{tokens}"
        ),
    )
    .unwrap();
    file
}

/// With the same tokenizer on both sides (a Hugging Face tokenizer.json
/// here), every prompt has the drawn length and every answer the asked
/// one, by the server's count and by the client's.
#[test]
fn prompts_and_answers_have_the_asked_lengths_by_both_counts() {
    let dir = temp_dir("tokens-exact");
    let model = testkit::trained_tokenizer(&dir, &server::corpus::prose(3000));
    let file = scenario(
        &dir,
        &format!(", \"--tokenizer\", \"{}\"", model.display()),
        "tokenizer = \"model\"\ninput = { dist = \"uniform\", min = 100, max = 1500 }\noutput = { dist = \"fixed\", value = 64 }\nmin_tokens = true\n",
    );
    let out = dir.join("out");
    // Counts, not the verdict, are this test's subject: a debug build's
    // tokenizer beside the suite's other tests can slow the answers.
    run_bin(&file, &out, &[]);
    let report = checked_report(&out);
    let rows: Vec<_> = records(&out)
        .into_iter()
        .filter(|r| r.outcome.is_ok())
        .collect();
    assert!(rows.len() >= 20, "{} requests", rows.len());
    let mut lengths = std::collections::BTreeSet::new();
    for r in &rows {
        let client_in = r.client_input_tokens.unwrap();
        assert_eq!(r.input_tokens, Some(u64::from(client_in)), "{r:?}");
        assert!((100..=1500).contains(&client_in), "{client_in}");
        lengths.insert(client_in);
        assert_eq!(r.asked_output_tokens, Some(64));
        assert_eq!(r.word_count, Some(64), "the server's count");
        assert_eq!(r.client_output_tokens, Some(64), "the client's count");
    }
    assert!(lengths.len() > rows.len() / 2, "drawn lengths: {lengths:?}");
    let c = &report["tokens"]["client"];
    assert_eq!(c["counted"], rows.len(), "{c}");
    assert_eq!(
        (&c["disagreements"], &c["short"]),
        (&0.into(), &0.into()),
        "{c}"
    );
    assert_eq!(c["asked"], rows.len());
    let findings = report["findings"].to_string();
    assert!(
        !findings.contains("TOKEN COUNTS") && !findings.contains("SHORT"),
        "{findings}"
    );
}

/// A server that counts words and stops at its answer's end: the client
/// counts with cl100k_base, so the counts disagree, and answers asked for
/// 400 tokens without `min_tokens` come back short. Both are findings.
#[test]
fn other_counts_and_short_answers_are_findings() {
    let dir = temp_dir("tokens-short");
    let file = scenario(
        &dir,
        "",
        "tokenizer = \"cl100k_base\"\noutput = { dist = \"fixed\", value = 400 }\n",
    );
    let out = dir.join("out");
    // Counts, not the verdict, are this test's subject: a debug build's
    // tokenizer beside the suite's other tests can slow the answers.
    run_bin(&file, &out, &[]);
    let report = checked_report(&out);
    let c = &report["tokens"]["client"];
    let n = c["counted"].as_u64().unwrap();
    assert!(n >= 20, "{c}");
    // The built-in answers are 40-180 words, and a word is a token there.
    assert_eq!(c["short"], n, "{c}");
    assert!(c["disagreements"].as_u64().unwrap() > n / 2, "{c}");
    let findings = report["findings"].to_string();
    assert!(
        findings.contains(&format!("SHORT ANSWERS: {n} of {n}")),
        "{findings}"
    );
    assert!(findings.contains("TOKEN COUNTS: in "), "{findings}");
    // The prompts are the mix's own, counted.
    for r in records(&out).iter().filter(|r| r.outcome.is_ok()) {
        let counted = r.client_input_tokens.unwrap();
        assert!((5..40).contains(&counted), "{r:?}");
    }
}
