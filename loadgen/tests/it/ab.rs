//! `loadgen ab` through the binary against reference servers on loopback
//! (processes of their own): the same target twice passes, a known
//! regression is found before the cap, a small one within its tolerance
//! passes, failures fail the success rate, and a target that dies mid-run
//! fails the comparison with every pair measured before it kept.

use crate::support::{BIN, temp_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A reference server on a free port, with the first token at 40 ms and a
/// token each 3 ms, and `extra` flags.
fn server(extra: &[&str]) -> (testkit::Daemon, String) {
    let mut args = vec![
        "--profile",
        "fast",
        "--first-token-ms",
        "40",
        "--token-interval-ms",
        "3",
    ];
    args.extend_from_slice(extra);
    let (d, port) = crate::support::refserver(&args);
    (d, format!("http://127.0.0.1:{port}"))
}

/// An OpenAI-protocol open model at `rate` for `duration`, with `seed`.
fn scenario(dir: &Path, rate: u32, duration: &str, seed: u64) -> PathBuf {
    let p = dir.join(format!("ab-{seed}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"ab\"\nduration = \"{duration}\"\nwarmup = \"0.5s\"\nseed = {seed}\nprotocol = \"openai-chat\"\n\
             [openai]\nmodel = \"refserver\"\nmax_tokens = 24\n\
             [load]\nmodel = \"open\"\nrate = {rate}\narrival = \"poisson\"\nmax_users = 200\n\
             [request]\naudio = false\nrepeat_ratio = 0.0\ntimeout = \"5s\"\n"
        ),
    )
    .unwrap();
    p
}

fn ab(
    scenario: &Path,
    baseline: &str,
    candidate: &str,
    out: &Path,
    extra: &[&str],
) -> (Output, Value) {
    let o = Command::new(BIN)
        .args(["ab", scenario.to_str().unwrap(), "-q", "--start-in", "1s"])
        .args(["--baseline", baseline, "--candidate", candidate, "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(out.join("ab.json"))
        .unwrap_or_else(|e| panic!("no ab.json ({e}): {}", String::from_utf8_lossy(&o.stderr)));
    let v: Value = serde_json::from_str(&text).unwrap();
    testkit::assert_matches_schema("reports/schema/ab.schema.json", &v, "ab.json");
    (o, v)
}

fn objective<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["objective"] == name)
        .unwrap_or_else(|| panic!("{name} in {v}"))
}

#[test]
fn the_same_target_twice_passes_over_several_seeds() {
    let _turn = crate::support::turn();
    let dir = temp_dir("ab-aa");
    let (_s, url) = server(&[]);
    for seed in [1, 2, 3] {
        let out = dir.join(format!("out-{seed}"));
        let (o, v) = ab(&scenario(&dir, 250, "20s", seed), &url, &url, &out, &[]);
        assert_eq!(
            (o.status.code(), v["verdict"].as_str()),
            (Some(0), Some("pass")),
            "seed {seed}: {}\n{v:#}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(v["same_target"], true);
        assert!(v["self_check"].is_null());
        // Every pair is one arrival of each run, with the same prompt.
        let a = crate::support::records(&out.join("baseline"));
        let b = crate::support::records(&out.join("candidate"));
        let prompts = |r: &[slo::record::RequestRecord]| {
            let mut v: Vec<_> = r.iter().map(|x| (x.arrival, x.prompt_chars)).collect();
            v.sort();
            v
        };
        let (pa, pb) = (prompts(&a), prompts(&b));
        let n = pa.len().min(pb.len());
        assert!(n >= 800, "{n} pairs");
        assert_eq!(pa[..n - 20], pb[..n - 20], "the same arrivals and prompts");
    }
}

#[test]
fn a_first_token_ten_percent_slower_is_found_before_the_cap() {
    let _turn = crate::support::turn();
    let dir = temp_dir("ab-slow");
    let (_a, base) = server(&[]);
    let (_b, cand) = server(&["--slower-first-token", "10"]);
    let (o, v) = ab(
        &scenario(&dir, 100, "60s", 7),
        &base,
        &cand,
        &dir.join("out"),
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(v["verdict"], "fail");
    let ft = objective(&v, "first_token.p95");
    assert_eq!(ft["standing"], "past", "{ft}");
    let worse = ft["worse_by"].as_f64().unwrap();
    assert!((7.0..13.0).contains(&worse), "{worse} % worse");
    let (pairs, cap) = (
        v["pairs"].as_u64().unwrap(),
        v["plan"]["max_pairs"].as_u64().unwrap(),
    );
    // Before the cap: at a planned look short of it (with the five
    // default objectives a look's "past" level is 0.05 / (5 looks × 5):
    // a 10 % change was seen shown at 400 and at 1,600 pairs).
    assert!(pairs < cap, "decided at {pairs} of {cap} pairs");
    assert!(v["looks"].as_array().unwrap().len() < v["looks_planned"].as_array().unwrap().len());
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("first_token.p95 is worse by"),
        "{}",
        v["reasons"]
    );
    let md = std::fs::read_to_string(dir.join("out/ab.md")).unwrap();
    assert!(
        md.starts_with("## FAIL ab: candidate against baseline, decided after"),
        "{md}"
    );
    let junit = std::fs::read_to_string(dir.join("out/ab-junit.xml")).unwrap();
    assert!(
        junit.contains(r#"name="first_token.p95"><failure"#),
        "{junit}"
    );
}

#[test]
fn a_two_percent_slowdown_passes_a_five_percent_tolerance() {
    let _turn = crate::support::turn();
    let dir = temp_dir("ab-small");
    let (_a, base) = server(&[]);
    let (_b, cand) = server(&["--slower-first-token", "2"]);
    let (o, v) = ab(
        &scenario(&dir, 200, "30s", 8),
        &base,
        &cand,
        &dir.join("out"),
        // The median: a p95 of 40 ms first tokens moves by more than 2 %
        // in a spell of the machine, and showing it within 5 % took 3,200
        // to 6,000 pairs (once none: inconclusive at the cap); the median
        // is shown on the first look's.
        &["--objective", "first_token.p50=5%"],
    );
    assert_eq!(
        (o.status.code(), v["verdict"].as_str()),
        (Some(0), Some("pass")),
        "{v:#}"
    );
    // Passing is shown within: its upper bound under the tolerance.
    // (Whether the interval holds
    // the knob's 2 % is a matter of its confidence, not a test's: CI once
    // saw a p95's [-14.7, -2.1] % on 100 pairs, the miss that made ab
    // resample in blocks.)
    let ft = objective(&v, "first_token.p50");
    assert_eq!(ft["standing"], "within", "{ft}");
    assert!(ft["upper"].as_f64().unwrap() <= 5.0, "{ft}");
}

#[test]
fn a_candidate_failing_five_percent_fails_the_success_rate() {
    let dir = temp_dir("ab-errors");
    let (_a, base) = server(&[]);
    let (_b, cand) = server(&["--fail-openai", "0.05"]);
    let (o, v) = ab(
        &scenario(&dir, 100, "60s", 9),
        &base,
        &cand,
        &dir.join("out"),
        &["--pairing", "alternate"],
    );
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(objective(&v, "success_rate")["standing"], "past");
    assert_eq!(v["pairing"], "alternate");
    // Alternating: each arrival went to one target, a pair's two with
    // one prompt.
    let a = crate::support::records(&dir.join("out/baseline"));
    let b = crate::support::records(&dir.join("out/candidate"));
    // The server fails about the share it is told to, `max_tokens` or not
    // (a failure drawn past the 24th token would never be sent). The run
    // stopped at the first look that showed the rate past, which is
    // when failures happened to run high: the share at the stop is
    // biased upwards (CI saw 7.8 % of 472), so the band is 3-10 % (10 %
    // of 400 is 5 standard deviations above 5 %). Requests cut off by
    // the stop are not failures of the server.
    use slo::record::Outcome;
    let judged: Vec<_> = b
        .iter()
        .filter(|r| !r.warmup && r.outcome != Outcome::Interrupted)
        .collect();
    let failed = judged
        .iter()
        .filter(|r| r.outcome == Outcome::Openai)
        .count();
    let share = failed as f64 / judged.len() as f64;
    assert!(
        (0.03..0.10).contains(&share),
        "{failed} of {}",
        judged.len()
    );
    let arrivals = |r: &[slo::record::RequestRecord]| {
        r.iter()
            .filter_map(|x| x.arrival)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(arrivals(&a).is_disjoint(&arrivals(&b)));
    // An arrival dropped (no user free in time) was never sent: it has
    // no prompt.
    let by_pair = |r: &[slo::record::RequestRecord]| {
        r.iter()
            .filter(|x| x.outcome != Outcome::Dropped)
            .filter_map(|x| Some((x.arrival? / 2, x.prompt_chars)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (pa, pb) = (by_pair(&a), by_pair(&b));
    let shared: Vec<_> = pa.keys().filter(|k| pb.contains_key(k)).collect();
    assert!(shared.len() >= 100);
    assert!(
        shared.iter().all(|k| pa[k] == pb[k]),
        "a pair's prompt is one"
    );
}

#[test]
fn a_candidate_that_dies_mid_run_fails_and_keeps_what_was_measured() {
    let dir = temp_dir("ab-dies");
    let (_a, base) = server(&[]);
    let (mut cand_server, cand) = server(&[]);
    let out = dir.join("out");
    let scenario = scenario(&dir, 100, "20s", 10);
    let child = Command::new(BIN)
        .args(["ab", scenario.to_str().unwrap(), "-q", "--start-in", "1s"])
        .args(["--baseline", &base, "--candidate", &cand, "--out"])
        .arg(&out)
        // Only the success rate: nothing decides before the kill.
        .args(["--objective", "success_rate=1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The runs start 1 s after ab does; 4 s of pairs, then the candidate
    // goes.
    std::thread::sleep(std::time::Duration::from_secs(5));
    cand_server.0.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ab.json")).unwrap()).unwrap();
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(objective(&v, "success_rate")["standing"], "past");
    // The pairs before the kill are all there: both runs' records, the
    // baseline's all answered.
    let b = crate::support::records(&out.join("baseline"));
    let c = crate::support::records(&out.join("candidate"));
    assert!(
        b.len() >= 300 && c.len() >= 300,
        "{} and {}",
        b.len(),
        c.len()
    );
    use slo::record::Outcome;
    assert!(
        b.iter()
            .all(|r| r.outcome.is_ok() || r.outcome == Outcome::Interrupted),
        "the baseline answered everything"
    );
    assert!(
        c.iter().any(|r| r.outcome == Outcome::ConnectionRefused),
        "the candidate's later requests found no server"
    );
    assert_eq!(
        v["candidate"]["requests"].as_u64().unwrap() as usize,
        c.iter().filter(|r| !r.warmup).count()
    );
    // ab.html in a real browser: no console error, the verdict's colour,
    // the charts drawn.
    crate::support::assert_html_renders(&out.join("ab.html"), &dir, "fail", &[]);
}

#[test]
fn bad_input_is_named_before_anything_starts() {
    let dir = temp_dir("ab-bad");
    let open = scenario(&dir, 100, "10s", 1);
    let closed = dir.join("closed.toml");
    std::fs::write(
        &closed,
        "name = \"c\"\nduration = \"10s\"\n[load]\nmodel = \"closed\"\nusers = 2\n",
    )
    .unwrap();
    let url = "http://127.0.0.1:9";
    for (file, extra, says) in [
        (
            &closed,
            vec![],
            "loadgen ab needs one schedule for both targets",
        ),
        (
            &open,
            vec!["--objective", "ttft.p95=5%"],
            "unknown figure \"ttft\"",
        ),
        (&open, vec!["--confidence", "1.5"], "--confidence 1.5"),
        (&open, vec!["--max-pairs", "10"], "the first look needs 400"),
    ] {
        let o = Command::new(BIN)
            .args([
                "ab",
                file.to_str().unwrap(),
                "--baseline",
                url,
                "--candidate",
                url,
            ])
            .arg("--out")
            .arg(dir.join("out"))
            .args(&extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    assert!(!dir.join("out/ab.json").exists(), "nothing ran");
}
