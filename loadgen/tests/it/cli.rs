//! The `loadgen` binary: exit codes, errors that name the file, and an
//! interrupted run that still writes consistent files.

use crate::support::{BIN, records, scenario, temp_dir};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `--duration`, `--warmup` and `--users` override the file's, as the
/// dry run's plan shows; the file itself is not changed.
#[test]
fn flags_override_the_files_duration_warm_up_and_load() {
    let dir = temp_dir("cli-flags");
    let file = scenario(
        &dir,
        "name = \"x\"\nduration = \"5s\"\nwarmup = \"10s\"\n[load]\nmodel = \"open\"\nrate = 5.0\n",
    );
    let plan = |flags: &[&str]| {
        let o = Command::new(BIN)
            .args(["run", file.to_str().unwrap(), "--dry-run"])
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let p = plan(&[]);
    assert!(p.contains("duration: 5s after a 10s warm-up"), "{p}");
    assert!(p.contains("load: open model, 5 requests/s"), "{p}");
    let p = plan(&["--duration", "7s", "--warmup", "0s", "--users", "3"]);
    assert!(p.contains("duration: 7s after a 0s warm-up"), "{p}");
    assert!(p.contains("load: closed model, 3 users"), "{p}");
}

#[test]
fn usage_errors_exit_2_and_name_what_is_wrong() {
    let dir = temp_dir("cli");
    let bad = scenario(
        &dir,
        "name = \"x\"\nduration = \"5s\"\n[load]\nmodel = \"open\"\nrate = 5.0\nusers = 3\n",
    );
    let out = Command::new(BIN)
        .args(["run", bad.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scenario.toml:6") && err.contains("load.users"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args(["run", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));

    let good = scenario(
        &dir,
        "name = \"x\"\nduration = \"5s\"\n[load]\nmodel = \"closed\"\nusers = 1\n",
    );
    let out = Command::new(BIN)
        .args(["run", good.to_str().unwrap(), "--users", "2", "--rate", "3"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--users and --rate exclude each other"
    );
    let out = Command::new(BIN)
        .args(["run", good.to_str().unwrap(), "--rate", "-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));

    let help = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--target",
        "--out",
        "--duration",
        "--users",
        "--rate",
        "--slo",
        "--fail-on",
        "--quiet",
    ] {
        assert!(help.contains(flag), "--help documents {flag}");
    }
}

/// Starts a long run, stops it with `signal` once requests are on disk,
/// and checks what it left.
fn interrupted_run(signal: &str) {
    let dir = temp_dir(&format!("interrupt-{signal}"));
    let out = dir.join("out");
    let text = "name = \"long\"\nduration = \"60s\"\nwarmup = \"1s\"\n[server]\nargs = [\"--profile\", \"fast\", \"--token-interval-ms\", \"2\"]\n[load]\nmodel = \"closed\"\nusers = 3\n[request]\naudio = false\n";
    let file = scenario(&dir, text);
    let mut child = Command::new(BIN)
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while records_on_disk(&out) < 20 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no requests recorded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {}", child.id())])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(40),
        "stopped early, not after 60 s"
    );
    assert_eq!(
        status.code(),
        Some(1),
        "an interrupted run cannot pass: {stderr}"
    );
    assert!(
        !stderr.contains("\x1b[2K"),
        "no progress line without a terminal"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert!(
        report["interrupted"].as_str().unwrap().contains(signal),
        "{}",
        report["interrupted"]
    );
    assert_eq!(report["verdict"], "fail");
    let rows = records(&out);
    let counted = report["requests"]["total"].as_u64().unwrap()
        + report["requests"]["warmup_excluded"].as_u64().unwrap();
    assert_eq!(
        rows.len() as u64,
        counted,
        "CSV rows = requests counted in report.json"
    );
    assert!(out.join("latency.hlog").exists() && out.join("goose.html").exists());
}

fn records_on_disk(out: &std::path::Path) -> usize {
    std::fs::read_to_string(out.join("requests.csv"))
        .map_or(0, |s| s.lines().count().saturating_sub(1))
}

#[test]
fn sigterm_ends_the_run_and_keeps_what_it_measured() {
    interrupted_run("TERM");
}

#[test]
fn ctrl_c_ends_the_run_and_keeps_what_it_measured() {
    interrupted_run("INT");
}

#[test]
fn on_a_terminal_the_progress_line_is_drawn() {
    let _turn = crate::support::turn();
    // `script` gives the run a pseudo-terminal, as a person's shell would.
    let dir = temp_dir("tty");
    let out = dir.join("out");
    let file = scenario(
        &dir,
        "name = \"tty\"\nduration = \"3s\"\n[server]\nargs = [\"--profile\", \"fast\"]\n[load]\nmodel = \"closed\"\nusers = 1\n[request]\naudio = false\n",
    );
    // The live view is the default on a terminal; the line is asked for
    // (live_view.rs tests the view).
    let cmd = format!(
        "{BIN} run {} --out {} --no-tui",
        file.display(),
        out.display()
    );
    let typescript = dir.join("typescript");
    let status = Command::new("script")
        .args(["-qec", &cmd, typescript.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("script (util-linux) runs");
    assert!(status.success());
    let screen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        screen.contains("\x1b[2K")
            && screen.contains("requests")
            && screen.contains("p95 first token"),
        "{screen}"
    );
    // The summary in colour, its words still there.
    assert!(
        screen.contains("\x1b[1m\x1b[32mPASS\x1b[0m tty: "),
        "{screen}"
    );
    assert!(
        screen.contains("Self-check: \x1b[32mtrustworthy"),
        "{screen}"
    );
}
