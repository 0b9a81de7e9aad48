//! The guide's log-analysis one-liners as one pass over the reference
//! server's JSON logs: latency percentiles from the "Stream complete"
//! lines, the requests slower than a threshold, errors counted by type.
//! A line that is not a JSON object is counted and skipped. Also nginx
//! access logs in the guide's `streaming` format (`analyze_nginx`).

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

/// nginx access logs in the guide's `streaming` format: `... "$request"
/// $status $body_bytes_sent "$http_referer" "$http_user_agent"
/// rt=$request_time uct="$upstream_connect_time"
/// uht="$upstream_header_time" urt="$upstream_response_time"`.
#[derive(Debug, Default, Serialize)]
pub struct NginxSummary {
    pub lines: u64,
    /// Lines not in the `streaming` format (counted and skipped).
    pub malformed: u64,
    pub requests: u64,
    /// Requests by HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// Requests by method and path (without the query): what else went
    /// through the proxy (monitoring scrapes, ...).
    pub by_path: BTreeMap<String, u64>,
    /// Only requests to this path were counted (`--path`).
    pub path_filter: Option<String>,
    /// `rt`: from the first byte read from the client to the last byte
    /// sent (a whole stream).
    pub request_time_ms: LatencyFigures,
    /// `uct`, `uht`, `urt`: to connect upstream, to its response headers,
    /// to its whole response (the upstream that answered, when nginx tried
    /// several).
    pub upstream_connect_ms: LatencyFigures,
    pub upstream_header_ms: LatencyFigures,
    pub upstream_response_ms: LatencyFigures,
    /// Lines whose `rt` is above the threshold.
    pub slow: Vec<String>,
    pub slow_threshold_ms: u64,
}

/// Whether a log looks like nginx's (a line not starting with `{`).
pub fn looks_like_nginx(first_line: &str) -> bool {
    !first_line.trim_start().starts_with('{')
}

/// One `streaming` line: `METHOD PATH`, status and the four times in ms
/// (absent: `-`).
fn nginx_line(line: &str) -> Option<(String, u16, [Option<f64>; 4])> {
    // The request is the first quoted field; the status follows it.
    let (_, after) = line.split_once('"')?;
    let (request, after) = after.split_once('"')?;
    let mut words = request.split_whitespace();
    let method = words.next()?;
    let path = words.next()?.split('?').next()?;
    let what = format!("{method} {path}");
    let status: u16 = after.split_whitespace().next()?.parse().ok()?;
    let field = |key: &str| -> Option<Option<f64>> {
        let start = line.rfind(&format!(" {key}="))? + key.len() + 2;
        let rest = &line[start..];
        let value = match rest.strip_prefix('"') {
            Some(quoted) => &quoted[..quoted.find('"')?],
            None => rest.split_whitespace().next()?,
        };
        // Several upstreams tried: "0.001, 0.004" (or ":" between groups);
        // the last one answered.
        let last = value.rsplit([',', ':']).next()?.trim();
        Some(if last == "-" || last.is_empty() {
            None
        } else {
            Some(last.parse::<f64>().ok()? * 1000.0)
        })
    };
    Some((
        what,
        status,
        [field("rt")?, field("uct")?, field("uht")?, field("urt")?],
    ))
}

/// Reads nginx `streaming` lines; `slow_ms` lists the requests whose `rt`
/// is above it; with `path`, only requests to that path are counted (every
/// path still appears in `by_path`).
pub fn analyze_nginx<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    slow_ms: u64,
    path: Option<&str>,
) -> NginxSummary {
    let mut s = NginxSummary {
        slow_threshold_ms: slow_ms,
        path_filter: path.map(str::to_owned),
        ..NginxSummary::default()
    };
    let mut h: [LatencyHistogram; 4] = std::array::from_fn(|_| LatencyHistogram::new());
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        s.lines += 1;
        let Some((what, status, times)) = nginx_line(line) else {
            s.malformed += 1;
            continue;
        };
        let counted = path.is_none_or(|p| what.split(' ').nth(1) == Some(p));
        *s.by_path.entry(what).or_default() += 1;
        if !counted {
            continue;
        }
        s.requests += 1;
        *s.statuses.entry(status.to_string()).or_default() += 1;
        for (hist, t) in h.iter_mut().zip(times) {
            if let Some(ms) = t {
                hist.record_us(crate::format::ms_to_us(ms));
            }
        }
        if times[0].is_some_and(|rt| rt > slow_ms as f64) {
            s.slow.push(line.to_owned());
        }
    }
    let [rt, uct, uht, urt] = &h;
    s.request_time_ms = LatencyFigures::of(rt, None);
    s.upstream_connect_ms = LatencyFigures::of(uct, None);
    s.upstream_header_ms = LatencyFigures::of(uht, None);
    s.upstream_response_ms = LatencyFigures::of(urt, None);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_streaming_lines() {
        let log = r#"127.0.0.1 - - [30/Nov/2026:07:00:01 +0000] "POST /api/chat/stream HTTP/1.1" 200 5120 "-" "loadgen/0.0.0" rt=0.512 uct="0.000" uht="0.052" urt="0.512"
127.0.0.1 - - [30/Nov/2026:07:00:02 +0000] "POST /api/chat/stream HTTP/1.1" 200 5120 "-" "a "quoted" agent" rt=2.600 uct="0.001" uht="0.100" urt="2.600"
127.0.0.1 - - [30/Nov/2026:07:00:03 +0000] "POST /api/chat/stream HTTP/1.1" 502 150 "-" "curl/8" rt=0.004 uct="0.001, 0.002" uht="-, -" urt="0.001, 0.003"
this is not an access log line
"#;
        let s = analyze_nginx(log.lines(), 2000, None);
        assert_eq!((s.lines, s.malformed, s.requests), (4, 1, 3));
        assert_eq!(s.by_path["POST /api/chat/stream"], 3);
        assert_eq!(analyze_nginx(log.lines(), 2000, Some("/other")).requests, 0);
        assert_eq!(s.statuses["200"], 2);
        assert_eq!(s.statuses["502"], 1);
        assert_eq!(s.request_time_ms.count, 3);
        assert_eq!(s.upstream_header_ms.count, 2, "`-` is absent, not 0");
        assert_eq!(s.upstream_response_ms.count, 3);
        assert_eq!(s.slow.len(), 1);
        assert!(s.slow[0].contains("rt=2.600"));
        assert!(looks_like_nginx(log.lines().next().unwrap()));
        assert!(!looks_like_nginx("{\"level\": \"INFO\"}"));
    }

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
