//! Token counts as a model server counts them, offline and in process:
//! the OpenAI encodings `cl100k_base` and `o200k_base` (shipped inside
//! `tiktoken-rs`) and any Hugging Face `tokenizer.json` a user points at;
//! and text of an exact number of tokens, cut from a corpus, for prompts
//! of a chosen length (the load generator) and answers of one (the
//! reference server).
//!
//! Counts are of the text alone: no special tokens, no chat template (a
//! server's `usage.prompt_tokens` adds its template's tokens to the
//! messages' own).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The OpenAI encodings this crate carries, by the names tiktoken gives
/// them.
pub const ENCODINGS: [&str; 2] = ["cl100k_base", "o200k_base"];

/// A tokenizer that can neither be found nor read.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(
        "tokenizer {0:?}: neither an encoding ({known}) nor a tokenizer.json (a file, or a folder holding one)",
        known = ENCODINGS.join(", ")
    )]
    Unknown(String),
    #[error("tokenizer {path}: not a Hugging Face tokenizer.json: {why}")]
    Unreadable { path: PathBuf, why: String },
}

/// Text that cannot be cut to the asked number of tokens.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CutError {
    #[error("the corpus has {have} tokens of {tokenizer}; {want} were asked")]
    TooShort {
        tokenizer: String,
        have: usize,
        want: usize,
    },
    #[error(
        "no text of exactly {want} tokens of {tokenizer} starts at token {at} of the corpus (nearest: {got})"
    )]
    NotExact {
        tokenizer: String,
        want: usize,
        at: usize,
        got: usize,
    },
}

enum Kind {
    Tiktoken(&'static tiktoken_rs::CoreBPE),
    HuggingFace(Box<tokenizers::Tokenizer>),
}

/// One tokenizer, by its name (an encoding) or its file.
pub struct Tokenizer {
    name: String,
    kind: Kind,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tokenizer").field(&self.name).finish()
    }
}

impl Tokenizer {
    /// `cl100k_base`, `o200k_base`, or the path of a `tokenizer.json` (or
    /// of a folder holding one, as a model's files are laid out).
    pub fn load(spec: &str) -> Result<Tokenizer, TokenizerError> {
        let bpe = match spec {
            "cl100k_base" => Some(tiktoken_rs::cl100k_base_singleton()),
            "o200k_base" => Some(tiktoken_rs::o200k_base_singleton()),
            _ => None,
        };
        if let Some(bpe) = bpe {
            return Ok(Tokenizer {
                name: spec.to_owned(),
                kind: Kind::Tiktoken(bpe),
            });
        }
        let path = Path::new(spec);
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_owned()
        };
        if !file.is_file() {
            return Err(TokenizerError::Unknown(spec.to_owned()));
        }
        let tk =
            tokenizers::Tokenizer::from_file(&file).map_err(|e| TokenizerError::Unreadable {
                path: file.clone(),
                why: e.to_string(),
            })?;
        Ok(Tokenizer {
            name: file.display().to_string(),
            kind: Kind::HuggingFace(Box::new(tk)),
        })
    }

    /// The encoding's name, or the file's path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text's token ids (no special tokens added).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.kind {
            Kind::Tiktoken(bpe) => bpe.encode_ordinary(text),
            Kind::HuggingFace(tk) => tk
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                // Encoding a string fails only on a truncation or padding
                // setting the file asks for and a text breaks; none is
                // applied to a count.
                .unwrap_or_default(),
        }
    }

    /// How many tokens the text is.
    pub fn count(&self, text: &str) -> usize {
        self.encode(text).len()
    }

    /// The text of `ids`; bytes a cut left incomplete become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.kind {
            Kind::Tiktoken(bpe) => {
                String::from_utf8_lossy(&bpe.decode_bytes(ids).unwrap_or_default()).into_owned()
            }
            Kind::HuggingFace(tk) => tk.decode(ids, true).unwrap_or_default(),
        }
    }
}

/// A corpus as tokens, from which text of an exact length is cut.
#[derive(Debug)]
pub struct Corpus {
    tokenizer: Arc<Tokenizer>,
    ids: Vec<u32>,
}

impl Corpus {
    pub fn new(tokenizer: Arc<Tokenizer>, text: &str) -> Self {
        let ids = tokenizer.encode(text);
        Corpus { tokenizer, ids }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The corpus's length in tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `n` token ids from token `at` (wrapping around the corpus's end).
    pub fn ids(&self, at: usize, n: usize) -> Vec<u32> {
        if self.ids.is_empty() {
            return Vec::new();
        }
        (0..n)
            .map(|i| self.ids[(at + i) % self.ids.len()])
            .collect()
    }

    /// `prefix` followed by text cut from token `at`, exactly `n` tokens
    /// in all when encoded (the join can merge or split a token: the cut
    /// is adjusted); `None` when no cut there makes it exact.
    pub fn after(&self, prefix: &str, at: usize, n: usize) -> Option<String> {
        let mut rest = n.checked_sub(self.tokenizer.count(prefix))?;
        for _ in 0..6 {
            let text = format!("{prefix}{}", self.cut(at, rest).ok()?);
            let got = self.tokenizer.count(&text);
            if got == n {
                return Some(text);
            }
            rest = (rest + n).checked_sub(got)?;
        }
        None
    }

    /// Text of exactly `n` tokens (as the tokenizer counts it again), cut
    /// from the corpus at token `at` (wrapping around its end). A cut's
    /// edges can merge into fewer tokens or split into more when the text
    /// is encoded again: the cut is widened or narrowed until the count is
    /// exact, and an error says so when no cut there is.
    pub fn cut(&self, at: usize, n: usize) -> Result<String, CutError> {
        let tokenizer = self.tokenizer.name().to_owned();
        if n == 0 {
            return Ok(String::new());
        }
        // One token more than asked, for the widening below.
        if self.ids.len() <= n {
            return Err(CutError::TooShort {
                tokenizer,
                have: self.ids.len(),
                want: n,
            });
        }
        let at = at % self.ids.len();
        let slice = |take: usize| -> String {
            let end = at + take;
            if end <= self.ids.len() {
                self.tokenizer.decode(&self.ids[at..end])
            } else {
                let mut ids = self.ids[at..].to_vec();
                ids.extend_from_slice(&self.ids[..end - self.ids.len()]);
                self.tokenizer.decode(&ids)
            }
        };
        let mut take = n;
        let mut nearest: usize = 0;
        // A few corrections settle it: each moves the cut by the count's
        // error, and a cut's edges change the count by a token or two.
        for _ in 0..6 {
            let text = slice(take);
            let got = self.tokenizer.count(&text);
            if got == n {
                return Ok(text);
            }
            if got.abs_diff(n) < nearest.abs_diff(n) || nearest == 0 {
                nearest = got;
            }
            let next = (take + n).saturating_sub(got).clamp(1, self.ids.len() - 1);
            if next == take {
                break;
            }
            take = next;
        }
        // Last, trim the text's end a character at a time: a count that
        // overshoots by an edge's merge comes down by one.
        let mut text = slice(take.max(n));
        while let Some((i, _)) = text.char_indices().next_back() {
            text.truncate(i);
            let got = self.tokenizer.count(&text);
            if got == n {
                return Ok(text);
            }
            if got < n {
                break;
            }
        }
        Err(CutError::NotExact {
            tokenizer,
            want: n,
            at,
            got: nearest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "The library opens at nine on weekdays and at ten on Saturdays. \
        Members may borrow up to twelve books for three weeks; a renewal adds two more \
        weeks unless someone else has reserved the title. Quiet rooms on the second \
        floor can be booked online, for up to four hours a day. Printing costs ten \
        cents a page in black and white, and forty cents in colour. ";

    #[test]
    fn the_openai_encodings_count_as_tiktoken_does() {
        let cl = Tokenizer::load("cl100k_base").unwrap();
        // tiktoken's own figures for these strings.
        assert_eq!(cl.encode("hello world"), [15339, 1917]);
        assert_eq!(cl.count("The quick brown fox jumps over the lazy dog."), 10);
        let o2 = Tokenizer::load("o200k_base").unwrap();
        assert_eq!(o2.encode("hello world"), [24912, 2375]);
        assert_eq!(o2.decode(&o2.encode("Grüße, 世界")), "Grüße, 世界");
    }

    #[test]
    fn an_unknown_name_or_a_bad_file_is_named() {
        let e = Tokenizer::load("cl100k").unwrap_err().to_string();
        assert!(
            e.contains("\"cl100k\"") && e.contains("cl100k_base, o200k_base"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("tokens-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tokenizer.json"), "{\"model\": 1}").unwrap();
        let e = Tokenizer::load(dir.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tokenizer.json: not a Hugging Face tokenizer.json"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cuts_are_exact_at_every_length_and_offset() {
        let text = TEXT.repeat(40);
        for name in ENCODINGS {
            let t = Arc::new(Tokenizer::load(name).unwrap());
            let corpus = Corpus::new(Arc::clone(&t), &text);
            for n in [1, 2, 3, 7, 50, 128, 300, 1000, 2000] {
                for at in [0, 1, 5, 17, 333, corpus.len() - 3] {
                    let cut = corpus.cut(at, n).unwrap();
                    assert_eq!(t.count(&cut), n, "{name}: {n} tokens at {at}: {cut:?}");
                }
            }
        }
    }

    #[test]
    fn text_after_a_prefix_is_exact_in_all() {
        let t = Arc::new(Tokenizer::load("cl100k_base").unwrap());
        let corpus = Corpus::new(Arc::clone(&t), &TEXT.repeat(40));
        let prefix = t.decode(&corpus.ids(100, 512));
        for (n, at) in [(600, 7), (513, 900), (2000, 31)] {
            let text = corpus.after(&prefix, at, n).unwrap();
            assert!(text.starts_with(&prefix));
            assert_eq!(t.count(&text), n, "{n} at {at}");
        }
        assert_eq!(
            corpus.after(&prefix, 0, 100),
            None,
            "shorter than its prefix"
        );
    }

    #[test]
    fn a_corpus_shorter_than_the_cut_says_so() {
        let t = Arc::new(Tokenizer::load("cl100k_base").unwrap());
        let corpus = Corpus::new(t, "just a few words");
        assert_eq!(
            corpus.cut(0, 50).unwrap_err(),
            CutError::TooShort {
                tokenizer: "cl100k_base".into(),
                have: 4,
                want: 50
            }
        );
    }
}
