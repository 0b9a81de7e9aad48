//! Every rule of docs/protocol.md 1 broken in turn: the documented status, the
//! `validation` body, and a message that names the problem.

use crate::support::{BOT, EXACT, chat_raw, get_json, start};
use serde_json::json;

#[tokio::test]
async fn each_broken_rule_gets_its_status_and_a_message_naming_it() {
    let server = start(EXACT).await;
    let url = server.url();
    let long = "x".repeat(4001);
    let long_id = "a".repeat(129);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            json!({"message": "hi"}).to_string().into(),
            400,
            "chatbotId is required",
        ),
        (
            "application/json",
            json!({"chatbotId": "60f7b3b3e6b6f40015e6b6f", "message": "hi"})
                .to_string()
                .into(),
            400,
            "exactly 24 lowercase hex",
        ),
        (
            "application/json",
            json!({"chatbotId": "60F7B3B3E6B6F40015E6B6F4", "message": "hi"})
                .to_string()
                .into(),
            400,
            "lowercase hex",
        ),
        (
            "application/json",
            json!({"chatbotId": 42, "message": "hi"}).to_string().into(),
            400,
            "chatbotId must be a string",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT}).to_string().into(),
            400,
            "message is required",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT, "message": "   \n "})
                .to_string()
                .into(),
            400,
            "message is empty",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT, "message": long})
                .to_string()
                .into(),
            400,
            "4001 characters",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT, "message": ["hi"]})
                .to_string()
                .into(),
            400,
            "message must be a string",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT, "message": "hi", "clientId": ""})
                .to_string()
                .into(),
            400,
            "clientId must be 1 to 128",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT, "message": "hi", "clientId": long_id})
                .to_string()
                .into(),
            400,
            "clientId must be 1 to 128",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT, "message": "hi", "clientId": "a b"})
                .to_string()
                .into(),
            400,
            "clientId may hold only",
        ),
        (
            "application/json",
            json!({"chatbotId": BOT, "message": "hi", "audio": "yes"})
                .to_string()
                .into(),
            400,
            "audio must be true or false",
        ),
        (
            "application/json",
            b"{\"chatbotId\": ".to_vec(),
            400,
            "not valid JSON",
        ),
        ("application/json", b"[1, 2]".to_vec(), 400, "JSON object"),
        (
            "application/json",
            b"{\"chatbotId\": \"60f7b3b3e6b6f40015e6b6f4\", \"message\": \"\xff\xfe\"}".to_vec(),
            400,
            "not UTF-8 (invalid byte at offset 54)",
        ),
        ("application/json", vec![b' '; 70 * 1024], 413, "64 KiB"),
        (
            "text/plain",
            json!({"chatbotId": BOT, "message": "hi"})
                .to_string()
                .into(),
            415,
            "application/json",
        ),
        (
            "",
            json!({"chatbotId": BOT, "message": "hi"})
                .to_string()
                .into(),
            415,
            "application/json",
        ),
    ];
    let n = cases.len();
    for (ct, body, status, needle) in cases {
        let r = chat_raw(&url, ct, body).await;
        assert_eq!(r.status, status, "expected {status} for {needle}");
        let j = r.json.expect("a JSON error body");
        assert_eq!(j["success"], false);
        assert_eq!(j["error"]["type"], "validation");
        let message = j["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should contain {needle:?}"
        );
    }
    // The boundaries themselves are fine, and unknown fields are ignored.
    let ok = json!({"chatbotId": BOT, "message": "y".repeat(4000), "clientId": "a".repeat(128), "mood": "happy"});
    let r = chat_raw(
        &url,
        "application/json; charset=utf-8",
        ok.to_string().into(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.names().last(), Some(&"done"));

    let (_, m) = get_json(&url, "/api/metrics/streaming").await;
    assert_eq!(m["metrics"]["errors"]["validation"], n);
    assert_eq!(m["metrics"]["requests"]["total"], n + 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_oversized_chunked_body_is_413_too() {
    let server = start(EXACT).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let resp = crate::support::http()
        .post(format!("{}/api/chat/stream", server.url()))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let j: serde_json::Value = resp.json().await.unwrap();
    assert!(j["error"]["message"].as_str().unwrap().contains("64 KiB"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_an_api_key_the_chat_endpoints_need_it_and_monitoring_does_not() {
    let mut args = EXACT.to_vec();
    args.extend(["--api-key", "k-123"]);
    let server = start(&args).await;
    let url = server.url();
    let chat = json!({"chatbotId": BOT, "message": "Hi?", "audio": false});
    let openai =
        json!({"model": "m", "messages": [{"role": "user", "content": "Hi?"}], "stream": false});
    for (path, body) in [
        ("/api/chat/stream", &chat),
        ("/v1/chat/completions", &openai),
    ] {
        for (auth, want) in [
            (None, 401),
            (Some("Bearer k-12"), 401),
            (Some("Bearer k-123"), 200),
        ] {
            let mut req = crate::support::http()
                .post(format!("{url}{path}"))
                .json(body);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), want, "{path} with {auth:?}");
            if want == 401 {
                assert_eq!(resp.headers()["www-authenticate"], "Bearer");
                let text = resp.text().await.unwrap();
                assert!(
                    text.contains("API key") && !text.contains("k-123"),
                    "{text}"
                );
            } else {
                let _ = resp.bytes().await.unwrap();
            }
        }
    }
    let (status, _) = get_json(&url, slo::monitoring::paths::HEALTH).await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}
