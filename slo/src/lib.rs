//! # slo: the pure core of the harness
//!
//! Everything that decides a number lives here, with no async runtime, no
//! HTTP and no load-generation framework in it, so it is fast to test and
//! both the reference server and the load generator compute their figures
//! the same way.
//!
//! ARCHITECTURE.md maps its modules.

pub mod ab;
pub mod aggregate;
pub mod alerts;
pub mod budget;
pub mod capacity;
pub mod compare;
pub mod drill;
pub mod durations;
pub mod engine;
pub mod evidence;
pub mod format;
pub mod headers;
pub mod invalid;
pub mod logs;
pub mod merge;
pub mod metric_paths;
pub mod objective;
pub mod phases;
pub mod record;
pub mod render;
pub mod report;
mod rng;
pub mod scenario;
pub mod schema;
pub mod self_check;
pub mod server_view;
pub mod severity;
pub mod template;
pub mod windows;
pub mod workload;

// What both sides speak lives in `wire`; the core names it as its own.
pub use wire::{histogram, monitoring, openai, protocol, sse};
