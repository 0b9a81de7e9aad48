//! `--cache redis://...` against Debian's redis-server (installed by
//! ci/install.sh) on a free loopback port: the caches live in Redis under
//! the server's prefix with a TTL; Redis stopped mid-traffic makes every
//! lookup a miss while every request still succeeds, the health turns
//! degraded with the reason and Prometheus counts the unavailable
//! lookups; Redis started again, the server reconnects by itself.

use crate::support::{BOT, EXACT, get_json, http, metric, start};
use serde_json::json;
use std::process::Command;
use std::time::Duration;
use testkit::{free_port, redis_server};

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One streamed answer (with audio, so the TTS cache is used too): its
/// status and its `done` event's kbCache.
async fn ask(url: &str, question: &str) -> (u16, String) {
    let r = http()
        .post(format!("{url}/api/chat/stream"))
        .json(&json!({"chatbotId": BOT, "message": question, "audio": true}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let done = body
        .split("\n\n")
        .find(|e| e.starts_with("event: done"))
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["kbCache"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .unwrap_or_else(|| format!("no done: {body}"));
    (status, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_caches_survive_an_outage_and_reconnect() {
    let dir = testkit::Scratch::new("refserver-redis");
    let port = free_port();
    let redis = redis_server(port, &dir);
    let cache = format!("redis://127.0.0.1:{port}/0");
    let mut args = EXACT.to_vec();
    args.extend([
        "--cache",
        &cache,
        "--cache-ttl",
        "90s",
        "--cache-prefix",
        "rstest",
    ]);
    let server = start(&args).await;
    let url = server.url();

    // Misses then hits, kept in Redis under the prefix with the TTL.
    assert_eq!(ask(&url, "Opening hours?").await, (200, "miss".to_owned()));
    assert_eq!(ask(&url, "Opening hours?").await, (200, "hit".to_owned()));
    // Counted and read inside Redis (a KB key holds a line break).
    let count = |pattern: &str| {
        redis_cli(
            port,
            &["EVAL", "return #redis.call('KEYS', ARGV[1])", "0", pattern],
        )
    };
    assert_eq!(count("rstest:kb:*"), "1");
    assert_ne!(count("rstest:tts:*"), "0");
    let ttl: u64 = redis_cli(
        port,
        &[
            "EVAL",
            "return redis.call('TTL', redis.call('KEYS', 'rstest:kb:*')[1])",
            "0",
        ],
    )
    .parse()
    .unwrap();
    assert!((80..=90).contains(&ttl), "ttl {ttl}");
    let (status, health) = get_json(&url, slo::monitoring::paths::HEALTH).await;
    assert_eq!(status, 200);
    assert_eq!(health["checks"]["redis"]["value"], "connected");
    assert_eq!(health["status"], "healthy");

    // Redis gone: served as misses, never an error; degraded with the reason.
    drop(redis);
    for i in 0..5 {
        let (status, kb) = ask(&url, "Opening hours?").await;
        assert_eq!(
            (status, kb.as_str()),
            (200, "miss"),
            "request {i} with Redis down"
        );
    }
    let (status, health) = get_json(&url, slo::monitoring::paths::HEALTH).await;
    assert_eq!(status, 200, "degraded, not unhealthy: {health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["redis"]["value"], "unavailable");
    let issue = health["issues"][0].as_str().unwrap();
    assert!(
        issue.starts_with("cache unavailable: redis ") && issue.contains(&port.to_string()),
        "{issue}"
    );
    assert!(metric(&url, "chatbot_cache_unavailable_total{cache=\"kb\"}").await >= 5.0);
    assert_eq!(metric(&url, "chatbot_cache_up ").await, 0.0);
    let (_, m) = get_json(&url, slo::monitoring::paths::DETAILED).await;
    assert_eq!(m["metrics"]["requests"]["failed"], 0, "{m}");

    // Back: the server reconnects by itself (a fresh, empty Redis).
    let _redis = redis_server(port, &dir);
    let mut back = false;
    for _ in 0..40 {
        let (_, h) = get_json(&url, slo::monitoring::paths::HEALTH).await;
        if h["checks"]["redis"]["value"] == "connected" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "the server did not reconnect within 10 s");
    assert_eq!(ask(&url, "Sunday hours?").await, (200, "miss".to_owned()));
    assert_eq!(ask(&url, "Sunday hours?").await, (200, "hit".to_owned()));
    assert_eq!(metric(&url, "chatbot_cache_up ").await, 1.0);
    server.stop().await.unwrap();
}
