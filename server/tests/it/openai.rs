//! The OpenAI chat completions endpoint: streamed chunks ending with
//! `[DONE]`, usage, the one-JSON answer, `max_tokens`, errors in the OpenAI
//! shape, `/v1/models`, and the same metrics as the chat stream.

use crate::support::{EXACT, get_json, start};
use serde_json::{Value, json};
use slo::openai::{CHAT_COMPLETIONS_PATH, ChatCompletion, ChatCompletionChunk, ErrorResponse};
use slo::sse::SseParser;

/// The `data:` of every event of a streamed answer, and whether the
/// connection broke.
async fn stream(url: &str, body: &Value) -> (u16, Vec<String>, bool) {
    let mut resp = crate::support::http()
        .post(format!("{url}{CHAT_COMPLETIONS_PATH}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let mut parser = SseParser::new();
    let mut data = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => parser.feed(&chunk, &mut |e| data.push(e.data.to_owned())),
            Ok(None) => return (status, data, false),
            Err(_) => return (status, data, true),
        }
    }
}

async fn once(url: &str, body: &Value) -> (u16, Value) {
    let r = crate::support::http()
        .post(format!("{url}{CHAT_COMPLETIONS_PATH}"))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn ask(question: &str, stream: bool) -> Value {
    json!({
        "model": "refserver",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}],
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

#[tokio::test]
async fn a_streamed_answer_is_chunks_then_usage_then_done() {
    let server = start(EXACT).await;
    let url = server.url();
    let (status, data, broken) = stream(&url, &ask("What are your opening hours?", true)).await;
    assert_eq!(status, 200);
    assert!(!broken);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<ChatCompletionChunk> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("a chunk"))
        .collect();
    let first = &chunks[0].choices[0].delta;
    assert_eq!(first.role.as_deref(), Some("assistant"));
    assert_eq!(
        first.content.as_deref(),
        Some(""),
        "a role-only first chunk"
    );
    let tokens: Vec<&str> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .filter(|t| !t.is_empty())
        .collect();
    assert!(tokens.len() > 5, "{tokens:?}");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = chunks.last().unwrap();
    assert!(usage.choices.is_empty());
    let usage = usage.usage.expect("include_usage asks for it");
    assert_eq!(usage.completion_tokens, tokens.len() as u64);
    assert_eq!(usage.prompt_tokens, 7);
    assert!(
        chunks
            .iter()
            .all(|c| c.id == chunks[0].id && c.model == "refserver")
    );

    // Counted like any chat stream.
    let (_, detailed) = get_json(&url, slo::monitoring::paths::DETAILED).await;
    let m = &detailed["metrics"];
    assert_eq!(m["requests"]["successful"], 1);
    assert_eq!(m["streaming"]["completedCount"], 1);
    let ft = m["latency"]["firstToken"]["p50"].as_u64().unwrap();
    assert!((100..200).contains(&ft), "{ft} ms with 100 ms injected");
    server.stop().await.unwrap();
}

/// vLLM's `min_tokens` and `ignore_eos` make an answer of the asked
/// length: the built-in answer continued with more prose (a word a token
/// without `--tokenizer`); without them it ends where it ends.
#[tokio::test]
async fn min_tokens_and_ignore_eos_give_the_asked_length() {
    let server = start(EXACT).await;
    let url = server.url();
    let length = async |extra: &[(&str, serde_json::Value)]| {
        let mut body = ask("Do you deliver?", false);
        body["max_tokens"] = 400.into();
        for (k, v) in extra {
            body[*k] = v.clone();
        }
        let (status, v) = once(&url, &body).await;
        assert_eq!(status, 200, "{v}");
        let answer: ChatCompletion = serde_json::from_value(v).unwrap();
        let words = answer.choices[0].message.content.split_whitespace().count() as u64;
        assert_eq!(answer.usage.completion_tokens, words);
        (words, answer.choices[0].finish_reason.clone())
    };
    let (natural, why) = length(&[]).await;
    assert!(natural < 400 && why == "stop", "{natural} {why}");
    assert_eq!(
        length(&[("min_tokens", 400.into())]).await,
        (400, "length".into())
    );
    assert_eq!(
        length(&[("ignore_eos", true.into())]).await,
        (400, "length".into())
    );
    let (between, _) = length(&[("min_tokens", (natural + 20).into())]).await;
    assert!((natural + 20..=400).contains(&between), "{between}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn one_json_answer_and_max_tokens() {
    let server = start(EXACT).await;
    let url = server.url();
    let (status, v) = once(&url, &ask("Do you deliver?", false)).await;
    assert_eq!(status, 200, "{v}");
    testkit::assert_matches_schema(
        "reports/schema/openai/chat-completion.schema.json",
        &v,
        "the answer",
    );
    let answer: ChatCompletion = serde_json::from_value(v).unwrap();
    let text = &answer.choices[0].message.content;
    assert_eq!(answer.choices[0].finish_reason, "stop");
    assert_eq!(
        answer.usage.completion_tokens,
        text.split_whitespace().count() as u64
    );

    let mut short = ask("Do you deliver?", false);
    short["max_tokens"] = 3.into();
    let (_, v) = once(&url, &short).await;
    let answer: ChatCompletion = serde_json::from_value(v).unwrap();
    assert_eq!(answer.choices[0].finish_reason, "length");
    assert_eq!(answer.usage.completion_tokens, 3);
    assert_eq!(
        answer.choices[0].message.content.split_whitespace().count(),
        3
    );
    short["stream"] = true.into();
    let (_, data, _) = stream(&url, &short).await;
    let contents = data
        .iter()
        .filter(|d| d.contains("\"content\":\"") && !d.contains("\"content\":\"\""))
        .count();
    assert_eq!(contents, 3);

    let (status, models) = get_json(&url, slo::openai::MODELS_PATH).await;
    assert_eq!(status, 200);
    testkit::assert_matches_schema(
        "reports/schema/openai/models.schema.json",
        &models,
        "models",
    );
    assert_eq!(models["data"][0]["id"], "refserver");
    let (_, detailed) = get_json(&url, slo::monitoring::paths::DETAILED).await;
    assert_eq!(detailed["metrics"]["requests"]["successful"], 3);
    assert_eq!(
        detailed["metrics"]["streaming"]["totalStreams"], 1,
        "only the streamed request is a stream"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn errors_have_the_openai_shape() {
    let server = start(&["--profile", "fast", "--fail-openai", "1"]).await;
    let url = server.url();
    let (status, v) = once(&url, &json!({"model": "refserver", "messages": []})).await;
    assert_eq!(status, 400);
    testkit::assert_matches_schema("reports/schema/openai/error.schema.json", &v, "an error");
    let e: ErrorResponse = serde_json::from_value(v).unwrap();
    assert_eq!(e.error.kind, "invalid_request_error");
    assert_eq!(e.error.param.as_deref(), Some("messages"));

    let (status, v) = once(&url, &ask("Hello?", false)).await;
    assert_eq!(status, 502);
    let e: ErrorResponse = serde_json::from_value(v).unwrap();
    assert_eq!(e.error.code.as_deref(), Some("model_error"));

    let (status, data, _) = stream(&url, &ask("Hello?", true)).await;
    assert_eq!(status, 200);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let error: ErrorResponse = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(error.error.code.as_deref(), Some("model_error"));

    let (_, detailed) = get_json(&url, slo::monitoring::paths::DETAILED).await;
    let errors = &detailed["metrics"]["errors"];
    assert_eq!(errors["validation"], 1);
    assert_eq!(errors["openai"], 2);
    server.stop().await.unwrap();
}
