//! The guide's alert rules during a run (a drill): every interval the
//! target's `/metrics` is read and the rules evaluated on it
//! (`slo::alerts::eval`, the same rules as `ci/prometheus/rules.yml`),
//! and, when the scenario names a Prometheus, its alerts are read from
//! `/api/v1/alerts`. Both on the CSV's time base; the report judges the
//! drill on them (`slo::drill`).

use crate::scrape::Scraper;
use crate::shared::Clock;
use slo::alerts::eval::{AlertRecord, Evaluator, parse_exposition};
use slo::drill::AlertsSection;
use slo::monitoring::paths;
use slo::scenario::AlertsConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use tokio::time::Instant;

/// What the watch has seen so far; read once the run is over.
pub struct Alerting {
    config: AlertsConfig,
    evaluator: Evaluator,
    evaluations: u64,
    prometheus_reads: u64,
    prometheus: Vec<AlertRecord>,
    /// Each kind of failure once, with how often.
    problems: BTreeMap<String, u64>,
}

impl Alerting {
    pub fn new(config: AlertsConfig) -> Arc<Mutex<Alerting>> {
        Arc::new(Mutex::new(Alerting {
            evaluator: Evaluator::new(config.timing()),
            config,
            evaluations: 0,
            prometheus_reads: 0,
            prometheus: Vec::new(),
            problems: BTreeMap::new(),
        }))
    }

    fn problem(&mut self, what: String) {
        *self.problems.entry(what).or_default() += 1;
    }

    /// The report's section.
    pub fn section(&self) -> AlertsSection {
        AlertsSection {
            judged_by: if self.config.prometheus.is_some() {
                "prometheus"
            } else {
                "builtin"
            }
            .into(),
            interval_s: self.config.interval.as_secs_f64(),
            scale: self.config.scale,
            evaluations: self.evaluations,
            prometheus_reads: self.prometheus_reads,
            builtin: self.evaluator.records().to_vec(),
            prometheus: self
                .config
                .prometheus
                .as_ref()
                .map(|_| self.prometheus.clone()),
            problems: self
                .problems
                .iter()
                .map(|(p, n)| {
                    if *n > 1 {
                        format!("{p} ({n} times)")
                    } else {
                        p.clone()
                    }
                })
                .collect(),
        }
    }
}

/// Reads and evaluates every interval from the run's first request until
/// aborted. `started_wall` is the wall time of `started` (for
/// Prometheus's timestamps).
pub async fn watch(
    state: Arc<Mutex<Alerting>>,
    clock: Arc<OnceLock<Clock>>,
    (started, started_wall): (Instant, SystemTime),
    client: reqwest::Client,
    base_url: String,
) {
    let zero = Clock::started(&clock).await.started;
    let zero_wall = started_wall + zero.saturating_duration_since(started);
    let (interval, prometheus) = {
        let s = state.lock().expect("alerting lock");
        (s.config.interval, s.config.prometheus.clone())
    };
    let target = Scraper::with_client(&base_url, client);
    // Prometheus is not the target: none of the target's headers go there.
    let prometheus = prometheus.map(|p| Scraper::new(&p));
    let metrics_url = target.url(paths::PROMETHEUS);
    let mut tick = tokio::time::interval_at(zero, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t = zero.elapsed().as_secs_f64();
        let text = target.text(paths::PROMETHEUS).await;
        let prom = match &prometheus {
            Some(p) => Some(read_alerts(p, zero_wall).await),
            None => None,
        };
        let mut s = state.lock().expect("alerting lock");
        match text.map_err(|e| e.to_string()).and_then(|body| {
            parse_exposition(&body).map_err(|e| format!("{metrics_url}: not Prometheus text: {e}"))
        }) {
            // Without the guide's metrics there is nothing to judge: not
            // an evaluation (a drill judged on it then fails, and says so).
            Ok(samples) if !samples.iter().any(|x| x.name == "chatbot_requests_total") => {
                s.problem(format!(
                    "{metrics_url} has none of the guide's metrics (chatbot_requests_total, ...): give a Prometheus with your own rules ([alerts] prometheus)"
                ));
            }
            Ok(samples) => {
                s.evaluator.observe(t, samples);
                s.evaluations += 1;
            }
            Err(e) => s.problem(e),
        }
        match prom {
            Some(Ok(firing)) => {
                s.prometheus_reads += 1;
                prometheus_poll(&mut s.prometheus, t, &firing);
            }
            Some(Err(e)) => s.problem(e),
            None => {}
        }
    }
}

/// A firing alert as Prometheus said: name, severity, active since (run
/// seconds), value.
struct Firing {
    name: String,
    severity: String,
    active_at_s: Option<f64>,
    value: Option<f64>,
}

async fn read_alerts(prometheus: &Scraper, zero_wall: SystemTime) -> Result<Vec<Firing>, String> {
    const ALERTS: &str = paths::PROMETHEUS_ALERTS;
    let (status, v) = prometheus.get(ALERTS).await.map_err(|e| e.to_string())?;
    let alerts = v["data"]["alerts"]
        .as_array()
        .filter(|_| (200..300).contains(&status))
        .ok_or_else(|| {
            format!("Prometheus {ALERTS}: HTTP {status}, no data.alerts in the answer")
        })?;
    let zero = zero_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(alerts
        .iter()
        .filter(|a| a["state"] == "firing")
        .filter_map(|a| {
            let name = a["labels"]["alertname"].as_str()?.to_owned();
            let active = a["activeAt"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64() - zero);
            Some(Firing {
                name,
                severity: a["labels"]["severity"].as_str().unwrap_or("").to_owned(),
                active_at_s: active,
                value: a["value"]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|v| v.is_finite()),
            })
        })
        .collect())
}

/// Opens a record for each alert newly firing, resolves each open one no
/// longer firing.
fn prometheus_poll(records: &mut Vec<AlertRecord>, t: f64, firing: &[Firing]) {
    for r in records.iter_mut().filter(|r| r.resolved_at_s.is_none()) {
        if !firing.iter().any(|f| f.name == r.name) {
            r.resolved_at_s = Some(t);
        }
    }
    for f in firing {
        let open = records
            .iter()
            .any(|r| r.name == f.name && r.resolved_at_s.is_none());
        if !open {
            records.push(AlertRecord {
                name: f.name.clone(),
                severity: f.severity.clone(),
                family: slo::alerts::eval::family_of(&f.name)
                    .unwrap_or("other")
                    .to_owned(),
                source: slo::alerts::eval::AlertSource::Prometheus,
                active_at_s: f.active_at_s.unwrap_or(t),
                firing_at_s: t,
                resolved_at_s: None,
                value: f.value,
            });
        }
    }
}
