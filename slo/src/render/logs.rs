//! `loadgen logs`: the guide's log analysis of a reference server's log
//! or an nginx access log, as text.

use crate::aggregate::LatencyFigures;
use crate::logs::{LogSummary, NginxSummary};
use std::fmt::Write;

/// A table of latency figures in ms, one row each, the names padded to
/// the longest.
fn latency_table(o: &mut String, title: &str, rows: &[(&str, &LatencyFigures)]) {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    let w = rows
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max(title.len())
        .max(12);
    let _ = writeln!(
        o,
        "{title:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "avg", "p50", "p95", "p99", "max", "count"
    );
    for (name, f) in rows {
        let _ = writeln!(
            o,
            "{name:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
            ms(f.mean),
            ms(f.p50),
            ms(f.p95),
            ms(f.p99),
            ms(f.max),
            f.count
        );
    }
}

/// `loadgen logs` on an nginx access log, as text.
pub fn nginx_text(s: &NginxSummary, file: &str) -> String {
    let mut o = String::new();
    let statuses: Vec<String> = s.statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        o,
        "{}: {} lines, {} malformed (skipped), {} requests; status {}",
        file,
        s.lines,
        s.malformed,
        s.requests,
        if statuses.is_empty() {
            "-".to_owned()
        } else {
            statuses.join(", ")
        }
    );
    latency_table(
        &mut o,
        "nginx ms",
        &[
            ("request (rt)", &s.request_time_ms),
            ("upstream connect (uct)", &s.upstream_connect_ms),
            ("upstream header (uht)", &s.upstream_header_ms),
            ("upstream whole (urt)", &s.upstream_response_ms),
        ],
    );
    let _ = writeln!(
        o,
        "slower than {} ms (rt): {}",
        s.slow_threshold_ms,
        s.slow.len()
    );
    for line in &s.slow {
        let _ = writeln!(o, "  {line}");
    }
    let _ = writeln!(
        o,
        "by path{}:",
        s.path_filter
            .as_deref()
            .map_or(String::new(), |p| format!(" (counted above: {p} only)"))
    );
    for (what, n) in &s.by_path {
        let _ = writeln!(o, "  {n:>8} {what}");
    }
    o
}

/// `loadgen logs` on the reference server's log, as text.
pub fn logs_text(s: &LogSummary, file: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} lines, {} malformed (skipped), {} complete streams",
        file, s.lines, s.malformed, s.complete
    );
    latency_table(
        &mut o,
        "latency ms",
        &[
            ("first token", &s.first_token_ms),
            ("first audio", &s.first_audio_ms),
            ("duration", &s.duration_ms),
        ],
    );
    let _ = writeln!(
        o,
        "slower than {} ms (first token): {}",
        s.slow_threshold_ms,
        s.slow.len()
    );
    for r in &s.slow {
        let _ = writeln!(o, "  {}", crate::logs::slow_line(r));
    }
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        o,
        "errors by type: {}",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(", ")
        }
    );
    o
}
