//! The prompt mix: which question each request asks. A share
//! `repeat_ratio` of requests repeats an earlier question (uniformly among
//! those asked so far), the rest ask a new one, so the target's cache hit
//! rates settle near `repeat_ratio` whatever its cache does.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug)]
pub struct PromptMix {
    rng: StdRng,
    prompts: Vec<String>,
    chatbot_ids: Vec<String>,
    repeat_ratio: f64,
    asked: Vec<(usize, String)>,
    fresh: usize,
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

impl PromptMix {
    pub fn new(seed: u64, prompts: &[String], chatbot_ids: &[String], repeat_ratio: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            prompts: if prompts.is_empty() {
                CORPUS.iter().map(|s| (*s).to_owned()).collect()
            } else {
                prompts.to_vec()
            },
            chatbot_ids: chatbot_ids.to_vec(),
            repeat_ratio,
            asked: Vec::new(),
            fresh: 0,
        }
    }

    /// The chatbot and the question of the next request.
    pub fn next_ask(&mut self) -> (String, String) {
        if !self.asked.is_empty() && self.rng.random::<f64>() < self.repeat_ratio {
            let (bot, q) = &self.asked[self.rng.random_range(0..self.asked.len())];
            return (self.chatbot_ids[*bot].clone(), q.clone());
        }
        let n = self.fresh;
        self.fresh += 1;
        let base = &self.prompts[n % self.prompts.len()];
        // A list given in the scenario is asked as written the first time round.
        let q = if n < self.prompts.len() {
            format!("{base}?")
        } else {
            format!("{base}? (question {n})")
        };
        let bot = self.rng.random_range(0..self.chatbot_ids.len());
        self.asked.push((bot, q.clone()));
        (self.chatbot_ids[bot].clone(), q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_follow_the_ratio_and_the_seed() {
        let ids = vec!["60f7b3b3e6b6f40015e6b6f4".to_owned()];
        let mut m = PromptMix::new(3, &[], &ids, 0.6);
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
        let mut a = PromptMix::new(9, &[], &ids, 0.5);
        let mut b = PromptMix::new(9, &[], &ids, 0.5);
        for _ in 0..100 {
            assert_eq!(a.next_ask(), b.next_ask());
        }
    }
}
