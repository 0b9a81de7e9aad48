//! A run classified into the guide's incident severities ("Incident
//! Response"), with the reasons. Latency baselines are the tops of the
//! guide's p95 ranges ("Performance Baselines"): first token 800 ms,
//! first audio 1600 ms, complete 4000 ms.

use crate::aggregate::Figures;
use crate::objective::{Judged, Level};
use crate::server_view::ServerView;
use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Severity {
    /// Critical: service down, all requests failing, error rate > 10 %.
    P1,
    /// High: error rate > 5 %, latency > 2x baseline, cache unavailable.
    P2,
    /// Medium: error rate > 2 %, latency > 1.5x baseline, cache hit rate < 30 %.
    P3,
    /// Low: minor degradation (an objective missed its target).
    P4,
}

/// p95 baselines in ms: first token, first audio, complete.
pub const BASELINE_P95_MS: [(&str, f64); 3] = [
    ("first token", 800.0),
    ("first audio", 1600.0),
    ("complete", 4000.0),
];

/// The severity of a run (none when nothing is wrong) and why.
pub fn classify(
    f: &Figures,
    judged: &[Judged],
    server: &ServerView,
) -> (Option<Severity>, Vec<String>) {
    let mut found: Vec<(Severity, String)> = Vec::new();
    // The target said so itself: its health's cache check.
    let down: Vec<f64> = server
        .health
        .iter()
        .filter(|h| h.cache.as_deref() == Some("unavailable"))
        .map(|h| h.t)
        .collect();
    if let (Some(first), Some(last)) = (down.first(), down.last()) {
        found.push((
            Severity::P2,
            format!(
                "cache unavailable: the target's health said so in {} of its {} checks (from {first:.0} s to {last:.0} s)",
                down.len(),
                server.health.len()
            ),
        ));
    }
    let q = &f.requests;
    let error_rate = if q.total == 0 {
        0.0
    } else {
        q.failed as f64 * 100.0 / q.total as f64
    };
    if q.total > 0 && q.ok == 0 {
        found.push((Severity::P1, format!("all {} requests failed", q.total)));
    }
    for (limit, sev) in [
        (10.0, Severity::P1),
        (5.0, Severity::P2),
        (2.0, Severity::P3),
    ] {
        if error_rate > limit {
            found.push((
                sev,
                format!("error rate {error_rate:.1}% is above {limit}%"),
            ));
            break;
        }
    }
    // Judged as the user saw it: from the scheduled start under an open model.
    let l = &f.scheduled_latency_ms;
    let p95 = [l.first_token.p95, l.first_audio.p95, l.complete.p95];
    for ((name, base), value) in BASELINE_P95_MS.iter().zip(p95) {
        let Some(value) = value else { continue };
        if value > 2.0 * base {
            found.push((
                Severity::P2,
                format!("{name} p95 {value:.0} ms is more than 2x its baseline {base:.0} ms"),
            ));
        } else if value > 1.5 * base {
            found.push((
                Severity::P3,
                format!("{name} p95 {value:.0} ms is more than 1.5x its baseline {base:.0} ms"),
            ));
        }
    }
    let c = &f.cache;
    // "Completely unavailable": no hit at all over enough lookups to expect some.
    if c.kb_hits == 0 && c.kb_misses >= 50 {
        found.push((
            Severity::P2,
            format!("the KB cache had no hit in {} lookups", c.kb_misses),
        ));
    } else {
        for (name, rate) in [("KB", c.kb_hit_rate), ("TTS", c.tts_hit_rate)] {
            if let Some(r) = rate.filter(|r| *r < 30.0) {
                found.push((
                    Severity::P3,
                    format!("{name} cache hit rate {r:.1}% is below 30%"),
                ));
            }
        }
    }
    for j in judged {
        if matches!(
            j.level,
            Level::TargetMissed | Level::Warning | Level::Critical
        ) {
            found.push((
                Severity::P4,
                format!("{} missed its target ({})", j.name, j.threshold),
            ));
        }
    }
    let worst = found.iter().map(|(s, _)| *s).min();
    let reasons = found
        .into_iter()
        .filter(|(s, _)| Some(*s) == worst)
        .map(|(_, r)| r)
        .collect();
    (worst, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Figures;

    fn figures(total: u64, ok: u64, ft_p95: f64) -> Figures {
        let mut f = Figures::default();
        f.requests.total = total;
        f.requests.ok = ok;
        f.requests.failed = total - ok;
        f.scheduled_latency_ms.first_token.p95 = Some(ft_p95);
        f
    }

    fn classify_(f: &Figures, judged: &[Judged]) -> (Option<Severity>, Vec<String>) {
        classify(f, judged, &ServerView::default())
    }

    #[test]
    fn a_cache_the_target_calls_unavailable_is_p2() {
        let sample = |t: f64, cache: &str| crate::server_view::HealthSample {
            t,
            status: "degraded".into(),
            http_status: Some(200),
            active_streams: Some(1),
            cache: Some(cache.into()),
        };
        let server = ServerView {
            health: vec![
                sample(2.0, "connected"),
                sample(4.0, "unavailable"),
                sample(6.0, "unavailable"),
                sample(8.0, "connected"),
            ],
            ..ServerView::default()
        };
        let (s, why) = classify(&figures(100, 100, 500.0), &[], &server);
        assert_eq!(s, Some(Severity::P2));
        assert!(
            why[0].contains("2 of its 4 checks (from 4 s to 6 s)"),
            "{why:?}"
        );
    }

    #[test]
    fn the_guides_levels() {
        assert_eq!(classify_(&figures(100, 100, 500.0), &[]).0, None);
        assert_eq!(classify_(&figures(100, 0, 0.0), &[]).0, Some(Severity::P1));
        assert_eq!(
            classify_(&figures(100, 89, 500.0), &[]).0,
            Some(Severity::P1)
        );
        assert_eq!(
            classify_(&figures(100, 94, 500.0), &[]).0,
            Some(Severity::P2)
        );
        assert_eq!(
            classify_(&figures(100, 97, 500.0), &[]).0,
            Some(Severity::P3)
        );
        let (s, why) = classify_(&figures(100, 100, 1700.0), &[]);
        assert_eq!(s, Some(Severity::P2));
        assert!(
            why[0].contains("first token p95 1700 ms is more than 2x"),
            "{why:?}"
        );
        assert_eq!(
            classify_(&figures(100, 100, 1300.0), &[]).0,
            Some(Severity::P3)
        );
        let mut f = figures(100, 100, 500.0);
        f.cache.kb_hit_rate = Some(25.0);
        f.cache.kb_hits = 25;
        f.cache.kb_misses = 75;
        assert_eq!(classify_(&f, &[]).0, Some(Severity::P3));
        f.cache.kb_hits = 0;
        assert_eq!(classify_(&f, &[]).0, Some(Severity::P2));
        let missed = Judged {
            name: "first token p95".into(),
            metric: "latency_ms.first_token.p95".into(),
            source: crate::objective::Source::Client,
            level: Level::TargetMissed,
            point_level: Level::TargetMissed,
            value: Some(600.0),
            threshold: 500.0,
            margin: Some(-100.0),
            required: true,
            interval: None,
            samples: None,
            samples_needed: None,
            decided_by: None,
            levels: None,
            window: None,
            budget: None,
            split: None,
        };
        assert_eq!(
            classify_(&figures(100, 100, 600.0), &[missed]).0,
            Some(Severity::P4)
        );
    }
}
