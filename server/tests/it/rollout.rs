//! Rollout (docs/protocol.md 3): the bucket formula and the rules for who may
//! change a flag.

use crate::support::{EXACT, body, chat, get_json, start};
use serde_json::{Value, json};

/// FNV-1a 64, written again here so the test does not trust the code under test.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 14695981039346656037;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(1099511628211);
    }
    h
}

async fn set_rollout(url: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = crate::support::http()
        .post(format!("{url}/api/metrics/feature-flags/rollout"))
        .json(&body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_client_streams_when_its_bucket_is_below_the_percentage() {
    let server = start(EXACT).await;
    let url = server.url();
    let (status, j) = set_rollout(
        &url,
        None,
        json!({"feature": "streaming", "percentage": 50}),
    )
    .await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        (j["percentage"].as_u64(), j["previous"].as_u64()),
        (Some(50), Some(100))
    );
    let (mut streamed, mut json_answers) = (0, 0);
    for i in 0..30 {
        let id = format!("chat-{i}-rollout");
        let r = chat(&url, &body("hello", Some(&id), false)).await;
        let expect_stream = fnv(&id) % 100 < 50;
        if expect_stream {
            streamed += 1;
            assert_eq!(
                r.names().first(),
                Some(&"start"),
                "{id} has bucket {}",
                fnv(&id) % 100
            );
        } else {
            json_answers += 1;
            assert_eq!(
                r.json.as_ref().unwrap()["streaming"],
                false,
                "{id} has bucket {}",
                fnv(&id) % 100
            );
        }
    }
    assert!(
        streamed > 0 && json_answers > 0,
        "both sides of the split were exercised"
    );

    // The emergency switch, then the event log.
    set_rollout(&url, None, json!({"feature": "streaming", "percentage": 0})).await;
    let r = chat(&url, &body("hello", Some("chat-0-any"), false)).await;
    assert_eq!(r.json.unwrap()["streaming"], false);
    let (_, flags) = get_json(&url, "/api/metrics/feature-flags").await;
    assert_eq!(flags["flags"]["streaming"]["percentage"], 0);
    assert_eq!(flags["flags"]["streaming"]["enabled"], false);
    let (_, ev) = get_json(&url, "/api/metrics/streaming/events?limit=1000").await;
    let changes: Vec<&Value> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "flag_change")
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["percentage"], 0, "newest first");

    for (bad, needle) in [
        (
            json!({"feature": "streaming", "percentage": 101}),
            "percentage",
        ),
        (json!({"feature": "audio", "percentage": 5}), "unknown"),
        (json!({"percentage": 5}), "feature is required"),
    ] {
        let (status, j) = set_rollout(&url, None, bad).await;
        assert_eq!(status, 400);
        assert!(
            j["error"]["message"].as_str().unwrap().contains(needle),
            "{j}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_an_admin_token_a_flag_change_needs_it() {
    let server = start(&[EXACT, &["--admin-token", "s3cret"]].concat()).await;
    let url = server.url();
    let change = json!({"feature": "streaming", "percentage": 10});
    let (status, j) = set_rollout(&url, None, change.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(j["error"]["type"], "unauthorized");
    let (status, _) = set_rollout(&url, Some("Bearer wrong"), change.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = set_rollout(&url, Some("Bearer s3cret"), change).await;
    assert_eq!(status, 200);
    let (_, flags) = get_json(&url, "/api/metrics/feature-flags").await;
    assert_eq!(flags["flags"]["streaming"]["percentage"], 10);
    // The faults endpoint follows the same rule.
    let r = crate::support::get(format!("{url}/api/admin/faults"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    server.stop().await.unwrap();
}
