//! The built-in answer corpus. An answer is a pure function of the chatbot
//! and the normalized message, so a repeated question gets the same answer
//! (and hits the KB and TTS caches) while a new one gets new sentences.
//!
//! Sentences are filled from templates: an opening sentence that restates
//! the question's topic, body sentences with the facts, and a closing
//! offer of help, between 40 and 180 words in all (a chat answer that is
//! read aloud).

use wire::protocol::fnv1a64;

/// One generated answer, sentence by sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub sentences: Vec<String>,
}

impl Answer {
    pub fn word_count(&self) -> usize {
        self.sentences
            .iter()
            .map(|s| s.split_whitespace().count())
            .sum()
    }

    pub fn text(&self) -> String {
        self.sentences.join(" ")
    }
}

/// The message as the caches see it: trimmed, lowercased, inner white space
/// folded, so "Opening hours?" and "  opening   HOURS? " are one question.
pub fn normalize(message: &str) -> String {
    message
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A long English text of at least `words` words: the answers to
/// "question 0", "question 1", ... of one chatbot, in order. Prompts of a
/// chosen length and answers of an asked length are cut from it.
pub fn prose(words: usize) -> String {
    let mut text = String::new();
    let mut count = 0;
    let mut n = 0;
    while count < words {
        let a = answer("000000000000000000000000", &format!("question {n}"));
        count += a.word_count();
        if !text.is_empty() {
            text.push(' ');
        }
        text += &a.text();
        n += 1;
    }
    text
}

/// The answer of `chatbot_id` to `message`.
pub fn answer(chatbot_id: &str, message: &str) -> Answer {
    let key = format!("{chatbot_id}\n{}", normalize(message));
    let mut rng = SplitMix(fnv1a64(&key));
    let topic = topic_of(message).unwrap_or_else(|| TOPICS[rng.below(TOPICS.len())]);

    let mut sentences = vec![fill(OPENINGS[rng.below(OPENINGS.len())], topic, &mut rng)];
    // Body length: mostly 3 to 6 facts, sometimes long answers.
    let body = match rng.below(100) {
        0..=14 => 2,
        15..=59 => 3,
        60..=84 => 4,
        85..=96 => 5,
        _ => 8,
    };
    for _ in 0..body {
        sentences.push(fill(FACTS[rng.below(FACTS.len())], topic, &mut rng));
    }
    sentences.push(fill(CLOSINGS[rng.below(CLOSINGS.len())], topic, &mut rng));
    Answer { sentences }
}

fn topic_of(message: &str) -> Option<&'static str> {
    let m = message.to_lowercase();
    KEYWORDS
        .iter()
        .find(|(word, _)| m.contains(word))
        .map(|(_, topic)| *topic)
}

fn fill(template: &str, topic: &str, rng: &mut SplitMix) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("templates close every slot");
        let slot = &rest[open + 1..close];
        let words: &[&str] = match slot {
            "topic" => &[topic],
            "day" => DAYS,
            "time" => TIMES,
            "number" => NUMBERS,
            "place" => PLACES,
            "channel" => CHANNELS,
            "duration" => DURATIONS,
            "item" => ITEMS,
            "adj" => ADJECTIVES,
            other => panic!("unknown template slot {other}"),
        };
        out.push_str(words[rng.below(words.len())]);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A small deterministic generator (SplitMix64) so that answers do not
/// depend on any crate's RNG algorithm.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const KEYWORDS: &[(&str, &str)] = &[
    ("hour", "opening hours"),
    ("open", "opening hours"),
    ("price", "pricing"),
    ("cost", "pricing"),
    ("ship", "shipping"),
    ("deliver", "delivery"),
    ("return", "returns"),
    ("refund", "refunds"),
    ("account", "account settings"),
    ("password", "account security"),
    ("book", "bookings"),
    ("appointment", "appointments"),
    ("where", "our locations"),
    ("support", "customer support"),
];

const TOPICS: &[&str] = &[
    "opening hours",
    "pricing",
    "shipping",
    "returns",
    "account settings",
    "bookings",
    "our locations",
    "customer support",
    "membership plans",
    "gift cards",
    "the loyalty program",
    "product warranties",
];

const OPENINGS: &[&str] = &[
    "Thanks for asking about {topic} through {channel}, and I am happy to walk you through everything you need to know so that you can plan ahead without surprises.",
    "Great question about {topic}, so let me give you a clear overview of how it works for most {adj} customers and what you can expect from us along the way.",
    "I can certainly help with {topic}, and below you will find the most important details together with a few practical tips that our {place} team usually shares.",
    "When it comes to {topic} on {day}, there are a few things worth knowing up front, and I will keep the explanation short, clear and practical for you today.",
    "Here is what you should know about {topic}, based on the information that our {place} team keeps up to date for every single {adj} customer who asks us.",
];

const FACTS: &[&str] = &[
    "Our {place} is open from {time} to {time} on {day}, and the team there is always glad to help in person.",
    "Most requests are handled within {duration}, although it can take a little longer during the holiday season.",
    "You can reach us through {channel} at any time, and a member of the team will answer as soon as possible.",
    "The {adj} plan starts at {number} dollars per month and includes free updates for the whole year.",
    "Orders above {number} dollars ship for free, and you will receive a tracking link by email once your {item} leaves our warehouse.",
    "If something is not right, you can send the {item} back within {duration} and we will refund the full amount.",
    "Members of the loyalty program collect {number} points for every purchase and can redeem them on {day}.",
    "Please have your order number ready, because it helps us find your details quickly.",
    "On {day} we run a {adj} workshop at our {place}, and places are limited to {number} people.",
    "Bookings can be changed or cancelled free of charge up to {duration} before the appointment.",
    "Every {item} comes with a {adj} warranty of {duration}, which covers parts and labour.",
    "Our {adj} support team answers most questions through {channel} in less than {duration}.",
    "For security reasons we will never ask for your password through {channel} or by phone.",
    "You can update your address, payment details and notification settings from the account page at any time.",
    "Gift cards are available from {number} dollars and never expire, so they make a {adj} present.",
    "We also offer a {adj} option for businesses, with invoices and a dedicated contact person.",
];

const CLOSINGS: &[&str] = &[
    "Is there anything else I can help you with today?",
    "Let me know if you have any other questions.",
    "I hope this helps, and feel free to ask me anything else.",
    "Would you like me to send these details to your email address?",
];

const DAYS: &[&str] = &[
    "weekdays",
    "Saturdays",
    "Sundays",
    "Mondays",
    "Fridays",
    "public holidays",
    "most weekends",
];
const TIMES: &[&str] = &[
    "8 am", "9 am", "10 am", "noon", "5 pm", "6 pm", "8 pm", "9:30 pm",
];
const NUMBERS: &[&str] = &["5", "10", "12", "20", "25", "49", "50", "99", "120", "250"];
const PLACES: &[&str] = &[
    "downtown store",
    "main office",
    "airport branch",
    "service center",
    "flagship showroom",
    "online help desk",
];
const CHANNELS: &[&str] = &[
    "live chat",
    "email",
    "the mobile app",
    "our help center",
    "the contact form",
];
const DURATIONS: &[&str] = &[
    "24 hours",
    "two business days",
    "three days",
    "one week",
    "14 days",
    "30 days",
    "two years",
];
const ITEMS: &[&str] = &[
    "package", "device", "order", "purchase", "item", "gift", "parcel",
];
const ADJECTIVES: &[&str] = &[
    "standard", "premium", "basic", "family", "flexible", "extended", "popular",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_question_same_answer_new_question_new_sentences() {
        let bot = "60f7b3b3e6b6f40015e6b6f4";
        let a = answer(bot, "What are your opening hours?");
        assert_eq!(a, answer(bot, "  what are YOUR opening   hours? "));
        assert!(a.sentences[0].contains("opening hours"));
        let b = answer(bot, "Do you ship abroad?");
        assert_ne!(a, b);
        let other_bot = answer("0123456789abcdef01234567", "What are your opening hours?");
        assert_ne!(a, other_bot);
    }

    #[test]
    fn answers_have_chat_lengths_and_end_sentences() {
        let bot = "60f7b3b3e6b6f40015e6b6f4";
        let counts: Vec<usize> = (0..500)
            .map(|i| answer(bot, &format!("question number {i}")))
            .inspect(|a| {
                for s in &a.sentences {
                    assert!(s.ends_with(['.', '?', '!']), "{s}");
                }
            })
            .map(|a| a.word_count())
            .collect();
        let min = *counts.iter().min().unwrap();
        let max = *counts.iter().max().unwrap();
        assert!(min >= 40 && max <= 220, "word counts {min}..{max}");
    }
}
