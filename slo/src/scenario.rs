//! Scenario files: what load to send, at what, for how long, and which SLO
//! file judges the run. TOML, parsed strictly: an unknown key, a wrong type
//! or an impossible value is an error naming the file, the line, the key
//! and what is expected.

use crate::protocol::{CHATBOT_ID_LEN, MAX_MESSAGE_CHARS, is_chatbot_id};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::durations::{duration_str, opt_duration_str};

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in reports and output folders.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Base URL of the target (`http://host:port`). Absent: the reference
    /// server is started in-process (the embedded default target).
    pub target: Option<String>,
    /// How long the measured part runs, after the warm-up (e.g. `"30s"`).
    #[serde(with = "duration_str")]
    #[schemars(with = "String")]
    pub duration: Duration,
    /// Excluded from every figure (e.g. `"5s"`); runs before `duration`.
    #[serde(default, with = "duration_str")]
    #[schemars(with = "String")]
    pub warmup: Duration,
    /// Seed of the prompt mix and of Poisson arrivals.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The measured part goes on past `duration` until at least this many
    /// measured requests have ended (up to `max_duration`).
    #[serde(default)]
    pub min_requests: u64,
    /// The measured part goes on past `duration` until every percentile
    /// objective of the SLO file is decided, not inconclusive (up to
    /// `max_duration`).
    #[serde(default)]
    pub until_conclusive: bool,
    /// The longest the measured part may grow to with `min_requests` or
    /// `until_conclusive` (default: 5 times `duration`).
    #[serde(default, with = "opt_duration_str")]
    #[schemars(with = "Option<String>")]
    pub max_duration: Option<Duration>,
    /// The SLO file that judges the run, relative to this file.
    pub slo: Option<PathBuf>,
    /// How many shards (load-generator processes) share the load when
    /// the shard's index comes from Kubernetes' `JOB_COMPLETION_INDEX`
    /// (`loadgen run --shards` overrides it).
    pub shards: Option<u32>,
    #[schemars(with = "LoadKeys")]
    pub load: Load,
    #[serde(default)]
    pub request: RequestMix,
    /// Flags of the embedded reference server (ignored with a target).
    #[serde(default)]
    pub server: EmbeddedServer,
    /// The target's wire format: `chat-v1` (docs/protocol.md, the default) or
    /// `openai-chat` (OpenAI chat completions).
    #[serde(default)]
    pub protocol: ProtocolName,
    /// The request of `openai-chat`.
    #[serde(default)]
    pub openai: Option<OpenAiRequest>,
    /// Request headers, e.g. `Authorization = "Bearer ${API_KEY}"`;
    /// `${NAME}` is read from the environment. Values are never written
    /// to any output (only the names are).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// How an `https://` target is trusted.
    #[serde(default)]
    pub tls: Tls,
    /// The request and the event rules of `protocol = "template"`.
    #[serde(default)]
    pub template: Option<crate::template::Template>,
    /// Prompts (or conversations) from a file instead of the built-in
    /// corpus.
    #[serde(default)]
    pub dataset: Option<Dataset>,
    /// Prompts and answers of drawn lengths in tokens (`openai-chat`).
    #[serde(default)]
    pub tokens: Option<crate::workload::Tokens>,
    /// Synthetic conversations (`openai-chat`): each arrival (or each
    /// closed user's next iteration) is a conversation of several turns.
    #[serde(default)]
    pub conversation: Option<Conversation>,
    /// Events on the target at given offsets from the run's start (a
    /// drill): `[[timeline]]` tables, each one action.
    #[serde(default, deserialize_with = "timeline_of_keys")]
    #[schemars(with = "Vec<EventKeys>")]
    pub timeline: Vec<TimelineEvent>,
    /// The guide's alert rules, evaluated during the run (a drill): their
    /// timings and, optionally, a Prometheus whose alerts are read too.
    /// Absent: evaluated at the guide's timings whenever the timeline
    /// expects an alert.
    #[serde(default)]
    pub alerts: Option<AlertsConfig>,
    /// Prometheus endpoints read during the run (an engine's metrics, a
    /// GPU exporter's): `[[scrape]]` tables, each judged and reported by
    /// its name (see `slo::engine`).
    #[serde(default)]
    pub scrape: Vec<crate::engine::ScrapeConfig>,
}

/// How the guide's alert rules are evaluated during a run.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often the target's `/metrics` is read and the rules evaluated
    /// (and Prometheus's alerts read), e.g. `"1s"`; default `"15s"`.
    #[serde(default = "AlertsConfig::default_interval", with = "duration_str")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// Multiplies every rule's window and `for` (default 1: the guide's
    /// 5-minute window, `for` 1 or 5 minutes); e.g. 0.05 makes them 15 s
    /// and 3 or 15 s, so a drill runs in a minute. `loadgen alert-rules
    /// --scale` writes the matching Prometheus rules file.
    #[serde(default = "AlertsConfig::default_scale")]
    pub scale: f64,
    /// A Prometheus that scrapes the target with the same rules (e.g.
    /// `http://127.0.0.1:9090`): its alerts (`/api/v1/alerts`) are read
    /// every interval and judge the drill instead of the built-in
    /// evaluation, which is still reported beside them.
    #[serde(default)]
    pub prometheus: Option<String>,
}

impl AlertsConfig {
    fn default_interval() -> Duration {
        Duration::from_secs(15)
    }
    fn default_scale() -> f64 {
        1.0
    }

    /// The rules' timing.
    pub fn timing(&self) -> crate::alerts::rules::Timing {
        crate::alerts::rules::Timing {
            scale: self.scale,
            interval_s: self.interval.as_secs_f64(),
        }
    }
    /// The time scale, the evaluation interval, the Prometheus URL.
    fn check(&self) -> Result<(), InvalidField> {
        let a = self;
        if !(a.scale > 0.0 && a.scale <= 10.0) {
            return Err(invalid(
                "alerts.scale",
                format!(
                    "multiplies the rules' windows: more than 0, at most 10 (0.05 makes the guide's 5 minutes 15 s), got {}",
                    a.scale
                ),
            ));
        }
        if a.interval.is_zero() || a.interval.as_secs_f64() > a.timing().window_s() / 2.0 {
            return Err(invalid(
                "alerts.interval",
                format!(
                    "must be longer than 0 and at most half the rules' window ({}); e.g. \"1s\"",
                    humantime::format_duration(Duration::from_secs_f64(a.timing().window_s()))
                ),
            ));
        }
        if let Some(u) = &a.prometheus
            && !is_http_url(u)
        {
            return Err(invalid(
                "alerts.prometheus",
                format!("{u:?} is not an http(s) URL, e.g. \"http://127.0.0.1:9090\""),
            ));
        }
        Ok(())
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            interval: Self::default_interval(),
            scale: Self::default_scale(),
            prometheus: None,
        }
    }
}

/// After a mitigation, which figure must be back under its threshold for
/// the incident to count as recovered.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Recover {
    /// Every alert of the incident resolved.
    #[default]
    Alerts,
    /// The client's error rate, second by second, at or under the guide's
    /// 2 % for the rest of the run.
    ErrorRate,
    /// The client's p95 first token, second by second, at or under the
    /// guide's 1000 ms for the rest of the run.
    FirstTokenP95,
}

impl Recover {
    pub fn as_str(self) -> &'static str {
        match self {
            Recover::Alerts => "alerts",
            Recover::ErrorRate => "error_rate",
            Recover::FirstTokenP95 => "first_token_p95",
        }
    }
}

/// One event of a timeline: at `at` after the run's first request, one
/// action on the target.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TimelineEvent")]
// The file's spelling of a [`TimelineEvent`]: its action as five keys.
pub struct EventKeys {
    /// From the run's first request (the CSV's time zero), e.g. `"30s"`.
    #[serde(with = "duration_str")]
    #[schemars(with = "String")]
    pub at: Duration,
    /// Its name in the reports (default: what it does).
    #[serde(default)]
    pub name: Option<String>,
    /// Set injected fault rates and delays (the reference server's admin
    /// API, `POST /api/admin/faults`), e.g. `{ openai_rate = 0.2 }`.
    #[serde(default)]
    pub faults: Option<std::collections::BTreeMap<String, f64>>,
    /// Set the streaming rollout percentage (the guide's feature flag,
    /// `POST /api/metrics/feature-flags/rollout`), 0 to 100.
    #[serde(default)]
    pub rollout: Option<u8>,
    /// Run a program and its arguments (only with `--allow-commands`); its
    /// output is logged and its exit status recorded.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Stop or start the Redis of the embedded server's caches
    /// (`[server] redis = true`): `"stop"` or `"start"`.
    #[serde(default)]
    pub redis: Option<RedisAction>,
    /// `true`: reload the embedded server gracefully (the guide's `pm2
    /// reload`): a new generation takes the listening socket while the
    /// old one finishes its answers. For a real target, a `command`.
    #[serde(default)]
    pub reload: Option<bool>,
    /// The guide's alerts this event must set off (a drill's incident),
    /// e.g. `["ChatbotErrorRateCritical"]`: each must fire after it, and
    /// `drill.<name>.detect_s` is the time to the first. An alert no event
    /// expects (of the same family) fails the drill.
    #[serde(default)]
    pub expect: Vec<String>,
    /// The incident (an earlier event's name) this event mitigates:
    /// `drill.<name>.recover_s` is the time from it until `recover` holds.
    #[serde(default)]
    pub mitigates: Option<String>,
    /// What recovered means (with `mitigates`); default `alerts`.
    #[serde(default)]
    pub recover: Option<Recover>,
}

/// What a timeline event does to the embedded server's Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedisAction {
    Stop,
    Start,
}

/// One event of a timeline, checked: at `at` after the run's first
/// request, its one action. The file spells it as [`EventKeys`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(into = "EventKeys")]
pub struct TimelineEvent {
    pub at: Duration,
    /// Its name in the reports (default: what it does).
    pub name: Option<String>,
    pub action: Action,
    /// The guide's alerts it must set off (a drill's incident).
    pub expect: Vec<String>,
    /// The incident (an earlier event's name) it mitigates.
    pub mitigates: Option<String>,
    /// What recovered means (with `mitigates`).
    pub recover: Option<Recover>,
}

/// What a timeline event does: the file spells it as one of five keys.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Set injected fault rates and delays.
    Faults(std::collections::BTreeMap<String, f64>),
    /// Set the streaming rollout percentage.
    Rollout(u8),
    /// Run a program and its arguments.
    Command(Vec<String>),
    /// Reload the embedded server gracefully.
    Reload,
    /// Stop or start the embedded server's Redis.
    Redis(RedisAction),
}

impl EventKeys {
    /// Event `i` (from 0) of the timeline, its one action taken from the
    /// key that spells it; an error in the scenario check's words.
    fn into_event(self, i: usize) -> Result<TimelineEvent, InvalidField> {
        let mut actions: Vec<Action> = [
            self.faults.map(Action::Faults),
            self.rollout.map(Action::Rollout),
            self.command.map(Action::Command),
            (self.reload == Some(true)).then_some(Action::Reload),
            self.redis.map(Action::Redis),
        ]
        .into_iter()
        .flatten()
        .collect();
        if actions.len() != 1 {
            return Err(invalid(
                "timeline",
                format!(
                    "event {} (at {}): one action each: faults, rollout, redis, reload = true or command; it has {}",
                    i + 1,
                    humantime::format_duration(self.at),
                    actions.len()
                ),
            ));
        }
        Ok(TimelineEvent {
            at: self.at,
            name: self.name,
            action: actions.remove(0),
            expect: self.expect,
            mitigates: self.mitigates,
            recover: self.recover,
        })
    }
}

impl From<TimelineEvent> for EventKeys {
    fn from(e: TimelineEvent) -> EventKeys {
        let mut k = EventKeys {
            at: e.at,
            name: e.name,
            faults: None,
            rollout: None,
            command: None,
            redis: None,
            reload: None,
            expect: e.expect,
            mitigates: e.mitigates,
            recover: e.recover,
        };
        match e.action {
            Action::Faults(f) => k.faults = Some(f),
            Action::Rollout(p) => k.rollout = Some(p),
            Action::Command(c) => k.command = Some(c),
            Action::Reload => k.reload = Some(true),
            Action::Redis(r) => k.redis = Some(r),
        }
        k
    }
}

/// `[[timeline]]` as read: each event's keys made its one action.
fn timeline_of_keys<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<TimelineEvent>, D::Error> {
    Vec::<EventKeys>::deserialize(d)?
        .into_iter()
        .enumerate()
        .map(|(i, k)| k.into_event(i).map_err(serde::de::Error::custom))
        .collect()
}

impl TimelineEvent {
    /// What it does, in a few words.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Faults(f) => {
                let set: Vec<String> = f.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("faults: {}", set.join(", "))
            }
            Action::Rollout(p) => format!("streaming rollout {p} %"),
            Action::Command(c) => format!("command: {}", c.join(" ")),
            Action::Reload => "graceful reload".to_owned(),
            Action::Redis(RedisAction::Stop) => "redis stop".to_owned(),
            Action::Redis(RedisAction::Start) => "redis start".to_owned(),
        }
    }

    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.describe())
    }
}

/// The most turns a synthetic conversation may have.
pub const MAX_TURNS: u32 = 1_000;

/// `[conversation]`: synthetic multi-turn sessions, as AIPerf's and
/// GuideLLM's multi-turn workloads: each conversation's turn count is
/// drawn, each turn is sent with the history (the earlier turns and the
/// answers received) after the user's think time. Under the open model
/// conversations arrive at the rate; under the closed model each user
/// holds one conversation at a time.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    /// Turns per conversation, e.g. `{ dist = "uniform", min = 2, max = 6
    /// }`; absent with a dataset's `turns_field` (its conversations give
    /// theirs).
    pub turns: Option<crate::workload::Lengths>,
    /// The pause between an answer and the next turn (a user reading and
    /// typing); absent: `request.think_time`.
    #[serde(default, with = "opt_duration_str")]
    #[schemars(with = "Option<String>")]
    pub think_time: Option<std::time::Duration>,
}

/// A file of prompts: plain text (one a line), JSONL or CSV.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The file, relative to the scenario file.
    pub file: PathBuf,
    /// `text`, `jsonl` or `csv`; absent: from the file's extension
    /// (`.txt`, `.jsonl`, `.csv`).
    pub format: Option<DatasetFormat>,
    /// JSONL and CSV: the field (column) holding the prompt (default
    /// `prompt`).
    pub field: Option<String>,
    /// JSONL, `openai-chat`, closed model: the field holding a
    /// conversation, a list of user turns; each turn is sent with the
    /// history (the earlier turns and the answers received), as a chat
    /// client does.
    pub turns_field: Option<String>,
    /// `shuffle` (the default: a new order each pass, from the seed) or
    /// `sequential` (the file's order, over and over).
    #[serde(default)]
    pub order: DatasetOrder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    Text,
    Jsonl,
    Csv,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DatasetOrder {
    #[default]
    Shuffle,
    Sequential,
}

impl Dataset {
    /// The format given, or the one the file's extension names.
    pub fn format(&self) -> Option<DatasetFormat> {
        self.format.or_else(|| {
            match self
                .file
                .extension()?
                .to_str()?
                .to_ascii_lowercase()
                .as_str()
            {
                "txt" | "text" => Some(DatasetFormat::Text),
                "jsonl" | "ndjson" => Some(DatasetFormat::Jsonl),
                "csv" => Some(DatasetFormat::Csv),
                _ => None,
            }
        })
    }

    /// The prompt's field (JSONL, CSV).
    pub fn field(&self) -> &str {
        self.field.as_deref().unwrap_or("prompt")
    }
}

/// Trust for an `https://` target.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM bundle of CA certificates to trust besides the system's,
    /// relative to the scenario file.
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate (no verification at all). Said loudly in
    /// every report of the run.
    #[serde(default)]
    pub insecure: bool,
}

/// A wire format the load generator speaks.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolName {
    #[default]
    ChatV1,
    OpenaiChat,
    /// Any JSON-over-SSE API, described by the `[template]` table.
    Template,
}

impl ProtocolName {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolName::ChatV1 => "chat-v1",
            ProtocolName::OpenaiChat => "openai-chat",
            ProtocolName::Template => "template",
        }
    }
}

/// What an `openai-chat` request asks for besides the question.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiRequest {
    /// The `model` field.
    pub model: String,
    /// `stream: true` (the default): measured chunk by chunk; false: one
    /// JSON answer.
    #[serde(default = "yes")]
    pub stream: bool,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// More fields of the request body, as they are (e.g. `top_p`).
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, serde_json::Value>")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

fn default_seed() -> u64 {
    1
}

impl Scenario {
    /// The longest the measured part may last: `duration` unless the run
    /// sizes itself (`min_requests`, `until_conclusive`).
    pub fn max_measured(&self) -> Duration {
        if self.min_requests == 0 && !self.until_conclusive {
            self.duration
        } else {
            self.max_duration
                .unwrap_or(self.duration * 5)
                .max(self.duration)
        }
    }
}

/// A problem the check found: the key, and what is wrong.
fn invalid(field: &'static str, problem: String) -> InvalidField {
    InvalidField { field, problem }
}

/// The load: who sends the requests ([`LoadShape`]) and, for the open
/// model, how their starts are spaced. The file spells it as the keys of
/// [`LoadKeys`]; a load read from one has exactly the keys of its model.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "LoadKeys", into = "LoadKeys")]
pub struct Load {
    pub shape: LoadShape,
    /// Open: evenly spaced, Poisson or gamma starts. A closed load keeps
    /// the file's for a capacity search, which opens it.
    pub arrival: Arrival,
    /// `arrival = "gamma"`: the gamma's shape (1 = Poisson; lower is
    /// burstier, higher more even).
    pub burstiness: Option<f64>,
}

/// One variant a model. The options are the file's keys left out, so a
/// load written back (reports, `--dry-run`) is the one read.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadShape {
    /// Closed: users, each sending one request after another, all started
    /// over `ramp_up` (none: at once).
    Users {
        users: usize,
        ramp_up: Option<Duration>,
    },
    /// Closed: a goose test plan (users,time pairs).
    TestPlan(String),
    /// Open: requests per second, whether or not earlier ones finished;
    /// from `rate`, ramping through the stages, if any.
    Open {
        rate: f64,
        max_users: Option<usize>,
        max_lateness: Option<Duration>,
        stages: Vec<Stage>,
    },
    /// Open, on a trace's schedule: each request at its row's time, with
    /// its row's lengths.
    Trace(TraceLoad),
}

/// A stage of an open model's rate: from the rate before it, linearly to
/// `target` over `duration` (k6's ramping arrival rate).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Requests per second at the stage's end.
    pub target: f64,
    #[serde(with = "duration_str")]
    #[schemars(with = "String")]
    pub duration: Duration,
}

/// A trace replayed (`model = "trace"`).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceLoad {
    /// Relative to the scenario file.
    pub file: PathBuf,
    /// Absent: from the file (`.jsonl` Mooncake; `.csv` Azure's header
    /// or ours).
    pub format: Option<TraceFormat>,
    /// Trace seconds per run second (default 1).
    pub speedup: Option<f64>,
    /// Where in the trace the replay starts (default its first row).
    pub start: Option<Duration>,
    pub max_users: Option<usize>,
    pub max_lateness: Option<Duration>,
}

impl TraceLoad {
    pub fn speedup(&self) -> f64 {
        self.speedup.unwrap_or(1.0)
    }
}

/// The public trace formats a replay reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceFormat {
    /// Mooncake's JSONL: `timestamp` (ms), `input_length`,
    /// `output_length`, `hash_ids`.
    Mooncake,
    /// The Azure LLM inference trace's CSV: `TIMESTAMP`, `ContextTokens`,
    /// `GeneratedTokens`.
    Azure,
    /// Ours: CSV with `time_s`, `input_tokens`, `output_tokens`.
    Csv,
}

/// The load model: `model = "closed"` (users) or `"open"` (arrival rate).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Load")]
// The file's spelling of a [`Load`]: the keys of the model in use.
pub struct LoadKeys {
    pub model: Model,
    /// Closed: users, each sending one request after another.
    pub users: Option<usize>,
    /// Closed: time to start all users (linear ramp).
    #[serde(default, with = "opt_duration_str")]
    #[schemars(with = "Option<String>")]
    pub ramp_up: Option<Duration>,
    /// Closed: a goose test plan instead of users/ramp_up, e.g.
    /// `"10,5s;10,30s;0,0s"` (users,time pairs).
    pub test_plan: Option<String>,
    /// Open: requests per second, whether or not earlier ones finished.
    pub rate: Option<f64>,
    /// Open: evenly spaced (`constant`), Poisson (`poisson`) or gamma
    /// (`gamma`, with `burstiness`) starts.
    #[serde(default)]
    pub arrival: Arrival,
    /// `arrival = "gamma"`: the gamma's shape, as vLLM's `--burstiness`:
    /// 1 is Poisson, lower is burstier (0.5: gaps vary 1.4 times as much),
    /// higher more even. Default 1.
    pub burstiness: Option<f64>,
    /// Open: the rate ramps from `rate` through these, e.g. `[{ target =
    /// 50, duration = "1m" }, { target = 50, duration = "2m" }]`; after the
    /// last, it stays at its target.
    pub stages: Option<Vec<Stage>>,
    /// Open: users that carry the requests (default 500). A request whose
    /// start comes while all are busy starts late.
    pub max_users: Option<usize>,
    /// Open: a request later than this is dropped, not sent (default 1s).
    #[serde(default, with = "opt_duration_str")]
    #[schemars(with = "Option<String>")]
    pub max_lateness: Option<Duration>,
    /// Trace: the file replayed, relative to the scenario file.
    pub trace: Option<PathBuf>,
    /// Trace: `mooncake`, `azure` or `csv` (default: from the file).
    pub format: Option<TraceFormat>,
    /// Trace: trace seconds per run second, e.g. 4 replays 4 times as
    /// fast (default 1). The run's `duration` is the replay's length.
    pub speedup: Option<f64>,
    /// Trace: where in the trace the replay starts, from its first row
    /// (default `"0s"`).
    #[serde(default, with = "opt_duration_str")]
    #[schemars(with = "Option<String>")]
    pub trace_start: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    Closed,
    Open,
    Trace,
}

impl Load {
    pub const DEFAULT_MAX_USERS: usize = 500;
    pub const DEFAULT_MAX_LATENESS: Duration = Duration::from_secs(1);

    /// Requests start on a schedule (a rate or a trace), not as users
    /// finish.
    pub fn is_open(&self) -> bool {
        matches!(self.shape, LoadShape::Open { .. } | LoadShape::Trace(_))
    }

    /// Open: requests per second.
    pub fn rate(&self) -> Option<f64> {
        match self.shape {
            LoadShape::Open { rate, .. } => Some(rate),
            _ => None,
        }
    }

    /// Open: the users that carry the requests (the default when unset,
    /// or for a closed load).
    pub fn max_users(&self) -> usize {
        match &self.shape {
            LoadShape::Open {
                max_users: Some(n), ..
            }
            | LoadShape::Trace(TraceLoad {
                max_users: Some(n), ..
            }) => *n,
            _ => Self::DEFAULT_MAX_USERS,
        }
    }

    /// Open: how late a request may start before it is dropped.
    pub fn max_lateness(&self) -> Duration {
        match &self.shape {
            LoadShape::Open {
                max_lateness: Some(d),
                ..
            }
            | LoadShape::Trace(TraceLoad {
                max_lateness: Some(d),
                ..
            }) => *d,
            _ => Self::DEFAULT_MAX_LATENESS,
        }
    }

    /// An open model at `rate` requests/s in place of this load: its
    /// arrival process, users and lateness kept when it is open already.
    pub fn open_at(&self, rate: f64) -> Load {
        match &self.shape {
            LoadShape::Open {
                max_users,
                max_lateness,
                ..
            } => Load {
                shape: LoadShape::Open {
                    rate,
                    max_users: *max_users,
                    max_lateness: *max_lateness,
                    stages: Vec::new(),
                },
                arrival: self.arrival,
                burstiness: self.burstiness,
            },
            _ => Load {
                shape: LoadShape::Open {
                    rate,
                    max_users: None,
                    max_lateness: None,
                    stages: Vec::new(),
                },
                arrival: Arrival::default(),
                burstiness: None,
            },
        }
    }

    /// `users` closed users in place of this load, its ramp-up kept when
    /// it has users already.
    pub fn closed_users(&self, users: usize) -> Load {
        let ramp_up = match self.shape {
            LoadShape::Users { ramp_up, .. } => ramp_up,
            _ => None,
        };
        Load {
            shape: LoadShape::Users { users, ramp_up },
            arrival: Arrival::default(),
            burstiness: None,
        }
    }

    /// The values a flag can set: at least one user, a test plan goose
    /// reads, a rate in range, at least one open-model user.
    fn check(&self) -> Result<(), InvalidField> {
        if let Some(b) = self.burstiness
            && !(b.is_finite() && b > 0.0 && b <= 100.0)
        {
            return Err(invalid(
                "load.burstiness",
                format!("the gamma's shape, more than 0 and at most 100 (1 is Poisson), got {b}"),
            ));
        }
        if let LoadShape::Open { stages, .. } = &self.shape {
            check_stages(stages)?;
        }
        match &self.shape {
            LoadShape::Users { users: 0, .. } => Err(invalid(
                "load.users",
                "at least 1 user, or a test_plan, with model = \"closed\"".into(),
            )),
            LoadShape::Users { .. } => Ok(()),
            LoadShape::TestPlan(plan) => {
                check_test_plan(plan).map_err(|m| invalid("load.test_plan", m))
            }
            LoadShape::Open { rate, .. }
                if !(rate.is_finite() && *rate > 0.0 && *rate <= 100_000.0) =>
            {
                Err(invalid(
                    "load.rate",
                    format!("requests per second, more than 0 and at most 100000, got {rate}"),
                ))
            }
            LoadShape::Open {
                max_users: Some(0), ..
            }
            | LoadShape::Trace(TraceLoad {
                max_users: Some(0), ..
            }) => Err(invalid("load.max_users", "at least 1".into())),
            LoadShape::Trace(t)
                if !t
                    .speedup
                    .is_none_or(|x| x.is_finite() && x > 0.0 && x <= 1000.0) =>
            {
                Err(invalid(
                    "load.speedup",
                    format!(
                        "trace seconds per run second, more than 0 and at most 1000, got {}",
                        t.speedup()
                    ),
                ))
            }
            LoadShape::Open { .. } | LoadShape::Trace(_) => Ok(()),
        }
    }
}

impl TryFrom<LoadKeys> for Load {
    type Error = InvalidField;

    /// The keys of the model in use, and its users or rate; an error in
    /// the words (and with the dotted key) of the scenario's check.
    fn try_from(k: LoadKeys) -> Result<Load, InvalidField> {
        let only = |set: bool, key: &'static str, model: &str| {
            if set {
                Err(invalid(key, format!("only with model = \"{model}\"")))
            } else {
                Ok(())
            }
        };
        let shape = match k.model {
            Model::Closed | Model::Open
                if k.trace.is_some()
                    || k.speedup.is_some()
                    || k.trace_start.is_some()
                    || k.format.is_some() =>
            {
                return Err(invalid(
                    if k.trace.is_some() {
                        "load.trace"
                    } else if k.speedup.is_some() {
                        "load.speedup"
                    } else if k.trace_start.is_some() {
                        "load.trace_start"
                    } else {
                        "load.format"
                    },
                    "only with model = \"trace\"".into(),
                ));
            }
            Model::Trace => {
                only(k.users.is_some(), "load.users", "closed")?;
                only(k.ramp_up.is_some(), "load.ramp_up", "closed")?;
                only(k.test_plan.is_some(), "load.test_plan", "closed")?;
                only(k.rate.is_some(), "load.rate", "open")?;
                only(k.stages.is_some(), "load.stages", "open")?;
                let Some(file) = k.trace else {
                    return Err(invalid(
                        "load",
                        "trace (the file replayed) is required with model = \"trace\"".into(),
                    ));
                };
                LoadShape::Trace(TraceLoad {
                    file,
                    format: k.format,
                    speedup: k.speedup,
                    start: k.trace_start,
                    max_users: k.max_users,
                    max_lateness: k.max_lateness,
                })
            }
            Model::Closed => {
                only(k.rate.is_some(), "load.rate", "open")?;
                only(k.stages.is_some(), "load.stages", "open")?;
                only(k.max_users.is_some(), "load.max_users", "open")?;
                only(k.max_lateness.is_some(), "load.max_lateness", "open")?;
                match (k.test_plan, k.users) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "load.test_plan",
                            "either users (with ramp_up) or a test_plan, not both".into(),
                        ));
                    }
                    (Some(_), None) if k.ramp_up.is_some() => {
                        return Err(invalid(
                            "load.ramp_up",
                            "only with users: a test_plan gives its own ramps".into(),
                        ));
                    }
                    (Some(plan), None) => LoadShape::TestPlan(plan),
                    (None, users) => LoadShape::Users {
                        users: users.unwrap_or(0),
                        ramp_up: k.ramp_up,
                    },
                }
            }
            Model::Open => {
                only(k.users.is_some(), "load.users", "closed")?;
                only(k.ramp_up.is_some(), "load.ramp_up", "closed")?;
                only(k.test_plan.is_some(), "load.test_plan", "closed")?;
                let Some(rate) = k.rate else {
                    return Err(invalid(
                        "load",
                        "rate (requests per second) is required with model = \"open\"".into(),
                    ));
                };
                LoadShape::Open {
                    rate,
                    max_users: k.max_users,
                    max_lateness: k.max_lateness,
                    stages: k.stages.unwrap_or_default(),
                }
            }
        };
        if k.burstiness.is_some() && k.arrival != Arrival::Gamma {
            return Err(invalid(
                "load.burstiness",
                "only with arrival = \"gamma\"".into(),
            ));
        }
        let load = Load {
            shape,
            arrival: k.arrival,
            burstiness: k.burstiness,
        };
        load.check()?;
        Ok(load)
    }
}

impl From<Load> for LoadKeys {
    fn from(l: Load) -> LoadKeys {
        let mut k = LoadKeys {
            model: Model::Closed,
            users: None,
            ramp_up: None,
            test_plan: None,
            rate: None,
            arrival: l.arrival,
            burstiness: l.burstiness,
            stages: None,
            max_users: None,
            max_lateness: None,
            trace: None,
            format: None,
            speedup: None,
            trace_start: None,
        };
        match l.shape {
            LoadShape::Users { users, ramp_up } => {
                k.users = Some(users);
                k.ramp_up = ramp_up;
            }
            LoadShape::TestPlan(plan) => k.test_plan = Some(plan),
            LoadShape::Open {
                rate,
                max_users,
                max_lateness,
                stages,
            } => {
                k.model = Model::Open;
                k.rate = Some(rate);
                k.max_users = max_users;
                k.max_lateness = max_lateness;
                k.stages = (!stages.is_empty()).then_some(stages);
            }
            LoadShape::Trace(t) => {
                k.model = Model::Trace;
                k.trace = Some(t.file);
                k.format = t.format;
                k.speedup = t.speedup;
                k.trace_start = t.start;
                k.max_users = t.max_users;
                k.max_lateness = t.max_lateness;
            }
        }
        k
    }
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced starts.
    #[default]
    Constant,
    /// Exponential gaps (a Poisson process) with the same mean rate.
    Poisson,
    /// Gamma gaps with the same mean rate and a `burstiness` shape.
    Gamma,
}

/// What each request asks.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RequestMix {
    pub chatbot_ids: Vec<String>,
    /// Questions to ask; empty means the built-in corpus.
    pub prompts: Vec<String>,
    /// Share of requests that repeat an earlier question (0-1): it sets
    /// the cache hit rates a server can reach.
    pub repeat_ratio: f64,
    pub audio: bool,
    #[serde(with = "duration_str")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Closed model: the pause between a user's requests.
    #[serde(with = "duration_str")]
    #[schemars(with = "String")]
    pub think_time: Duration,
    /// The most bytes one SSE line or event may hold; past it the request
    /// is `malformed` and its connection closed (bounded memory against
    /// any target).
    pub max_event_bytes: u64,
    /// The most bytes a whole (non-stream) answer may hold.
    pub max_body_bytes: u64,
}

/// Default cap on one SSE line or event: 8 MiB (an audio chunk of the
/// reference server is about 150 KB).
pub const MAX_EVENT_BYTES: u64 = 8 << 20;
/// Default cap on a whole JSON answer: 64 MiB.
pub const MAX_BODY_BYTES: u64 = 64 << 20;

impl Default for RequestMix {
    fn default() -> Self {
        Self {
            chatbot_ids: vec!["60f7b3b3e6b6f40015e6b6f4".to_owned()],
            prompts: Vec::new(),
            repeat_ratio: 0.6,
            audio: true,
            timeout: Duration::from_secs(30),
            think_time: Duration::ZERO,
            max_event_bytes: MAX_EVENT_BYTES,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedServer {
    /// `refserver` flags, e.g. `["--profile", "fast"]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Keep its caches in a Redis the load generator starts for the run
    /// (`redis-server` from the PATH, on a free loopback port, nothing
    /// saved to disk) and stops with it; the timeline's `redis` events
    /// stop and start it.
    #[serde(default)]
    pub redis: bool,
}

/// Whether `url` is one the harness can reach: `http://` or `https://`.
pub fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// An error in a scenario or SLO file: where, which key, what is expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FileError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

pub use crate::invalid::InvalidField;

impl Scenario {
    pub fn from_toml(text: &str, file: &str) -> Result<Scenario, FileError> {
        Scenario::parse(text, file)?.checked(text, file)
    }

    /// The file's text as a scenario, its values not yet checked: the
    /// command line's flags apply before [`Self::checked`] judges them.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, FileError> {
        toml::from_str(text).map_err(|e| toml_error(e, file, text))
    }

    /// This scenario checked, an error naming the line of `file`'s `text`.
    pub fn checked(self, text: &str, file: &str) -> Result<Scenario, FileError> {
        let scenario = self;
        scenario.validate().map_err(|e| FileError {
            file: file.to_owned(),
            line: line_of(text, e.field),
            message: e.to_string(),
        })?;
        if let Some(t) = &scenario.template {
            t.check().map_err(|(key, problem)| FileError {
                file: file.to_owned(),
                line: template_line(text, &key),
                message: format!("{key}: {problem}"),
            })?;
        }
        Ok(scenario)
    }

    /// Checks the values no type can; the error names the dotted key.
    pub fn validate(&self) -> Result<(), InvalidField> {
        self.check()
    }

    fn check(&self) -> Result<(), InvalidField> {
        self.check_identity()?;
        if let Some(a) = &self.alerts {
            a.check()?;
        }
        for s in &self.scrape {
            s.validate().map_err(|problem| invalid("scrape", problem))?;
        }
        let mut names: Vec<&str> = self.scrape.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(
                "scrape",
                format!("two [[scrape]] named {:?}: each needs its own name", w[0]),
            ));
        }
        for (i, e) in self.timeline.iter().enumerate() {
            self.check_event(i, e)?;
        }
        self.load.check()?;
        self.check_request()?;
        self.check_protocol_tables()?;
        if let Some(d) = &self.dataset {
            self.check_dataset(d)?;
        }
        if let Some(t) = &self.tokens {
            self.check_tokens(t)?;
        }
        if let Some(c) = &self.conversation {
            self.check_conversation(c)?;
        }
        if let LoadShape::Trace(_) = &self.load.shape
            && !self
                .tokens
                .as_ref()
                .is_some_and(|t| t.input.is_none() && t.output.is_none())
        {
            return Err(invalid(
                "load.trace",
                "a trace gives each request's prompt and answer lengths: add [tokens] with a tokenizer (and neither input nor output), and protocol = \"openai-chat\"".into(),
            ));
        }
        Ok(())
    }

    /// `[tokens]`: lengths that can be drawn, on the protocol that asks
    /// for an answer's length, not beside a dataset's prompts.
    fn check_tokens(&self, t: &crate::workload::Tokens) -> Result<(), InvalidField> {
        t.check()?;
        if (t.min_tokens || t.ignore_eos)
            && t.output.is_none()
            && !matches!(self.load.shape, LoadShape::Trace(_))
        {
            return Err(invalid(
                if t.min_tokens {
                    "tokens.min_tokens"
                } else {
                    "tokens.ignore_eos"
                },
                "asks for the drawn answer length: give tokens.output (or replay a trace)".into(),
            ));
        }
        if self.protocol != ProtocolName::OpenaiChat {
            return Err(invalid(
                "tokens",
                "prompts and answers by length need protocol = \"openai-chat\" (its max_tokens asks an answer's length)".into(),
            ));
        }
        if t.input.is_some() && (self.dataset.is_some() || !self.request.prompts.is_empty()) {
            return Err(invalid(
                "tokens.input",
                "prompts are cut to a drawn length from tokens.corpus: not beside a dataset or request.prompts (drop tokens.input to count those)".into(),
            ));
        }
        Ok(())
    }

    /// `[conversation]`: turns that can be drawn (or a dataset's), on the
    /// protocol whose messages carry the history, not in a trace.
    fn check_conversation(&self, c: &Conversation) -> Result<(), InvalidField> {
        let from_dataset = self
            .dataset
            .as_ref()
            .is_some_and(|d| d.turns_field.is_some());
        match &c.turns {
            Some(crate::workload::Lengths::Dataset { .. }) => {
                return Err(invalid(
                    "conversation.turns",
                    "fixed, uniform, normal or histogram: a dataset gives token lengths, not turns (its conversations: dataset.turns_field)".into(),
                ));
            }
            Some(t) => {
                t.check_within("conversation.turns", MAX_TURNS, "turns")?;
                if from_dataset {
                    return Err(invalid(
                        "conversation.turns",
                        "the dataset's conversations (dataset.turns_field) give their own turns: drop conversation.turns".into(),
                    ));
                }
            }
            None if !from_dataset => {
                return Err(invalid(
                    "conversation.turns",
                    "how many turns, e.g. turns = { dist = \"fixed\", value = 4 } (or a dataset with turns_field)".into(),
                ));
            }
            None => {}
        }
        if self.protocol != ProtocolName::OpenaiChat {
            return Err(invalid(
                "conversation",
                "conversations need protocol = \"openai-chat\" (its messages carry the history)"
                    .into(),
            ));
        }
        if let LoadShape::Trace(_) = self.load.shape {
            return Err(invalid(
                "conversation",
                "a trace gives single requests at their times: not with [conversation]".into(),
            ));
        }
        Ok(())
    }

    /// Whether each arrival (or closed iteration) is a conversation of
    /// turns sent with their history.
    pub fn multi_turn(&self) -> bool {
        self.conversation.is_some()
            || self
                .dataset
                .as_ref()
                .is_some_and(|d| d.turns_field.is_some())
    }

    /// The pause between a conversation's turns: `[conversation]
    /// think_time`, else `request.think_time`.
    pub fn turn_think_time(&self) -> Duration {
        self.conversation
            .as_ref()
            .and_then(|c| c.think_time)
            .unwrap_or(self.request.think_time)
    }

    /// The name, the target, the headers' names and the duration.
    fn check_identity(&self) -> Result<(), InvalidField> {
        if self.name.trim().is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "name",
                format!(
                    "a name of letters, digits, '-', '_' or '.', got {:?}",
                    self.name
                ),
            ));
        }
        if let Some(t) = &self.target
            && !is_http_url(t)
        {
            return Err(invalid(
                "target",
                format!("a base URL starting with http:// or https://, got {t:?}"),
            ));
        }
        if let Some(t) = &self.target
            && t.split_once("://")
                .is_some_and(|(_, rest)| rest.split('/').next().unwrap_or("").contains('@'))
        {
            return Err(invalid(
                "target",
                "credentials in the URL would be written to the report; give them as a header instead (e.g. [headers] Authorization = \"Basic ${CREDENTIALS}\")".into(),
            ));
        }
        if let Some(e) = self
            .headers
            .keys()
            .find_map(|name| crate::headers::check_name(name).err())
        {
            return Err(invalid("headers", e));
        }
        if self.duration.is_zero() {
            return Err(invalid(
                "duration",
                "must be longer than 0, e.g. \"30s\"".into(),
            ));
        }
        Ok(())
    }

    /// Timeline event `i` (from 0): one action, within the run, one this
    /// target allows; a drill's names, alerts and mitigations.
    fn check_event(&self, i: usize, e: &TimelineEvent) -> Result<(), InvalidField> {
        if e.at > self.warmup + self.max_measured() {
            return Err(invalid(
                "timeline",
                format!(
                    "event {} at {} comes after the run's end ({} with the warm-up)",
                    i + 1,
                    humantime::format_duration(e.at),
                    humantime::format_duration(self.warmup + self.max_measured())
                ),
            ));
        }
        if matches!(e.action, Action::Redis(_)) && !(self.server.redis && self.target.is_none()) {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: redis stops and starts the Redis the load generator starts for the embedded server: set `[server] redis = true` and no target (for a real target's Redis, a `command`, e.g. [\"systemctl\", \"stop\", \"redis\"])",
                    i + 1
                ),
            ));
        }
        if e.action == Action::Reload && self.target.is_some() {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: reload reloads the embedded server; for a real target, a `command` (e.g. [\"pm2\", \"reload\", \"chatbot-backend\"])",
                    i + 1
                ),
            ));
        }
        if matches!(e.action, Action::Rollout(p) if p > 100) {
            return Err(invalid(
                "timeline",
                format!("event {}: rollout is a percentage, 0 to 100", i + 1),
            ));
        }
        if let Action::Faults(f) = &e.action
            && let Some(bad) = f
                .keys()
                .find(|k| !crate::monitoring::FAULT_KEYS.contains(&k.as_str()))
        {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: no fault {bad:?}; the faults are {}",
                    i + 1,
                    crate::monitoring::FAULT_KEYS.join(", ")
                ),
            ));
        }
        if let Action::Faults(f) = &e.action
            && let Some((k, v)) = f
                .iter()
                .find(|(k, v)| k.ends_with("_ms") && !(v.fract() == 0.0 && **v >= 0.0))
        {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: {k} is a whole number of milliseconds, got {v}",
                    i + 1
                ),
            ));
        }
        if matches!(&e.action, Action::Command(c) if c.is_empty()) {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: command is a program and its arguments, e.g. [\"sh\", \"-c\", \"...\"]",
                    i + 1
                ),
            ));
        }
        self.check_drill_event(i, e)
    }

    /// A drill's event: a name, alerts of the guide, a mitigation of an
    /// earlier incident, a name no earlier event took.
    fn check_drill_event(&self, i: usize, e: &TimelineEvent) -> Result<(), InvalidField> {
        let drill = !e.expect.is_empty() || e.mitigates.is_some();
        if drill
            && !e.name.as_deref().is_some_and(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: an event with `expect` or `mitigates` needs a `name` of letters, digits, '-' and '_' (its figures are drill.<name>.detect_s and drill.<name>.recover_s)",
                    i + 1
                ),
            ));
        }
        let rules = crate::alerts::rules::guide();
        if let Some(bad) = e
            .expect
            .iter()
            .find(|x| !rules.iter().any(|r| r.name == x.as_str()))
        {
            let names: Vec<&str> = rules.iter().map(|r| r.name).collect();
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: expect: no alert {bad:?}; the guide's alerts are {} (ci/prometheus/rules.yml)",
                    i + 1,
                    names.join(", ")
                ),
            ));
        }
        if let Some(m) = &e.mitigates
            && !self.timeline.iter().any(|o| {
                o.name.as_deref() == Some(m.as_str()) && !o.expect.is_empty() && o.at <= e.at
            })
        {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: mitigates {m:?}, but no event at or before it of that name expects an alert",
                    i + 1
                ),
            ));
        }
        if e.recover.is_some() && e.mitigates.is_none() {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: recover is only for an event that mitigates",
                    i + 1
                ),
            ));
        }
        if self.timeline[..i]
            .iter()
            .any(|o| o.name.is_some() && o.name == e.name)
        {
            return Err(invalid(
                "timeline",
                format!(
                    "event {}: the name {:?} is taken by an earlier event",
                    i + 1,
                    e.name.as_deref().unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    /// The request table and its prompts.
    fn check_request(&self) -> Result<(), InvalidField> {
        let r = &self.request;
        if r.chatbot_ids.is_empty() {
            return Err(invalid(
                "request.chatbot_ids",
                "at least one chatbot id".into(),
            ));
        }
        if let Some(bad) = r.chatbot_ids.iter().find(|id| !is_chatbot_id(id)) {
            return Err(invalid(
                "request.chatbot_ids",
                format!("{CHATBOT_ID_LEN} lowercase hex characters each, got {bad:?}"),
            ));
        }
        if !(0.0..=1.0).contains(&r.repeat_ratio) {
            return Err(invalid(
                "request.repeat_ratio",
                format!("a fraction from 0 to 1, got {}", r.repeat_ratio),
            ));
        }
        if r.timeout.is_zero() {
            return Err(invalid("request.timeout", "must be longer than 0".into()));
        }
        if self.request.max_event_bytes == 0 {
            return Err(invalid(
                "request.max_event_bytes",
                "must be at least 1".into(),
            ));
        }
        if self.request.max_body_bytes == 0 {
            return Err(invalid(
                "request.max_body_bytes",
                "must be at least 1".into(),
            ));
        }
        if let Some(p) = r
            .prompts
            .iter()
            .find(|p| p.trim().is_empty() || p.chars().count() > MAX_MESSAGE_CHARS)
        {
            return Err(invalid(
                "request.prompts",
                format!(
                    "1 to {MAX_MESSAGE_CHARS} characters each, got {} characters",
                    p.chars().count()
                ),
            ));
        }
        Ok(())
    }

    /// `[openai]` and `[template]`: each with its protocol, and complete.
    fn check_protocol_tables(&self) -> Result<(), InvalidField> {
        if self.openai.is_some() && self.protocol != ProtocolName::OpenaiChat {
            return Err(invalid(
                "openai",
                "only with protocol = \"openai-chat\"".into(),
            ));
        }
        if self.protocol == ProtocolName::OpenaiChat && self.openai.is_none() {
            return Err(invalid(
                "protocol",
                "openai-chat needs an [openai] table with the model, e.g. model = \"llama-3-8b\""
                    .into(),
            ));
        }
        if self.template.is_some() && self.protocol != ProtocolName::Template {
            return Err(invalid(
                "template",
                "only with protocol = \"template\"".into(),
            ));
        }
        if self.protocol == ProtocolName::Template && self.template.is_none() {
            return Err(invalid(
                "protocol",
                "template needs a [template] table: the path, the body and the event rules (see README, \"Your own wire format\")".into(),
            ));
        }
        if let Some(o) = &self.openai {
            if o.model.trim().is_empty() {
                return Err(invalid(
                    "openai.model",
                    "the model name, e.g. \"llama-3-8b\"".into(),
                ));
            }
            if o.max_tokens == Some(0) {
                return Err(invalid("openai.max_tokens", "at least 1".into()));
            }
        }
        Ok(())
    }

    /// A dataset instead of prompts: its format, and a conversation's needs.
    fn check_dataset(&self, d: &Dataset) -> Result<(), InvalidField> {
        let r = &self.request;
        let format = d.format().ok_or(invalid(
            "dataset.format",
            format!(
                "text, jsonl or csv (the extension of {} does not say)",
                d.file.display()
            ),
        ))?;
        if !r.prompts.is_empty() {
            return Err(invalid(
                "dataset",
                "either request.prompts or a [dataset], not both".into(),
            ));
        }
        if format == DatasetFormat::Text && (d.field.is_some() || d.turns_field.is_some()) {
            return Err(invalid(
                "dataset.field",
                "a text dataset is one prompt a line: no field".into(),
            ));
        }
        if d.turns_field.is_some() {
            if d.field.is_some() {
                return Err(invalid(
                    "dataset.turns_field",
                    "either field (one prompt) or turns_field (a conversation), not both".into(),
                ));
            }
            if format != DatasetFormat::Jsonl {
                return Err(invalid(
                    "dataset.turns_field",
                    "conversations come from a JSONL dataset (a list of turns a line)".into(),
                ));
            }
            if self.protocol != ProtocolName::OpenaiChat {
                return Err(invalid(
                    "dataset.turns_field",
                    "conversations need protocol = \"openai-chat\" (its messages carry the history)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// `n` split among `count` parts as evenly as whole numbers allow: the
/// first `n % count` parts take one more. The parts add up to `n`.
pub fn share(n: usize, index: u32, count: u32) -> usize {
    let (i, c) = (index as usize, count.max(1) as usize);
    n / c + usize::from(i < n % c)
}

/// The seed of shard `index`: its own arrivals and prompts, drawn
/// independently of the other shards' and reproducible from the run's
/// seed and the index (SplitMix64 of both).
pub fn shard_seed(seed: u64, index: u32) -> u64 {
    let mut z = seed ^ (u64::from(index) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Scenario {
    /// Shard `index` of `count` (from 0): 1/count of the users (each
    /// step of a test plan split alike) or of the arrival rate (and of
    /// the open model's users and `min_requests`), and its own seed. One
    /// shard is the whole run. A run that sizes itself on its percentiles
    /// (`until_conclusive`) cannot be split: each shard sees only its part.
    pub fn shard(&self, index: u32, count: u32) -> Result<Scenario, InvalidField> {
        let bad = invalid;
        if count == 0 || index >= count {
            return Err(bad(
                "shard",
                format!(
                    "shard {index} of {count}: the index counts from 0, as Kubernetes' JOB_COMPLETION_INDEX (0/{count} to {}/{count})",
                    count.saturating_sub(1)
                ),
            ));
        }
        if count == 1 {
            return Ok(self.clone());
        }
        if self.until_conclusive {
            return Err(bad(
                "until_conclusive",
                "a sharded run cannot size itself on its percentiles (each shard sees only its part): give it a duration".into(),
            ));
        }
        let mut s = self.clone();
        s.seed = shard_seed(self.seed, index);
        s.min_requests = self.min_requests.div_ceil(u64::from(count));
        match &mut s.load.shape {
            LoadShape::Open {
                rate,
                max_users,
                stages,
                ..
            } => {
                *rate /= f64::from(count);
                for st in stages.iter_mut() {
                    st.target /= f64::from(count);
                }
                *max_users = Some(self.load.max_users().div_ceil(count as usize).max(1));
            }
            LoadShape::Users { users, .. } => {
                let mine = share(*users, index, count);
                if mine == 0 {
                    return Err(bad(
                        "load.users",
                        format!(
                            "{users} users cannot be split among {count} shards: shard {index} would have none; use at most {users} shards"
                        ),
                    ));
                }
                *users = mine;
            }
            LoadShape::Trace(_) => {
                return Err(bad(
                    "load.trace",
                    "a trace is replayed by one load generator: its rows cannot be split among shards yet".into(),
                ));
            }
            LoadShape::TestPlan(plan) => {
                let steps: Vec<String> = plan
                    .split(';')
                    .map(|step| match step.split_once(',') {
                        Some((users, time)) => match users.trim().parse::<usize>() {
                            Ok(n) => format!("{},{}", share(n, index, count), time.trim()),
                            Err(_) => step.to_owned(),
                        },
                        None => step.to_owned(),
                    })
                    .collect();
                *plan = steps.join(";");
            }
        }
        Ok(s)
    }
}

/// An open model's stages: rates a run can offer, durations that pass.
fn check_stages(stages: &[Stage]) -> Result<(), InvalidField> {
    if stages.len() > 100 {
        return Err(invalid(
            "load.stages",
            format!("at most 100 stages, got {}", stages.len()),
        ));
    }
    for (i, st) in stages.iter().enumerate() {
        if !(st.target.is_finite() && st.target >= 0.0 && st.target <= 100_000.0) {
            return Err(invalid(
                "load.stages",
                format!(
                    "stage {}: target, requests per second from 0 to 100000, got {}",
                    i + 1,
                    st.target
                ),
            ));
        }
        if st.duration.is_zero() {
            return Err(invalid(
                "load.stages",
                format!("stage {}: a duration of more than 0, e.g. \"30s\"", i + 1),
            ));
        }
    }
    Ok(())
}

/// `users,time;users,time;...` as goose reads a test plan.
fn check_test_plan(plan: &str) -> Result<(), String> {
    for step in plan.split(';') {
        let ok = step.split_once(',').is_some_and(|(users, time)| {
            users.trim().parse::<usize>().is_ok()
                && (humantime::parse_duration(time.trim()).is_ok() || time.trim() == "0")
        });
        if !ok {
            return Err(format!(
                "steps of \"USERS,TIME\" separated by ';', e.g. \"10,5s;10,30s;0,0s\"; {step:?} is not one"
            ));
        }
    }
    Ok(())
}

/// A TOML error as `FILE:LINE: message (at `the line`)`.
pub fn toml_error(e: toml::de::Error, file: &str, text: &str) -> FileError {
    // A table checked as it is read (`serde(try_from)`, e.g. [`LoadKeys`])
    // speaks as the scenario's check: its dotted key, found the same way.
    if let Some((key, _)) = e.message().split_once(": ")
        && CHECKED_AS_READ
            .iter()
            .any(|t| key == *t || key.strip_prefix(t).is_some_and(|k| k.starts_with('.')))
    {
        return FileError {
            file: file.to_owned(),
            line: line_of(text, key),
            message: e.message().to_owned(),
        };
    }
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let source = line
        .and_then(|l| text.lines().nth(l - 1))
        .map(str::trim)
        .filter(|l| !l.is_empty());
    FileError {
        file: file.to_owned(),
        line,
        message: match source {
            Some(src) => format!("{} (at `{src}`)", e.message()),
            None => e.message().to_owned(),
        },
    }
}

/// The tables whose rules their type's conversion checks as the file is
/// read; its errors name their keys as [`Scenario::validate`]'s do.
const CHECKED_AS_READ: &[&str] = &["load", "timeline"];

/// The line of a template key: `template.event[N].key` is looked for in
/// the Nth `[[template.event]]` table (its header when the key is not
/// written there), any other key as [`line_of`] finds it.
fn template_line(text: &str, key: &str) -> Option<usize> {
    let Some(rest) = key.strip_prefix("template.event[") else {
        return line_of(text, key)
            .or_else(|| line_of(text, key.rsplit_once('.').map_or(key, |(t, _)| t)));
    };
    let (n, field) = rest.split_once("].")?;
    let n: usize = n.parse().ok()?;
    let field = field.split('.').next()?;
    let mut seen = 0;
    let mut header = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            if header.is_some() {
                break;
            }
            if t.trim_start_matches('[').trim_end_matches(']').trim() == "template.event"
                && t.starts_with("[[")
            {
                seen += 1;
                if seen == n {
                    header = Some(i + 1);
                }
            }
            continue;
        }
        if header.is_some() && t.split_once('=').is_some_and(|(k, _)| k.trim() == field) {
            return Some(i + 1);
        }
    }
    header
}

/// The line of `key` (dotted: `load.rate`) in a TOML text, for messages.
pub fn line_of(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = match dotted.rsplit_once('.') {
        Some((t, k)) => (Some(t), k),
        None => (None, dotted),
    };
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(header) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            current = Some(header.trim_matches(['[', ']']).trim().to_owned());
            continue;
        }
        let in_table = match table {
            None => current.is_none(),
            Some(tb) => current.as_deref() == Some(tb),
        };
        if in_table
            && let Some((k, _)) = t.split_once('=')
            && k.trim() == key
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "smoke"
duration = "20s"
warmup = "2s"

[load]
model = "open"
rate = 5.0
arrival = "poisson"

[request]
audio = false
repeat_ratio = 0.5
"#;

    #[test]
    fn a_conversation_needs_its_turns_and_openai_chat() {
        let openai = GOOD.replace(
            "[load]",
            "protocol = \"openai-chat\"\n[openai]\nmodel = \"m\"\n[load]",
        );
        let with =
            |base: &str, text: &str| Scenario::from_toml(&format!("{base}\n{text}\n"), "c.toml");
        let s = with(
            &openai,
            "[conversation]\nturns = { dist = \"uniform\", min = 2, max = 5 }\nthink_time = \"2s\"",
        )
        .unwrap();
        assert!(s.multi_turn());
        assert_eq!(s.turn_think_time(), Duration::from_secs(2));
        let s = with(
            &openai,
            "[conversation]\nturns = { dist = \"fixed\", value = 3 }",
        )
        .unwrap();
        assert_eq!(
            s.turn_think_time(),
            s.request.think_time,
            "absent: request.think_time"
        );
        for (base, text, says) in [
            (
                &openai,
                "[conversation]\nthink_time = \"1s\"",
                "conversation.turns: how many turns",
            ),
            (
                &openai,
                "[conversation]\nturns = { dist = \"fixed\", value = 0 }",
                "conversation.turns: lengths of 1 to 1000 turns, got 0 to 0",
            ),
            (
                &GOOD.to_owned(),
                "[conversation]\nturns = { dist = \"fixed\", value = 2 }",
                "conversation: conversations need protocol = \"openai-chat\"",
            ),
            (
                &openai,
                "[conversation]\nturns = { dist = \"fixed\", value = 2 }\nthink = \"1s\"",
                "unknown field `think`",
            ),
        ] {
            let e = with(base, text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn a_timeline_takes_one_known_action_per_event_within_the_run() {
        let with = |event: &str| {
            Scenario::from_toml(&format!("{GOOD}\n[[timeline]]\n{event}\n"), "t.toml")
        };
        let s = with("at = \"5s\"\nfaults = { openai_rate = 0.2 }").unwrap();
        assert_eq!(s.timeline[0].at, Duration::from_secs(5));
        assert_eq!(s.timeline[0].name(), "faults: openai_rate = 0.2");
        assert_eq!(
            with("at = \"1s\"\nrollout = 0").unwrap().timeline[0].describe(),
            "streaming rollout 0 %"
        );
        // Its one action as a value, written back as the key it was.
        let s = with("at = \"1s\"\nrollout = 40").unwrap();
        assert_eq!(s.timeline[0].action, Action::Rollout(40));
        let back = serde_json::to_value(&s.timeline[0]).unwrap();
        assert_eq!(
            (&back["rollout"], &back["reload"]),
            (&40.into(), &None::<bool>.into())
        );
        let e = with("at = \"1s\"\nrollout = 0\nreload = true\ncommand = [\"true\"]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml: timeline: event 1 (at 1s): one action each: faults, rollout, redis, reload = true or command; it has 3"
        );
        for (event, says) in [
            (
                "at = \"1s\"\nrollout = 0\nfaults = { tts_rate = 1.0 }",
                "one action each",
            ),
            ("at = \"1s\"", "one action each"),
            (
                "at = \"1s\"\nfaults = { openai = 1.0 }",
                "no fault \"openai\"",
            ),
            ("at = \"1s\"\nrollout = 101", "0 to 100"),
            ("at = \"1s\"\nredis = \"stop\"", "[server] redis = true"),
            ("at = \"1s\"\nreload = false", "one action each"),
            (
                "at = \"1s\"\nfaults = { stall_ms = 1.5 }",
                "stall_ms is a whole number of milliseconds",
            ),
            ("at = \"1s\"\ncommand = []", "a program and its arguments"),
            ("at = \"23s\"\nrollout = 5", "after the run's end (22s"),
            ("at = \"1s\"\nrolout = 5", "unknown field `rolout`"),
        ] {
            let e = with(event).unwrap_err().to_string();
            assert!(e.contains(says), "{event}: {e}");
        }
    }

    #[test]
    fn a_drill_names_its_events_expects_known_alerts_and_mitigates_an_incident() {
        let with = |text: &str| Scenario::from_toml(&format!("{GOOD}\n{text}\n"), "d.toml");
        let spike = "[[timeline]]\nat = \"2s\"\nname = \"spike\"\nfaults = { streaming_bug_rate = 0.3 }\nexpect = [\"ChatbotErrorRateCritical\"]\n";
        let fix = "[[timeline]]\nat = \"8s\"\nname = \"rollout-0\"\nrollout = 0\nmitigates = \"spike\"\nrecover = \"error_rate\"\n";
        let s = with(&format!(
            "[alerts]\ninterval = \"1s\"\nscale = 0.05\n{spike}{fix}"
        ))
        .unwrap();
        assert_eq!(s.timeline[1].recover, Some(Recover::ErrorRate));
        assert_eq!(s.alerts.as_ref().unwrap().timing().window_s(), 15.0);
        for (text, says) in [
            (spike.replace("name = \"spike\"\n", ""), "needs a `name`"),
            (
                spike.replace("name = \"spike\"", "name = \"a.b\""),
                "needs a `name`",
            ),
            (
                spike.replace("ChatbotErrorRateCritical", "ChatbotErrorsHigh"),
                "no alert \"ChatbotErrorsHigh\"",
            ),
            (fix.to_owned(), "no event at or before it"),
            (
                format!("{spike}{}", fix.replace("mitigates = \"spike\"\n", "")),
                "recover is only for an event that mitigates",
            ),
            (
                format!("{spike}{}", fix.replace("rollout-0", "spike")),
                "taken by an earlier event",
            ),
            ("[alerts]\nscale = 0".to_owned(), "alerts.scale"),
            (
                "[alerts]\nscale = 0.01\ninterval = \"15s\"".to_owned(),
                "alerts.interval",
            ),
            (
                "[alerts]\nprometheus = \"localhost:9090\"".to_owned(),
                "alerts.prometheus",
            ),
        ] {
            let e = with(&text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn shards_split_the_load_and_add_up_to_it() {
        let open = Scenario::from_toml(GOOD, "smoke.toml").unwrap();
        let parts: Vec<Scenario> = (0..4).map(|i| open.shard(i, 4).unwrap()).collect();
        let rate: f64 = parts.iter().map(|p| p.load.rate().unwrap()).sum();
        assert!((rate - 5.0).abs() < 1e-9, "{rate}");
        assert!(parts.iter().all(|p| p.load.max_users() == 125));
        let seeds: std::collections::BTreeSet<u64> = parts.iter().map(|p| p.seed).collect();
        assert_eq!(seeds.len(), 4, "each shard its own seed");
        assert_eq!(
            open.shard(2, 4).unwrap().seed,
            parts[2].seed,
            "reproducible"
        );
        assert_eq!(
            open.shard(0, 1).unwrap(),
            open,
            "one shard is the whole run"
        );

        let closed = Scenario::from_toml(
            &GOOD.replace(
                "model = \"open\"\nrate = 5.0\narrival = \"poisson\"",
                "model = \"closed\"\nusers = 10",
            ),
            "c.toml",
        )
        .unwrap();
        let users: Vec<usize> = (0..4)
            .map(|i| match closed.shard(i, 4).unwrap().load.shape {
                LoadShape::Users { users, .. } => users,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(users, [3, 3, 2, 2]);
        let e = closed.shard(10, 11).unwrap_err();
        assert_eq!(e.field, "load.users");
        assert!(e.problem.contains("use at most 10 shards"), "{e}");
        let e = closed.shard(4, 4).unwrap_err();
        assert!(e.problem.contains("counts from 0"), "{e}");

        let mut planned = closed.clone();
        planned.load.shape = LoadShape::TestPlan("10,5s;3,30s;0,0s".into());
        let plans: Vec<String> = (0..2)
            .map(|i| match planned.shard(i, 2).unwrap().load.shape {
                LoadShape::TestPlan(plan) => plan,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(plans, ["5,5s;2,30s;0,0s", "5,5s;1,30s;0,0s"]);

        let mut sizing = open.clone();
        sizing.until_conclusive = true;
        assert_eq!(sizing.shard(0, 2).unwrap_err().field, "until_conclusive");
    }

    #[test]
    fn arrival_shapes_and_traces_name_what_is_wrong() {
        let load = |keys: &str| {
            toml::from_str::<Load>(keys)
                .map(|_| ())
                .map_err(|e| e.message().to_owned())
        };
        assert_eq!(
            load(
                "model = \"open\"\nrate = 2.0\narrival = \"gamma\"\nburstiness = 0.25\nstages = [{ target = 0.0, duration = \"1s\" }]"
            ),
            Ok(())
        );
        for (keys, says) in [
            (
                "model = \"open\"\nrate = 2.0\nburstiness = 0.5",
                "load.burstiness: only with arrival = \"gamma\"",
            ),
            (
                "model = \"open\"\nrate = 2.0\narrival = \"gamma\"\nburstiness = 0.0",
                "load.burstiness: the gamma's shape",
            ),
            (
                "model = \"open\"\nrate = 2.0\nstages = [{ target = -1.0, duration = \"1s\" }]",
                "load.stages: stage 1: target",
            ),
            (
                "model = \"open\"\nrate = 2.0\nstages = [{ target = 1.0, duration = \"0s\" }]",
                "load.stages: stage 1: a duration",
            ),
            (
                "model = \"closed\"\nusers = 2\nstages = []",
                "load.stages: only with model = \"open\"",
            ),
            (
                "model = \"open\"\nrate = 2.0\ntrace = \"t.csv\"",
                "load.trace: only with model = \"trace\"",
            ),
            (
                "model = \"trace\"",
                "load: trace (the file replayed) is required",
            ),
            (
                "model = \"trace\"\ntrace = \"t.csv\"\nrate = 3.0",
                "load.rate: only with model = \"open\"",
            ),
            (
                "model = \"trace\"\ntrace = \"t.csv\"\nspeedup = 0.0",
                "load.speedup: trace seconds per run second",
            ),
        ] {
            let e = load(keys).unwrap_err();
            assert!(e.contains(says), "{keys}: {e}");
        }
    }

    #[test]
    fn an_open_load_in_place_of_another_keeps_only_what_is_open() {
        let open = Load {
            shape: LoadShape::Open {
                rate: 5.0,
                max_users: Some(40),
                max_lateness: Some(Duration::from_secs(2)),
                stages: vec![Stage {
                    target: 20.0,
                    duration: Duration::from_secs(5),
                }],
            },
            arrival: Arrival::Gamma,
            burstiness: Some(0.5),
        };
        let nine = open.open_at(9.0);
        assert_eq!(
            (
                nine.rate(),
                nine.max_users(),
                nine.max_lateness(),
                nine.arrival
            ),
            (Some(9.0), 40, Duration::from_secs(2), Arrival::Gamma)
        );
        // A step of a search holds its rate: no stages; its burstiness kept.
        assert!(matches!(&nine.shape, LoadShape::Open { stages, .. } if stages.is_empty()));
        assert_eq!(nine.burstiness, Some(0.5));
        let closed = Load {
            shape: LoadShape::Users {
                users: 10,
                ramp_up: Some(Duration::from_secs(3)),
            },
            arrival: Arrival::Poisson,
            burstiness: None,
        };
        let l = closed.open_at(9.0);
        assert_eq!(
            l.shape,
            LoadShape::Open {
                rate: 9.0,
                max_users: None,
                max_lateness: None,
                stages: Vec::new(),
            }
        );
        assert_eq!(l.arrival, Arrival::Constant);
        assert_eq!(
            open.closed_users(3).shape,
            LoadShape::Users {
                users: 3,
                ramp_up: None
            },
            "an open load has no ramp-up to keep"
        );
        assert_eq!(
            closed.closed_users(4).shape,
            LoadShape::Users {
                users: 4,
                ramp_up: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn a_load_is_written_back_as_it_was_read() {
        for keys in [
            "model = \"open\"\nrate = 2.5\narrival = \"poisson\"\nmax_users = 7\nmax_lateness = \"2s\"",
            "model = \"open\"\nrate = 1.0",
            "model = \"open\"\nrate = 2.0\narrival = \"gamma\"\nburstiness = 0.5\nstages = [{ target = 9.0, duration = \"5s\" }]",
            "model = \"trace\"\ntrace = \"t.jsonl\"\nspeedup = 4.0\ntrace_start = \"1m\"\nmax_users = 9",
            "model = \"closed\"\nusers = 3\nramp_up = \"4s\"",
            "model = \"closed\"\nusers = 3\narrival = \"poisson\"",
            "model = \"closed\"\ntest_plan = \"1,1s;0,0s\"",
        ] {
            let raw: LoadKeys = toml::from_str(keys).unwrap();
            let load: Load = toml::from_str(keys).unwrap();
            assert_eq!(LoadKeys::from(load.clone()), raw, "{keys}");
            assert_eq!(
                serde_json::to_value(&load).unwrap(),
                serde_json::to_value(&raw).unwrap(),
                "{keys}"
            );
        }
    }

    #[test]
    fn a_good_file_with_defaults() {
        let s = Scenario::from_toml(GOOD, "smoke.toml").unwrap();
        assert_eq!(s.duration, Duration::from_secs(20));
        assert_eq!(s.target, None);
        assert!(s.load.is_open());
        assert_eq!(s.load.arrival, Arrival::Poisson);
        assert_eq!(s.load.max_users(), 500);
        assert_eq!(s.request.timeout, Duration::from_secs(30));
        assert_eq!(s.request.chatbot_ids.len(), 1);
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("repeat_ratio = 0.5", "repeat_ration = 0.5");
        let e = Scenario::from_toml(&text, "smoke.toml").unwrap_err();
        assert_eq!(e.file, "smoke.toml");
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.to_string().contains("repeat_ration"), "{e}");
        assert!(e.to_string().starts_with("smoke.toml:13:"), "{e}");
    }

    #[test]
    fn a_wrong_type_and_a_bad_duration_are_named() {
        let e = Scenario::from_toml(&GOOD.replace("rate = 5.0", "rate = \"fast\""), "s.toml")
            .unwrap_err();
        assert!(e.to_string().contains("rate = \"fast\""), "{e}");
        assert_eq!(e.line, Some(8), "{e}");
        let e = Scenario::from_toml(&GOOD.replace("\"20s\"", "\"twenty\""), "s.toml").unwrap_err();
        assert!(e.to_string().contains("a duration like"), "{e}");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn impossible_values_name_the_key_and_its_line() {
        let e =
            Scenario::from_toml(&GOOD.replace("rate = 5.0", "rate = -1.0"), "s.toml").unwrap_err();
        assert_eq!(e.line, Some(8));
        assert!(e.message.starts_with("load.rate:"), "{e}");
        let e = Scenario::from_toml(
            &GOOD.replace("repeat_ratio = 0.5", "repeat_ratio = 1.5"),
            "s.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(13));
        assert!(e.message.contains("request.repeat_ratio"), "{e}");
        let e =
            Scenario::from_toml(&GOOD.replace("rate = 5.0", "users = 5"), "s.toml").unwrap_err();
        assert!(
            e.message
                .contains("load.users: only with model = \"closed\""),
            "{e}"
        );
        let closed = "name = \"x\"\nduration = \"1s\"\n[load]\nmodel = \"closed\"\n\ntest_plan = \"10;5s\"\n";
        let e = Scenario::from_toml(closed, "c.toml").unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("USERS,TIME"), "{e}");
        let e = Scenario::from_toml(
            &closed.replace("10;5s", "10,5s;0,0s\"\nramp_up = \"3s"),
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:7: load.ramp_up: only with users: a test_plan gives its own ramps"
        );
        let e = Scenario::from_toml(&GOOD.replace("rate = 5.0\n", ""), "s.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml: load: rate (requests per second) is required with model = \"open\""
        );
    }

    #[test]
    fn openai_chat_and_its_table_go_together() {
        let openai = format!(
            "protocol = \"openai-chat\"\n{GOOD}\n[openai]\nmodel = \"m\"\nmax_tokens = 9\n"
        );
        let s = Scenario::from_toml(&openai, "o.toml").unwrap();
        assert_eq!(s.protocol, ProtocolName::OpenaiChat);
        let o = s.openai.unwrap();
        assert!(o.stream, "streamed unless said");
        assert_eq!(o.max_tokens, Some(9));
        let e = Scenario::from_toml(&format!("protocol = \"openai-chat\"\n{GOOD}"), "o.toml")
            .unwrap_err();
        assert!(
            e.message.starts_with("protocol:") && e.message.contains("[openai]"),
            "{e}"
        );
        assert_eq!(e.line, Some(1));
        let e = Scenario::from_toml(&format!("{GOOD}\n[openai]\nmodel = \"m\"\n"), "o.toml")
            .unwrap_err();
        assert!(e.message.contains("openai: only with protocol"), "{e}");
        let e = Scenario::from_toml(
            &openai.replace("max_tokens = 9", "max_tokens = 0"),
            "o.toml",
        )
        .unwrap_err();
        assert!(e.message.starts_with("openai.max_tokens:"), "{e}");
    }
}
