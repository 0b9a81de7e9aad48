//! What each goose user does per iteration: under an open model, wait for
//! its intended start (or record a dropped arrival when it is too late);
//! then one session: a request, or a conversation's turns one after
//! another.

use crate::exchange::exchange;
use crate::mix::Session;
use crate::protocol::Ask;
use crate::shared::{Msg, Shared};
use goose::prelude::*;
use slo::record::RequestRecord;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

pub async fn open_iteration(user: &mut GooseUser, s: &Shared) -> TransactionResult {
    let clock = s.clock();
    let (k, offset) = s
        .schedule
        .as_ref()
        .expect("open model")
        .lock()
        .expect("schedule lock")
        .next_start();
    // `loadgen ab`: the other target's arrival, or this one's place in
    // its pair; the pair's prompt.
    let (session, late) = match s.ab {
        Some(ab) if !ab.owns(k) => return Ok(()),
        Some(ab) => (ab.pair(k), ab.delay(k)),
        None => (k, Duration::ZERO),
    };
    let intended = clock.started + Duration::from_secs_f64(offset.min(1e9)) + late;
    if s.stopped.is_set() || intended >= clock.cap {
        s.prepared.skip(session);
        stopped_with(s, &clock, (k, intended));
        // The schedule is spent: idle until the run stops (asleep, woken
        // by the stop: a trace shorter than the users' reach leaves most
        // of them here for the whole run), then until goose ends the user.
        if s.stopped.is_set() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else {
            let latest = clock.cap.max(Instant::now()) + Duration::from_millis(100);
            s.stopped.sleep_until(latest).await;
        }
        return Ok(());
    }
    // Users claim slots ahead of time: wake to see the run stop (the end
    // of a run that sizes itself is known only when it comes).
    while Instant::now() < intended {
        if s.stopped.is_set() {
            s.prepared.skip(session);
            return Ok(());
        }
        // The last stretch on the pacer's precise clock, not tokio's
        // millisecond one.
        if intended <= Instant::now() + crate::pacer::AHEAD {
            s.pacer.until(intended).await;
        } else {
            // A slot claimed far ahead: asleep until the pacer's stretch,
            // woken early by the run's stop.
            s.stopped.sleep_until(intended - crate::pacer::AHEAD).await;
        }
    }
    // Due before the measured end, it is sent even when its user woke after
    // the end (a client lagging at the boundary): every arrival the run
    // owed is sent or dropped, never left out.
    if s.stopped.is_set() && s.measured_end.get().is_none_or(|end| intended >= *end) {
        s.prepared.skip(session);
        return Ok(());
    }
    let now = Instant::now();
    if now.saturating_duration_since(intended) > s.max_lateness {
        s.prepared.skip(session);
        record_drop(s, &clock, (k, intended), now);
        return Ok(());
    }
    match s.prepared.take(session).await {
        Some(session) => run_session(user, s, session, Some((k, intended))).await,
        None => Ok(()),
    }
}

pub async fn closed_iteration(user: &mut GooseUser, s: &Shared) -> TransactionResult {
    if s.stopped.is_set() || Instant::now() >= s.clock().cap {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    let k = s.sessions.fetch_add(1, Ordering::Relaxed);
    match s.prepared.take(k).await {
        Some(session) => run_session(user, s, session, None).await,
        None => Ok(()),
    }
}

/// Sends a session's turns one after another, each with the questions and
/// answers before it and the think time between; a failed turn ends the
/// conversation, and so does the end of the run. `arrival`: the open
/// model's arrival and its intended start, the first turn's (a later
/// turn's is the end of its think time).
async fn run_session(
    user: &mut GooseUser,
    s: &Shared,
    session: Session,
    arrival: Option<(u64, Instant)>,
) -> TransactionResult {
    let first = arrival.map(|(_, at)| at);
    let mut history = Vec::new();
    let mut history_tokens = Some(0);
    let mut scheduled = first;
    let last = session.turns.len().saturating_sub(1);
    for (i, turn) in session.turns.into_iter().enumerate() {
        if i > 0 {
            let due = Instant::now() + s.turn_think;
            s.stopped.sleep_until(due).await;
            if s.stopped.is_set() || Instant::now() >= s.clock().cap {
                return Ok(());
            }
            scheduled = first.map(|_| due);
        }
        let seq = s.seq.fetch_add(1, Ordering::Relaxed);
        let ask = Ask {
            client_id: format!("lg-{}-{seq}", s.run_id),
            chatbot_id: session.chatbot_id.clone(),
            message: turn.message,
            message_tokens: turn.tokens,
            audio: s.audio,
            history,
            history_tokens,
            seq,
            arrival: arrival.map(|(k, _)| k),
            length: turn.length,
        };
        let answer = exchange(user, s, scheduled, &ask).await?;
        match answer {
            Some(answer) if i < last => {
                history = ask.history;
                history.push((ask.message, answer.text));
                history_tokens = answer.tokens;
            }
            _ => break,
        }
    }
    Ok(())
}

/// An arrival not served: a record of its own, so the CSV holds it and
/// every figure counts it.
fn record_drop(
    s: &Shared,
    clock: &crate::shared::Clock,
    (k, intended): (u64, Instant),
    now: Instant,
) {
    let us = |t: Instant| {
        u64::try_from(t.saturating_duration_since(clock.started).as_micros()).unwrap_or(u64::MAX)
    };
    let rec = RequestRecord::dropped(
        s.seq.fetch_add(1, Ordering::Relaxed),
        k,
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
fn stopped_with(s: &Shared, clock: &crate::shared::Clock, (k, intended): (u64, Instant)) {
    if s.measured_end.get().is_some_and(|end| intended < *end) {
        record_drop(s, clock, (k, intended), Instant::now());
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
        let (k, offset) = schedule.next_start();
        let intended = clock.started + Duration::from_secs_f64(offset.min(1e9));
        if intended >= end {
            break;
        }
        if s.ab.is_some_and(|ab| !ab.owns(k)) {
            continue;
        }
        s.prepared.skip(s.ab.map_or(k, |ab| ab.pair(k)));
        record_drop(s, clock, (k, intended), now);
    }
}
