//! Latency profiles: every delay of the simulated pipeline, as a fixed
//! value (an exact injected delay) or a log-normal distribution.
//!
//! A profile file is TOML: an optional `base` (one of the built-in
//! profiles) and any of the delay keys, each either a number of
//! milliseconds or a table `{ median = MS, sigma = S }`:
//!
//! ```toml
//! base = "baseline"
//! first_token_ms = 150
//! token_interval_ms = { median = 20, sigma = 0.1 }
//! ```

use rand::Rng;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// One delay of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Delay {
    /// Exactly this many milliseconds.
    Fixed(f64),
    /// Log-normal with this median (ms) and shape `sigma`; p95 is
    /// `median * exp(1.645 * sigma)`. Samples are capped at 20 × median.
    LogNormal { median: f64, sigma: f64 },
}

impl Delay {
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let ms = match *self {
            Delay::Fixed(ms) => ms,
            Delay::LogNormal { median, sigma } => {
                (median * (sigma * standard_normal(rng)).exp()).min(median * 20.0)
            }
        };
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }

    /// The same delay `factor` times as long (its spread alike).
    pub fn scaled(self, factor: f64) -> Delay {
        match self {
            Delay::Fixed(ms) => Delay::Fixed(ms * factor),
            Delay::LogNormal { median, sigma } => Delay::LogNormal {
                median: median * factor,
                sigma,
            },
        }
    }

    /// The median in ms (for capacity estimates and docs).
    pub fn median_ms(&self) -> f64 {
        match *self {
            Delay::Fixed(ms) | Delay::LogNormal { median: ms, .. } => ms,
        }
    }

    /// The mean in ms: a log-normal's is `median * exp(sigma² / 2)` (its
    /// cap at 20 × median is over 6 sigma away for sigma <= 0.5, so it
    /// does not move the mean measurably).
    pub fn mean_ms(&self) -> f64 {
        match *self {
            Delay::Fixed(ms) => ms,
            Delay::LogNormal { median, sigma } => median * (sigma * sigma / 2.0).exp(),
        }
    }

    fn check(&self, field: ProfileField) -> Result<(), InvalidProfile> {
        let ok = match *self {
            Delay::Fixed(ms) => ms.is_finite() && (0.0..=600_000.0).contains(&ms),
            Delay::LogNormal { median, sigma } => {
                median.is_finite()
                    && (0.0..=600_000.0).contains(&median)
                    && sigma.is_finite()
                    && (0.0..=3.0).contains(&sigma)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(InvalidProfile {
                field,
                problem: format!("a delay is 0 to 600000 ms, with sigma 0 to 3; got {self:?}"),
            })
        }
    }
}

/// Box-Muller: one standard normal sample.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DelayVisitor;
        impl<'de> Visitor<'de> for DelayVisitor {
            type Value = Delay;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of milliseconds or a table { median = MS, sigma = S }")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Delay, E> {
                Ok(Delay::Fixed(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Delay, E> {
                Ok(Delay::Fixed(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Delay, E> {
                Ok(Delay::Fixed(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Delay, A::Error> {
                let (mut median, mut sigma) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "median" => median = Some(map.next_value::<f64>()?),
                        "sigma" => sigma = Some(map.next_value::<f64>()?),
                        other => return Err(de::Error::unknown_field(other, &["median", "sigma"])),
                    }
                }
                Ok(Delay::LogNormal {
                    median: median.ok_or_else(|| de::Error::missing_field("median"))?,
                    sigma: sigma.ok_or_else(|| de::Error::missing_field("sigma"))?,
                })
            }
        }
        d.deserialize_any(DelayVisitor)
    }
}

/// The built-in profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    /// The guide's "Performance Baselines" on an idle server.
    Baseline,
    /// Near-zero delays, for throughput work.
    Fast,
    /// Breaches the guide's warning thresholds.
    Degraded,
}

/// Every delay of the pipeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// Knowledge-base lookup that hits the KB cache.
    pub kb_hit_ms: Delay,
    /// Knowledge-base lookup that misses (embedding and vector search).
    pub kb_miss_ms: Delay,
    /// From the end of the KB lookup to the first token (model prefill).
    pub first_token_ms: Delay,
    /// The mean gap between two tokens, drawn once per request.
    pub token_interval_ms: Delay,
    /// Per-token jitter around that mean, as a fraction (0 = exact).
    pub token_jitter: f64,
    /// Text-to-speech of one sentence that hits the TTS cache.
    pub tts_hit_ms: Delay,
    /// Text-to-speech of one sentence that misses.
    pub tts_miss_ms: Delay,
}

impl Profile {
    pub fn builtin(name: ProfileName) -> Profile {
        use Delay::{Fixed, LogNormal};
        match name {
            ProfileName::Baseline => Profile {
                kb_hit_ms: LogNormal {
                    median: 12.0,
                    sigma: 0.3,
                },
                kb_miss_ms: LogNormal {
                    median: 110.0,
                    sigma: 0.3,
                },
                first_token_ms: LogNormal {
                    median: 410.0,
                    sigma: 0.3,
                },
                token_interval_ms: LogNormal {
                    median: 22.0,
                    sigma: 0.12,
                },
                token_jitter: 0.5,
                tts_hit_ms: LogNormal {
                    median: 6.0,
                    sigma: 0.3,
                },
                tts_miss_ms: LogNormal {
                    median: 255.0,
                    sigma: 0.44,
                },
            },
            ProfileName::Fast => Profile {
                kb_hit_ms: Fixed(0.0),
                kb_miss_ms: Fixed(0.0),
                first_token_ms: Fixed(0.0),
                token_interval_ms: Fixed(0.0),
                token_jitter: 0.0,
                tts_hit_ms: Fixed(0.0),
                tts_miss_ms: Fixed(0.0),
            },
            ProfileName::Degraded => Profile {
                kb_hit_ms: LogNormal {
                    median: 40.0,
                    sigma: 0.4,
                },
                kb_miss_ms: LogNormal {
                    median: 450.0,
                    sigma: 0.4,
                },
                first_token_ms: LogNormal {
                    median: 1100.0,
                    sigma: 0.45,
                },
                token_interval_ms: LogNormal {
                    median: 45.0,
                    sigma: 0.25,
                },
                token_jitter: 0.6,
                tts_hit_ms: LogNormal {
                    median: 15.0,
                    sigma: 0.3,
                },
                tts_miss_ms: LogNormal {
                    median: 900.0,
                    sigma: 0.45,
                },
            },
        }
    }

    /// Reads a profile file over `base` (its own `base` key wins).
    pub fn from_file(path: &Path, base: ProfileName) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, base).map_err(|message| ProfileError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn from_toml(text: &str, base: ProfileName) -> Result<Profile, String> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut profile = Profile::builtin(file.base.unwrap_or(base));
        profile.apply(Overrides {
            kb_hit_ms: file.kb_hit_ms,
            kb_miss_ms: file.kb_miss_ms,
            first_token_ms: file.first_token_ms,
            token_interval_ms: file.token_interval_ms,
            token_jitter: file.token_jitter,
            tts_hit_ms: file.tts_hit_ms,
            tts_miss_ms: file.tts_miss_ms,
        });
        profile.validate().map_err(|e| e.to_string())?;
        Ok(profile)
    }

    /// Replaces each delay that `o` sets.
    pub fn apply(&mut self, o: Overrides) {
        let slots = [
            (&mut self.kb_hit_ms, o.kb_hit_ms),
            (&mut self.kb_miss_ms, o.kb_miss_ms),
            (&mut self.first_token_ms, o.first_token_ms),
            (&mut self.token_interval_ms, o.token_interval_ms),
            (&mut self.tts_hit_ms, o.tts_hit_ms),
            (&mut self.tts_miss_ms, o.tts_miss_ms),
        ];
        for (slot, value) in slots {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(j) = o.token_jitter {
            self.token_jitter = j;
        }
    }

    pub fn validate(&self) -> Result<(), InvalidProfile> {
        self.kb_hit_ms.check(ProfileField::KbHitMs)?;
        self.kb_miss_ms.check(ProfileField::KbMissMs)?;
        self.first_token_ms.check(ProfileField::FirstTokenMs)?;
        self.token_interval_ms
            .check(ProfileField::TokenIntervalMs)?;
        self.tts_hit_ms.check(ProfileField::TtsHitMs)?;
        self.tts_miss_ms.check(ProfileField::TtsMissMs)?;
        if !(0.0..=1.0).contains(&self.token_jitter) {
            return Err(InvalidProfile {
                field: ProfileField::TokenJitter,
                problem: format!("a fraction from 0 to 1; got {}", self.token_jitter),
            });
        }
        Ok(())
    }

    /// One token gap: `mean` with this profile's jitter.
    pub fn jittered(&self, mean: Duration, rng: &mut impl Rng) -> Duration {
        if self.token_jitter == 0.0 {
            mean
        } else {
            let f = 1.0 + self.token_jitter * (rng.random::<f64>() * 2.0 - 1.0);
            mean.mul_f64(f)
        }
    }
}

/// Delays to set over a profile (from a file or from flags).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub kb_hit_ms: Option<Delay>,
    pub kb_miss_ms: Option<Delay>,
    pub first_token_ms: Option<Delay>,
    pub token_interval_ms: Option<Delay>,
    pub token_jitter: Option<f64>,
    pub tts_hit_ms: Option<Delay>,
    pub tts_miss_ms: Option<Delay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    base: Option<ProfileName>,
    kb_hit_ms: Option<Delay>,
    kb_miss_ms: Option<Delay>,
    first_token_ms: Option<Delay>,
    token_interval_ms: Option<Delay>,
    token_jitter: Option<f64>,
    tts_hit_ms: Option<Delay>,
    tts_miss_ms: Option<Delay>,
}

/// A field of [`Profile`]: its key in a profile file and the flag that
/// sets it at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileField {
    KbHitMs,
    KbMissMs,
    FirstTokenMs,
    TokenIntervalMs,
    TokenJitter,
    TtsHitMs,
    TtsMissMs,
}

impl ProfileField {
    pub fn key(self) -> &'static str {
        match self {
            ProfileField::KbHitMs => "kb_hit_ms",
            ProfileField::KbMissMs => "kb_miss_ms",
            ProfileField::FirstTokenMs => "first_token_ms",
            ProfileField::TokenIntervalMs => "token_interval_ms",
            ProfileField::TokenJitter => "token_jitter",
            ProfileField::TtsHitMs => "tts_hit_ms",
            ProfileField::TtsMissMs => "tts_miss_ms",
        }
    }

    /// The flag; `token_jitter` has none (a profile file sets it).
    pub fn flag(self) -> &'static str {
        match self {
            ProfileField::KbHitMs => "--kb-hit-ms",
            ProfileField::KbMissMs => "--kb-miss-ms",
            ProfileField::FirstTokenMs => "--first-token-ms",
            ProfileField::TokenIntervalMs => "--token-interval-ms",
            ProfileField::TokenJitter => "token_jitter (profile file)",
            ProfileField::TtsHitMs => "--tts-hit-ms",
            ProfileField::TtsMissMs => "--tts-miss-ms",
        }
    }
}

/// A delay (or the jitter) out of range: the field and what it must be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {problem}", field.key())]
pub struct InvalidProfile {
    pub field: ProfileField,
    pub problem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read the profile file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the profile file {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn file_overrides_base_and_reads_both_delay_forms() {
        let p = Profile::from_toml(
            "base = \"fast\"\nfirst_token_ms = 150\ntoken_interval_ms = { median = 20, sigma = 0.1 }\n",
            ProfileName::Baseline,
        )
        .unwrap();
        assert_eq!(p.first_token_ms, Delay::Fixed(150.0));
        assert_eq!(
            p.token_interval_ms,
            Delay::LogNormal {
                median: 20.0,
                sigma: 0.1
            }
        );
        assert_eq!(p.kb_hit_ms, Delay::Fixed(0.0));
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e = Profile::from_toml(
            "first_token_ms = 150\nfirst_tokn_ms = 3\n",
            ProfileName::Fast,
        )
        .unwrap_err();
        assert!(e.contains("line 2") && e.contains("first_tokn_ms"), "{e}");
        let e = Profile::from_toml("tts_hit_ms = \"fast\"\n", ProfileName::Fast).unwrap_err();
        assert!(
            e.contains("tts_hit_ms") && e.contains("number of milliseconds"),
            "{e}"
        );
        let e = Profile::from_toml("kb_hit_ms = { median = 5 }\n", ProfileName::Fast).unwrap_err();
        assert!(e.contains("sigma"), "{e}");
        let e = Profile::from_toml("kb_hit_ms = -5\n", ProfileName::Fast).unwrap_err();
        assert!(e.contains("kb_hit_ms") && e.contains("0 to 600000"), "{e}");
    }

    #[test]
    fn fixed_is_exact_and_lognormal_has_its_median() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        assert_eq!(
            Delay::Fixed(150.0).sample(&mut rng),
            Duration::from_millis(150)
        );
        let d = Delay::LogNormal {
            median: 400.0,
            sigma: 0.3,
        };
        let mut v: Vec<Duration> = (0..10_001).map(|_| d.sample(&mut rng)).collect();
        v.sort();
        let median = v[5000].as_secs_f64() * 1000.0;
        assert!((380.0..420.0).contains(&median), "median {median}");
    }
}
