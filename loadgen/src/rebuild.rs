//! `loadgen report DIR`: every report rebuilt from a run's saved files
//! (the CSV and the interval log), without rerunning. What cannot be
//! measured again (the server's view, the self-check, the run's settings)
//! is taken from the run's `report.json` when it is there.

use crate::recorder::{CSV_FILE, HLOG_FILE};
use crate::report::{self, REPORT_JSON};
use anyhow::Context;
use serde_json::Value;
use slo::aggregate::Aggregate;
use slo::record::RequestRecord;
use slo::report::RunInfo;
use slo::report::{Report, ScenarioInfo, TargetInfo};
use slo::self_check::SelfCheck;
use slo::server_view::ServerView;
use std::path::{Path, PathBuf};

pub fn rebuild(
    dir: &Path,
    slo_flag: Option<&Path>,
    gate: slo::objective::GateOverride,
) -> anyhow::Result<Report> {
    let old: Option<Value> =
        match std::fs::read(dir.join(REPORT_JSON)) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is not valid JSON", dir.join(REPORT_JSON).display())
            })?),
            Err(_) => None,
        };
    let old = old.unwrap_or(Value::Null);
    let slo_path: Option<PathBuf> = slo_flag
        .map(PathBuf::from)
        .or_else(|| old["slo_file"].as_str().map(PathBuf::from));
    let slo = match slo_path {
        Some(p) => Some((p.clone(), crate::files::read_slo_file(&p)?)),
        None => None,
    };
    // The gate the run was judged by, as its report.json says (a report
    // without one: the defaults), and the flags over it.
    let gate = gate.over(slo::objective::Gate {
        fail_on: serde_json::from_value(old["fail_on"].clone()).unwrap_or_default(),
        allow_missing: old["allow_missing"] == true,
        accept_inconclusive: old["accept_inconclusive"] == true,
    });

    let (agg, span, open_model) = read_records(dir, &old, slo.as_ref().map(|(_, f)| f))?;
    let readings = crate::engine::read(dir)?;
    let measured_s = old["measured_s"].as_f64().unwrap_or_else(|| {
        if span.1 > span.0 {
            (span.1 - span.0) as f64 / 1e6
        } else {
            0.0
        }
    });
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("run")
        .to_owned();
    let meta = RunInfo {
        scenario: serde_json::from_value::<ScenarioInfo>(old["scenario"].clone()).unwrap_or(
            ScenarioInfo {
                name,
                file: String::new(),
                description: String::new(),
            },
        ),
        target: serde_json::from_value::<TargetInfo>(old["target"].clone()).unwrap_or(TargetInfo {
            url: "unknown".into(),
            ..TargetInfo::default()
        }),
        load: old["load"].clone(),
        started_at: old["started_at"].as_str().unwrap_or_default().to_owned(),
        elapsed_s: old["elapsed_s"].as_f64().unwrap_or(measured_s),
        measured_s,
        warmup_s: old["warmup_s"].as_f64().unwrap_or(0.0),
        interrupted: old["interrupted"].as_str().map(str::to_owned),
        shard: serde_json::from_value(old["shard"].clone()).unwrap_or(None),
        judge: old["shard"].is_null() || old["verdict"] != "not_judged",
        shards: serde_json::from_value(old["shards"].clone()).unwrap_or_default(),
        // A merged run's flaws stay flaws when it is rebuilt.
        shard_problems: serde_json::from_value(old["shard_problems"].clone()).unwrap_or_default(),
        // The timeline as it happened, failures included.
        events: serde_json::from_value(old["events"].clone()).unwrap_or_default(),
        alerts: serde_json::from_value(old["alerts"].clone()).unwrap_or_default(),
        engine: engine(&old, measured_s, &readings),
        // Judged below, once the SLO file and the gate are known.
        windowed: Default::default(),
        server: if old["server"].is_null() {
            ServerView {
                available: false,
                reason: Some("not recorded".into()),
                ..ServerView::default()
            }
        } else {
            serde_json::from_value(old["server"].clone()).map_err(|e| {
                anyhow::anyhow!(
                    "{}: `server` is not a report's server section ({e})",
                    dir.join(REPORT_JSON).display()
                )
            })?
        },
        // Without the run's own self-check, nothing says the client was
        // sound: fail closed.
        self_check: if old["self_check"].is_null() {
            SelfCheck::not_recorded()
        } else {
            serde_json::from_value(old["self_check"].clone()).map_err(|e| {
                anyhow::anyhow!(
                    "{}: `self_check` is not a report's self-check section ({e})",
                    dir.join(REPORT_JSON).display()
                )
            })?
        },
        slo,
        gate,
        open_model,
        files: report::files(),
    };
    let meta = RunInfo {
        windowed: crate::windows::judged(
            meta.slo.as_ref().map(|(_, f)| f),
            &crate::windows::Sources {
                dir,
                warmup_s: meta.warmup_s,
                measured_s: meta.measured_s,
                engine: &meta.engine,
                readings: &readings,
            },
            meta.gate.fail_on,
        ),
        ..meta
    };
    let report = slo::report::build(meta, &agg);
    report::write_all(dir, &report)?;
    Ok(report)
}

/// The `[[scrape]]` views: summed up again from `engine.jsonl` as the
/// run did, or the old report's when the readings are not there.
fn engine(
    old: &Value,
    measured_s: f64,
    readings: &[slo::engine::Reading],
) -> std::collections::BTreeMap<String, slo::engine::ScrapeView> {
    let views: std::collections::BTreeMap<String, slo::engine::ScrapeView> =
        serde_json::from_value(old["engine"].clone()).unwrap_or_default();
    if readings.is_empty() {
        return views;
    }
    let from = old["warmup_s"].as_f64().unwrap_or(0.0);
    let window = slo::engine::Window {
        from,
        to: from + measured_s,
    };
    crate::engine::resummed(&views, readings, window)
}

/// requests.csv into one aggregate (the open streams from the run's own
/// series, the inter-token gaps from its interval log); the measured
/// requests' span in µs, and whether the run was open (scheduled starts).
fn read_records(
    dir: &Path,
    old: &Value,
    slo: Option<&slo::objective::SloFile>,
) -> anyhow::Result<(Aggregate, (u64, u64), bool)> {
    let csv_path = dir.join(CSV_FILE);
    let mut reader = csv::Reader::from_path(&csv_path)
        .with_context(|| format!("cannot read {}", csv_path.display()))?;
    let mut agg = Aggregate {
        goodput_limits: slo::report::goodput_limits(slo),
        warmup_s: old["warmup_s"].as_f64().unwrap_or(0.0),
        ..Aggregate::default()
    };
    let mut span = (u64::MAX, 0u64);
    let mut open_model = false;
    for (i, row) in reader.deserialize::<RequestRecord>().enumerate() {
        let r = row.with_context(|| {
            format!(
                "{}: row {} is not a request record",
                csv_path.display(),
                i + 2
            )
        })?;
        open_model |= r.scheduled_us.is_some();
        if !r.warmup {
            span = (
                span.0.min(r.scheduled_us.unwrap_or(r.start_us)),
                span.1.max(r.start_us + r.end_us),
            );
        }
        agg.add(&r, &[]);
    }
    // Open streams were sampled, not recorded per request: from the run's
    // own series.
    for sec in old["timeseries"].as_array().into_iter().flatten() {
        if let (Some(t), Some(n)) = (sec["t"].as_u64(), sec["active"].as_u64()) {
            agg.sample_active(t, n, false);
        }
    }
    // Inter-token gaps are not per request: they come from the interval log.
    let hlog_path = dir.join(HLOG_FILE);
    if let Ok(log) = std::fs::read(&hlog_path) {
        for h in crate::recorder::intervals(&log) {
            if h.tag().map(|t| t.as_str()) == Some("inter_token") {
                let hist = crate::recorder::decode(&h, &hlog_path)?;
                agg.histograms.inter_token.add(&hist);
            }
        }
    }
    Ok((agg, span, open_model))
}
