//! The simulated language model's finite capacity: a number of concurrent
//! generation slots (requests beyond them queue for a slot) and a token
//! throughput budget shared by every stream generating at once (each gets
//! `budget / generating` tokens per second at most). Either can be off.
//!
//! With `S` slots and a mean generation time `G`, the model sustains about
//! `S / G` requests per second; with a budget of `T` tokens per second and
//! `W` tokens per answer, about `T / W`. Beyond that, queues and latencies
//! grow: this is what a capacity-planning run finds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct Model {
    slots: Option<Arc<Semaphore>>,
    slot_count: usize,
    tokens_per_sec: f64,
    /// Prompt tokens read a second before the first token (0: no time).
    prefill_tokens_per_sec: f64,
    generating: AtomicUsize,
    /// Requests waiting for a slot.
    waiting: AtomicUsize,
}

/// Held while a request generates: its slot and its share of the budget.
#[derive(Debug)]
pub struct Generation<'a> {
    model: &'a Model,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Model {
    /// `slots == 0` and `tokens_per_sec == 0` mean unlimited.
    pub fn new(slots: usize, tokens_per_sec: f64) -> Self {
        Self {
            slots: (slots > 0).then(|| Arc::new(Semaphore::new(slots))),
            slot_count: slots,
            tokens_per_sec,
            prefill_tokens_per_sec: 0.0,
            generating: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Reads `tokens_per_sec` prompt tokens a second before a first token
    /// (in its slot, so long prompts cost capacity as an engine's do).
    pub fn with_prefill(mut self, tokens_per_sec: f64) -> Self {
        self.prefill_tokens_per_sec = tokens_per_sec;
        self
    }

    /// The prefill of a prompt of `tokens`.
    pub fn prefill(&self, tokens: u64) -> Duration {
        if self.prefill_tokens_per_sec <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(tokens as f64 / self.prefill_tokens_per_sec)
        }
    }

    /// Waits for a generation slot.
    pub async fn generate(&self) -> Generation<'_> {
        let permit = match &self.slots {
            Some(s) => {
                // Counted while it waits, whether it gets a slot or its
                // client leaves first.
                let _waiting = Waiting::new(&self.waiting);
                Some(
                    Arc::clone(s)
                        .acquire_owned()
                        .await
                        .expect("the slot semaphore is never closed"),
                )
            }
            None => None,
        };
        self.generating.fetch_add(1, Ordering::Relaxed);
        Generation {
            model: self,
            _permit: permit,
        }
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn generating(&self) -> usize {
        self.generating.load(Ordering::Relaxed)
    }

    pub fn slots(&self) -> usize {
        self.slot_count
    }

    pub fn tokens_per_sec(&self) -> f64 {
        self.tokens_per_sec
    }

    /// The shortest gap between two tokens of one stream under the shared
    /// budget right now.
    pub fn token_floor(&self) -> Duration {
        if self.tokens_per_sec <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(self.generating().max(1) as f64 / self.tokens_per_sec)
        }
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Generation<'_> {
    fn drop(&mut self) {
        self.model.generating.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_queue_and_budget_is_shared() {
        let m = Model::new(1, 100.0);
        let g1 = m.generate().await;
        assert_eq!(m.token_floor(), Duration::from_millis(10));
        let second = tokio::time::timeout(Duration::from_secs(1), m.generate()).await;
        assert!(
            second.is_err(),
            "a second generation must wait for the slot"
        );
        drop(g1);
        let _g2 = m.generate().await;
        assert_eq!(m.generating(), 1);
        let unlimited = Model::new(0, 0.0);
        let _a = unlimited.generate().await;
        let _b = unlimited.generate().await;
        assert_eq!(unlimited.token_floor(), Duration::ZERO);
    }
}
