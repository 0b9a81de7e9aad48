//! The simulated backend pipeline of one chat request: knowledge-base
//! lookup through the KB cache, the language model emitting tokens, and
//! text-to-speech of each finished sentence through the TTS cache,
//! pipelined as a real backend is (TTS of sentence 1 runs while the tokens
//! of sentence 2 stream; audio chunks go out in order).
//!
//! The pipeline emits [`Step`]s into a channel; the HTTP layer turns them
//! into SSE events or one JSON answer. All timing uses `tokio::time`, so a
//! test can run it with paused time.

use crate::audio;
use crate::cache::{Cache, Memory, Redis, RedisLink};
use crate::corpus;
use crate::faults::Faults;
use crate::metrics::{Metrics, StreamGuard};
use crate::model::Model;
use crate::profile::Profile;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use wire::protocol::{self, AUDIO_FORMAT, CacheOutcome, Done, ErrorKind, StreamError};

/// What the pipeline says, in order: `Start`, tokens and audio, then one of
/// `Done`, `Error` or `Drop`. The large ones are boxed: a stream's channel
/// holds a block of 32 steps from its start.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Start(Box<protocol::Start>),
    Token(String),
    Audio(Box<protocol::Audio>),
    Done(Box<Done>),
    Error(StreamError),
    /// Drop the connection without a last event (injected network fault).
    Drop,
}

/// One chat request, validated.
#[derive(Clone, Debug)]
pub struct Job {
    pub client_id: String,
    pub chatbot_id: String,
    pub message: String,
    pub audio: bool,
    pub streaming: bool,
    /// When the request arrived: every latency counts from here.
    pub received: Instant,
    /// Stop after this many tokens (an OpenAI `max_tokens`); the answer
    /// then has that many words.
    pub max_tokens: Option<usize>,
    /// Go on to at least this many tokens (`min_tokens`, or `max_tokens`
    /// with `ignore_eos`): the answer continues with the corpus's prose.
    pub min_tokens: Option<usize>,
    /// The prompt's tokens (the tokenizer's ids, or its words hashed):
    /// the model's prefill before the first token reads those the prefix
    /// cache does not hold, `--prefill-tokens-per-sec` of them a second.
    pub prompt_ids: Vec<u32>,
}

/// One piece of an answer as it is streamed: a word and its space, or a
/// token of the server's tokenizer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Piece {
    text: String,
    /// Its sentence, and whether it ends it (the speech follows sentences).
    sentence: usize,
    ends_sentence: bool,
}

/// The words of an answer, each with the space after it but the last:
/// split as they are sent, so a stream holds no list of them.
struct Words<'a> {
    sentences: &'a [String],
    s: usize,
    words: Option<std::iter::Peekable<std::str::Split<'a, char>>>,
}

impl Iterator for Words<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        loop {
            let words = match &mut self.words {
                Some(w) => w,
                None => self
                    .words
                    .insert(self.sentences.get(self.s)?.split(' ').peekable()),
            };
            let Some(word) = words.next() else {
                self.s += 1;
                self.words = None;
                continue;
            };
            let ends_sentence = words.peek().is_none();
            let last = ends_sentence && self.s + 1 == self.sentences.len();
            return Some(Piece {
                text: if last {
                    word.to_owned()
                } else {
                    format!("{word} ")
                },
                sentence: self.s,
                ends_sentence,
            });
        }
    }
}

/// Where the caches live.
#[derive(Clone, Debug)]
pub enum CacheChoice {
    /// In this process, each bounded to `entries` (0: caching off).
    Memory { entries: usize },
    /// In a Redis, keys `PREFIX:kb:...` and `PREFIX:tts:...` with a TTL.
    Redis {
        link: Arc<RedisLink>,
        prefix: String,
        ttl: Duration,
    },
}

/// The shared simulation: profile, faults, model capacity, caches, metrics.
#[derive(Debug)]
pub struct Engine {
    pub profile: Profile,
    pub faults: RwLock<Faults>,
    pub model: Model,
    pub kb_cache: Cache,
    pub tts_cache: Cache,
    /// The Redis both caches live in, when they do.
    pub redis: Option<Arc<RedisLink>>,
    pub metrics: Arc<Metrics>,
    /// `--tokenizer`: answers streamed a token of it at a time, and the
    /// prose exact lengths are cut from.
    pub tokens: Option<Arc<tokens::Corpus>>,
    /// `--prefix-cache-blocks`: the model's prefix cache.
    pub prefix: Option<std::sync::Mutex<crate::prefix::PrefixCache>>,
    seed: u64,
    requests: AtomicU64,
}

enum Failure {
    Stream(ErrorKind, &'static str),
    Drop,
    /// The receiver is gone: the client disconnected.
    Gone,
}

/// Where this request's injected faults strike.
#[derive(Debug, Default)]
struct FaultPlan {
    /// A failing error type and the token index before which it strikes.
    fail_at_token: Option<(ErrorKind, usize)>,
    /// The sentence whose speech synthesis fails.
    tts_fail_at: Option<usize>,
    stall_at: Option<usize>,
    stall: Duration,
    tts_slowdown: Duration,
    model_slowdown: Duration,
}

impl FaultPlan {
    fn draw(f: &Faults, tokens: usize, sentences: usize, job: &Job, rng: &mut StdRng) -> Self {
        let audio = job.audio;
        let mut plan = FaultPlan {
            stall: Duration::from_millis(f.stall_ms),
            tts_slowdown: Duration::from_millis(f.tts_slowdown_ms),
            model_slowdown: Duration::from_millis(f.model_slowdown_ms),
            ..FaultPlan::default()
        };
        let u: f64 = rng.random();
        let token = rng.random_range(0..tokens.max(1));
        let mut edge = f.openai_rate;
        if u < edge {
            plan.fail_at_token = Some((ErrorKind::Openai, token));
        } else if u < {
            edge += f.tts_rate;
            edge
        } {
            if audio {
                plan.tts_fail_at = Some(rng.random_range(0..sentences.max(1)));
            }
        } else if u < {
            edge += f.network_rate;
            edge
        } {
            plan.fail_at_token = Some((ErrorKind::Network, token));
        } else if u < edge + f.other_rate {
            plan.fail_at_token = Some((ErrorKind::Other, token));
        }
        if rng.random::<f64>() < f.stall_rate {
            plan.stall_at = Some(rng.random_range(0..tokens.max(1)));
        }
        // Drawn only when set, so a run without it keeps its sequence.
        if job.streaming
            && f.streaming_bug_rate > 0.0
            && plan.fail_at_token.is_none()
            && rng.random::<f64>() < f.streaming_bug_rate
        {
            plan.fail_at_token = Some((ErrorKind::Other, rng.random_range(0..tokens.max(1))));
        }
        plan
    }
}

fn message_of(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Openai => "upstream model timed out",
        ErrorKind::Tts => "speech synthesis failed for a sentence",
        ErrorKind::Network => "connection dropped mid-stream",
        ErrorKind::Validation => "the request was not valid",
        ErrorKind::Other => "internal error while streaming the answer",
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Engine {
    pub fn new(
        profile: Profile,
        faults: Faults,
        model: Model,
        caches: &CacheChoice,
        metrics: Arc<Metrics>,
        seed: u64,
    ) -> Self {
        let (kb_cache, tts_cache, redis) = match caches {
            CacheChoice::Memory { entries } => (
                Cache::Memory(Memory::new(*entries)),
                Cache::Memory(Memory::new(*entries)),
                None,
            ),
            CacheChoice::Redis { link, prefix, ttl } => (
                Cache::Redis(Redis::new(Arc::clone(link), prefix, "kb", *ttl)),
                Cache::Redis(Redis::new(Arc::clone(link), prefix, "tts", *ttl)),
                Some(Arc::clone(link)),
            ),
        };
        Self {
            profile,
            faults: RwLock::new(faults),
            model,
            kb_cache,
            tts_cache,
            redis,
            metrics,
            tokens: None,
            prefix: None,
            seed,
            requests: AtomicU64::new(0),
        }
    }

    /// The caches' backend now: in memory, or Redis pinged (its round
    /// trip to the Prometheus metrics).
    pub async fn cache_state(&self) -> wire::monitoring::CacheState {
        use wire::monitoring::CacheState;
        let Some(link) = &self.redis else {
            return CacheState::InMemory;
        };
        match link.ping().await {
            Ok(rtt) => {
                self.metrics.cache_ping(Some(rtt));
                CacheState::Connected
            }
            Err(why) => {
                self.metrics.cache_ping(None);
                CacheState::Unavailable(why)
            }
        }
    }

    /// The tokens of a text: the tokenizer's ids, or its words hashed.
    pub fn prompt_ids(&self, text: &str) -> Vec<u32> {
        match &self.tokens {
            Some(prose) => prose.tokenizer().encode(text),
            None => text
                .split_whitespace()
                .map(|w| wire::protocol::fnv1a64(w) as u32)
                .collect(),
        }
    }

    /// How many tokens a text is: the tokenizer's count, or its words.
    pub fn count_tokens(&self, text: &str) -> u64 {
        match &self.tokens {
            Some(prose) => prose.tokenizer().count(text) as u64,
            None => text.split_whitespace().count() as u64,
        }
    }

    /// The prompt's tokens the prefix cache holds (then it holds them
    /// all), counted in the metrics; 0 without a prefix cache.
    fn prefix_hit(&self, ids: &[u32]) -> usize {
        let Some(cache) = &self.prefix else {
            return 0;
        };
        let hit = cache.lock().expect("prefix cache lock").lookup(ids);
        self.metrics.prefix_lookup(ids.len() as u64, hit as u64);
        hit
    }

    pub fn faults(&self) -> Faults {
        self.faults.read().expect("faults lock").clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().expect("faults lock") = faults;
    }

    /// Runs one request to its end, sending its steps to `tx`. The guard
    /// is ended exactly once, before the last step is sent.
    pub async fn run(&self, job: Job, guard: StreamGuard, tx: mpsc::Sender<Step>) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = StdRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        match self.answer(&job, &mut rng, &tx).await {
            Ok((complete, done)) => {
                tracing::info!(
                    clientId = %job.client_id,
                    chatbotId = %job.chatbot_id,
                    streaming = job.streaming,
                    firstTokenLatency = done.first_token_latency,
                    firstAudioLatency = done.first_audio_latency,
                    duration = done.duration,
                    wordCount = done.word_count,
                    kbCache = if done.kb_cache == CacheOutcome::Hit { "hit" } else { "miss" },
                    "Stream complete"
                );
                guard.complete(complete, &done);
                let _ = tx.send(Step::Done(Box::new(done))).await;
            }
            Err(Failure::Stream(kind, message)) => {
                tracing::error!(
                    clientId = %job.client_id,
                    chatbotId = %job.chatbot_id,
                    errorType = kind.as_str(),
                    "Stream failed: {message}"
                );
                guard.fail(kind, message);
                let err = StreamError {
                    kind,
                    message: message.to_owned(),
                };
                let _ = tx.send(Step::Error(err)).await;
            }
            Err(Failure::Drop) => {
                tracing::error!(
                    clientId = %job.client_id,
                    chatbotId = %job.chatbot_id,
                    errorType = "network",
                    "Stream failed: connection dropped (injected fault)"
                );
                guard.fail(ErrorKind::Network, message_of(ErrorKind::Network));
                let _ = tx.send(Step::Drop).await;
            }
            // The guard's drop counts the disconnect.
            Err(Failure::Gone) => drop(guard),
        }
    }

    async fn answer(
        &self,
        job: &Job,
        rng: &mut StdRng,
        tx: &mpsc::Sender<Step>,
    ) -> Result<(Duration, Done), Failure> {
        send(
            tx,
            Step::Start(Box::new(protocol::Start {
                client_id: job.client_id.clone(),
                chatbot_id: job.chatbot_id.clone(),
                streaming: job.streaming,
            })),
        )
        .await?;

        let answer = self.sized_answer(job);
        let kb_key = format!("{}\n{}", job.chatbot_id, corpus::normalize(&job.message));
        let kb_found = self.kb_cache.lookup(&kb_key).await;
        self.metrics.kb_lookup(&kb_found);
        let kb_hit = kb_found.is_hit();
        let p = &self.profile;
        pause(if kb_hit { p.kb_hit_ms } else { p.kb_miss_ms }.sample(rng)).await;

        // Words are split as they are sent: a stream holds no list of them
        // (tokens of a tokenizer are listed: the count is the encoding's).
        let sentences = answer.sentences.len();
        let pieces = self.token_pieces(job, &answer);
        let total_tokens: usize = pieces.as_ref().map_or_else(
            || answer.sentences.iter().map(|s| s.split(' ').count()).sum(),
            Vec::len,
        );
        // A failure strikes before a token the stream sends: one past a
        // `max_tokens` cut would never come, and fewer requests would
        // fail than the rate says.
        let sent = total_tokens.min(job.max_tokens.unwrap_or(usize::MAX));
        let plan = FaultPlan::draw(&self.faults(), sent, sentences, job, rng);
        let mut tts_rng = StdRng::seed_from_u64(rng.random());
        let (sentence_tx, mut sentence_rx) = mpsc::unbounded_channel::<usize>();

        let tokens = self.tokens(job, (&answer, pieces), &plan, rng, (tx, sentence_tx));
        let speech = self.speech(job, &answer, &plan, &mut tts_rng, (tx, &mut sentence_rx));

        let ((first_token_at, sent), (first_audio_at, tts_hits, tts_misses)) =
            tokio::try_join!(tokens, speech)?;
        // First token and first audio were counted as they happened; the
        // metrics take the complete latency with the request's end.
        let complete = job.received.elapsed();
        let done = Done {
            word_count: if job.max_tokens.is_some()
                || job.min_tokens.is_some()
                || self.tokens.is_some()
            {
                sent as u64
            } else {
                answer.word_count() as u64
            },
            first_token_latency: ms(first_token_at - job.received),
            first_audio_latency: first_audio_at.map(|a| ms(a - job.received)),
            duration: ms(complete),
            kb_cache: if kb_hit {
                CacheOutcome::Hit
            } else {
                CacheOutcome::Miss
            },
            tts_cache_hits: tts_hits,
            tts_cache_misses: tts_misses,
        };
        Ok((complete, done))
    }

    /// The answer to the job's question, continued with the prose until
    /// it has the least number of words asked (without a tokenizer: a
    /// word is a token).
    fn sized_answer(&self, job: &Job) -> corpus::Answer {
        let mut answer = corpus::answer(&job.chatbot_id, &job.message);
        if let (None, Some(least)) = (&self.tokens, job.min_tokens) {
            let mut more = 0;
            while answer.word_count() < least {
                let next = corpus::answer(&job.chatbot_id, &format!("{} ({more})", job.message));
                answer.sentences.extend(next.sentences);
                more += 1;
            }
        }
        answer
    }

    /// With a tokenizer (and no audio, which follows sentences): the
    /// answer's tokens, one piece each; at least the least asked, cut from
    /// the prose at a place of the question's own when the answer is
    /// shorter; at most `max_tokens`.
    fn token_pieces(&self, job: &Job, answer: &corpus::Answer) -> Option<Vec<Piece>> {
        let prose = self.tokens.as_ref().filter(|_| !job.audio)?;
        let t = prose.tokenizer();
        let mut ids = t.encode(&answer.text());
        if let Some(least) = job.min_tokens
            && ids.len() < least
        {
            let at = (wire::protocol::fnv1a64(&job.message) % prose.len().max(1) as u64) as usize;
            if let Ok(text) = prose.cut(at, least) {
                ids = t.encode(&text);
            }
        }
        if let Some(most) = job.max_tokens {
            ids.truncate(most);
        }
        let n = ids.len();
        Some(
            ids.iter()
                .enumerate()
                .map(|(i, id)| Piece {
                    text: t.decode(&[*id]),
                    sentence: 0,
                    ends_sentence: i + 1 == n,
                })
                .collect(),
        )
    }

    /// The model's tokens, each at its due time; a sentence's index goes
    /// to the speech once its last word is out. Returns when the first
    /// token went and how many were sent.
    async fn tokens(
        &self,
        job: &Job,
        (answer, pieces): (&corpus::Answer, Option<Vec<Piece>>),
        plan: &FaultPlan,
        rng: &mut StdRng,
        (tx, sentence_tx): (&mpsc::Sender<Step>, mpsc::UnboundedSender<usize>),
    ) -> Result<(Instant, usize), Failure> {
        let p = &self.profile;
        let generation = self.model.generate().await;
        let cached = self.prefix_hit(&job.prompt_ids);
        pause(
            p.first_token_ms.sample(rng)
                + plan.model_slowdown
                + self.model.prefill((job.prompt_ids.len() - cached) as u64),
        )
        .await;
        let mean_gap = p.token_interval_ms.sample(rng);
        let mut first_token_at = None;
        let mut index = 0;
        // Tokens are due at absolute times, so the timer's granularity
        // (about 1 ms a sleep) does not add up over a long answer.
        let mut due = Instant::now();
        let stream: Box<dyn Iterator<Item = Piece> + Send + '_> = match pieces {
            Some(tokens) => Box::new(tokens.into_iter()),
            None => Box::new(Words {
                sentences: &answer.sentences,
                s: 0,
                words: None,
            }),
        };
        for piece in stream {
            if job.max_tokens.is_some_and(|most| index >= most) {
                break;
            }
            if index > 0 {
                due += p.jittered(mean_gap, rng).max(self.model.token_floor());
            }
            if plan.stall_at == Some(index) {
                due += plan.stall;
            }
            if due > Instant::now() {
                sleep_until(due).await;
            }
            if let Some((kind, at)) = plan.fail_at_token
                && at == index
            {
                return Err(match kind {
                    ErrorKind::Network => Failure::Drop,
                    kind => Failure::Stream(kind, message_of(kind)),
                });
            }
            send(tx, Step::Token(piece.text)).await?;
            if first_token_at.is_none() {
                let now = Instant::now();
                first_token_at = Some(now);
                // Counted as it happens: a stream that runs for
                // minutes shows in the latencies at once.
                self.metrics.first_token(now - job.received);
            }
            index += 1;
            if piece.ends_sentence && job.audio {
                let _ = sentence_tx.send(piece.sentence);
            }
        }
        drop(sentence_tx);
        drop(generation);
        Ok((first_token_at.unwrap_or_else(Instant::now), index))
    }

    /// Each finished sentence spoken (the TTS cache, then the synthesis
    /// delay) and sent as audio. Returns when the first audio went and the
    /// cache's hits and misses.
    async fn speech(
        &self,
        job: &Job,
        answer: &corpus::Answer,
        plan: &FaultPlan,
        tts_rng: &mut StdRng,
        (tx, sentence_rx): (&mpsc::Sender<Step>, &mut mpsc::UnboundedReceiver<usize>),
    ) -> Result<(Option<Instant>, u64, u64), Failure> {
        let p = &self.profile;
        let (mut first_audio_at, mut hits, mut misses) = (None, 0, 0);
        while let Some(seq) = sentence_rx.recv().await {
            let text = &answer.sentences[seq];
            let found = self.tts_cache.lookup(text).await;
            self.metrics.tts_lookup(&found);
            let hit = found.is_hit();
            let delay = if hit {
                p.tts_hit_ms.sample(tts_rng)
            } else {
                misses += 1;
                p.tts_miss_ms.sample(tts_rng) + plan.tts_slowdown
            };
            hits += u64::from(hit);
            pause(delay).await;
            if plan.tts_fail_at == Some(seq) {
                return Err(Failure::Stream(ErrorKind::Tts, message_of(ErrorKind::Tts)));
            }
            let duration_ms = audio::duration_ms(text);
            send(
                tx,
                Step::Audio(Box::new(protocol::Audio {
                    seq: seq as u32,
                    text: text.clone(),
                    format: AUDIO_FORMAT.to_owned(),
                    duration_ms,
                    cached: hit,
                    data: audio::pcm_base64(duration_ms),
                })),
            )
            .await?;
            if first_audio_at.is_none() {
                let now = Instant::now();
                first_audio_at = Some(now);
                self.metrics.first_audio(now - job.received);
            }
        }
        Ok((first_audio_at, hits, misses))
    }
}

/// Sleeps, skipping the timer for a zero delay (the `fast` profile).
async fn pause(d: Duration) {
    if !d.is_zero() {
        sleep(d).await;
    }
}

/// Sends one step of an answer; a client that is gone ends it.
async fn send(tx: &mpsc::Sender<Step>, step: Step) -> Result<(), Failure> {
    tx.send(step).await.map_err(|_| Failure::Gone)
}
