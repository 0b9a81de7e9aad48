//! The end-of-run summary on the terminal (`run`, `report`, `merge`):
//! the verdict first and why; each objective with a mark and its level in
//! words, its value, threshold and margin; the three latencies' p50, p95
//! and p99; errors by type; the self-check. Colour only when asked (a
//! terminal without `NO_COLOR`); the words carry everything without it.

use super::num;
use crate::aggregate::LatencyFigures;
use crate::objective::{Judged, Level};
use crate::report::{Report, Verdict};
use std::fmt::Write;

/// How the summary is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours (a terminal that has not set `NO_COLOR`).
    pub color: bool,
    /// Only the verdict line (`--quiet`).
    pub quiet: bool,
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn paint(style: Style, color: &str, text: &str) -> String {
    if style.color {
        format!("{color}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

/// A level's mark, word ([`Level::word`]) and colour.
pub fn mark(level: Level) -> (&'static str, &'static str, &'static str) {
    let (m, color) = match level {
        Level::Ok => ("✔", GREEN),
        Level::TargetMissed => ("▲", YELLOW),
        Level::Warning => ("⚠", YELLOW),
        Level::Critical => ("✖", RED),
        Level::NoData => ("∅", DIM),
        Level::Inconclusive => ("?", YELLOW),
    };
    (m, level.word(), color)
}

/// The verdict line alone: `FAIL smoke: 412 requests (...)`.
pub fn verdict_line(r: &Report, style: Style) -> String {
    let q = &r.figures.requests;
    let color = match r.verdict {
        Verdict::Pass => GREEN,
        Verdict::Fail => RED,
        Verdict::NotJudged => YELLOW,
    };
    format!(
        "{} {}: {} requests ({} ok, {} failed, {} dropped) in {} s; goodput {}%; severity {}",
        paint(style, &format!("{BOLD}{color}"), r.verdict.word()),
        r.scenario.name,
        q.total,
        q.ok,
        q.failed,
        q.dropped,
        num(r.measured_s),
        num(r.figures.goodput),
        r.severity.map_or("none".to_owned(), |s| format!("{s:?}")),
    )
}

/// The whole summary.
pub fn render(r: &Report, style: Style) -> String {
    let mut o = verdict_line(r, style);
    o.push('\n');
    if style.quiet {
        return o;
    }
    for w in r.target.warnings().iter().chain(&r.findings) {
        let _ = writeln!(o, "  {}", paint(style, YELLOW, &format!("⚠ {w}")));
    }
    if !r.verdict_reasons.is_empty() {
        let _ = writeln!(
            o,
            "{}",
            if r.verdict == Verdict::NotJudged {
                "What is incomplete in this shard:"
            } else {
                "Why:"
            }
        );
        for reason in &r.verdict_reasons {
            let _ = writeln!(o, "  - {reason}");
        }
        if r.verdict == Verdict::Fail
            && let Some(moved) = crate::engine::moved_most(&r.engine)
        {
            let _ = writeln!(o, "Meanwhile in the engine: {moved}.");
        }
    }
    objectives(&mut o, r, style);
    latencies(&mut o, r);
    let errors: Vec<String> = r
        .figures
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(kind, n)| {
            format!(
                "{kind} {n} ({}%)",
                num(r.figures.error_rates.get(kind).copied().unwrap_or(0.0))
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "Errors: {}",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(", ")
        }
    );
    let sc = &r.self_check;
    let figures = sc.figures.as_ref().map_or(String::new(), |f| {
        format!(
            "; timer lag p99 {} ms, max {} ms; CPU {}% avg, {}% max of {} cores; {} stalls",
            num(f.scheduler_lag_ms.p99),
            num(f.scheduler_lag_ms.max),
            num(f.cpu_percent_avg),
            num(f.cpu_percent_max),
            f.cores,
            f.stalls
        )
    });
    let _ = writeln!(
        o,
        "Self-check: {}{figures}",
        if sc.trustworthy {
            paint(style, GREEN, "trustworthy")
        } else {
            paint(
                style,
                RED,
                &format!("NOT trustworthy ({})", sc.reasons.join("; ")),
            )
        }
    );
    o
}

fn objectives(o: &mut String, r: &Report, style: Style) {
    if r.slo.is_empty() {
        let _ = writeln!(
            o,
            "Objectives: {}",
            if r.verdict == Verdict::NotJudged {
                "not judged (a shard: `loadgen merge` judges)"
            } else {
                "none"
            }
        );
        return;
    }
    let _ = writeln!(
        o,
        "Objectives ({}, failing at {}):",
        r.slo_file.as_deref().unwrap_or("the default policy"),
        super::fail_on_word(r.fail_on)
    );
    let name_w = r
        .slo
        .iter()
        .map(|j| j.label().chars().count())
        .max()
        .unwrap_or(0);
    for j in &r.slo {
        let (m, word, color) = mark(j.level);
        let fails = j.fails(&r.gate());
        let cell = format!("{m} {word:<13}");
        let _ = writeln!(
            o,
            "  {} {:<name_w$}  {:>10}  {}",
            if style.color {
                paint(style, color, &cell)
            } else {
                cell
            },
            j.label(),
            j.value.map_or("—".to_owned(), num),
            detail(j, fails),
        );
    }
}

/// Threshold and margin, and what decided it.
fn detail(j: &Judged, fails: bool) -> String {
    let mut d = match j.level {
        Level::NoData => format!("not measured (threshold {})", num(j.threshold)),
        _ => format!(
            "threshold {}, margin {}",
            num(j.threshold),
            j.margin.map_or("—".to_owned(), |m| {
                if m >= 0.0 {
                    format!("+{}", num(m))
                } else {
                    num(m)
                }
            })
        ),
    };
    if let (Some(i), Some(n)) = (&j.interval, j.samples) {
        let _ = write!(d, "; 95% interval {}, n={n}", super::interval(i));
        if let Some(b) = j.decided_by {
            let _ = write!(d, ", decided by its {}", b.word());
        }
    }
    if fails {
        d.push_str("  ← fails the run");
    } else if !j.required && j.level == Level::NoData {
        d.push_str("  (not required)");
    }
    d
}

fn latencies(o: &mut String, r: &Report) {
    let t = &r.figures.scheduled_latency_ms;
    let rows: [(&str, &LatencyFigures); 3] = [
        ("first token", &t.first_token),
        ("first audio", &t.first_audio),
        ("complete", &t.complete),
    ];
    let _ = writeln!(
        o,
        "Latency (ms, from the intended start){:>8} {:>8} {:>8} {:>7}",
        "p50", "p95", "p99", "count"
    );
    for (name, f) in rows {
        let v = |x: Option<f64>| x.map_or("—".to_owned(), num);
        let _ = writeln!(
            o,
            "  {name:<35}{:>8} {:>8} {:>8} {:>7}",
            v(f.p50),
            v(f.p95),
            v(f.p99),
            f.count
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Style {
        Style {
            color: false,
            quiet: false,
        }
    }

    /// The sample report (first token p95 with target 500, warning 550,
    /// critical 2000; success rate at warning; a server figure not
    /// measured) with its first objective at `level` for `value`.
    fn at(level: Level, value: f64) -> Report {
        let mut r = crate::render::tests::sample();
        let j = &mut r.slo[0];
        j.threshold = match level {
            Level::Warning => 550.0,
            Level::Critical => 2000.0,
            _ => 500.0,
        };
        j.level = level;
        j.point_level = level;
        j.value = Some(value);
        j.margin = Some(j.threshold - value);
        // The sample's interval belongs to its own value.
        (j.interval, j.samples) = (None, None);
        rejudge(&mut r);
        r
    }

    fn rejudge(r: &mut Report) {
        let (verdict, reasons) = crate::report::verdict(
            &r.slo,
            &r.gate(),
            r.self_check.trustworthy,
            &r.self_check.reasons,
        );
        r.verdict = verdict;
        r.verdict_reasons = reasons;
    }

    #[test]
    fn a_summary_for_each_outcome_without_a_terminal() {
        let mut pass = at(Level::Ok, 420.0);
        pass.slo.truncate(2);
        let ok = &mut pass.slo[1];
        (ok.level, ok.point_level) = (Level::Ok, Level::Ok);
        (ok.value, ok.threshold, ok.margin) = (Some(99.5), 99.0, Some(0.5));
        pass.severity = None;
        pass.self_check.figures = Some(crate::self_check::SelfCheckFigures {
            scheduler_lag_ms: crate::self_check::LagFigures {
                p50: 0.1,
                p99: 1.2,
                max: 4.0,
            },
            cpu_percent_avg: 31.0,
            cpu_percent_max: 55.0,
            cores: 2,
            ..Default::default()
        });
        rejudge(&mut pass);
        insta::assert_snapshot!("console_pass", render(&pass, plain()));
        insta::assert_snapshot!(
            "console_target_missed",
            render(&at(Level::TargetMissed, 520.0), plain())
        );
        insta::assert_snapshot!(
            "console_warning",
            render(&at(Level::Warning, 600.0), plain())
        );
        insta::assert_snapshot!(
            "console_critical",
            render(&at(Level::Critical, 2500.0), plain())
        );
        let mut untrusted = at(Level::Ok, 420.0);
        untrusted.self_check = crate::self_check::SelfCheck::not_recorded();
        rejudge(&mut untrusted);
        insta::assert_snapshot!("console_untrusted", render(&untrusted, plain()));
    }

    #[test]
    fn the_no_data_objective_says_so_and_quiet_keeps_the_verdict_line() {
        let r = at(Level::Ok, 420.0);
        let text = render(&r, plain());
        // The sample's server KB hit rate was not measured.
        assert!(
            text.lines().any(|l| l.contains("∅ no data")
                && l.contains("server KB hit rate")
                && l.contains("fails the run")),
            "{text}"
        );
        let quiet = render(
            &r,
            Style {
                color: false,
                quiet: true,
            },
        );
        assert_eq!(quiet.lines().count(), 1, "{quiet}");
        assert!(quiet.starts_with("FAIL sample: 20 requests"), "{quiet}");
    }

    #[test]
    fn colour_only_on_a_terminal_and_the_words_stay() {
        let r = at(Level::Critical, 2500.0);
        let color = render(
            &r,
            Style {
                color: true,
                quiet: false,
            },
        );
        insta::assert_snapshot!("console_critical_terminal", color);
        assert!(color.contains("\x1b[1m\x1b[31mFAIL\x1b[0m"), "{color}");
        assert!(color.contains("\x1b[31m✖ critical"), "{color}");
        let plain_text = render(&r, plain());
        assert!(!plain_text.contains('\x1b'));
        // Without the escapes the text is the same.
        let stripped = strip(&color);
        assert_eq!(stripped, plain_text);
    }

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
