//! Windowed objectives: "the p95 of first token over any 60 s window is
//! at most 1 s". A run's interval log holds one histogram a second per
//! latency (the measured requests, by the second they ended); a window is
//! the sum of `width` consecutive seconds, sliding a second at a time
//! over the measured part. Each window is judged as a whole-run
//! percentile is (its own 95 % interval, its own minimum of samples), and
//! the objective takes the worst: one window shown past its line fails
//! it, one window that cannot be decided (too few samples, or an
//! interval across the line) makes it inconclusive, never a pass.
//!
//! Each window is judged at the interval's own confidence: with many
//! windows a p95 close to its line is shown breached in some window more
//! often than a single interval would be (a false alarm fails the run:
//! the gate errs closed), while a pass needs every window's upper bound
//! on the good side.

use crate::engine::{Reading, ScrapeConfig, Window as EngineWindow};
use crate::histogram::LatencyHistogram;
pub use crate::metric_paths::interval_log_tag as tag_of;
use crate::objective::{FailOn, Judged, Level, Objective, WindowView};
use serde_json::{Value, json};

/// What a reason line adds for a windowed objective: which window
/// decided it and how the others fared.
pub fn phrase(w: &WindowView) -> String {
    let which = if w.short {
        format!(
            "its one window, the whole measured part ({}-{} s, shorter than {} s)",
            w.from_s, w.to_s, w.width_s
        )
    } else {
        format!("the {} s window {}-{} s", w.width_s, w.from_s, w.to_s)
    };
    format!(
        " [in {which}; {} of {} windows past the line, {} undecided]",
        w.breached, w.windows, w.inconclusive
    )
}

/// One second of the log: where it starts (whole seconds since the run's
/// first request) and the tag's histogram.
pub type Second = (u64, LatencyHistogram);

/// Judges `objective` (whose `window` is `width_s`) over the measured
/// seconds `first..=last`. `head` and `tail` are the same seconds in time
/// order (read twice, so a window of an hour holds one sum, not an hour
/// of histograms): `head` adds each second as the window reaches it,
/// `tail` takes it out as the window leaves it.
pub fn judge(
    objective: &Objective,
    width_s: u64,
    (first, last): (u64, u64),
    mut head: impl Iterator<Item = Second>,
    mut tail: impl Iterator<Item = Second>,
    fail_on: FailOn,
) -> Judged {
    let width = width_s.max(1);
    let span = last.saturating_sub(first) + 1;
    let short = span < width;
    let starts = if short { 1 } else { span - width + 1 };
    let mut sum = LatencyHistogram::new();
    let (mut pending_head, mut pending_tail) = (head.next(), tail.next());
    let mut tally = Tally::new(objective, fail_on);
    for i in 0..starts {
        let from = first + i;
        let to = if short { last + 1 } else { from + width };
        // Seconds before `to` join the sum; those before `from` leave it.
        advance(&mut pending_head, &mut head, (first, to), |h| sum.add(h));
        advance(&mut pending_tail, &mut tail, (first, from), |h| {
            sum.subtract(h);
        });
        tally.add(judge_one(objective, &sum, fail_on), (from, to));
    }
    tally.finish(width, short)
}

/// Judges `objective`, a figure of the engine's scraped series (`scrape`
/// read from `url`), over every `width_s` window of the measured part
/// `measured` (seconds on the run's time base), sliding a second at a
/// time: each window summed up from the readings as the whole run is
/// ([`crate::engine::summarize`]: from the last reading at or before its
/// start to the first at or after its end). A series the whole measured
/// part does not have is no data, as without a window; a window where it
/// cannot be computed (fewer than two readings, a histogram that did not
/// grow) is undecided.
pub fn judge_engine(
    objective: &Objective,
    width_s: u64,
    (scrape, url, readings): (&ScrapeConfig, &str, &[Reading]),
    measured: EngineWindow,
    fail_on: FailOn,
) -> Judged {
    let judge_over = |w: EngineWindow| {
        let view = crate::engine::summarize(scrape, url, readings, w);
        let doc = crate::engine::document(&[(scrape.name.clone(), view)].into());
        objective.judge_in(
            &crate::objective::Docs {
                client: &Value::Null,
                server: &Value::Null,
                engine: &doc,
            },
            fail_on,
        )
    };
    let whole = judge_over(measured);
    if whole.level == Level::NoData {
        return whole;
    }
    let width = width_s.max(1);
    let first = measured.from.max(0.0).ceil() as u64;
    let end = measured.to.max(0.0).floor() as u64;
    let mut tally = Tally::new(objective, fail_on);
    let short = end < first + width;
    if short {
        tally.add(whole, (first, end.max(first)));
    } else {
        for from in first..=end - width {
            let to = from + width;
            let w = EngineWindow {
                from: from as f64,
                to: to as f64,
            };
            tally.add(judge_over(w), (from, to));
        }
    }
    tally.finish(width, short)
}

/// The windows of one objective as they are judged: how many breached,
/// how many could not be decided, and the one that decides.
struct Tally<'a> {
    objective: &'a Objective,
    fail_on: FailOn,
    worst: Option<(Judged, u64, u64)>,
    windows: u64,
    breached: u64,
    inconclusive: u64,
}

impl<'a> Tally<'a> {
    fn new(objective: &'a Objective, fail_on: FailOn) -> Self {
        Tally {
            objective,
            fail_on,
            worst: None,
            windows: 0,
            breached: 0,
            inconclusive: 0,
        }
    }

    fn add(&mut self, j: Judged, (from, to): (u64, u64)) {
        self.windows += 1;
        match rank(&j, self.fail_on) {
            Rank::Breached => self.breached += 1,
            Rank::Undecided => self.inconclusive += 1,
            Rank::Decided => {}
        }
        if self
            .worst
            .as_ref()
            .is_none_or(|(w, _, _)| worse(&j, w, self.objective, self.fail_on))
        {
            self.worst = Some((j, from, to));
        }
    }

    fn finish(self, width_s: u64, short: bool) -> Judged {
        let (mut judged, from_s, to_s) = self.worst.expect("at least one window");
        if judged.level == Level::NoData {
            // A window without a sample is one that cannot be decided: the
            // objective is inconclusive, not without data.
            judged.level = Level::Inconclusive;
            judged.samples = Some(0);
        }
        judged.window = Some(WindowView {
            width_s,
            windows: self.windows,
            breached: self.breached,
            inconclusive: self.inconclusive,
            from_s,
            to_s,
            short,
        });
        judged
    }
}

/// Takes the seconds of `walk` (`pending` its next) that start before
/// `until`, handing those of the measured part (from `first`) to `apply`.
fn advance(
    pending: &mut Option<Second>,
    walk: &mut impl Iterator<Item = Second>,
    (first, until): (u64, u64),
    mut apply: impl FnMut(&LatencyHistogram),
) {
    while let Some((t, h)) = pending.take() {
        if t >= until {
            *pending = Some((t, h));
            return;
        }
        if t >= first {
            apply(&h);
        }
        *pending = walk.next();
    }
}

/// What a window's judgment counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Decided,
    Undecided,
    Breached,
}

fn rank(j: &Judged, fail_on: FailOn) -> Rank {
    match j.level {
        Level::Inconclusive | Level::NoData => Rank::Undecided,
        level if fail_on.fails(level) => Rank::Breached,
        _ => Rank::Decided,
    }
}

/// Whether window `a` decides the objective rather than `b`: a breach
/// before an undecided window before a decided one; among breaches the
/// worse level, among undecided windows the fewer samples; then the
/// worse value, then the earlier window.
fn worse(a: &Judged, b: &Judged, o: &Objective, fail_on: FailOn) -> bool {
    let (ra, rb) = (rank(a, fail_on), rank(b, fail_on));
    if ra != rb {
        return ra > rb;
    }
    if ra == Rank::Breached && a.level != b.level {
        return a.level > b.level;
    }
    // Undecided: the window with the fewest samples is the plainest case.
    if ra == Rank::Undecided && a.samples != b.samples {
        return a.samples.unwrap_or(0) < b.samples.unwrap_or(0);
    }
    let bad = |j: &Judged| {
        j.value.map(|v| match o.direction {
            crate::objective::Direction::Max => v,
            crate::objective::Direction::Min => -v,
        })
    };
    match (bad(a), bad(b)) {
        (Some(x), Some(y)) => x > y,
        (Some(_), None) => true,
        _ => false,
    }
}

/// One window judged as a whole run's percentile is: its figures put where
/// the objective's metric reads them.
fn judge_one(o: &Objective, sum: &LatencyHistogram, fail_on: FailOn) -> Judged {
    let figures = serde_json::to_value(crate::aggregate::LatencyFigures::of(sum, None))
        .expect("figures serialize");
    let parents: Vec<&str> = o.metric.split('.').collect();
    let doc = parents[..parents.len() - 1]
        .iter()
        .rev()
        .fold(figures, |inner, key| json!({ *key: inner }));
    o.judge(&doc, &Value::Null, fail_on)
}

/// The judgment of a windowed objective whose interval log could not be
/// read: no data, which fails the run unless the objective may be absent.
pub fn unread(objective: &Objective, fail_on: FailOn) -> Judged {
    objective.judge(&Value::Null, &Value::Null, fail_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective(metric: &str, target: f64) -> Objective {
        objective_of(metric, target, "client")
    }

    /// A 10 s windowed objective of `source`, as an SLO file reads it.
    fn objective_of(metric: &str, target: f64, source: &str) -> Objective {
        let text = format!(
            "name = \"w\"\n[[objective]]\nname = \"first token p95\"\nmetric = \"{metric}\"\nsource = \"{source}\"\ndirection = \"max\"\ntarget = {target}\nwindow = \"10s\"\n"
        );
        crate::objective::SloFile::from_toml(&text, "slo.toml")
            .unwrap()
            .objectives
            .remove(0)
    }

    /// `n` samples of `ms` each second from `from` to `to` (exclusive).
    fn seconds(spans: &[(u64, u64, u64, u64)]) -> Vec<Second> {
        let mut out: Vec<Second> = Vec::new();
        for &(from, to, n, ms) in spans {
            for t in from..to {
                let mut h = LatencyHistogram::new();
                h.record_us_n(ms * 1000, n);
                out.push((t, h));
            }
        }
        out.sort_by_key(|(t, _)| *t);
        out
    }

    fn run(o: &Objective, secs: &[Second], span: (u64, u64)) -> Judged {
        let w = o.window.map_or(1, |d| d.as_secs());
        judge(
            o,
            w,
            span,
            secs.iter().cloned(),
            secs.iter().cloned(),
            FailOn::Target,
        )
    }

    /// A scraped histogram `ttft` read each second from 0 to `to`: 20
    /// observations a second, at 0.05 s (bucket 0.1) or, in the seconds
    /// of `slow`, at 0.8 s (bucket 1); none in the seconds of `idle`.
    fn scraped(to: u64, slow: std::ops::Range<u64>, idle: std::ops::Range<u64>) -> Vec<Reading> {
        let (mut fast_n, mut slow_n) = (0.0, 0.0);
        (0..=to)
            .map(|t| {
                if t > 0 && !idle.contains(&(t - 1)) {
                    if slow.contains(&(t - 1)) {
                        slow_n += 20.0;
                    } else {
                        fast_n += 20.0;
                    }
                }
                let bucket = |le: &str, n: f64| crate::engine::KeptSample {
                    name: "ttft_bucket".into(),
                    labels: vec![("le".into(), le.into())],
                    value: n,
                };
                let all = fast_n + slow_n;
                let plain = |name: &str, value: f64| crate::engine::KeptSample {
                    name: name.into(),
                    labels: Vec::new(),
                    value,
                };
                Reading {
                    scrape: "e".into(),
                    t: t as f64,
                    samples: vec![
                        bucket("0.1", fast_n),
                        bucket("0.5", fast_n),
                        bucket("1", all),
                        bucket("+Inf", all),
                        plain("ttft_sum", 0.05 * fast_n + 0.8 * slow_n),
                        plain("ttft_count", all),
                    ],
                    types: [("ttft".into(), crate::engine::Kind::Histogram)].into(),
                    error: None,
                }
            })
            .collect()
    }

    fn engine_objective(metric: &str, target: f64) -> Objective {
        objective_of(metric, target, "engine")
    }

    /// The scrape `e` reading the histogram `ttft`.
    fn ttft_scrape() -> ScrapeConfig {
        ScrapeConfig {
            name: "e".into(),
            url: None,
            interval: std::time::Duration::from_secs(1),
            headers: Default::default(),
            preset: None,
            metrics: vec!["ttft".into()],
        }
    }

    fn judge_scraped(o: &Objective, readings: &[Reading], measured: (f64, f64)) -> Judged {
        judge_engine(
            o,
            o.window.unwrap().as_secs(),
            (&ttft_scrape(), "u", readings),
            EngineWindow {
                from: measured.0,
                to: measured.1,
            },
            FailOn::Target,
        )
    }

    #[test]
    fn a_scraped_histogram_fails_the_window_its_slow_stretch_is_in() {
        // 60 s, seconds 30-32 slow: 60 of 1,200 observations (5 %), so the
        // whole run's p95 is within the fast bucket; a 10 s window with a
        // slow second has 10 % or more of its observations slow.
        let readings = scraped(60, 30..33, 0..0);
        let o = engine_objective("e.ttft.p95", 0.3);
        let whole = crate::engine::summarize(
            &ttft_scrape(),
            "u",
            &readings,
            EngineWindow {
                from: 0.0,
                to: 60.0,
            },
        );
        assert!(whole.series["ttft"].figures["p95"] <= 0.1, "{whole:?}");
        let j = judge_scraped(&o, &readings, (0.0, 60.0));
        assert_eq!(j.level, Level::TargetMissed, "{j:?}");
        let w = j.window.clone().unwrap();
        // Windows from 0-10 to 50-60; those from 21 to 32 hold a slow second.
        assert_eq!((w.width_s, w.windows, w.breached), (10, 51, 12), "{w:?}");
        assert_eq!(w.inconclusive, 0, "{w:?}");
        // The worst: three slow seconds of ten, 60 of 200 observations;
        // the p95 (rank 190) is 50 of the 60 into (0.5, 1]: 0.5 + 0.5 × 50/60.
        assert!(w.from_s >= 23 && w.to_s <= 40, "{w:?}");
        let expected = 0.5 + 0.5 * 50.0 / 60.0;
        assert!((j.value.unwrap() - expected).abs() < 1e-9, "{j:?}");
        // Without the stretch every window passes.
        let j = judge_scraped(&o, &scraped(60, 0..0, 0..0), (0.0, 60.0));
        assert_eq!(j.level, Level::Ok, "{j:?}");
        assert_eq!(j.window.unwrap().breached, 0);
    }

    #[test]
    fn a_scraped_window_that_counted_nothing_is_inconclusive() {
        // Nothing observed in seconds 20-39: the windows inside that
        // stretch have no p95, and cannot pass.
        let o = engine_objective("e.ttft.p95", 0.3);
        let j = judge_scraped(&o, &scraped(60, 0..0, 20..40), (0.0, 60.0));
        assert_eq!(j.level, Level::Inconclusive, "{j:?}");
        let w = j.window.unwrap();
        assert_eq!(w.inconclusive, 11, "{w:?}");
        assert!(w.from_s >= 20 && w.to_s <= 40, "{w:?}");
        // A series the run never had is no data, as without a window.
        let o = engine_objective("e.other.p95", 0.3);
        let j = judge_scraped(&o, &scraped(60, 0..0, 0..0), (0.0, 60.0));
        assert_eq!(j.level, Level::NoData, "{j:?}");
        // A measured part shorter than the window is one window.
        let o = engine_objective("e.ttft.p95", 0.3);
        let j = judge_scraped(&o, &scraped(60, 0..0, 0..0), (2.0, 8.0));
        let w = j.window.unwrap();
        assert!(w.short && w.windows == 1, "{w:?}");
        assert_eq!(j.level, Level::Ok);
    }

    #[test]
    fn tags_of_the_interval_log() {
        assert_eq!(
            tag_of("latency_ms.first_token.p95").unwrap(),
            ("first_token".to_owned(), crate::evidence::Percentile::P95)
        );
        assert_eq!(
            tag_of("scheduled_latency_ms.complete.p99").unwrap().0,
            "complete_corrected"
        );
        assert_eq!(
            tag_of("latency_ms.first_audio.corrected.p50").unwrap().0,
            "first_audio_corrected"
        );
        for bad in [
            "latency_ms.first_token.mean",
            "latency_ms.time_per_output_token.p95",
            "scheduled_latency_ms.inter_token.p95",
            "requests.success_rate",
        ] {
            let e = tag_of(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("first_token"), "{e}");
        }
    }

    #[test]
    fn one_slow_stretch_fails_though_the_whole_run_passes() {
        // 60 s at 20 a second, 100 ms, but seconds 30-32 at 400 ms: 60 of
        // 1,200 samples (5 %), so the whole run's p95 is 100 ms. A 10 s
        // window holding one slow second has 10 % of its samples slow.
        let secs = seconds(&[(0, 30, 20, 100), (30, 33, 20, 400), (33, 60, 20, 100)]);
        let o = objective("latency_ms.first_token.p95", 300.0);
        let mut whole = LatencyHistogram::new();
        for (_, h) in &secs {
            whole.add(h);
        }
        assert!(whole.quantile_us(0.95) < 300_000, "the whole run passes");
        let j = run(&o, &secs, (0, 59));
        assert_eq!(j.level, Level::TargetMissed, "{j:?}");
        let w = j.window.clone().unwrap();
        assert_eq!((w.width_s, w.windows), (10, 51));
        // Every window holding a slow second (those from 21 to 32) has
        // its p95's lower bound (rank 184 of 200) among the slow samples.
        assert_eq!(w.breached, 12, "{w:?}");
        // The first of the worst: it holds a slow second.
        assert!(w.from_s <= 32 && w.to_s > 30, "{w:?}");
        assert_eq!(j.samples, Some(200));
        assert!(j.value.unwrap() >= 399.0, "{j:?}");
    }

    #[test]
    fn a_window_short_of_samples_is_inconclusive_not_a_pass() {
        // 9 samples a second: a 10 s window holds 90, short of a p95's 100.
        let secs = seconds(&[(0, 40, 9, 100)]);
        let o = objective("latency_ms.first_token.p95", 300.0);
        let j = run(&o, &secs, (0, 39));
        assert_eq!(j.level, Level::Inconclusive, "{j:?}");
        assert_eq!(j.window.as_ref().unwrap().inconclusive, 31);
        // At 10 a second every window decides, and passes.
        let secs = seconds(&[(0, 40, 10, 100)]);
        let j = run(&o, &secs, (0, 39));
        assert_eq!(j.level, Level::Ok, "{j:?}");
        let w = j.window.unwrap();
        assert_eq!((w.breached, w.inconclusive, w.windows), (0, 0, 31));
    }

    #[test]
    fn a_silent_stretch_is_a_window_without_samples() {
        // Nothing ended in seconds 10-29: those windows cannot pass.
        let secs = seconds(&[(0, 10, 20, 100), (30, 40, 20, 100)]);
        let o = objective("latency_ms.first_token.p95", 300.0);
        let j = run(&o, &secs, (0, 39));
        assert_eq!(j.level, Level::Inconclusive, "{j:?}");
        assert_eq!(j.samples, Some(0));
        let w = j.window.unwrap();
        assert!(w.from_s >= 10 && w.to_s <= 30, "{w:?}");
    }

    #[test]
    fn a_run_shorter_than_its_window_is_one_window() {
        let secs = seconds(&[(0, 6, 20, 100)]);
        let o = objective("latency_ms.first_token.p95", 300.0);
        let j = run(&o, &secs, (0, 5));
        let w = j.window.clone().unwrap();
        assert!(w.short);
        assert_eq!((w.windows, w.from_s, w.to_s), (1, 0, 6));
        assert_eq!(j.samples, Some(120));
        assert_eq!(j.level, Level::Ok, "{j:?}");
    }

    #[test]
    fn the_sliding_sum_equals_each_window_summed_anew() {
        // Different counts and values each second: every window's
        // deciding figures match a sum made from scratch.
        let secs: Vec<Second> = (0..30u64)
            .map(|t| {
                let mut h = LatencyHistogram::new();
                h.record_us_n((50 + t * 7 % 13 * 20) * 1000, 15 + t % 4);
                (t, h)
            })
            .collect();
        let o = objective("latency_ms.first_token.p95", 1000.0);
        let j = run(&o, &secs, (0, 29));
        let w = j.window.clone().unwrap();
        let mut fresh = LatencyHistogram::new();
        for (t, h) in &secs {
            if (w.from_s..w.to_s).contains(t) {
                fresh.add(h);
            }
        }
        assert_eq!(j.samples, Some(fresh.len()));
        assert_eq!(
            j.value,
            Some(
                crate::aggregate::LatencyFigures::of(&fresh, None)
                    .p95
                    .unwrap()
            )
        );
    }
}
