//! The guide's alert rules, defined once: rendered as the Prometheus rules
//! file (`ci/prometheus/rules.yml` is this at the guide's timings, checked
//! current by a test) and evaluated by the load generator during a run
//! ([`super::eval`]). Thresholds come from [`crate::monitoring::thresholds`],
//! the numbers the health check judges by.

use crate::monitoring::thresholds::*;
use std::fmt::Write;

/// What a rule watches, as the recording rules compute it from the
/// reference server's `/metrics`. The ratios are over finished requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Failed over finished requests, over the window (0 to 1).
    ErrorRatio,
    /// Succeeded over finished requests, over the window.
    SuccessRatio,
    /// p95 of a latency stage over the window, seconds.
    LatencyP95(&'static str),
    /// Hits over lookups of a cache over the window.
    CacheHitRatio(&'static str),
    /// Streams open now.
    ActiveStreams,
    /// Resident memory over the memory limit, now.
    MemoryRatio,
    /// CPU use, 0 to 1, now.
    CpuRatio,
}

/// One alert rule: its expression is `signal > threshold` (or `<`), and,
/// for a warning, not past the critical tier's threshold (one alert per
/// level, as the guide's tiers).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: &'static str,
    /// Alerts on the same figure share a family (the warning and the
    /// critical tier; the error and success ratios).
    pub family: &'static str,
    pub signal: Signal,
    pub above: bool,
    pub threshold: f64,
    /// Where the next tier takes over (the warning stops there).
    pub ceiling: Option<f64>,
    pub severity: super::AlertSeverity,
    /// How long the expression must hold before the alert fires, at the
    /// guide's timings (seconds).
    pub for_s: f64,
    /// The `summary` annotation, where the guide gives one.
    pub summary: Option<&'static str>,
}

/// The timings a rules file is rendered (and evaluated) with. The guide's
/// are a 5-minute window and `for` of 1 or 5 minutes; a drill shortens
/// them all by one factor so it can run in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Multiplies every window and every `for` (1 = the guide's).
    pub scale: f64,
    /// How often the rules are evaluated (and the target scraped), seconds.
    pub interval_s: f64,
}

impl Timing {
    pub const GUIDE: Timing = Timing {
        scale: 1.0,
        interval_s: 15.0,
    };

    /// The rate window, seconds.
    pub fn window_s(&self) -> f64 {
        crate::monitoring::HEALTH_WINDOW.as_secs_f64() * self.scale
    }

    /// A rule's `for`, seconds.
    pub fn for_s(&self, rule: &Rule) -> f64 {
        rule.for_s * self.scale
    }
}

/// The guide's rules: its four alerts (error rate over 2 %, p95 first
/// token over 1000 ms, KB hit rate under 40 %, active streams over 200),
/// the warning and critical tier of every KPI, and system health.
pub fn guide() -> Vec<Rule> {
    let ms = crate::format::us_to_ms;
    let pct = |v: f64| v / 100.0;
    let mut rules = Vec::new();
    let mut tiers =
        |(name, critical): (&'static str, &'static str),
         family: &'static str,
         signal: Signal,
         above: bool,
         (warn, crit): (f64, f64),
         for_s: f64,
         (warn_summary, crit_summary): (Option<&'static str>, Option<&'static str>)| {
            rules.push(Rule {
                name,
                family,
                signal,
                above,
                threshold: warn,
                ceiling: Some(crit),
                severity: super::AlertSeverity::Warning,
                for_s,
                summary: warn_summary,
            });
            rules.push(Rule {
                name: critical,
                family,
                signal,
                above,
                threshold: crit,
                ceiling: None,
                severity: super::AlertSeverity::Critical,
                for_s,
                summary: crit_summary,
            });
        };
    tiers(
        ("ChatbotErrorRateHigh", "ChatbotErrorRateCritical"),
        "errors",
        Signal::ErrorRatio,
        true,
        (pct(ERROR_RATE_WARN), pct(ERROR_RATE_FAIL)),
        60.0,
        (
            Some("Error rate is {{ $value | humanizePercentage }} (warning > 2 %)"),
            Some("Error rate is {{ $value | humanizePercentage }} (critical > 5 %)"),
        ),
    );
    tiers(
        ("ChatbotSuccessRateLow", "ChatbotSuccessRateCritical"),
        "errors",
        Signal::SuccessRatio,
        false,
        (pct(SUCCESS_RATE_WARN), pct(SUCCESS_RATE_FAIL)),
        60.0,
        (
            Some("Success rate is {{ $value | humanizePercentage }} (warning < 98 %)"),
            Some("Success rate is {{ $value | humanizePercentage }} (critical < 95 %)"),
        ),
    );
    tiers(
        (
            "ChatbotFirstTokenLatencyHigh",
            "ChatbotFirstTokenLatencyCritical",
        ),
        "first_token",
        Signal::LatencyP95("first_token"),
        true,
        (ms(FIRST_TOKEN_P95_WARN_MS), ms(FIRST_TOKEN_P95_FAIL_MS)),
        60.0,
        (
            Some("p95 first token latency is {{ $value | humanizeDuration }} (warning > 1 s)"),
            Some("p95 first token latency is {{ $value | humanizeDuration }} (critical > 2 s)"),
        ),
    );
    tiers(
        (
            "ChatbotFirstAudioLatencyHigh",
            "ChatbotFirstAudioLatencyCritical",
        ),
        "first_audio",
        Signal::LatencyP95("first_audio"),
        true,
        (ms(FIRST_AUDIO_P95_WARN_MS), ms(FIRST_AUDIO_P95_FAIL_MS)),
        60.0,
        (None, None),
    );
    tiers(
        (
            "ChatbotCompleteLatencyHigh",
            "ChatbotCompleteLatencyCritical",
        ),
        "complete",
        Signal::LatencyP95("complete"),
        true,
        (ms(COMPLETE_P95_WARN_MS), ms(COMPLETE_P95_FAIL_MS)),
        60.0,
        (None, None),
    );
    tiers(
        ("ChatbotKBCacheHitRateLow", "ChatbotKBCacheHitRateCritical"),
        "kb_cache",
        Signal::CacheHitRatio("kb"),
        false,
        (pct(KB_HIT_RATE_WARN), pct(KB_HIT_RATE_FAIL)),
        300.0,
        (
            Some("KB cache hit rate is {{ $value | humanizePercentage }} (warning < 40 %)"),
            None,
        ),
    );
    tiers(
        (
            "ChatbotTTSCacheHitRateLow",
            "ChatbotTTSCacheHitRateCritical",
        ),
        "tts_cache",
        Signal::CacheHitRatio("tts"),
        false,
        (pct(TTS_HIT_RATE_WARN), pct(TTS_HIT_RATE_FAIL)),
        300.0,
        (None, None),
    );
    tiers(
        ("ChatbotActiveStreamsHigh", "ChatbotActiveStreamsCritical"),
        "active_streams",
        Signal::ActiveStreams,
        true,
        (ACTIVE_STREAMS_WARN as f64, ACTIVE_STREAMS_FAIL as f64),
        60.0,
        (Some("{{ $value }} active streams (warning > 200)"), None),
    );
    tiers(
        ("ChatbotMemoryHigh", "ChatbotMemoryCritical"),
        "memory",
        Signal::MemoryRatio,
        true,
        (pct(MEMORY_WARN), pct(MEMORY_FAIL)),
        300.0,
        (None, None),
    );
    tiers(
        ("ChatbotCPUHigh", "ChatbotCPUCritical"),
        "cpu",
        Signal::CpuRatio,
        true,
        (pct(CPU_WARN), pct(CPU_FAIL)),
        300.0,
        (None, None),
    );
    rules
}

/// A Prometheus duration: `5m`, `15s`, `750ms`.
pub fn duration(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    if ms > 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The recording rule (or metric) a signal reads, with its label matcher.
fn series(signal: Signal, window: &str) -> String {
    match signal {
        Signal::ErrorRatio => format!("chatbot:error_ratio:rate{window}"),
        Signal::SuccessRatio => format!("chatbot:success_ratio:rate{window}"),
        Signal::LatencyP95(stage) => {
            format!("chatbot:latency_seconds:p95_{window}{{stage=\"{stage}\"}}")
        }
        Signal::CacheHitRatio(cache) => {
            format!("chatbot:cache_hit_ratio:rate{window}{{cache=\"{cache}\"}}")
        }
        Signal::ActiveStreams => "chatbot_active_streams".into(),
        Signal::MemoryRatio => "chatbot:memory_usage:ratio".into(),
        Signal::CpuRatio => "process_cpu_usage_ratio".into(),
    }
}

/// A threshold as PromQL writes it (no trailing zeros).
fn number(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The rule's PromQL expression.
pub fn expr(rule: &Rule, timing: &Timing) -> String {
    let s = series(rule.signal, &duration(timing.window_s()));
    let (op, back) = if rule.above { (">", "<=") } else { ("<", ">=") };
    let mut e = format!("{s} {op} {}", number(rule.threshold));
    if let Some(c) = rule.ceiling {
        let _ = write!(e, " and {s} {back} {}", number(c));
    }
    e
}

/// The rules file: the recording rules the alerts read, then the alerts.
pub fn yaml(timing: &Timing) -> String {
    let w = duration(timing.window_s());
    let every = duration(timing.interval_s);
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Recording and alert rules for the streaming chatbot backend, on the
# metrics of the reference server's /metrics (README, \"Prometheus\"). The
# guide's four alert rules, plus the warning and critical tiers of every
# KPI. Generated from the harness's one definition of the rules
# (`loadgen alert-rules`, slo/src/alerts/rules.rs){}: do not edit by hand.
# Checked by `promtool check rules` and unit-tested by
# `promtool test rules ci/prometheus/rules.test.yml` in the test suite.
groups:
  - name: chatbot
    interval: {every}
    rules:
      - record: chatbot:requests:rate{w}
        expr: sum(rate(chatbot_requests_total[{w}]))
      # Over finished requests: `chatbot_requests_total` counts a request
      # when it starts, so a ratio to it reads the streams in flight as
      # failures (at a ramp-up, the success rate alert fired on a healthy
      # server).
      - record: chatbot:finished:rate{w}
        expr: sum(rate(chatbot_requests_success_total[{w}])) + sum(rate(chatbot_requests_failed_total[{w}]))
      - record: chatbot:error_ratio:rate{w}
        expr: sum(rate(chatbot_requests_failed_total[{w}])) / chatbot:finished:rate{w}
      - record: chatbot:success_ratio:rate{w}
        expr: sum(rate(chatbot_requests_success_total[{w}])) / chatbot:finished:rate{w}
      - record: chatbot:latency_seconds:p95_{w}
        expr: histogram_quantile(0.95, sum by (stage, le) (rate(chatbot_latency_seconds_bucket[{w}])))
      - record: chatbot:cache_hit_ratio:rate{w}
        expr: |
          sum by (cache) (rate(chatbot_cache_hits_total[{w}]))
          / (sum by (cache) (rate(chatbot_cache_hits_total[{w}])) + sum by (cache) (rate(chatbot_cache_misses_total[{w}])))
      - record: chatbot:memory_usage:ratio
        expr: process_resident_memory_bytes / process_memory_limit_bytes
      # The alerts, in the same group: evaluated after the recordings of
      # the same evaluation, not on the previous one's.",
        if *timing == Timing::GUIDE {
            String::new()
        } else {
            format!(
                ", every window and `for` scaled by {} for a drill",
                number(timing.scale)
            )
        }
    );
    for r in guide() {
        let _ = writeln!(y, "      - alert: {}", r.name);
        let _ = writeln!(y, "        expr: {}", expr(&r, timing));
        let _ = writeln!(y, "        for: {}", duration(timing.for_s(&r)));
        let _ = writeln!(y, "        labels: {{severity: {}}}", r.severity);
        if let Some(s) = r.summary {
            let _ = writeln!(y, "        annotations:\n          summary: \"{s}\"");
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_prometheus_writes_them() {
        assert_eq!(duration(300.0), "5m");
        assert_eq!(duration(15.0), "15s");
        assert_eq!(duration(3.0), "3s");
        assert_eq!(duration(0.75), "750ms");
        assert_eq!(duration(0.0), "0s");
    }

    #[test]
    fn the_guides_four_alerts_at_its_thresholds() {
        let rules = guide();
        let find = |n: &str| rules.iter().find(|r| r.name == n).unwrap();
        assert_eq!(
            expr(find("ChatbotErrorRateHigh"), &Timing::GUIDE),
            "chatbot:error_ratio:rate5m > 0.02 and chatbot:error_ratio:rate5m <= 0.05"
        );
        assert_eq!(
            expr(find("ChatbotFirstTokenLatencyCritical"), &Timing::GUIDE),
            "chatbot:latency_seconds:p95_5m{stage=\"first_token\"} > 2"
        );
        assert_eq!(
            expr(find("ChatbotKBCacheHitRateLow"), &Timing::GUIDE),
            "chatbot:cache_hit_ratio:rate5m{cache=\"kb\"} < 0.4 and chatbot:cache_hit_ratio:rate5m{cache=\"kb\"} >= 0.2"
        );
        assert_eq!(
            expr(find("ChatbotActiveStreamsHigh"), &Timing::GUIDE),
            "chatbot_active_streams > 200 and chatbot_active_streams <= 500"
        );
        let drill = Timing {
            scale: 0.05,
            interval_s: 1.0,
        };
        assert_eq!(drill.window_s(), 15.0);
        assert_eq!(drill.for_s(find("ChatbotErrorRateHigh")), 3.0);
        assert!(yaml(&drill).contains("rate(chatbot_requests_total[15s])"));
        // Every name once; two tiers per family.
        let mut names: Vec<_> = rules.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rules.len());
        assert!(
            rules.iter().all(|r| !r.name.ends_with("High")
                || r.severity == crate::alerts::AlertSeverity::Warning)
        );
    }
}
