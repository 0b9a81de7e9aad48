//! `report.html`: one self-contained page that works offline: no script,
//! no CDN, the charts are inline SVG drawn here.

use super::chart::{Band, BandAxis, Chart, Series};
use super::junit::escape;
use super::{fail_on_word, num, opt, with_ci};
use crate::evidence::Percentile;
use crate::objective::{Direction, Level};
use crate::report::Report;
use std::fmt::Write;

/// The bands of the objective on `latency` (`first_token`, `first_audio`,
/// `complete`) that a chart of it draws: the one on its p95 if there is
/// one, else the first; a `max` objective's target, warning and critical.
pub fn bands_for(r: &Report, latency: &str) -> Vec<Band> {
    let on = |j: &&crate::objective::Judged| {
        let parts: Vec<&str> = j.metric.split('.').collect();
        matches!(parts.as_slice(), ["latency_ms" | "scheduled_latency_ms", l, p] if *l == latency && p.starts_with('p'))
            && j.levels.is_some_and(|l| l.direction == Direction::Max)
    };
    let Some(j) = r
        .slo
        .iter()
        .filter(on)
        .find(|j| j.metric.ends_with(".p95"))
        .or_else(|| r.slo.iter().find(on))
    else {
        return Vec::new();
    };
    let l = j.levels.expect("filtered on levels");
    super::chart::level_bands(&j.name, &l)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;padding:0 24px;color:#222;max-width:1400px}\
h1{margin:0}.verdict{padding:14px 20px;border-radius:6px;color:#fff;margin-bottom:12px}\
.verdict.pass{background:#1b7f3b}.verdict.fail{background:#b3261e}.verdict.not_judged{background:#8a6d00}\
.verdict ul{margin:8px 0 0}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
td:first-child,th:first-child{text-align:left}tr.critical td{background:#fde2e1}.alert{background:#fde2e1;padding:.5em}tr.warning td{background:#fff0d9}\
tr.target_missed td{background:#fffbe0}tr.no_data td{color:#666}figure{margin:12px 0 24px}figcaption{font-weight:600;margin-bottom:4px}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:0 24px}";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    verdict(&mut o, r);
    incidents_and_alerts(&mut o, r);
    objectives(&mut o, r);
    charts(&mut o, r);
    latency_table(&mut o, r);
    client_and_server(&mut o, r);
    self_check(&mut o, r);
    o.push_str("</body></html>\n");
    o
}

/// The page's head, the verdict and its reasons in a block of its colour,
/// the run in one sentence and its warnings.
fn verdict(o: &mut String, r: &Report) {
    let q = &r.figures.requests;
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} — {}</title><style>{STYLE}</style></head><body>",
        escape(&r.scenario.name),
        r.verdict.word()
    );
    // The verdict and its reasons first, in a block of its colour, in words.
    let _ = write!(
        o,
        "<div class=\"verdict {}\" role=\"status\"><h1>{} {}</h1>",
        r.verdict.as_str(),
        r.verdict.word(),
        escape(&r.scenario.name)
    );
    if !r.verdict_reasons.is_empty() {
        o.push_str("<ul>");
        for reason in &r.verdict_reasons {
            let _ = write!(o, "<li>{}</li>", escape(reason));
        }
        o.push_str("</ul>");
    }
    o.push_str("</div>");
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
}

/// Each incident of a drill, and the alerts that fired.
fn incidents_and_alerts(o: &mut String, r: &Report) {
    for (i, fields) in crate::drill::incident_reports(&r.incidents, &r.events) {
        let _ = write!(o, "<h2>Incident: {}</h2><table>", escape(&i.name));
        for (k, v) in fields {
            let _ = write!(
                o,
                "<tr><th scope=\"row\">{k}</th><td>{}</td></tr>",
                escape(&v)
            );
        }
        o.push_str("</table>");
    }
    if let Some(a) = &r.alerts {
        let _ = write!(
            o,
            "<h2>Alerts</h2><p>{}</p>",
            escape(&a.describe()).replace("`for`", "<code>for</code>")
        );
        let all = a.all();
        if all.is_empty() {
            let _ = write!(o, "<p>No alert fired ({} evaluations).</p>", a.evaluations);
        } else {
            o.push_str("<table><tr>");
            for h in crate::drill::ALERT_COLUMNS {
                let _ = write!(o, "<th>{h}</th>");
            }
            o.push_str("</tr>");
            for x in all {
                let _ = write!(o, "<tr class=\"{}\">", escape(&x.severity));
                for cell in crate::drill::alert_row(x) {
                    let _ = write!(o, "<td>{}</td>", escape(&cell));
                }
                o.push_str("</tr>");
            }
            o.push_str("</table>");
        }
    }
}

/// The judged objectives, one row each.
fn objectives(o: &mut String, r: &Report) {
    let _ = write!(o, "<h2>Objectives</h2>");
    if let Some(file) = &r.slo_file {
        let _ = write!(
            o,
            "<p>From <code>{}</code>; the run fails at <code>{}</code> or worse.</p>",
            escape(file),
            fail_on_word(r.fail_on)
        );
    }
    o.push_str("<table><tr><th>objective</th><th>level</th><th>value</th><th>threshold</th><th>margin</th><th>fails the run</th></tr>");
    for j in &r.slo {
        let class = match j.level {
            Level::Critical => "critical",
            Level::Warning => "warning",
            Level::TargetMissed | Level::Inconclusive => "target_missed",
            Level::NoData => "no_data",
            Level::Ok => "ok",
        };
        // A mark and the level's word: readable without colour.
        let (mark, _, _) = super::console::mark(j.level);
        let _ = write!(
            o,
            "<tr class=\"{class}\"><td>{}</td><td>{mark} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&j.label()),
            j.level.word(),
            j.value.map_or("—".into(), num),
            num(j.threshold),
            j.margin.map_or("—".into(), num),
            if j.fails(&r.gate()) { "yes" } else { "no" }
        );
    }
    o.push_str("</table>");
}

/// Latency over time, the distributions, throughput and errors.
fn charts(o: &mut String, r: &Report) {
    let secs: Vec<_> = r.timeseries.iter().collect();
    let pts = |f: &dyn Fn(&crate::aggregate::Second) -> Option<f64>| -> Vec<(f64, f64)> {
        secs.iter()
            .filter_map(|s| f(s).map(|v| (s.t as f64, v)))
            .collect()
    };
    // Time charts start at 0, the warm-up shaded (its seconds are in no
    // figure).
    let (stalls, applied, firing) = timeline_marks(r);
    let timeline = |mut c: Chart<'static>, warmup_s: f64| -> Chart<'static> {
        c.x_from = Some(0.0);
        if warmup_s > 0.0 {
            c.shaded = vec![(0.0, warmup_s, "warm-up (not measured)".to_owned())];
        }
        c.shaded.extend(firing.iter().cloned());
        c.events = stalls.clone();
        c.markers = applied.clone();
        c
    };
    o.push_str("<h2>Latency over time</h2>");
    let mut first_token = timeline(
        Chart::new(
            "First token per second, from the intended start",
            "seconds since the run started",
            "first token (ms)",
            vec![
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
            ],
        ),
        r.warmup_s,
    );
    first_token.bands = bands_for(r, "first_token");
    o.push_str(&first_token.svg());
    let mut complete = timeline(
        Chart::new(
            "Complete response p95 per second, from the intended start",
            "seconds since the run started",
            "complete (ms)",
            vec![Series {
                name: "complete p95",
                color: "#9467bd",
                points: pts(&|s| s.p95_complete_ms),
            }],
        ),
        r.warmup_s,
    );
    complete.bands = bands_for(r, "complete");
    o.push_str(&complete.svg());

    distributions(o, r);
    o.push_str("<h2>Throughput and errors</h2>");
    o.push_str(
        &timeline(
            Chart::new(
                "Per second",
                "seconds since the run started",
                "requests, streams",
                vec![
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
            ),
            r.warmup_s,
        )
        .svg(),
    );
    engine(o, r, &timeline);
}

/// Each `[[scrape]]` series that has points (a gauge's readings, a
/// counter's rate, a histogram's p95 between two readings), on the run's
/// time axis beside the client's figures, with the bands of an objective
/// that judges it.
fn engine(o: &mut String, r: &Report, timeline: &dyn Fn(Chart<'static>, f64) -> Chart<'static>) {
    for (name, view) in &r.engine {
        o.push_str(&format!(
            "<h2>Engine: {} <small>({})</small></h2><div class=\"grid\">",
            escape(name),
            escape(&view.url)
        ));
        for (series, v) in view.series.iter().filter(|(_, v)| !v.points.is_empty()) {
            let unit = match v.kind {
                Some(crate::engine::Kind::Counter) => "per second",
                Some(crate::engine::Kind::Histogram) => "p95 between readings",
                _ => "value",
            };
            let metric = v.metric.clone().unwrap_or_default();
            let mut c = timeline(
                Chart::new(
                    &format!("{name}.{series} ({metric})"),
                    "seconds since the run started",
                    unit,
                    vec![Series {
                        name: "engine",
                        color: "#17becf",
                        points: v.points.clone(),
                    }],
                ),
                r.warmup_s,
            );
            c.width = 470.0;
            let prefix = format!("{name}.{series}.");
            // Bands of a figure in the drawn line's unit (not a total).
            let drawn = |figure: &str| !matches!(figure, "increase" | "count");
            if let Some(j) = r.slo.iter().find(|j| {
                j.source == crate::objective::Source::Engine
                    && j.metric.strip_prefix(&prefix).is_some_and(drawn)
            }) && let Some(l) = j.levels
            {
                c.bands = super::chart::level_bands(&j.name, &l);
            }
            o.push_str(&c.svg());
        }
        o.push_str("</div>");
    }
}

/// Labelled points of a time axis.
type Points = Vec<(f64, String)>;
/// Labelled spans of a time axis.
type Spans = Vec<(f64, f64, String)>;

/// What every time chart marks: the seconds a stall of the load generator
/// overlapped, the timeline's events, the judged alerts while they fired.
fn timeline_marks(r: &Report) -> (Points, Points, Spans) {
    // Seconds in which requests ended that a stall of the load
    // generator overlapped: marked on every time chart.
    let stalls: Vec<(f64, String)> = r
        .timeseries
        .iter()
        .filter(|s| s.stalled > 0)
        .map(|s| {
            (
                s.t as f64 + 0.5,
                format!(
                    "second {}: {} request(s) overlapped by a stall of the load generator",
                    s.t, s.stalled
                ),
            )
        })
        .collect();
    // The timeline's events, where they happened.
    let applied: Vec<(f64, String)> = r
        .events
        .iter()
        .map(|e| {
            (
                e.at_s,
                if e.ok {
                    e.name.clone()
                } else {
                    format!("{} (FAILED)", e.name)
                },
            )
        })
        .collect();
    // The judged alerts, shaded while they fired.
    // Alerts firing over the same span share one label.
    let mut firing: Vec<(f64, f64, String)> = Vec::new();
    for a in r.alerts.iter().flat_map(|a| a.judged()) {
        let (from, to) = (a.firing_at_s, a.resolved_at_s.unwrap_or(r.elapsed_s));
        match firing.iter_mut().find(|f| f.0 == from && f.1 == to) {
            Some(f) => f.2 = f.2.replace(" firing", &format!(", {} firing", a.name)),
            None => firing.push((from, to, format!("{} firing", a.name))),
        }
    }
    (stalls, applied, firing)
}

/// Each latency's distribution, against its objective's bands.
fn distributions(o: &mut String, r: &Report) {
    o.push_str("<h2>Latency distributions</h2><div class=\"grid\">");
    let cdf = |d: &[[f64; 2]]| d.iter().map(|p| (p[1], p[0] * 100.0)).collect::<Vec<_>>();
    let d = &r.figures.distributions;
    for (name, latency, color, points) in [
        ("First token", "first_token", "#1f77b4", cdf(&d.first_token)),
        ("First audio", "first_audio", "#2ca02c", cdf(&d.first_audio)),
        ("Complete", "complete", "#9467bd", cdf(&d.complete)),
    ] {
        let mut c = Chart::new(
            &format!("{name}: share of requests at or below"),
            &format!("{} (ms)", name.to_lowercase()),
            "percent of requests",
            vec![Series {
                name,
                color,
                points,
            }],
        );
        c.bands = bands_for(r, latency);
        c.band_axis = BandAxis::X;
        c.x_from = Some(0.0);
        c.width = 480.0;
        c.y_max = Some(100.0);
        o.push_str(&c.svg());
    }
    o.push_str("</div>");
}

/// The latency figures with their intervals.
fn latency_table(o: &mut String, r: &Report) {
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
            with_ci(f, Percentile::P95),
            with_ci(f, Percentile::P99),
            opt(f.max),
            f.count
        );
        if let Some(c) = &f.corrected {
            let _ = write!(
                o,
                "<tr><td>{name} (corrected)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                opt(c.p50),
                with_ci(c, Percentile::P95),
                with_ci(c, Percentile::P99),
                opt(c.max),
                c.count
            );
        }
    }
    o.push_str("</table>");
}

/// The client's figures beside the server's own.
fn client_and_server(o: &mut String, r: &Report) {
    let q = &r.figures.requests;
    let l = &r.figures.latency_ms;
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
    if let Some(p) = &r.server.prefix_cache {
        let _ = write!(
            o,
            "<tr><td>prefix cache hit rate (%)</td><td>—</td><td>{} ({} of {} prompt tokens)</td></tr>",
            opt(p.hit_rate),
            p.hits,
            p.queries
        );
    }
    o.push_str("</table>");
}

/// Whether the load generator can be trusted, and an interruption.
fn self_check(o: &mut String, r: &Report) {
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
}
