//! A scenario's timeline applied to a live target: fault rates and the
//! streaming rollout through the admin API, a command when allowed, each
//! stamped on the CSV's time base and in the reports.

use crate::support::{BIN, records, reference_server, temp_dir};
use slo::record::Outcome;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_events_reach_the_target_when_written_and_are_reported() {
    let dir = temp_dir("timeline");
    let target = reference_server(&["--first-token-ms", "20", "--token-interval-ms", "2"]).await;
    let mark = dir.join("drill-ran");
    let scenario = dir.join("drill.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "drill"
duration = "6s"
target = "{}"
[load]
model = "closed"
users = 4
[request]
audio = false
timeout = "10s"
[[timeline]]
at = "1s"
name = "mark"
command = ["sh", "-c", "echo ran > {}"]
[[timeline]]
at = "2s"
name = "error spike"
faults = {{ openai_rate = 1.0 }}
[[timeline]]
at = "4s"
name = "mitigation"
faults = {{ openai_rate = 0.0 }}
[[timeline]]
at = "5500ms"
name = "streaming off"
rollout = 0
"#,
            target.url(),
            mark.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    // A command needs the user's leave.
    let o = Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("timeline event 1 runs a command"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!mark.exists());
    let o = tokio::task::block_in_place(|| {
        Command::new(BIN)
            .args([
                "run",
                scenario.to_str().unwrap(),
                "-q",
                "--allow-commands",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap()
    });
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    for (e, at) in events.iter().zip([1.0, 2.0, 4.0, 5.5]) {
        assert_eq!(e["ok"], true, "{e}");
        let t = e["at_s"].as_f64().unwrap();
        // Stated tolerance: applied within 250 ms of its time.
        assert!(t >= at && t <= at + 0.25, "{e}");
    }
    assert_eq!(std::fs::read_to_string(&mark).unwrap().trim(), "ran");
    // The spike shows in the requests: those sent in it failed with the
    // injected error, those sent after the mitigation (and before the
    // rollout change) succeeded.
    let rows = records(&out);
    let sent = |r: &slo::record::RequestRecord| r.start_us as f64 / 1e6;
    let inside: Vec<_> = rows
        .iter()
        .filter(|r| sent(r) > 2.3 && sent(r) < 3.8)
        .collect();
    let after: Vec<_> = rows
        .iter()
        .filter(|r| sent(r) > 4.3 && sent(r) < 5.4)
        .collect();
    assert!(
        inside.len() >= 10 && after.len() >= 10,
        "{} / {}",
        inside.len(),
        after.len()
    );
    assert!(
        inside.iter().all(|r| r.outcome == Outcome::Openai),
        "{inside:?}"
    );
    assert!(after.iter().all(|r| r.outcome == Outcome::Ok), "{after:?}");
    // The rollout reached the server's feature flag.
    let flags: serde_json::Value = crate::support::get(format!(
        "{}{}",
        target.url(),
        slo::monitoring::paths::FEATURE_FLAGS
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(flags.to_string().contains("\"percentage\":0"), "{flags}");
    // The reports show the timeline: a table, and markers on the charts.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Timeline") && md.contains("| error spike |"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(">mitigation<"), "the marker's label");
    // The spike failed requests: the run fails its success rate, not the
    // timeline.
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !report["verdict_reasons"]
            .to_string()
            .contains("timeline event")
    );
    target.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_target_refuses_fails_the_run() {
    let dir = temp_dir("timeline-refused");
    let target = reference_server(&[]).await;
    let scenario = dir.join("refused.toml");
    // 150 % is no rate: the admin API answers 400.
    std::fs::write(
        &scenario,
        format!(
            "name = \"refused\"\nduration = \"2s\"\ntarget = \"{}\"\n[load]\nmodel = \"closed\"\nusers = 1\n[request]\naudio = false\n[[timeline]]\nat = \"500ms\"\nfaults = {{ openai_rate = 1.5 }}\n",
            target.url()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = tokio::task::block_in_place(|| crate::support::run_bin(&scenario, &out, &[]));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert_eq!(report["events"][0]["ok"], false);
    assert!(
        report["verdict_reasons"]
            .to_string()
            .contains("timeline event faults: openai_rate = 1.5 (at "),
        "{}",
        report["verdict_reasons"]
    );
    assert!(
        report["events"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP 400")
    );
    target.stop().await.unwrap();
}
