//! Integration tests of the load generator, against the embedded reference
//! server (and small canned servers) on 127.0.0.1. Runs in this process are
//! serialized by the load generator itself (goose's killswitch is global).
//! A test that judges timing or the self-check takes the turn
//! (`support::turn`, run alone under nextest) and holds it
//! across its awaits on purpose: each test has its own runtime.

#![allow(clippy::await_holding_lock)]

mod ab;
mod arrivals;
mod capacity;
mod ci_gate;
mod cli;
mod docs;
mod drills;
mod engine;
mod errors;
mod evidence;
mod fail_closed;
mod init;
mod k8s;
mod live_view;
mod matrix;
mod measure;
mod misbehaving;
mod monitor;
mod open_model;
mod openai;
mod phases;
mod prometheus;
mod protocols;
mod proxy;
mod reach;
mod reports;
mod shards;
mod shipped;
mod soak;
mod stops;
mod support;
mod third_party;
mod timeline;
mod tokens;
mod trace;
mod windows;
