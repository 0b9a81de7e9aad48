//! `report.html`: one self-contained page that works offline: no script,
//! no CDN, the charts are inline SVG drawn here.

use super::junit::escape;
use super::{fail_on_word, num, opt, with_ci};
use crate::objective::Level;
use crate::report::{Report, Verdict};
use std::fmt::Write;

/// One line of a chart: name, colour, points.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const PAD_L: f64 = 64.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 28.0;
const PAD_B: f64 = 40.0;

/// A line chart with axes, five ticks a side and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>]) -> String {
    marked_chart(title, x_label, y_label, series, None)
}

/// [`line_chart`] with a labelled vertical line at `marker.0`.
pub fn marked_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    marker: Option<(f64, &str)>,
) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<figure><figcaption>{}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        escape(title),
        escape(title)
    );
    let _ = write!(
        o,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>"##
    );
    if x0 > x1 {
        let _ = write!(
            o,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">no data</text></svg></figure>"##,
            W / 2.0,
            H / 2.0
        );
        return o;
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= 0.0 {
        y1 = 1.0;
    }
    y1 *= 1.05;
    let px = |x: f64| PAD_L + (x - x0) / (x1 - x0) * (W - PAD_L - PAD_R);
    let py = |y: f64| H - PAD_B - y / y1 * (H - PAD_T - PAD_B);
    for i in 0..=4 {
        let fy = y1 * f64::from(i) / 4.0;
        let fx = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(
            o,
            r##"<line x1="{PAD_L}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#444">{}</text>"##,
            W - PAD_R,
            PAD_L - 6.0,
            py(fy) + 4.0,
            num(fy),
            y = py(fy)
        );
        let _ = write!(
            o,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11" fill="#444">{}</text>"##,
            px(fx),
            H - PAD_B + 16.0,
            num(fx)
        );
    }
    let _ = write!(
        o,
        r##"<line x1="{PAD_L}" y1="{}" x2="{}" y2="{}" stroke="#444"/><line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{}" stroke="#444"/>"##,
        H - PAD_B,
        W - PAD_R,
        H - PAD_B,
        H - PAD_B
    );
    let _ = write!(
        o,
        r##"<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#222">{}</text>"##,
        (PAD_L + W - PAD_R) / 2.0,
        H - 6.0,
        escape(x_label)
    );
    let _ = write!(
        o,
        r##"<text x="14" y="{}" text-anchor="middle" font-size="12" fill="#222" transform="rotate(-90 14 {})">{}</text>"##,
        H / 2.0,
        H / 2.0,
        escape(y_label)
    );
    if let Some((x, label)) = marker.filter(|(x, _)| *x >= x0 && *x <= x1) {
        let _ = write!(
            o,
            r##"<line x1="{:.1}" y1="{PAD_T}" x2="{:.1}" y2="{}" stroke="#b3261e" stroke-dasharray="5 4"/><text x="{:.1}" y="{}" font-size="11" fill="#b3261e">{}</text>"##,
            px(x),
            px(x),
            H - PAD_B,
            px(x) + 4.0,
            PAD_T + 12.0,
            escape(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            o,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        let lx = PAD_L + 8.0 + i as f64 * 150.0;
        let _ = write!(
            o,
            r##"<rect x="{lx}" y="8" width="12" height="4" fill="{}"/><text x="{}" y="14" font-size="11" fill="#222">{}</text>"##,
            s.color,
            lx + 16.0,
            escape(s.name)
        );
    }
    o.push_str("</svg></figure>");
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:980px}\
h1{margin-bottom:4px}.pass{color:#1b7f3b}.fail{color:#b3261e}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
td:first-child,th:first-child{text-align:left}tr.critical td{background:#fde2e1}.alert{background:#fde2e1;padding:.5em}tr.warning td{background:#fff0d9}\
tr.target_missed td{background:#fffbe0}figure{margin:12px 0 24px}figcaption{font-weight:600;margin-bottom:4px}";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let pass = r.verdict == Verdict::Pass;
    let q = &r.figures.requests;
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — {}</title><style>{STYLE}</style></head><body>",
        escape(&r.scenario.name),
        r.verdict.word()
    );
    let _ = write!(
        o,
        "<h1 class=\"{}\">{} {}</h1>",
        if pass { "pass" } else { "fail" },
        r.verdict.word(),
        escape(&r.scenario.name)
    );
    let _ = write!(
        o,
        "<p>{} requests ({} ok, {} failed, {} dropped) in {} s against {}; goodput {}%; severity {}; started {}.</p>",
        q.total,
        q.ok,
        q.failed,
        q.dropped,
        num(r.measured_s),
        escape(&r.target.url),
        num(r.figures.goodput),
        r.severity.map_or("none".to_owned(), |s| format!("{s:?}")),
        escape(&r.started_at)
    );
    for w in r.target.warnings().iter().chain(&r.findings) {
        let _ = write!(o, "<p class=\"alert\"><strong>⚠ {}</strong></p>", escape(w));
    }
    if !r.verdict_reasons.is_empty() {
        o.push_str("<ul>");
        for reason in &r.verdict_reasons {
            let _ = write!(o, "<li>{}</li>", escape(reason));
        }
        o.push_str("</ul>");
    }

    let _ = write!(o, "<h2>Objectives</h2>");
    if let Some(file) = &r.slo_file {
        let _ = write!(
            o,
            "<p>From <code>{}</code>; the run fails at <code>{}</code> or worse.</p>",
            escape(file),
            fail_on_word(r.fail_on)
        );
    }
    o.push_str("<table><tr><th>objective</th><th>level</th><th>value</th><th>threshold</th><th>margin</th></tr>");
    for j in &r.slo {
        let class = match j.level {
            Level::Critical => "critical",
            Level::Warning => "warning",
            Level::TargetMissed | Level::Inconclusive => "target_missed",
            _ => "ok",
        };
        let _ = write!(
            o,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&j.name),
            j.level.word(),
            j.value.map_or("—".into(), num),
            num(j.threshold),
            j.margin.map_or("—".into(), num)
        );
    }
    o.push_str("</table>");

    let secs: Vec<_> = r.timeseries.iter().collect();
    let pts = |f: &dyn Fn(&crate::aggregate::Second) -> Option<f64>| -> Vec<(f64, f64)> {
        secs.iter()
            .filter_map(|s| f(s).map(|v| (s.t as f64, v)))
            .collect()
    };
    o.push_str("<h2>Latency over time</h2>");
    o.push_str(&line_chart(
        "First token percentiles per second (ms)",
        "seconds since start",
        "ms",
        &[
            Series {
                name: "p50",
                color: "#1f77b4",
                points: pts(&|s| s.p50_first_token_ms),
            },
            Series {
                name: "p95",
                color: "#ff7f0e",
                points: pts(&|s| s.p95_first_token_ms),
            },
            Series {
                name: "p99",
                color: "#d62728",
                points: pts(&|s| s.p99_first_token_ms),
            },
            Series {
                name: "complete p95",
                color: "#9467bd",
                points: pts(&|s| s.p95_complete_ms),
            },
        ],
    ));
    o.push_str("<h2>Latency distributions</h2>");
    let cdf = |d: &[[f64; 2]]| d.iter().map(|p| (p[1], p[0] * 100.0)).collect::<Vec<_>>();
    let d = &r.figures.distributions;
    o.push_str(&line_chart(
        "Cumulative distribution (percent of requests at or below)",
        "ms",
        "percent",
        &[
            Series {
                name: "first token",
                color: "#1f77b4",
                points: cdf(&d.first_token),
            },
            Series {
                name: "first audio",
                color: "#2ca02c",
                points: cdf(&d.first_audio),
            },
            Series {
                name: "complete",
                color: "#9467bd",
                points: cdf(&d.complete),
            },
        ],
    ));
    o.push_str("<h2>Throughput and errors</h2>");
    o.push_str(&line_chart(
        "Per second",
        "seconds since start",
        "count",
        &[
            Series {
                name: "completed",
                color: "#2ca02c",
                points: pts(&|s| Some(s.completed as f64)),
            },
            Series {
                name: "errors",
                color: "#d62728",
                points: pts(&|s| Some(s.errors as f64)),
            },
            Series {
                name: "active streams",
                color: "#7f7f7f",
                points: pts(&|s| Some(s.active as f64)),
            },
        ],
    ));

    o.push_str("<h2>Latency (ms)</h2><table><tr><th>latency</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>count</th></tr>");
    let l = &r.figures.latency_ms;
    for (name, f) in [
        ("first token", &l.first_token),
        ("first audio", &l.first_audio),
        ("complete", &l.complete),
        ("inter-token", &l.inter_token),
        ("time per output token", &l.time_per_output_token),
        ("first reasoning", &l.first_reasoning),
    ]
    .into_iter()
    .filter(|(name, f)| *name != "first reasoning" || f.count > 0)
    {
        let _ = write!(
            o,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            opt(f.p50),
            with_ci(f, "p95"),
            with_ci(f, "p99"),
            opt(f.max),
            f.count
        );
        if let Some(c) = &f.corrected {
            let _ = write!(
                o,
                "<tr><td>{name} (corrected)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                opt(c.p50),
                with_ci(c, "p95"),
                with_ci(c, "p99"),
                opt(c.max),
                c.count
            );
        }
    }
    o.push_str("</table>");

    o.push_str(
        "<h2>Client and server</h2><table><tr><th>figure</th><th>client</th><th>server</th></tr>",
    );
    let (delta, after) = (r.server.delta.as_ref(), r.server.latency_after.as_ref());
    let opt = |v: Option<f64>| v.map_or("—".to_owned(), num);
    let rows = [
        (
            "success rate (%)",
            num(q.success_rate),
            opt(delta.and_then(|d| d.success_rate)),
        ),
        (
            "KB cache hit rate (%)",
            opt(r.figures.cache.kb_hit_rate),
            opt(delta.and_then(|d| d.kb_hit_rate)),
        ),
        (
            "TTS cache hit rate (%)",
            opt(r.figures.cache.tts_hit_rate),
            opt(delta.and_then(|d| d.tts_hit_rate)),
        ),
        (
            "first token p50 (ms)",
            opt(l.first_token.p50),
            opt(after.and_then(|a| a.first_token.as_ref()?.p50)),
        ),
        (
            "first token p95 (ms)",
            opt(l.first_token.p95),
            opt(after.and_then(|a| a.first_token.as_ref()?.p95)),
        ),
        (
            "complete p95 (ms)",
            opt(l.complete.p95),
            opt(after.and_then(|a| a.complete.as_ref()?.p95)),
        ),
    ];
    for (name, c, sval) in rows {
        let _ = write!(o, "<tr><td>{name}</td><td>{c}</td><td>{sval}</td></tr>");
    }
    o.push_str("</table>");
    let trustworthy = r.self_check.trustworthy;
    let _ = write!(
        o,
        "<h2>Self-check</h2><p>{}</p>",
        if trustworthy {
            "The load generator was not the bottleneck."
        } else {
            "<strong>Not trustworthy</strong>: the load generator was the bottleneck."
        }
    );
    if let Some(why) = &r.interrupted {
        let _ = write!(o, "<p>The run was interrupted: {}.</p>", escape(why));
    }
    o.push_str("</body></html>\n");
    o
}
