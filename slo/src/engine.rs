//! The engine's own metrics beside the client's: any Prometheus endpoint
//! read during the run (`[[scrape]]` in the scenario), its series kept as
//! they came (`engine.jsonl` in the run folder) and summed up over the
//! measured part: a gauge's min, max, mean and last; a counter's increase
//! and rate; a histogram's percentiles from its buckets' increase (as
//! Prometheus's `histogram_quantile` over the run); a ratio of two
//! counters' increases (a prefix cache's hit rate). Presets name the
//! series of vLLM, SGLang, TGI and NVIDIA's DCGM exporter; objectives
//! judge them by path, `SCRAPE.SERIES.FIGURE` (`vllm.queue.max`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A `[[scrape]]` entry of a scenario.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// What its series are called in objectives and reports: `vllm` makes
    /// `vllm.queue.max`. Letters, digits, `_` and `-`.
    pub name: String,
    /// The endpoint, e.g. `http://gpu-node:9400/metrics`. Absent: the
    /// target's `/metrics`, with the target's headers and TLS trust.
    #[serde(default)]
    pub url: Option<String>,
    /// How often it is read (default 1 s; at least 100 ms).
    #[serde(default = "one_second", with = "crate::durations::duration_str")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// Request headers, `${NAME}` read from the environment (an
    /// exporter's token); never written to any output.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Named series of an engine: `vllm`, `sglang`, `tgi`, `dcgm`.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// More metrics to keep, each a series named after it: a counter
    /// without its `_total`, a histogram without `_bucket`.
    #[serde(default)]
    pub metrics: Vec<String>,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

/// The engines whose metrics a preset names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Vllm,
    Sglang,
    Tgi,
    Dcgm,
}

/// What a series is, and so which figures it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
    /// One counter's increase over another's (hits per query).
    Ratio,
}

impl Kind {
    /// The figures a series of this kind has, as objectives name them.
    pub fn figures(self) -> &'static [&'static str] {
        match self {
            Kind::Gauge => &["min", "max", "mean", "last"],
            Kind::Counter => &["increase", "rate"],
            Kind::Histogram => &["count", "mean", "p50", "p90", "p95", "p99"],
            Kind::Ratio => &["value"],
        }
    }
}

/// How one metric's label sets (one per model, per GPU, ...) make one
/// series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Across {
    /// Counts add up (requests waiting on every model).
    Sum,
    /// A share of a resource is as bad as its worst (the fullest GPU).
    Max,
}

/// A series a preset names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Named {
    pub name: &'static str,
    pub kind: Kind,
    /// The metric, or the names it went by in other versions (the first
    /// found is read); for a ratio, its numerator's.
    pub metrics: &'static [&'static str],
    /// A ratio's denominator's names.
    pub per: &'static [&'static str],
    pub across: Across,
    pub about: &'static str,
}

const fn series(
    name: &'static str,
    kind: Kind,
    metrics: &'static [&'static str],
    across: Across,
    about: &'static str,
) -> Named {
    Named {
        name,
        kind,
        metrics,
        per: &[],
        across,
        about,
    }
}

use Across::{Max, Sum};
use Kind::{Counter, Gauge, Histogram};

const VLLM: &[Named] = &[
    series(
        "queue",
        Gauge,
        &["vllm:num_requests_waiting"],
        Sum,
        "requests waiting to be scheduled",
    ),
    series(
        "running",
        Gauge,
        &["vllm:num_requests_running"],
        Sum,
        "requests being generated",
    ),
    series(
        "kv_cache_usage",
        Gauge,
        &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        Max,
        "KV cache in use, 0 to 1",
    ),
    Named {
        name: "prefix_cache_hit_rate",
        kind: Kind::Ratio,
        metrics: &["vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"],
        per: &["vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"],
        across: Sum,
        about: "prompt tokens found in the prefix cache per token looked up",
    },
    series(
        "first_token",
        Histogram,
        &["vllm:time_to_first_token_seconds"],
        Sum,
        "the engine's time to first token, seconds",
    ),
    series(
        "inter_token",
        Histogram,
        &[
            "vllm:inter_token_latency_seconds",
            "vllm:time_per_output_token_seconds",
        ],
        Sum,
        "the engine's time between tokens, seconds",
    ),
    series(
        "e2e",
        Histogram,
        &["vllm:e2e_request_latency_seconds"],
        Sum,
        "the engine's request latency, seconds",
    ),
    series(
        "prompt_tokens",
        Counter,
        &["vllm:prompt_tokens"],
        Sum,
        "prompt tokens processed",
    ),
    series(
        "generation_tokens",
        Counter,
        &["vllm:generation_tokens"],
        Sum,
        "tokens generated",
    ),
];

const SGLANG: &[Named] = &[
    series(
        "queue",
        Gauge,
        &["sglang:num_queue_reqs"],
        Sum,
        "requests in the waiting queue",
    ),
    series(
        "running",
        Gauge,
        &["sglang:num_running_reqs"],
        Sum,
        "requests being generated",
    ),
    series(
        "kv_cache_usage",
        Gauge,
        &["sglang:token_usage"],
        Max,
        "KV cache tokens in use, 0 to 1",
    ),
    series(
        "prefix_cache_hit_rate",
        Gauge,
        &["sglang:cache_hit_rate"],
        Max,
        "the prefix cache's hit rate, 0 to 1",
    ),
    series(
        "first_token",
        Histogram,
        &["sglang:time_to_first_token_seconds"],
        Sum,
        "the engine's time to first token, seconds",
    ),
    series(
        "inter_token",
        Histogram,
        &[
            "sglang:inter_token_latency_seconds",
            "sglang:time_per_output_token_seconds",
        ],
        Sum,
        "the engine's time between tokens, seconds",
    ),
    series(
        "e2e",
        Histogram,
        &["sglang:e2e_request_latency_seconds"],
        Sum,
        "the engine's request latency, seconds",
    ),
    series(
        "generation_tokens",
        Counter,
        &["sglang:generation_tokens"],
        Sum,
        "tokens generated",
    ),
];

const TGI: &[Named] = &[
    series(
        "queue",
        Gauge,
        &["tgi_queue_size"],
        Sum,
        "requests in the queue",
    ),
    series(
        "running",
        Gauge,
        &["tgi_batch_current_size"],
        Sum,
        "requests in the current batch",
    ),
    series(
        "queue_time",
        Histogram,
        &["tgi_request_queue_duration"],
        Sum,
        "time a request waited in the queue, seconds",
    ),
    series(
        "inter_token",
        Histogram,
        &["tgi_request_mean_time_per_token_duration"],
        Sum,
        "a request's mean time per token, seconds",
    ),
    series(
        "e2e",
        Histogram,
        &["tgi_request_duration"],
        Sum,
        "the engine's request latency, seconds",
    ),
    series(
        "generation_tokens",
        Counter,
        &["tgi_request_generated_tokens"],
        Sum,
        "tokens generated",
    ),
];

const DCGM: &[Named] = &[
    series(
        "gpu_utilization",
        Gauge,
        &["DCGM_FI_DEV_GPU_UTIL"],
        Max,
        "GPU utilization, percent (the busiest GPU)",
    ),
    series(
        "memory_used",
        Gauge,
        &["DCGM_FI_DEV_FB_USED"],
        Sum,
        "GPU memory in use, MiB (all GPUs)",
    ),
    series(
        "memory_free",
        Gauge,
        &["DCGM_FI_DEV_FB_FREE"],
        Sum,
        "GPU memory free, MiB (all GPUs)",
    ),
    series(
        "power",
        Gauge,
        &["DCGM_FI_DEV_POWER_USAGE"],
        Sum,
        "power drawn, W (all GPUs)",
    ),
    series(
        "temperature",
        Gauge,
        &["DCGM_FI_DEV_GPU_TEMP"],
        Max,
        "GPU temperature, °C (the hottest)",
    ),
];

impl Preset {
    pub fn series(self) -> &'static [Named] {
        match self {
            Preset::Vllm => VLLM,
            Preset::Sglang => SGLANG,
            Preset::Tgi => TGI,
            Preset::Dcgm => DCGM,
        }
    }
}

/// What a scrape entry keeps: its preset's series, then each of
/// `metrics` as a series of its own (its kind read from the endpoint's
/// `# TYPE`, so `None` until then).
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub name: String,
    pub kind: Option<Kind>,
    pub metrics: Vec<String>,
    pub per: Vec<String>,
    pub across: Across,
}

impl ScrapeConfig {
    pub fn wanted(&self) -> Vec<Wanted> {
        let mut out: Vec<Wanted> = self
            .preset
            .map(|p| p.series())
            .unwrap_or_default()
            .iter()
            .map(|n| Wanted {
                name: n.name.to_owned(),
                kind: Some(n.kind),
                metrics: n.metrics.iter().map(|m| (*m).to_owned()).collect(),
                per: n.per.iter().map(|m| (*m).to_owned()).collect(),
                across: n.across,
            })
            .collect();
        for m in &self.metrics {
            out.push(Wanted {
                name: m.clone(),
                kind: None,
                metrics: vec![m.clone()],
                per: Vec::new(),
                across: Sum,
            });
        }
        out
    }

    /// Every metric name any of its series reads.
    pub fn metric_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .wanted()
            .into_iter()
            .flat_map(|w| w.metrics.into_iter().chain(w.per))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Checks what a scenario file can get wrong, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if self.name.is_empty() || !self.name.chars().all(ok) {
            return Err(format!(
                "scrape.name {:?}: letters, digits, '_' and '-' only (it is the first part of an objective's path)",
                self.name
            ));
        }
        if self.interval < Duration::from_millis(100) {
            return Err(format!(
                "scrape {:?}: interval {:?} is under 100 ms",
                self.name, self.interval
            ));
        }
        if self.preset.is_none() && self.metrics.is_empty() {
            return Err(format!(
                "scrape {:?}: neither a preset nor metrics: nothing to keep (preset = \"vllm\", or metrics = [\"name\", ...])",
                self.name
            ));
        }
        if self.url.is_none() && !self.headers.is_empty() {
            return Err(format!(
                "scrape {:?}: headers without a url: the target's /metrics is read with the target's own headers; give url for an endpoint of its own",
                self.name
            ));
        }
        if let Some(url) = &self.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "scrape {:?}: url {url:?} is not an http:// or https:// URL",
                self.name
            ));
        }
        for m in &self.metrics {
            let first = m.chars().next().unwrap_or('0');
            let valid = (first.is_ascii_alphabetic() || first == '_' || first == ':')
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if !valid {
                return Err(format!(
                    "scrape {:?}: metrics: {m:?} is not a Prometheus metric name",
                    self.name
                ));
            }
        }
        let mut names: Vec<String> = self.wanted().into_iter().map(|w| w.name).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "scrape {:?}: two series named {:?}",
                self.name, w[0]
            ));
        }
        Ok(())
    }
}

/// Ok when `path` has the shape of an engine figure, `SCRAPE.SERIES.FIGURE`
/// with a figure some kind of series has (what an SLO file alone can
/// tell; the scenario's scrapes tell the rest: [`check_path`]).
pub fn check_shape(path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.splitn(3, '.').collect();
    let [_, _, figure] = parts[..] else {
        return Err(format!(
            "{path:?} is not SCRAPE.SERIES.FIGURE (e.g. vllm.queue.max)"
        ));
    };
    let all: Vec<&str> = [Gauge, Counter, Histogram, Kind::Ratio]
        .iter()
        .flat_map(|k| k.figures().iter().copied())
        .collect();
    if all.contains(&figure) {
        Ok(())
    } else {
        Err(format!(
            "{path:?}: {figure:?} is not a figure of any series (figures: {all:?})"
        ))
    }
}

/// Ok when `path` (`SCRAPE.SERIES.FIGURE`) names a figure the scenario's
/// scrapes can have; otherwise what to write instead.
pub fn check_path(scrapes: &[ScrapeConfig], path: &str) -> Result<(), String> {
    check_shape(path)?;
    let parts: Vec<&str> = path.splitn(3, '.').collect();
    let [scrape, series, figure] = parts[..] else {
        unreachable!("check_shape found three parts");
    };
    let Some(s) = scrapes.iter().find(|s| s.name == scrape) else {
        let names: Vec<&str> = scrapes.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "{path:?}: the scenario has no [[scrape]] named {scrape:?} (it has: {names:?})"
        ));
    };
    let wanted = s.wanted();
    let Some(w) = wanted.iter().find(|w| w.name == series) else {
        let names: Vec<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
        return Err(format!(
            "{path:?}: scrape {scrape:?} has no series {series:?} (it has: {names:?})"
        ));
    };
    let figures: Vec<&str> = match w.kind {
        Some(k) => k.figures().to_vec(),
        // Its kind is known once read: any kind's figure.
        None => [Gauge, Counter, Histogram]
            .iter()
            .flat_map(|k| k.figures().iter().copied())
            .collect(),
    };
    if figures.contains(&figure) {
        Ok(())
    } else {
        Err(format!(
            "{path:?}: {figure:?} is not a figure of {scrape}.{series} (it has: {figures:?})"
        ))
    }
}

/// One reading of one endpoint: when (seconds on the run's time base),
/// and the samples of the metrics kept, or why there were none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub scrape: String,
    pub t: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<KeptSample>,
    /// The kind each kept metric declared (`# TYPE`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A sample as read: its name, labels and value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptSample {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The samples of `names` in a `/metrics` answer (a counter's `_total`,
/// a histogram's `_bucket`, `_sum` and `_count` included) and the kinds
/// their `# TYPE` lines declare; an answer that is not the text format is
/// an error naming the line.
pub fn read(
    names: &[String],
    text: &str,
) -> Result<(Vec<KeptSample>, BTreeMap<String, Kind>), String> {
    let samples = crate::alerts::eval::parse_exposition(text)?;
    let kept = samples
        .into_iter()
        .filter(|s| names.iter().any(|n| belongs(&s.name, n)))
        .map(|s| KeptSample {
            name: s.name,
            labels: s.labels,
            value: s.value,
        })
        .collect();
    let mut kinds = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some("#"), Some("TYPE"), Some(family), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let kind = match kind {
            "gauge" => Gauge,
            "counter" => Counter,
            "histogram" => Histogram,
            _ => continue,
        };
        // A counter's family may be written with its `_total` or without.
        let family = family.strip_suffix("_total").unwrap_or(family);
        if names.iter().any(|n| n == family) {
            kinds.insert(family.to_owned(), kind);
        }
    }
    Ok((kept, kinds))
}

/// A series over the measured part of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeriesView {
    pub kind: Option<Kind>,
    /// The metric read (of the names the series goes by).
    pub metric: Option<String>,
    /// Its figures (`max`, `rate`, `p95`, ...); absent when not measured.
    pub figures: BTreeMap<String, f64>,
    /// `(t, value)`: a gauge's readings, a counter's rate between two, a
    /// histogram's p95 of what it counted between two; for drawing on the
    /// run's time axis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<(f64, f64)>,
    /// Why a figure is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// One `[[scrape]]` over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScrapeView {
    pub url: String,
    pub interval_s: f64,
    /// What was kept: the preset's series and `metrics`' (so `loadgen
    /// report` sums `engine.jsonl` up again as the run did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    /// Readings in the measured part, and how many of them failed.
    pub readings: u64,
    pub failed: u64,
    /// Each kind of failure once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    pub series: BTreeMap<String, SeriesView>,
}

impl ScrapeView {
    /// The entry this view was summed up by, named `name` (its headers
    /// left out: they are never written).
    pub fn config(&self, name: &str) -> ScrapeConfig {
        ScrapeConfig {
            name: name.to_owned(),
            url: Some(self.url.clone()),
            interval: Duration::from_secs_f64(self.interval_s.max(0.1)),
            headers: BTreeMap::new(),
            preset: self.preset,
            metrics: self.metrics.clone(),
        }
    }
}

/// The measured part on the run's time base: readings from the last one
/// at or before `from` (the increase's baseline) to the first at or
/// after `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub from: f64,
    pub to: f64,
}

impl Window {
    fn select<'a>(&self, readings: &'a [&'a Reading]) -> Vec<&'a Reading> {
        let ok: Vec<&Reading> = readings
            .iter()
            .copied()
            .filter(|r| r.error.is_none())
            .collect();
        let start = ok.iter().rposition(|r| r.t <= self.from).unwrap_or(0);
        let end = ok
            .iter()
            .position(|r| r.t >= self.to)
            .map_or(ok.len(), |i| i + 1);
        ok.get(start..end).map(<[_]>::to_vec).unwrap_or_default()
    }
}

/// Sums up one scrape's readings over `window`.
pub fn summarize(
    config: &ScrapeConfig,
    url: &str,
    readings: &[Reading],
    window: Window,
) -> ScrapeView {
    let mine: Vec<&Reading> = readings
        .iter()
        .filter(|r| r.scrape == config.name)
        .collect();
    let inside: Vec<&Reading> = mine
        .iter()
        .copied()
        .filter(|r| r.t >= window.from && r.t <= window.to)
        .collect();
    let mut problems: Vec<String> = Vec::new();
    for r in &inside {
        if let Some(e) = &r.error
            && !problems.contains(e)
        {
            problems.push(e.clone());
        }
    }
    let used = window.select(&mine);
    let kinds: BTreeMap<String, Kind> = used
        .iter()
        .flat_map(|r| r.types.iter().map(|(k, v)| (k.clone(), *v)))
        .collect();
    let series = config
        .wanted()
        .into_iter()
        .map(|w| {
            let view = series_view(&w, &used, &kinds);
            (w.name, view)
        })
        .collect();
    ScrapeView {
        url: url.to_owned(),
        interval_s: config.interval.as_secs_f64(),
        preset: config.preset,
        metrics: config.metrics.clone(),
        readings: inside.len() as u64,
        failed: inside.iter().filter(|r| r.error.is_some()).count() as u64,
        problems,
        series,
    }
}

fn series_view(w: &Wanted, used: &[&Reading], kinds: &BTreeMap<String, Kind>) -> SeriesView {
    let present = |names: &[String]| -> Option<String> {
        names
            .iter()
            .find(|n| {
                used.iter()
                    .any(|r| r.samples.iter().any(|s| belongs(&s.name, n)))
            })
            .cloned()
    };
    let mut v = SeriesView::default();
    let Some(metric) = present(&w.metrics) else {
        v.missing = Some(format!(
            "none of {:?} in the readings of the measured part",
            w.metrics
        ));
        return v;
    };
    let kind = w.kind.or_else(|| kinds.get(&metric).copied());
    v.kind = kind;
    v.metric = Some(metric.clone());
    if used.len() < 2 && kind != Some(Gauge) {
        v.missing = Some("fewer than two readings in the measured part: no increase".into());
        return v;
    }
    match kind {
        Some(Gauge) => gauge(&mut v, w.across, &metric, used),
        Some(Counter) => counter(&mut v, &metric, used),
        Some(Histogram) => histogram(&mut v, &metric, used),
        Some(Kind::Ratio) => match present(&w.per) {
            Some(per) => {
                let (num, den) = (increase(&metric, used), increase(&per, used));
                if den > 0.0 {
                    v.figures.insert("value".into(), num / den);
                } else {
                    v.missing = Some(format!("{per} did not grow in the measured part"));
                }
            }
            None => v.missing = Some(format!("none of {:?} in the readings", w.per)),
        },
        None => {
            v.missing = Some(format!(
                "{metric} has no # TYPE of gauge, counter or histogram: its figures are unknown"
            ));
        }
    }
    v
}

/// Whether a sample named `sample` is of the metric `metric`.
fn belongs(sample: &str, metric: &str) -> bool {
    sample == metric
        || ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| sample.strip_suffix(suffix) == Some(metric))
}

/// The plain samples of `metric` in one reading (a counter's with or
/// without `_total`).
fn plain<'a>(metric: &'a str, r: &'a Reading) -> impl Iterator<Item = &'a KeptSample> {
    r.samples
        .iter()
        .filter(move |s| s.name == metric || s.name.strip_suffix("_total") == Some(metric))
}

fn gauge(v: &mut SeriesView, across: Across, metric: &str, used: &[&Reading]) {
    for r in used {
        let values: Vec<f64> = plain(metric, r).map(|s| s.value).collect();
        if values.is_empty() {
            continue;
        }
        let x = match across {
            Sum => values.iter().sum(),
            Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        };
        v.points.push((r.t, x));
    }
    let xs: Vec<f64> = v.points.iter().map(|p| p.1).collect();
    if xs.is_empty() {
        v.missing = Some(format!("no sample of {metric} in the measured part"));
        return;
    }
    let f = &mut v.figures;
    f.insert(
        "min".into(),
        xs.iter().copied().fold(f64::INFINITY, f64::min),
    );
    f.insert(
        "max".into(),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    f.insert("mean".into(), xs.iter().sum::<f64>() / xs.len() as f64);
    f.insert("last".into(), xs[xs.len() - 1]);
}

/// A counter's total over the readings: the sum over label sets, its
/// increase from reading to reading, a drop read as a restart from 0.
fn increase(metric: &str, used: &[&Reading]) -> f64 {
    steps(used, |r| total(metric, r)).iter().map(|s| s.1).sum()
}

/// A counter's value in one reading, summed over its label sets; `None`
/// when the reading has none of it.
fn total(metric: &str, r: &Reading) -> Option<f64> {
    let mut it = plain(metric, r).peekable();
    it.peek()?;
    Some(it.map(|s| s.value).sum())
}

/// `(t, increase since the reading before)` for each reading after the
/// first that has a value.
fn steps(used: &[&Reading], value: impl Fn(&Reading) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut last: Option<f64> = None;
    for r in used {
        let Some(x) = value(r) else { continue };
        if let Some(prev) = last {
            out.push((r.t, if x >= prev { x - prev } else { x }));
        }
        last = Some(x);
    }
    out
}

fn counter(v: &mut SeriesView, metric: &str, used: &[&Reading]) {
    let s = steps(used, |r| total(metric, r));
    let (Some(first), Some(last)) = (
        used.iter().find(|r| plain(metric, r).next().is_some()),
        used.iter()
            .rev()
            .find(|r| plain(metric, r).next().is_some()),
    ) else {
        v.missing = Some(format!("no sample of {metric} in the measured part"));
        return;
    };
    let total: f64 = s.iter().map(|x| x.1).sum();
    let span = last.t - first.t;
    v.figures.insert("increase".into(), total);
    if span > 0.0 {
        v.figures.insert("rate".into(), total / span);
    }
    let mut prev_t = first.t;
    for (t, d) in s {
        if t > prev_t {
            v.points.push((t, d / (t - prev_t)));
        }
        prev_t = t;
    }
}

/// A histogram in one reading: its cumulative buckets `(upper bound,
/// count)` by bound, its `_sum` and its `_count`.
type Snapshot = (Vec<(f64, f64)>, f64, f64);

/// A histogram's snapshot in one reading, summed over label sets.
fn buckets(metric: &str, r: &Reading) -> Option<Snapshot> {
    let bucket = format!("{metric}_bucket");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let (mut sum, mut count, mut any) = (0.0, 0.0, false);
    for s in &r.samples {
        if s.name == bucket {
            let le = s.labels.iter().find(|(k, _)| k == "le")?.1.as_str();
            let bound = match le {
                "+Inf" | "Inf" | "inf" => f64::INFINITY,
                x => x.parse::<f64>().ok()?,
            };
            let e = by_le.entry(order_key(bound)).or_insert((bound, 0.0));
            e.1 += s.value;
            any = true;
        } else if s.name.strip_suffix("_sum") == Some(metric) {
            sum += s.value;
        } else if s.name.strip_suffix("_count") == Some(metric) {
            count += s.value;
        }
    }
    any.then(|| (by_le.into_values().collect(), sum, count))
}

/// An order-preserving key of a non-negative bound (bucket bounds are
/// latencies, sizes: not negative).
fn order_key(x: f64) -> u64 {
    if x.is_sign_negative() { 0 } else { x.to_bits() }
}

fn histogram(v: &mut SeriesView, metric: &str, used: &[&Reading]) {
    let timed: Vec<(f64, Snapshot)> = used
        .iter()
        .filter_map(|r| buckets(metric, r).map(|b| (r.t, b)))
        .collect();
    // Drawn: the p95 of what each interval between two readings added
    // (an interval that added nothing, or across a restart, has none).
    for w in timed.windows(2) {
        let ((_, before), (t, after)) = (&w[0], &w[1]);
        if after.2 < before.2 {
            continue;
        }
        if let Some(x) = bucket_quantile(0.95, &delta_of(&after.0, &before.0)) {
            v.points.push((*t, x));
        }
    }
    let snaps: Vec<Snapshot> = timed.into_iter().map(|(_, b)| b).collect();
    let (Some(first), Some(last)) = (snaps.first(), snaps.last()) else {
        v.missing = Some(format!("no bucket of {metric} in the measured part"));
        return;
    };
    if snaps.len() < 2 {
        v.missing = Some(format!("one reading of {metric}: no increase"));
        return;
    }
    // The increase from the first reading to the last. A count that fell
    // is an engine that restarted: what it counted since then is the
    // last reading's (what it counted before the restart is lost with it).
    let restarted = snaps.windows(2).any(|w| w[1].2 < w[0].2);
    let (delta, sum, count): (Vec<(f64, f64)>, f64, f64) = if restarted {
        (last.0.clone(), last.1, last.2)
    } else {
        (
            delta_of(&last.0, &first.0),
            last.1 - first.1,
            last.2 - first.2,
        )
    };
    v.figures.insert("count".into(), count);
    if count > 0.0 {
        v.figures.insert("mean".into(), sum / count);
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)] {
            if let Some(x) = bucket_quantile(q, &delta) {
                v.figures.insert(name.into(), x);
            }
        }
    }
}

/// What cumulative buckets `after` counted since `before`, bound by bound.
fn delta_of(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(le, c)| {
            let b = before.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1);
            (*le, c - b)
        })
        .collect()
}

/// The `q`-quantile of cumulative buckets `(upper bound, count)` sorted by
/// bound, as Prometheus's `histogram_quantile` computes it: linear
/// within the bucket the rank falls in (from 0 for the first bucket, when
/// its bound is positive); in the `+Inf` bucket, the highest finite bound.
pub fn bucket_quantile(q: f64, cumulative: &[(f64, f64)]) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total;
    let i = cumulative.iter().position(|(_, c)| *c >= rank)?;
    let (upper, count) = cumulative[i];
    if upper.is_infinite() {
        return cumulative[..i].last().map(|(b, _)| *b);
    }
    let (lower, below) = if i == 0 {
        (if upper > 0.0 { 0.0 } else { upper }, 0.0)
    } else {
        cumulative[i - 1]
    };
    if count - below <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / (count - below))
}

/// The engine series that moved most over the measured part, in words:
/// of every series with points (a gauge's readings, a counter's rate, a
/// histogram's p95 between two readings), the one whose mean over the
/// last quarter of its points differs most from its mean over the first
/// quarter, relative to the larger of the two;
/// `None` when none moved by a fifth or more (or none has 8 points).
pub fn moved_most(views: &BTreeMap<String, ScrapeView>) -> Option<String> {
    let mut best: Option<(f64, String)> = None;
    for (name, view) in views {
        for (series, v) in &view.series {
            let n = v.points.len();
            if n < 8 {
                continue;
            }
            let mean = |p: &[(f64, f64)]| p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64;
            let (from, to) = (mean(&v.points[..n / 4]), mean(&v.points[n - n / 4..]));
            let scale = from.abs().max(to.abs());
            if scale <= 0.0 {
                continue;
            }
            let moved = (to - from).abs() / scale;
            if moved >= 0.2 && best.as_ref().is_none_or(|b| moved > b.0) {
                let unit = if v.kind == Some(Counter) { "/s" } else { "" };
                best = Some((
                    moved,
                    format!(
                        "{name}.{series} moved most: {}{unit} in the first quarter of the run, {}{unit} in the last",
                        round(from),
                        round(to)
                    ),
                ));
            }
        }
    }
    best.map(|b| b.1)
}

/// Three significant digits, as reports write a figure.
fn round(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// The engine figures as objectives read them: `{scrape: {series:
/// {figure: value}}}`.
pub fn document(views: &BTreeMap<String, ScrapeView>) -> serde_json::Value {
    serde_json::Value::Object(
        views
            .iter()
            .map(|(name, v)| {
                let series = v
                    .series
                    .iter()
                    .map(|(s, sv)| (s.clone(), serde_json::json!(sv.figures)))
                    .collect();
                (name.clone(), serde_json::Value::Object(series))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample as a test writes it: name, labels, value.
    type Raw<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

    fn reading(t: f64, samples: &[Raw]) -> Reading {
        Reading {
            scrape: "e".into(),
            t,
            samples: samples
                .iter()
                .map(|(n, l, v)| KeptSample {
                    name: (*n).into(),
                    labels: l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
                    value: *v,
                })
                .collect(),
            types: BTreeMap::new(),
            error: None,
        }
    }

    fn config(preset: Option<Preset>, metrics: &[&str]) -> ScrapeConfig {
        ScrapeConfig {
            name: "e".into(),
            url: None,
            interval: Duration::from_secs(1),
            headers: BTreeMap::new(),
            preset,
            metrics: metrics.iter().map(|m| (*m).into()).collect(),
        }
    }

    #[test]
    fn a_histograms_percentile_is_its_buckets_increase_interpolated() {
        // 100 observations before the run; in it, 40 in (0, 0.1], 50 in
        // (0.1, 0.5], 10 in (0.5, 1]: 100 in all, over two models.
        let before = [("0.1", 30.0), ("0.5", 80.0), ("1", 100.0), ("+Inf", 100.0)];
        let during = [("0.1", 40.0), ("0.5", 50.0), ("1", 10.0), ("+Inf", 0.0)];
        let mut cumulative = 0.0;
        let mut samples = Vec::new();
        let mut first = Vec::new();
        for ((le, b), (_, d)) in before.iter().zip(&during) {
            cumulative += d;
            // Split between two label sets: 3/4 and 1/4.
            for (model, share) in [("a", 0.75), ("b", 0.25)] {
                samples.push((
                    "ttft_bucket",
                    vec![("le", *le), ("model", model)],
                    (b + cumulative) * share,
                ));
                first.push((
                    "ttft_bucket",
                    vec![("le", *le), ("model", model)],
                    b * share,
                ));
            }
        }
        let as_reading = |t: f64, v: &[Raw], sum: f64, count: f64| {
            let mut all = vec![("ttft_sum", vec![], sum), ("ttft_count", vec![], count)];
            all.extend(v.iter().cloned());
            reading(t, &all)
        };
        let readings = vec![
            as_reading(0.0, &first, 20.0, 100.0),
            as_reading(10.0, &samples, 45.0, 200.0),
        ];
        let mut c = config(None, &["ttft"]);
        c.name = "e".into();
        let mut r = readings.clone();
        r[0].types.insert("ttft".into(), Histogram);
        let v = summarize(
            &c,
            "u",
            &r,
            Window {
                from: 0.0,
                to: 10.0,
            },
        );
        let f = &v.series["ttft"].figures;
        // Ranks: p50 = 50th of 100: 40 below 0.1, so 10 of the 50 in
        // (0.1, 0.5]: 0.1 + 0.4 × 10/50 = 0.18. p95 = 95th: 90 below 0.5,
        // 5 of 10 in (0.5, 1]: 0.75. p90 = 90th: exactly 0.5.
        assert!((f["p50"] - 0.18).abs() < 1e-12, "{f:?}");
        assert!((f["p90"] - 0.5).abs() < 1e-12, "{f:?}");
        assert!((f["p95"] - 0.75).abs() < 1e-12, "{f:?}");
        assert_eq!((f["count"], f["mean"]), (100.0, 0.25));
        // Drawn: the p95 of what each interval added, at its end.
        let points = &v.series["ttft"].points;
        assert_eq!(points.len(), 1, "{points:?}");
        assert_eq!(points[0].0, 10.0);
        assert!((points[0].1 - 0.75).abs() < 1e-12, "{points:?}");
    }

    #[test]
    fn the_quantile_of_the_inf_bucket_is_the_highest_bound() {
        let c = [(0.1, 1.0), (1.0, 2.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &c), Some(1.0));
        assert_eq!(bucket_quantile(0.05, &c), Some(0.05));
        assert_eq!(bucket_quantile(0.5, &[(1.0, 0.0)]), None);
    }

    #[test]
    fn gauges_counters_and_a_ratio_over_the_measured_part() {
        let mut c = config(Some(Preset::Vllm), &[]);
        c.name = "e".into();
        let q = |t: f64, waiting: f64, hits: f64, queries: f64| {
            reading(
                t,
                &[
                    (
                        "vllm:num_requests_waiting",
                        vec![("model_name", "m")],
                        waiting,
                    ),
                    ("vllm:prefix_cache_hits_total", vec![], hits),
                    ("vllm:prefix_cache_queries_total", vec![], queries),
                    ("vllm:generation_tokens_total", vec![], hits * 2.0),
                ],
            )
        };
        // Before the measured part (its baseline), in it, after it.
        let readings = vec![
            q(-1.0, 9.0, 0.0, 0.0),
            q(0.5, 2.0, 10.0, 100.0),
            q(1.5, 6.0, 40.0, 200.0),
            // The engine restarted: its counters from 0.
            q(2.5, 4.0, 30.0, 100.0),
            q(3.5, 0.0, 50.0, 150.0),
            q(9.0, 100.0, 1000.0, 1000.0),
        ];
        let v = summarize(&c, "u", &readings, Window { from: 0.0, to: 3.5 });
        let s = &v.series;
        let queue = &s["queue"].figures;
        // Readings from the last before 0 to the first at or after 3.5.
        assert_eq!((queue["min"], queue["max"], queue["last"]), (0.0, 9.0, 0.0));
        assert_eq!(queue["mean"], (9.0 + 2.0 + 6.0 + 4.0 + 0.0) / 5.0);
        // Hits: +10 +30 +30 (restart) +20 = 90 of 100+100+100+50.
        assert_eq!(s["prefix_cache_hit_rate"].figures["value"], 90.0 / 350.0);
        let generated = &s["generation_tokens"].figures;
        assert_eq!(generated["increase"], 180.0);
        assert_eq!(generated["rate"], 180.0 / 4.5);
        assert!(s["first_token"].missing.is_some(), "no histogram read");
        assert_eq!(v.readings, 4);
    }

    #[test]
    fn the_series_that_moved_most_is_named() {
        let series = |points: Vec<(f64, f64)>, kind: Kind| SeriesView {
            kind: Some(kind),
            points,
            ..SeriesView::default()
        };
        let line = |from: f64, to: f64| -> Vec<(f64, f64)> {
            (0..12)
                .map(|i| (f64::from(i), from + (to - from) * f64::from(i) / 11.0))
                .collect()
        };
        let mut view = ScrapeView::default();
        view.series
            .insert("queue".into(), series(line(2.0, 30.0), Gauge));
        view.series
            .insert("running".into(), series(line(10.0, 11.0), Gauge));
        view.series
            .insert("tokens".into(), series(line(100.0, 60.0), Counter));
        let views = BTreeMap::from([("vllm".to_owned(), view)]);
        let said = moved_most(&views).unwrap();
        // The queue: 2 + 28 × (1/11 mean of 0..2) = 4.55 to 27.5; the
        // tokens' fall (100 → 60) is a smaller share of the larger.
        assert_eq!(
            said,
            "vllm.queue moved most: 4.55 in the first quarter of the run, 27.5 in the last"
        );
        let calm = BTreeMap::from([(
            "vllm".to_owned(),
            ScrapeView {
                series: BTreeMap::from([("running".into(), series(line(10.0, 11.0), Gauge))]),
                ..ScrapeView::default()
            },
        )]);
        assert_eq!(moved_most(&calm), None);
    }

    #[test]
    fn paths_are_checked_against_the_scenarios_scrapes() {
        let scrapes = [config(Some(Preset::Vllm), &["node_load1"])];
        assert!(check_path(&scrapes, "e.queue.max").is_ok());
        assert!(check_path(&scrapes, "e.first_token.p95").is_ok());
        assert!(check_path(&scrapes, "e.node_load1.max").is_ok());
        for (bad, says) in [
            ("e.queue", "SCRAPE.SERIES.FIGURE"),
            ("f.queue.max", "no [[scrape]] named \"f\""),
            ("e.queues.max", "no series \"queues\""),
            ("e.queue.p95", "\"p95\" is not a figure of e.queue"),
        ] {
            let e = check_path(&scrapes, bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_scrape_entry_names_what_is_wrong() {
        let mut c = config(None, &[]);
        assert!(c.validate().unwrap_err().contains("nothing to keep"));
        c.metrics = vec!["bad name".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .contains("not a Prometheus metric name")
        );
        c.metrics = vec!["vllm:num_requests_waiting".into()];
        c.name = "a.b".into();
        assert!(c.validate().unwrap_err().contains("scrape.name"));
        c.name = "e".into();
        c.preset = Some(Preset::Vllm);
        c.metrics = vec!["queue".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .contains("two series named \"queue\"")
        );
        c.metrics = Vec::new();
        c.headers.insert("Authorization".into(), "Bearer x".into());
        assert!(c.validate().unwrap_err().contains("headers without a url"));
    }
}
