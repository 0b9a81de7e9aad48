//! Shared helpers: start a server, send chat requests, read their SSE.

use serde_json::Value;
use server::pipeline::{Engine, Job, Step};
use server::{Config, Running};
use slo::sse::SseParser;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

pub const BOT: &str = "60f7b3b3e6b6f40015e6b6f4";

/// A config from `refserver` flags, listening on an ephemeral loopback port.
pub fn config(args: &[&str]) -> Config {
    let mut all = vec!["--listen", "127.0.0.1:0", "--seed", "1"];
    all.extend_from_slice(args);
    Config::from_args(all).expect("test flags are valid")
}

pub async fn start(args: &[&str]) -> Running {
    server::spawn(&config(args)).await.expect("server starts")
}

/// Flags for exact, short delays: first token 100 ms, a token every 2 ms,
/// speech 10 ms a sentence.
pub const EXACT: &[&str] = &[
    "--profile",
    "fast",
    "--first-token-ms",
    "100",
    "--token-interval-ms",
    "2",
    "--tts-hit-ms",
    "10",
    "--tts-miss-ms",
    "10",
];

pub fn body(message: &str, client_id: Option<&str>, audio: bool) -> Value {
    let mut b = serde_json::json!({"chatbotId": BOT, "message": message, "audio": audio});
    if let Some(c) = client_id {
        b["clientId"] = c.into();
    }
    b
}

/// One SSE event as the client saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub event: String,
    pub data: Value,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub sent: Instant,
    pub events: Vec<Seen>,
    /// The body of an answer that is not a stream.
    pub json: Option<Value>,
    /// Reading the body failed (the connection was dropped).
    pub broken: bool,
}

impl Reply {
    pub fn names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.event.as_str()).collect()
    }

    pub fn first(&self, name: &str) -> Option<&Seen> {
        self.events.iter().find(|e| e.event == name)
    }

    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.event == "token")
            .map(|e| e.data["text"].as_str().unwrap())
            .collect()
    }
}

pub async fn chat(url: &str, body: &Value) -> Reply {
    chat_raw(url, "application/json", serde_json::to_vec(body).unwrap()).await
}

pub async fn chat_raw(url: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let client = crate::support::http();
    let sent = Instant::now();
    let mut resp = client
        .post(format!("{url}/api/chat/stream"))
        .header("content-type", content_type)
        .header("accept", "text/event-stream")
        .body(body)
        .send()
        .await
        .expect("the request is sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let is_sse = headers
        .get("content-type")
        .is_some_and(|c| c.to_str().unwrap().starts_with("text/event-stream"));
    let mut reply = Reply {
        status,
        headers,
        sent,
        events: Vec::new(),
        json: None,
        broken: false,
    };
    if !is_sse {
        match resp.bytes().await {
            Ok(b) => reply.json = Some(serde_json::from_slice(&b).expect("a JSON body")),
            Err(_) => reply.broken = true,
        }
        return reply;
    }
    let mut parser = SseParser::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let at = Instant::now();
                parser.feed(&chunk, &mut |e| {
                    reply.events.push(Seen {
                        at,
                        event: e.event.to_owned(),
                        data: serde_json::from_str(e.data).expect("event data is JSON"),
                    })
                });
            }
            Ok(None) => break,
            Err(_) => {
                reply.broken = true;
                break;
            }
        }
    }
    reply
}

pub async fn get_json(url: &str, path: &str) -> (u16, Value) {
    let r = crate::support::get(format!("{url}{path}")).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// One request through the engine, each step with the time it was sent.
pub async fn run_job(
    engine: &Arc<Engine>,
    message: &str,
    audio: bool,
) -> Vec<(tokio::time::Instant, Step)> {
    let job = Job {
        client_id: "chat-1-test".into(),
        chatbot_id: BOT.into(),
        message: message.into(),
        audio,
        streaming: true,
        received: tokio::time::Instant::now(),
        max_tokens: None,
        min_tokens: None,
        prompt_ids: engine.prompt_ids(message),
    };
    let guard = engine.metrics.begin(true, &job.client_id, &job.chatbot_id);
    let (tx, mut rx) = mpsc::channel(1024);
    let e = Arc::clone(engine);
    let task = tokio::spawn(async move { e.run(job, guard, tx).await });
    let mut steps = Vec::new();
    while let Some(s) = rx.recv().await {
        steps.push((tokio::time::Instant::now(), s));
    }
    task.await.unwrap();
    steps
}

pub fn engine(args: &[&str]) -> Arc<Engine> {
    Arc::clone(&config(args).state().engine)
}

/// Polls until `f` is true or a generous 10 s pass.
pub async fn eventually(mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the condition did not hold within 10 s");
}

/// An HTTP client (the workspace's reqwest speaks TLS with aws-lc-rs,
/// whose provider is installed first).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

/// `GET url`.
pub async fn get(url: String) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// The sum of the Prometheus series of `url` whose line starts with `name`
/// (a name, or a name with its labels); one at least must exist.
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        !values.is_empty(),
        "{name} is exposed:
{text}"
    );
    values.iter().sum()
}
