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
    let offset = s
        .schedule
        .as_ref()
        .expect("open model")
        .lock()
        .expect("schedule lock")
        .next_start();
    let intended = clock.started + Duration::from_secs_f64(offset);
    if s.stopped.load(Ordering::Relaxed) || intended >= clock.cap {
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
    if s.stopped.load(Ordering::Relaxed) {
        return Ok(());
    }
    let now = Instant::now();
    if now.saturating_duration_since(intended) > s.max_lateness {
        // Not served: a record of its own, so the CSV holds it and every
        // figure counts it.
        let us = |t: Instant| {
            u64::try_from(t.saturating_duration_since(clock.started).as_micros())
                .unwrap_or(u64::MAX)
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
        return Ok(());
    }
    exchange(user, s, Some(intended)).await
}

pub async fn closed_iteration(user: &mut GooseUser, s: &Shared) -> TransactionResult {
    if s.stopped.load(Ordering::Relaxed) || Instant::now() >= s.clock().cap {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    exchange(user, s, None).await
}
