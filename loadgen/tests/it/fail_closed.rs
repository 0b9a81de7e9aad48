//! The gate fails closed (README "When the gate fails"): each rule end to
//! end through the `loadgen` binary and its exit code, against the
//! reference server's fault injection or a small misbehaving server
//! written here, over real sockets on 127.0.0.1.

use crate::misbehaving::{Misbehaves, misbehaving};
use crate::support::{
    BIN, checked_report as report, records, scenario, signal, spawn_run, temp_dir,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs the binary with `args` (after `run SCENARIO --out OUT --quiet`).
fn run(file: &Path, out: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["run", file.to_str().unwrap(), "--out"])
        .arg(out)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

fn reasons(r: &Value) -> String {
    r["verdict_reasons"].to_string()
}

fn slo_file(dir: &Path, objectives: &str) -> PathBuf {
    let p = dir.join("slo.toml");
    std::fs::write(&p, format!("name = \"t\"\n{objectives}")).unwrap();
    p
}

const FIRST_AUDIO: &str = "[[objective]]\nname = \"first audio p95\"\nmetric = \"scheduled_latency_ms.first_audio.p95\"\ndirection = \"max\"\ntarget = 2000\n";

#[test]
fn a_latency_never_measured_is_null_and_fails_unless_it_may_be_absent() {
    let dir = temp_dir("fc-no-audio");
    let target = misbehaving(Misbehaves::NoAudio);
    let file = scenario(
        &dir,
        &format!(
            "name = \"noaudio\"\ntarget = \"{target}\"\nduration = \"2s\"\n[load]\nmodel = \"closed\"\nusers = 2\n"
        ),
    );
    let slo = slo_file(&dir, FIRST_AUDIO);
    let out = dir.join("a");
    let o = run(&file, &out, &["--slo", slo.to_str().unwrap()]);
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
    assert!(r["requests"]["ok"].as_u64().unwrap() > 5);
    assert!(
        r["latency_ms"]["first_audio"]["p95"].is_null(),
        "absent is not 0"
    );
    assert_eq!(r["latency_ms"]["first_audio"]["count"], 0);
    assert_eq!(r["slo"][0]["level"], "no_data");
    assert!(reasons(&r).contains("was not measured"), "{}", reasons(&r));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("—"),
        "the Markdown report shows absent figures as —"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("p95 0 ms"), "{stderr}");

    // The same objective marked as one the target may lack: it passes,
    // and the report still says it was not measured.
    let optional = slo_file(&dir, &format!("{FIRST_AUDIO}required = false\n"));
    let out = dir.join("b");
    let o = run(&file, &out, &["--slo", optional.to_str().unwrap()]);
    let r = report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &r);
    assert_eq!(r["slo"][0]["level"], "no_data");
    assert_eq!(r["slo"][0]["required"], false);

    // Or the whole run relaxed, which the report shows.
    let out = dir.join("c");
    let o = run(
        &file,
        &out,
        &["--slo", slo.to_str().unwrap(), "--allow-missing"],
    );
    let r = report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &r);
    assert_eq!(r["allow_missing"], true);
}

#[test]
fn a_misspelt_metric_is_a_usage_error_with_the_nearest_path() {
    let dir = temp_dir("fc-typo");
    let file = scenario(
        &dir,
        "name = \"typo\"\nduration = \"1s\"\n[load]\nmodel = \"closed\"\nusers = 1\n",
    );
    let slo = slo_file(
        &dir,
        "[[objective]]\nname = \"ft\"\nmetric = \"latency_ms.frist_token.p95\"\ndirection = \"max\"\ntarget = 1\n",
    );
    let o = run(&file, &dir.join("out"), &["--slo", slo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("slo.toml:4") && err.contains("did you mean \"latency_ms.first_token.p95\""),
        "{err}"
    );
    // Server-side paths are checked against the server's view.
    let slo = slo_file(
        &dir,
        "[[objective]]\nname = \"kb\"\nmetric = \"delta.kb_hitrate\"\nsource = \"server\"\ndirection = \"min\"\ntarget = 1\n",
    );
    let o = run(&file, &dir.join("out"), &["--slo", slo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("delta.kb_hit_rate"));
}

#[test]
fn corrected_and_server_objectives_without_data_fail() {
    let dir = temp_dir("fc-missing");
    // An open-model scenario turned closed by --users: no corrected figures.
    let file = scenario(
        &dir,
        "name = \"m\"\nduration = \"2s\"\n[server]\nargs = [\"--profile\", \"fast\"]\n[load]\nmodel = \"open\"\nrate = 5.0\n[request]\naudio = false\n",
    );
    let slo = slo_file(
        &dir,
        "[[objective]]\nname = \"corrected\"\nmetric = \"latency_ms.first_token.corrected.p95\"\ndirection = \"max\"\ntarget = 5000\n",
    );
    let out = dir.join("closed");
    let o = run(
        &file,
        &out,
        &["--slo", slo.to_str().unwrap(), "--users", "2"],
    );
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
    assert_eq!(r["slo"][0]["level"], "no_data");

    // A server-side objective against a target without the endpoints.
    let target = misbehaving(Misbehaves::NoAudio);
    let slo = slo_file(
        &dir,
        "[[objective]]\nname = \"server KB\"\nmetric = \"delta.kb_hit_rate\"\nsource = \"server\"\ndirection = \"min\"\ntarget = 10\n",
    );
    let out = dir.join("server");
    let o = run(
        &file,
        &out,
        &[
            "--slo",
            slo.to_str().unwrap(),
            "--target",
            &target,
            "--users",
            "1",
        ],
    );
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
    assert_eq!(r["server"]["available"], false);
    assert_eq!(r["slo"][0]["level"], "no_data");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("delta.kb_hit_rate was not measured and is required"),
        "{junit}"
    );
}

#[test]
fn without_an_slo_file_the_default_policy_and_severity_judge() {
    let dir = temp_dir("fc-default");
    let file = scenario(
        &dir,
        "name = \"errs\"\nduration = \"3s\"\n[server]\nargs = [\"--profile\", \"fast\", \"--fail-openai\", \"0.33\", \"--seed\", \"7\"]\n[load]\nmodel = \"closed\"\nusers = 3\n[request]\naudio = false\n",
    );
    let out = dir.join("out");
    let o = run(&file, &out, &[]);
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
    assert!(r["slo_file"].is_null());
    assert_eq!(r["slo"][0]["name"], "success rate");
    assert_eq!(r["severity"], "P1");
    assert!(reasons(&r).contains("severity P1"), "{}", reasons(&r));
    // junit.xml carries the verdict: a FAIL run always has a failure.
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"verdict\"") && junit.contains("type=\"verdict\""),
        "{junit}"
    );
}

#[test]
fn dropped_arrivals_count_and_survive_a_rebuild() {
    let dir = temp_dir("fc-dropped");
    // 40 arrivals/s for 2 users that each hold a request ~1 s: most are dropped.
    let file = scenario(
        &dir,
        "name = \"drops\"\nduration = \"3s\"\n[server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"900\"]\n[load]\nmodel = \"open\"\nrate = 40.0\nmax_users = 2\nmax_lateness = \"50ms\"\n[request]\naudio = false\n",
    );
    let out = dir.join("out");
    let o = run(&file, &out, &[]);
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
    let q = &r["requests"];
    let dropped = q["dropped"].as_u64().unwrap();
    assert!(dropped > 50, "{q}");
    assert!(q["success_rate"].as_f64().unwrap() < 20.0, "{q}");
    assert_eq!(r["errors_by_cause"]["dropped"].as_u64(), Some(dropped));
    let rows = records(&out);
    assert_eq!(
        rows.iter()
            .filter(|r| r.outcome == slo::record::Outcome::Dropped && !r.warmup)
            .count() as u64,
        dropped,
        "every dropped arrival is a CSV row"
    );
    // `loadgen report DIR` rebuilds the same figures from the CSV.
    let o = Command::new(BIN)
        .args(["report"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let again = report(&out);
    assert_eq!(again["requests"], r["requests"]);
}

#[test]
fn a_request_ends_at_done_even_if_the_connection_stays_open() {
    let dir = temp_dir("fc-open");
    let target = misbehaving(Misbehaves::DoneThenOpen);
    let file = scenario(
        &dir,
        &format!(
            "name = \"open\"\ntarget = \"{target}\"\nduration = \"3s\"\n[load]\nmodel = \"closed\"\nusers = 2\n[request]\naudio = false\ntimeout = \"10s\"\n"
        ),
    );
    let out = dir.join("out");
    let o = run(&file, &out, &[]);
    let r = report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &r);
    // Each user goes on at once after `done`: many requests, not one per user.
    assert!(
        r["requests"]["ok"].as_u64().unwrap() >= 20,
        "{}",
        r["requests"]
    );
    let slowest = records(&out).iter().map(|x| x.end_us).max().unwrap();
    assert!(
        slowest < 2_000_000,
        "a request waited {slowest} µs: not for its timeout"
    );
}

#[test]
fn an_endless_event_and_a_huge_line_are_malformed_not_memory() {
    let dir = temp_dir("fc-caps");
    for (kind, cap) in [
        (Misbehaves::EndlessEvent, "max_event_bytes = 1048576\n"),
        // The documented default cap (8 MiB) against a 50 MB line.
        (Misbehaves::HugeLine, ""),
    ] {
        let target = misbehaving(kind);
        let file = scenario(
            &dir,
            &format!(
                "name = \"caps\"\ntarget = \"{target}\"\nduration = \"1s\"\n[load]\nmodel = \"closed\"\nusers = 1\n[request]\naudio = false\ntimeout = \"20s\"\n{cap}"
            ),
        );
        let out = dir.join("out");
        let o = run(&file, &out, &[]);
        let r = report(&out);
        assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
        assert!(
            r["errors_by_cause"]["malformed"].as_u64().unwrap() >= 1,
            "{r}"
        );
        let rows = records(&out);
        assert!(
            rows.iter().all(|x| x.error.contains("max_event_bytes")),
            "{:?}",
            rows.iter().map(|x| &x.error).collect::<Vec<_>>()
        );
        let slowest = rows.iter().map(|x| x.end_us).max().unwrap();
        assert!(
            slowest < 10_000_000,
            "ended at the cap, not at the 20 s timeout: {slowest} µs"
        );
    }
}

/// Whatever the phase, a signal makes the run interrupted (exit 1): the
/// assertion holds on a busy machine, so this runs beside other tests.
#[test]
fn a_signal_in_any_phase_interrupts() {
    let dir = temp_dir("fc-signals");
    // SIGTERM while in-flight requests outlast the duration (the drain).
    let target = misbehaving(Misbehaves::Slow);
    let file = scenario(
        &dir,
        &format!(
            "name = \"drain\"\ntarget = \"{target}\"\nduration = \"1s\"\n[load]\nmodel = \"closed\"\nusers = 2\n[request]\naudio = false\ntimeout = \"30s\"\n"
        ),
    );
    let out = dir.join("drain");
    let mut child = spawn_run(&file, &out, &[], &[]);
    std::thread::sleep(Duration::from_secs(4));
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let r = report(&out);
    assert!(
        r["interrupted"].as_str().unwrap().contains("SIGTERM"),
        "{}",
        r["interrupted"]
    );

    // SIGINT during the ramp-up.
    let file = scenario(
        &dir,
        "name = \"ramp\"\nduration = \"30s\"\n[server]\nargs = [\"--profile\", \"fast\"]\n[load]\nmodel = \"closed\"\nusers = 40\nramp_up = \"20s\"\n[request]\naudio = false\n",
    );
    let out = dir.join("ramp");
    let mut child = spawn_run(&file, &out, &[], &[]);
    let t0 = Instant::now();
    while std::fs::read_to_string(out.join("requests.csv")).map_or(0, |s| s.lines().count()) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&child, "INT");
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(
        report(&out)["interrupted"]
            .as_str()
            .unwrap()
            .contains("SIGINT")
    );
}

/// A goose test plan that ends before the duration is a normal end, not
/// an interruption: the run passes.
#[test]
fn a_test_plan_shorter_than_the_duration_is_a_normal_end() {
    let dir = temp_dir("fc-plan");
    let file = scenario(
        &dir,
        "name = \"plan\"\nduration = \"30s\"\n[server]\nargs = [\"--profile\", \"fast\"]\n[load]\nmodel = \"closed\"\ntest_plan = \"2,1s;2,2s;0,1s\"\n[request]\naudio = false\n",
    );
    let out = dir.join("plan");
    let child = spawn_run(&file, &out, &[], &[]);
    let o = child.wait_with_output().unwrap();
    let r = report(&out);
    assert!(r["interrupted"].is_null(), "{}", r["interrupted"]);
    crate::support::passed_unless_distrusted(o.status.code(), &r);
}

#[test]
fn a_stalled_load_generator_flags_its_requests_and_is_not_trusted() {
    let dir = temp_dir("fc-stall");
    let file = scenario(
        &dir,
        "name = \"stall\"\nduration = \"4s\"\nwarmup = \"1s\"\n[server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"100\"]\n[load]\nmodel = \"closed\"\nusers = 10\n[request]\naudio = false\n",
    );
    let out = dir.join("out");
    // The hook blocks every runtime worker for 1.5 s, 2.5 s into the run.
    let child = spawn_run(
        &file,
        &out,
        &[],
        &[(loadgen::client_probe::StallHook::VAR, "2500ms,1500ms")],
    );
    let o = child.wait_with_output().unwrap();
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
    let check = &r["self_check"];
    assert_eq!(check["trustworthy"], false, "{check}");
    assert!(
        check["longest_stall_ms"].as_f64().unwrap() >= 1000.0,
        "{check}"
    );
    assert!(reasons(&r).contains("stalled"), "{}", reasons(&r));
    let rows = records(&out);
    let flagged = rows
        .iter()
        .filter(|x| x.client_stall_us > slo::record::STALL_FLAG_US && !x.warmup)
        .count() as u64;
    assert!(flagged >= 5, "{flagged} requests flagged");
    assert_eq!(r["requests"]["client_stalled"].as_u64(), Some(flagged));
    // The per-second series starts after the warm-up.
    assert!(r["timeseries"][0]["t"].as_u64().unwrap() >= 1);
}

#[test]
fn capacity_never_holds_on_a_target_that_only_answers_503() {
    let dir = temp_dir("fc-capacity");
    let target = misbehaving(Misbehaves::Overloaded);
    let file = scenario(
        &dir,
        &format!(
            "name = \"cap\"\ntarget = \"{target}\"\nduration = \"1s\"\n[load]\nmodel = \"open\"\nrate = 1.0\n[request]\naudio = false\n"
        ),
    );
    // An SLO file that names latency objectives only.
    let slo = slo_file(
        &dir,
        "[[objective]]\nname = \"ft\"\nmetric = \"scheduled_latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 1000\nrequired = false\n",
    );
    let out = dir.join("out");
    let o = Command::new(BIN)
        .args(["capacity", file.to_str().unwrap(), "--out"])
        .arg(&out)
        .args([
            "--slo",
            slo.to_str().unwrap(),
            "--quiet",
            "--step-duration",
            "1s",
            "--step-warmup",
            "0s",
            "--start-rps",
            "8",
            "--min-rps",
            "4",
            "--max-rps",
            "64",
            "--expected-rps",
            "1",
            "--warm",
            "0s",
        ])
        .output()
        .unwrap();
    let cap: Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
    // Nothing succeeded at the start rate: capacity is undefined (exit 3),
    // never a small number, and no lower rate is tried hoping for one.
    assert_eq!(o.status.code(), Some(3), "{cap}");
    assert_eq!(cap["max_sustainable"], Value::Null, "{cap}");
    let steps = cap["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["outcome"] == "breached"), "{cap}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("capacity: undefined"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        steps
            .iter()
            .all(|s| s["offered_rps"].as_f64().unwrap() <= 8.0)
            && steps.len() == 1,
        "never climbed past a failing step: {cap}"
    );
}

#[test]
fn compare_fails_on_a_metric_missing_from_the_current_report() {
    let dir = temp_dir("fc-compare");
    let base = dir.join("base.json");
    let cur = dir.join("cur.json");
    std::fs::write(
        &base,
        r#"{"scheduled_latency_ms":{"first_audio":{"p95":900.0}},"requests":{"success_rate":100.0}}"#,
    )
    .unwrap();
    std::fs::write(
        &cur,
        r#"{"scheduled_latency_ms":{"first_audio":{"p95":null}},"requests":{"success_rate":100.0}}"#,
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["compare"])
        .args([&base, &cur])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("missing in the current report"));
    let o = Command::new(BIN)
        .args(["compare"])
        .args([&base, &cur])
        .args(["--tolerance", "requests.total=1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(":max"));
}

/// Issue 32: a run that sizes itself (min_requests, until_conclusive)
/// against a target whose every request fails stops sizing itself at the
/// end of its duration, instead of waiting for its cap, and fails naming
/// what the target answered.
#[test]
fn a_run_whose_requests_all_fail_stops_sizing_itself() {
    let dir = temp_dir("fc-sizing-503");
    let target = misbehaving(Misbehaves::Overloaded);
    let file = scenario(
        &dir,
        &format!(
            "name = \"sized\"\ntarget = \"{target}\"\nduration = \"2s\"\nwarmup = \"0s\"\nmin_requests = 500\nuntil_conclusive = true\nmax_duration = \"60s\"\n[load]\nmodel = \"open\"\nrate = 5.0\n[request]\naudio = false\n"
        ),
    );
    let slo = slo_file(
        &dir,
        "[[objective]]\nname = \"ft\"\nmetric = \"scheduled_latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 1000\n",
    );
    let out = dir.join("out");
    let t0 = Instant::now();
    let o = run(&file, &out, &["--slo", slo.to_str().unwrap()]);
    let took = t0.elapsed();
    let r = report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", reasons(&r));
    // Its duration and a second or two of checks, never the 60 s cap.
    let measured = r["measured_s"].as_f64().unwrap();
    assert!(measured < 6.0, "measured {measured} s");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        reasons(&r).contains("every request failed")
            && reasons(&r).contains("HTTP 503 from the target"),
        "{}",
        reasons(&r)
    );
    assert!(r["errors_by_status"]["503"].as_u64().unwrap() > 0, "{r}");
}
