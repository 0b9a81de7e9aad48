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
    /// Added to the model's time to first token (a slow model).
    pub model_slowdown_ms: u64,
    /// Share of *streamed* requests that fail with an `other` error event:
    /// a fault of the streaming path, which the guide's mitigation (the
    /// streaming rollout to 0 %) routes around. Answers outside the
    /// rollout never meet it.
    pub streaming_bug_rate: f64,
}

/// A field of [`Faults`]: its key in the admin endpoint's JSON and the
/// command-line flag that sets it at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultField {
    OpenaiRate,
    TtsRate,
    NetworkRate,
    OtherRate,
    StallRate,
    StallMs,
    TtsSlowdownMs,
    ModelSlowdownMs,
    StreamingBugRate,
}

impl FaultField {
    pub fn key(self) -> &'static str {
        match self {
            FaultField::OpenaiRate => "openai_rate",
            FaultField::TtsRate => "tts_rate",
            FaultField::NetworkRate => "network_rate",
            FaultField::OtherRate => "other_rate",
            FaultField::StallRate => "stall_rate",
            FaultField::StallMs => "stall_ms",
            FaultField::TtsSlowdownMs => "tts_slowdown_ms",
            FaultField::ModelSlowdownMs => "model_slowdown_ms",
            FaultField::StreamingBugRate => "streaming_bug_rate",
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            FaultField::OpenaiRate => "--fail-openai",
            FaultField::TtsRate => "--fail-tts",
            FaultField::NetworkRate => "--fail-network",
            FaultField::OtherRate => "--fail-other",
            FaultField::StallRate => "--stall-rate",
            FaultField::StallMs => "--stall-ms",
            FaultField::TtsSlowdownMs => "--tts-slowdown-ms",
            FaultField::ModelSlowdownMs => "--model-slowdown-ms",
            FaultField::StreamingBugRate => "--fail-streaming",
        }
    }
}

/// Faults out of range, with the fields they break. Displayed with the
/// JSON keys; [`FaultsError::describe`] names the fields otherwise (the
/// command line names its flags).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.describe(FaultField::key))]
pub enum FaultsError {
    NotAFraction { field: FaultField, got: f64 },
    FailingOverOne { got: f64 },
    TooLong { field: FaultField, got: u64 },
}

impl FaultsError {
    /// The error in words, each field named by `name`.
    pub fn describe(&self, name: fn(FaultField) -> &'static str) -> String {
        match *self {
            FaultsError::NotAFraction { field, got } => {
                format!("{} must be a fraction from 0 to 1, got {got}", name(field))
            }
            FaultsError::FailingOverOne { got } => format!(
                "{} + {} + {} + {} must be at most 1, got {got}",
                name(FaultField::OpenaiRate),
                name(FaultField::TtsRate),
                name(FaultField::NetworkRate),
                name(FaultField::OtherRate)
            ),
            FaultsError::TooLong { field, got } => {
                format!("{} must be at most 600000 ms, got {got}", name(field))
            }
        }
    }
}

impl Faults {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), FaultsError> {
        let rates = [
            (FaultField::OpenaiRate, self.openai_rate),
            (FaultField::TtsRate, self.tts_rate),
            (FaultField::NetworkRate, self.network_rate),
            (FaultField::OtherRate, self.other_rate),
            (FaultField::StallRate, self.stall_rate),
            (FaultField::StreamingBugRate, self.streaming_bug_rate),
        ];
        for (field, got) in rates {
            if !(0.0..=1.0).contains(&got) {
                return Err(FaultsError::NotAFraction { field, got });
            }
        }
        let failing = self.openai_rate + self.tts_rate + self.network_rate + self.other_rate;
        if failing > 1.0 + 1e-9 {
            return Err(FaultsError::FailingOverOne { got: failing });
        }
        for (field, got) in [
            (FaultField::StallMs, self.stall_ms),
            (FaultField::TtsSlowdownMs, self.tts_slowdown_ms),
            (FaultField::ModelSlowdownMs, self.model_slowdown_ms),
        ] {
            if got > 600_000 {
                return Err(FaultsError::TooLong { field, got });
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
    pub model_slowdown_ms: Option<u64>,
    pub streaming_bug_rate: Option<f64>,
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
            model_slowdown_ms: self.model_slowdown_ms.unwrap_or(to.model_slowdown_ms),
            streaming_bug_rate: self.streaming_bug_rate.unwrap_or(to.streaming_bug_rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The faults a timeline may set (`wire::monitoring::FAULT_KEYS`, which
    /// scenario files are checked against) are exactly what the admin
    /// endpoint takes and answers.
    #[test]
    fn the_admin_fault_keys_are_the_contracts() {
        let answered: Vec<String> = serde_json::to_value(Faults::default())
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut keys: Vec<&str> = wire::monitoring::FAULT_KEYS.to_vec();
        keys.sort_unstable();
        assert_eq!(answered, keys);
        let all: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|k| ((*k).to_owned(), serde_json::json!(0)))
            .collect();
        assert!(serde_json::from_value::<FaultsPatch>(serde_json::Value::Object(all)).is_ok());
        assert!(serde_json::from_value::<FaultsPatch>(serde_json::json!({"openai": 1.0})).is_err());
    }

    #[test]
    fn rates_are_checked_by_name() {
        let f = Faults {
            tts_rate: 1.5,
            ..Faults::default()
        };
        let e = f.validate().unwrap_err();
        assert_eq!(
            e,
            FaultsError::NotAFraction {
                field: FaultField::TtsRate,
                got: 1.5
            }
        );
        assert_eq!(
            e.to_string(),
            "tts_rate must be a fraction from 0 to 1, got 1.5"
        );
        assert_eq!(
            e.describe(FaultField::flag),
            "--fail-tts must be a fraction from 0 to 1, got 1.5"
        );
        let f = Faults {
            openai_rate: 0.6,
            other_rate: 0.6,
            ..Faults::default()
        };
        assert!(f.validate().unwrap_err().to_string().contains("at most 1"));
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
