//! `capacity.md` and `capacity.html` from `capacity.json`.

use super::chart::{Chart, Series};
use super::junit::escape;
use super::{judged_ci, num, opt};
use crate::capacity::{CapacityReport, FAILED, Outcome, Role, Status, Step};
use std::fmt::Write;

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Idle => "idle",
        Outcome::Held => "held",
        Outcome::Breached => "breached",
        Outcome::Inconclusive => "inconclusive (not held)",
        Outcome::Repeated => "repeated longer",
        Outcome::NotIdle => "not carried: tried lower",
        Outcome::ClientSaturated => "client saturated",
    }
}

fn title(r: &CapacityReport) -> String {
    match (&r.max_sustainable, r.status) {
        (Some(q), Status::Undefined) => format!(
            "Capacity undefined for {} objective(s); {} requests/s for the rest",
            r.undefined.len(),
            num(q.value)
        ),
        (None, _) => "Capacity undefined".to_owned(),
        (Some(q), _) => format!("Capacity: {} requests/s", num(q.value)),
    }
}

fn status_line(r: &CapacityReport) -> &'static str {
    match r.status {
        Status::Found => "✅ found",
        Status::ShortOfExpected => "❌ short of the expected traffic",
        Status::Undefined => "❌ undefined (an objective fails at idle, or no rate held)",
        Status::Incomplete => "❌ incomplete (interrupted)",
    }
}

/// The headroom against the expected traffic, in a sentence.
pub fn headroom_words(r: &CapacityReport) -> Option<String> {
    let (cap, expected) = (r.max_sustainable.as_ref()?.value, r.expected_rps?);
    if expected <= 0.0 {
        return None;
    }
    let ratio = cap / expected;
    Some(if ratio >= 1.0 {
        format!(
            "The service carries {} times the expected traffic: it holds every deciding objective up to {} requests/s, {}% more than the {} expected; traffic can grow by that much before an objective breaks.",
            num(ratio),
            num(cap),
            num((ratio - 1.0) * 100.0),
            num(expected)
        )
    } else {
        format!(
            "The service is short of the expected traffic: it was shown to hold its objectives only up to {} requests/s, {}% less than the {} expected; {} more requests/s of capacity are needed.",
            num(cap),
            num((1.0 - ratio) * 100.0),
            num(expected),
            num(expected - cap)
        )
    })
}

/// The end of `loadgen capacity` on the terminal: the status first, the
/// capacity and what limits it, the headroom in words, then every
/// objective at the highest rate held, with its mark, level in words,
/// value, threshold and margin.
pub fn console(r: &CapacityReport) -> String {
    let word = match r.status {
        Status::Found => "FOUND",
        Status::ShortOfExpected => "SHORT",
        Status::Undefined => "UNDEFINED",
        Status::Incomplete => "INCOMPLETE",
    };
    let mut o = format!(
        "{word} capacity: {}; {}\n",
        r.max_sustainable
            .as_ref()
            .map_or("undefined".to_owned(), |q| format!(
                "{} requests/s",
                num(q.value)
            )),
        status_line(r).split_once(' ').map_or("", |(_, w)| w)
    );
    if let Some(l) = r.limiting_objective.as_ref().filter(|l| l.level == FAILED) {
        let _ = writeln!(o, "  limited by the target: {}", l.name);
    } else if let Some(l) = &r.limiting_objective {
        let _ = writeln!(
            o,
            "  limited by {}: {} at {} (threshold {})",
            l.name,
            l.level,
            l.value.map_or("no data".into(), num),
            num(l.threshold)
        );
    }
    if let Some(words) = headroom_words(r) {
        let _ = writeln!(o, "  {words}");
    }
    let held = r.max_sustainable.as_ref().and_then(|m| {
        r.steps
            .iter()
            .rev()
            .find(|s| s.outcome == Outcome::Held && (s.measured.offered_rps - m.value).abs() < 1e-9)
    });
    if let Some(step) = held {
        let _ = writeln!(
            o,
            "Objectives at {} requests/s (the highest rate held):",
            num(step.measured.offered_rps)
        );
        let w = step
            .measured
            .objectives
            .iter()
            .map(|j| j.name.chars().count())
            .max()
            .unwrap_or(0);
        for j in &step.measured.objectives {
            let (mark, word, _) = super::console::mark(j.level);
            let _ = writeln!(
                o,
                "  {mark} {word:<13} {:<w$}  {:>10}  threshold {}, margin {}",
                j.name,
                j.value.map_or("—".to_owned(), num),
                num(j.threshold),
                j.margin.map_or("—".to_owned(), num)
            );
        }
    }
    for u in &r.undefined {
        let _ = writeln!(
            o,
            "  capacity undefined for {}: {}",
            u.name,
            u.why.as_deref().unwrap_or("fails at idle")
        );
    }
    if let Some(why) = &r.stopped {
        let _ = writeln!(o, "  the search stopped early: {why}");
    }
    o
}

/// Why a step ended as it did, in a few words.
fn why(s: &Step) -> String {
    let mut parts: Vec<String> = s
        .breached
        .iter()
        .map(|b| format!("{} ({})", b.name, b.level))
        .collect();
    parts.extend(s.undecided.iter().map(|u| format!("{u} (inconclusive)")));
    if s.measured.client_saturated {
        parts.push("the load generator's self-check did not trust the step".into());
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

/// The columns of the table of steps, in both reports.
const COLUMNS: [&str; 12] = [
    "#",
    "offered/s",
    "sent/s",
    "achieved/s",
    "late / dropped",
    "server streams (max)",
    "server first token p95",
    "first token p95",
    "complete p95",
    "requests (min)",
    "outcome",
    "why",
];

/// One step's row of the table.
fn cells(i: usize, s: &Step) -> [String; 12] {
    let m = &s.measured;
    [
        (i + 1).to_string(),
        num(m.offered_rps),
        num(m.sent_rps),
        num(m.achieved_rps),
        format!("{} / {}", m.late, m.dropped),
        m.server_max_active_streams
            .map_or("—".to_owned(), |v| v.to_string()),
        opt(m.server_first_token_p95_ms),
        opt(m.first_token_p95_ms),
        opt(m.complete_p95_ms),
        format!("{} ({})", m.requests, m.min_requests),
        format!(
            "{}{}",
            outcome_word(s.outcome),
            if s.attempt > 1 {
                format!(" (try {})", s.attempt)
            } else {
                String::new()
            }
        ),
        why(s),
    ]
}

pub fn markdown(r: &CapacityReport) -> String {
    let mut o = String::new();
    markdown_search(&mut o, r);
    markdown_findings(&mut o, r);
    markdown_steps(&mut o, r);
    o
}

/// The title, the status, how the search was run and what it set aside.
fn markdown_search(o: &mut String, r: &CapacityReport) {
    let _ = writeln!(o, "# {} ({})\n", title(r), r.scenario);
    let _ = writeln!(o, "Status: **{}**.", status_line(r));
    let _ = writeln!(
        o,
        "The highest arrival rate shown to hold every deciding objective of `{}` (failing at `{}`) against {}.",
        r.slo_file.as_deref().unwrap_or("-"),
        super::fail_on_word(r.fail_on),
        r.target
    );
    if let Some(w) = &r.warm {
        let _ = writeln!(
            o,
            "Warm-up before the first step: {} s at {} requests/s ({} requests, not judged).",
            num(w.duration_s),
            num(w.rate),
            w.requests
        );
    }
    let _ = writeln!(
        o,
        "Each step: a {} s warm-up, then at least {} s and its percentiles' minimum of requests, until every deciding percentile is decided, capped at {} s (or twice the minimum's time; doubled on each repeat, up to {} tries).",
        num(r.step.warmup_s),
        num(r.step.duration_s),
        num(r.step.cap_s),
        r.config.max_tries
    );
    if let Some(idle) = r.idle_rps {
        let _ = writeln!(o, "Idle step: {} requests/s.", num(idle));
    }
    if !r.undefined.is_empty() {
        let _ = writeln!(
            o,
            "\n**Set aside at idle** (capacity is undefined for them):"
        );
        for u in &r.undefined {
            let _ = writeln!(
                o,
                "- **{}**: {}",
                u.name,
                u.why.as_deref().unwrap_or("fails at idle")
            );
        }
    }
    let reports: Vec<&str> = r
        .objectives
        .iter()
        .filter(|o| o.role == Role::Reports)
        .map(|o| o.name.as_str())
        .collect();
    if !reports.is_empty() {
        let _ = writeln!(
            o,
            "\nReported per step, deciding nothing (workload mix, or `capacity = \"reports\"`): {}.",
            reports.join(", ")
        );
    }
}

/// What limits the capacity, the knee, the expected traffic, an early stop.
fn markdown_findings(o: &mut String, r: &CapacityReport) {
    if let Some(l) = r.limiting_objective.as_ref().filter(|l| l.level == FAILED) {
        let _ = writeln!(o, "\nLimiting: the target: {}.", l.name);
    } else if let Some(l) = &r.limiting_objective {
        let _ = writeln!(
            o,
            "\nLimiting: **{}** ({} at {}{}, threshold {}).",
            l.name,
            l.level,
            l.value.map_or("no data".into(), num),
            l.interval
                .as_ref()
                .map_or(String::new(), |i| format!(" 95% {}", super::interval(i))),
            num(l.threshold)
        );
    }
    if let Some(k) = &r.knee {
        let _ = writeln!(
            o,
            "Knee: {} requests/s (at {} requests/s: {}).",
            num(k.value),
            num(k.bent_at),
            k.why
        );
    }
    if let (Some(e), Some(m)) = (r.expected_rps, r.meets_expected) {
        let _ = writeln!(
            o,
            "Expected traffic {} requests/s: {}{}.",
            num(e),
            if m { "meets it" } else { "**short of it**" },
            r.headroom_percent
                .map_or(String::new(), |h| format!(", headroom {}%", num(h)))
        );
        if let Some(words) = headroom_words(r) {
            let _ = writeln!(o, "{words}");
        }
    }
    if let Some(why) = &r.stopped {
        let _ = writeln!(o, "\nThe search stopped early: {why}.");
    }
}

/// The steps' table, then every objective step by step.
fn markdown_steps(o: &mut String, r: &CapacityReport) {
    let _ = writeln!(o, "\n| {} |", COLUMNS.join(" | "));
    let _ = writeln!(o, "|{}", " --- |".repeat(COLUMNS.len()));
    for (i, s) in r.steps.iter().enumerate() {
        let _ = writeln!(o, "| {} |", cells(i, s).join(" | "));
    }
    let _ = writeln!(o, "\n## Every objective, step by step\n");
    for (i, s) in r.steps.iter().enumerate() {
        let _ = writeln!(
            o,
            "**Step {}**: {} requests/s, {}.\n",
            i + 1,
            num(s.measured.offered_rps),
            outcome_word(s.outcome)
        );
        for j in &s.measured.objectives {
            let role = r
                .objectives
                .iter()
                .find(|o| o.name == j.name)
                .map_or(Role::Reports, |o| o.role);
            let evidence = match judged_ci(j).as_str() {
                "—" => String::new(),
                ci => format!(" {ci}"),
            };
            let _ = writeln!(
                o,
                "- {} ({}): {}{}, threshold {}: {}",
                j.name,
                match role {
                    Role::Decides => "decides",
                    Role::Reports => "reports",
                    Role::FailsAtIdle => "fails at idle",
                    Role::UndecidedAtIdle => "undecided at idle",
                },
                j.value.map_or("no data".into(), num),
                evidence,
                num(j.threshold),
                j.level.word()
            );
        }
        o.push('\n');
    }
}

pub fn html(r: &CapacityReport) -> String {
    let mut o = String::new();
    html_summary(&mut o, r);
    html_charts(&mut o, r);
    o.push_str("<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr>");
    for c in COLUMNS {
        let _ = write!(o, "<th>{}</th>", escape(c));
    }
    o.push_str("</tr>");
    for (i, s) in r.steps.iter().enumerate() {
        o.push_str("<tr>");
        for c in cells(i, s) {
            let _ = write!(o, "<td>{}</td>", escape(&c));
        }
        o.push_str("</tr>");
    }
    o.push_str("</table></body></html>\n");
    o
}

/// The page's head, the status in its colour, the summary's sentences.
fn html_summary(o: &mut String, r: &CapacityReport) {
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Capacity — {}</title><style>body{{font-family:system-ui,sans-serif;margin:24px auto;padding:0 24px;color:#222;max-width:1400px}}h1{{margin:0}}.verdict{{padding:14px 20px;border-radius:6px;color:#fff;margin-bottom:12px}}.verdict.pass{{background:#1b7f3b}}.verdict.fail{{background:#b3261e}}figure{{margin:12px 0 24px}}figcaption{{font-weight:600}}td,th{{font-size:13px}}</style></head><body>",
        escape(&r.scenario)
    );
    let _ = write!(
        o,
        "<div class=\"verdict {}\" role=\"status\"><h1>{}</h1><p>{}</p></div>",
        if r.status == Status::Found {
            "pass"
        } else {
            "fail"
        },
        escape(&title(r)),
        // Without the mark: a page may lack the emoji's font.
        escape(
            status_line(r)
                .split_once(' ')
                .map_or("", |(_, words)| words)
        )
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
}

/// Latency and carried load against the offered rate, one point a rate.
fn html_charts(o: &mut String, r: &CapacityReport) {
    let mut steps: Vec<&Step> = r
        .steps
        .iter()
        .filter(|s| !matches!(s.outcome, Outcome::Repeated | Outcome::ClientSaturated))
        .collect();
    steps.sort_by(|a, b| a.measured.offered_rps.total_cmp(&b.measured.offered_rps));
    let pts = |f: &dyn Fn(&Step) -> Option<f64>| {
        steps
            .iter()
            .filter_map(|s| f(s).map(|v| (s.measured.offered_rps, v)))
            .collect::<Vec<_>>()
    };
    let mut markers: Vec<(f64, String)> = Vec::new();
    if let Some(k) = &r.knee {
        markers.push((k.value, format!("knee {}/s", num(k.value))));
    }
    if let Some(m) = &r.max_sustainable {
        markers.push((m.value, format!("capacity {}/s", num(m.value))));
    }
    if let Some(e) = r.expected_rps {
        markers.push((e, format!("expected {}/s", num(e))));
    }
    // The limiting objective's levels, when it is a latency on this chart.
    let limiting = r.limiting_objective.as_ref().and_then(|l| {
        r.steps
            .iter()
            .flat_map(|s| s.measured.objectives.iter())
            .find(|j| j.name == l.name)
    });
    let bands = limiting
        .filter(|j| {
            j.metric.starts_with("latency_ms.") || j.metric.starts_with("scheduled_latency_ms.")
        })
        .and_then(|j| j.levels.map(|lv| super::chart::level_bands(&j.name, &lv)))
        .unwrap_or_default();
    let mut latency = Chart::new(
        &format!(
            "Latency vs offered load (client side, from the schedule; and the server's own){}",
            r.limiting_objective
                .as_ref()
                .map_or(String::new(), |l| format!("; limited by {}", l.name))
        ),
        "offered requests/s",
        "latency (ms)",
        vec![
            Series {
                name: "first token p50",
                color: "#1f77b4",
                points: pts(&|s| s.measured.first_token_p50_ms),
            },
            Series {
                name: "first token p95",
                color: "#ff7f0e",
                points: pts(&|s| s.measured.first_token_p95_ms),
            },
            Series {
                name: "first token p99",
                color: "#d62728",
                points: pts(&|s| s.measured.first_token_p99_ms),
            },
            Series {
                name: "complete p95",
                color: "#9467bd",
                points: pts(&|s| s.measured.complete_p95_ms),
            },
            Series {
                name: "server first token p95",
                color: "#8c564b",
                points: pts(&|s| s.measured.server_first_token_p95_ms),
            },
        ],
    );
    latency.markers = markers.clone();
    latency.bands = bands;
    latency.x_from = Some(0.0);
    o.push_str(&latency.svg());
    let mut carried = Chart::new(
        "Carried load vs offered load",
        "offered requests/s",
        "requests/s, streams, %",
        vec![
            Series {
                name: "achieved/s",
                color: "#7f7f7f",
                points: pts(&|s| Some(s.measured.achieved_rps)),
            },
            Series {
                name: "server active streams (max)",
                color: "#17becf",
                points: pts(&|s| s.measured.server_max_active_streams.map(|v| v as f64)),
            },
            Series {
                name: "success %",
                color: "#2ca02c",
                points: pts(&|s| Some(s.measured.success_rate)),
            },
        ],
    );
    carried.markers = markers;
    carried.x_from = Some(0.0);
    o.push_str(&carried.svg());
}
