//! `loadgen watch URL`: the guide's cron health check and alert scripts as
//! one command. Polls the health, summary and detailed endpoints, evaluates
//! the guide's alert rules, prints each transition, and posts it to a
//! Slack-compatible webhook (`{"text": ...}`). With `--once` it checks
//! once and exits 1 when anything fires, for cron or a systemd timer. A
//! network error is an alert (`unreachable`), never a crash.

use crate::scrape::Scraper;
use slo::alerts::{Alert, Poll, evaluate};
use slo::monitoring::{Detailed, HEALTH_WINDOW, Health, Summary, paths};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct WatchArgs {
    pub url: String,
    pub interval: Duration,
    pub once: bool,
    pub webhook: Option<String>,
    /// Stop after this many polls (0: until interrupted).
    pub count: u64,
}

/// Polls and reports; returns whether anything was firing at the end.
pub async fn watch(args: &WatchArgs, mut say: impl FnMut(&str)) -> bool {
    let scraper = Scraper::new(&args.url);
    crate::client::tls_provider();
    let hook = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain client builds");
    let mut firing: BTreeMap<&'static str, Alert> = BTreeMap::new();
    let mut history: VecDeque<(Instant, f64, f64)> = VecDeque::new();
    let mut polls = 0u64;
    loop {
        let poll = poll(&scraper, &mut history).await;
        let now: BTreeMap<&'static str, Alert> =
            evaluate(&poll).into_iter().map(|a| (a.key, a)).collect();
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        for (key, alert) in &now {
            if firing.get(key).map(|a| a.severity) != Some(alert.severity) {
                let line = format!(
                    "{stamp} FIRING {} [{}] {}: {}",
                    args.url, alert.severity, key, alert.message
                );
                say(&line);
                notify(&hook, args.webhook.as_deref(), &line, &mut say).await;
            }
        }
        for (key, alert) in &firing {
            if !now.contains_key(key) {
                let line = format!(
                    "{stamp} RESOLVED {} {}: was {}",
                    args.url, key, alert.message
                );
                say(&line);
                notify(&hook, args.webhook.as_deref(), &line, &mut say).await;
            }
        }
        if args.once {
            if now.is_empty() {
                let status = poll
                    .health
                    .as_ref()
                    .map_or("unknown", |h| h.status.as_str());
                say(&format!("{stamp} OK {} status {status}", args.url));
            }
            return !now.is_empty();
        }
        firing = now;
        polls += 1;
        if args.count > 0 && polls >= args.count {
            return !firing.is_empty();
        }
        tokio::time::sleep(args.interval).await;
    }
}

async fn poll(s: &Scraper, history: &mut VecDeque<(Instant, f64, f64)>) -> Poll {
    let health = s.read::<Health>(paths::HEALTH).await;
    let summary = s.read::<Summary>(paths::SUMMARY).await;
    let detailed = s.read::<Detailed>(paths::DETAILED).await;
    let unreachable = (health.as_ref().err())
        .or(summary.as_ref().err())
        .or(detailed.as_ref().err())
        .map(ToString::to_string);
    let summary = summary.ok().map(|(_, v)| v);
    // Error rate over the window, from the cumulative counts.
    let error_rate = summary.as_ref().and_then(|v| {
        let total = v.summary.total_requests as f64;
        let errors = v.summary.error_count as f64;
        let now = Instant::now();
        history.push_back((now, total, errors));
        while history
            .front()
            .is_some_and(|(t, ..)| now.duration_since(*t) > HEALTH_WINDOW)
            && history.len() > 1
        {
            history.pop_front();
        }
        let (_, t0, e0) = *history.front()?;
        let (dt, de) = if history.len() > 1 && total > t0 {
            (total - t0, errors - e0)
        } else {
            (total, errors)
        };
        (dt > 0.0).then(|| de * 100.0 / dt)
    });
    Poll {
        health: health.ok().map(|(_, v)| v),
        summary,
        detailed: detailed.ok().map(|(_, v)| v),
        unreachable,
        error_rate,
    }
}

async fn notify(
    client: &reqwest::Client,
    webhook: Option<&str>,
    text: &str,
    say: &mut impl FnMut(&str),
) {
    let Some(url) = webhook else { return };
    let sent = client
        .post(url)
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => say(&format!(
            "webhook {url} answered HTTP {}",
            r.status().as_u16()
        )),
        Err(e) => say(&format!("webhook {url} failed: {e}")),
    }
}
