//! Evidence behind every verdict: percentiles with too few samples are
//! inconclusive and fail; runs can size themselves until they are
//! conclusive; `compare` tells run-to-run noise from a real slowdown.
//! Through the binary, against the reference server on 127.0.0.1.

use crate::support::{checked_report as report, loadgen, temp_dir, turn};
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
    let _turn = turn();
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
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(report(&out)["accept_inconclusive"], true);

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
    assert_eq!(o.status.code(), Some(0), "{}", r["verdict_reasons"]);
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
    let _turn = turn();
    let dir = temp_dir("ev-compare");
    let sizing = "min_requests = 600\nmax_duration = \"60s\"\n";
    let mut reports = Vec::new();
    for (name, first_ms) in [("base", 100), ("again", 100), ("slower", 130)] {
        let file = exact(&dir, name, first_ms, sizing);
        let out = dir.join(name);
        let o = loadgen(&[
            "run",
            file.to_str().unwrap(),
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
        ])
    };
    let same = cmp(&reports[1]);
    let table = String::from_utf8_lossy(&same.stdout).into_owned();
    assert_eq!(same.status.code(), Some(0), "{table}");
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
