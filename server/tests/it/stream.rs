//! The chat stream: event order and content, `done` against what the client
//! saw, the JSON answer outside the rollout, and an independent SSE client.

use crate::support::{BOT, EXACT, body, chat, start};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn events_in_order_and_done_consistent_with_the_client() {
    let server = start(EXACT).await;
    let url = server.url();
    let r = chat(
        &url,
        &body("What are your opening hours?", Some("chat-1-abc"), true),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let names = r.names();
    assert_eq!(names.first(), Some(&"start"));
    assert_eq!(names.last(), Some(&"done"));
    assert_eq!(names.iter().filter(|n| **n == "start").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "done").count(), 1);
    assert_eq!(
        r.events[0].data,
        json!({"clientId": "chat-1-abc", "chatbotId": BOT, "streaming": true})
    );

    let done = &r.first("done").unwrap().data;
    let text = r.text();
    let tokens = names.iter().filter(|n| **n == "token").count() as u64;
    assert_eq!(done["wordCount"].as_u64(), Some(tokens));
    assert_eq!(text.split(' ').count() as u64, tokens);
    assert!(text.contains("opening hours"), "{text}");

    let audio: Vec<_> = r.events.iter().filter(|e| e.event == "audio").collect();
    let spoken: Vec<&str> = audio
        .iter()
        .map(|a| a.data["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        spoken.join(" "),
        text,
        "audio covers every sentence, in order"
    );
    for (i, a) in audio.iter().enumerate() {
        assert_eq!(a.data["seq"], i);
        assert_eq!(a.data["format"], "pcm_s16le_16000");
        assert_eq!(a.data["cached"], false);
        let ms = a.data["durationMs"].as_u64().unwrap();
        let b64 = a.data["data"].as_str().unwrap().len() as u64;
        assert_eq!(
            b64,
            (ms * 32).div_ceil(3) * 4,
            "audio data sized to {ms} ms"
        );
    }
    assert_eq!(done["ttsCacheMisses"].as_u64(), Some(audio.len() as u64));
    assert_eq!(done["kbCache"], "miss");

    // Client and server measure the same moments; the server starts later.
    let ms = |d: Duration| d.as_millis() as u64;
    let client_first_token = ms(r.first("token").unwrap().at - r.sent);
    let client_first_audio = ms(r.first("audio").unwrap().at - r.sent);
    let client_complete = ms(r.first("done").unwrap().at - r.sent);
    let server_first_token = done["firstTokenLatency"].as_u64().unwrap();
    let server_first_audio = done["firstAudioLatency"].as_u64().unwrap();
    let server_complete = done["duration"].as_u64().unwrap();
    assert!(
        server_first_token >= 100,
        "100 ms injected, server saw {server_first_token}"
    );
    for (what, client, server) in [
        ("first token", client_first_token, server_first_token),
        ("first audio", client_first_audio, server_first_audio),
        ("complete", client_complete, server_complete),
    ] {
        assert!(
            client + 1 >= server,
            "{what}: client {client} ms < server {server} ms"
        );
        assert!(
            client <= server + 100,
            "{what}: client {client} ms vs server {server} ms on loopback"
        );
    }

    // The same question again: every cache hits.
    let again = chat(&url, &body("what are your OPENING hours?", None, true)).await;
    let done2 = &again.first("done").unwrap().data;
    assert_eq!(done2["kbCache"], "hit");
    assert_eq!(done2["ttsCacheHits"].as_u64(), Some(audio.len() as u64));
    assert!(
        again
            .events
            .iter()
            .filter(|e| e.event == "audio")
            .all(|a| a.data["cached"] == true)
    );
    assert_eq!(again.text(), text);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn without_audio_there_are_no_audio_events() {
    let server = start(EXACT).await;
    let r = chat(&server.url(), &body("Do you ship abroad?", None, false)).await;
    assert!(!r.names().contains(&"audio"));
    let done = &r.first("done").unwrap().data;
    assert!(done["firstAudioLatency"].is_null());
    assert_eq!(done["ttsCacheHits"], 0);
    assert_eq!(done["ttsCacheMisses"], 0);
    // A generated clientId has the protocol's form.
    let id = r.events[0].data["clientId"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = id.split('-').collect();
    assert!(
        parts.len() == 3 && parts[0] == "chat" && parts[2].len() == 6,
        "{id}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn outside_the_rollout_the_answer_is_one_json_body() {
    let server = start(&[EXACT, &["--streaming-percent", "0"]].concat()).await;
    let url = server.url();
    let r = chat(
        &url,
        &body("How do refunds work?", Some("chat-2-json"), true),
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json.expect("a JSON answer");
    assert_eq!(j["success"], true);
    assert_eq!(j["streaming"], false);
    assert_eq!(j["clientId"], "chat-2-json");
    let text = j["text"].as_str().unwrap();
    let audio = j["audio"].as_array().unwrap();
    let spoken: Vec<&str> = audio.iter().map(|a| a["text"].as_str().unwrap()).collect();
    assert_eq!(spoken.join(" "), text);
    assert_eq!(
        j["metrics"]["wordCount"].as_u64(),
        Some(text.split(' ').count() as u64)
    );
    for key in [
        "firstTokenLatency",
        "firstAudioLatency",
        "duration",
        "kbCache",
        "ttsCacheHits",
        "ttsCacheMisses",
    ] {
        assert!(j["metrics"].get(key).is_some(), "metrics.{key}");
    }
    server.stop().await.unwrap();
}

/// A client none of our code wrote reads the stream: sseclient-py (PyPI,
/// installed by ci/install.sh) over Python's own urllib, as any
/// EventSource consumer would, one JSON line per event.
#[tokio::test]
async fn an_independent_sse_client_reads_the_stream() {
    const READER: &str = r#"
import json, sys, urllib.request
import sseclient
request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
    headers={"content-type": "application/json", "accept": "text/event-stream"})
with urllib.request.urlopen(request) as response:
    for event in sseclient.SSEClient(response).events():
        print(json.dumps({"event": event.event, "data": event.data}), flush=True)
"#;
    let server = start(EXACT).await;
    let url = server.url();
    let question = body("Where is your downtown store?", Some("chat-3-ld"), true).to_string();
    let stream_url = format!("{url}/api/chat/stream");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", READER, &stream_url, &question])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "sseclient-py (ci/install.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names = Vec::new();
    let mut text = String::new();
    let mut done = None;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = e["event"].as_str().unwrap().to_owned();
        let data: serde_json::Value = serde_json::from_str(e["data"].as_str().unwrap()).unwrap();
        match name.as_str() {
            "token" => text.push_str(data["text"].as_str().unwrap()),
            "done" => done = Some(data),
            _ => {}
        }
        names.push(name);
    }
    assert_eq!(names.first().map(String::as_str), Some("start"));
    assert_eq!(names.last().map(String::as_str), Some("done"));
    assert!(names.iter().any(|n| n == "audio"));
    let done = done.expect("a done event");
    assert_eq!(
        done["wordCount"].as_u64(),
        Some(text.split(' ').count() as u64)
    );
    // Our own client reads the same text for the same question.
    let ours = chat(&url, &body("Where is your downtown store?", None, true)).await;
    assert_eq!(ours.text(), text);
    server.stop().await.unwrap();
}
