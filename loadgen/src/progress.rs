//! The live line on a terminal: elapsed, requests, rate, active streams,
//! p95 first token and errors, redrawn once a second. Nothing of it when
//! standard error is not a terminal or with `--quiet`.
//!
//! It is drawn from a thread of its own: a terminal that stops reading
//! (a paused or slow session) blocks that thread, never a runtime worker
//! that stamps the streams.

use crate::recorder::Live;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The line being drawn; [`Progress::finish`] ends it.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

pub fn start(
    started: Instant,
    total: Duration,
    live: Arc<Mutex<Live>>,
    active: Arc<AtomicI64>,
) -> std::io::Result<Progress> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || draw(started, total, &live, &active, &stopped))?;
    Ok(Progress { stop, thread })
}

fn draw(
    started: Instant,
    total: Duration,
    live: &Mutex<Live>,
    active: &AtomicI64,
    stop: &AtomicBool,
) {
    let mut last = (0u64, Instant::now());
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
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
        drop(err);
        // A second between lines, looking at the stop flag meanwhile.
        next += Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep(
                Duration::from_millis(50).min(next.saturating_duration_since(Instant::now())),
            );
        }
    }
}

impl Progress {
    /// Stops drawing and ends the line.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        eprintln!();
    }
}
