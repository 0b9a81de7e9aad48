//! The prompt mix: which question each request asks. A share
//! `repeat_ratio` of requests repeats an earlier question (uniformly among
//! those asked so far), the rest ask a new one, so the target's cache hit
//! rates settle near `repeat_ratio` whatever its cache does.

use crate::dataset::Conversation;
use crate::protocol::AskedLength;
use crate::workload::{Prompt, TokenWork};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

#[derive(Debug)]
pub struct PromptMix {
    rng: StdRng,
    source: Source,
    chatbot_ids: Vec<String>,
    repeat_ratio: f64,
    asked: Vec<Asked>,
    fresh: usize,
    /// This pass's order of a shuffled dataset.
    pass: Vec<usize>,
    /// `[tokens]`: the answer lengths drawn.
    lengths: Option<Arc<TokenWork>>,
    /// `[conversation] turns`: each new conversation's turn count.
    turns: Option<slo::workload::Lengths>,
}

/// A conversation asked: its chatbot, its questions, and their counts
/// with the run's tokenizer where they were known as they were cut (empty
/// when none was).
#[derive(Clone, Debug)]
pub struct Asked {
    bot: usize,
    pub questions: Arc<Conversation>,
    pub tokens: Arc<[Option<u32>]>,
}

/// What one arrival (or one closed user's iteration) sends: a chatbot and
/// its turns, each sent with the answers to those before it.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub chatbot_id: String,
    pub turns: Vec<Turn>,
}

/// One request of a session: its message (and the message's count with
/// the run's tokenizer, when known as it was drawn) and the answer length
/// it asks.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub message: String,
    pub tokens: Option<u32>,
    pub length: Option<AskedLength>,
}

/// Where new questions come from.
#[derive(Debug)]
pub enum Source {
    /// Questions of the scenario (or the built-in corpus): as written the
    /// first time round, then numbered so each is new to the target.
    Numbered(Vec<String>),
    /// A dataset's conversations, verbatim, over and over.
    Dataset {
        conversations: Vec<Arc<Conversation>>,
        shuffle: bool,
    },
    /// Prompts of drawn lengths in tokens, cut from a corpus (`[tokens]
    /// input`), with or without the mix's own questions' lengths counted.
    Cut(Arc<TokenWork>),
}

/// Questions a chat user asks; each new one gets a number so it is new to
/// the target too.
const CORPUS: &[&str] = &[
    "What are your opening hours",
    "How much does the premium plan cost",
    "Do you ship to other countries",
    "How do I return an item I bought",
    "When will I get my refund",
    "How can I change my account password",
    "Can I book an appointment for next week",
    "Where is your nearest store",
    "How do I contact customer support",
    "Do gift cards expire",
    "What does the warranty cover",
    "How does the loyalty program work",
];

impl Source {
    /// The scenario's questions, or the built-in corpus when it has none.
    pub fn prompts(prompts: &[String]) -> Source {
        Source::Numbered(if prompts.is_empty() {
            CORPUS.iter().map(|s| (*s).to_owned()).collect()
        } else {
            prompts.to_vec()
        })
    }

    pub fn dataset(conversations: Vec<Conversation>, shuffle: bool) -> Source {
        Source::Dataset {
            conversations: conversations.into_iter().map(Arc::new).collect(),
            shuffle,
        }
    }
}

impl PromptMix {
    pub fn new(seed: u64, source: Source, chatbot_ids: &[String], repeat_ratio: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            source,
            chatbot_ids: chatbot_ids.to_vec(),
            repeat_ratio,
            asked: Vec::new(),
            fresh: 0,
            pass: Vec::new(),
            lengths: None,
            turns: None,
        }
    }

    /// New conversations of a drawn number of turns (`[conversation]`).
    pub fn with_turns(mut self, turns: slo::workload::Lengths) -> Self {
        self.turns = Some(turns);
        self
    }

    /// The next session: a conversation (a repeat or a new one) and an
    /// answer length drawn for each of its turns.
    pub fn next_session(&mut self) -> Session {
        let (chatbot_id, c) = self.next_conversation();
        let turns = c
            .questions
            .iter()
            .enumerate()
            .map(|(i, message)| Turn {
                message: message.clone(),
                tokens: c.tokens.get(i).copied().flatten(),
                length: self.next_length(),
            })
            .collect();
        Session { chatbot_id, turns }
    }

    /// The session of a trace's row: one turn, its input length cut from
    /// the corpus, its output length asked.
    pub fn trace_session(&mut self, row: &crate::trace::TraceRow) -> Session {
        let (chatbot_id, prompt, length) = self.trace_ask(row);
        Session {
            chatbot_id,
            turns: vec![Turn {
                message: prompt.text,
                tokens: prompt.tokens,
                length,
            }],
        }
    }

    /// Answers of lengths drawn from `work` (and its prompts, when it
    /// draws them, are the source).
    pub fn with_lengths(mut self, work: Arc<TokenWork>) -> Self {
        self.lengths = Some(work);
        self
    }

    /// The answer length the next request asks (`[tokens] output`).
    pub fn next_length(&mut self) -> Option<AskedLength> {
        let work = self.lengths.as_ref()?;
        Some(AskedLength {
            tokens: work.output(&mut self.rng)?,
            min_tokens: work.min_tokens,
            ignore_eos: work.ignore_eos,
        })
    }

    /// The chatbot, the prompt and the answer length of a trace's row:
    /// its input length cut from the corpus, its output length asked.
    fn trace_ask(&mut self, row: &crate::trace::TraceRow) -> (String, Prompt, Option<AskedLength>) {
        let bot = self.chatbot_ids[self.rng.random_range(0..self.chatbot_ids.len())].clone();
        let Some(work) = self.lengths.clone() else {
            return (bot, Prompt::default(), None);
        };
        let message = work
            .prompt_with_blocks(&row.hash_ids, row.input, &mut self.rng)
            .unwrap_or_default();
        let length = AskedLength {
            tokens: row.output,
            min_tokens: work.min_tokens,
            ignore_eos: work.ignore_eos,
        };
        (bot, message, Some(length))
    }

    /// The chatbot and the question of the next request (the first turn
    /// of the next conversation).
    pub fn next_ask(&mut self) -> (String, String) {
        let (bot, c) = self.next_conversation();
        (bot, c.questions[0].clone())
    }

    /// The chatbot and the turns of the next conversation: a repeat of an
    /// earlier one (a share `repeat_ratio`) or a new one.
    pub fn next_conversation(&mut self) -> (String, Asked) {
        if !self.asked.is_empty() && self.rng.random::<f64>() < self.repeat_ratio {
            let c = self.asked[self.rng.random_range(0..self.asked.len())].clone();
            return (self.chatbot_ids[c.bot].clone(), c);
        }
        let turns = self
            .turns
            .as_ref()
            .map_or(1, |t| crate::workload::draw(t, &mut self.rng) as usize);
        let mut tokens = Vec::new();
        let c = match &self.source {
            Source::Cut(work) => Arc::new(
                (0..turns)
                    .map(|i| {
                        // Only a first turn begins with a shared prefix:
                        // the later ones follow it in the history.
                        let p = if i == 0 {
                            work.prompt(&mut self.rng).map(|(p, _)| p)
                        } else {
                            work.prompt_without_prefix(&mut self.rng)
                        }
                        .unwrap_or_default();
                        tokens.push(p.tokens);
                        p.text
                    })
                    .collect(),
            ),
            Source::Numbered(prompts) => Arc::new(
                (0..turns)
                    .map(|_| {
                        let n = self.fresh;
                        self.fresh += 1;
                        let base = &prompts[n % prompts.len()];
                        // A list given in the scenario is asked as written the first time round.
                        if n < prompts.len() {
                            format!("{base}?")
                        } else {
                            format!("{base}? (question {n})")
                        }
                    })
                    .collect(),
            ),
            Source::Dataset {
                conversations,
                shuffle,
            } => {
                let n = self.fresh;
                self.fresh += 1;
                let len = conversations.len();
                if n.is_multiple_of(len) && *shuffle {
                    // A new order each pass, from the seed.
                    self.pass = (0..len).collect();
                    self.pass.shuffle(&mut self.rng);
                }
                let i = if *shuffle {
                    self.pass[n % len]
                } else {
                    n % len
                };
                Arc::clone(&conversations[i])
            }
        };
        let asked = Asked {
            bot: self.rng.random_range(0..self.chatbot_ids.len()),
            questions: c,
            tokens: tokens.into(),
        };
        self.asked.push(asked.clone());
        (self.chatbot_ids[asked.bot].clone(), asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_follow_the_ratio_and_the_seed() {
        let ids = vec!["60f7b3b3e6b6f40015e6b6f4".to_owned()];
        let mut m = PromptMix::new(3, Source::prompts(&[]), &ids, 0.6);
        let mut seen = std::collections::HashSet::new();
        let mut repeats = 0;
        for _ in 0..10_000 {
            let (_, q) = m.next_ask();
            if !seen.insert(q) {
                repeats += 1;
            }
        }
        let ratio = repeats as f64 / 10_000.0;
        assert!((0.58..0.62).contains(&ratio), "repeat ratio {ratio}");
        let mut a = PromptMix::new(9, Source::prompts(&[]), &ids, 0.5);
        let mut b = PromptMix::new(9, Source::prompts(&[]), &ids, 0.5);
        for _ in 0..100 {
            assert_eq!(a.next_ask(), b.next_ask());
        }
    }

    #[test]
    fn a_dataset_is_asked_verbatim_in_a_seeded_order_each_pass() {
        let ids = vec!["60f7b3b3e6b6f40015e6b6f4".to_owned()];
        let data: Vec<Conversation> = (0..5).map(|i| vec![format!("q{i}")]).collect();
        let mix =
            |seed, shuffle| PromptMix::new(seed, Source::dataset(data.clone(), shuffle), &ids, 0.0);
        let asks = |mut m: PromptMix| (0..10).map(|_| m.next_ask().1).collect::<Vec<_>>();
        let sequential = asks(mix(1, false));
        assert_eq!(sequential[..5], sequential[5..]);
        assert_eq!(sequential[0], "q0");
        let a = asks(mix(1, true));
        assert_eq!(a, asks(mix(1, true)), "the same seed, the same order");
        assert_ne!(a, asks(mix(2, true)), "another seed, another order");
        let mut first: Vec<_> = a[..5].to_vec();
        first.sort();
        assert_eq!(first, sequential[..5], "each pass asks every prompt once");
    }

    #[test]
    fn a_conversation_draws_its_turns_and_a_length_for_each() {
        let ids = vec!["60f7b3b3e6b6f40015e6b6f4".to_owned()];
        let mut m = PromptMix::new(4, Source::prompts(&["Hi".to_owned()]), &ids, 0.0)
            .with_turns(slo::workload::Lengths::Uniform { min: 2, max: 4 });
        let mut counts = std::collections::BTreeSet::new();
        let mut asked = std::collections::HashSet::new();
        for _ in 0..50 {
            let s = m.next_session();
            counts.insert(s.turns.len());
            for t in s.turns {
                assert!(asked.insert(t.message), "every turn is a new question");
            }
        }
        assert_eq!(counts, [2, 3, 4].into(), "turn counts drawn");
    }
}
