//! `junit.xml`: one test case per objective, plus the run's own checks
//! (completed, trustworthy) and `run/verdict`, whose failure lists every
//! reason the run failed, so a FAIL run always has a failure. A failing
//! case carries the value and the threshold; an objective with no data
//! fails when it is required, and is skipped when it may be absent.

use super::{fail_on_word, num};
use crate::objective::Level;
use crate::report::Report;
use std::fmt::Write;

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

pub fn render(r: &Report) -> String {
    let cases = cases(r);
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites name="loadgen" tests="{}" failures="{failures}" errors="0" skipped="{skipped}" time="{:.3}">"#,
        cases.len(),
        r.elapsed_s
    );
    let _ = writeln!(
        o,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="0" skipped="{skipped}" time="{:.3}" timestamp="{}">"#,
        escape(&r.scenario.name),
        cases.len(),
        r.elapsed_s,
        escape(r.started_at.trim_end_matches('Z'))
    );
    let _ = writeln!(o, "    <properties>");
    for (k, v) in [
        ("target", r.target.url.clone()),
        ("verdict", r.verdict.as_str().to_owned()),
        (
            "severity",
            r.severity.map_or("none".into(), |s| format!("{s:?}")),
        ),
        ("goodput", num(r.figures.goodput)),
    ] {
        let _ = writeln!(o, r#"      <property name="{k}" value="{}"/>"#, escape(&v));
    }
    let _ = writeln!(o, "    </properties>");
    for c in &cases {
        let head = format!(
            r#"    <testcase classname="{}" name="{}" time="0""#,
            escape(&c.class),
            escape(&c.name)
        );
        match (&c.failure, &c.skipped) {
            (Some((message, kind, text)), _) => {
                let _ = writeln!(o, "{head}>");
                let _ = writeln!(
                    o,
                    r#"      <failure message="{}" type="{}">{}</failure>"#,
                    escape(message),
                    escape(kind),
                    escape(text)
                );
                let _ = writeln!(o, "    </testcase>");
            }
            (None, Some(why)) => {
                let _ = writeln!(o, "{head}>");
                let _ = writeln!(o, r#"      <skipped message="{}"/>"#, escape(why));
                let _ = writeln!(o, "    </testcase>");
            }
            (None, None) => {
                let _ = writeln!(o, "{head}/>");
            }
        }
    }
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(o, "</testsuites>");
    o
}

/// One test case: an objective, or one of the run's own checks.
struct Case {
    class: String,
    name: String,
    failure: Option<(String, String, String)>,
    skipped: Option<String>,
}

/// Every objective (class `slo.<file stem>`), then the run's checks:
/// completed, the load generator trustworthy, the verdict.
fn cases(r: &Report) -> Vec<Case> {
    let slo_class = format!(
        "slo.{}",
        r.slo_file
            .as_deref()
            .and_then(|f| std::path::Path::new(f).file_stem())
            .and_then(|s| s.to_str())
            .unwrap_or("none")
    );
    let mut cases: Vec<Case> = r
        .slo
        .iter()
        .map(|j| {
            let value = j.value.map_or("no data".to_owned(), num);
            let window = j.window.as_ref().map(crate::windows::phrase).unwrap_or_default();
            Case {
                class: slo_class.clone(),
                name: j.name.clone(),
                failure: j.fails(&r.gate()).then(|| {
                    (
                        if j.level == Level::NoData {
                            format!("{} was not measured and is required", j.metric)
                        } else if j.level == Level::Inconclusive {
                            format!("{} = {value} is inconclusive: {}{window}", j.metric, super::judged_ci(j))
                        } else {
                            format!("{} = {value}, past {} ({}){window}", j.metric, num(j.threshold), j.level.word())
                        },
                        j.level.word().to_owned(),
                        format!("metric: {}\nsource: {}\nvalue: {value}\nthreshold: {}\nlevel: {}\nfail on: {}", j.metric, format!("{:?}", j.source).to_lowercase(), num(j.threshold), j.level.word(), fail_on_word(r.fail_on)),
                    )
                }),
                skipped: (j.level == Level::NoData && !j.fails(&r.gate()))
                    .then(|| format!("{} was not measured (not required)", j.metric)),
            }
        })
        .collect();
    cases.push(Case {
        class: "run".into(),
        name: "completed".into(),
        failure: r.interrupted.as_ref().map(|why| {
            (
                format!("the run did not complete: {why}"),
                "interrupted".into(),
                why.clone(),
            )
        }),
        skipped: None,
    });
    let reasons = &r.self_check.reasons;
    cases.push(Case {
        class: "run".into(),
        name: "load generator trustworthy".into(),
        failure: (!r.self_check.trustworthy).then(|| {
            (
                "the load generator was the bottleneck".into(),
                "untrustworthy".into(),
                reasons.join("\n"),
            )
        }),
        skipped: None,
    });
    cases.push(Case {
        class: "run".into(),
        name: "verdict".into(),
        failure: (r.verdict != crate::report::Verdict::Pass).then(|| {
            (
                format!(
                    "FAIL: {}",
                    r.verdict_reasons
                        .first()
                        .map_or("no reason given", String::as_str)
                ),
                "verdict".into(),
                r.verdict_reasons.join("\n"),
            )
        }),
        skipped: None,
    });
    cases
}
