//! Injected faults, by flags and at run time: each error type reaches the
//! client as the protocol says and is counted under its type.

use crate::support::{EXACT, body, chat, get_json, start};
use serde_json::json;

#[tokio::test]
async fn each_injected_error_type_reaches_the_client_and_the_counters() {
    for (flag, kind) in [
        ("--fail-openai", "openai"),
        ("--fail-tts", "tts"),
        ("--fail-other", "other"),
    ] {
        let server = start(&[EXACT, &[flag, "1"]].concat()).await;
        let url = server.url();
        let r = chat(&url, &body("what can go wrong?", None, true)).await;
        assert_eq!(r.names().last(), Some(&"error"), "{flag}");
        assert!(!r.names().contains(&"done"));
        let e = &r.first("error").unwrap().data;
        assert_eq!(e["type"], kind);
        assert!(!e["message"].as_str().unwrap().is_empty());
        let (_, m) = get_json(&url, "/api/metrics/streaming").await;
        assert_eq!(m["metrics"]["errors"][kind], 1, "{flag}");
        assert_eq!(m["metrics"]["streaming"]["errorCount"], 1);
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_network_fault_drops_the_connection_mid_stream() {
    let server = start(&[EXACT, &["--fail-network", "1"]].concat()).await;
    let url = server.url();
    let r = chat(&url, &body("drop me", None, true)).await;
    assert!(r.broken, "the body broke off: {:?}", r.names());
    assert_eq!(r.names().first(), Some(&"start"));
    assert!(!r.names().contains(&"done") && !r.names().contains(&"error"));
    let (_, m) = get_json(&url, "/api/metrics/streaming").await;
    assert_eq!(m["metrics"]["errors"]["network"], 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stalls_and_slow_speech_add_their_delay() {
    let server = start(
        &[
            EXACT,
            &[
                "--stall-rate",
                "1",
                "--stall-ms",
                "300",
                "--tts-slowdown-ms",
                "200",
            ],
        ]
        .concat(),
    )
    .await;
    let url = server.url();
    let r = chat(&url, &body("be slow", None, true)).await;
    let done = &r.first("done").unwrap().data;
    let words = done["wordCount"].as_u64().unwrap();
    // Without faults: 100 ms + 2 ms a token; the stall adds 300 ms.
    assert!(
        done["duration"].as_u64().unwrap() >= 100 + 2 * (words - 1) + 300,
        "{done}"
    );
    // The first sentence's speech misses the cache: 10 ms + 200 ms slower.
    assert!(
        done["firstAudioLatency"].as_u64().unwrap() >= 100 + 210,
        "{done}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn faults_change_at_run_time_through_the_admin_endpoint() {
    let server = start(EXACT).await;
    let url = server.url();
    let client = crate::support::http();
    let post = async |b: serde_json::Value| {
        let r = client
            .post(format!("{url}/api/admin/faults"))
            .json(&b)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(
        chat(&url, &body("fine", None, false)).await.names().last(),
        Some(&"done")
    );
    let (status, j) = post(json!({"openai_rate": 1.0})).await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["faults"]["openai_rate"], 1.0);
    let r = chat(&url, &body("now failing", None, false)).await;
    assert_eq!(r.first("error").unwrap().data["type"], "openai");
    for (bad, needle) in [
        (json!({"openai_rate": 2}), "openai_rate"),
        (json!({"typo_rate": 0.1}), "typo_rate"),
    ] {
        let (status, j) = post(bad).await;
        assert_eq!(status, 400);
        assert!(
            j["error"]["message"].as_str().unwrap().contains(needle),
            "{j}"
        );
    }
    let (_, j) = get_json(&url, "/api/admin/faults").await;
    assert_eq!(
        j["faults"]["openai_rate"], 1.0,
        "a refused change changes nothing"
    );
    post(json!({"openai_rate": 0})).await;
    assert_eq!(
        chat(&url, &body("fine again", None, false))
            .await
            .names()
            .last(),
        Some(&"done")
    );
    let (_, ev) = get_json(&url, "/api/metrics/streaming/events?limit=1000").await;
    let changes = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "fault_change")
        .count();
    assert_eq!(changes, 2);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn outside_the_rollout_a_fault_is_a_502_json_error() {
    let server =
        start(&[EXACT, &["--streaming-percent", "0", "--fail-openai", "1"]].concat()).await;
    let r = chat(&server.url(), &body("json and failing", None, true)).await;
    assert_eq!(r.status, 502);
    let j = r.json.unwrap();
    assert_eq!(j["success"], false);
    assert_eq!(j["error"]["type"], "openai");
    server.stop().await.unwrap();
}

/// The drills' two faults: a bug of the streaming path, which the guide's
/// mitigation (the rollout at 0 %) routes around, and a slow model.
#[tokio::test]
async fn a_streaming_bug_spares_answers_outside_the_rollout_and_a_slow_model_delays_the_first_token()
 {
    let server = start(
        &[
            EXACT,
            &["--fail-streaming", "1", "--model-slowdown-ms", "250"],
        ]
        .concat(),
    )
    .await;
    let url = server.url();
    let r = chat(&url, &body("streamed", None, true)).await;
    assert_eq!(r.names().last(), Some(&"error"), "{:?}", r.names());
    assert_eq!(r.first("error").unwrap().data["type"], "other");
    let client = crate::support::http();
    let rollout = client
        .post(format!("{url}{}", slo::monitoring::paths::ROLLOUT))
        .json(&json!({"feature": "streaming", "percentage": 0}))
        .send()
        .await
        .unwrap();
    assert!(rollout.status().is_success());
    let r = chat(&url, &body("not streamed", None, true)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let j = r.json.unwrap();
    assert_eq!(j["success"], true);
    // EXACT's first token is 100 ms; the slow model adds 250 ms.
    let first = j["metrics"]["firstTokenLatency"].as_u64().unwrap();
    assert!((350..1350).contains(&first), "{j}");
    server.stop().await.unwrap();
}
