//! The open model holds its arrival rate, and a server stall shows in the
//! coordinated-omission-corrected figures, not (or less) in the others.

use crate::support::{args, records, run, scenario, temp_dir};

#[tokio::test]
async fn the_arrival_rate_is_held() {
    let _turn = crate::support::turn();
    let dir = temp_dir("rate");
    let out = dir.join("out");
    let text = r#"
name = "rate"
duration = "3s"
[server]
args = ["--profile", "fast", "--first-token-ms", "5", "--token-interval-ms", "1"]
[load]
model = "open"
rate = 20.0
max_users = 50
[request]
audio = false
"#;
    let report = run(&args(&scenario(&dir, text), &out)).await;
    let rows = records(&out);
    // 3 s at 20/s: starts at 0, 0.05, ... 2.95 s.
    assert_eq!(rows.len(), 60, "requests sent");
    assert_eq!(report.figures.requests.dropped, 0);
    for (i, r) in rows.iter().enumerate() {
        let scheduled = r.scheduled_us.unwrap();
        assert!(
            r.lateness_us < 20_000,
            "request {i} started {} µs late",
            r.lateness_us
        );
        assert!(r.start_us >= scheduled);
    }
    let mut scheduled: Vec<u64> = rows.iter().map(|r| r.scheduled_us.unwrap()).collect();
    scheduled.sort();
    for (i, s) in scheduled.iter().enumerate() {
        assert!(s.abs_diff(i as u64 * 50_000) <= 1, "slot {i} at {s} µs");
    }
}

#[tokio::test]
async fn a_stall_shows_in_the_corrected_figures() {
    let _turn = crate::support::turn();
    let dir = temp_dir("stall");
    let out = dir.join("out");
    // One user carries 5 requests/s of ~60 ms streams; some stall 800 ms
    // before their first token, and the requests scheduled meanwhile wait.
    let text = r#"
name = "stall"
duration = "5s"
[server]
args = ["--profile", "fast", "--first-token-ms", "20", "--token-interval-ms", "0", "--stall-rate", "0.2", "--stall-ms", "800", "--seed", "4"]
[load]
model = "open"
rate = 5.0
max_users = 1
max_lateness = "10s"
[request]
audio = false
"#;
    let report = run(&args(&scenario(&dir, text), &out)).await;
    // The requests sent (the backlog the run ended with is dropped).
    let rows: Vec<_> = records(&out)
        .into_iter()
        .filter(|r| r.outcome != slo::record::Outcome::Dropped)
        .collect();
    let slow = |f: &dyn Fn(&slo::record::RequestRecord) -> u64| {
        rows.iter().filter(|r| f(r) > 300_000).count()
    };
    let slow_uncorrected = slow(&|r| r.complete_us.unwrap());
    let slow_corrected = slow(&|r| r.complete_us.unwrap() + r.lateness_us);
    assert!(slow_uncorrected >= 1, "some requests stalled");
    assert!(
        slow_corrected > slow_uncorrected,
        "the requests queued behind a stall are slow only when corrected: {slow_corrected} vs {slow_uncorrected}"
    );
    let c = &report.figures.latency_ms.complete;
    let corrected = c
        .corrected
        .as_ref()
        .expect("an open model reports corrected figures");
    assert!(
        corrected.p50 > c.p50,
        "corrected p50 {:?} vs {:?}",
        corrected.p50,
        c.p50
    );
    assert!(report.figures.requests.late > 0);
}
