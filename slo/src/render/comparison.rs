//! `loadgen compare`'s reports: `comparison.md` and `comparison.html`,
//! baseline against current. The verdict first (how many figures got
//! worse past their tolerance), the regressions before the rest, each
//! objective of the two runs with its old and new value, the change and
//! its level then and now, and, in HTML, each latency's CDF of both runs
//! overlaid on the current run's objective bands.

use super::chart::{BandAxis, Chart, Series};
use super::junit::escape;
use super::num;
use crate::compare::Compared;
use crate::objective::{Direction, Judged, Level};
use serde_json::Value;
use std::fmt::Write;

/// One objective in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveChange {
    pub name: String,
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    pub baseline_level: Option<Level>,
    pub current_level: Option<Level>,
    /// Higher is worse (`max`) or better (`min`), when known.
    pub direction: Option<Direction>,
}

impl ObjectiveChange {
    /// Its level got worse: a level is worse the further it is past the
    /// target; an inconclusive one counts as a missed target (it may be
    /// past it); no data is worst (nothing shows it holds).
    pub fn worse(&self) -> bool {
        let rank = |l: Level| match l {
            Level::Ok => 0,
            Level::TargetMissed | Level::Inconclusive => 1,
            Level::Warning => 2,
            Level::Critical => 3,
            Level::NoData => 4,
        };
        matches!((self.baseline_level, self.current_level), (Some(b), Some(c)) if rank(c) > rank(b))
    }

    /// The change, and as a percentage of the baseline.
    pub fn change(&self) -> Option<(f64, Option<f64>)> {
        let (b, c) = (self.baseline?, self.current?);
        Some((c - b, (b != 0.0).then(|| (c - b) / b.abs() * 100.0)))
    }
}

/// The objectives of both runs, by name: the current run's order, then
/// those only the baseline had; the ones whose level got worse first.
pub fn objectives(baseline: &Value, current: &Value) -> Vec<ObjectiveChange> {
    let judged = |doc: &Value| -> Vec<Judged> {
        serde_json::from_value(doc["slo"].clone()).unwrap_or_default()
    };
    let (b, c) = (judged(baseline), judged(current));
    let mut names: Vec<&str> = c.iter().map(|j| j.name.as_str()).collect();
    for j in &b {
        if !names.contains(&j.name.as_str()) {
            names.push(&j.name);
        }
    }
    let mut rows: Vec<ObjectiveChange> = names
        .into_iter()
        .map(|name| {
            let (bj, cj) = (
                b.iter().find(|j| j.name == name),
                c.iter().find(|j| j.name == name),
            );
            let any = cj.or(bj).expect("named by one of them");
            ObjectiveChange {
                name: name.to_owned(),
                metric: any.metric.clone(),
                baseline: bj.and_then(|j| j.value),
                current: cj.and_then(|j| j.value),
                baseline_level: bj.map(|j| j.level),
                current_level: cj.map(|j| j.level),
                direction: any
                    .levels
                    .map(|l| l.direction)
                    .or_else(|| crate::compare::direction_of(&any.metric)),
            }
        })
        .collect();
    // Stable: worse first, each group in its own order.
    rows.sort_by_key(|r| !r.worse());
    rows
}

/// The checks, regressions first, then the inconclusive ones (each
/// group in the checks' order).
fn regressions_first(rows: &[Compared]) -> Vec<&Compared> {
    let mut v: Vec<&Compared> = rows.iter().collect();
    v.sort_by_key(|r| (!r.regressed, !r.inconclusive));
    v
}

/// Whether the comparison fails: a regression, or an inconclusive figure
/// unless `accept_inconclusive`.
pub fn fails(rows: &[Compared], accept_inconclusive: bool) -> bool {
    rows.iter().any(|r| r.fails(accept_inconclusive))
}

/// The verdict in words: regressions first, then the figures too few
/// samples left undecided, named.
pub fn headline(rows: &[Compared], accept_inconclusive: bool) -> String {
    let bad = rows.iter().filter(|r| r.regressed).count();
    let undecided: Vec<&str> = rows
        .iter()
        .filter(|r| r.inconclusive)
        .map(|r| r.metric.as_str())
        .collect();
    let inconclusive = if undecided.is_empty() {
        String::new()
    } else {
        format!(
            "{} of {} figures inconclusive (too few samples to compare{}): {}",
            undecided.len(),
            rows.len(),
            if accept_inconclusive {
                "; accepted by --accept-inconclusive"
            } else {
                "; pass --accept-inconclusive to accept them"
            },
            undecided.join(", ")
        )
    };
    match (bad, inconclusive.is_empty()) {
        (0, true) => format!(
            "No regression: {} figures within their tolerance of the baseline",
            rows.len()
        ),
        (0, false) if accept_inconclusive => format!(
            "No regression shown: {} figures within their tolerance of the baseline; {inconclusive}",
            rows.len() - undecided.len()
        ),
        (0, false) => format!("INCONCLUSIVE: {inconclusive}"),
        (_, true) => format!(
            "REGRESSED: {bad} of {} figures past their tolerance of the baseline",
            rows.len()
        ),
        (_, false) => format!(
            "REGRESSED: {bad} of {} figures past their tolerance of the baseline; {inconclusive}",
            rows.len()
        ),
    }
}

fn f(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), num)
}

fn change_text(o: &ObjectiveChange) -> String {
    match o.change() {
        None => "—".to_owned(),
        Some((d, pct)) => {
            let sign = if d > 0.0 { "+" } else { "" };
            let better_worse = match (o.direction, d) {
                (_, 0.0) => "",
                (Some(Direction::Max), d) if d > 0.0 => " worse",
                (Some(Direction::Max), _) => " better",
                (Some(Direction::Min), d) if d < 0.0 => " worse",
                (Some(Direction::Min), _) => " better",
                (None, _) => "",
            };
            match pct {
                Some(p) => format!("{sign}{} ({sign}{}%){better_worse}", num(d), num(p)),
                None => format!("{sign}{}{better_worse}", num(d)),
            }
        }
    }
}

fn level_text(l: Option<Level>) -> String {
    l.map_or("—".to_owned(), |l| {
        let (m, w, _) = super::console::mark(l);
        format!("{m} {w}")
    })
}

/// A check's result; `mark`: with ❌ (Markdown; a page may lack the
/// emoji's font, so HTML says it in words and colour).
fn check_text(r: &Compared, mark: bool) -> String {
    let x = if mark { "❌ " } else { "" };
    let q = if mark { "❔ " } else { "" };
    match (r.regressed, r.inconclusive, r.note.is_empty()) {
        (true, _, true) => format!("{x}regressed"),
        (true, _, false) => format!("{x}regressed: {}", r.note),
        (false, true, _) => format!("{q}inconclusive: {}", r.note),
        (false, false, true) => "ok".to_owned(),
        (false, false, false) => r.note.clone(),
    }
}

fn with_interval(v: Option<f64>, i: &Option<crate::evidence::Interval>) -> String {
    match i {
        Some(i) => format!(
            "{} [{}–{}]",
            f(v),
            i.lo.map_or("…".to_owned(), num),
            i.hi.map_or("…".to_owned(), num)
        ),
        None => f(v),
    }
}

/// `comparison.md` (also what `loadgen compare` prints).
pub fn markdown(
    rows: &[Compared],
    baseline: &Value,
    current: &Value,
    accept_inconclusive: bool,
) -> String {
    let bad = fails(rows, accept_inconclusive);
    let mut o = format!(
        "## {} {}\n\n",
        if bad { "❌" } else { "✅" },
        headline(rows, accept_inconclusive)
    );
    o.push_str("| metric | baseline | current | limit | |\n| --- | --- | --- | --- | --- |\n");
    for r in regressions_first(rows) {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            r.metric,
            with_interval(r.baseline, &r.baseline_interval),
            with_interval(r.current, &r.current_interval),
            f(r.limit),
            check_text(r, true)
        );
    }
    let objectives = objectives(baseline, current);
    if !objectives.is_empty() {
        o.push_str("\n### Objectives\n\n| objective | baseline | current | change | level then | level now |\n| --- | --- | --- | --- | --- | --- |\n");
        for c in &objectives {
            let _ = writeln!(
                o,
                "| {}{} | {} | {} | {} | {} | {} |",
                c.name,
                if c.worse() { " ⬇" } else { "" },
                f(c.baseline),
                f(c.current),
                change_text(c),
                level_text(c.baseline_level),
                level_text(c.current_level)
            );
        }
    }
    o
}

/// The CDF points of one latency in a report (x: ms, y: percent).
fn cdf(doc: &Value, latency: &str) -> Vec<(f64, f64)> {
    doc["distributions"][latency]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[1].as_f64()?, p[0].as_f64()? * 100.0)))
        .collect()
}

pub(super) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;padding:0 24px;color:#222;max-width:1400px}\
h1{margin:0;font-size:1.5em}.verdict{padding:14px 20px;border-radius:6px;color:#fff;margin-bottom:12px}\
.verdict.pass{background:#1b7f3b}.verdict.fail{background:#b3261e}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
td:first-child,th:first-child{text-align:left}tr.regressed td{background:#fde2e1}tr.worse td{background:#fff0d9}\
figure{margin:12px 0 24px}figcaption{font-weight:600;margin-bottom:4px}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:0 24px}";

/// `comparison.html`: one self-contained page, as `report.html`.
pub fn html(
    rows: &[Compared],
    baseline: &Value,
    current: &Value,
    names: (&str, &str),
    accept_inconclusive: bool,
) -> String {
    let bad = fails(rows, accept_inconclusive);
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Comparison — {}</title><style>{STYLE}</style></head><body>",
        if rows.iter().any(|r| r.regressed) {
            "REGRESSED"
        } else if bad {
            "INCONCLUSIVE"
        } else {
            "no regression"
        }
    );
    let _ = write!(
        o,
        "<div class=\"verdict {}\" role=\"status\"><h1>{}</h1><p>Baseline {} · current {}</p></div>",
        if bad { "fail" } else { "pass" },
        escape(&headline(rows, accept_inconclusive)),
        escape(names.0),
        escape(names.1)
    );
    o.push_str("<h2>Figures against their tolerance</h2><table><tr><th>metric</th><th>baseline</th><th>current</th><th>limit</th><th>result</th></tr>");
    for r in regressions_first(rows) {
        let _ = write!(
            o,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if r.regressed {
                "regressed"
            } else if r.inconclusive {
                "worse"
            } else {
                "ok"
            },
            escape(&r.metric),
            escape(&with_interval(r.baseline, &r.baseline_interval)),
            escape(&with_interval(r.current, &r.current_interval)),
            f(r.limit),
            escape(&check_text(r, false))
        );
    }
    o.push_str("</table>");
    let objectives = objectives(baseline, current);
    if !objectives.is_empty() {
        o.push_str("<h2>Objectives</h2><table><tr><th>objective</th><th>baseline</th><th>current</th><th>change</th><th>level then</th><th>level now</th></tr>");
        for c in &objectives {
            let _ = write!(
                o,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if c.worse() { "worse" } else { "same" },
                escape(&c.name),
                f(c.baseline),
                f(c.current),
                escape(&change_text(c)),
                level_text(c.baseline_level),
                level_text(c.current_level)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Latency distributions, baseline and current</h2><div class=\"grid\">");
    let current_report: Option<crate::report::Report> =
        serde_json::from_value(current.clone()).ok();
    for (name, latency, color) in [
        ("First token", "first_token", "#1f77b4"),
        ("First audio", "first_audio", "#2ca02c"),
        ("Complete", "complete", "#9467bd"),
    ] {
        let mut c = Chart::new(
            &format!("{name}: share of requests at or below"),
            &format!("{} (ms)", name.to_lowercase()),
            "percent of requests",
            vec![
                Series {
                    name: "baseline",
                    color: "#7f7f7f",
                    points: cdf(baseline, latency),
                },
                Series {
                    name: "current",
                    color,
                    points: cdf(current, latency),
                },
            ],
        );
        if let Some(r) = &current_report {
            c.bands = super::html::bands_for(r, latency);
        }
        c.band_axis = BandAxis::X;
        c.x_from = Some(0.0);
        c.y_max = Some(100.0);
        c.width = 480.0;
        o.push_str(&c.svg());
    }
    o.push_str("</div></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{compare, default_checks};

    fn pair() -> (Value, Value) {
        let base = serde_json::to_value(crate::render::tests::sample()).unwrap();
        let mut slower = crate::render::tests::sample();
        // A slower current run: its first token p95 30 % higher, past its
        // critical level.
        slower.figures.scheduled_latency_ms.first_token.p95 = slower
            .figures
            .scheduled_latency_ms
            .first_token
            .p95
            .map(|v| v * 1.3);
        slower.figures.scheduled_latency_ms.first_token.evidence = None;
        slower.slo[0].value = Some(2500.0);
        slower.slo[0].level = Level::Critical;
        for p in &mut slower.figures.distributions.first_token {
            p[1] *= 1.3;
        }
        (base, serde_json::to_value(slower).unwrap())
    }

    #[test]
    fn regressions_and_worse_objectives_come_first() {
        let (base, cur) = pair();
        let mut base_plain = base.clone();
        base_plain["scheduled_latency_ms"]["first_token"]["evidence"] = Value::Null;
        let rows = compare(&base_plain, &cur, &default_checks());
        let md = markdown(&rows, &base_plain, &cur, false);
        insta::assert_snapshot!("comparison_markdown", md);
        let table: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| scheduled"))
            .collect();
        assert!(
            table[0].contains("first_token.p95") && table[0].contains("❌"),
            "{md}"
        );
        let objectives = objectives(&base_plain, &cur);
        assert_eq!(objectives[0].name, "first token p95");
        assert!(objectives[0].worse());
        assert!(
            change_text(&objectives[0]).ends_with("worse"),
            "{objectives:?}"
        );
        // The sample itself: 20 requests leave its intervals unbounded,
        // so the same figures are inconclusive, not "no regression".
        let same = compare(&base_plain, &base_plain, &default_checks());
        let md = markdown(&same, &base_plain, &base_plain, false);
        assert!(
            md.starts_with("## ❌ INCONCLUSIVE: 5 of 12 figures"),
            "{md}"
        );
        let md = markdown(&same, &base_plain, &base_plain, true);
        assert!(
            md.starts_with("## ✅ No regression shown: 7 figures within"),
            "{md}"
        );
    }

    #[test]
    fn the_html_overlays_both_runs_on_the_current_bands() {
        let (base, cur) = pair();
        let rows = compare(&base, &cur, &default_checks());
        let page = html(
            &rows,
            &base,
            &cur,
            ("base/report.json", "cur/report.json"),
            false,
        );
        assert!(page.starts_with("<!DOCTYPE html>") && !page.contains("<script"));
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(
            page.contains("<title>baseline</title>") && page.contains("<title>current</title>")
        );
        assert!(
            page.contains("<title>first token p95 target 500</title>"),
            "{page}"
        );
    }
}
