//! Waking an open model's users at their arrivals' instants. Tokio's
//! timer counts whole milliseconds, so a `sleep_until` wakes up to a
//! millisecond late (half of one on average): at hundreds of arrivals a
//! second that is most of the send-time error. A thread of its own holds
//! the arrivals due soon and sleeps to the earliest with the operating
//! system's own timer (tens of microseconds), then wakes the user waiting
//! for it.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How far ahead a user hands its arrival to the pacer (longer waits
/// sleep on tokio's timer first, watching for the run's stop).
pub const AHEAD: Duration = Duration::from_millis(50);

/// An instant and the user to wake at it.
type Wake = (Instant, oneshot::Sender<()>);

/// The pacer's inbox; its thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Pacer(Sender<Wake>);

impl Pacer {
    pub fn start() -> Pacer {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || run(&rx))
            .expect("a thread for the pacer");
        Pacer(tx)
    }

    /// Returns at `at` (at once when it has passed).
    pub async fn until(&self, at: tokio::time::Instant) {
        let at = at.into_std();
        if at <= Instant::now() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        let sent = self.0.send((at, tx)).is_ok();
        if sent {
            let _ = rx.await;
        } else {
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

fn run(rx: &Receiver<Wake>) {
    // Keyed by instant, then by arrival order among equal instants.
    let mut due: BTreeMap<(Instant, u64), oneshot::Sender<()>> = BTreeMap::new();
    let mut n = 0u64;
    loop {
        let now = Instant::now();
        while let Some(entry) = due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let _ = entry.remove().send(());
        }
        let next = match due.first_key_value() {
            Some(((at, _), _)) => rx.recv_timeout(at.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, tx)) => {
                n += 1;
                due.insert((at, n), tx);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_waiter_wakes_at_its_instant_in_order() {
        let pacer = Pacer::start();
        let t0 = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for ms in [30u64, 10, 20] {
            let p = pacer.clone();
            tasks.push(tokio::spawn(async move {
                let at = t0 + Duration::from_millis(ms);
                p.until(at).await;
                let now = tokio::time::Instant::now();
                (ms, now >= at, now.saturating_duration_since(at))
            }));
        }
        for t in tasks {
            let (ms, on_time, late) = t.await.unwrap();
            // Never early; late by no more than a loaded machine allows.
            assert!(on_time, "{ms} ms: woken early");
            assert!(late < Duration::from_millis(200), "{ms} ms: {late:?} late");
        }
        // Past instants return at once.
        pacer.until(t0).await;
    }
}
