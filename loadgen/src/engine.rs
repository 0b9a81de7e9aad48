//! The scenario's `[[scrape]]` endpoints read during the run: each every
//! interval from the run's first request until the attack ends (a task on
//! the runtime, as the drill's alert watch), its kept samples held in
//! memory, then written to `engine.jsonl` and summed up over the measured
//! part for the report (`slo::engine`).

use crate::scrape::Scraper;
use crate::shared::Clock;
use slo::engine::{Reading, ScrapeConfig, ScrapeView, Window};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// The readings file of a run folder, one JSON reading a line.
pub const ENGINE_JSONL: &str = "engine.jsonl";

/// Every reading so far, of every scrape.
pub type Readings = Arc<Mutex<Vec<Reading>>>;

/// Where a scrape reads: its URL, or the target's `/metrics`.
pub fn url_of(config: &ScrapeConfig, base_url: &str) -> String {
    config
        .url
        .clone()
        .unwrap_or_else(|| format!("{}{}", base_url, slo::monitoring::paths::PROMETHEUS))
}

/// The client a scrape reads with: the run's (its headers and TLS trust)
/// for the target's own endpoint, else one of its own with the entry's
/// headers (none of the target's: an exporter is not the target).
pub fn client_of(
    config: &ScrapeConfig,
    run_client: &reqwest::Client,
) -> anyhow::Result<reqwest::Client> {
    // An entry without a url has no headers of its own (checked when the
    // scenario is read).
    if config.url.is_none() {
        return Ok(run_client.clone());
    }
    let headers = slo::headers::resolve(&config.headers, &[], |n| std::env::var(n).ok())
        .map_err(|e| anyhow::anyhow!("scrape {:?}: {e}", config.name))?;
    crate::client::build(&crate::client::Reach {
        headers,
        ..Default::default()
    })
}

/// A watch of each scrape, on the runtime; aborted with the run's other
/// helpers.
pub fn spawn(
    configs: &[ScrapeConfig],
    (client, base_url): (&reqwest::Client, &str),
    clock: &Arc<OnceLock<Clock>>,
    readings: &Readings,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let n = configs.len().max(1) as u32;
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // Spread over the interval, not all at one instant: the i-th of
            // n reads i/n of an interval after the others' phase.
            let phase = c.interval * i as u32 / n;
            Ok(tokio::spawn(watch(
                c.clone(),
                url_of(c, base_url),
                client_of(c, client)?,
                (Arc::clone(clock), phase),
                Arc::clone(readings),
            )))
        })
        .collect()
}

/// Reads `config` every interval from `phase` after the run's first
/// request, until aborted.
pub async fn watch(
    config: ScrapeConfig,
    url: String,
    client: reqwest::Client,
    (clock, phase): (Arc<OnceLock<Clock>>, std::time::Duration),
    readings: Readings,
) {
    let zero = Clock::started(&clock).await.started;
    let names = config.metric_names();
    let scraper = Scraper::with_client(&url, client);
    let mut tick = tokio::time::interval_at(zero + phase, config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t = zero.elapsed().as_secs_f64();
        let reading = match scraper.text("").await {
            // Parsed off the runtime's threads: a large exposition takes
            // milliseconds, which a worker would otherwise take from the
            // streams it stamps (BENCHMARKS.md, issue 30).
            Ok(body) => {
                let names = names.clone();
                let parsed =
                    tokio::task::spawn_blocking(move || slo::engine::read(&names, &body)).await;
                match parsed {
                    Ok(Ok((samples, types))) => Reading {
                        scrape: config.name.clone(),
                        t,
                        samples,
                        types,
                        error: None,
                    },
                    Ok(Err(e)) => failed(&config, t, format!("{url}: not Prometheus text: {e}")),
                    Err(e) => failed(&config, t, format!("{url}: its parse failed: {e}")),
                }
            }
            Err(e) => failed(&config, t, e.to_string()),
        };
        readings.lock().expect("readings lock").push(reading);
    }
}

fn failed(config: &ScrapeConfig, t: f64, error: String) -> Reading {
    Reading {
        scrape: config.name.clone(),
        t,
        samples: Vec::new(),
        types: BTreeMap::new(),
        error: Some(error),
    }
}

/// Each scrape summed up over the measured part.
pub fn views(
    configs: &[ScrapeConfig],
    base_url: &str,
    readings: &[Reading],
    window: Window,
) -> BTreeMap<String, ScrapeView> {
    configs
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                slo::engine::summarize(c, &url_of(c, base_url), readings, window),
            )
        })
        .collect()
}

/// Writes the readings, one a line.
pub fn write(dir: &Path, readings: &[Reading]) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = dir.join(ENGINE_JSONL);
    let mut text = String::new();
    for r in readings {
        text.push_str(&serde_json::to_string(r).expect("a reading serializes"));
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The readings of a run folder (none when it has no `engine.jsonl`);
/// a line that does not read is an error naming it.
pub fn read(dir: &Path) -> anyhow::Result<Vec<Reading>> {
    let path = dir.join(ENGINE_JSONL);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{}:{}: not a reading: {e}", path.display(), i + 1))
        })
        .collect()
}
