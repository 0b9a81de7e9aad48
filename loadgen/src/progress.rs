//! The live line on a terminal: elapsed, requests, rate, active streams,
//! p95 first token and errors, redrawn once a second. Nothing of it when
//! standard error is not a terminal or with `--quiet`.

use crate::recorder::Live;
use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub async fn show(
    started: Instant,
    total: Duration,
    live: Arc<Mutex<Live>>,
    active: Arc<AtomicI64>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = (0u64, Instant::now());
    loop {
        tick.tick().await;
        let l = live.lock().expect("live lock").clone();
        let now = Instant::now();
        let rps = (l.requests - last.0) as f64 / now.duration_since(last.1).as_secs_f64().max(1e-3);
        last = (l.requests, now);
        let p95 = l
            .p95_first_token_ms
            .map_or("-".to_owned(), |v| format!("{v:.0} ms"));
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{:>4.0}s/{}s | requests {} | {:.1}/s | active {} | p95 first token {p95} | errors {}",
            started.elapsed().as_secs_f64(),
            total.as_secs(),
            l.requests,
            rps,
            active.load(Ordering::Relaxed),
            l.errors
        );
        let _ = err.flush();
    }
}

/// Ends the live line.
pub fn finish() {
    eprintln!();
}
