//! The guide's alert rules ([`super::rules`]) evaluated as Prometheus does,
//! on successive scrapes of the target's `/metrics`: rates as increases
//! over the window (counter resets included), the histogram's p95 by
//! linear interpolation within its bucket, gauges at their last sample,
//! and an alert pending while its expression holds, firing once it has
//! held for the rule's `for`, resolved at the first evaluation where it no
//! longer holds.

use super::rules::{Rule, Signal, Timing};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A sample's labels, in the order written.
pub type Labels = Vec<(String, String)>;

/// One sample of the text exposition format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of a `/metrics` answer (Prometheus text format 0.0.4 and
/// OpenMetrics text): comments skipped, timestamps ignored.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}: {line:?}", i + 1);
        let (name, labels, rest) = match line.find(['{', ' ']) {
            Some(b) if line.as_bytes()[b] == b'{' => {
                let close = closing_brace(&line[b..]).ok_or_else(|| bad("no closing brace"))? + b;
                (
                    &line[..b],
                    parse_labels(&line[b + 1..close]).map_err(|e| bad(&e))?,
                    &line[close + 1..],
                )
            }
            Some(b) => (&line[..b], Vec::new(), &line[b..]),
            None => return Err(bad("no value")),
        };
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|_| bad("not a number"))?,
        };
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(out)
}

/// Where the label set that `s` opens ends: its first `}` outside a
/// quoted value (a value may hold `}`, and `\"` does not end it).
fn closing_brace(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_labels(s: &str) -> Result<Labels, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("a label without '='")?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let body = after
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("a label value cut short".into()),
                },
                Some((j, '"')) => break j,
                Some((_, c)) => value.push(c),
                None => return Err("a label value without its closing quote".into()),
            }
        };
        out.push((key, value));
        rest = body[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Ok(out)
}

/// An alert as it went: when its expression started to hold, when it
/// fired, when it resolved. Times in seconds on the run's time base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertRecord {
    pub name: String,
    // `warning` or `critical` for our rules (`AlertSeverity`); a
    // Prometheus alert's `severity` label as it is, whatever its rules
    // say, so a string.
    pub severity: String,
    /// Alerts on the same figure share a family (`errors`, `first_token`,
    /// `kb_cache`, `active_streams`, ...).
    pub family: String,
    /// Who evaluated it: `builtin` (the load generator, on the target's
    /// `/metrics`) or `prometheus` (read from its alerts API).
    #[schemars(with = "String")]
    pub source: AlertSource,
    /// When its expression started to hold (pending).
    pub active_at_s: f64,
    pub firing_at_s: f64,
    /// `None`: still firing when the run ended.
    pub resolved_at_s: Option<f64>,
    /// The signal's value when it fired (a ratio, seconds or a count).
    pub value: Option<f64>,
}

/// Who evaluated an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSource {
    Builtin,
    Prometheus,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Builtin => "builtin",
            AlertSource::Prometheus => "prometheus",
        }
    }
}

/// One scrape: when, and what it read.
struct Scrape {
    t: f64,
    samples: Vec<Sample>,
}

#[derive(Clone, Copy, Debug, Default)]
struct State {
    /// Pending or firing since.
    active_at: Option<f64>,
    /// Index into `records` once fired.
    firing: Option<usize>,
}

/// The built-in evaluation of the guide's rules over a run.
pub struct Evaluator {
    rules: Vec<Rule>,
    timing: Timing,
    history: VecDeque<Scrape>,
    state: Vec<State>,
    records: Vec<AlertRecord>,
}

impl Evaluator {
    pub fn new(timing: Timing) -> Evaluator {
        let rules = super::rules::guide();
        Evaluator {
            state: vec![State::default(); rules.len()],
            rules,
            timing,
            history: VecDeque::new(),
            records: Vec::new(),
        }
    }

    /// Takes a scrape read at `t` and evaluates every rule on the window
    /// that ends there.
    pub fn observe(&mut self, t: f64, samples: Vec<Sample>) {
        self.history.push_back(Scrape { t, samples });
        let window = self.timing.window_s();
        while self.history.front().is_some_and(|s| s.t <= t - window) {
            self.history.pop_front();
        }
        for i in 0..self.rules.len() {
            let value = signal(self.rules[i].signal, &self.history);
            let rule = &self.rules[i];
            let holds = value.is_some_and(|v| {
                let past = |limit: f64| if rule.above { v > limit } else { v < limit };
                past(rule.threshold) && !rule.ceiling.is_some_and(past)
            });
            let st = &mut self.state[i];
            if holds {
                let since = *st.active_at.get_or_insert(t);
                if st.firing.is_none() && t - since >= self.timing.for_s(rule) - 1e-9 {
                    st.firing = Some(self.records.len());
                    self.records.push(AlertRecord {
                        name: rule.name.to_owned(),
                        severity: rule.severity.as_str().to_owned(),
                        family: rule.family.to_owned(),
                        source: AlertSource::Builtin,
                        active_at_s: since,
                        firing_at_s: t,
                        resolved_at_s: None,
                        value,
                    });
                }
            } else {
                if let Some(r) = st.firing {
                    self.records[r].resolved_at_s = Some(t);
                }
                *st = State::default();
            }
        }
    }

    /// The alerts that fired, in firing order.
    pub fn records(&self) -> &[AlertRecord] {
        &self.records
    }
}

/// The family of a rule by its alert name (`None`: not one of ours).
pub fn family_of(name: &str) -> Option<&'static str> {
    super::rules::guide()
        .into_iter()
        .find(|r| r.name == name)
        .map(|r| r.family)
}

/// A signal's value on the window, or `None` where Prometheus would have
/// no sample (fewer than two scrapes, no traffic: 0/0).
fn signal(signal: Signal, h: &VecDeque<Scrape>) -> Option<f64> {
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    match signal {
        Signal::ErrorRatio | Signal::SuccessRatio => {
            let failed = increase(h, "chatbot_requests_failed_total", &[])?;
            let success = increase(h, "chatbot_requests_success_total", &[])?;
            let part = if signal == Signal::ErrorRatio {
                failed
            } else {
                success
            };
            ratio(part, failed + success)
        }
        Signal::CacheHitRatio(cache) => {
            let hits = increase(h, "chatbot_cache_hits_total", &[("cache", cache)])?;
            let misses = increase(h, "chatbot_cache_misses_total", &[("cache", cache)])?;
            ratio(hits, hits + misses)
        }
        Signal::LatencyP95(stage) => p95(h, stage),
        Signal::ActiveStreams => last(h, "chatbot_active_streams"),
        Signal::MemoryRatio => ratio(
            last(h, "process_resident_memory_bytes")?,
            last(h, "process_memory_limit_bytes")?,
        ),
        Signal::CpuRatio => last(h, "process_cpu_usage_ratio"),
    }
}

fn matching<'a>(
    s: &'a Scrape,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    s.samples
        .iter()
        .filter(move |x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == Some(v)))
}

/// The summed increase of every series of `name` matching `labels` over
/// the scrapes of the window, each series' resets counted as Prometheus
/// does (a drop starts again from zero).
fn increase(h: &VecDeque<Scrape>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    if h.len() < 2 {
        return None;
    }
    // Per series: its labels, its last value, its increase so far.
    let mut series: Vec<(&Labels, f64, f64)> = Vec::new();
    let mut seen = false;
    for s in h {
        for x in matching(s, name, labels) {
            seen = true;
            match series.iter_mut().find(|(l, _, _)| **l == x.labels) {
                Some((_, last, sum)) => {
                    *sum += if x.value < *last {
                        x.value
                    } else {
                        x.value - *last
                    };
                    *last = x.value;
                }
                None => series.push((&x.labels, x.value, 0.0)),
            }
        }
    }
    seen.then(|| series.iter().map(|(_, _, sum)| sum).sum())
}

fn last(h: &VecDeque<Scrape>, name: &str) -> Option<f64> {
    h.back()
        .and_then(|s| matching(s, name, &[]).next())
        .map(|x| x.value)
}

/// `histogram_quantile(0.95, sum by (le) (rate(chatbot_latency_seconds_bucket{stage}[w])))`.
fn p95(h: &VecDeque<Scrape>, stage: &str) -> Option<f64> {
    const BUCKET: &str = "chatbot_latency_seconds_bucket";
    // Each bound as written (the label to match) and as a number.
    let mut les: Vec<(f64, &str)> = h
        .iter()
        .flat_map(|s| matching(s, BUCKET, &[]))
        .filter(|x| x.label("stage") == Some(stage))
        .filter_map(|x| {
            let le = x.label("le")?;
            let v = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((v, le))
        })
        .collect();
    les.sort_by(|a, b| a.0.total_cmp(&b.0));
    les.dedup();
    let buckets: Vec<(f64, f64)> = les
        .into_iter()
        .map(|(v, le)| {
            let n = increase(h, BUCKET, &[("stage", stage), ("le", le)]);
            (v, n.unwrap_or(0.0))
        })
        .collect();
    quantile(0.95, &buckets)
}

/// Prometheus's `histogram_quantile` on cumulative buckets `(le, count)`.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last().filter(|(le, _)| le.is_infinite())?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let i = buckets.iter().position(|(_, c)| *c >= rank)?;
    if buckets[i].0.is_infinite() {
        // In the +Inf bucket: the highest finite bound.
        return buckets
            .iter()
            .rev()
            .find(|(le, _)| le.is_finite())
            .map(|b| b.0);
    }
    let (lo, below) = if i == 0 {
        (0.0, 0.0)
    } else {
        (buckets[i - 1].0, buckets[i - 1].1)
    };
    let (hi, count) = buckets[i];
    if count - below <= 0.0 {
        return Some(hi);
    }
    Some(lo + (hi - lo) * (rank - below) / (count - below))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(total: u64, failed: u64, active: u64, slow: u64) -> Vec<Sample> {
        let text = format!(
            "# HELP chatbot_requests Requests.\n# TYPE chatbot_requests counter\n\
             chatbot_requests_total {total}\nchatbot_requests_failed_total {failed}\n\
             chatbot_requests_success_total {}\nchatbot_active_streams {active}\n\
             chatbot_cache_hits_total{{cache=\"kb\"}} {}\nchatbot_cache_misses_total{{cache=\"kb\"}} {}\n\
             chatbot_latency_seconds_bucket{{le=\"0.5\",stage=\"first_token\"}} {}\n\
             chatbot_latency_seconds_bucket{{le=\"1.0\",stage=\"first_token\"}} {}\n\
             chatbot_latency_seconds_bucket{{le=\"2.5\",stage=\"first_token\"}} {total}\n\
             chatbot_latency_seconds_bucket{{le=\"+Inf\",stage=\"first_token\"}} {total}\n",
            total - failed,
            total / 2,
            total - total / 2,
            total - slow,
            total - slow,
        );
        parse_exposition(&text).unwrap()
    }

    #[test]
    fn exposition_lines_with_labels_escapes_and_timestamps() {
        let s = parse_exposition(
            "# TYPE x counter\nx_total 3 1700000000000\ny{a=\"1\",b=\"q\\\"uote\"} 2.5\nz{} +Inf\nw{path=\"/a}b\\\"}\"} 4\n",
        )
        .unwrap();
        assert_eq!(s.len(), 4);
        // A `}` inside a quoted value is not the label set's end.
        assert_eq!(s[3].labels[0], ("path".into(), "/a}b\"}".into()));
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].labels[1], ("b".into(), "q\"uote".into()));
        assert!(s[2].value.is_infinite());
        let e = parse_exposition("ok 1\nbroken{a=\"1\" 2\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn histogram_quantile_as_prometheus() {
        // 100 observations: 50 under 0.5 s, 40 in (0.5, 1], 10 in (1, 2.5].
        let b = [
            (0.5, 50.0),
            (1.0, 90.0),
            (2.5, 100.0),
            (f64::INFINITY, 100.0),
        ];
        // rank 95 lies half-way into the (1, 2.5] bucket.
        assert!((quantile(0.95, &b).unwrap() - 1.75).abs() < 1e-9);
        assert_eq!(quantile(0.5, &b), Some(0.5));
        let over = [(0.5, 0.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(0.95, &over), Some(0.5));
        assert_eq!(quantile(0.95, &[(0.5, 0.0), (f64::INFINITY, 0.0)]), None);
    }

    #[test]
    fn an_error_spike_pends_fires_and_resolves_on_the_rules_timing() {
        let timing = Timing {
            scale: 0.05, // a 15 s window, a 3 s `for`
            interval_s: 1.0,
        };
        let mut e = Evaluator::new(timing);
        let (mut total, mut failed) = (0, 0);
        for t in 0..60u64 {
            // 100 requests a second; 20 % fail from t = 10 to t = 20.
            total += 100;
            if (10..20).contains(&t) {
                failed += 20;
            }
            e.observe(t as f64, metrics(total, failed, 3, 0));
        }
        let crit = e
            .records()
            .iter()
            .find(|r| r.name == "ChatbotErrorRateCritical")
            .expect("the critical tier fired");
        // The window's ratio passes 5 % at t = 13 (80 failed of 1,300:
        // 13 increases since the first scrape), fires 3 s later, and falls
        // back under at t = 30 (60 of 1,400 once the window has left the
        // first failing seconds).
        assert_eq!((crit.active_at_s, crit.firing_at_s), (13.0, 16.0));
        assert_eq!(crit.resolved_at_s, Some(30.0));
        assert_eq!(crit.family, "errors");
        assert!(
            e.records()
                .iter()
                .any(|r| r.name == "ChatbotSuccessRateCritical")
        );
        // No other family fired: latency, cache and streams stayed normal.
        assert!(
            e.records().iter().all(|r| r.family == "errors"),
            "{:?}",
            e.records()
        );
        // A blip shorter than `for` never fires.
        let mut quiet = Evaluator::new(timing);
        for t in 0..10u64 {
            let active = if t == 4 { 900 } else { 3 };
            quiet.observe(t as f64, metrics(100 * (t + 1), 0, active, 0));
        }
        assert!(quiet.records().is_empty(), "{:?}", quiet.records());
    }

    #[test]
    fn slow_first_tokens_fire_the_latency_alert() {
        let timing = Timing {
            scale: 0.05,
            interval_s: 1.0,
        };
        let mut e = Evaluator::new(timing);
        let (mut total, mut slow) = (0, 0);
        for t in 0..20u64 {
            total += 100;
            if t >= 5 {
                slow += 10; // 10 % between 1 and 2.5 s: p95 1.75 s
            }
            e.observe(t as f64, metrics(total, 0, 3, slow));
        }
        let names: Vec<&str> = e.records().iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"ChatbotFirstTokenLatencyHigh"), "{names:?}");
        assert!(
            !names.contains(&"ChatbotFirstTokenLatencyCritical"),
            "{names:?}"
        );
    }
}
