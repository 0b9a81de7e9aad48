//! The one thread that owns the measurements: it receives every finished
//! request, marks it with any stall of the client's own scheduler that
//! overlapped it, streams it to the CSV, adds it to the run's figures and
//! to the current interval, and once a second writes the interval's
//! histograms to the HdrHistogram interval log and flushes both files. It
//! is a thread of its own (on tokio's blocking pool), so a slow disk never
//! stalls the requests being measured. What it wrote is on disk whatever
//! ends the run.

use crate::client_probe::ClientProbe;
use crate::shared::Msg;
use anyhow::Context;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use slo::aggregate::{Aggregate, Histograms};
use slo::record::RequestRecord;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What the progress line and the live view show.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub requests: u64,
    pub errors: u64,
    pub p95_first_token_ms: Option<f64>,
    /// Failures so far, by cause (`Outcome::as_str`).
    pub errors_by: std::collections::BTreeMap<&'static str, u64>,
    /// The run's last seconds, oldest first (at most [`LIVE_SECONDS`]).
    pub seconds: VecDeque<LiveSecond>,
    /// The second being counted.
    current: LiveSecond,
}

/// The seconds the live view keeps.
pub const LIVE_SECONDS: usize = 600;

/// One second of the run as the live view shows it: the requests that
/// ended in it (offered: every one, dropped arrivals included; ok: those
/// that succeeded) and the latency percentiles of its measured ones
/// (from each request's scheduled start, as the guide's KPIs are judged).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LiveSecond {
    /// Whole seconds since the run's first request.
    pub t: u64,
    pub offered: u64,
    pub ok: u64,
    pub first_token_p50_ms: Option<f64>,
    pub first_token_p95_ms: Option<f64>,
    pub complete_p95_ms: Option<f64>,
}

impl Live {
    /// Counts a request that ended.
    fn took(&mut self, outcome: slo::record::Outcome) {
        self.requests += 1;
        self.current.offered += 1;
        if outcome.is_ok() {
            self.current.ok += 1;
        } else {
            self.errors += 1;
            *self.errors_by.entry(outcome.as_str()).or_default() += 1;
        }
    }

    /// Closes second `t` with the percentiles of its measured requests.
    fn close_second(&mut self, t: u64, h: &Histograms) {
        let q = |hist: &slo::histogram::LatencyHistogram, q: f64| {
            (!hist.is_empty()).then(|| slo::format::us_to_ms(hist.quantile_us(q)))
        };
        let mut s = std::mem::take(&mut self.current);
        s.t = t;
        s.first_token_p50_ms = q(&h.first_token_corrected, 0.5);
        s.first_token_p95_ms = q(&h.first_token_corrected, 0.95);
        s.complete_p95_ms = q(&h.complete_corrected, 0.95);
        self.p95_first_token_ms = s.first_token_p95_ms;
        if self.seconds.len() == LIVE_SECONDS {
            self.seconds.pop_front();
        }
        self.seconds.push_back(s);
    }
}

pub const CSV_FILE: &str = "requests.csv";
pub const HLOG_FILE: &str = "latency.hlog";

/// What the recorder writes to and shares with the run.
pub struct Setup {
    pub out: std::path::PathBuf,
    pub started: Instant,
    pub started_wall: SystemTime,
    pub clock: Arc<std::sync::OnceLock<crate::shared::Clock>>,
    pub active: Arc<std::sync::atomic::AtomicI64>,
    pub live: Arc<Mutex<Live>>,
    pub goodput: slo::aggregate::GoodputLimits,
    pub warmup: Duration,
    /// The self-check, whose stalls mark the requests they overlapped.
    pub probe: Arc<Mutex<ClientProbe>>,
    /// A run that sizes itself: judged once a second.
    pub until_conclusive: Option<UntilConclusive>,
    /// `--metrics-listen`: counts every record too.
    pub exporter: Option<Arc<crate::exporter::Exporter>>,
}

/// What a run that sizes itself (`min_requests`, `until_conclusive`)
/// judges once a second.
pub struct UntilConclusive {
    pub objectives: Vec<slo::objective::Objective>,
    pub fail_on: slo::objective::FailOn,
    pub open_model: bool,
    /// Wait for the percentiles to be decided (`until_conclusive`).
    pub percentiles: bool,
    /// Also done once one of them is shown breached.
    pub stop_on_breach: bool,
    /// Set once every client-side percentile objective is decided.
    pub conclusive: Arc<std::sync::atomic::AtomicBool>,
    /// Why the run is shown to fail whatever more requests say, while it is
    /// (see [`crate::shared::Shared::hopeless`]).
    pub hopeless: Arc<Mutex<Option<String>>>,
}

impl UntilConclusive {
    fn check(&self, all: &Aggregate) {
        let figures = all.figures(Duration::from_secs(1), self.open_model);
        *self.hopeless.lock().expect("hopeless lock") =
            slo::report::shown_failing(&figures, &self.objectives, self.fail_on);
        if !self.percentiles {
            return;
        }
        let doc = serde_json::to_value(&figures).expect("figures serialize");
        let none = serde_json::Value::Null;
        let judged: Vec<slo::objective::Judged> = self
            .objectives
            .iter()
            // Required client-side percentiles: what evidence can decide.
            .filter(|o| o.required && o.min_samples().is_some())
            .map(|o| o.judge(&doc, &none, self.fail_on))
            .collect();
        let undecided = |j: &slo::objective::Judged| {
            matches!(
                j.level,
                slo::objective::Level::Inconclusive | slo::objective::Level::NoData
            )
        };
        let breached = |j: &slo::objective::Judged| !undecided(j) && self.fail_on.fails(j.level);
        let decided = judged.iter().all(|j| !undecided(j))
            || (self.stop_on_breach && judged.iter().any(breached));
        if decided {
            self.conclusive
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A request is held this long after it ended before it is written, so
/// the self-check has seen any stall that overlapped it (its timer fires
/// every 10 ms once the stall is over).
const HOLD: Duration = Duration::from_millis(250);

/// A file that could not be written stops the run at once (see
/// [`crate::stop`]); the figures go on being counted, nothing more is
/// written. The first such error is kept.
fn broke(broken: &mut Option<String>, e: anyhow::Error) {
    if broken.is_none() {
        let why = format!("{e:#}");
        crate::stop::request(&format!("stopped: {why}"), true);
        *broken = Some(why);
    }
}

/// Runs on a thread of its own (blocking file I/O) until every sender is
/// gone; returns the run's figures, and the write error that stopped it,
/// if one did.
pub fn record(
    setup: Setup,
    rx: mpsc::Receiver<Msg>,
) -> anyhow::Result<(Aggregate, Option<String>)> {
    let Setup {
        out,
        started,
        started_wall,
        clock,
        active,
        live,
        goodput,
        warmup,
        probe,
        until_conclusive,
        exporter,
    } = setup;
    let csv_path = out.join(CSV_FILE);
    let mut csv = csv::Writer::from_writer(BufWriter::new(
        File::create(&csv_path).with_context(|| format!("cannot create {}", csv_path.display()))?,
    ));
    let hlog_path = out.join(HLOG_FILE);
    let paths = (hlog_path.clone(), csv_path.clone());
    let mut hlog_file = BufWriter::new(
        File::create(&hlog_path)
            .with_context(|| format!("cannot create {}", hlog_path.display()))?,
    );
    // The log's base time is the run clock's t = 0 (the first request), as
    // the CSV's: wait for it. No request ends before it, so nothing is
    // missed; a run that never starts one keeps the set-up time.
    let (mut pending, mut open) = wait_for_clock(&rx, &clock);
    let base_wall = clock.get().map_or(started_wall, |c| {
        started_wall + c.started.saturating_duration_since(started)
    });
    let mut serializer = V2DeflateSerializer::new();
    let mut hlog = IntervalLogWriterBuilder::new()
        .add_comment("loadgen latency log: values in microseconds; tags name the latency; times count from the run's first request, as requests.csv does")
        .with_start_time(base_wall)
        .with_base_time(base_wall)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut hlog_file, &mut serializer)
        .context("cannot start the interval log")?;

    let mut broken: Option<String> = None;
    let mut all = Aggregate {
        goodput_limits: goodput,
        warmup_s: warmup.as_secs_f64(),
        ..Aggregate::default()
    };
    let mut interval = Histograms::default();
    // Interval times share the CSV's time base: the run clock's t = 0.
    let since_t0 = |now: Instant| match clock.get() {
        Some(c) => now.saturating_duration_since(c.started),
        None => Duration::ZERO,
    };
    let mut interval_start = Duration::ZERO;
    let mut next_tick = started + Duration::from_secs(1);
    while open || !pending.is_empty() {
        let now = Instant::now();
        if open {
            let wait = next_tick
                .saturating_duration_since(now)
                .min(Duration::from_millis(50));
            match rx.recv_timeout(wait) {
                Ok(Msg {
                    record: rec,
                    gaps_us: gaps,
                }) => {
                    let ended = clock.get().map_or(now, |c| {
                        c.started + Duration::from_micros(rec.start_us + rec.end_us)
                    });
                    pending.push_back((ended, rec, gaps));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
            }
        }
        // Write what the self-check has had time to judge (all at the end).
        let now = Instant::now();
        while let Some((ended, _, _)) = pending.front() {
            if open && now.saturating_duration_since(*ended) < HOLD {
                break;
            }
            let taken = pending.pop_front().expect("a front");
            let into = Taken {
                csv_path: &csv_path,
                clock: &clock,
                probe: &probe,
                exporter: exporter.as_deref(),
                live: &live,
            };
            into.take(taken, &mut csv, &mut broken, (&mut interval, &mut all));
        }
        if Instant::now() >= next_tick {
            let now = Instant::now();
            next_tick = now + Duration::from_secs(1);
            if let Some(c) = clock.get() {
                let second = now
                    .saturating_duration_since(c.started)
                    .as_secs()
                    .saturating_sub(1);
                let n = active.load(std::sync::atomic::Ordering::Relaxed).max(0) as u64;
                all.sample_active(second, n, now < c.warmup_end);
            }
            let t = since_t0(now);
            live.lock()
                .expect("live lock")
                .close_second(t.as_secs().saturating_sub(1), &interval);
            if broken.is_none() {
                let second = (interval_start, t.saturating_sub(interval_start));
                let written = write_second(&mut hlog, &interval, second, &mut csv, &paths);
                if let Err(e) = written {
                    broke(&mut broken, e);
                }
            }
            interval.reset();
            interval_start = t;
            if let Some(u) = &until_conclusive {
                u.check(&all);
            }
        }
    }
    if broken.is_none() {
        let t = since_t0(Instant::now());
        let second = (interval_start, t.saturating_sub(interval_start));
        let written = write_second(&mut hlog, &interval, second, &mut csv, &paths);
        drop(hlog);
        if let Err(e) = written.and_then(|()| wrote(hlog_file.flush(), &hlog_path)) {
            broke(&mut broken, e);
        }
    }
    Ok((all, broken))
}

/// A request waiting to be written: when it ended, its record, its gaps.
type Pending = (Instant, Box<RequestRecord>, Vec<u32>);

/// Waits for the run clock's t = 0 (the first request), the base time of
/// the log as of the CSV, keeping what arrives meanwhile. No request ends
/// before it, so nothing is missed; a run that never starts one keeps the
/// set-up time. Returns the kept records and whether senders remain.
fn wait_for_clock(
    rx: &mpsc::Receiver<Msg>,
    clock: &std::sync::OnceLock<crate::shared::Clock>,
) -> (VecDeque<Pending>, bool) {
    let mut pending = VecDeque::new();
    let mut open = true;
    while open && clock.get().is_none() {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Msg {
                record: rec,
                gaps_us: gaps,
            }) => pending.push_back((Instant::now(), rec, gaps)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
        }
    }
    (pending, open)
}

/// Where a finished request goes besides the CSV.
struct Taken<'a> {
    csv_path: &'a std::path::Path,
    clock: &'a std::sync::OnceLock<crate::shared::Clock>,
    probe: &'a Mutex<ClientProbe>,
    exporter: Option<&'a crate::exporter::Exporter>,
    live: &'a Mutex<Live>,
}

impl Taken<'_> {
    /// One request the self-check has had time to judge: its stall share
    /// stamped, written to the CSV (unless writing broke), added to the
    /// second's and the run's figures, the exporter and the live line.
    fn take<W: Write>(
        &self,
        (ended, mut rec, gaps): Pending,
        csv: &mut csv::Writer<W>,
        broken: &mut Option<String>,
        (interval, all): (&mut Histograms, &mut Aggregate),
    ) {
        if let Some(c) = self.clock.get() {
            let began = c.started + Duration::from_micros(rec.start_us);
            // A stamp the request lacks stands in as its send.
            let at = |us: Option<u64>| began + Duration::from_micros(us.unwrap_or(0));
            let stamps = [
                began,
                at(rec.first_token_us),
                at(rec.first_audio_us),
                at(rec.complete_us),
                ended,
            ];
            rec.client_stall_us = self.probe.lock().expect("probe lock").stalled_at(&stamps);
        }
        if broken.is_none()
            && let Err(e) = csv.serialize(&*rec)
        {
            broke(
                broken,
                anyhow::Error::new(e).context(format!("cannot write {}", self.csv_path.display())),
            );
        }
        // The interval log holds the measured part only, like the figures.
        if rec.outcome.is_ok() && !rec.warmup {
            interval.add(&rec, &gaps);
        }
        all.add(&rec, &gaps);
        if let Some(e) = self.exporter {
            e.observe(&rec);
        }
        self.live.lock().expect("live lock").took(rec.outcome);
    }
}

/// Writes one interval's histograms to the interval log, then flushes the
/// CSV; `paths` are the log's and the CSV's, for the error.
fn write_second<W: Write, C: Write>(
    log: &mut hdrhistogram::serialization::interval_log::IntervalLogWriter<
        '_,
        '_,
        W,
        V2DeflateSerializer,
    >,
    h: &Histograms,
    (start, length): (Duration, Duration),
    csv: &mut csv::Writer<C>,
    (hlog_path, csv_path): &(std::path::PathBuf, std::path::PathBuf),
) -> anyhow::Result<()> {
    write_interval(log, h, start, length, hlog_path)?;
    wrote(csv.flush(), csv_path)
}

/// An I/O result, its error naming the file.
fn wrote(r: std::io::Result<()>, path: &std::path::Path) -> anyhow::Result<()> {
    r.with_context(|| format!("cannot write {}", path.display()))
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
    path: &std::path::Path,
) -> anyhow::Result<()> {
    for (tag, hist) in h.tagged() {
        if hist.is_empty() {
            continue;
        }
        log.write_histogram(hist.inner(), start, length, Tag::new(tag))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The interval histograms of an interval log's bytes, in the order
/// written (time order); other lines (comments, times) are skipped.
pub fn intervals(
    log: &[u8],
) -> impl Iterator<Item = hdrhistogram::serialization::interval_log::IntervalLogHistogram<'_>> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    IntervalLogIterator::new(log).filter_map(|entry| match entry {
        Ok(LogEntry::Interval(h)) => Some(h),
        _ => None,
    })
}

/// One interval's histogram, read back; `path`: the log's, for the error.
pub fn decode(
    h: &hdrhistogram::serialization::interval_log::IntervalLogHistogram<'_>,
    path: &std::path::Path,
) -> anyhow::Result<slo::histogram::LatencyHistogram> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(h.encoded_histogram())
        .with_context(|| format!("{}: a histogram is not base64", path.display()))?;
    let hist: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &bytes[..])
        .with_context(|| format!("{}: a histogram cannot be read", path.display()))?;
    let mut out = slo::histogram::LatencyHistogram::new();
    for v in hist.iter_recorded() {
        out.record_us_n(v.value_iterated_to(), v.count_at_value());
    }
    Ok(out)
}
