//! The load generator's fault matrix: one run of the binary against each
//! way a target can misbehave (`misbehaving.rs`), all at once. For each:
//! no panic, every request ends by its timeout or by its cause and is
//! classified, the process's peak memory stays under a stated bound, the
//! CSV has a row for every request counted, and the verdict is right.

use crate::misbehaving::{Misbehaves, misbehaving};
use crate::support::{checked_report, records, spawn_run, temp_dir};
use slo::record::Outcome;
use std::time::{Duration, Instant};

/// The request timeout of the runs here whose requests should time out.
const TIMEOUT_MS: u64 = 1000;
/// The request timeout of the runs that a size cap must end (the 8 MiB
/// event cap): far past the time to read that much, so the cap, not the
/// clock, decides. A debug build beside 13 other runs once took over a
/// second to read a 50 MB line's first 8 MiB, and timed out first.
const CAPPED_TIMEOUT_MS: u64 = 10_000;
/// Stated bound on the load generator's peak resident memory, whatever
/// the target sends (a 50 MB line, an event without end at loopback speed:
/// the scrapes of its monitoring endpoints included, which the first
/// version of this test found reading such a body whole, 1.8 GB).
const PEAK_RSS_MB: f64 = 200.0;

#[test]
fn every_way_a_target_misbehaves_is_classified_bounded_and_judged() {
    use Misbehaves as M;
    use Outcome as O;
    let dir = temp_dir("matrix");
    let cases: Vec<(M, &[Outcome])> = vec![
        (M::Silent, &[O::Timeout]),
        (M::HeadersOnly, &[O::Timeout]),
        (M::EndlessStream, &[O::Timeout]),
        (M::EndlessEvent, &[O::Malformed]),
        (M::HugeLine, &[O::Malformed]),
        (M::Garbage, &[O::Malformed]),
        (M::JsonBody, &[O::Malformed]),
        (M::CloseAfterHeaders, &[O::Truncated]),
        (M::DoneThenOpen, &[O::Ok]),
        (M::Status(500), &[O::HttpStatus]),
        (M::Status(502), &[O::HttpStatus]),
        (M::Overloaded, &[O::HttpStatus]),
        (M::Status(429), &[O::HttpStatus]),
        (M::Resets, &[O::Truncated, O::Ok]),
    ];
    let children: Vec<_> = cases
        .iter()
        .map(|(kind, _)| {
            let target = misbehaving(*kind);
            let name = format!("{kind:?}").replace(['(', ')'], "");
            let timeout = match kind {
                M::EndlessEvent | M::HugeLine => CAPPED_TIMEOUT_MS,
                _ => TIMEOUT_MS,
            };
            let scenario = dir.join(format!("{name}.toml"));
            std::fs::write(
                &scenario,
                format!(
                    "name = \"{name}\"\ntarget = \"{target}\"\nduration = \"2s\"\nwarmup = \"0s\"\n[load]\nmodel = \"closed\"\nusers = 2\n[request]\naudio = false\ntimeout = \"{timeout}ms\"\n"
                ),
            )
            .unwrap();
            let out = dir.join(&name);
            let child = spawn_run(&scenario, &out, &["-q"], &[]);
            (name, out, child, Instant::now())
        })
        .collect();
    for ((name, out, child, began), (_, expected)) in children.into_iter().zip(&cases) {
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        // 2 s of load, then at most one timeout of draining, and the files.
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{name}: the run took {:?}",
            began.elapsed()
        );
        let report = checked_report(&out);
        let rows = records(&out);
        assert!(!rows.is_empty(), "{name}");
        assert_eq!(
            rows.len() as u64,
            report["requests"]["total"].as_u64().unwrap(),
            "{name}: a CSV row for every request counted"
        );
        for r in &rows {
            assert!(expected.contains(&r.outcome), "{name}: {r:?}");
            assert_eq!(r.outcome.is_ok(), r.error.is_empty(), "{name}: {r:?}");
            if r.outcome == O::Timeout {
                // Ended by its timeout: not before it, not long after.
                let ms = r.end_us / 1000;
                assert!(
                    (TIMEOUT_MS..TIMEOUT_MS + 1500).contains(&ms),
                    "{name}: a timeout after {ms} ms"
                );
            }
        }
        for o in *expected {
            assert!(
                rows.iter().any(|r| r.outcome == *o),
                "{name}: no {o:?} among {} rows",
                rows.len()
            );
        }
        let peak = report["self_check"]["peak_rss_mb"].as_f64().unwrap();
        assert!(peak < PEAK_RSS_MB, "{name}: peak RSS {peak} MB");
        // The verdict: fail when nothing succeeded; exit code as the verdict.
        let fails = report["verdict"] == "fail";
        assert_eq!(
            o.status.code(),
            Some(if fails { 1 } else { 0 }),
            "{name}: {stderr}"
        );
        if !expected.contains(&O::Ok) {
            assert!(fails, "{name}");
            assert!(
                report["verdict_reasons"]
                    .to_string()
                    .contains("requests failed"),
                "{name}: {}",
                report["verdict_reasons"]
            );
        }
        eprintln!("{name}: {} rows, peak RSS {peak} MB", rows.len());
    }
}
