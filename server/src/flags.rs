//! Feature flags (PROTOCOL.md 3): the rollout percentage of `streaming`.

use crate::metrics::now_iso;
use serde_json::{Value, json};
use std::sync::Mutex;

/// The features a rollout can name.
pub const FEATURES: &[&str] = &["streaming"];

#[derive(Debug)]
pub struct FeatureFlags {
    inner: Mutex<Flag>,
}

#[derive(Debug)]
struct Flag {
    percentage: u8,
    updated_at: String,
}

impl FeatureFlags {
    pub fn new(streaming_percentage: u8) -> Self {
        Self {
            inner: Mutex::new(Flag {
                percentage: streaming_percentage,
                updated_at: now_iso(),
            }),
        }
    }

    pub fn streaming(&self) -> u8 {
        self.inner.lock().expect("flags lock").percentage
    }

    /// Sets the percentage; returns the previous one.
    pub fn set_streaming(&self, percentage: u8) -> u8 {
        let mut f = self.inner.lock().expect("flags lock");
        f.updated_at = now_iso();
        std::mem::replace(&mut f.percentage, percentage)
    }

    /// `GET /api/metrics/feature-flags`.
    pub fn json(&self) -> Value {
        let f = self.inner.lock().expect("flags lock");
        json!({
            "success": true,
            "timestamp": now_iso(),
            "flags": {
                "streaming": {
                    "enabled": f.percentage > 0,
                    "percentage": f.percentage,
                    "updatedAt": f.updated_at,
                    "rule": "a request streams when fnv1a64(clientId) % 100 < percentage",
                }
            }
        })
    }
}

/// A rollout request, validated: which feature, which percentage.
pub fn parse_rollout(body: &Value) -> Result<(String, u8), String> {
    let obj = body.as_object().ok_or(
        "the body must be a JSON object like {\"feature\": \"streaming\", \"percentage\": 50}",
    )?;
    let feature = match obj.get("feature") {
        None => return Err("feature is required, e.g. \"streaming\"".into()),
        Some(Value::String(f)) if FEATURES.contains(&f.as_str()) => f.clone(),
        Some(Value::String(f)) => {
            return Err(format!(
                "feature '{f}' is unknown; known features: {}",
                FEATURES.join(", ")
            ));
        }
        Some(other) => return Err(format!("feature must be a string, got {other}")),
    };
    let percentage = match obj.get("percentage") {
        None => return Err("percentage is required: a whole number from 0 to 100".into()),
        Some(v) => v
            .as_u64()
            .filter(|p| *p <= 100)
            .ok_or_else(|| format!("percentage must be a whole number from 0 to 100, got {v}"))?,
    };
    Ok((feature, percentage as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_bodies() {
        assert_eq!(
            parse_rollout(&json!({"feature": "streaming", "percentage": 0})).unwrap(),
            ("streaming".to_owned(), 0)
        );
        let e = parse_rollout(&json!({"feature": "streaming", "percentage": 101})).unwrap_err();
        assert!(e.contains("percentage") && e.contains("101"), "{e}");
        let e = parse_rollout(&json!({"feature": "audio", "percentage": 1})).unwrap_err();
        assert!(e.contains("'audio'") && e.contains("streaming"), "{e}");
        let e = parse_rollout(&json!({"percentage": 1.5, "feature": "streaming"})).unwrap_err();
        assert!(e.contains("1.5"), "{e}");
        assert!(parse_rollout(&json!([])).is_err());
    }
}
