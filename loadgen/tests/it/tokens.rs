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

/// Synthetic conversations under the open model: sessions arrive at the
/// rate, each sends its three turns one after another with the think time
/// between, and each turn carries the earlier questions and answers (the
/// client's count and the server's grow by exactly one turn's tokens).
#[test]
fn conversations_arrive_at_a_rate_and_carry_their_history() {
    let dir = temp_dir("tokens-conversations");
    let file = scenario(
        &dir,
        ", \"--tokenizer\", \"cl100k_base\"",
        "tokenizer = \"cl100k_base\"\ninput = { dist = \"fixed\", value = 40 }\noutput = { dist = \"fixed\", value = 8 }\nmin_tokens = true\n\
         [conversation]\nturns = { dist = \"fixed\", value = 3 }\nthink_time = \"300ms\"\n",
    );
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("rate = 10.0", "rate = 2.0\narrival = \"constant\"");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    run_bin(&file, &out, &[]);
    let rows = records(&out);
    assert!(rows.iter().all(|r| r.outcome.is_ok()), "{rows:?}");
    // Six sessions in 3 s at 2 a second, every 500 ms.
    let mut firsts: Vec<u64> = rows
        .iter()
        .filter(|r| r.turn == 0)
        .map(|r| r.scheduled_us.unwrap())
        .collect();
    firsts.sort_unstable();
    assert_eq!(firsts.len(), 6, "{firsts:?}");
    for (i, at) in firsts.iter().enumerate() {
        assert!(at.abs_diff(i as u64 * 500_000) < 1_000, "{firsts:?}");
    }
    let mut by_user: std::collections::BTreeMap<usize, Vec<_>> = Default::default();
    for r in &rows {
        by_user.entry(r.user).or_default().push(r);
    }
    let mut later = 0;
    for turns in by_user.values_mut() {
        turns.sort_by_key(|r| r.start_us);
        for (i, r) in turns.iter().enumerate() {
            let expected = 48 * r.turn + 40;
            assert_eq!(r.client_input_tokens, Some(expected), "{r:?}");
            assert_eq!(
                r.input_tokens,
                Some(u64::from(expected)),
                "the server's count"
            );
            if r.turn == 0 {
                continue;
            }
            later += 1;
            let before = turns[i - 1];
            assert_eq!(before.turn + 1, r.turn, "{turns:?}");
            // The think time after the answer (generous: 200 ms over it
            // for a debug build beside the suite's other tests).
            let gap = r.start_us - (before.start_us + before.end_us);
            assert!((300_000..500_000).contains(&gap), "think gap {gap} µs");
            assert_eq!(
                r.scheduled_us.map(|s| s.abs_diff(r.start_us) < 50_000),
                Some(true),
                "a later turn is due at its think time's end: {r:?}"
            );
        }
    }
    // Sessions started before the last second finish their turns.
    assert!(later >= 8, "{later} later turns");
}
