//! Every error the reference server can inject, and every client-side
//! cause, is classified right; the run goes on.

use crate::support::{args, canned, records, run, scenario, temp_dir};
use slo::record::Outcome;
use std::collections::BTreeMap;

fn count(rows: &[slo::record::RequestRecord]) -> BTreeMap<Outcome, u64> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r.outcome).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn injected_errors_match_the_servers_own_counts() {
    let dir = temp_dir("faults");
    let out = dir.join("out");
    let text = r#"
name = "faults"
duration = "3s"
[server]
args = ["--profile", "fast", "--first-token-ms", "5", "--token-interval-ms", "1", "--fail-openai", "0.2", "--fail-tts", "0.2", "--fail-network", "0.2", "--fail-other", "0.2", "--seed", "9"]
[load]
model = "closed"
users = 4
[request]
audio = true
"#;
    let report = run(&args(&scenario(&dir, text), &out)).await;
    let rows = records(&out);
    let by = count(&rows);
    for o in [
        Outcome::Openai,
        Outcome::Tts,
        Outcome::Truncated,
        Outcome::Other,
        Outcome::Ok,
    ] {
        assert!(by.get(&o).copied().unwrap_or(0) > 0, "{o:?} seen: {by:?}");
    }
    assert_eq!(
        by.keys()
            .filter(|o| !matches!(
                o,
                Outcome::Openai | Outcome::Tts | Outcome::Truncated | Outcome::Other | Outcome::Ok
            ))
            .count(),
        0,
        "{by:?}"
    );
    // The server counted the same failures by type.
    let d = &report
        .server
        .delta
        .as_ref()
        .expect("the server answered")
        .errors;
    assert_eq!(d.openai, by.get(&Outcome::Openai).copied());
    assert_eq!(d.tts, by.get(&Outcome::Tts).copied());
    assert_eq!(d.other, by.get(&Outcome::Other).copied());
    assert_eq!(
        d.network,
        by.get(&Outcome::Truncated).copied(),
        "a dropped connection is a truncated stream"
    );
    assert_eq!(report.figures.errors["network"], by[&Outcome::Truncated]);
    assert_eq!(
        report.figures.requests.failed + report.figures.requests.ok,
        report.figures.requests.total
    );
}

#[tokio::test]
async fn client_side_causes_are_classified() {
    let dir = temp_dir("causes");
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let malformed = canned(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: start\ndata: {}\n\nevent: token\ndata: {not json\n\n").await;
    let invalid = canned(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 73\r\n\r\n{\"success\":false,\"error\":{\"type\":\"validation\",\"message\":\"chatbotId bad\"}}").await;
    let cut = canned(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: start\ndata: {}\n\nevent: token\ndata: {\"text\":\"Hi \"}\n\n").await;
    let html = canned(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\n<h1>oops</h1>").await;
    for (target, expected) in [
        (closed, Outcome::ConnectionRefused),
        (malformed, Outcome::Malformed),
        (invalid, Outcome::Validation),
        (cut, Outcome::Truncated),
        (html, Outcome::HttpStatus),
    ] {
        let out = dir.join(format!("out-{expected:?}"));
        let text = "name = \"causes\"\nduration = \"1s\"\n[load]\nmodel = \"closed\"\nusers = 1\n[request]\ntimeout = \"2s\"\n";
        let mut a = args(&scenario(&dir, text), &out);
        a.target = Some(target.clone());
        let report = run(&a).await;
        let rows = records(&out);
        assert!(!rows.is_empty(), "{expected:?}: the run went on");
        assert!(
            rows.iter().all(|r| r.outcome == expected),
            "{target}: {:?}",
            count(&rows)
        );
        assert!(!rows[0].error.is_empty());
        assert_eq!(
            report.verdict,
            slo::report::Verdict::Fail,
            "no SLO file, but nothing succeeded"
        );
        assert!(
            report
                .verdict_reasons
                .iter()
                .any(|r| r.contains("requests failed")),
            "{:?}",
            report.verdict_reasons
        );
        assert!(
            !report.server.available,
            "a target without the guide's endpoints is noted"
        );
    }
}

#[tokio::test]
async fn timeouts_and_the_stream_limit_are_classified() {
    let dir = temp_dir("limits");
    let out = dir.join("out-timeout");
    let text = r#"
name = "slow"
duration = "1s"
[server]
args = ["--profile", "fast", "--token-interval-ms", "50"]
[load]
model = "closed"
users = 1
[request]
audio = false
timeout = "300ms"
"#;
    run(&args(&scenario(&dir, text), &out)).await;
    let rows = records(&out);
    assert!(
        rows.iter().all(|r| r.outcome == Outcome::Timeout),
        "{:?}",
        count(&rows)
    );

    let out = dir.join("out-503");
    let text = r#"
name = "limit"
duration = "2s"
[server]
args = ["--profile", "fast", "--token-interval-ms", "5", "--max-streams", "1"]
[load]
model = "closed"
users = 3
[request]
audio = false
"#;
    let report = run(&args(&scenario(&dir, text), &out)).await;
    let by = count(&records(&out));
    assert!(
        by.get(&Outcome::HttpStatus).copied().unwrap_or(0) > 0,
        "{by:?}"
    );
    assert!(by.get(&Outcome::Ok).copied().unwrap_or(0) > 0, "{by:?}");
    assert!(report.figures.errors_by_cause.contains_key("http_status"));
}
