//! Sessions made ahead of their arrivals. A thread of its own draws each
//! arrival's session from the prompt mix (its chatbot, its turns cut to
//! their lengths in tokens, the answer lengths asked) a bounded number of
//! arrivals ahead, so cutting a prompt never delays a send: the send path
//! only takes what is ready. Arrival `k` always gets session `k` (a
//! trace's row `k` its own lengths), whichever user takes it.

use crate::mix::{PromptMix, Session};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How the thread draws session `k`.
pub enum Source {
    /// The mix's next session (a rate, or closed users).
    Mix,
    /// Row `k` of a trace.
    Trace(Arc<crate::trace::Replay>),
}

/// The sessions drawn and not yet taken.
#[derive(Debug, Default)]
struct Queue {
    /// The index of `slots[0]`.
    base: u64,
    /// Drawn sessions from `base`; `None` once taken (or skipped).
    slots: VecDeque<Option<Session>>,
    /// Arrivals given up (dropped) before their session was drawn.
    skipped: BTreeSet<u64>,
    /// No more sessions will be drawn (the thread ended).
    finished: bool,
}

impl Queue {
    fn drawn(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Frees the taken slots at the front.
    fn trim(&mut self) {
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base += 1;
        }
    }
}

/// The sessions ahead, shared by the drawing thread and the users.
#[derive(Debug)]
pub struct Prepared {
    queue: Mutex<Queue>,
    /// Woken when a slot is freed (the thread waits for room).
    room: Condvar,
    /// Woken when a session is drawn (users wait for theirs).
    ready: tokio::sync::Notify,
    closed: AtomicBool,
    depth: usize,
}

impl Prepared {
    /// Starts the thread that draws from `mix`, at most `depth` sessions
    /// ahead of the oldest not taken. It ends when [`Prepared::close`] is
    /// called or a trace is spent.
    pub fn start(mix: PromptMix, source: Source, depth: usize) -> Arc<Prepared> {
        let p = Arc::new(Prepared {
            queue: Mutex::new(Queue::default()),
            room: Condvar::new(),
            ready: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
            depth: depth.max(1),
        });
        let drawer = Arc::clone(&p);
        std::thread::Builder::new()
            .name("prepare".into())
            .spawn(move || drawer.draw(mix, &source))
            .expect("a thread for the sessions ahead");
        p
    }

    fn draw(&self, mut mix: PromptMix, source: &Source) {
        // The least of the process's threads: cutting prompts must not
        // take the core from a user due to send (best effort: a system
        // that refuses keeps the usual priority, and the sessions ahead
        // still come from here).
        let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
        loop {
            let k = {
                let mut q = self.queue.lock().expect("prepare lock");
                while q.slots.len() >= self.depth && !self.closed.load(Ordering::Relaxed) {
                    q = self
                        .room
                        .wait_timeout(q, Duration::from_millis(100))
                        .expect("prepare lock")
                        .0;
                }
                if self.closed.load(Ordering::Relaxed) {
                    break;
                }
                q.drawn()
            };
            let session = match source {
                Source::Mix => Some(mix.next_session()),
                Source::Trace(rows) => match usize::try_from(k).ok().and_then(|i| rows.get(i)) {
                    Some((_, row)) => Some(mix.trace_session(row)),
                    None => break,
                },
            };
            {
                let mut q = self.queue.lock().expect("prepare lock");
                let skipped = q.skipped.remove(&k);
                q.slots.push_back(session.filter(|_| !skipped));
                q.trim();
            }
            self.ready.notify_waiters();
        }
        self.queue.lock().expect("prepare lock").finished = true;
        self.ready.notify_waiters();
    }

    /// Session `k`, once drawn; `None` when it never will be (the run
    /// ended, a spent trace) or was taken already.
    pub async fn take(&self, k: u64) -> Option<Session> {
        loop {
            let ready = self.ready.notified();
            let mut ready = std::pin::pin!(ready);
            // Registered before the look, so a session drawn between the
            // look and the wait still wakes this user.
            ready.as_mut().enable();
            {
                let mut q = self.queue.lock().expect("prepare lock");
                if k < q.drawn() {
                    let s = k
                        .checked_sub(q.base)
                        .and_then(|i| q.slots[i as usize].take());
                    q.trim();
                    drop(q);
                    self.room.notify_one();
                    return s;
                }
                if q.finished {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// Arrival `k` will not be sent (dropped): its session is not kept.
    pub fn skip(&self, k: u64) {
        let mut q = self.queue.lock().expect("prepare lock");
        if k < q.drawn() {
            if let Some(i) = k.checked_sub(q.base) {
                q.slots[i as usize] = None;
                q.trim();
            }
        } else {
            q.skipped.insert(k);
        }
        drop(q);
        self.room.notify_one();
    }

    /// Ends the thread (at the end of the attack).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.room.notify_all();
    }

    /// Sessions drawn and waiting (a test's view).
    pub fn waiting(&self) -> usize {
        let q = self.queue.lock().expect("prepare lock");
        q.slots.iter().filter(|s| s.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::Source as MixSource;

    fn mix() -> PromptMix {
        PromptMix::new(
            5,
            MixSource::prompts(&[]),
            &["60f7b3b3e6b6f40015e6b6f4".to_owned()],
            0.0,
        )
    }

    #[tokio::test]
    async fn arrival_k_gets_session_k_drawn_ahead_within_the_depth() {
        let p = Prepared::start(mix(), Source::Mix, 8);
        let mut expected = mix();
        let want: Vec<Session> = (0..20).map(|_| expected.next_session()).collect();
        // Taken out of order, each arrival still gets its own.
        assert_eq!(p.take(3).await.as_ref(), Some(&want[3]));
        assert_eq!(p.take(0).await.as_ref(), Some(&want[0]));
        assert_eq!(p.take(0).await, None, "taken once");
        p.skip(1);
        p.skip(2);
        // The thread fills up to the depth past the oldest not taken.
        for _ in 0..100 {
            if p.waiting() == 8 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(p.waiting(), 8, "drawn ahead up to the depth");
        p.skip(15);
        for k in 4..20 {
            let got = p.take(k).await;
            if k == 15 {
                assert_eq!(got, None, "a skipped arrival's session is not kept");
            } else {
                assert_eq!(got.as_ref(), Some(&want[k as usize]), "session {k}");
            }
        }
        p.close();
    }

    #[tokio::test]
    async fn a_spent_trace_ends_the_sessions() {
        let row = |input| {
            Arc::new(crate::trace::TraceRow {
                at_s: 0.0,
                input,
                output: 3,
                hash_ids: Vec::new(),
                line: 1,
            })
        };
        let rows: crate::trace::Replay = vec![(0.0, row(10)), (0.5, row(20))];
        let p = Prepared::start(mix(), Source::Trace(Arc::new(rows)), 4);
        let first = p.take(0).await.expect("row 0");
        assert_eq!(first.turns.len(), 1, "a row is one request");
        assert!(p.take(1).await.is_some());
        assert_eq!(p.take(2).await, None, "no row 2");
    }
}
