//! Workloads by token length: a scenario's `[tokens]` table. The prompts
//! are cut to a drawn number of tokens of a tokenizer, and each answer is
//! asked for a drawn number (`max_tokens`, and `min_tokens` / `ignore_eos`
//! where the target honours them), as vLLM's `bench serve`, GuideLLM and
//! AIPerf describe a synthetic workload. The draws are the load
//! generator's; what is checked here is that they can be drawn.

use crate::invalid::InvalidField;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The most tokens a prompt or an answer may be asked to have.
pub const MAX_TOKENS: u32 = 1_000_000;

/// `[tokens]`: which tokenizer counts, and the lengths drawn.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    /// `cl100k_base`, `o200k_base`, or a Hugging Face `tokenizer.json` (the
    /// file, or a model's folder holding one), relative to the scenario
    /// file. It counts the prompts and answers on the client's side.
    pub tokenizer: String,
    /// Prompt lengths in tokens; absent: the mix's prompts, counted.
    pub input: Option<Lengths>,
    /// Answer lengths in tokens, asked as `max_tokens` (over `[openai]
    /// max_tokens`); absent: as `[openai]` says.
    pub output: Option<Lengths>,
    /// A text file the prompts are cut from (relative to the scenario
    /// file); absent: the built-in corpus.
    pub corpus: Option<PathBuf>,
    /// Also ask `min_tokens` = the drawn length (vLLM, SGLang): an answer
    /// of exactly that many tokens.
    #[serde(default)]
    pub min_tokens: bool,
    /// Also ask `ignore_eos = true` (vLLM): the model does not stop early.
    #[serde(default)]
    pub ignore_eos: bool,
    /// Shared prefixes: each prompt begins with one of `count` texts of
    /// `tokens` tokens (drawn per request), the rest its own, so a
    /// target's prefix cache shows (a system prompt, a few-shot header).
    pub prefix: Option<Prefix>,
}

/// `[tokens] prefix = { count, tokens }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    pub count: u32,
    pub tokens: u32,
}

/// A distribution of lengths in tokens, e.g. `{ dist = "normal", mean =
/// 2000, stddev = 200, min = 1500, max = 2500 }`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Lengths {
    /// Every draw `value`.
    Fixed { value: u32 },
    /// Uniform over `min..=max`.
    Uniform { min: u32, max: u32 },
    /// Normal, rounded, drawn again outside `min..=max`.
    Normal {
        mean: f64,
        stddev: f64,
        min: u32,
        max: u32,
    },
    /// `[[length, weight], ...]`: each length with its share of the
    /// weights.
    Histogram { values: Vec<(u32, f64)> },
    /// The histogram of a dataset's rows, each row one sample: `field`'s
    /// value (default `prompt`) in a JSONL line or a CSV column, or a text
    /// file's lines; a whole number is a length, a text is counted with
    /// the run's tokenizer. The file is relative to the scenario file and
    /// read when the run is planned (it becomes a `Histogram` then).
    Dataset {
        file: PathBuf,
        field: Option<String>,
    },
}

impl Lengths {
    /// The shortest and longest length it can draw; `None` for a
    /// dataset not yet read.
    pub fn range(&self) -> Option<(u32, u32)> {
        Some(match self {
            Lengths::Fixed { value } => (*value, *value),
            Lengths::Uniform { min, max } | Lengths::Normal { min, max, .. } => (*min, *max),
            Lengths::Histogram { values } => (
                values.iter().map(|v| v.0).min().unwrap_or(0),
                values.iter().map(|v| v.0).max().unwrap_or(0),
            ),
            Lengths::Dataset { .. } => return None,
        })
    }

    /// Whether it can be drawn: lengths of 1 to [`MAX_TOKENS`], a range
    /// the right way round, a spread that is a number, weights that are.
    fn check(&self, field: &'static str) -> Result<(), InvalidField> {
        self.check_within(field, MAX_TOKENS, "tokens")
    }

    /// As a count of `unit`s (e.g. turns): 1 to `most`.
    pub fn check_within(
        &self,
        field: &'static str,
        most: u32,
        unit: &str,
    ) -> Result<(), InvalidField> {
        let bad = |problem: String| Err(InvalidField { field, problem });
        if matches!(self, Lengths::Histogram { values } if values.is_empty()) {
            return bad("at least one [length, weight] pair".into());
        }
        let Some((lo, hi)) = self.range() else {
            return match self {
                Lengths::Dataset { file, .. } if file.as_os_str().is_empty() => {
                    bad("a dataset's file".into())
                }
                _ => Ok(()),
            };
        };
        if lo == 0 || hi > most {
            return bad(format!("lengths of 1 to {most} {unit}, got {lo} to {hi}"));
        }
        match self {
            Lengths::Uniform { min, max } | Lengths::Normal { min, max, .. } if min > max => {
                bad(format!("min ({min}) is more than max ({max})"))
            }
            Lengths::Normal { mean, stddev, .. }
                if !(mean.is_finite() && stddev.is_finite() && *stddev >= 0.0) =>
            {
                bad(format!(
                    "a finite mean and a stddev of 0 or more, got mean {mean}, stddev {stddev}"
                ))
            }
            Lengths::Normal {
                mean,
                stddev,
                min,
                max,
            } if (*mean + 3.0 * stddev) < f64::from(*min)
                || (*mean - 3.0 * stddev) > f64::from(*max) =>
            {
                bad(format!(
                    "mean {mean} ± 3 × {stddev} misses min..max ({min}..{max}): almost every draw would be drawn again"
                ))
            }
            Lengths::Histogram { values }
                if values.iter().any(|v| !(v.1.is_finite() && v.1 >= 0.0))
                    || values.iter().all(|v| v.1 == 0.0) =>
            {
                bad("weights of 0 or more, not all 0".into())
            }
            _ => Ok(()),
        }
    }
}

impl Tokens {
    /// Its lengths can be drawn, and a tokenizer is named.
    pub fn check(&self) -> Result<(), InvalidField> {
        if self.tokenizer.trim().is_empty() {
            return Err(InvalidField {
                field: "tokens.tokenizer",
                problem:
                    "cl100k_base, o200k_base, or a tokenizer.json (a file or a model's folder)"
                        .into(),
            });
        }
        if let Some(l) = &self.input {
            l.check("tokens.input")?;
        }
        if let Some(l) = &self.output {
            l.check("tokens.output")?;
        }
        if let Some(p) = self.prefix {
            let shortest = match self.input.as_ref().map(Lengths::range) {
                // Checked once the dataset is read.
                Some(None) => return Ok(()),
                known => known.flatten().map(|r| r.0),
            };
            if p.count == 0 || p.tokens == 0 || shortest.is_none_or(|s| s <= p.tokens) {
                return Err(InvalidField {
                    field: "tokens.prefix",
                    problem: format!(
                        "count and tokens of 1 or more, and tokens.input longer than the prefix's {} tokens (its shortest is {})",
                        p.tokens,
                        shortest.map_or("absent".to_owned(), |s| s.to_string())
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Result<Tokens, String> {
        let t: Tokens = toml::from_str(text).map_err(|e| e.to_string())?;
        t.check().map_err(|e| e.to_string())?;
        Ok(t)
    }

    #[test]
    fn lengths_are_read_and_checked() {
        let t = tokens(
            "tokenizer = \"cl100k_base\"\ninput = { dist = \"normal\", mean = 2000, stddev = 200, min = 1500, max = 2500 }\noutput = { dist = \"fixed\", value = 300 }\nignore_eos = true\n",
        )
        .unwrap();
        assert_eq!(t.input.unwrap().range(), Some((1500, 2500)));
        assert_eq!(t.output, Some(Lengths::Fixed { value: 300 }));
        let h = tokens(
            "tokenizer = \"o200k_base\"\ninput = { dist = \"histogram\", values = [[100, 3], [900, 1]] }\n",
        )
        .unwrap();
        assert_eq!(h.input.unwrap().range(), Some((100, 900)));
        for (text, says) in [
            (
                "tokenizer = \"x\"\ninput = { dist = \"fixed\", value = 0 }",
                "tokens.input: lengths of 1 to",
            ),
            (
                "tokenizer = \"x\"\ninput = { dist = \"uniform\", min = 9, max = 3 }",
                "min (9) is more than max (3)",
            ),
            (
                "tokenizer = \"x\"\noutput = { dist = \"normal\", mean = 10, stddev = 1, min = 500, max = 900 }",
                "misses min..max",
            ),
            (
                "tokenizer = \"x\"\ninput = { dist = \"histogram\", values = [] }",
                "at least one",
            ),
            (
                "tokenizer = \"x\"\ninput = { dist = \"histogram\", values = [[5, 0]] }",
                "not all 0",
            ),
            ("tokenizer = \" \"", "tokens.tokenizer"),
            (
                "tokenizer = \"x\"\ninput = { dist = \"uniform\", min = 300, max = 900 }\nprefix = { count = 2, tokens = 300 }",
                "tokens.prefix: count and tokens of 1 or more, and tokens.input longer than the prefix's 300 tokens (its shortest is 300)",
            ),
            (
                "tokenizer = \"x\"\nprefix = { count = 2, tokens = 30 }",
                "(its shortest is absent)",
            ),
            (
                "tokenizer = \"x\"\ninput = { dist = \"poisson\", mean = 3 }",
                "unknown variant `poisson`",
            ),
            (
                "tokenizer = \"x\"\ninput = { dist = \"fixed\", value = 3, mean = 2 }",
                "unknown field `mean`",
            ),
        ] {
            let e = tokens(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
