//! # refserver: the reference streaming chat backend
//!
//! A server that behaves like the backend of the monitoring guide
//! (`docs/monitoring-guide.md`) and speaks `docs/protocol.md`: the
//! SSE chat stream, every monitoring endpoint with the guide's JSON,
//! feature-flag rollout, Prometheus metrics, KB and TTS caches, latency
//! profiles, a language model of finite capacity and fault injection. It
//! is the harness's embedded default target and the model a real backend
//! is compared against.
//!
//! ARCHITECTURE.md maps its modules.

pub mod audio;
pub mod cache;
pub mod client_id;
pub mod conn;
pub mod corpus;
pub mod faults;
pub mod flags;
pub mod http;
pub mod metrics;
pub mod model;
pub mod openai;
pub mod pipeline;
pub mod prefix;
pub mod profile;
pub mod shared;
pub mod sse;
pub mod system;

use crate::faults::Faults;
use crate::flags::FeatureFlags;
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::model::Model;
use crate::pipeline::Engine;
use crate::profile::{Delay, Overrides, Profile, ProfileName};
use clap::Parser;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The reference streaming chat backend of the monitoring guide.
///
/// Serves POST /api/chat/stream (SSE), the guide's monitoring endpoints
/// under /api/metrics/..., GET /metrics (Prometheus) and the admin
/// endpoint /api/admin/faults. Logs are JSON lines on standard output.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "refserver",
    version,
    allow_negative_numbers = true,
    args_override_self = true
)]
pub struct Cli {
    /// Address to listen on (host:port); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub listen: String,

    /// Built-in latency profile: baseline (the guide's Performance
    /// Baselines), fast (near-zero delays) or degraded (breaches the
    /// guide's warning thresholds).
    #[arg(long, value_enum, default_value_t = ProfileName::Baseline)]
    pub profile: ProfileName,

    /// TOML file of delays over the profile (keys: base, kb_hit_ms,
    /// kb_miss_ms, first_token_ms, token_interval_ms, token_jitter,
    /// tts_hit_ms, tts_miss_ms; a delay is a number of ms or
    /// { median = MS, sigma = S }).
    #[arg(long, value_name = "FILE")]
    pub profile_file: Option<PathBuf>,

    /// Exact knowledge-base delay on a KB cache hit, in ms.
    #[arg(long, value_name = "MS")]
    pub kb_hit_ms: Option<f64>,
    /// Exact knowledge-base delay on a KB cache miss, in ms.
    #[arg(long, value_name = "MS")]
    pub kb_miss_ms: Option<f64>,
    /// Exact model delay from the end of the KB lookup to the first token,
    /// in ms. With --kb-hit-ms 0 --kb-miss-ms 0 it is the first-token latency.
    #[arg(long, value_name = "MS")]
    pub first_token_ms: Option<f64>,
    /// Exact gap between two tokens, in ms (also sets the jitter to 0).
    #[arg(long, value_name = "MS")]
    pub token_interval_ms: Option<f64>,
    /// Exact text-to-speech delay per sentence on a TTS cache hit, in ms.
    #[arg(long, value_name = "MS")]
    pub tts_hit_ms: Option<f64>,
    /// Exact text-to-speech delay per sentence on a TTS cache miss, in ms.
    #[arg(long, value_name = "MS")]
    pub tts_miss_ms: Option<f64>,

    /// Seed of every random draw (delays, faults), for reproducible runs.
    /// Without it, a seed from the clock is used and logged.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Concurrent generation slots of the simulated model; requests beyond
    /// them queue for a slot. 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub model_slots: usize,

    /// Token throughput budget of the model, shared by all streams
    /// generating at once, in tokens per second. 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 0.0)]
    pub model_tokens_per_sec: f64,

    /// Prompt tokens the model reads a second before its first token
    /// (prefill, in its slot: long prompts cost capacity). 0 = no time.
    #[arg(long, value_name = "N", default_value_t = 0.0)]
    pub prefill_tokens_per_sec: f64,

    /// Blocks of 16 prompt tokens the model's prefix cache holds (least
    /// recently used out first): a prompt's leading blocks seen before
    /// skip their prefill. 0 = no prefix cache.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub prefix_cache_blocks: usize,

    /// Count and stream tokens of this tokenizer, as an engine does:
    /// `cl100k_base`, `o200k_base`, or a Hugging Face tokenizer.json (a
    /// file or a model's folder). Without it a token is a word.
    #[arg(long, value_name = "NAME|PATH")]
    pub tokenizer: Option<String>,

    /// Concurrent requests answered at most; beyond, 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_streams: u64,

    /// Share of requests (0-1) failing with an `openai` error event.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fail_openai: f64,
    /// Share of requests (0-1) failing with a `tts` error event.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fail_tts: f64,
    /// Share of requests (0-1) whose connection is dropped mid-stream.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fail_network: f64,
    /// Share of requests (0-1) failing with an `other` error event.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fail_other: f64,
    /// Share of requests (0-1) whose token stream stalls once.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub stall_rate: f64,
    /// Length of a stall, in ms.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub stall_ms: u64,
    /// Extra delay on every text-to-speech cache miss, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub tts_slowdown_ms: u64,
    /// Extra delay on the model's time to first token, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub model_slowdown_ms: u64,
    /// A known regression: every delay before the first token (the
    /// knowledge-base lookup, the model's first token and its prefill)
    /// this many percent longer (a candidate for `loadgen ab`).
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub slower_first_token: f64,
    /// A known regression: the profile's gap between tokens this many
    /// percent longer.
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub slower_tokens: f64,
    /// Share of streamed requests (0-1) failing with an `other` error
    /// event: a fault of the streaming path, gone with the rollout at 0 %.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fail_streaming: f64,

    /// Admin token: flag changes and fault changes then need
    /// `Authorization: Bearer <token>`. Without one, only loopback
    /// clients may make them.
    #[arg(
        long,
        env = "REFSERVER_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,

    /// API key: the chat endpoints (the stream and OpenAI's) then need
    /// `Authorization: Bearer <key>` (401 otherwise), as a staging
    /// backend behind an API gateway does. Monitoring stays open.
    #[arg(
        long,
        env = "REFSERVER_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// Initial rollout percentage of the streaming feature (0-100).
    #[arg(long, value_name = "PERCENT", default_value_t = 100,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub streaming_percent: u8,

    /// Where the KB and TTS caches live: `memory` (in this process, the
    /// default) or a Redis, `redis://HOST:PORT[/DB]`. A Redis that stops
    /// answering makes every lookup a miss (never an error to the user)
    /// and the health degraded; the server reconnects by itself.
    #[arg(long, value_name = "memory|URL", default_value = "memory")]
    pub cache: String,

    /// How long a Redis cache entry lives.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub cache_ttl: Duration,

    /// The prefix of the server's Redis keys (`PREFIX:kb:...`, `PREFIX:tts:...`).
    #[arg(long, value_name = "PREFIX", default_value = "refserver")]
    pub cache_prefix: String,

    /// Entries of each cache (KB, TTS); 0 turns caching off.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub cache_entries: usize,

    /// Events kept for /api/metrics/streaming/events.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub events_capacity: usize,

    /// Log level: error, warn, info or debug (RUST_LOG overrides).
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Log format: json (one object per line) or text.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// On SIGTERM or Ctrl-C, how long open streams may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Open connections at most (lowered to the open-file limit less 100);
    /// past it a new connection gets a 503 with Retry-After and is closed.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// A request's head, then its body, must arrive within this (a fresh
    /// connection's first request too): slow senders are closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, value_name = "DURATION", default_value = "75s", value_parser = humantime::parse_duration)]
    pub keep_alive_timeout: Duration,

    /// While a request is served, how long no byte may move either way
    /// (a client that stopped reading); streams write a comment every 15 s.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Do not send `X-Accel-Buffering: no` on streams: leave buffering to
    /// the proxy's configuration (models a backend that forgot it).
    #[arg(long)]
    pub no_accel_header: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Words of the prose `--tokenizer` answers are cut from: about 40,000
/// tokens.
const PROSE_WORDS: usize = 30_000;

/// `--tokenizer`'s prose, as its tokens; `--prefill-tokens-per-sec`
/// checked.
fn tokens_of(cli: &Cli) -> anyhow::Result<Option<Arc<tokens::Corpus>>> {
    if !cli.prefill_tokens_per_sec.is_finite() || cli.prefill_tokens_per_sec < 0.0 {
        anyhow::bail!(
            "--prefill-tokens-per-sec must be 0 (no prefill time) or a positive number, got {}",
            cli.prefill_tokens_per_sec
        );
    }
    let Some(spec) = &cli.tokenizer else {
        return Ok(None);
    };
    let t = tokens::Tokenizer::load(spec).map_err(|e| anyhow::anyhow!("--tokenizer: {e}"))?;
    Ok(Some(Arc::new(tokens::Corpus::new(
        Arc::new(t),
        &corpus::prose(PROSE_WORDS),
    ))))
}

/// A validated plan: everything the server needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub profile: Profile,
    pub faults: Faults,
    pub seed: u64,
    pub model_slots: usize,
    pub model_tokens_per_sec: f64,
    pub prefill_tokens_per_sec: f64,
    pub prefix_cache_blocks: usize,
    /// `--tokenizer`: the prose exact lengths are cut from, as its tokens.
    pub tokens: Option<Arc<tokens::Corpus>>,
    pub max_streams: u64,
    pub admin_token: Option<String>,
    pub api_key: Option<String>,
    pub streaming_percent: u8,
    pub cache: pipeline::CacheChoice,
    pub events_capacity: usize,
    pub shutdown_grace: Duration,
    pub accel_header: bool,
    pub limits: conn::Limits,
}

/// `--slower-first-token` and `--slower-tokens`: the profile's delays
/// made longer by a percentage, a known regression (before the first
/// token: the lookup and the model's first token; the prefill's rate is
/// slowed in `Config::from_cli`).
fn slower(cli: &Cli, profile: &mut Profile) -> anyhow::Result<()> {
    for (flag, pct) in [
        ("--slower-first-token", cli.slower_first_token),
        ("--slower-tokens", cli.slower_tokens),
    ] {
        if !(0.0..=1000.0).contains(&pct) {
            anyhow::bail!("{flag} {pct}: give a percentage from 0 to 1000");
        }
    }
    let (first, tokens) = (
        1.0 + cli.slower_first_token / 100.0,
        1.0 + cli.slower_tokens / 100.0,
    );
    for d in [
        &mut profile.kb_hit_ms,
        &mut profile.kb_miss_ms,
        &mut profile.first_token_ms,
    ] {
        *d = d.scaled(first);
    }
    profile.token_interval_ms = profile.token_interval_ms.scaled(tokens);
    Ok(())
}

impl Config {
    /// Validates the command line; the error names the flag or file.
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Config> {
        use anyhow::{Context, bail};
        let listen: SocketAddr = cli.listen.parse().with_context(|| {
            format!(
                "--listen: '{}' is not an address like 127.0.0.1:5000",
                cli.listen
            )
        })?;
        let mut profile = match &cli.profile_file {
            Some(path) => Profile::from_file(path, cli.profile)?,
            None => Profile::builtin(cli.profile),
        };
        let fixed = |ms: Option<f64>| ms.map(Delay::Fixed);
        profile.apply(Overrides {
            kb_hit_ms: fixed(cli.kb_hit_ms),
            kb_miss_ms: fixed(cli.kb_miss_ms),
            first_token_ms: fixed(cli.first_token_ms),
            token_interval_ms: fixed(cli.token_interval_ms),
            token_jitter: cli.token_interval_ms.map(|_| 0.0),
            tts_hit_ms: fixed(cli.tts_hit_ms),
            tts_miss_ms: fixed(cli.tts_miss_ms),
        });
        slower(cli, &mut profile)?;
        if let Err(e) = profile.validate() {
            bail!("{}: {}", e.field.flag(), e.problem);
        }
        let faults = Faults {
            openai_rate: cli.fail_openai,
            tts_rate: cli.fail_tts,
            network_rate: cli.fail_network,
            other_rate: cli.fail_other,
            stall_rate: cli.stall_rate,
            stall_ms: cli.stall_ms,
            tts_slowdown_ms: cli.tts_slowdown_ms,
            model_slowdown_ms: cli.model_slowdown_ms,
            streaming_bug_rate: cli.fail_streaming,
        };
        if let Err(e) = faults.validate() {
            bail!("{}", e.describe(faults::FaultField::flag));
        }
        if !cli.model_tokens_per_sec.is_finite() || cli.model_tokens_per_sec < 0.0 {
            bail!(
                "--model-tokens-per-sec must be 0 (unlimited) or a positive number, got {}",
                cli.model_tokens_per_sec
            );
        }
        let tokens = tokens_of(cli)?;
        if cli.max_streams == 0 {
            bail!("--max-streams must be at least 1");
        }
        if cli.admin_token.as_deref() == Some("") {
            bail!(
                "--admin-token (or REFSERVER_ADMIN_TOKEN) is empty; give a token or leave it unset"
            );
        }
        if cli.api_key.as_deref() == Some("") {
            bail!("--api-key (or REFSERVER_API_KEY) is empty; give a key or leave it unset");
        }
        let cache = match cli.cache.as_str() {
            "memory" => pipeline::CacheChoice::Memory {
                entries: cli.cache_entries,
            },
            url if url.starts_with("redis://") => {
                if cli.cache_prefix.is_empty() || cli.cache_prefix.contains(char::is_whitespace) {
                    bail!(
                        "--cache-prefix: a prefix without spaces, e.g. refserver; got {:?}",
                        cli.cache_prefix
                    );
                }
                if cli.cache_ttl.as_secs() == 0 {
                    bail!("--cache-ttl: at least 1s, got {:?}", cli.cache_ttl);
                }
                pipeline::CacheChoice::Redis {
                    link: Arc::new(cache::RedisLink::new(url).map_err(anyhow::Error::msg)?),
                    prefix: cli.cache_prefix.clone(),
                    ttl: cli.cache_ttl,
                }
            }
            other => bail!(
                "--cache: `memory` or a Redis URL like redis://127.0.0.1:6379/0, got {other:?}"
            ),
        };
        let seed = cli.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        Ok(Config {
            listen,
            profile,
            faults,
            seed,
            model_slots: cli.model_slots,
            model_tokens_per_sec: cli.model_tokens_per_sec,
            // Prefill is before the first token too: a slower build reads
            // the prompt slower by the same percentage.
            prefill_tokens_per_sec: cli.prefill_tokens_per_sec
                / (1.0 + cli.slower_first_token / 100.0),
            prefix_cache_blocks: cli.prefix_cache_blocks,
            tokens,
            max_streams: cli.max_streams,
            admin_token: cli.admin_token.clone(),
            api_key: cli.api_key.clone(),
            streaming_percent: cli.streaming_percent,
            cache,
            events_capacity: cli.events_capacity,
            shutdown_grace: cli.shutdown_grace,
            accel_header: !cli.no_accel_header,
            limits: conn::Limits {
                max_connections: conn::within_open_files(cli.max_connections),
                header_read_timeout: cli.header_read_timeout,
                keep_alive_timeout: cli.keep_alive_timeout,
                idle_timeout: cli.idle_timeout,
            },
        })
    }

    /// The configuration of `refserver ARGS...` (without the program name).
    pub fn from_args<I, S>(args: I) -> anyhow::Result<Config>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("refserver"))
            .chain(args.into_iter().map(Into::into));
        Config::from_cli(&Cli::try_parse_from(argv)?)
    }

    /// The shared state of a server with this configuration.
    pub fn state(&self) -> AppState {
        let metrics = Arc::new(Metrics::new(self.events_capacity));
        metrics.set_rollout(self.streaming_percent);
        let mut engine = Engine::new(
            self.profile.clone(),
            self.faults.clone(),
            Model::new(self.model_slots, self.model_tokens_per_sec)
                .with_prefill(self.prefill_tokens_per_sec),
            &self.cache,
            metrics,
            self.seed,
        );
        engine.tokens = self.tokens.clone();
        engine.prefix = (self.prefix_cache_blocks > 0)
            .then(|| std::sync::Mutex::new(prefix::PrefixCache::new(self.prefix_cache_blocks)));
        AppState {
            engine: Arc::new(engine),
            flags: Arc::new(FeatureFlags::new(self.streaming_percent)),
            max_streams: self.max_streams,
            admin_token: self.admin_token.clone(),
            api_key: self.api_key.clone(),
            accel_header: self.accel_header,
            body_timeout: self.limits.header_read_timeout,
        }
    }
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops
/// accepting, closes the connections with no request in progress, lets
/// open streams finish for up to `grace`, and returns (see [`conn`]).
pub async fn serve(
    listener: Arc<TcpListener>,
    state: AppState,
    limits: conn::Limits,
    shutdown: impl Future<Output = conn::Drain> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let metrics = Arc::clone(&state.engine.metrics);
    let sampler = tokio::spawn(sample_system(Arc::clone(&metrics)));
    conn::serve(listener, http::app(state), metrics, limits, shutdown, grace).await;
    sampler.abort();
    Ok(())
}

async fn sample_system(metrics: Arc<Metrics>) {
    let mut sampler = system::Sampler::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        metrics.set_system(sampler.sample());
    }
}

/// A server running in this process (the harness's embedded target).
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    listener: Arc<TcpListener>,
    limits: conn::Limits,
    grace: Duration,
    stop: Option<tokio::sync::oneshot::Sender<conn::Drain>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Generations a reload retired, still draining.
    retired: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A graceful reload (the guide's `pm2 reload`): a new generation of
    /// the accept loop takes the listening socket, so no connection is
    /// refused; the old one ends each of its connections after its next
    /// answer not yet started (which says `Connection: close`); when the
    /// shutdown grace ends, its idle connections close and the busy ones
    /// finish their answer. The state (caches,
    /// counters, flags, faults) carries over. Returns how many reloads
    /// this server has had.
    pub fn reload(&mut self) -> usize {
        let (stop, task) = generation(
            Arc::clone(&self.listener),
            self.state.clone(),
            self.limits,
            self.grace,
        );
        if let Some(old) = self.stop.replace(stop) {
            let _ = old.send(conn::Drain::Reload);
        }
        let old = std::mem::replace(&mut self.task, task);
        self.retired.push(old);
        self.retired.len()
    }

    /// Graceful shutdown, as on SIGTERM; waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(conn::Drain::Stop);
        }
        for old in self.retired.drain(..) {
            old.await.map_err(std::io::Error::other)??;
        }
        (&mut self.task).await.map_err(std::io::Error::other)?
    }
}

/// One generation of the accept loop on `listener`, and what ends it.
fn generation(
    listener: Arc<TcpListener>,
    state: AppState,
    limits: conn::Limits,
    grace: Duration,
) -> (
    tokio::sync::oneshot::Sender<conn::Drain>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<conn::Drain>();
    let task = tokio::spawn(serve(
        listener,
        state,
        limits,
        async move { stopped.await.unwrap_or(conn::Drain::Stop) },
        grace,
    ));
    (stop, task)
}

/// Binds `config.listen` and serves in a background task.
pub async fn spawn(config: &Config) -> std::io::Result<Running> {
    let listener = Arc::new(TcpListener::bind(config.listen).await?);
    let addr = listener.local_addr()?;
    let state = config.state();
    let (stop, task) = generation(
        Arc::clone(&listener),
        state.clone(),
        config.limits,
        config.shutdown_grace,
    );
    Ok(Running {
        addr,
        state,
        listener,
        limits: config.limits,
        grace: config.shutdown_grace,
        stop: Some(stop),
        task,
        retired: Vec::new(),
    })
}

/// `refserver`: logs, binds, serves until SIGTERM or Ctrl-C.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context;
    let config = Config::from_cli(&cli)?;
    init_logging(cli.log_level, cli.log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("--listen: cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            listen = %addr,
            profile = ?cli.profile,
            seed = config.seed,
            modelSlots = config.model_slots,
            modelTokensPerSec = config.model_tokens_per_sec,
            maxStreams = config.max_streams,
            maxConnections = config.limits.max_connections,
            "refserver listening on http://{addr}"
        );
        serve(
            Arc::new(listener),
            config.state(),
            config.limits,
            async {
                shutdown_signal().await;
                conn::Drain::Stop
            },
            config.shutdown_grace,
        )
        .await
        .context("the server stopped with an error")?;
        tracing::info!("refserver stopped");
        Ok(())
    })
}

fn init_logging(level: LogLevel, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slower_first_token_slows_the_prefill_by_the_same_percentage() {
        let config = |extra: &[&str]| {
            let mut args = vec!["refserver", "--prefill-tokens-per-sec", "22000"];
            args.extend_from_slice(extra);
            Config::from_cli(&Cli::parse_from(args)).unwrap()
        };
        let base = config(&[]);
        let slow = config(&["--slower-first-token", "10"]);
        assert_eq!(base.prefill_tokens_per_sec, 22000.0);
        assert!((slow.prefill_tokens_per_sec - 20000.0).abs() < 1e-6);
        let ratio = slow.profile.first_token_ms.mean_ms() / base.profile.first_token_ms.mean_ms();
        assert!((ratio - 1.1).abs() < 1e-9, "{ratio}");
    }
}
