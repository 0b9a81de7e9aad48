//! The soak benchmark's short version (the hour is `ci/bench/soak.sh`,
//! BENCHMARKS.md "Soak"): the `refserver` and `loadgen` binaries as two
//! processes at a steady 20 requests/s for 34 s, each one's resident memory
//! sampled every 2 s. Stated bound: from 8 s to 31 s of the run (after
//! the warm-up, before its end), the median of the last five samples of
//! neither process is more than 12 MB above the median of the first five
//! (alone, 2026-12-07: the server 18.5 -> 19.7 MB, the load generator
//! 78.7 -> 78.7 MB; samples move by about 5 MB around a median).
//! It runs alone: beside other tests its streams last longer, more are
//! open at once, and the memory they hold moved the medians by 23 MB in a
//! full suite (a steady load is the premise, not the machine's noise).
//! At 30 requests/s the load generator was still growing into its
//! steady state 20 s in (99 -> 106 MB): the rate stays at 20.

use crate::support::{checked_report, spawn_run, temp_dir};
use std::time::{Duration, Instant};

const GROWTH_MB: f64 = 12.0;

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

#[test]
fn a_steady_load_grows_neither_process() {
    let _turn = crate::support::turn();
    let dir = temp_dir("soak");
    let (server, port) = crate::support::refserver(&[
        "--profile",
        "fast",
        "--first-token-ms",
        "50",
        "--token-interval-ms",
        "10",
    ]);
    let scenario = dir.join("soak.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"soak\"\ntarget = \"http://127.0.0.1:{port}\"\nduration = \"34s\"\nwarmup = \"0s\"\n[load]\nmodel = \"open\"\nrate = 20.0\nmax_users = 100\n[request]\naudio = true\nrepeat_ratio = 0.6\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let mut loadgen = spawn_run(&scenario, &out, &["-q"], &[]);
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while loadgen.try_wait().unwrap().is_none() {
        if let (Some(s), Some(l)) = (rss_mb(server.0.id()), rss_mb(loadgen.id())) {
            samples.push((t0.elapsed().as_secs_f64(), s, l));
        }
        assert!(t0.elapsed() < Duration::from_secs(180), "the run overran");
        std::thread::sleep(Duration::from_secs(2));
    }
    let o = loadgen.wait_with_output().unwrap();
    let report = checked_report(&out);
    assert!(
        report["requests"]["ok"].as_u64().unwrap() > 600,
        "{}: {}",
        report["requests"],
        String::from_utf8_lossy(&o.stderr)
    );
    // The steady part: after the warm-up, before the end of the run (the
    // end holds the drain, goose's report and the final scrapes).
    let steady: Vec<_> = samples
        .iter()
        .filter(|s| s.0 >= 8.0 && s.0 <= 31.0)
        .collect();
    assert!(steady.len() >= 10, "{samples:?}");
    // Medians of the first and the last five samples: a sample lands
    // on a burst at times, a trend moves the median.
    let median = |v: &[&(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(|s| f(s)).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let (head, tail) = (&steady[..5], &steady[steady.len() - 5..]);
    let first = (head[0].0, median(head, |s| s.1), median(head, |s| s.2));
    let last = (tail[4].0, median(tail, |s| s.1), median(tail, |s| s.2));
    eprintln!(
        "soak: server {:.1} -> {:.1} MB, loadgen {:.1} -> {:.1} MB (medians of 5 samples) from {:.0} s to {:.0} s; samples (s, server MB, loadgen MB): {samples:.1?}",
        first.1, last.1, first.2, last.2, first.0, last.0
    );
    assert!(
        last.1 - first.1 <= GROWTH_MB,
        "the server grew from {:.1} to {:.1} MB: {samples:?}",
        first.1,
        last.1
    );
    assert!(
        last.2 - first.2 <= GROWTH_MB,
        "the load generator grew from {:.1} to {:.1} MB: {samples:?}",
        first.2,
        last.2
    );
}
