//! Metrics move as the traffic says; disconnects, the stream limit and the
//! model's capacity.

use crate::support::{EXACT, body, chat, eventually, get_json, start};
use std::time::{Duration, Instant};

#[tokio::test]
async fn counters_follow_the_traffic() {
    let server = start(EXACT).await;
    let url = server.url();
    let (mut tts_lookups, mut kb_hits) = (0, 0);
    for i in 0..6 {
        let r = chat(&url, &body(&format!("question {}", i % 3), None, true)).await;
        let done = &r.first("done").unwrap().data;
        tts_lookups +=
            done["ttsCacheHits"].as_u64().unwrap() + done["ttsCacheMisses"].as_u64().unwrap();
        kb_hits += u64::from(done["kbCache"] == "hit");
    }
    let (_, j) = get_json(&url, "/api/metrics/streaming").await;
    let m = &j["metrics"];
    assert_eq!(m["requests"]["total"], 6);
    assert_eq!(m["requests"]["successful"], 6);
    assert_eq!(m["requests"]["failed"], 0);
    assert_eq!(m["streaming"]["completedCount"], 6);
    assert_eq!(m["requests"]["active"], 0);
    let kb = &m["cache"]["kb"];
    assert_eq!(
        kb["hits"].as_u64().unwrap() + kb["misses"].as_u64().unwrap(),
        6,
        "one KB lookup a request"
    );
    assert_eq!(kb["hits"].as_u64().unwrap(), kb_hits);
    assert_eq!(kb_hits, 3);
    let tts = &m["cache"]["tts"];
    assert_eq!(
        tts["hits"].as_u64().unwrap() + tts["misses"].as_u64().unwrap(),
        tts_lookups
    );
    assert_eq!(kb["hitRate"], "50.0%");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_frees_its_stream() {
    let server = start(&["--profile", "fast", "--token-interval-ms", "50"]).await;
    let url = server.url();
    let mut resp = crate::support::http()
        .post(format!("{url}/api/chat/stream"))
        .json(&body("a long answer please", None, true))
        .send()
        .await
        .unwrap();
    let _first = resp.chunk().await.unwrap();
    let (_, j) = get_json(&url, "/api/metrics/streaming/summary").await;
    assert_eq!(j["summary"]["activeStreams"], 1);
    drop(resp);
    eventually(async || {
        let (_, j) = get_json(&url, "/api/metrics/streaming").await;
        j["metrics"]["requests"]["active"] == 0 && j["metrics"]["errors"]["network"] == 1
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn beyond_max_streams_the_answer_is_503_with_retry_after() {
    let server = start(&[
        "--profile",
        "fast",
        "--token-interval-ms",
        "20",
        "--max-streams",
        "2",
    ])
    .await;
    let url = server.url();
    let client = crate::support::http();
    let open = async || {
        client
            .post(format!("{url}/api/chat/stream"))
            .json(&body("hold this stream", None, false))
            .send()
            .await
            .unwrap()
    };
    let (a, b) = (open().await, open().await);
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let third = open().await;
    assert_eq!(third.status().as_u16(), 503);
    assert_eq!(third.headers()["retry-after"], "1");
    let j: serde_json::Value = third.json().await.unwrap();
    assert_eq!(j["error"]["type"], "overloaded");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 2")
    );
    drop((a, b));
    eventually(async || {
        get_json(&url, "/api/metrics/streaming/summary").await.1["summary"]["activeStreams"] == 0
    })
    .await;
    assert_eq!(open().await.status().as_u16(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn one_generation_slot_makes_the_second_request_wait() {
    // Each answer takes about 100 ms to the first token plus ~100 tokens
    // at 2 ms; with one slot the second request queues behind the first.
    let server = start(&[EXACT, &["--model-slots", "1"]].concat()).await;
    let url = server.url();
    let (b1, b2) = (body("first", None, false), body("second", None, false));
    let (r1, r2) = tokio::join!(chat(&url, &b1), chat(&url, &b2));
    let ft = |r: &crate::support::Reply| {
        r.first("done").unwrap().data["firstTokenLatency"]
            .as_u64()
            .unwrap()
    };
    let complete =
        |r: &crate::support::Reply| r.first("done").unwrap().data["duration"].as_u64().unwrap();
    let (fast, slow) = if ft(&r1) < ft(&r2) {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    assert!(
        ft(slow) >= complete(fast),
        "the second waited for the whole first generation: {} < {}",
        ft(slow),
        complete(fast)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_token_budget_is_shared_by_the_streams() {
    // 200 tokens/s shared by two streams: at most 100 tokens/s each.
    let server = start(&["--profile", "fast", "--model-tokens-per-sec", "200"]).await;
    let url = server.url();
    let t0 = Instant::now();
    let (b1, b2) = (
        body("budget one", None, false),
        body("budget two", None, false),
    );
    let (r1, r2) = tokio::join!(chat(&url, &b1), chat(&url, &b2));
    let words =
        |r: &crate::support::Reply| r.first("done").unwrap().data["wordCount"].as_u64().unwrap();
    let total = words(&r1) + words(&r2);
    // 200 tokens/s in all is the ceiling; a 10 % allowance for timer slack.
    let floor = Duration::from_secs_f64(total as f64 / 200.0 * 0.9 - 0.02);
    assert!(
        t0.elapsed() >= floor,
        "{total} tokens in {:?}, budget allows no less than {floor:?}",
        t0.elapsed()
    );
    server.stop().await.unwrap();
}
