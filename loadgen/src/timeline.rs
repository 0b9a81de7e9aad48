//! A scenario's `[[timeline]]`: each event applied to the target at its
//! offset from the run's first request (the CSV's time zero), and
//! recorded as it happened. Fault rates and the streaming rollout go
//! through the target's admin API (the reference server's, docs/protocol.md's
//! paths); a command runs only when the user allowed commands. Of a
//! sharded run, shard 0 alone applies the timeline (one target, one
//! action).

use crate::embedded::Embedded;
use crate::shared::Clock;
use slo::monitoring::paths;
use slo::report::EventRecord;
use slo::scenario::{Action, TimelineEvent};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Applies `events` in order once the run has started; returns each as it
/// happened. Events the run ended before are left out by the caller's
/// abort, and counted as not reached ([`not_reached`]).
pub async fn apply(
    events: Vec<TimelineEvent>,
    clock: Arc<OnceLock<Clock>>,
    (client, base_url): (reqwest::Client, String),
    embedded: Option<Arc<Embedded>>,
    done: Arc<std::sync::Mutex<Vec<EventRecord>>>,
) {
    let started = Clock::started(&clock).await.started;
    let mut order: Vec<TimelineEvent> = events;
    order.sort_by_key(|e| e.at);
    for e in order {
        tokio::time::sleep_until(started + e.at).await;
        let at_s = started.elapsed().as_secs_f64();
        let (ok, detail) = match run_one(&e, &client, &base_url, embedded.as_ref()).await {
            Ok(what) => {
                log::warn!("timeline: {} at {at_s:.3} s: {what}", e.name());
                (true, what)
            }
            Err(why) => {
                log::error!("timeline: {} at {at_s:.3} s failed: {why}", e.name());
                (false, why)
            }
        };
        done.lock()
            .expect("events lock")
            .push(EventRecord::of(&e, at_s, ok, detail));
    }
}

/// The events of `all` that `done` lacks: the run ended before them.
pub fn not_reached(all: &[TimelineEvent], done: &[EventRecord]) -> Vec<EventRecord> {
    all.iter()
        .filter(|e| {
            !done
                .iter()
                .any(|d| d.name == e.name() && d.action == e.describe())
        })
        .map(|e| {
            EventRecord::of(
                e,
                e.at.as_secs_f64(),
                false,
                "not reached: the run ended before it".into(),
            )
        })
        .collect()
}

async fn run_one(
    e: &TimelineEvent,
    client: &reqwest::Client,
    base: &str,
    embedded: Option<&Arc<Embedded>>,
) -> Result<String, String> {
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
    };
    match &e.action {
        Action::Faults(f) => {
            // Whole numbers as integers: the delays (`*_ms`) are integers
            // on the wire, and TOML's `1200` reaches us as 1200.0.
            let body: serde_json::Map<String, serde_json::Value> = f
                .iter()
                .map(|(k, &v)| {
                    let v = if v.fract() == 0.0 && v.abs() < 9e15 {
                        serde_json::json!(v as i64)
                    } else {
                        serde_json::json!(v)
                    };
                    (k.clone(), v)
                })
                .collect();
            let r = post(paths::ADMIN_FAULTS, serde_json::Value::Object(body)).await;
            answered(r, base, paths::ADMIN_FAULTS).await
        }
        &Action::Rollout(p) => {
            let body = slo::monitoring::RolloutRequest {
                feature: slo::monitoring::FEATURES[0].to_owned(),
                percentage: p,
            };
            let r = post(
                paths::ROLLOUT,
                serde_json::to_value(body).expect("a rollout serializes"),
            )
            .await;
            answered(r, base, paths::ROLLOUT).await
        }
        Action::Reload => match embedded {
            Some(server) => server.reload().await,
            None => Err("no embedded server to reload".into()),
        },
        &Action::Redis(action) => {
            let Some(server) = embedded.cloned() else {
                return Err("no embedded server: redis events need one".into());
            };
            // Starting waits for the port: off the async workers.
            match tokio::task::spawn_blocking(move || server.redis(action)).await {
                Ok(done) => done,
                Err(e) => Err(format!("the redis action failed: {e}")),
            }
        }
        Action::Command(cmd) => {
            let out = tokio::process::Command::new(&cmd[0])
                .args(&cmd[1..])
                .kill_on_drop(true)
                .output()
                .await;
            match out {
                Ok(o) => {
                    let text = |b: &[u8]| {
                        String::from_utf8_lossy(b)
                            .trim()
                            .chars()
                            .take(500)
                            .collect::<String>()
                    };
                    let what = format!(
                        "{}; stdout: {:?}; stderr: {:?}",
                        o.status,
                        text(&o.stdout),
                        text(&o.stderr)
                    );
                    if o.status.success() {
                        Ok(what)
                    } else {
                        Err(what)
                    }
                }
                Err(err) => Err(format!("cannot run {:?}: {err}", cmd[0])),
            }
        }
    }
}

/// The answer of an admin call: `Ok` when it was taken (2xx).
async fn answered(
    r: reqwest::Result<reqwest::Response>,
    base: &str,
    path: &str,
) -> Result<String, String> {
    match r {
        Ok(r) => {
            let status = r.status();
            let body: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            let what = format!("{base}{path}: HTTP {}: {body}", status.as_u16());
            if status.is_success() {
                Ok(what)
            } else {
                Err(what)
            }
        }
        Err(err) => Err(format!("{base}{path}: {err}")),
    }
}
