//! Stopping a run early: Ctrl-C (SIGINT), SIGTERM, or a file that cannot
//! be written. The first stop ends new requests and lets those in flight
//! finish for at most the stop grace (`--stop-grace`); a second signal, the
//! grace's end or a write error cancels what is still in flight, each such
//! request counted as `interrupted`. No signal exits the process: the run
//! always goes on to write every file (goose's own Ctrl-C handler, which
//! exits on the second Ctrl-C, is never installed: this one is first).
//!
//! One run at a time per process (goose's killswitch is process-wide), so
//! the state is too; [`reset`] starts a run afresh.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex, Once};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Why the run was stopped: the first reason given.
static REASON: Mutex<Option<String>> = Mutex::new(None);
/// Stops asked so far; 2 or more cancels what is in flight.
static COUNT: AtomicU32 = AtomicU32::new(0);
static CHANGED: LazyLock<watch::Sender<u32>> = LazyLock::new(|| watch::Sender::new(0));

/// A run begins: no stop asked.
pub fn reset() {
    *REASON.lock().expect("stop lock") = None;
    COUNT.store(0, Ordering::SeqCst);
    CHANGED.send_replace(0);
}

/// Asks the run to stop, for `why`. `now`: cancel what is in flight at
/// once (a second signal, a write error).
pub fn request(why: &str, now: bool) {
    {
        let mut reason = REASON.lock().expect("stop lock");
        if reason.is_none() {
            *reason = Some(why.to_owned());
        }
    }
    let n = COUNT.fetch_add(if now { 2 } else { 1 }, Ordering::SeqCst) + if now { 2 } else { 1 };
    CHANGED.send_replace(n);
    goose::trigger_killswitch(why);
}

/// Why the run was stopped, if it was.
pub fn reason() -> Option<String> {
    REASON.lock().expect("stop lock").clone()
}

/// Installs the Ctrl-C handler, once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let again = COUNT.load(Ordering::SeqCst) > 0;
            if again {
                eprintln!(
                    "loadgen: Ctrl-C again: cancelling the requests in flight; the reports are still written"
                );
            } else {
                eprintln!(
                    "loadgen: Ctrl-C: stopping; requests in flight may finish for the stop grace (Ctrl-C again cancels them)"
                );
            }
            request("stopped by Ctrl-C (SIGINT)", false);
        });
    });
}

/// Turns every SIGTERM into a stop, until the run ends.
pub async fn on_sigterm() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        while term.recv().await.is_some() {
            request("stopped by SIGTERM", false);
        }
    }
}

/// Once a stop is asked, sets `halt` (no new request starts), waits for
/// the second stop or for `grace`, then cancels what is in flight.
/// `started` tells that goose's users run: a stop asked before goose began
/// (which resets its killswitch) is passed on to goose again once they do.
pub async fn drain(
    grace: Duration,
    cancel: CancellationToken,
    halt: std::sync::Arc<crate::shared::Halt>,
    started: impl Fn() -> bool + Send + 'static,
) {
    let mut rx = CHANGED.subscribe();
    if rx.wait_for(|n| *n >= 1).await.is_err() {
        return;
    }
    halt.set();
    let why = reason().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + grace;
    let mut again = rx.clone();
    let cancelled = async move {
        tokio::select! {
            _ = again.wait_for(|n| *n >= 2) => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
        cancel.cancel();
    };
    let passed_on = async move {
        while !started() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        goose::trigger_killswitch(&why);
    };
    tokio::join!(cancelled, passed_on);
}
