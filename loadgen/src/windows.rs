//! Windowed objectives judged from a run folder's interval log (see
//! `slo::windows`): the log is read into memory once (it is compressed,
//! a few KB a second) and walked twice per objective, one walk adding
//! the seconds a window reaches, the other taking out those it leaves.
//! An objective on a scraped series is judged from the run's readings
//! (`engine.jsonl`), each window summed up as the whole run is.

use crate::recorder::{HLOG_FILE, decode, intervals};
use slo::engine::{Reading, ScrapeView};
use slo::objective::{FailOn, Judged, SloFile, Source};
use std::collections::BTreeMap;
use std::path::Path;

/// What a run's windowed objectives are judged from: its folder (the
/// interval log), its measured part on the run's time base, and the
/// engine's scrapes with their readings.
pub struct Sources<'a> {
    pub dir: &'a Path,
    pub warmup_s: f64,
    pub measured_s: f64,
    pub engine: &'a BTreeMap<String, ScrapeView>,
    pub readings: &'a [Reading],
}

/// Each windowed objective of `slo`, by its place in the file, judged
/// over the measured part of the run: a client latency from the interval
/// log in `dir` (its seconds from the end of the warm-up to the log's
/// last, which holds the last requests to end), a scraped series from
/// the readings. A log that cannot be read leaves the objective without
/// data (it fails the run unless it may be absent), and the run's log
/// says why.
pub fn judged(slo: Option<&SloFile>, from: &Sources, fail_on: FailOn) -> BTreeMap<usize, Judged> {
    let windowed: Vec<_> = slo
        .map(|f| f.objectives.iter().enumerate())
        .into_iter()
        .flatten()
        .filter_map(|(i, o)| o.window.map(|w| (i, o, w.as_secs())))
        .collect();
    if windowed.is_empty() {
        return BTreeMap::new();
    }
    let path = from.dir.join(HLOG_FILE);
    let log = std::fs::read(&path);
    let mut out = BTreeMap::new();
    for (i, o, width) in windowed {
        let judged = if o.source == Source::Engine {
            engine(o, width, from, fail_on)
        } else {
            match (&log, slo::windows::tag_of(&o.metric)) {
                (Ok(log), Ok((tag, _))) => {
                    judge(o, width, log, &tag, &path, from.warmup_s, fail_on)
                }
                (Err(e), _) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
                (_, Err(e)) => Err(anyhow::anyhow!(e)),
            }
        };
        let judged = judged.unwrap_or_else(|e| {
            log::warn!(
                "objective {:?} (window {width} s): not judged, {e:#}",
                o.name
            );
            slo::windows::unread(o, fail_on)
        });
        out.insert(i, judged);
    }
    out
}

/// A windowed objective on a scraped series: the scrape its path names,
/// summed up window by window from the run's readings.
fn engine(
    o: &slo::objective::Objective,
    width: u64,
    from: &Sources,
    fail_on: FailOn,
) -> anyhow::Result<Judged> {
    let name = o.metric.split('.').next().unwrap_or_default();
    let view = from.engine.get(name).ok_or_else(|| {
        anyhow::anyhow!("the run has no [[scrape]] named {name:?} (its report's `engine` section)")
    })?;
    Ok(slo::windows::judge_engine(
        o,
        width,
        (&view.config(name), &view.url, from.readings),
        slo::engine::Window {
            from: from.warmup_s,
            to: from.warmup_s + from.measured_s,
        },
        fail_on,
    ))
}

fn judge(
    o: &slo::objective::Objective,
    width: u64,
    log: &[u8],
    tag: &str,
    path: &Path,
    warmup_s: f64,
    fail_on: FailOn,
) -> anyhow::Result<Judged> {
    // A first walk finds the span and any histogram that cannot be read
    // (an error then, before any window is judged).
    let mut last = None;
    for (t, h) in seconds_of(log, tag) {
        decode(&h, path)?;
        last = Some(t);
    }
    let first = warmup_s.ceil() as u64;
    let Some(last) = last.filter(|&l| l >= first) else {
        anyhow::bail!(
            "{} holds no measured second of {tag}: the run ended before its warm-up did",
            path.display()
        );
    };
    // Every histogram was read above: none is left out here.
    let walk =
        || seconds_of(log, tag).filter_map(|(t, h)| decode(&h, path).ok().map(|hist| (t, hist)));
    Ok(slo::windows::judge(
        o,
        width,
        (first, last),
        walk(),
        walk(),
        fail_on,
    ))
}

/// The log's intervals of `tag`, with the whole second each starts in
/// (as the merge of shards' logs counts them).
fn seconds_of<'a>(
    log: &'a [u8],
    tag: &'a str,
) -> impl Iterator<
    Item = (
        u64,
        hdrhistogram::serialization::interval_log::IntervalLogHistogram<'a>,
    ),
> + 'a {
    intervals(log)
        .filter(move |h| h.tag().map(|t| t.as_str()) == Some(tag))
        .map(|h| (h.start_timestamp().as_secs(), h))
}
