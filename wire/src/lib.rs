//! # wire: what the reference server and the load generator both speak
//!
//! The chat protocol of docs/protocol.md (`protocol`), OpenAI's chat
//! completions (`openai`), the WHATWG SSE parser (`sse`), every answer of
//! the monitoring guide's endpoints with their thresholds and the health
//! judgment (`monitoring`), the guide's figure formats (`format`) and the
//! latency histograms both sides summarize (`histogram`). Like `slo`, it
//! does no I/O and knows no runtime; the server depends on it alone, so
//! editing the SLO core (a renderer, a verdict) does not rebuild the
//! server.

pub mod format;
pub mod histogram;
pub mod monitoring;
pub mod openai;
pub mod protocol;
pub mod sse;
