//! Evidence behind every verdict: percentiles with too few samples are
//! inconclusive and fail; runs can size themselves until they are
//! conclusive; `compare` tells run-to-run noise from a real slowdown.
//! Through the binary, against the reference server on 127.0.0.1.

use crate::support::{checked_report as report, loadgen, run_bin, temp_dir};
use std::path::Path;

/// Exact delays: a first token of `first_ms`, so the distribution is
/// narrow and its percentiles settle fast.
fn exact(dir: &Path, name: &str, first_ms: u32, extra: &str) -> std::path::PathBuf {
    let slo = dir.join("p99.toml");
    std::fs::write(
        &slo,
        "name = \"p99\"\n[[objective]]\nname = \"first token p99\"\nmetric = \"scheduled_latency_ms.first_token.p99\"\ndirection = \"max\"\ntarget = 1000\n",
    )
    .unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\nduration = \"2s\"\nwarmup = \"1s\"\nslo = \"p99.toml\"\n{extra}[server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"{first_ms}\", \"--token-interval-ms\", \"1\"]\n[load]\nmodel = \"closed\"\nusers = 20\n[request]\naudio = false\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_p99_of_too_few_samples_is_inconclusive_and_more_requests_decide_it() {
    let dir = temp_dir("ev-p99");
    // Two seconds: far fewer than the 500 samples a p99 needs.
    let short = exact(&dir, "short", 100, "");
    let out = dir.join("short");
    let o = loadgen(&[
        "run",
        short.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", r["verdict_reasons"]);
    let j = &r["slo"][0];
    assert_eq!(j["level"], "inconclusive", "{j}");
    assert!(j["samples"].as_u64().unwrap() < 500);
    assert!(j["samples_needed"].as_u64().unwrap() >= 500, "{j}");
    assert!(
        r["verdict_reasons"]
            .to_string()
            .contains("--accept-inconclusive")
    );
    // Every percentile carries its evidence.
    let ev = &r["scheduled_latency_ms"]["first_token"]["evidence"];
    assert_eq!(ev["confidence"], 0.95);
    assert_eq!(ev["p99"]["min_samples"], 500);
    // Accepted explicitly, the same run passes, and the report says so.
    let o = loadgen(&["report", out.to_str().unwrap(), "--accept-inconclusive"]);
    let r = report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &r);
    assert_eq!(r["accept_inconclusive"], true);

    // The same run sized by its scenario: it goes on until the p99 is decided.
    let sized = exact(
        &dir,
        "sized",
        100,
        "until_conclusive = true\nmin_requests = 600\nmax_duration = \"60s\"\n",
    );
    let out = dir.join("sized");
    let o = loadgen(&[
        "run",
        sized.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let r = report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &r);
    assert_eq!(r["slo"][0]["level"], "ok");
    assert!(r["requests"]["total"].as_u64().unwrap() >= 600);
    assert!(
        r["measured_s"].as_f64().unwrap() > 2.0,
        "it ran past its 2 s duration"
    );
    let ev = &r["slo"][0]["interval"];
    assert!(ev["hi"].as_f64().unwrap() < 1000.0, "{ev}");
}

#[test]
fn compare_tells_noise_from_a_thirty_percent_slowdown() {
    let _turn = crate::support::turn();
    let dir = temp_dir("ev-compare");
    // Judged on the p95 the comparison is about (100 samples decide it),
    // so 300 requests a run are enough, not the 500 a p99 needs.
    let sizing = "min_requests = 300\nmax_duration = \"60s\"\n";
    let p95 = dir.join("p95.toml");
    std::fs::write(
        &p95,
        "name = \"p95\"\n[[objective]]\nname = \"first token p95\"\nmetric = \"scheduled_latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 1000\n",
    )
    .unwrap();
    let mut reports = Vec::new();
    for (name, first_ms) in [("base", 100), ("again", 100), ("slower", 130)] {
        let file = exact(&dir, name, first_ms, sizing);
        let out = dir.join(name);
        let o = loadgen(&[
            "run",
            file.to_str().unwrap(),
            "--slo",
            p95.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            report(&out)["verdict_reasons"]
        );
        reports.push(out.join("report.json"));
    }
    let cmp = |current: &Path| {
        loadgen(&[
            "compare",
            reports[0].to_str().unwrap(),
            current.to_str().unwrap(),
            "--tolerance",
            "scheduled_latency_ms.first_token.p50=10%",
            "--tolerance",
            "scheduled_latency_ms.first_token.p95=10%",
            // A gap of a few ms moves by a ms when the machine is busy
            // (3.4 -> 4.3 ms between two runs of one service in a full
            // suite): this test is about first token, not that.
            "--tolerance",
            "scheduled_latency_ms.inter_token.p95=2",
            "--accept-inconclusive",
        ])
    };
    let same = cmp(&reports[1]);
    let table = String::from_utf8_lossy(&same.stdout).into_owned();
    assert_eq!(same.status.code(), Some(0), "{table}");
    // Within tolerance, shown by both intervals: not merely accepted (the
    // p99s, which 300 requests cannot bound, are the accepted ones).
    for p in ["p50", "p95"] {
        let row = format!("| scheduled_latency_ms.first_token.{p} | ");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&row) && l.ends_with("| ok |")),
            "{table}"
        );
    }
    let slower = cmp(&reports[2]);
    let table = String::from_utf8_lossy(&slower.stdout).into_owned();
    assert_eq!(slower.status.code(), Some(1), "{table}");
    assert!(
        table.contains("| scheduled_latency_ms.first_token.p95 | ") && table.contains("regressed"),
        "{table}"
    );
    // The table shows both intervals.
    assert!(table.contains('[') && table.contains('–'), "{table}");
}

/// A scenario on the reference server with a first token of exactly
/// `first_ms`, 2 users for 2 s, and `slo.toml` beside it.
fn two_users(dir: &Path, name: &str, first_ms: u32) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\nduration = \"2s\"\nwarmup = \"0s\"\nslo = \"slo.toml\"\n[server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"{first_ms}\", \"--token-interval-ms\", \"1\"]\n[load]\nmodel = \"closed\"\nusers = 2\n[request]\naudio = false\n"
        ),
    )
    .unwrap();
    p
}

/// Issue 26, item 1: a p99 of a dozen requests, every one far past the
/// critical line, has a lower bound past it: the breach is decided
/// whatever the missing upper bound, and accepting inconclusive
/// objectives does not let it pass.
#[test]
fn a_breach_the_lower_bound_shows_fails_even_with_inconclusive_accepted() {
    let dir = temp_dir("ev-shown-breach");
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"t\"\n[[objective]]\nname = \"first token p99\"\nmetric = \"scheduled_latency_ms.first_token.p99\"\ndirection = \"max\"\ntarget = 50\nwarning = 80\ncritical = 100\n",
    )
    .unwrap();
    let file = two_users(&dir, "slow", 300);
    let out = dir.join("slow");
    let o = {
        loadgen(&[
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--accept-inconclusive",
        ])
    };
    let r = report(&out);
    let j = &r["slo"][0];
    assert_eq!(o.status.code(), Some(1), "{}", r["verdict_reasons"]);
    assert!(j["samples"].as_u64().unwrap() < 500, "{j}");
    assert!(
        j["interval"]["hi"].is_null(),
        "too few for an upper bound: {j}"
    );
    assert!(j["interval"]["lo"].as_f64().unwrap() > 250.0, "{j}");
    assert_eq!(j["level"], "critical", "{j}");
    assert_eq!(j["decided_by"], "lower", "{j}");
    let reasons = r["verdict_reasons"].to_string();
    assert!(
        reasons.contains("critical") && reasons.contains("interval's lower bound"),
        "{reasons}"
    );
    let console = String::from_utf8_lossy(&o.stderr);
    assert!(console.contains("decided by its lower bound"), "{console}");
    // Judged again from the saved files: the same verdict.
    let o = loadgen(&["report", out.to_str().unwrap(), "--accept-inconclusive"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(report(&out)["slo"][0]["level"], "critical");
}

/// Issue 26, items 2 and 4: a baseline of too few samples is never "no
/// regression"; a tenfold slowdown its known bounds already show is a
/// regression; `--out` folders are made.
#[test]
fn compare_calls_too_few_samples_inconclusive_and_still_sees_a_shown_regression() {
    let dir = temp_dir("ev-compare-few");
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"t\"\n[[objective]]\nname = \"first token p95\"\nmetric = \"scheduled_latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 10000\n",
    )
    .unwrap();
    let mut reports = Vec::new();
    for (name, first_ms) in [("base", 25), ("slower", 300)] {
        let file = two_users(&dir, name, first_ms);
        let out = dir.join(name);
        run_bin(&file, &out, &[]);
        let r = report(&out);
        assert!(
            r["scheduled_latency_ms"]["first_token"]["evidence"]["p99"]["hi"].is_null(),
            "{name}: a p99 of {} requests has no upper bound",
            r["requests"]["total"]
        );
        reports.push(out.join("report.json"));
    }
    let cmp = |current: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "compare",
            reports[0].to_str().unwrap(),
            current.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        loadgen(&args)
    };
    // The baseline against itself: the p99 rows cannot be compared.
    let out = dir.join("not").join("yet").join("made");
    let same = cmp(&reports[0], &out, &[]);
    let stderr = String::from_utf8_lossy(&same.stderr).into_owned();
    assert_eq!(same.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("INCONCLUSIVE")
            && stderr.contains("scheduled_latency_ms.first_token.p99")
            && !stderr.contains("No regression"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.starts_with("## ❌"), "{md}");
    assert!(
        md.contains("inconclusive: the baseline's interval is unbounded"),
        "{md}"
    );
    assert!(out.join("comparison.html").is_file());
    // Accepted: it passes, and the headline still names them.
    let accepted = cmp(&reports[0], &out, &["--accept-inconclusive"]);
    let stderr = String::from_utf8_lossy(&accepted.stderr).into_owned();
    assert_eq!(accepted.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("accepted by --accept-inconclusive"),
        "{stderr}"
    );
    // Twelve times slower: the current lower bound lies past the
    // baseline's value plus the tolerance: a regression, accepted or not.
    let slower = cmp(&reports[1], &out, &["--accept-inconclusive"]);
    let stderr = String::from_utf8_lossy(&slower.stderr).into_owned();
    let table = String::from_utf8_lossy(&slower.stdout).into_owned();
    assert_eq!(slower.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("REGRESSED"), "{stderr}");
    let p99 = table
        .lines()
        .find(|l| l.starts_with("| scheduled_latency_ms.first_token.p99 |"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(p99.contains("regressed"), "{p99}");
}

/// Issue 26, item 3: `--protocol` applies before the file is checked, so
/// a file's `[openai]` table goes with it; without one, the error names
/// the flag and what is missing.
#[test]
fn a_protocol_flag_is_checked_with_the_file() {
    let dir = temp_dir("ev-protocol-flag");
    let file = dir.join("o.toml");
    let text = "name = \"o\"\nduration = \"1s\"\nwarmup = \"0s\"\n[server]\nargs = [\"--profile\", \"fast\"]\n[load]\nmodel = \"closed\"\nusers = 2\n";
    std::fs::write(&file, format!("{text}[openai]\nmodel = \"m\"\n")).unwrap();
    let out = dir.join("out");
    let o = run_bin(&file, &out, &["--protocol", "openai-chat"]);
    let r = report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &r);
    assert_eq!(r["target"]["protocol"], "openai-chat");
    assert!(r["requests"]["ok"].as_u64().unwrap() > 0);
    // No [openai] table: a usage error naming the flag and the table.
    std::fs::write(&file, text).unwrap();
    let o = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--protocol",
        "openai-chat",
        "--dry-run",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--protocol") && stderr.contains("[openai]"),
        "{stderr}"
    );
}
