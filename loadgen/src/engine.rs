//! The scenario's `[[scrape]]` endpoints read during the run: each every
//! interval from the run's first request until the attack ends (on a
//! thread of their own, at the least priority), its kept samples held in
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

/// The client a scrape reads with: one with the run's headers and TLS
/// trust for the target's own endpoint, else one with the entry's
/// headers (none of the target's: an exporter is not the target). Its
/// own, not the run's: its connections live on the scrapes' runtime.
pub fn client_of(
    config: &ScrapeConfig,
    run_reach: &crate::client::Reach,
) -> anyhow::Result<reqwest::Client> {
    // An entry without a url has no headers of its own (checked when the
    // scenario is read).
    if config.url.is_none() {
        return crate::client::build(run_reach);
    }
    let headers = slo::headers::resolve(&config.headers, &[], |n| std::env::var(n).ok())
        .map_err(|e| anyhow::anyhow!("scrape {:?}: {e}", config.name))?;
    crate::client::build(&crate::client::Reach {
        headers,
        ..Default::default()
    })
}

/// The scrapes running on their own thread; [`Scrapes::stop`] ends them
/// (as does dropping this).
pub struct Scrapes {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Scrapes {
    /// Ends every scrape and waits for the thread (a reading under way is
    /// dropped), so that the readings are all there.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}

/// Starts a watch of each scrape on a thread of their own, with a
/// one-thread runtime, at the least CPU priority of the process: reading
/// and parsing an exposition takes milliseconds, which must not be taken
/// from the streams the runtime's workers stamp (BENCHMARKS.md, issue
/// 30). Best effort: a system that refuses the priority keeps the usual
/// one. `None` without scrapes.
pub fn spawn(
    configs: &[ScrapeConfig],
    (reach, base_url): (&crate::client::Reach, &str),
    clock: &Arc<OnceLock<Clock>>,
    readings: &Readings,
) -> anyhow::Result<Option<Scrapes>> {
    if configs.is_empty() {
        return Ok(None);
    }
    let n = configs.len() as u32;
    let watches = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // Spread over the interval, not all at one instant: the i-th of
            // n reads i/n of an interval after the others' phase.
            let phase = c.interval * i as u32 / n;
            Ok(watch(
                c.clone(),
                url_of(c, base_url),
                client_of(c, reach)?,
                (Arc::clone(clock), phase),
                Arc::clone(readings),
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("scrape".into())
        .spawn(move || {
            let _ =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
            runtime.block_on(async move {
                for w in watches {
                    tokio::spawn(w);
                }
                // Sent or dropped: either ends the scrapes.
                let _ = stopped.await;
            });
        })?;
    Ok(Some(Scrapes { stop, thread }))
}

/// Reads `config` every interval from `phase` after the run's first
/// request, until its runtime ends.
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
            Ok(body) => match slo::engine::read(&names, &body) {
                Ok((samples, types)) => Reading {
                    scrape: config.name.clone(),
                    t,
                    samples,
                    types,
                    error: None,
                },
                Err(e) => failed(&config, t, format!("{url}: not Prometheus text: {e}")),
            },
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

/// A report's scrape views summed up again from `readings` over `window`
/// (`loadgen report`, `loadgen merge`), each by the entry it records.
pub fn resummed(
    views: &BTreeMap<String, ScrapeView>,
    readings: &[Reading],
    window: Window,
) -> BTreeMap<String, ScrapeView> {
    views
        .iter()
        .map(|(name, v)| {
            let view = slo::engine::summarize(&v.config(name), &v.url, readings, window);
            (name.clone(), view)
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
