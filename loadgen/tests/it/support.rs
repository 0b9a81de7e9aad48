//! Helpers: scenario files in a temp folder, runs, the CSV read back.

use loadgen::RunArgs;
use loadgen::plan::Plan;
use slo::record::RequestRecord;
use slo::report::Report;
use std::path::{Path, PathBuf};
pub use testkit::Scratch;

/// The `loadgen` binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

/// Starts `loadgen run FILE --out OUT ARGS...` with `env`, its standard
/// error piped (to read after it ends).
pub fn spawn_run(
    file: &Path,
    out: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Child {
    std::process::Command::new(BIN)
        .args(["run", file.to_str().unwrap(), "--out"])
        .arg(out)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `SIG` (TERM, INT) to `child`.
pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `loadgen run SCENARIO --out OUT -q ARGS...`, waited for.
pub fn run_bin(scenario: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "-q", "--out"])
        .arg(out)
        .args(args)
        .output()
        .expect("loadgen runs")
}

/// Runs the binary and waits for it.
pub fn loadgen(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("loadgen runs")
}

/// The judged objective `name` of a report's `slo` list.
pub fn judged<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["slo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {}", report["slo"]))
}

/// A run's report.json, checked against the committed schema.
pub fn checked_report(out: &Path) -> serde_json::Value {
    assert_valid_report(&out.join("report.json"));
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

/// The verdict of a run whose subject is neither timing nor the
/// self-check (a wire format, TLS, a prompt file, a merge), which runs
/// beside other tests: PASS with exit 0, or, when the load generator did
/// not trust its own timing on the shared machine, FAIL with exit 1 for
/// that reason alone (every reason the self-check's, as `run` and `merge`
/// word it). Anything else failing the run fails the test.
pub fn passed_unless_distrusted(code: Option<i32>, report: &serde_json::Value) {
    let reasons = &report["verdict_reasons"];
    if report["self_check"]["trustworthy"] == true {
        assert_eq!(report["verdict"], "pass", "{reasons}");
        assert_eq!(code, Some(0), "{reasons}");
        return;
    }
    assert_eq!(report["verdict"], "fail", "{reasons}");
    assert_eq!(code, Some(1), "{reasons}");
    let all = reasons.as_array().expect("verdict_reasons");
    assert!(
        !all.is_empty()
            && all.iter().all(|r| {
                let r = r.as_str().unwrap_or_default();
                r.starts_with("not trustworthy: ") || r.contains(") is not trustworthy: ")
            }),
        "a reason besides the self-check's: {reasons}"
    );
    eprintln!("the self-check distrusted this run beside other tests: {reasons}");
}

/// The reference server (its binary beside the load generator's: cargo
/// test --workspace builds both) on a free port with `args`, its logs
/// off; the port.
pub fn refserver(args: &[&str]) -> (testkit::Daemon, u16) {
    let bin = Path::new(BIN).with_file_name("refserver");
    assert!(
        bin.exists(),
        "{} is missing: build it with cargo build -p server (cargo test --workspace does)",
        bin.display()
    );
    let port = testkit::free_port();
    let d = testkit::Daemon(
        std::process::Command::new(&bin)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--log-level", "error"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    testkit::wait_for_port(port, "refserver");
    (d, port)
}

/// A fresh folder under the system temp dir, removed when the test passes.
pub fn temp_dir(name: &str) -> Scratch {
    Scratch::new(&format!("loadgen-it-{name}"))
}

/// Writes `scenario.toml` into `dir`.
pub fn scenario(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("scenario.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub fn args(scenario: &Path, out: &Path) -> RunArgs {
    RunArgs {
        scenario: scenario.to_owned(),
        target: None,
        out: Some(out.to_owned()),
        duration: None,
        warmup: None,
        max_duration: None,
        users: None,
        rate: None,
        slo: None,
        protocol: None,
        headers: Vec::new(),
        ca_cert: None,
        insecure: false,
        fail_on: loadgen::FailOnArg::Warning,
        allow_missing: false,
        accept_inconclusive: false,
        quiet: true,
        no_tui: false,
        stop_grace: std::time::Duration::from_secs(5),
        shard: None,
        shards: None,
        start_at: None,
        judge: false,
        dry_run: false,
        metrics_listen: None,
        metrics_linger: std::time::Duration::ZERO,
        allow_commands: false,
        prometheus: None,
        ab_arm: None,
        ab_pairing: loadgen::plan::Pairing::Mirror,
    }
}

/// Held by a test that judges timing or the load generator's self-check.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A test whose assertions another test's CPU could move (a latency
/// against an injected delay, a run judged on latencies, a capacity, a
/// soak's memory) takes the turn as its first statement; a test that only
/// needs a run to pass uses `passed_unless_distrusted` instead. Under nextest, the
/// suite's runner (`ci/test.sh`), `.config/nextest.toml` runs exactly these
/// tests alone, every other test in parallel; the tidy test
/// `every_test_that_takes_the_turn_runs_alone` keeps that list true. Under
/// plain `cargo test` they take turns among themselves. A failed test does
/// not block the others.
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A run in this process, its report.json checked against the schema.
pub async fn run(args: &RunArgs) -> Report {
    let plan = Plan::from_args(args).expect("a valid plan");
    let report = loadgen::run::run(&plan).await.expect("the run completes");
    assert_valid_report(&plan.out.join("report.json"));
    report
}

/// Every report.json a test produces is checked against the committed schema.
pub fn assert_valid_report(path: &Path) {
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    testkit::assert_matches_schema(
        "reports/schema/report.schema.json",
        &report,
        &path.display().to_string(),
    );
}

pub fn records(out: &Path) -> Vec<RequestRecord> {
    let mut r = csv::Reader::from_path(out.join("requests.csv")).unwrap();
    r.deserialize().map(|row| row.expect("a CSV row")).collect()
}

/// A server that answers every connection with `response` and closes.
pub async fn canned(response: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// `GET url` (with the TLS provider the load generator installs).
pub async fn get(url: String) -> reqwest::Result<reqwest::Response> {
    loadgen::client::tls_provider();
    reqwest::get(url).await
}

/// The reference server on 127.0.0.1 and a free port, in this process:
/// the `fast` profile and `flags` after it.
pub async fn reference_server(flags: &[&str]) -> server::Running {
    let args = ["--listen", "127.0.0.1:0", "--profile", "fast"];
    let config = server::Config::from_args(args.iter().chain(flags).copied())
        .expect("the reference server's flags");
    server::spawn(&config)
        .await
        .expect("the reference server starts")
}

/// Opens the page in headless Chromium: no console error; the verdict's
/// colour at the top left of the page (where its block starts); and the
/// bands of the `bands` levels drawn (their fills, in quantity).
pub fn assert_html_renders(
    html: &Path,
    dir: &Path,
    verdict: &str,
    bands: &[&str],
) -> testkit::Pixels {
    let shot = dir.join("report.png");
    let out = testkit::chromium(
        &dir.join("chromium"),
        (1000, 2400),
        &[
            format!("--screenshot={}", shot.display()),
            format!("file://{}", html.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = testkit::console_lines(&out);
    assert!(console.is_empty(), "console messages: {console:?}");
    let png = testkit::Pixels::read(&shot);
    let pixels = png.len();
    let non_white = png.count(|p| p.iter().take(3).any(|&c| c < 200));
    let colored = png.count(|p| p.len() >= 3 && (p[0] as i32 - p[2] as i32).abs() > 60);
    assert!(
        non_white * 100 > pixels,
        "the page is blank: {non_white} of {pixels} pixels drawn"
    );
    assert!(
        colored > 500,
        "the charts drew coloured lines: {colored} coloured pixels"
    );
    // The verdict block: 24 px margins, 14 px padding; (40, 30) is inside
    // it, left of its text.
    let colour = match verdict {
        "pass" => "#1b7f3b",
        "fail" => "#b3261e",
        // A page without a verdict (the trend): its title on white.
        _ => "#ffffff",
    };
    assert!(
        testkit::Pixels::is(png.at(40, 30), colour, 8),
        "the verdict's colour at (40, 30): {:?}",
        png.at(40, 30)
    );
    for fill in bands {
        let n = png.count(|p| testkit::Pixels::is(p, fill, 2));
        assert!(n > 2000, "band {fill}: {n} pixels");
    }
    png
}

/// A real Prometheus (Debian's, installed by ci/install.sh) on a free
/// loopback port with `config` (its prometheus.yml) in `dir`, ready to
/// serve; killed when dropped.
pub async fn prometheus(dir: &Path, config: &str) -> (testkit::Daemon, String) {
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = testkit::free_port();
    let daemon = testkit::Daemon(
        std::process::Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian package, installed by ci/install.sh) starts"),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if get(format!("{url}/-/ready"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (daemon, url);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("prometheus did not become ready on {url}");
}

#[test]
fn a_run_distrusted_by_its_self_check_is_accepted_and_no_other_failure_is() {
    let report = |verdict: &str, trusted: bool, reasons: &[&str]| {
        serde_json::json!({
            "verdict": verdict,
            "verdict_reasons": reasons,
            "self_check": { "trustworthy": trusted },
        })
    };
    passed_unless_distrusted(Some(0), &report("pass", true, &[]));
    let stalled = ["not trustworthy: 2 of 40 measured requests overlapped a stall (limit 1%)"];
    passed_unless_distrusted(Some(1), &report("fail", false, &stalled));
    let shard = ["shard 1 (s1) is not trustworthy: its scheduler lagged"];
    passed_unless_distrusted(Some(1), &report("fail", false, &shard));
    let fails = |code, r: serde_json::Value| {
        std::panic::catch_unwind(|| passed_unless_distrusted(code, &r)).is_err()
    };
    // Distrusted, and an objective failed too: not accepted.
    let both = [
        stalled[0],
        "first token p95: 1200.00 is at warning (threshold 1000)",
    ];
    assert!(fails(Some(1), report("fail", false, &both)));
    // Trusted and failed; trusted with a wrong exit code; no reason given.
    assert!(fails(Some(1), report("fail", true, &both[1..])));
    assert!(fails(Some(1), report("pass", true, &[])));
    assert!(fails(Some(1), report("fail", false, &[])));
}

/// Every document of a YAML file, as JSON (PyYAML, which ci/install.sh
/// brings with kubernetes-validate).
pub fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("python3 runs (ci/install.sh installs kubernetes-validate and PyYAML)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}
