//! `report.md`: verdict first, then the objectives table, then the figures.

use super::{fail_on_word, judged_ci, num, opt, with_ci};
use crate::aggregate::LatencyFigures;
use crate::evidence::Percentile;
use crate::objective::Level;
use crate::report::{Report, Verdict};
use std::fmt::Write;

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    verdict(&mut o, r);
    timeline_and_drill(&mut o, r);
    objectives(&mut o, r);
    latency_and_tokens(&mut o, r);
    errors(&mut o, r);
    client_and_server(&mut o, r);
    self_check(&mut o, r);
    o
}

/// The verdict, the run in one sentence, its warnings, the shards and the
/// reasons.
fn verdict(o: &mut String, r: &Report) {
    let q = &r.figures.requests;
    let _ = writeln!(
        o,
        "# {} {}: {}",
        match r.verdict {
            Verdict::Pass => "✅",
            Verdict::Fail => "❌",
            Verdict::NotJudged => "➖",
        },
        r.verdict.word(),
        r.scenario.name
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{} requests ({} ok, {} failed, {} dropped) in {} s against {}{}; goodput {}%; severity {}.",
        q.total,
        q.ok,
        q.failed,
        q.dropped,
        num(r.measured_s),
        r.target.url,
        if r.target.embedded {
            " (embedded reference server)"
        } else {
            ""
        },
        num(r.figures.goodput),
        r.severity.map_or("none".to_owned(), |s| format!("{s:?}")),
    );
    for w in r.target.warnings().iter().chain(&r.findings) {
        let _ = writeln!(o, "\n> **⚠ {w}**");
    }
    if let Some(shard) = &r.shard {
        let _ = writeln!(
            o,
            "\nShard {} of {} (counting from 0): judged only merged with the others (`loadgen merge`).",
            shard.index, shard.count
        );
    }
    if !r.shards.is_empty() {
        let _ = writeln!(o, "\nMerged from {} shards:\n", r.shards.len());
        let _ = writeln!(
            o,
            "| shard | requests | ok | started after the first (ms) | folder |"
        );
        let _ = writeln!(o, "| --- | --- | --- | --- | --- |");
        for s in &r.shards {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                s.index,
                s.requests,
                s.ok,
                num(s.zero_offset_ms),
                s.dir
            );
        }
    }
    if !r.verdict_reasons.is_empty() {
        let _ = writeln!(
            o,
            "\n{}\n",
            if r.verdict == Verdict::NotJudged {
                "What is incomplete in this shard:"
            } else {
                "Why it failed:"
            }
        );
        for reason in &r.verdict_reasons {
            let _ = writeln!(o, "- {reason}");
        }
        if r.verdict == Verdict::Fail
            && let Some(moved) = crate::engine::moved_most(&r.engine)
        {
            let _ = writeln!(o, "\nMeanwhile in the engine: {moved}.");
        }
    }
    if !r.severity_reasons.is_empty() {
        let _ = writeln!(o, "\nSeverity reasons:\n");
        for reason in &r.severity_reasons {
            let _ = writeln!(o, "- {reason}");
        }
    }
}

/// The timeline's events, each incident of a drill, the alerts that fired.
fn timeline_and_drill(o: &mut String, r: &Report) {
    if !r.events.is_empty() {
        let _ = writeln!(
            o,
            "\n## Timeline\n\n| at (s) | event | what | taken | answer |\n| --- | --- | --- | --- | --- |"
        );
        for e in &r.events {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                num(e.at_s),
                e.name,
                e.action,
                if e.ok { "yes" } else { "**no**" },
                e.detail.replace('|', "\\|").replace('\n', " ")
            );
        }
    }
    for (i, fields) in crate::drill::incident_reports(&r.incidents, &r.events) {
        let _ = writeln!(o, "\n## Incident: {}\n", i.name);
        for (k, v) in fields {
            let _ = writeln!(o, "- **{k}**: {v}");
        }
    }
    if let Some(a) = &r.alerts {
        let _ = writeln!(o, "\n## Alerts\n\n{}\n", a.describe());
        let all = a.all();
        if all.is_empty() {
            let _ = writeln!(o, "No alert fired ({} evaluations).", a.evaluations);
        } else {
            let _ = writeln!(
                o,
                "| {} |\n|{}",
                crate::drill::ALERT_COLUMNS.join(" | "),
                " --- |".repeat(crate::drill::ALERT_COLUMNS.len())
            );
            for x in all {
                let _ = writeln!(o, "| {} |", crate::drill::alert_row(x).join(" | "));
            }
        }
    }
}

/// The judged objectives, one row each.
fn objectives(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Objectives\n");
    match &r.slo_file {
        None => {
            let _ = writeln!(o, "No SLO file: nothing was judged.");
        }
        Some(file) => {
            let _ = writeln!(
                o,
                "From `{file}`; the run fails at `{}` or worse.\n",
                fail_on_word(r.fail_on)
            );
            let _ = writeln!(
                o,
                "| objective | level | value | threshold | margin | 95% interval, samples |"
            );
            let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- |");
            for j in &r.slo {
                let mark = match j.level {
                    Level::Ok => "✅",
                    Level::TargetMissed => "🟡",
                    Level::Warning => "🟠",
                    Level::Critical => "🔴",
                    Level::NoData => "⚪",
                    Level::Inconclusive => "❔",
                };
                let _ = writeln!(
                    o,
                    "| {} | {mark} {} | {} | {} | {} | {} |",
                    j.label(),
                    j.level.word(),
                    j.value.map_or("—".into(), num),
                    num(j.threshold),
                    j.margin.map_or("—".into(), num),
                    judged_ci(j)
                );
            }
        }
    }
}

/// The latency figures with their intervals, then the output tokens.
fn latency_and_tokens(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Latency (ms)\n");
    let _ = writeln!(o, "| latency | p50 | p95 | p99 | max | count |");
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- |");
    let l = &r.figures.latency_ms;
    let mut row = |name: &str, f: &LatencyFigures| {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} |",
            opt(f.p50),
            with_ci(f, Percentile::P95),
            with_ci(f, Percentile::P99),
            opt(f.max),
            f.count
        );
    };
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
        row(name, f);
        if let Some(c) = &f.corrected {
            row(&format!("{name} (corrected)"), c);
        }
    }

    let t = &r.figures.tokens;
    let _ = writeln!(
        o,
        "\nOutput tokens: {} ({}/s overall; per request p50 {}/s, p5 {}/s){}{}.",
        t.output,
        num(t.output_per_s),
        opt(t.per_request_per_s.p50),
        opt(t.per_request_per_s.p5),
        if t.counted_from_stream > 0 {
            format!(
                "; counted from the stream for {} requests (no server count)",
                t.counted_from_stream
            )
        } else {
            String::new()
        },
        if t.reasoning > 0 {
            format!(
                "; {} reasoning tokens in {} requests",
                t.reasoning, t.requests_with_reasoning
            )
        } else {
            String::new()
        },
    );
}

/// Errors by type and by cause.
fn errors(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Errors\n");
    let _ = writeln!(o, "| type | count |");
    let _ = writeln!(o, "| --- | --- |");
    for (k, v) in &r.figures.errors {
        let _ = writeln!(o, "| {k} | {v} |");
    }
    if !r.figures.errors_by_cause.is_empty() {
        let causes: Vec<String> = r
            .figures
            .errors_by_cause
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "\nBy cause: {}.", causes.join(", "));
    }
}

/// The client's figures beside the server's own.
fn client_and_server(o: &mut String, r: &Report) {
    let q = &r.figures.requests;
    let l = &r.figures.latency_ms;
    let _ = writeln!(o, "\n## Client and server\n");
    let _ = writeln!(o, "| figure | client | server |");
    let _ = writeln!(o, "| --- | --- | --- |");
    let s = &r.server;
    let (delta, after) = (s.delta.as_ref(), s.latency_after.as_ref());
    let pct = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{}%", num(v)));
    let _ = writeln!(
        o,
        "| success rate | {} | {} |",
        pct(Some(q.success_rate)),
        pct(delta.and_then(|d| d.success_rate))
    );
    let _ = writeln!(
        o,
        "| KB cache hit rate | {} | {} |",
        pct(r.figures.cache.kb_hit_rate),
        pct(delta.and_then(|d| d.kb_hit_rate))
    );
    let _ = writeln!(
        o,
        "| TTS cache hit rate | {} | {} |",
        pct(r.figures.cache.tts_hit_rate),
        pct(delta.and_then(|d| d.tts_hit_rate))
    );
    if let Some(p) = &s.prefix_cache {
        let _ = writeln!(
            o,
            "| prefix cache hit rate | — | {} ({} of {} prompt tokens) |",
            pct(p.hit_rate),
            p.hits,
            p.queries
        );
    }
    let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{} ms", num(v)));
    let _ = writeln!(
        o,
        "| first token p95 | {} | {} |",
        ms(l.first_token.p95),
        ms(after.and_then(|a| a.first_token.as_ref()?.p95))
    );
    if !s.available {
        let _ = writeln!(
            o,
            "\nThe target has no monitoring endpoints: {}",
            s.reason.as_deref().unwrap_or("unavailable")
        );
    }
}

/// Whether the load generator can be trusted, and an interruption.
fn self_check(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Self-check\n");
    let trustworthy = r.self_check.trustworthy;
    let _ = writeln!(
        o,
        "The load generator was {}.",
        if trustworthy {
            "not the bottleneck: the numbers are trustworthy"
        } else {
            "**not trustworthy**"
        }
    );
    for reason in &r.self_check.reasons {
        let _ = writeln!(o, "- {reason}");
    }
    if let Some(why) = &r.interrupted {
        let _ = writeln!(o, "\nThe run was interrupted: {why}.");
    }
}
