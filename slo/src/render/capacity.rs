//! `capacity.md` and `capacity.html` from `capacity.json`.

use super::html::{Series, marked_chart};
use super::junit::escape;
use super::{num, opt};
use crate::capacity::CapacityReport;
use std::fmt::Write;

fn verdict(s: &crate::capacity::Step) -> &'static str {
    if s.client_saturated {
        "client saturated"
    } else if s.passed {
        "held"
    } else {
        "failed"
    }
}

pub fn markdown(r: &CapacityReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Capacity: {} requests/s ({})\n",
        num(r.max_sustainable.value),
        r.scenario
    );
    let _ = writeln!(
        o,
        "The highest arrival rate at which every objective of `{}` held against {}.",
        r.slo_file.as_deref().unwrap_or("-"),
        r.target
    );
    if let Some(l) = &r.limiting_objective {
        let _ = writeln!(
            o,
            "\nLimiting objective: **{}** ({} at {}, threshold {}).",
            l.name,
            l.level,
            l.value.map_or("no data".into(), num),
            num(l.threshold)
        );
    }
    if let Some(k) = &r.knee {
        let _ = writeln!(o, "Latency knee: {} requests/s.", num(k.value));
    }
    if let (Some(e), Some(h), Some(m)) = (r.expected_rps, r.headroom_percent, r.meets_expected) {
        let _ = writeln!(
            o,
            "Expected traffic {} requests/s: headroom {}% ({}).",
            num(e),
            num(h),
            if m { "meets it" } else { "**short of it**" }
        );
    }
    if let Some(why) = &r.stopped {
        let _ = writeln!(o, "\nThe search stopped early: {why}.");
    }
    let _ = writeln!(
        o,
        "\n| offered/s | achieved/s | first token p50 / p95 / p99 (ms) | complete p95 (ms) | success % | verdict | breached |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- |");
    let mut steps = r.steps.clone();
    steps.sort_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps));
    for s in &steps {
        let breached: Vec<String> = s
            .breached
            .iter()
            .map(|b| format!("{} ({})", b.name, b.level))
            .collect();
        let _ = writeln!(
            o,
            "| {} | {} | {} / {} / {} | {} | {} | {} | {} |",
            num(s.offered_rps),
            num(s.achieved_rps),
            opt(s.first_token_p50_ms),
            opt(s.first_token_p95_ms),
            opt(s.first_token_p99_ms),
            opt(s.complete_p95_ms),
            num(s.success_rate),
            verdict(s),
            if breached.is_empty() {
                "—".into()
            } else {
                breached.join(", ")
            }
        );
    }
    o
}

pub fn html(r: &CapacityReport) -> String {
    let mut steps = r.steps.clone();
    steps.sort_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps));
    let pts = |f: &dyn Fn(&crate::capacity::Step) -> Option<f64>| {
        steps
            .iter()
            .filter_map(|s| f(s).map(|v| (s.offered_rps, v)))
            .collect::<Vec<_>>()
    };
    let knee = r.knee.as_ref().map(|k| (k.value, "knee"));
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Capacity — {}</title><style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:980px}}figure{{margin:12px 0 24px}}figcaption{{font-weight:600}}</style></head><body>",
        escape(&r.scenario)
    );
    let _ = write!(
        o,
        "<h1>Capacity: {} requests/s</h1>",
        num(r.max_sustainable.value)
    );
    let md = markdown(r);
    let summary: Vec<&str> = md
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('|'))
        .filter(|l| !l.is_empty())
        .collect();
    for line in summary {
        let _ = write!(o, "<p>{}</p>", escape(&line.replace("**", "")));
    }
    o.push_str(&marked_chart(
        "Latency percentiles vs offered load",
        "offered requests/s",
        "ms",
        &[
            Series {
                name: "first token p50",
                color: "#1f77b4",
                points: pts(&|s| s.first_token_p50_ms),
            },
            Series {
                name: "first token p95",
                color: "#ff7f0e",
                points: pts(&|s| s.first_token_p95_ms),
            },
            Series {
                name: "first token p99",
                color: "#d62728",
                points: pts(&|s| s.first_token_p99_ms),
            },
            Series {
                name: "complete p95",
                color: "#9467bd",
                points: pts(&|s| s.complete_p95_ms),
            },
        ],
        knee,
    ));
    o.push_str(&marked_chart(
        "Success rate and achieved rate vs offered load",
        "offered requests/s",
        "percent / requests per s",
        &[
            Series {
                name: "success %",
                color: "#2ca02c",
                points: pts(&|s| Some(s.success_rate)),
            },
            Series {
                name: "achieved/s",
                color: "#7f7f7f",
                points: pts(&|s| Some(s.achieved_rps)),
            },
        ],
        knee,
    ));
    o.push_str("<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr><th>offered/s</th><th>achieved/s</th><th>p95 first token</th><th>success %</th><th>verdict</th></tr>");
    for s in &steps {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            num(s.offered_rps),
            num(s.achieved_rps),
            opt(s.first_token_p95_ms),
            num(s.success_rate),
            verdict(s)
        );
    }
    o.push_str("</table></body></html>\n");
    o
}
