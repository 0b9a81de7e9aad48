//! Reports for people and for CI, rendered from `report.json` alone, so
//! `loadgen report DIR` can rebuild them without rerunning:
//! - [`console`]: the end-of-run summary on the terminal.
//! - [`markdown`]: fits a GitHub job summary; verdict first.
//! - [`junit`]: one test case per objective; a failure carries the value
//!   and the threshold.
//! - [`html`]: one self-contained, offline page with SVG charts.

pub mod ab;
pub mod capacity;
pub mod chart;
pub mod comparison;
pub mod console;
pub mod html;
pub mod junit;
pub mod logs;
pub mod markdown;
pub mod trend;

use crate::evidence::Percentile;
pub use crate::format::{interval, num, opt};
use crate::objective::FailOn;

/// A percentile with its 95 % interval: `520 [498–541]`; an unbounded
/// side shows as `…`.
pub fn with_ci(f: &crate::aggregate::LatencyFigures, p: Percentile) -> String {
    let Some(v) = f.percentile(p) else {
        return "—".to_owned();
    };
    match f.evidence.as_ref().map(|e| e.of(p)) {
        Some(i) => format!("{} {}", num(v), interval(i)),
        None => num(v),
    }
}

/// A judged objective's interval and samples: `[498–541], n=300`.
pub fn judged_ci(j: &crate::objective::Judged) -> String {
    match (&j.interval, j.samples) {
        (Some(i), Some(n)) => format!(
            "{}, n={n}{}{}",
            interval(i),
            j.samples_needed
                .map_or(String::new(), |m| format!(" (needs ~{m})")),
            j.decided_by
                .map_or(String::new(), |b| format!(", decided by its {}", b.word()))
        ),
        _ => "—".to_owned(),
    }
}

pub fn fail_on_word(f: FailOn) -> &'static str {
    match f {
        FailOn::Target => "target",
        FailOn::Warning => "warning",
        FailOn::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use crate::aggregate::Aggregate;
    use crate::objective::{Direction, FailOn, Objective, Source};
    use crate::record::{Outcome, RequestRecord};
    use crate::report::{Report, ScenarioInfo, TargetInfo, Verdict};
    use serde_json::json;
    use std::time::Duration;

    /// A fixed run: 20 requests, 2 failed, one objective past its warning.
    pub fn sample() -> Report {
        let mut a = Aggregate::default();
        for i in 0..20u64 {
            let ok = i % 10 != 9;
            a.add(
                &RequestRecord {
                    seq: i,
                    start_us: i * 100_000,
                    first_token_us: ok.then_some(400_000 + i * 10_000),
                    first_audio_us: ok.then_some(1_100_000 + i * 10_000),
                    complete_us: ok.then_some(2_500_000 + i * 50_000),
                    end_us: 2_600_000,
                    tokens: 100,
                    outcome: if ok { Outcome::Ok } else { Outcome::Truncated },
                    error: if ok {
                        String::new()
                    } else {
                        "the stream closed without done or error".into()
                    },
                    kb_cache: Some(if i % 2 == 0 { "hit" } else { "miss" }.into()),
                    ..RequestRecord::default()
                },
                &[20_000, 25_000],
            );
        }
        let figures = a.figures(Duration::from_secs(10), false);
        let objectives = [
            Objective {
                name: "first token p95".into(),
                metric: "latency_ms.first_token.p95".into(),
                source: Source::Client,
                direction: Direction::Max,
                target: 500.0,
                warning: Some(550.0),
                critical: Some(2000.0),
                required: true,
                capacity: None,
                window: None,
                budget: None,
            },
            Objective {
                name: "success rate".into(),
                metric: "requests.success_rate".into(),
                source: Source::Client,
                direction: Direction::Min,
                target: 99.0,
                warning: Some(98.0),
                critical: Some(85.0),
                required: true,
                capacity: None,
                window: None,
                budget: None,
            },
            Objective {
                name: "server KB hit rate".into(),
                metric: "delta.kb_hit_rate".into(),
                source: Source::Server,
                direction: Direction::Min,
                target: 60.0,
                warning: Some(40.0),
                critical: Some(20.0),
                required: true,
                capacity: None,
                window: None,
                budget: None,
            },
        ];
        let doc = serde_json::to_value(&figures).unwrap();
        let server = crate::server_view::ServerView {
            available: false,
            reason: Some("http://127.0.0.1:9/api/metrics/streaming: connection refused".into()),
            ..Default::default()
        };
        let server_doc = serde_json::to_value(&server).unwrap();
        let slo: Vec<_> = objectives
            .iter()
            .map(|o| o.judge(&doc, &server_doc, FailOn::Warning))
            .collect();
        let (verdict, reasons) =
            crate::report::verdict(&slo, &crate::objective::Gate::default(), true, &[]);
        let (severity, severity_reasons) = crate::severity::classify(&figures, &slo, &server);
        let figures_findings = figures.findings();
        assert_eq!(verdict, Verdict::Fail);
        Report {
            schema_version: 1,
            verdict,
            verdict_reasons: reasons,
            scenario: ScenarioInfo {
                name: "sample".into(),
                file: "scenarios/sample.toml".into(),
                description: String::new(),
            },
            target: TargetInfo {
                url: "http://127.0.0.1:9".into(),
                protocol: "chat-v1".into(),
                ..TargetInfo::default()
            },
            load: json!({"model": {"model": "closed", "users": 2}}),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            elapsed_s: 12.0,
            measured_s: 10.0,
            warmup_s: 2.0,
            interrupted: None,
            shard: None,
            shards: Vec::new(),
            shard_problems: Vec::new(),
            events: Vec::new(),
            alerts: None,
            engine: Default::default(),
            incidents: Vec::new(),
            figures,
            timeseries: a.series(),
            server,
            self_check: crate::self_check::SelfCheck {
                trustworthy: true,
                ..Default::default()
            },
            slo_file: Some("scenarios/slo/sample.toml".into()),
            fail_on: FailOn::Warning,
            allow_missing: false,
            accept_inconclusive: false,
            slo,
            severity,
            severity_reasons,
            findings: figures_findings,
            files: Default::default(),
        }
    }

    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(super::markdown::render(&sample()));
    }

    #[test]
    fn junit_report() {
        insta::assert_snapshot!(super::junit::render(&sample()));
    }

    #[test]
    fn html_report_is_self_contained() {
        let html = super::html::render(&sample());
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        assert!(
            !html.contains("<script") && !html.contains("http://cdn") && !html.contains("https://")
        );
        // First token and complete over time, three CDFs, throughput.
        assert_eq!(html.matches("<svg").count(), 6);
        assert!(html.contains("<polyline"));
        assert!(html.contains("first token p95"));
        // The first-token objective's levels as bands, on its time chart
        // and its CDF; the warm-up shaded; values as tooltips.
        assert_eq!(
            html.matches("<title>first token p95 target 500</title>")
                .count(),
            2,
            "{html}"
        );
        assert!(html.contains("<title>first token p95 warning 550</title>"));
        assert!(html.contains("<title>warm-up (not measured)</title>"));
        assert!(html.contains("<title>p95: "));
        // A second whose requests a client stall overlapped is marked on
        // the time charts (three of them).
        let mut stalled = sample();
        stalled.timeseries[2].stalled = 3;
        let t = stalled.timeseries[2].t;
        let page = super::html::render(&stalled);
        assert_eq!(
            page.matches(&format!("<title>second {t}: 3 request(s) overlapped by a stall of the load generator</title>")).count(),
            3
        );
        assert!(!html.contains("class=\"event\""));
        // The verdict block first, in words.
        let verdict = html
            .find("<div class=\"verdict fail\"")
            .expect("the verdict block");
        assert!(verdict < html.find("<h2>").unwrap());
    }
}
