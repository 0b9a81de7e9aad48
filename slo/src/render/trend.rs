//! `loadgen trend`: key figures across runs (the last N reports a CI job
//! kept), each objective's value run by run over its levels, and the runs
//! where a figure crossed into a worse level marked. `trend.md` and
//! `trend.html`, from the runs' report.json alone.

use super::chart::{BandAxis, Chart, Series};
use super::junit::escape;
use super::num;
use crate::objective::{Judged, Level, Levels};
use serde_json::Value;
use std::fmt::Write;

/// One run: its label (a folder name, a commit) and its report.json.
pub struct Run {
    pub label: String,
    pub report: Value,
}

/// One objective across the runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub metric: String,
    /// Per run, in order: its value and level (`None`: not in that run).
    pub points: Vec<Option<(Option<f64>, Level)>>,
    /// The latest levels known.
    pub levels: Option<Levels>,
    /// Runs (indices) whose level is worse than the run before's.
    pub crossed: Vec<usize>,
}

/// How bad a level is, for crossings: a missed target and an
/// inconclusive percentile alike; no data worst.
fn rank(l: Level) -> u8 {
    match l {
        Level::Ok => 0,
        Level::TargetMissed | Level::Inconclusive => 1,
        Level::Warning => 2,
        Level::Critical => 3,
        Level::NoData => 4,
    }
}

/// The objectives of every run, by name (the latest run's order first).
pub fn lines(runs: &[Run]) -> Vec<Line> {
    let judged: Vec<Vec<Judged>> = runs
        .iter()
        .map(|r| serde_json::from_value(r.report["slo"].clone()).unwrap_or_default())
        .collect();
    let mut names: Vec<(String, String)> = Vec::new();
    for js in judged.iter().rev() {
        for j in js {
            if !names.iter().any(|(n, _)| *n == j.name) {
                names.push((j.name.clone(), j.metric.clone()));
            }
        }
    }
    names
        .into_iter()
        .map(|(name, metric)| {
            let points: Vec<Option<(Option<f64>, Level)>> = judged
                .iter()
                .map(|js| {
                    js.iter()
                        .find(|j| j.name == name)
                        .map(|j| (j.value, j.level))
                })
                .collect();
            let levels = judged
                .iter()
                .rev()
                .find_map(|js| js.iter().find(|j| j.name == name).and_then(|j| j.levels));
            let crossed = (1..points.len())
                .filter(|&i| match (points[i - 1], points[i]) {
                    (Some((_, a)), Some((_, b))) => rank(b) > rank(a),
                    _ => false,
                })
                .collect();
            Line {
                name,
                metric,
                points,
                levels,
                crossed,
            }
        })
        .collect()
}

fn cell(p: Option<(Option<f64>, Level)>) -> String {
    match p {
        None => "·".to_owned(),
        Some((v, l)) => {
            let (m, _, _) = super::console::mark(l);
            format!("{} {m}", v.map_or("—".to_owned(), num))
        }
    }
}

/// `trend.md`: one row an objective, one column a run; ⬆ marks the run
/// where it crossed into a worse level.
pub fn markdown(runs: &[Run]) -> String {
    let lines = lines(runs);
    let crossings: usize = lines.iter().map(|l| l.crossed.len()).sum();
    let mut o = format!(
        "## Trend over {} runs: {}\n\n",
        runs.len(),
        if crossings == 0 {
            "no figure crossed into a worse level".to_owned()
        } else {
            format!(
                "{crossings} crossing{} into a worse level",
                if crossings == 1 { "" } else { "s" }
            )
        }
    );
    for l in &lines {
        for &i in &l.crossed {
            let (v, level) = l.points[i].expect("a crossing has a point");
            let _ = writeln!(
                o,
                "- **{}** crossed into {} at run {} (`{}`): {}",
                l.name,
                level.word(),
                i + 1,
                runs[i].label,
                v.map_or("no data".to_owned(), num)
            );
        }
    }
    if crossings > 0 {
        o.push('\n');
    }
    o.push_str("| objective |");
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(o, " {} `{}` |", i + 1, r.label);
    }
    o.push_str("\n| --- |");
    o.push_str(&" --- |".repeat(runs.len()));
    o.push('\n');
    for l in &lines {
        let _ = write!(o, "| {} |", l.name);
        for (i, p) in l.points.iter().enumerate() {
            let _ = write!(
                o,
                " {}{} |",
                cell(*p),
                if l.crossed.contains(&i) { " ⬆" } else { "" }
            );
        }
        o.push('\n');
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;padding:0 24px;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}td.crossed{background:#fde2e1;font-weight:600}\
figure{margin:12px 0 24px}figcaption{font-weight:600;margin-bottom:4px}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:0 24px}";

/// `trend.html`: a chart an objective, over its levels, the crossing
/// runs marked; then the table.
pub fn html(runs: &[Run]) -> String {
    let lines = lines(runs);
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Trend over {} runs</title><style>{STYLE}</style></head><body><h1>Trend over {} runs</h1>",
        runs.len(),
        runs.len()
    );
    o.push_str("<p>Runs, in order: ");
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(
            o,
            "{}{} <code>{}</code>",
            if i > 0 { ", " } else { "" },
            i + 1,
            escape(&r.label)
        );
    }
    o.push_str("</p>");
    for l in &lines {
        for &i in &l.crossed {
            let (v, level) = l.points[i].expect("a crossing has a point");
            let _ = write!(
                o,
                "<p><strong>{}</strong> crossed into {} at run {} (<code>{}</code>): {}</p>",
                escape(&l.name),
                level.word(),
                i + 1,
                escape(&runs[i].label),
                v.map_or("no data".to_owned(), num)
            );
        }
    }
    o.push_str("<div class=\"grid\">");
    for l in &lines {
        let points: Vec<(f64, f64)> = l
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some(((i + 1) as f64, (*p)?.0?)))
            .collect();
        let mut c = Chart::new(
            &l.name,
            "run",
            &l.metric,
            vec![Series {
                name: &l.name,
                color: "#1f77b4",
                points,
            }],
        );
        if let Some(levels) = &l.levels {
            c.bands = super::chart::level_bands(&l.name, levels);
        }
        c.band_axis = BandAxis::Y;
        c.width = 560.0;
        c.markers = l
            .crossed
            .iter()
            .map(|&i| ((i + 1) as f64, format!("crossed at run {}", i + 1)))
            .collect();
        o.push_str(&c.svg());
    }
    o.push_str("</div><h2>Every run</h2><table><tr><th>objective</th>");
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(o, "<th>{} {}</th>", i + 1, escape(&r.label));
    }
    o.push_str("</tr>");
    for l in &lines {
        let _ = write!(o, "<tr><td>{}</td>", escape(&l.name));
        for (i, p) in l.points.iter().enumerate() {
            let crossed = l.crossed.contains(&i);
            let _ = write!(
                o,
                "<td{}>{}{}</td>",
                if crossed { " class=\"crossed\"" } else { "" },
                escape(&cell(*p)),
                if crossed { " ⬆ crossed" } else { "" }
            );
        }
        o.push_str("</tr>");
    }
    o.push_str("</table></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten runs of the sample report; in the seventh the first token p95
    /// goes past its warning level and stays there.
    pub fn ten() -> Vec<Run> {
        (0..10)
            .map(|i| {
                let mut r = crate::render::tests::sample();
                let j = &mut r.slo[0];
                if i >= 6 {
                    (j.value, j.level, j.point_level) =
                        (Some(700.0 + i as f64), Level::Warning, Level::Warning);
                } else {
                    (j.value, j.level, j.point_level) =
                        (Some(420.0 + i as f64), Level::Ok, Level::Ok);
                }
                Run {
                    label: format!("build-{}", 100 + i),
                    report: serde_json::to_value(r).unwrap(),
                }
            })
            .collect()
    }

    #[test]
    fn the_run_that_crossed_a_level_is_marked() {
        let runs = ten();
        let ls = lines(&runs);
        let ft = ls.iter().find(|l| l.name == "first token p95").unwrap();
        assert_eq!(ft.crossed, [6]);
        assert!(
            ls.iter()
                .filter(|l| l.name != "first token p95")
                .all(|l| l.crossed.is_empty())
        );
        let md = markdown(&runs);
        insta::assert_snapshot!("trend_markdown", md);
        assert!(
            md.contains("- **first token p95** crossed into warning at run 7 (`build-106`): 706"),
            "{md}"
        );
        let page = html(&runs);
        assert!(
            page.contains("<title>first token p95 warning 550</title>"),
            "{page}"
        );
        assert!(page.contains("crossed at run 7"), "{page}");
        assert_eq!(page.matches("class=\"crossed\"").count(), 1, "{page}");
        assert!(!page.contains("<script"));
    }
}
