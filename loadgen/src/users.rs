//! What each goose user does per iteration: under an open model, wait for
//! its intended start (or record a dropped arrival when it is too late);
//! then one exchange.

use crate::exchange::exchange;
use crate::shared::{Msg, Shared};
use goose::prelude::*;
use slo::record::RequestRecord;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

pub async fn open_iteration(user: &mut GooseUser, s: &Shared) -> TransactionResult {
    let clock = s.clock();
    let (offset, row) = s
        .schedule
        .as_ref()
        .expect("open model")
        .lock()
        .expect("schedule lock")
        .next_start();
    let intended = clock.started + Duration::from_secs_f64(offset.min(1e9));
    if s.stopped.load(Ordering::Relaxed) || intended >= clock.cap {
        stopped_with(s, &clock, intended);
        // The schedule is spent: idle until the run ends.
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    // Users claim slots ahead of time: wake to see the run stop (the end
    // of a run that sizes itself is known only when it comes).
    while Instant::now() < intended {
        if s.stopped.load(Ordering::Relaxed) {
            return Ok(());
        }
        tokio::time::sleep_until(intended.min(Instant::now() + Duration::from_millis(100))).await;
    }
    // Due before the measured end, it is sent even when its user woke after
    // the end (a client lagging at the boundary): every arrival the run
    // owed is sent or dropped, never left out.
    if s.stopped.load(Ordering::Relaxed) && s.measured_end.get().is_none_or(|end| intended >= *end)
    {
        return Ok(());
    }
    let now = Instant::now();
    if now.saturating_duration_since(intended) > s.max_lateness {
        record_drop(s, &clock, intended, now);
        return Ok(());
    }
    exchange(user, s, Some(intended), row).await
}

pub async fn closed_iteration(user: &mut GooseUser, s: &Shared) -> TransactionResult {
    if s.stopped.load(Ordering::Relaxed) || Instant::now() >= s.clock().cap {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    exchange(user, s, None, None).await
}

/// An arrival not served: a record of its own, so the CSV holds it and
/// every figure counts it.
fn record_drop(s: &Shared, clock: &crate::shared::Clock, intended: Instant, now: Instant) {
    let us = |t: Instant| {
        u64::try_from(t.saturating_duration_since(clock.started).as_micros()).unwrap_or(u64::MAX)
    };
    let rec = RequestRecord::dropped(
        s.seq.fetch_add(1, Ordering::Relaxed),
        us(intended),
        us(now),
        intended < clock.warmup_end,
    );
    if !rec.warmup {
        s.measured_done.fetch_add(1, Ordering::Relaxed);
    }
    let _ = s.records.send(Msg {
        record: Box::new(rec),
        gaps_us: Vec::new(),
    });
}

/// The run had stopped when a user came for this arrival: due before the
/// measured end, every user was busy until now, and it will never be
/// sent: dropped.
fn stopped_with(s: &Shared, clock: &crate::shared::Clock, intended: Instant) {
    if s.measured_end.get().is_some_and(|end| intended < *end) {
        record_drop(s, clock, intended, Instant::now());
    }
}

/// When the run has ended: every arrival due before its measured end that
/// no user took (all of them busy to the end) will never be sent:
/// dropped, so a schedule the target (or the client) could not keep shows
/// in full.
pub fn drop_unclaimed(s: &Shared) {
    let (Some(schedule), Some(clock)) = (&s.schedule, s.clock.get()) else {
        return;
    };
    let now = Instant::now();
    let end = s.measured_end.get().copied().unwrap_or(now).min(now);
    let mut schedule = schedule.lock().expect("schedule lock");
    loop {
        let (offset, _) = schedule.next_start();
        let intended = clock.started + Duration::from_secs_f64(offset.min(1e9));
        if intended >= end {
            break;
        }
        record_drop(s, clock, intended, now);
    }
}
