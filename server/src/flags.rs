//! Feature flags (docs/protocol.md 3): the rollout percentage of `streaming`.

use crate::metrics::now_iso;
use std::sync::Mutex;
use wire::monitoring::{Flag, Flags, ROLLOUT_RULE};

#[derive(Debug)]
pub struct FeatureFlags {
    inner: Mutex<Streaming>,
}

#[derive(Debug)]
struct Streaming {
    percentage: u8,
    updated_at: String,
}

impl FeatureFlags {
    pub fn new(streaming_percentage: u8) -> Self {
        Self {
            inner: Mutex::new(Streaming {
                percentage: streaming_percentage,
                updated_at: now_iso(),
            }),
        }
    }

    /// The rollout percentage of `streaming` (0 to 100).
    pub fn streaming_percentage(&self) -> u8 {
        self.inner.lock().expect("flags lock").percentage
    }

    /// Sets the percentage; returns the previous one.
    pub fn set_streaming_percentage(&self, percentage: u8) -> u8 {
        let mut f = self.inner.lock().expect("flags lock");
        f.updated_at = now_iso();
        std::mem::replace(&mut f.percentage, percentage)
    }

    /// `GET /api/metrics/feature-flags`.
    pub fn answer(&self) -> wire::monitoring::FeatureFlags {
        let f = self.inner.lock().expect("flags lock");
        wire::monitoring::FeatureFlags {
            success: true,
            timestamp: now_iso(),
            flags: Flags {
                streaming: Flag {
                    enabled: f.percentage > 0,
                    percentage: f.percentage,
                    updated_at: f.updated_at.clone(),
                    rule: ROLLOUT_RULE.to_owned(),
                },
            },
        }
    }
}
