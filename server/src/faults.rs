//! Fault injection: the share of requests that fail with each error type,
//! stalls in the token stream, and slow text-to-speech. Set by flags at
//! start and changed at run time through `POST /api/admin/faults`.

use serde::{Deserialize, Serialize};

/// The injected faults. Rates are fractions of requests (0 to 1) and add
/// up to at most 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Fails with an `openai` error event (the model timed out).
    pub openai_rate: f64,
    /// Fails with a `tts` error event (speech synthesis failed); only
    /// requests with audio can meet it.
    pub tts_rate: f64,
    /// Drops the connection mid-stream, with no `done` and no `error`.
    pub network_rate: f64,
    /// Fails with an `other` error event.
    pub other_rate: f64,
    /// Share of requests whose token stream stalls once.
    pub stall_rate: f64,
    /// How long a stall lasts.
    pub stall_ms: u64,
    /// Added to every text-to-speech call that misses the cache.
    pub tts_slowdown_ms: u64,
}

impl Faults {
    /// Checks the ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("openai_rate", self.openai_rate),
            ("tts_rate", self.tts_rate),
            ("network_rate", self.network_rate),
            ("other_rate", self.other_rate),
            ("stall_rate", self.stall_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be a fraction from 0 to 1, got {rate}"));
            }
        }
        let failing = self.openai_rate + self.tts_rate + self.network_rate + self.other_rate;
        if failing > 1.0 + 1e-9 {
            return Err(format!(
                "openai_rate + tts_rate + network_rate + other_rate must be at most 1, got {failing}"
            ));
        }
        for (name, ms) in [
            ("stall_ms", self.stall_ms),
            ("tts_slowdown_ms", self.tts_slowdown_ms),
        ] {
            if ms > 600_000 {
                return Err(format!("{name} must be at most 600000 ms, got {ms}"));
            }
        }
        Ok(())
    }
}

/// A partial update from the admin endpoint: absent fields keep their value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub openai_rate: Option<f64>,
    pub tts_rate: Option<f64>,
    pub network_rate: Option<f64>,
    pub other_rate: Option<f64>,
    pub stall_rate: Option<f64>,
    pub stall_ms: Option<u64>,
    pub tts_slowdown_ms: Option<u64>,
}

impl FaultsPatch {
    pub fn apply(self, to: &Faults) -> Faults {
        Faults {
            openai_rate: self.openai_rate.unwrap_or(to.openai_rate),
            tts_rate: self.tts_rate.unwrap_or(to.tts_rate),
            network_rate: self.network_rate.unwrap_or(to.network_rate),
            other_rate: self.other_rate.unwrap_or(to.other_rate),
            stall_rate: self.stall_rate.unwrap_or(to.stall_rate),
            stall_ms: self.stall_ms.unwrap_or(to.stall_ms),
            tts_slowdown_ms: self.tts_slowdown_ms.unwrap_or(to.tts_slowdown_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_checked_by_name() {
        let f = Faults {
            tts_rate: 1.5,
            ..Faults::default()
        };
        assert!(f.validate().unwrap_err().contains("tts_rate"));
        let f = Faults {
            openai_rate: 0.6,
            other_rate: 0.6,
            ..Faults::default()
        };
        assert!(f.validate().unwrap_err().contains("at most 1"));
        assert!(Faults::default().validate().is_ok());
    }

    #[test]
    fn patch_keeps_absent_fields() {
        let base = Faults {
            stall_ms: 500,
            ..Faults::default()
        };
        let patched = FaultsPatch {
            openai_rate: Some(0.1),
            ..FaultsPatch::default()
        }
        .apply(&base);
        assert_eq!(patched.openai_rate, 0.1);
        assert_eq!(patched.stall_ms, 500);
    }
}
