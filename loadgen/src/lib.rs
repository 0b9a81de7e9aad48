//! # loadgen: SSE chat traffic, measured from the client side
//!
//! Drives chat traffic (docs/protocol.md) at a target with goose, measures every
//! latency from the client in HDR histograms, scrapes the target's own
//! metrics, judges the run by an SLO file and writes what it measured:
//! the per-request CSV, an HdrHistogram interval log, goose's report and
//! `report.json`. ARCHITECTURE.md maps its modules.

pub mod ab;
pub mod arrivals;
pub mod capacity;
pub mod cli;
pub mod client;
pub mod client_probe;
pub mod cmd;
pub mod dataset;
pub mod drill_alerts;
pub mod embedded;
pub mod engine;
pub mod exchange;
pub mod exporter;
pub mod files;
pub mod init;
pub mod live_view;
pub mod merge;
pub mod mix;
pub mod pacer;
pub mod phases;
pub mod plan;
pub mod prepare;
pub mod progress;
pub mod protocol;
pub mod rebuild;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scrape;
pub mod shared;
pub mod stop;
pub mod timeline;
pub mod trace;
pub mod users;
pub mod watch;
pub mod windows;
pub mod workload;

pub use cli::{Cli, ExitStatus};
pub use cmd::run;
pub use plan::{FailOnArg, RunArgs};
