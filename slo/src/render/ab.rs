//! `loadgen ab`'s reports, from `ab.json` alone: the console summary,
//! `ab.md` (a job summary), `ab-junit.xml` (one case per objective, and
//! the verdict) and `ab.html` (the two CDFs overlaid, the pairs'
//! difference over the run, each look's interval).

use super::chart::{Chart, Series};
use super::junit::escape;
use crate::ab::{AbReport, Judged, Standing, Verdict};
use std::fmt::Write;

const BASELINE: &str = "#1f77b4";
const CANDIDATE: &str = "#d62728";

fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Inconclusive => "INCONCLUSIVE",
    }
}

fn standing(s: Standing) -> &'static str {
    match s {
        Standing::Within => "within",
        Standing::Past => "PAST",
        Standing::Undecided => "undecided",
        Standing::NoData => "no data",
    }
}

/// Two places, not `format::opt`'s one: the differences judged here are
/// often a few hundredths of a unit or a percent.
fn opt(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |v| format!("{v:.2}"))
}

/// The tolerance's unit after a number: `%` or the figure's.
fn unit(j: &Judged) -> &'static str {
    if j.tolerance.ends_with('%') { "%" } else { "" }
}

const HEADS: [&str; 8] = [
    "objective",
    "baseline",
    "candidate",
    "worse by",
    "interval",
    "tolerance",
    "pairs",
    "result",
];

/// An objective's row of the tables.
fn cells(j: &Judged) -> [String; 8] {
    [
        j.objective.clone(),
        opt(j.baseline),
        opt(j.candidate),
        format!("{}{}", opt(j.worse_by), unit(j)),
        format!("{} to {}", opt(j.lower), opt(j.upper)),
        j.tolerance.clone(),
        j.pairs.to_string(),
        standing(j.standing).to_owned(),
    ]
}

/// One line: the verdict, the pairs it took, and of how many at most.
pub fn headline(r: &AbReport) -> String {
    let at = match r.verdict {
        Verdict::Inconclusive => format!("not decided after {} pairs", r.pairs),
        _ => format!("decided after {} pairs", r.pairs),
    };
    format!(
        "{} {}: candidate against baseline, {at} (at most {}; {} pairing, {:.0} % confidence)",
        word(r.verdict),
        r.scenario,
        r.plan.max_pairs,
        r.pairing,
        r.plan.confidence * 100.0
    )
}

/// The terminal's summary.
pub fn console(r: &AbReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}", headline(r));
    let _ = writeln!(o, "  baseline  {}", r.baseline.url);
    let _ = writeln!(o, "  candidate {}", r.candidate.url);
    for j in &r.objectives {
        let _ = writeln!(
            o,
            "  {:<22} worse by {:>8}{} [{} to {}], tolerance {:<10} {}",
            j.objective,
            opt(j.worse_by),
            unit(j),
            opt(j.lower),
            opt(j.upper),
            j.tolerance,
            standing(j.standing)
        );
    }
    for why in &r.reasons {
        let _ = writeln!(o, "  - {why}");
    }
    if let Some(s) = &r.self_check {
        let _ = writeln!(o, "  self-check: {s}");
    }
    o
}

/// `ab.md`.
pub fn markdown(r: &AbReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## {}\n", headline(r));
    let _ = writeln!(
        o,
        "Baseline `{}` · candidate `{}`\n",
        r.baseline.url, r.candidate.url
    );
    for why in &r.reasons {
        let _ = writeln!(o, "- {why}");
    }
    if let Some(s) = &r.self_check {
        let _ = writeln!(o, "\n> **Self-check**: {s}");
    }
    let _ = writeln!(
        o,
        "\n| {} |\n|{}",
        HEADS.join(" | "),
        " --- |".repeat(HEADS.len())
    );
    for j in &r.objectives {
        let _ = writeln!(o, "| {} |", cells(j).join(" | "));
    }
    let _ = writeln!(
        o,
        "\nLooks at {} pairs; taken: {}.",
        r.looks_planned
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        r.looks
            .iter()
            .map(|l| format!("{} ({})", l.pairs, word(l.verdict).to_lowercase()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        o,
        "\n| | requests | ok | dropped | cut off at the end | run |\n| --- | --- | --- | --- | --- | --- |"
    );
    for (name, a) in [("baseline", &r.baseline), ("candidate", &r.candidate)] {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | `{}` |",
            a.requests, a.ok, a.dropped, a.interrupted, a.run
        );
    }
    o
}

/// `ab-junit.xml`: a case per objective (failing when past its tolerance
/// or not decided at the end) and `ab/verdict`.
pub fn junit(r: &AbReport) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let decided = r.verdict != Verdict::Inconclusive;
    for j in &r.objectives {
        let bad = j.standing == Standing::Past || (!decided && j.standing != Standing::Within);
        let _ = write!(
            cases,
            r#"    <testcase classname="ab" name="{}">"#,
            escape(&j.objective)
        );
        if bad {
            failures += 1;
            let _ = write!(
                cases,
                r#"<failure message="{}: worse by {}{} [{} to {}], tolerance {}"/>"#,
                standing(j.standing),
                opt(j.worse_by),
                unit(j),
                opt(j.lower),
                opt(j.upper),
                escape(&j.tolerance)
            );
        }
        cases.push_str("</testcase>\n");
    }
    let _ = write!(cases, r#"    <testcase classname="ab" name="verdict">"#);
    if r.verdict != Verdict::Pass {
        failures += 1;
        let _ = write!(
            cases,
            r#"<failure message="{}">{}</failure>"#,
            escape(&headline(r)),
            escape(&r.reasons.join("\n"))
        );
    }
    cases.push_str("</testcase>\n");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"loadgen ab\" tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n{cases}  </testsuite>\n</testsuites>\n",
        escape(&r.scenario),
        n = r.objectives.len() + 1,
    )
}

/// `ab.html`: one self-contained page.
pub fn html(r: &AbReport) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>A/B {} — {}</title><style>{}</style></head><body>",
        word(r.verdict),
        escape(&r.scenario),
        super::comparison::STYLE
    );
    let _ = write!(
        o,
        "<div class=\"verdict {}\" role=\"status\"><h1>{}</h1><p>Baseline {} · candidate {}</p></div>",
        if r.verdict == Verdict::Pass {
            "pass"
        } else {
            "fail"
        },
        escape(&headline(r)),
        escape(&r.baseline.url),
        escape(&r.candidate.url)
    );
    if !r.reasons.is_empty() {
        o.push_str("<ul>");
        for why in &r.reasons {
            let _ = write!(o, "<li>{}</li>", escape(why));
        }
        o.push_str("</ul>");
    }
    if let Some(s) = &r.self_check {
        let _ = write!(o, "<p><strong>Self-check:</strong> {}</p>", escape(s));
    }
    let _ = write!(
        o,
        "<h2>Objectives</h2><table><tr><th>{}</th></tr>",
        HEADS.join("</th><th>")
    );
    for j in &r.objectives {
        let row: Vec<String> = cells(j).iter().map(|c| escape(c)).collect();
        let _ = write!(
            o,
            "<tr class=\"{}\"><td>{}</td></tr>",
            match j.standing {
                Standing::Past => "regressed",
                Standing::Within => "ok",
                _ => "worse",
            },
            row.join("</td><td>")
        );
    }
    o.push_str("</table><div class=\"grid\">");
    cdf_charts(r, &mut o);
    look_charts(r, &mut o);
    o.push_str("</div></body></html>\n");
    o
}

/// Each arm's CDF of a figure, overlaid; the pairs' difference over time.
fn cdf_charts(r: &AbReport, o: &mut String) {
    for c in &r.cdf {
        let name = c.figure.name();
        let line = |f: fn(&crate::ab::CdfPoint) -> f64| {
            c.points
                .iter()
                .map(|p| (f(p), p.q * 100.0))
                .collect::<Vec<_>>()
        };
        let mut chart = Chart::new(
            &format!("{name}: both CDFs"),
            &format!("{name} (ms)"),
            "requests at or under it (%)",
            vec![
                Series {
                    name: "baseline",
                    color: BASELINE,
                    points: line(|p| p.baseline),
                },
                Series {
                    name: "candidate",
                    color: CANDIDATE,
                    points: line(|p| p.candidate),
                },
            ],
        );
        chart.y_max = Some(100.0);
        chart.width = 640.0;
        let _ = write!(o, "<figure>{}</figure>", chart.svg());
    }
    if !r.over_time.is_empty() {
        let mut chart = Chart::new(
            "first token: the pairs' difference over the run (median per stretch)",
            "time (s)",
            "candidate − baseline (ms)",
            vec![Series {
                name: "median difference",
                color: CANDIDATE,
                points: r
                    .over_time
                    .iter()
                    .map(|p| (p.at_s, p.median_difference))
                    .collect(),
            }],
        );
        chart.x_from = Some(0.0);
        chart.width = 640.0;
        let _ = write!(o, "<figure>{}</figure>", chart.svg());
    }
}

/// Each objective's difference and its bounds at each look, against its
/// tolerance.
fn look_charts(r: &AbReport, o: &mut String) {
    for (i, obj) in r.plan.objectives.iter().enumerate() {
        let unit = if matches!(obj.tolerance, crate::compare::Tolerance::Percent(_)) {
            "%".to_owned()
        } else {
            obj.figure.unit().to_owned()
        };
        let at = |f: fn(&Judged) -> Option<f64>| {
            r.looks
                .iter()
                .filter_map(|l| Some((l.pairs as f64, f(l.judged.get(i)?)?)))
                .collect::<Vec<_>>()
        };
        let limit = r.looks.iter().map(|l| (l.pairs as f64, obj.limit()));
        let chart = Chart {
            width: 640.0,
            ..Chart::new(
                &format!("{}: worse by, and its interval, at each look", obj.name()),
                "pairs",
                &format!("worse by ({unit})"),
                vec![
                    Series {
                        name: "worse by",
                        color: CANDIDATE,
                        points: at(|j| j.worse_by),
                    },
                    Series {
                        name: "lower bound",
                        color: "#888888",
                        points: at(|j| j.lower),
                    },
                    Series {
                        name: "upper bound",
                        color: "#888888",
                        points: at(|j| j.upper),
                    },
                    Series {
                        name: "tolerance",
                        color: "#1b7f3b",
                        points: limit.collect(),
                    },
                ],
            )
        };
        let _ = write!(o, "<figure>{}</figure>", chart.svg());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::{AbObjective, AbPlan, ArmReport, Look, parse_objective};

    fn report(verdict: Verdict, standing: Standing) -> AbReport {
        let objective: AbObjective = parse_objective("first_token.p95=5%").unwrap();
        let judged = Judged {
            objective: objective.name(),
            tolerance: objective.tolerance_text(),
            baseline: Some(100.0),
            candidate: Some(110.0),
            worse_by: Some(10.0),
            lower: Some(7.5),
            upper: Some(12.5),
            limit: 5.0,
            pairs: 400,
            standing,
        };
        AbReport {
            scenario: "s".into(),
            pairing: "mirror".into(),
            baseline: ArmReport {
                url: "http://127.0.0.1:1".into(),
                ..ArmReport::default()
            },
            candidate: ArmReport {
                url: "http://127.0.0.1:2".into(),
                ..ArmReport::default()
            },
            plan: AbPlan {
                objectives: vec![objective],
                confidence: 0.95,
                first_look: 100,
                max_pairs: 800,
            },
            looks_planned: vec![100, 200, 400, 800],
            verdict,
            reasons: vec!["first_token.p95 is worse".into()],
            pairs: 400,
            objectives: vec![judged.clone()],
            looks: vec![Look {
                pairs: 400,
                at_s: 4.0,
                judged: vec![judged],
                verdict,
            }],
            cdf: Vec::new(),
            over_time: Vec::new(),
            same_target: false,
            self_check: None,
        }
    }

    #[test]
    fn a_failing_comparison_fails_its_case_and_its_verdict() {
        let r = report(Verdict::Fail, Standing::Past);
        let x = junit(&r);
        assert_eq!(x.matches("<failure").count(), 2, "{x}");
        assert!(
            x.contains("worse by 10.00% [7.50 to 12.50], tolerance +5%"),
            "{x}"
        );
        assert!(
            console(&r).starts_with("FAIL s: candidate against baseline, decided after 400 pairs")
        );
        assert!(markdown(&r).contains(
            "| first_token.p95 | 100.00 | 110.00 | 10.00% | 7.50 to 12.50 | +5% | 400 | PAST |"
        ));
        let h = html(&r);
        assert!(h.contains("<svg") && h.contains("verdict fail"), "{h}");
    }

    #[test]
    fn an_inconclusive_comparison_fails_what_it_left_undecided() {
        let r = report(Verdict::Inconclusive, Standing::Undecided);
        let x = junit(&r);
        assert_eq!(x.matches("<failure").count(), 2, "{x}");
        let p = report(Verdict::Pass, Standing::Within);
        assert_eq!(junit(&p).matches("<failure").count(), 0);
    }
}
