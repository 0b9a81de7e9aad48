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
//! - [`histogram`]: latency histograms (HdrHistogram, microseconds) and the
//!   avg/p50/p95/p99 summaries every report and endpoint shows.
//! - [`sse`]: the WHATWG-conformant streaming SSE parser.
//! - [`format`]: the guide's figure formats (`"99.72%"`, `"5d 12h 30m"`).

pub mod format;
pub mod histogram;
pub mod protocol;
pub mod sse;
