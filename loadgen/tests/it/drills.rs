//! Incident drills: the shipped drills run as shipped (each meets its SLO
//! file), the built-in evaluation of the guide's alert rules agrees with a
//! real Prometheus running the same rules, and a drill whose alert rule is
//! misconfigured fails.

use crate::support::{BIN, checked_report, loadgen, reference_server, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::root;

fn drills() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios/drills"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p.to_string_lossy().ends_with(".slo.toml")
        })
        .collect();
    files.sort();
    files
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What every passing drill shows: its verdict PASS (exit 0), its events
/// taken, each incident detected by the alerts it expects and recovered
/// after its mitigation. A pause of the whole machine is the self-check's
/// to report: this VM once paused for 54-79 ms in four of the five drills
/// at once (2026-12-07, each stall overlapping 1.2-1.3 % of its requests,
/// past the 1 % limit), and those runs failed for that reason alone,
/// which the drill's own judgment below does not depend on.
fn assert_drill_passed(name: &str, code: Option<i32>, report: &serde_json::Value) {
    eprintln!("{name}:");
    crate::support::passed_unless_distrusted(code, report);
    for e in report["events"].as_array().unwrap() {
        assert_eq!(e["ok"], true, "{name}: {e}");
    }
    let fired: Vec<&str> = report["alerts"]["builtin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for e in report["events"].as_array().unwrap() {
        for x in e["expect"].as_array().into_iter().flatten() {
            assert!(
                fired.contains(&x.as_str().unwrap()),
                "{name}: {x} in {fired:?}"
            );
            let detect = report["drill"][e["name"].as_str().unwrap()]["detect_s"].as_f64();
            assert!(
                detect.is_some_and(|d| d > 0.0),
                "{name}: {}",
                report["drill"]
            );
        }
        if e["mitigates"].is_string() {
            let recover = report["drill"][e["name"].as_str().unwrap()]["recover_s"].as_f64();
            assert!(
                recover.is_some_and(|r| r >= 0.0),
                "{name}: {}",
                report["drill"]
            );
        }
    }
    for i in report["incidents"].as_array().into_iter().flatten() {
        assert!(
            i["detected_s"].is_number() && i["end_s"].is_number(),
            "{name}: {i}"
        );
    }
}

/// The reload drill: every request ok (none lost, none cut), and streams
/// were open across each reload (the drain was put to work).
fn assert_reload_lost_nothing(out: &Path, report: &serde_json::Value) {
    let rows = crate::support::records(out);
    assert!(rows.len() > 300, "{} requests", rows.len());
    let bad: Vec<_> = rows
        .iter()
        .filter(|r| r.outcome != slo::record::Outcome::Ok)
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    let reloads: Vec<f64> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at_s"].as_f64().unwrap())
        .collect();
    assert_eq!(reloads.len(), 3);
    for at in reloads {
        let across = rows
            .iter()
            .filter(|r| {
                let start = r.start_us as f64 / 1e6;
                let end = start + r.end_us as f64 / 1e6;
                start < at && end > at
            })
            .count();
        assert!(
            across >= 3,
            "{across} streams open across the reload at {at} s"
        );
    }
    assert!(report["alerts"]["builtin"].as_array().unwrap().is_empty());
}

#[test]
fn the_shipped_drills_meet_their_slo_files() {
    let _turn = crate::support::turn();
    let dir = temp_dir("drills");
    let files = drills();
    assert!(!files.is_empty());
    // Judged in seconds, not milliseconds: they run side by side, in one
    // turn of the machine.
    let runs: Vec<_> = files
        .iter()
        .map(|f| {
            let out = dir.join(f.file_stem().unwrap());
            let child = Command::new(BIN)
                .args(["run", f.to_str().unwrap(), "-q", "--out"])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (f, out, child)
        })
        .collect();
    // Every drill ends before a page is rendered: no browser beside them.
    let done: Vec<_> = runs
        .into_iter()
        .map(|(f, out, child)| (f, out, child.wait_with_output().unwrap()))
        .collect();
    let mut reports = Vec::new();
    for (f, out, o) in &done {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let report = checked_report(out);
        assert_drill_passed(&name, o.status.code(), &report);
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        for i in report["incidents"].as_array().into_iter().flatten() {
            assert!(
                md.contains(&format!("## Incident: {}", i["name"].as_str().unwrap())),
                "{name}"
            );
        }
        assert!(md.contains("## Alerts"), "{name}");
        if name == "reload.toml" {
            assert_reload_lost_nothing(out, &report);
        }
        reports.push((name, out, report));
    }
    // The pages render, their alerts' rows in their level's colour (the
    // browsers side by side: the drills are over).
    std::thread::scope(|scope| {
        for (name, out, report) in &reports {
            scope.spawn(move || {
                // The verdict's colour: pass, or fail for the self-check.
                let verdict = report["verdict"].as_str().unwrap();
                let png = crate::support::assert_html_renders(
                    &out.join("report.html"),
                    out,
                    verdict,
                    &[],
                );
                for a in report["alerts"]["builtin"].as_array().unwrap() {
                    let colour = if a["severity"] == "critical" {
                        "#fde2e1"
                    } else {
                        "#fff0d9"
                    };
                    let n = png.count(|p| testkit::Pixels::is(p, colour, 2));
                    assert!(n > 1000, "{name}: {n} pixels of {} rows", a["severity"]);
                }
            });
        }
    });
}

/// The shipped error-spike drill against a reference server that two real
/// Prometheus servers scrape, one with the rules `loadgen alert-rules`
/// writes for the drill's timings, one with the critical error-rate
/// threshold misconfigured (50 % instead of 5 %); two load generators run
/// the drill at once, each judged by one Prometheus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_fires_the_same_alerts_and_a_misconfigured_rule_fails_the_drill() {
    let _turn = crate::support::turn();
    let dir = temp_dir("drill-prometheus");
    let shipped = root().join("scenarios/drills/error-spike.toml");
    let text = std::fs::read_to_string(&shipped).unwrap();
    let sc = slo::scenario::Scenario::from_toml(&text, "error-spike.toml").unwrap();
    let flags: Vec<&str> = sc.server.args.iter().map(String::as_str).collect();
    let server = reference_server(&flags).await;
    let alerts = sc.alerts.clone().unwrap();
    let o = loadgen(&[
        "alert-rules",
        "--scale",
        &alerts.scale.to_string(),
        "--interval",
        &humantime::format_duration(alerts.interval).to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rules = String::from_utf8(o.stdout).unwrap();
    let window = slo::alerts::rules::duration(alerts.timing().window_s());
    let (good, bad) = (dir.join("good"), dir.join("bad"));
    let broken = rules.replace(
        &format!("chatbot:error_ratio:rate{window} > 0.05\n"),
        &format!("chatbot:error_ratio:rate{window} > 0.5\n"),
    );
    assert_ne!(
        broken, rules,
        "the critical error-rate rule is where it was"
    );
    let mut proms = Vec::new();
    for (d, r) in [(&good, &rules), (&bad, &broken)] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("rules.yml"), r).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\nscrape_configs:\n  - job_name: refserver\n    static_configs:\n      - targets: ['{}']\n",
            d.join("rules.yml").display(),
            server.addr
        );
        proms.push(crate::support::prometheus(d, &config).await);
    }
    // The good run names its Prometheus in the scenario, the bad one with
    // --prometheus: both ways are used.
    let run = |prom: &str, d: &Path, by_flag: bool| {
        let file = d.join("drill.toml");
        let text = if by_flag {
            text.clone()
        } else {
            text.replace(
                "[alerts]\n",
                &format!("[alerts]\nprometheus = \"{prom}\"\n"),
            )
        };
        std::fs::write(&file, format!("target = \"{}\"\n{text}", server.url())).unwrap();
        let mut cmd = Command::new(BIN);
        // 20 s, not the file's 26: the alerts fire by ~10 s and the
        // recovery (from 12 s) is judged on the seconds after it; this
        // test asserts their firing, not their resolving.
        cmd.args([
            "run",
            file.to_str().unwrap(),
            "-q",
            "--duration",
            "20s",
            "--slo",
        ])
        .arg(root().join("scenarios/drills/error-spike.slo.toml"))
        .arg("--out")
        .arg(d.join("out"));
        if by_flag {
            cmd.args(["--prometheus", prom]);
        }
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (good_run, bad_run) = tokio::task::block_in_place(|| {
        let a = run(&proms[0].1, &good, false);
        let b = run(&proms[1].1, &bad, true);
        (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
    });

    // The right rules: the drill passes on Prometheus's alerts, which are
    // the built-in evaluation's.
    let report = checked_report(&good.join("out"));
    assert_drill_passed(
        "error-spike with Prometheus",
        good_run.status.code(),
        &report,
    );
    assert_eq!(report["alerts"]["judged_by"], "prometheus");
    // Each alert: (name, active from, seen firing).
    let list = |source: &str| -> Vec<(String, f64, f64)> {
        report["alerts"][source]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["active_at_s"].as_f64().unwrap(),
                    a["firing_at_s"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (builtin, prom) = (list("builtin"), list("prometheus"));
    let names = |l: &[(String, f64, f64)]| {
        let mut n: Vec<String> = l.iter().map(|a| a.0.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&builtin), names(&prom), "{builtin:?} / {prom:?}");
    let interval = alerts.interval.as_secs_f64();
    for (name, active, fired) in &builtin {
        let p = prom.iter().find(|a| &a.0 == name).unwrap();
        eprintln!(
            "{name}: active from {active:.2} s (built-in) / {:.2} s (Prometheus), seen firing at {fired:.2} / {:.2} s",
            p.1, p.2
        );
        // Both became active during the spike: after it began, before
        // the mitigation. Not closer than that: the built-in evaluation
        // takes the exact ratio of the window's counts, Prometheus's
        // rate() extrapolates its samples to the window's edges, and the
        // spike's failures arrive at random (30 % of 20 a second: one
        // second held none), so the two crossings of the 5 % line moved
        // apart by up to 2.2 s (seen: 8.05 s built-in, 5.89 s
        // Prometheus, at a fresh clone's first test; earlier 7.04 / 5.89
        // and 6.04 / 7.22 s).
        let at = |event: &str| {
            report["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == event)
                .and_then(|e| e["at_s"].as_f64())
                .unwrap_or_else(|| panic!("event {event} in {}", report["events"]))
        };
        let (spike, mitigation) = (at("spike"), at("rollout-0"));
        for (who, at) in [("built-in", *active), ("Prometheus", p.1)] {
            assert!(
                (spike..mitigation).contains(&at),
                "{name} ({who}) active at {at} s, outside the spike ({spike}-{mitigation} s)"
            );
        }
        // Then each fired its own `for` after it became active: at the
        // first evaluation past it (up to an interval more); Prometheus's
        // two moments are each seen at a read of its alerts API (up to an
        // interval late each, so their difference moves by one either
        // way). Compared with its own activation, not with the other's:
        // their phases already differ by up to two intervals (above), and
        // adding the roundings to that let a sound run fail (seen: active
        // 6.04 / 7.22 s, firing 8.04 / 10.04 s, for 1.2 s).
        let rule = slo::alerts::rules::guide()
            .into_iter()
            .find(|r| r.name == name.as_str())
            .unwrap();
        let for_s = alerts.timing().for_s(&rule);
        let slack = 1e-3;
        assert!(
            fired - active >= for_s - slack && fired - active <= for_s + interval + slack,
            "{name} (built-in): active {active}, firing {fired}, for {for_s}"
        );
        assert!(
            p.2 - p.1 >= for_s - interval - slack && p.2 - p.1 <= for_s + 2.0 * interval + slack,
            "{name} (Prometheus): active {}, firing {}, for {for_s}",
            p.1,
            p.2
        );
    }

    // The misconfigured rule never fires: the drill fails and says which.
    assert_eq!(bad_run.status.code(), Some(1), "{}", stderr(&bad_run));
    let report = checked_report(&bad.join("out"));
    assert_eq!(report["verdict"], "fail");
    let reasons = report["verdict_reasons"].to_string();
    assert!(
        reasons.contains("alert ChatbotErrorRateCritical never fired after spike"),
        "{reasons}"
    );
    server.stop().await.unwrap();
}
