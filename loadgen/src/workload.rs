//! A scenario's `[tokens]` at run time: the tokenizer that counts on the
//! client's side, the corpus prompts are cut from, and the draws of each
//! prompt's and each answer's length.

use crate::dataset::Cell;
use rand::Rng;
use slo::workload::{Lengths, Tokens};
use std::path::Path;
use std::sync::Arc;
use tokens::{Corpus, Tokenizer};

/// Words of the built-in corpus: about 40,000 tokens, room for prompts of
/// several thousand tokens each starting elsewhere.
const BUILTIN_WORDS: usize = 30_000;

/// Tokens of one of a trace's `hash_ids` (Mooncake's block size).
pub const TRACE_BLOCK_TOKENS: usize = 512;

/// The run's token workload.
#[derive(Debug)]
pub struct TokenWork {
    pub tokenizer: Arc<Tokenizer>,
    /// Where prompts are cut from: only with input lengths.
    corpus: Option<Corpus>,
    /// `prefix`: the shared beginnings.
    prefixes: Vec<String>,
    input: Option<Lengths>,
    output: Option<Lengths>,
    pub min_tokens: bool,
    pub ignore_eos: bool,
}

/// A prompt cut to a length, and its count with the run's tokenizer when
/// the cut is exact (the count the record needs, known without counting
/// the text again); `None` when no cut there was exact.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub tokens: Option<u32>,
}

impl Prompt {
    fn exact(text: String, n: u32) -> Prompt {
        Prompt {
            text,
            tokens: Some(n),
        }
    }

    fn uncounted(text: String) -> Prompt {
        Prompt { text, tokens: None }
    }
}

impl TokenWork {
    /// A prompt of a drawn length without a shared prefix (a
    /// conversation's later turn); `None` without input lengths.
    pub fn prompt_without_prefix(&self, rng: &mut impl Rng) -> Option<Prompt> {
        let n = draw(self.input.as_ref()?, rng);
        self.prompt_of(n, rng)
    }

    /// `[tokens]` of the scenario file `file`: its tokenizer loaded, its
    /// corpus read and long enough for the longest prompt it may draw (or
    /// a trace's longest, `trace_longest`).
    pub fn load(t: &Tokens, file: &Path, trace_longest: Option<u32>) -> Result<TokenWork, String> {
        let dir = file.parent().unwrap_or(Path::new("."));
        let spec = if tokens::ENCODINGS.contains(&t.tokenizer.as_str()) {
            t.tokenizer.clone()
        } else {
            dir.join(&t.tokenizer).display().to_string()
        };
        let tokenizer = Arc::new(
            Tokenizer::load(&spec)
                .map_err(|e| format!("{}: tokens.tokenizer: {e}", file.display()))?,
        );
        let counted = |key: &str, l: &Option<Lengths>| {
            l.as_ref()
                .map(|l| of_dataset(l, dir, &tokenizer, key))
                .transpose()
        };
        let (input, output) = (
            counted("tokens.input", &t.input)?,
            counted("tokens.output", &t.output)?,
        );
        // A dataset's lengths are known now: the checks that need them.
        Tokens {
            input: input.clone(),
            output: output.clone(),
            ..t.clone()
        }
        .check()
        .map_err(|e| format!("{}: {e}", file.display()))?;
        let longest = input
            .as_ref()
            .and_then(Lengths::range)
            .map(|r| r.1)
            .or(trace_longest);
        let corpus = match longest {
            None => None,
            Some(longest) => {
                let text = match &t.corpus {
                    Some(p) => {
                        let path = dir.join(p);
                        std::fs::read_to_string(&path).map_err(|e| {
                            format!(
                                "{}: tokens.corpus: cannot read {}: {e}",
                                file.display(),
                                path.display()
                            )
                        })?
                    }
                    None => server::corpus::prose(BUILTIN_WORDS),
                };
                let corpus = Corpus::new(Arc::clone(&tokenizer), &text);
                let longest = longest as usize;
                if corpus.len() <= longest {
                    return Err(format!(
                        "{}: tokens.corpus: {} tokens of {}, and prompts may be {longest}: give a longer text",
                        file.display(),
                        corpus.len(),
                        tokenizer.name()
                    ));
                }
                Some(corpus)
            }
        };
        let prefixes = match (&corpus, t.prefix) {
            (Some(c), Some(p)) => (0..p.count)
                .map(|i| {
                    let at = block_place(u64::from(i) ^ 0x9e37_79b9, c.len());
                    tokenizer.decode(&c.ids(at, p.tokens as usize))
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(TokenWork {
            tokenizer,
            corpus,
            prefixes,
            input,
            output,
            min_tokens: t.min_tokens,
            ignore_eos: t.ignore_eos,
        })
    }

    /// A new prompt of a drawn length, cut at a drawn place of the corpus
    /// (after one of the shared prefixes, drawn, when there are), and the
    /// length drawn; `None` without input lengths.
    pub fn prompt(&self, rng: &mut impl Rng) -> Option<(Prompt, u32)> {
        let n = draw(self.input.as_ref()?, rng);
        if self.prefixes.is_empty() {
            return Some((self.prompt_of(n, rng)?, n));
        }
        let prefix = &self.prefixes[rng.random_range(0..self.prefixes.len())];
        Some((self.after(prefix, n, rng)?, n))
    }

    /// A prompt of `n` tokens beginning with the blocks of a trace row's
    /// `hash_ids` but its last (each id the same 512 tokens wherever it
    /// appears, so rows sharing leading ids share a beginning), the rest
    /// cut at a drawn place.
    pub fn prompt_with_blocks(
        &self,
        hash_ids: &[u64],
        n: u32,
        rng: &mut impl Rng,
    ) -> Option<Prompt> {
        let corpus = self.corpus.as_ref()?;
        let whole = hash_ids
            .len()
            .saturating_sub(1)
            .min((n as usize).saturating_sub(1) / TRACE_BLOCK_TOKENS);
        if whole == 0 {
            return self.prompt_of(n, rng);
        }
        let ids: Vec<u32> = hash_ids[..whole]
            .iter()
            .flat_map(|id| corpus.ids(block_place(*id, corpus.len()), TRACE_BLOCK_TOKENS))
            .collect();
        self.after(&self.tokenizer.decode(&ids), n, rng)
    }

    /// `prefix` and text of its own after it, `n` tokens in all (the
    /// prefix alone when it cannot be made exact: the count shows it).
    fn after(&self, prefix: &str, n: u32, rng: &mut impl Rng) -> Option<Prompt> {
        let corpus = self.corpus.as_ref()?;
        let at = rng.random_range(0..corpus.len());
        Some(
            corpus
                .after(prefix, at, n as usize)
                .or_else(|| corpus.after(prefix, at + 1, n as usize))
                .map_or_else(
                    || Prompt::uncounted(prefix.to_owned()),
                    |text| Prompt::exact(text, n),
                ),
        )
    }

    /// A prompt of `n` tokens cut at a drawn place of the corpus; `None`
    /// without a corpus.
    pub fn prompt_of(&self, n: u32, rng: &mut impl Rng) -> Option<Prompt> {
        let corpus = self.corpus.as_ref()?;
        let at = rng.random_range(0..corpus.len());
        // A cut that cannot be exact (none was seen in the tests, for
        // either encoding) is sent as the nearest the corpus gives at the
        // next place: the record's client count shows it.
        Some(
            corpus
                .cut(at, n as usize)
                .or_else(|_| corpus.cut(at + 1, n as usize))
                .map_or_else(
                    |_| Prompt::uncounted(String::new()),
                    |text| Prompt::exact(text, n),
                ),
        )
    }

    /// A drawn answer length; `None` without output lengths.
    pub fn output(&self, rng: &mut impl Rng) -> Option<u32> {
        self.output.as_ref().map(|l| draw(l, rng))
    }
}

/// A dataset's lengths (`{ dist = "dataset", file, field }`) as the
/// histogram of its rows: a whole number is a length, a text is counted
/// with `tokenizer`; other lengths as they are. Errors name the file, the
/// line and `key`.
fn of_dataset(
    lengths: &Lengths,
    dir: &Path,
    tokenizer: &Tokenizer,
    key: &str,
) -> Result<Lengths, String> {
    let Lengths::Dataset { file, field } = lengths else {
        return Ok(lengths.clone());
    };
    let path = dir.join(file);
    let ds = slo::scenario::Dataset {
        file: path.clone(),
        format: None,
        field: field.clone(),
        turns_field: None,
        order: slo::scenario::DatasetOrder::default(),
    };
    let most = slo::workload::MAX_TOKENS;
    let fail = |line, message| crate::dataset::failure(&path)(line, message).to_string();
    let mut counts = std::collections::BTreeMap::<u32, u64>::new();
    let rows = crate::dataset::cells(&ds, &path).map_err(|e| format!("{e} ({key})"))?;
    for (line, cell) in rows {
        // A number (a JSON one, or a CSV or text cell that reads as one)
        // is the length; any other text is counted.
        let n = match cell {
            Cell::Number(x) => x,
            Cell::Text(text) => text
                .trim()
                .parse::<f64>()
                .unwrap_or_else(|_| tokenizer.count(&text) as f64),
        };
        if n.fract() != 0.0 || !(1.0..=f64::from(most)).contains(&n) {
            return Err(fail(
                line,
                format!(
                    "{key}: a length of 1 to {most} tokens, got {n} (every row of the dataset is a sample)"
                ),
            ));
        }
        *counts.entry(n as u32).or_default() += 1;
    }
    if counts.is_empty() {
        return Err(fail(None, format!("{key}: the dataset holds no row")));
    }
    Ok(Lengths::Histogram {
        values: counts.into_iter().map(|(n, c)| (n, c as f64)).collect(),
    })
}

/// Where the block of a hash id starts in a corpus of `len` tokens.
fn block_place(id: u64, len: usize) -> usize {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % len.max(1) as u64) as usize
}

/// One length of the distribution.
pub fn draw(lengths: &Lengths, rng: &mut impl Rng) -> u32 {
    match lengths {
        Lengths::Fixed { value } => *value,
        Lengths::Uniform { min, max } => rng.random_range(*min..=*max),
        Lengths::Normal {
            mean,
            stddev,
            min,
            max,
        } => loop {
            // Box-Muller; drawn again outside min..=max (the check keeps
            // the range within three deviations of the mean).
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let v = (mean + stddev * z).round();
            if v >= f64::from(*min) && v <= f64::from(*max) {
                break v as u32;
            }
        },
        Lengths::Histogram { values } => {
            let total: f64 = values.iter().map(|v| v.1).sum();
            let mut pick = rng.random::<f64>() * total;
            for (len, w) in values {
                if pick < *w {
                    return *len;
                }
                pick -= w;
            }
            values.last().map_or(1, |v| v.0)
        }
        // Read into a histogram when the run is planned (`of_dataset`).
        Lengths::Dataset { .. } => unreachable!("a dataset's lengths drawn before it was read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_follow_their_distribution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 20_000;
        let normal = Lengths::Normal {
            mean: 2000.0,
            stddev: 200.0,
            min: 1500,
            max: 2500,
        };
        let v: Vec<f64> = (0..n).map(|_| f64::from(draw(&normal, &mut rng))).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        // Truncated at 2.5 deviations: the mean stays, the spread narrows
        // a little (to 0.95 of it).
        assert!((mean - 2000.0).abs() < 6.0, "{mean}");
        assert!((sd - 190.0).abs() < 6.0, "{sd}");
        assert!(v.iter().all(|x| (1500.0..=2500.0).contains(x)));
        let uniform = Lengths::Uniform { min: 10, max: 12 };
        let mut seen = [0; 3];
        for _ in 0..3000 {
            seen[(draw(&uniform, &mut rng) - 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (900..1100).contains(&c)), "{seen:?}");
        let hist = Lengths::Histogram {
            values: vec![(100, 3.0), (900, 1.0)],
        };
        let short = (0..4000).filter(|_| draw(&hist, &mut rng) == 100).count();
        assert!((2900..3100).contains(&short), "{short}");
        assert_eq!(draw(&Lengths::Fixed { value: 5 }, &mut rng), 5);
    }

    #[test]
    fn prompts_have_the_drawn_length_and_start_in_different_places() {
        let t: Tokens = toml::from_str(
            "tokenizer = \"cl100k_base\"\ninput = { dist = \"uniform\", min = 50, max = 3000 }\noutput = { dist = \"fixed\", value = 7 }\n",
        )
        .unwrap();
        let work = TokenWork::load(&t, Path::new("scenario.toml"), None).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut starts = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let (Prompt { text, tokens }, n) = work.prompt(&mut rng).unwrap();
            assert_eq!(work.tokenizer.count(&text), n as usize);
            assert_eq!(tokens, Some(n), "the count carried is the text's");
            starts.insert(text.chars().take(40).collect::<String>());
        }
        assert_eq!(starts.len(), 20);
        assert_eq!(work.output(&mut rng), Some(7));
    }

    #[test]
    fn shared_prefixes_and_trace_blocks_begin_prompts_alike() {
        let t: Tokens = toml::from_str(
            "tokenizer = \"cl100k_base\"\ninput = { dist = \"uniform\", min = 300, max = 900 }\nprefix = { count = 2, tokens = 200 }\n",
        )
        .unwrap();
        let work = TokenWork::load(&t, Path::new("s.toml"), None).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut beginnings = std::collections::BTreeSet::new();
        for _ in 0..12 {
            let (Prompt { text, tokens }, n) = work.prompt(&mut rng).unwrap();
            assert_eq!(work.tokenizer.count(&text), n as usize);
            assert_eq!(tokens, Some(n));
            let p = work
                .prefixes
                .iter()
                .position(|p| text.starts_with(p.as_str()));
            beginnings.insert(p.expect("begins with a prefix"));
        }
        assert_eq!(beginnings.len(), 2, "both prefixes drawn");
        // Trace rows: ids 7, 8 shared; the third block each row's own.
        let a = work
            .prompt_with_blocks(&[7, 8, 100], 1500, &mut rng)
            .unwrap();
        let b = work
            .prompt_with_blocks(&[7, 8, 200], 1300, &mut rng)
            .unwrap();
        let c = work
            .prompt_with_blocks(&[9, 8, 300], 1200, &mut rng)
            .unwrap();
        assert_eq!((a.tokens, b.tokens), (Some(1500), Some(1300)));
        let (a, b, c) = (a.text, b.text, c.text);
        assert_eq!(work.tokenizer.count(&a), 1500);
        assert_eq!(work.tokenizer.count(&b), 1300);
        let common =
            |x: &str, y: &str| x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count();
        let ab = common(&a, &b);
        let shared = work
            .tokenizer
            .count(&a.chars().take(ab).collect::<String>());
        assert!(
            (1000..=1030).contains(&shared),
            "a and b share two blocks: {shared} tokens"
        );
        assert!(common(&a, &c) < 40, "a and c share nothing but by chance");
    }

    #[test]
    fn a_bad_tokenizer_or_a_short_corpus_names_the_file_and_key() {
        let dir = std::env::temp_dir().join(format!("loadgen-work-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("short.txt"), "only a few words here").unwrap();
        let file = dir.join("s.toml");
        let t: Tokens = toml::from_str("tokenizer = \"gpt2\"").unwrap();
        let e = TokenWork::load(&t, &file, None).unwrap_err();
        assert!(
            e.contains("s.toml: tokens.tokenizer: tokenizer") && e.contains("gpt2"),
            "{e}"
        );
        let t: Tokens = toml::from_str(
            "tokenizer = \"o200k_base\"\ncorpus = \"short.txt\"\ninput = { dist = \"fixed\", value = 100 }\n",
        )
        .unwrap();
        let e = TokenWork::load(&t, &file, None).unwrap_err();
        assert!(
            e.contains("tokens.corpus: 5 tokens of o200k_base, and prompts may be 100"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `{ dist = "dataset" }`: the histogram of a dataset's rows, numbers
    /// as lengths and texts counted; a bad row names the file and line.
    #[test]
    fn lengths_from_a_dataset_are_its_rows_histogram() {
        let dir = testkit::Scratch::new("loadgen-workload-dataset");
        std::fs::write(
            dir.join("lengths.csv"),
            "id,input_length\n1,100\n2,300\n3,100\n4,100\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("answers.jsonl"),
            "{\"completion\": \"one two three\"}\n{\"completion\": \"one two three\"}\n{\"completion\": 7}\n",
        )
        .unwrap();
        let scenario = dir.join("s.toml");
        let t: Tokens = toml::from_str(
            "tokenizer = \"cl100k_base\"\ninput = { dist = \"dataset\", file = \"lengths.csv\", field = \"input_length\" }\noutput = { dist = \"dataset\", file = \"answers.jsonl\", field = \"completion\" }\n",
        )
        .unwrap();
        t.check().unwrap();
        let work = TokenWork::load(&t, &scenario, None).unwrap();
        assert_eq!(
            work.input,
            Some(Lengths::Histogram {
                values: vec![(100, 3.0), (300, 1.0)]
            })
        );
        assert_eq!(
            work.output,
            Some(Lengths::Histogram {
                values: vec![(3, 2.0), (7, 1.0)]
            }),
            "\"one two three\" is 3 tokens of cl100k_base"
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let short = (0..4000)
            .filter(|_| work.prompt(&mut rng).unwrap().1 == 100)
            .count();
        assert!(
            (2850..3150).contains(&short),
            "{short} of 4000 at 100 tokens"
        );
        for (text, says) in [
            (
                "id,input_length\n1,0\n",
                "lengths.csv:2: tokens.input: a length of 1 to",
            ),
            ("id,length\n1,5\n", "no column \"input_length\""),
            (
                "id,input_length\n1,12\n2,7.5\n",
                "lengths.csv:3: tokens.input: a length of 1 to 1000000 tokens, got 7.5",
            ),
        ] {
            std::fs::write(dir.join("lengths.csv"), text).unwrap();
            let e = TokenWork::load(&t, &scenario, None).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
