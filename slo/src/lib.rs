//! # slo: the pure core of the harness
//!
//! Everything that decides a number lives here, with no async runtime, no
//! HTTP and no load-generation framework in it, so it is fast to test and
//! both the reference server and the load generator compute their figures
//! the same way.
//!
//! # Layout
//! - [`protocol`]: the wire types of `PROTOCOL.md` v1 (request, stream
//!   events, error bodies) and the rollout bucket function.
//! - [`evidence`]: confidence intervals of percentiles (order statistics)
//!   and the samples each percentile needs.
//! - [`histogram`]: latency histograms (HdrHistogram, microseconds) and the
//!   avg/p50/p95/p99 summaries every report and endpoint shows.
//! - [`sse`]: the WHATWG-conformant streaming SSE parser.
//! - [`scenario`]: scenario files, parsed strictly.
//! - [`record`]: one measured request (the CSV row), outcomes, audio playback.
//! - [`aggregate`]: a run's figures from its records: histograms, counts, time series.
//! - [`objective`]: SLO files, objectives judged to levels, the gate policy.
//! - [`paths`]: the metric paths an objective may name, from the types.
//! - [`server_view`]: the typed `server` section (the target's own view).
//! - [`report`]: `report.json`, the verdict.
//! - [`severity`]: the guide's incident severities P1-P4 for a run.
//! - [`render`]: report.md, junit.xml and report.html from a report.
//! - [`compare`]: a run against a baseline run, with tolerances.
//! - [`schema`]: JSON Schemas of scenario, SLO and report files.
//! - [`logs`]: the guide's log-analysis one-liners over JSON logs.
//! - [`alerts`]: the guide's alert rules on one poll of the endpoints.
//! - [`capacity`]: the capacity search (ramp, bisection) and capacity.json.
//! - [`format`]: the guide's figure formats (`"99.72%"`, `"5d 12h 30m"`).

pub mod aggregate;
pub mod alerts;
pub mod capacity;
pub mod compare;
pub mod evidence;
pub mod format;
pub mod histogram;
pub mod logs;
pub mod monitoring;
pub mod objective;
pub mod paths;
pub mod protocol;
pub mod record;
pub mod render;
pub mod report;
pub mod scenario;
pub mod schema;
pub mod self_check;
pub mod server_view;
pub mod severity;
pub mod sse;
#[cfg(test)]
mod test_rng;
