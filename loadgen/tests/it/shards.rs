//! A sharded run: four shard processes against one reference server,
//! started together by --start-at, merged by `loadgen merge`.

use crate::support::{BIN, loadgen, temp_dir};
use slo::record::RequestRecord;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The whole run's rate: each of 4 shards sends 3/s.
const RATE: f64 = 12.0;
/// A shard's first request at most this late (its goose users start after
/// the wait for --start-at: they got going 10-40 ms after it in debug
/// builds with optimized dependencies, 50-123 ms with unoptimized ones,
/// four shards at once; late by 1-68 ms once the clock was --start-at).
const START_TOLERANCE: Duration = Duration::from_millis(750);

fn records(dir: &Path) -> Vec<RequestRecord> {
    csv::Reader::from_path(dir.join("requests.csv"))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

fn report(dir: &Path) -> serde_json::Value {
    crate::support::checked_report(dir)
}

fn ok(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exact nearest-rank percentile of raw values.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_merge_into_one_run_exactly_and_a_missing_one_fails_it() {
    let _turn = crate::support::turn();
    let dir = temp_dir("shards");
    let target =
        crate::support::reference_server(&["--first-token-ms", "50", "--token-interval-ms", "5"])
            .await;
    let slo = dir.join("slo.toml");
    std::fs::write(
        &slo,
        "name = \"shards\"\n[[objective]]\nname = \"first token p50\"\nmetric = \"scheduled_latency_ms.first_token.p50\"\ndirection = \"max\"\ntarget = 2000\n[[objective]]\nname = \"success\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 99\n",
    )
    .unwrap();
    let scenario = dir.join("shards.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"shards\"\nduration = \"6s\"\nwarmup = \"1s\"\nseed = 42\nslo = \"slo.toml\"\ntarget = \"http://{}\"\n[load]\nmodel = \"open\"\nrate = {RATE}\n[request]\naudio = false\n",
            target.addr
        ),
    )
    .unwrap();
    let out = dir.join("run");
    let (outputs, start_at): (Vec<Output>, SystemTime) = tokio::task::block_in_place(|| {
        // Set once it is this test's turn: waiting for it takes a while.
        let start_at = SystemTime::now() + Duration::from_secs(3);
        let at = humantime::format_rfc3339_millis(start_at).to_string();
        let children: Vec<_> = (0..4)
            .map(|i| {
                let mut c = Command::new(BIN);
                c.args([
                    "run",
                    scenario.to_str().unwrap(),
                    "-q",
                    "--start-at",
                    &at,
                    "--out",
                ])
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
                // Shard 3 as an Indexed Job's pod runs it.
                if i == 3 {
                    c.args(["--shards", "4"]).env("JOB_COMPLETION_INDEX", "3");
                } else {
                    c.args(["--shard", &format!("{i}/4")]);
                }
                c.spawn().unwrap()
            })
            .collect();
        let outputs = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        (outputs, start_at)
    });
    let mut zeros = Vec::new();
    let mut all_rows = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        // A whole shard judges nothing: exit 0, verdict not_judged.
        assert_eq!(o.status.code(), Some(0), "shard {i}: {}", ok(o));
        let shard_dir = out.join(format!("shard-{i}"));
        let r = report(&shard_dir);
        assert_eq!(r["verdict"], "not_judged", "shard {i}");
        assert_eq!(r["slo"].as_array().unwrap().len(), 0, "shard {i} judged");
        assert_eq!(r["shard"]["index"], i, "shard {i}");
        assert_eq!(r["shard"]["count"], 4);
        assert_eq!(r["load"]["model"]["rate"], RATE / 4.0);
        assert_eq!(r["shard"]["whole_load"]["rate"], RATE);
        // The shard's clock is --start-at itself (to the microsecond, give
        // or take the wall clock's reading), so the shards' schedules
        // interleave whenever each process got going.
        let zero = r["shard"]["zero_unix_us"].as_u64().unwrap();
        let at_us = start_at.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64;
        assert!(
            zero.abs_diff(at_us) < 2_000,
            "shard {i}: zero {zero}, --start-at {at_us}"
        );
        zeros.push(zero);
        // Its first request (at i/4 of the spacing after --start-at), late
        // by the time its users took to start.
        let rows = records(&shard_dir);
        let first = rows.iter().min_by_key(|r| r.start_us).unwrap();
        let lag = Duration::from_micros(first.lateness_us);
        eprintln!(
            "shard {i}: first request {lag:?} late, {} µs after --start-at",
            first.start_us
        );
        assert!(lag <= START_TOLERANCE, "shard {i}: {lag:?} late");
        // 1/4 of the rate: evenly spaced at 3/s over 7 s (warm-up included).
        assert!(
            (20..=22).contains(&rows.len()),
            "shard {i}: {} requests at {} per s for 7 s",
            rows.len(),
            RATE / 4.0
        );
        all_rows.push(rows);
    }
    // Each shard its own client ids and its own prompts.
    let ids: std::collections::BTreeSet<&str> = all_rows
        .iter()
        .flatten()
        .map(|r| r.client_id.as_str())
        .collect();
    assert_eq!(ids.len(), all_rows.iter().map(Vec::len).sum::<usize>());

    let merged = dir.join("merged");
    let o = loadgen(&[
        "merge",
        out.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", ok(&o));
    let m = report(&merged);
    assert_eq!(m["verdict"], "pass", "{}", m["verdict_reasons"]);
    assert_eq!(m["shards"].as_array().unwrap().len(), 4);
    // Counts are the sums.
    let sum = |key: &str| -> u64 {
        (0..4)
            .map(|i| {
                report(&out.join(format!("shard-{i}")))["requests"][key]
                    .as_u64()
                    .unwrap()
            })
            .sum()
    };
    assert_eq!(m["requests"]["total"].as_u64().unwrap(), sum("total"));
    assert_eq!(m["requests"]["ok"].as_u64().unwrap(), sum("ok"));
    // The shards' starts interleave into the whole rate's even spacing.
    let base = *zeros.iter().min().unwrap();
    let mut starts: Vec<u64> = all_rows
        .iter()
        .zip(&zeros)
        .flat_map(|(rows, z)| {
            rows.iter()
                .map(move |r| r.scheduled_us.unwrap() + (z - base))
        })
        .collect();
    starts.sort_unstable();
    let gap = 1e6 / RATE;
    let worst = starts
        .windows(2)
        .map(|w| ((w[1] - w[0]) as f64 - gap).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "merged arrivals: {} starts, worst gap error {:.1} ms",
        starts.len(),
        worst / 1000.0
    );
    assert!(
        worst < gap / 2.0,
        "starts not interleaved: {worst} µs off {gap} µs"
    );

    // Percentiles: those of every shard's raw rows together, to the
    // histograms' precision (3 significant digits: within 0.1 %).
    let mut ft: Vec<u64> = all_rows
        .iter()
        .flatten()
        .filter(|r| r.outcome.is_ok() && !r.warmup)
        .map(|r| r.first_token_us.unwrap() + r.lateness_us)
        .collect();
    ft.sort_unstable();
    assert_eq!(
        m["scheduled_latency_ms"]["first_token"]["count"]
            .as_u64()
            .unwrap(),
        ft.len() as u64
    );
    for (key, q) in [("p50", 0.50), ("p95", 0.95), ("p99", 0.99)] {
        let exact = nearest_rank(&ft, q) as f64 / 1000.0;
        let merged_ms = m["scheduled_latency_ms"]["first_token"][key]
            .as_f64()
            .unwrap();
        assert!(
            (merged_ms - exact).abs() <= exact * 0.001 + 0.001,
            "{key}: merged {merged_ms} ms, raw rows {exact} ms"
        );
    }
    // The merged folder is a run like any: rebuilt from its own CSV and
    // interval log by one process, every figure and the verdict are the same.
    let copy = dir.join("union");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["requests.csv", "latency.hlog", "report.json"] {
        std::fs::copy(merged.join(f), copy.join(f)).unwrap();
    }
    let o = loadgen(&["report", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", ok(&o));
    let u = report(&copy);
    for key in [
        "verdict",
        "requests",
        "latency_ms",
        "scheduled_latency_ms",
        "slo",
        "timeseries",
    ] {
        assert_eq!(
            u[key], m[key],
            "{key} differs rebuilt from the merged files"
        );
    }
    // The merged interval log holds every measured first token.
    let log = std::fs::read(merged.join("latency.hlog")).unwrap();
    let in_log: u64 = loadgen::recorder::intervals(&log)
        .filter(|h| h.tag().map(|t| t.as_str()) == Some("first_token"))
        .map(|h| {
            loadgen::recorder::decode(&h, Path::new("latency.hlog"))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        in_log,
        m["latency_ms"]["first_token"]["count"].as_u64().unwrap()
    );

    // A missing shard fails the merged verdict, and says which.
    let three = dir.join("three");
    let shard = |i: u32| out.join(format!("shard-{i}")).display().to_string();
    let o = loadgen(&[
        "merge",
        &shard(0),
        &shard(1),
        &shard(3),
        "--out",
        three.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", ok(&o));
    let t = report(&three);
    assert_eq!(t["verdict"], "fail");
    assert!(
        t["verdict_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("shard 2 of 4 is missing")),
        "{}",
        t["verdict_reasons"]
    );
    // So does a shard the run was told of and never got (--shards).
    let o = loadgen(&[
        "merge",
        out.to_str().unwrap(),
        "--shards",
        "5",
        "--out",
        dir.join("five").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", ok(&o));
    assert!(ok(&o).contains("shard 4 of 5 is missing"), "{}", ok(&o));
}

#[test]
fn shard_flags_that_cannot_work_are_refused_before_anything_runs() {
    let dir = temp_dir("shard-flags");
    let scenario = dir.join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"s\"\nduration = \"1s\"\ntarget = \"http://127.0.0.1:9\"\n[load]\nmodel = \"closed\"\nusers = 2\n",
    )
    .unwrap();
    let s = scenario.to_str().unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    // Flags, environment, what the error says.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 6] = [
        (&["--shard", "4/4"], &[], "the index counts from 0"),
        (&["--shard", "two"], &[], "is not I/N"),
        (
            &["--shard", "2/3"],
            &[],
            "2 users cannot be split among 3 shards",
        ),
        (
            &["--shards", "2"],
            &[],
            "--shards 2 needs the shard's index",
        ),
        (&[], &[("JOB_COMPLETION_INDEX", "1")], "no shard count is"),
        (
            &["--shard", "0/2", "--start-at", "2020-01-01T00:00:00Z"],
            &[],
            "--start-at 2020-01-01T00:00:00.000Z was",
        ),
    ];
    for (args, env, says) in cases {
        let r = Command::new(BIN)
            .args(["run", s, "-q", "--out", o])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Shards of the embedded server would each load their own server.
    let embedded = dir.join("embedded.toml");
    std::fs::write(
        &embedded,
        "name = \"e\"\nduration = \"1s\"\n[load]\nmodel = \"closed\"\nusers = 2\n",
    )
    .unwrap();
    let r = loadgen(&[
        "run",
        embedded.to_str().unwrap(),
        "--shard",
        "0/2",
        "--dry-run",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("shards must load one target"));
    // A capacity search decides on the whole load: never sharded.
    let r = loadgen(&["capacity", s, "--shard", "0/2"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot be sharded"));
    // Merging what is not a sharded run's output is an error too.
    let r = loadgen(&["merge", dir.to_str().unwrap(), "--out", o]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("nothing to merge"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}
