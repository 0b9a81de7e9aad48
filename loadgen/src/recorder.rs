//! The one task that owns the measurements: it receives every finished
//! request, streams it to the CSV, adds it to the run's figures and to the
//! current interval, and once a second writes the interval's histograms
//! to the HdrHistogram interval log and flushes both files. What it wrote
//! is on disk whatever ends the run.

use crate::run::Msg;
use anyhow::Context;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use slo::aggregate::{Aggregate, Histograms};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the progress line shows.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub requests: u64,
    pub errors: u64,
    pub p95_first_token_ms: Option<f64>,
}

pub const CSV_FILE: &str = "requests.csv";
pub const HLOG_FILE: &str = "latency.hlog";

/// What the recorder writes to and shares with the run.
pub struct Setup {
    pub out: std::path::PathBuf,
    pub started: Instant,
    pub started_wall: SystemTime,
    pub clock: Arc<std::sync::OnceLock<crate::run::Clock>>,
    pub active: Arc<std::sync::atomic::AtomicI64>,
    pub live: Arc<Mutex<Live>>,
    pub goodput: slo::aggregate::GoodputLimits,
}

/// Runs until every sender is gone; returns the run's figures.
pub async fn record(
    setup: Setup,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) -> anyhow::Result<Aggregate> {
    let Setup {
        out,
        started,
        started_wall,
        clock,
        active,
        live,
        goodput,
    } = setup;
    let csv_path = out.join(CSV_FILE);
    let mut csv = csv::Writer::from_writer(BufWriter::new(
        File::create(&csv_path).with_context(|| format!("cannot create {}", csv_path.display()))?,
    ));
    let hlog_path = out.join(HLOG_FILE);
    let mut hlog_file = BufWriter::new(
        File::create(&hlog_path)
            .with_context(|| format!("cannot create {}", hlog_path.display()))?,
    );
    let mut serializer = V2DeflateSerializer::new();
    let mut hlog = IntervalLogWriterBuilder::new()
        .add_comment("loadgen latency log: values in microseconds; tags name the latency")
        .with_start_time(started_wall)
        .with_base_time(started_wall)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut hlog_file, &mut serializer)
        .context("cannot start the interval log")?;

    let mut all = Aggregate {
        goodput_limits: goodput,
        ..Aggregate::default()
    };
    let mut interval = Histograms::default();
    let mut interval_start = Duration::ZERO;
    let mut tick =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut header_written = false;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Done(rec, gaps)) => {
                    if !header_written {
                        header_written = true;
                    }
                    csv.serialize(&*rec).context("cannot write a CSV row")?;
                    // The interval log holds the measured part only, like the figures.
                    if rec.outcome.is_ok() && !rec.warmup {
                        interval.add(&rec, &gaps);
                    }
                    all.add(&rec, &gaps);
                    let mut l = live.lock().expect("live lock");
                    l.requests += 1;
                    l.errors += u64::from(!rec.outcome.is_ok());
                }
                Some(Msg::Dropped { warmup }) => all.add_dropped(warmup),
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let t = now.duration_since(started);
                if let Some(c) = clock.get() {
                    let second = now.saturating_duration_since(c.started).as_secs().saturating_sub(1);
                    let n = active.load(std::sync::atomic::Ordering::Relaxed).max(0) as u64;
                    all.sample_active(second, n, now < c.warmup_end);
                }
                live.lock().expect("live lock").p95_first_token_ms = (!interval.first_token_corrected.is_empty())
                    .then(|| interval.first_token_corrected.quantile_us(0.95) as f64 / 1000.0);
                write_interval(&mut hlog, &interval, interval_start, t - interval_start)?;
                interval.reset();
                interval_start = t;
                csv.flush().context("cannot flush the CSV")?;
            }
        }
    }
    let t = started.elapsed();
    write_interval(
        &mut hlog,
        &interval,
        interval_start,
        t.saturating_sub(interval_start),
    )?;
    drop(hlog);
    hlog_file.flush().context("cannot flush the interval log")?;
    csv.flush().context("cannot flush the CSV")?;
    Ok(all)
}

fn write_interval<W: Write>(
    log: &mut hdrhistogram::serialization::interval_log::IntervalLogWriter<
        '_,
        '_,
        W,
        V2DeflateSerializer,
    >,
    h: &Histograms,
    start: Duration,
    length: Duration,
) -> anyhow::Result<()> {
    for (tag, hist) in h.tagged() {
        if hist.is_empty() {
            continue;
        }
        log.write_histogram(hist.inner(), start, length, Tag::new(tag))
            .context("cannot write the interval log")?;
    }
    Ok(())
}
