//! Every monitoring endpoint's JSON against the guide's example, key for key
//! and type for type (strings that carry `%` or `ms` in the guide carry them
//! here too).

use crate::support::{EXACT, body, chat, get_json, start};
use serde_json::{Value, json};

fn same_shape(path: &str, guide: &Value, ours: &Value) {
    match (guide, ours) {
        (Value::Object(g), Value::Object(o)) => {
            let gk: Vec<&String> = g.keys().collect();
            let ok: Vec<&String> = o.keys().collect();
            assert_eq!(gk, ok, "keys of {path}");
            for (k, gv) in g {
                same_shape(&format!("{path}.{k}"), gv, &o[k]);
            }
        }
        (Value::Array(g), Value::Array(o)) => {
            if let (Some(g0), Some(o0)) = (g.first(), o.first()) {
                same_shape(&format!("{path}[0]"), g0, o0);
            }
        }
        (Value::String(g), Value::String(o)) => {
            for suffix in ["%", "ms"] {
                if g.ends_with(suffix) && g != "≤5%" && g != "≤1000ms" {
                    let number = o
                        .strip_suffix(suffix)
                        .unwrap_or_else(|| panic!("{path} = {o:?} lacks {suffix}"));
                    number
                        .parse::<f64>()
                        .unwrap_or_else(|_| panic!("{path} = {o:?} is not a number with {suffix}"));
                }
            }
        }
        (Value::Number(_), Value::Number(_)) | (Value::Bool(_), Value::Bool(_)) => {}
        (g, o) => panic!("{path}: the guide has {g}, the server {o}"),
    }
}

fn guide_health() -> Value {
    json!({
      "success": true, "status": "healthy", "timestamp": "2025-10-11T10:30:00.000Z",
      "checks": {
        "errorRate": {"status": "pass", "value": "0.5%", "threshold": "≤5%"},
        "latency": {"status": "pass", "value": "450ms", "threshold": "≤1000ms"},
        "redis": {"status": "pass", "value": "connected"},
        "activeStreams": {"status": "pass", "value": 12}
      },
      "issues": []
    })
}

fn guide_summary() -> Value {
    json!({
      "success": true, "timestamp": "2025-10-11T10:30:00.000Z",
      "summary": {
        "uptime": "5d 12h 30m", "totalRequests": 15234, "successRate": "99.2%",
        "activeStreams": 12, "avgFirstTokenLatency": 485, "avgCompleteLatency": 2834,
        "cacheHitRate": {"kb": "65.4%", "tts": "58.2%"}, "errorCount": 42
      }
    })
}

fn guide_detailed() -> Value {
    json!({
      "success": true, "timestamp": "2025-10-11T10:30:00.000Z",
      "metrics": {
        "uptime": 475800, "uptimeFormatted": "5d 12h 30m",
        "requests": {"total": 15234, "successful": 15192, "failed": 42, "active": 12, "successRate": "99.72%"},
        "latency": {
          "firstToken": {"avg": 485, "p50": 420, "p95": 680, "p99": 920},
          "firstAudio": {"avg": 1245, "p50": 1180, "p95": 1520, "p99": 1890},
          "complete": {"avg": 2834, "p50": 2650, "p95": 3420, "p99": 4580}
        },
        "cache": {
          "kb": {"hits": 9876, "misses": 5234, "hitRate": "65.4%"},
          "tts": {"hits": 7845, "misses": 5623, "hitRate": "58.2%"}
        },
        "errors": {
          "openai": 12, "tts": 8, "network": 5, "validation": 15, "other": 2,
          "breakdown": {"openai": "28.6%", "tts": "19.0%", "network": "11.9%", "validation": "35.7%", "other": "4.8%"}
        },
        "streaming": {"totalStreams": 15234, "activeCount": 12, "completedCount": 15192, "errorCount": 42}
      }
    })
}

fn guide_events() -> Value {
    json!({
      "success": true, "timestamp": "2025-10-11T10:30:00.000Z",
      "events": [{
        "timestamp": "2025-10-11T10:29:45.123Z", "type": "stream_complete",
        "clientId": "chat-1760185530974-abc123", "chatbotId": "60f7b3b3e6b6f40015e6b6f4",
        "metrics": {"firstTokenLatency": 420, "duration": 2650, "wordCount": 145}
      }],
      "count": 50
    })
}

fn is_iso_timestamp(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| humantime_like(s).then_some(()))
        .is_some()
}

/// `2025-10-11T10:30:00.000Z`: the guide's form, to the millisecond.
fn humantime_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
}

#[tokio::test]
async fn every_endpoint_has_the_guides_shape() {
    let server = start(EXACT).await;
    let url = server.url();
    // Traffic first, so that percentiles, events and rates are filled in.
    for i in 0..3 {
        let r = chat(&url, &body(&format!("question {i}"), None, true)).await;
        assert_eq!(r.names().last(), Some(&"done"));
    }
    let (status, health) = get_json(&url, "/api/metrics/health/streaming").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
    same_shape("health", &guide_health(), &health);
    assert!(
        is_iso_timestamp(&health["timestamp"]),
        "{}",
        health["timestamp"]
    );
    assert_eq!(health["checks"]["redis"]["value"], "in-memory");
    // One failure in four is a 25 % error rate: unhealthy.
    let r = chat(&url, &json!({"chatbotId": "nope", "message": "x"})).await;
    assert_eq!(r.status, 400);

    let (_, summary) = get_json(&url, "/api/metrics/streaming/summary").await;
    same_shape("summary", &guide_summary(), &summary);
    assert_eq!(summary["summary"]["totalRequests"], 4);
    assert_eq!(summary["summary"]["errorCount"], 1);
    assert_eq!(summary["summary"]["successRate"], "75.0%");

    let (_, detailed) = get_json(&url, "/api/metrics/streaming").await;
    same_shape("detailed", &guide_detailed(), &detailed);
    let m = &detailed["metrics"];
    assert_eq!(m["requests"]["successRate"], "75.00%");
    assert_eq!(m["errors"]["validation"], 1);
    assert_eq!(m["errors"]["breakdown"]["validation"], "100.0%");
    assert_eq!(m["streaming"]["totalStreams"], 3);
    let ft = m["latency"]["firstToken"]["p50"].as_u64().unwrap();
    assert!(
        (100..200).contains(&ft),
        "first token p50 {ft} ms with 100 ms injected"
    );

    let (_, events) = get_json(&url, "/api/metrics/streaming/events?limit=50").await;
    let complete: Vec<Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "stream_complete")
        .cloned()
        .collect();
    assert_eq!(complete.len(), 3);
    let mut only_complete = events.clone();
    only_complete["events"] = Value::Array(complete);
    same_shape("events", &guide_events(), &only_complete);
    // start + complete for three streams, one validation error
    assert_eq!(events["count"], 7);
    let (_, two) = get_json(&url, "/api/metrics/streaming/events?limit=2").await;
    assert_eq!(two["count"], 2);
    assert_eq!(two["events"][0]["type"], "error", "newest first");
    for bad in ["0", "1001", "ten"] {
        let (status, e) =
            get_json(&url, &format!("/api/metrics/streaming/events?limit={bad}")).await;
        assert_eq!(status, 400);
        assert!(
            e["error"]["message"].as_str().unwrap().contains("limit"),
            "{e}"
        );
    }

    let (_, flags) = get_json(&url, "/api/metrics/feature-flags").await;
    assert_eq!(flags["flags"]["streaming"]["percentage"], 100);
    assert_eq!(flags["flags"]["streaming"]["enabled"], true);

    let (_, system) = get_json(&url, "/api/metrics/system").await;
    assert!(system["system"]["memory"]["rssBytes"].as_u64().unwrap() > 0);
    assert!(
        system["system"]["cpu"]["usage"]
            .as_str()
            .unwrap()
            .ends_with('%')
    );

    let (status, nf) = get_json(&url, "/api/nothing").await;
    assert_eq!(status, 404);
    assert!(
        nf["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/nothing")
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_is_503_when_unhealthy() {
    let server = start(&[EXACT, &["--fail-other", "1"]].concat()).await;
    let url = server.url();
    for i in 0..3 {
        let r = chat(&url, &body(&format!("q{i}"), None, false)).await;
        assert_eq!(r.names().last(), Some(&"error"));
    }
    let (status, health) = get_json(&url, "/api/metrics/health/streaming").await;
    assert_eq!(status, 503);
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["checks"]["errorRate"]["status"], "fail");
    assert_eq!(health["checks"]["errorRate"]["value"], "100.0%");
    let issue = health["issues"][0].as_str().unwrap();
    assert!(issue.contains("error rate 100.0%"), "{issue}");
    same_shape("health", &guide_health(), &health);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn prometheus_exposition_counts_the_traffic() {
    let server = start(EXACT).await;
    let url = server.url();
    for i in 0..4 {
        chat(&url, &body(&format!("q{}", i % 2), None, true)).await;
    }
    let resp = crate::support::get(format!("{url}/metrics")).await.unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("chatbot_requests_total"), 4.0);
    assert_eq!(value("chatbot_requests_success_total"), 4.0);
    assert_eq!(value("chatbot_cache_hits_total{cache=\"kb\"}"), 2.0);
    assert_eq!(value("chatbot_cache_misses_total{cache=\"kb\"}"), 2.0);
    assert_eq!(
        value("chatbot_latency_seconds_count{stage=\"first_token\"}"),
        4.0
    );
    assert_eq!(
        value("chatbot_latency_seconds_bucket{stage=\"first_token\",le=\"0.05\"}"),
        0.0
    );
    assert_eq!(
        value("chatbot_latency_seconds_bucket{stage=\"first_token\",le=\"0.25\"}"),
        4.0
    );
    assert_eq!(value("chatbot_active_streams"), 0.0);
    assert_eq!(value("chatbot_errors_total{type=\"openai\"}"), 0.0);
    assert_eq!(value("chatbot_streaming_rollout_percent"), 100.0);
    assert!(text.contains("# TYPE chatbot_latency_seconds histogram"));
    server.stop().await.unwrap();
}

/// Every monitoring answer, live, against the JSON Schema committed for it
/// (`reports/schema/monitoring/`, generated from `slo::monitoring`), after
/// traffic that fills in every kind of event: a stream, a rejected request,
/// a rollout and a fault change.
#[tokio::test]
async fn every_answer_keeps_its_committed_schema() {
    let server = start(EXACT).await;
    let url = server.url();
    let r = chat(&url, &body("schema", None, true)).await;
    assert_eq!(r.names().last(), Some(&"done"));
    let r = chat(&url, &json!({"chatbotId": "nope", "message": "x"})).await;
    assert_eq!(r.status, 400);
    let client = crate::support::http();
    let post = |path: &str, body: Value| client.post(format!("{url}{path}")).json(&body).send();
    let faults = post(
        slo::monitoring::paths::ADMIN_FAULTS,
        json!({"tts_rate": 0.0}),
    )
    .await
    .unwrap();
    assert_eq!(faults.status(), 200);
    let rollout = post(
        slo::monitoring::paths::ROLLOUT,
        json!({"feature": "streaming", "percentage": 100}),
    )
    .await
    .unwrap();
    assert_eq!(rollout.status(), 200);
    let rollout: Value = rollout.json().await.unwrap();
    let mut checked = 0;
    for (path, (schema, _)) in slo::schema::MONITORING {
        let answer = if path == slo::monitoring::paths::ROLLOUT {
            rollout.clone()
        } else {
            let (status, answer) = get_json(&url, path).await;
            // One failure in two: the health check is unhealthy (503).
            let expected = if path == slo::monitoring::paths::HEALTH {
                503
            } else {
                200
            };
            assert_eq!(status, expected, "{path}: {answer}");
            answer
        };
        testkit::assert_matches_schema(schema, &answer, path);
        checked += 1;
    }
    assert_eq!(checked, 7);
    let (_, events) = get_json(&url, slo::monitoring::paths::EVENTS).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "stream_start",
        "stream_complete",
        "error",
        "flag_change",
        "fault_change",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    server.stop().await.unwrap();
}
