//! The guide's log-analysis one-liners as one pass over the reference
//! server's JSON logs: latency percentiles from the "Stream complete"
//! lines, the requests slower than a threshold, errors counted by type.
//! A line that is not a JSON object is counted and skipped.

use crate::aggregate::LatencyFigures;
use crate::histogram::LatencyHistogram;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default, Serialize)]
pub struct LogSummary {
    pub lines: u64,
    pub malformed: u64,
    pub complete: u64,
    pub first_token_ms: LatencyFigures,
    pub first_audio_ms: LatencyFigures,
    pub duration_ms: LatencyFigures,
    /// "Stream complete" lines whose first token took longer than the threshold.
    pub slow: Vec<Value>,
    pub slow_threshold_ms: u64,
    pub errors: BTreeMap<String, u64>,
    pub levels: BTreeMap<String, u64>,
}

/// One slow request's log line, shortened: when, who, how slow.
pub fn slow_line(r: &Value) -> String {
    format!(
        "{} {} firstTokenLatency={} duration={}",
        r["timestamp"].as_str().unwrap_or("-"),
        r["clientId"].as_str().unwrap_or("-"),
        r["firstTokenLatency"],
        r["duration"]
    )
}

/// Reads `lines`; `slow_ms` is the guide's `select(.firstTokenLatency > 2000)`.
pub fn analyze<'a>(lines: impl IntoIterator<Item = &'a str>, slow_ms: u64) -> LogSummary {
    let mut s = LogSummary {
        slow_threshold_ms: slow_ms,
        ..LogSummary::default()
    };
    let (mut ft, mut fa, mut du) = (
        LatencyHistogram::new(),
        LatencyHistogram::new(),
        LatencyHistogram::new(),
    );
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        s.lines += 1;
        let Ok(Value::Object(v)) = serde_json::from_str::<Value>(line) else {
            s.malformed += 1;
            continue;
        };
        if let Some(level) = v.get("level").and_then(Value::as_str) {
            *s.levels.entry(level.to_lowercase()).or_default() += 1;
        }
        let message = v.get("message").and_then(Value::as_str).unwrap_or_default();
        let ms = |k: &str| v.get(k).and_then(Value::as_u64);
        if message == "Stream complete" {
            s.complete += 1;
            if let Some(x) = ms("firstTokenLatency") {
                ft.record_us(x * 1000);
                if x > slow_ms {
                    s.slow.push(Value::Object(v.clone()));
                }
            }
            if let Some(x) = ms("firstAudioLatency") {
                fa.record_us(x * 1000);
            }
            if let Some(x) = ms("duration") {
                du.record_us(x * 1000);
            }
            continue;
        }
        let kind = match v.get("errorType").and_then(Value::as_str) {
            Some(t) => Some(t.to_owned()),
            None if message.starts_with("Chat request rejected") => Some("validation".to_owned()),
            None if message.starts_with("Overloaded") => Some("other".to_owned()),
            None => None,
        };
        if let Some(k) = kind {
            *s.errors.entry(k).or_default() += 1;
        }
    }
    s.first_token_ms = LatencyFigures::of(&ft, None);
    s.first_audio_ms = LatencyFigures::of(&fa, None);
    s.duration_ms = LatencyFigures::of(&du, None);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_slow_requests_errors_and_bad_lines() {
        let log = r#"{"timestamp":"t","level":"INFO","message":"Stream complete","clientId":"a","firstTokenLatency":400,"firstAudioLatency":1100,"duration":2500,"wordCount":90}
{"timestamp":"t","level":"INFO","message":"Stream complete","clientId":"b","firstTokenLatency":2400,"duration":5000,"wordCount":90}
not json at all
{"timestamp":"t","level":"ERROR","message":"Stream failed: upstream model timed out","errorType":"openai"}
{"timestamp":"t","level":"WARN","message":"Chat request rejected: chatbotId is required"}
{"timestamp":"t","level":"WARN","message":"Client disconnected before the stream ended","errorType":"network"}
[1, 2]
"#;
        let s = analyze(log.lines(), 2000);
        assert_eq!((s.lines, s.malformed, s.complete), (7, 2, 2));
        assert_eq!(s.first_token_ms.count, 2);
        assert_eq!(s.first_audio_ms.count, 1);
        assert_eq!(s.slow.len(), 1);
        assert_eq!(s.slow[0]["clientId"], "b");
        assert_eq!(s.errors["openai"], 1);
        assert_eq!(s.errors["validation"], 1);
        assert_eq!(s.errors["network"], 1);
        assert_eq!(s.levels["info"], 2);
    }
}
