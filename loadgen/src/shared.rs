//! What the run, the goose users and the recorder share: the run's clock,
//! its open-model schedule, and the recorder's inbox. A leaf: it imports
//! no other module of the run.

use crate::protocol::ChatProtocol;
use slo::record::RequestRecord;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What the recorder receives: a finished (or dropped) request and its
/// inter-token gaps (µs).
#[derive(Debug)]
pub struct Msg {
    pub record: Box<RequestRecord>,
    pub gaps_us: Vec<u32>,
}

/// What every goose user shares with the run.
#[derive(Debug)]
pub struct Shared {
    pub protocol: Arc<dyn ChatProtocol>,
    /// The target's base URL, without a trailing `/`.
    pub base_url: String,
    /// The run's one HTTP client (headers, TLS), handed to every user.
    pub client: reqwest::Client,
    /// Cancelled when a stop's grace ends: requests in flight end at once,
    /// as `interrupted`.
    pub cancel: tokio_util::sync::CancellationToken,
    pub run_id: String,
    /// The run's clock, started by the first user's first request (so the
    /// time goose takes to start does not count as lateness), or, for a
    /// shard, at `--start-at` (`start_clock_at`): every shard's schedule
    /// then has the same zero, and the time its goose takes to start is
    /// lateness, as it is for the whole run the shards make.
    pub clock: Arc<std::sync::OnceLock<Clock>>,
    pub(crate) run_length: Duration,
    /// The longest the run may grow to when it sizes itself.
    pub(crate) run_cap: Duration,
    /// The measured requests the run needs (`min_requests`).
    pub min_requests: u64,
    /// Set by the recorder when every judged percentile is decided
    /// (`until_conclusive`); always true when the run does not ask.
    pub conclusive: Arc<AtomicBool>,
    /// Set by the recorder, each second, while the run is shown to fail
    /// whatever more requests would say (nothing succeeded, or a success
    /// rate's interval past its line: `slo::report::shown_failing`); a
    /// run that sizes itself stops waiting for requests or evidence then.
    pub hopeless: Arc<Mutex<Option<String>>>,
    pub(crate) warmup: Duration,
    pub timeout: Duration,
    pub audio: bool,
    /// Each arrival's session (chatbot, turns, answer lengths), drawn
    /// ahead of it.
    pub prepared: Arc<crate::prepare::Prepared>,
    /// `[tokens]`: counts every prompt and answer on the client's side.
    pub tokens: Option<Arc<crate::workload::TokenWork>>,
    /// Conversations: answers are kept for the next turn's history.
    pub multi_turn: bool,
    /// The pause between a conversation's turns.
    pub turn_think: Duration,
    pub seq: AtomicU64,
    /// Sessions taken by closed users (their arrival index).
    pub sessions: AtomicU64,
    pub active: Arc<AtomicI64>,
    pub records: Sender,
    pub schedule: Option<Mutex<Schedule>>,
    /// Wakes an open model's users at their arrivals' instants.
    pub pacer: crate::pacer::Pacer,
    pub max_lateness: Duration,
    pub max_event_bytes: usize,
    pub max_body_bytes: usize,
    /// Measured (not warm-up) requests that ended, dropped ones included.
    pub measured_done: AtomicU64,
    /// Set when no new request may start (the measured part is over).
    pub stopped: Arc<Halt>,
    /// When the measured part ended (it may outlast `duration` when the
    /// run sizes itself).
    pub measured_end: std::sync::OnceLock<Instant>,
    /// This run is one target of `loadgen ab`.
    pub ab: Option<AbArm>,
}

/// One target of `loadgen ab` (a run of its own, beside the other's, on
/// the same schedule and prompts): which one, and how arrivals pair. A
/// pair's order is a coin seeded by the scenario, so neither target is
/// always first: mirrored, both get every arrival and the second of a
/// pair is sent [`AbArm::ORDER_GAP`] after the first; alternating, the
/// pair is two arrivals in a row, the first to the coin's target, each
/// with the pair's prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbArm {
    pub candidate: bool,
    pub alternate: bool,
    pub seed: u64,
}

impl AbArm {
    /// Above the pacer's jitter (p50 0.1-0.2 ms), far below a latency.
    pub const ORDER_GAP: Duration = Duration::from_micros(200);

    /// Whether this target is first in `pair`.
    fn first(self, pair: u64) -> bool {
        let mut z = (self.seed ^ pair.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(1);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let baseline_first = (z ^ (z >> 31)) & 1 == 0;
        baseline_first != self.candidate
    }

    /// The pair of arrival `k`, and the session (prompt) it is sent with.
    pub fn pair(self, k: u64) -> u64 {
        if self.alternate { k / 2 } else { k }
    }

    /// Whether arrival `k` is this target's (alternating: one of two).
    pub fn owns(self, k: u64) -> bool {
        !self.alternate || k.is_multiple_of(2) == self.first(k / 2)
    }

    /// How much later than its arrival this target sends it.
    pub fn delay(self, k: u64) -> Duration {
        if self.alternate || self.first(k) {
            Duration::ZERO
        } else {
            Self::ORDER_GAP
        }
    }
}

/// No new request may start: a flag read at every arrival, and a wake-up
/// for the users asleep toward a slot claimed far ahead (else they would
/// wake now and then to look: 2,000 users claiming 4 s ahead at 500/s,
/// waking each 100 ms, made 20,000 wake-ups a second for nothing).
#[derive(Debug, Default)]
pub struct Halt {
    set: AtomicBool,
    woken: tokio::sync::Notify,
}

impl Halt {
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.woken.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// Sleeps until `t`, or until the halt if it comes first.
    pub async fn sleep_until(&self, t: Instant) {
        let woken = self.woken.notified();
        tokio::pin!(woken);
        // Registered before the flag is read: a halt between the two
        // still wakes it.
        woken.as_mut().enable();
        if self.is_set() {
            return;
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep_until(t) => {}
        }
    }
}

/// t = 0 of the run, the end of the warm-up, the end of `duration`, and
/// the latest end when the run sizes itself, after which no request starts.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub started: Instant,
    pub warmup_end: Instant,
    pub end: Instant,
    pub cap: Instant,
}

impl Clock {
    /// The run's clock once its first request started it (a task that
    /// keeps time from t = 0 waits here).
    pub async fn started(clock: &std::sync::OnceLock<Clock>) -> Clock {
        loop {
            match clock.get() {
                Some(c) => return *c,
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
}

impl Shared {
    pub fn clock(&self) -> Clock {
        *self.clock.get_or_init(|| self.clock_from(Instant::now()))
    }

    /// Starts the run's clock at `started` (before any request starts it).
    pub fn start_clock_at(&self, started: Instant) -> Clock {
        *self.clock.get_or_init(|| self.clock_from(started))
    }

    fn clock_from(&self, started: Instant) -> Clock {
        Clock {
            started,
            warmup_end: started + self.warmup,
            end: started + self.run_length,
            cap: started + self.run_cap,
        }
    }
}

/// The recorder's inbox (a plain channel: the recorder is a thread of its
/// own, so no file write ever blocks the runtime); closed when the attack
/// is over.
#[derive(Debug)]
pub struct Sender(Mutex<Option<std::sync::mpsc::Sender<Msg>>>);

impl Sender {
    /// False when the run is over and the message was not taken.
    pub fn send(&self, msg: Msg) -> bool {
        match &*self.0.lock().expect("sender lock") {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }

    pub fn new(tx: std::sync::mpsc::Sender<Msg>) -> Sender {
        Sender(Mutex::new(Some(tx)))
    }

    /// Closes the inbox: the recorder ends when the last message is read.
    pub fn close(&self) {
        self.0.lock().expect("sender lock").take();
    }
}

/// Intended start times of an open model, from the run's t = 0: at a
/// rate, or a trace's rows at their times.
#[derive(Debug)]
pub enum Schedule {
    Rate {
        /// The first start, and the rate's integral reached so far.
        first: f64,
        /// Arrivals handed out.
        taken: u64,
        area: f64,
        profile: crate::arrivals::Profile,
        gaps: crate::arrivals::Gaps,
    },
    Trace {
        rows: Arc<crate::trace::Replay>,
        next: usize,
    },
}

impl Schedule {
    /// An open model's arrivals: from `rate` through the stages, spaced
    /// as `load.arrival` says; `first`: the first intended start, in
    /// seconds from t = 0.
    pub fn rate(load: &slo::scenario::Load, seed: u64, first: f64) -> Self {
        let (rate, stages) = match &load.shape {
            slo::scenario::LoadShape::Open { rate, stages, .. } => (*rate, stages.as_slice()),
            _ => (1.0, &[][..]),
        };
        let stages: Vec<(f64, f64)> = stages
            .iter()
            .map(|s| (s.target, s.duration.as_secs_f64()))
            .collect();
        Schedule::Rate {
            first,
            taken: 0,
            area: 0.0,
            profile: crate::arrivals::Profile::new(rate, &stages),
            gaps: crate::arrivals::Gaps::new(load.arrival, load.burstiness.unwrap_or(1.0), seed),
        }
    }

    /// A trace's rows, each at its offset.
    pub fn trace(rows: Arc<crate::trace::Replay>) -> Self {
        Schedule::Trace { rows, next: 0 }
    }

    /// The next arrival's index (its session's: a trace's row) and its
    /// intended start, in seconds from t = 0 (a spent trace: never).
    pub fn next_start(&mut self) -> (u64, f64) {
        match self {
            Schedule::Rate {
                first,
                taken,
                area,
                profile,
                gaps,
            } => {
                let at = *first + profile.time_at(*area);
                *area += gaps.draw();
                *taken += 1;
                (*taken - 1, at)
            }
            Schedule::Trace { rows, next } => match rows.get(*next) {
                Some((at, _)) => {
                    *next += 1;
                    (*next as u64 - 1, *at)
                }
                None => (*next as u64, f64::INFINITY),
            },
        }
    }
}
