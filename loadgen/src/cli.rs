//! The command line: its flags, its subcommands, and the exit status CI
//! gates on.

use crate::plan::{FailOnArg, RunArgs};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The version `--version` prints: the package's, and the commit it was
/// built from (`build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("LOADGEN_COMMIT"), ")");

/// Load tests and SLO gates for streaming chat backends.
///
/// Exit codes: 0 the run passed, 1 an SLO was violated (or the run was not
/// trustworthy, or did not complete), 2 a usage or run error, 3 (capacity)
/// an objective fails at idle: capacity is undefined for it.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version = VERSION)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a scenario file and writes its reports.
    Run(RunArgs),
    /// Writes a scenario (NAME.toml) and an SLO file (NAME-slo.toml) to
    /// start from: the target is probed (the guide's health endpoint:
    /// chat-v1 and the guide's KPIs; an OpenAI /v1/models: openai-chat
    /// with its first model and an LLM's objectives; else a template to
    /// fill in), and the files are checked as `run --dry-run` checks them.
    /// Never overwrites a file.
    Init(InitFlags),
    /// Runs the reference server as a process of its own, with the flags
    /// of the `refserver` binary (`server/`): the target a scenario without
    /// one gets started inside the load generator. Logs are JSON lines on
    /// standard output; exit 2 when it cannot start.
    Serve(Box<server::Cli>),
    /// Prints the shell's completion script for loadgen on standard
    /// output (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Writes loadgen's manual pages (loadgen.1, and loadgen-run.1 and the
    /// like for each subcommand) to a folder.
    Man {
        /// Where the pages go (made when missing).
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
    /// Finds the highest arrival rate shown to hold every objective of the
    /// SLO file that load moves: a warm-up, an idle step, a geometric ramp
    /// until the first failing step, then bisection. Exit 0 when it meets
    /// --expected-rps (or none was given), 1 when not (or interrupted), 3
    /// when an objective fails at idle (capacity undefined for it).
    Capacity {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        search: CapacityFlags,
    },
    /// Rebuilds every report of a run from its saved files (requests.csv,
    /// latency.hlog), without rerunning; the exit code is the verdict.
    Report {
        /// The run's output folder.
        dir: PathBuf,
        #[command(flatten)]
        judge: Rejudge,
        /// Only the verdict line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Merges the shards of a sharded run (`run --shard I/N`) into one run
    /// and judges it: CSVs concatenated, interval logs and figures added
    /// exactly, then the verdict and every report as for one run. A
    /// missing, interrupted or untrustworthy shard fails it. Exit codes as
    /// `run`'s.
    Merge {
        /// The shards' output folders, or a folder holding `shard-*` folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged run's folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How many shards the run had (default: what the shards say). Give
        /// it when a shard's whole folder may be missing.
        #[arg(long, value_name = "N")]
        shards: Option<u32>,
        #[command(flatten)]
        judge: Rejudge,
        /// Only the verdict line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Key figures across runs: each objective run by run over its levels,
    /// the runs where one crossed into a worse level marked; writes
    /// trend.md and trend.html. Exit 1 when the last run crossed one.
    Trend(TrendArgs),
    /// Lists every metric path an SLO objective or a compare tolerance may
    /// name, client side and server side (`*` stands for any key).
    Paths,
    /// Prints the Prometheus rules file of the guide's alert rules, the
    /// ones a run evaluates (`ci/prometheus/rules.yml` is this with no
    /// flags). For a drill, give its `[alerts]` scale and interval so
    /// Prometheus and the built-in evaluation judge alike.
    AlertRules {
        /// Multiplies every window and `for` (a drill's `alerts.scale`).
        #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
        scale: f64,
        /// The evaluation interval of both groups.
        #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
        interval: Duration,
    },
    /// Watches a target's health and the guide's alert rules; prints each
    /// transition, posts it to a webhook. With --once: checks once, exit 1
    /// when anything fires (for cron or a systemd timer).
    Watch {
        /// Base URL of the target, e.g. http://localhost:5000.
        url: String,
        /// Time between polls.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// Check once and exit: 0 healthy, 1 an alert fires.
        #[arg(long)]
        once: bool,
        /// Slack-compatible webhook: each transition is POSTed as {"text": "..."}.
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// Stop after N polls (default: until Ctrl-C).
        #[arg(long, value_name = "N", default_value_t = 0)]
        count: u64,
    },
    /// The guide's log analysis over the reference server's JSON logs:
    /// latency percentiles of the "Stream complete" lines, the requests
    /// slower than a threshold, errors by type. Malformed lines are
    /// counted and skipped.
    Logs(LogsArgs),
    /// Compares a run's report.json with a baseline's; exit 1 on a
    /// regression beyond tolerance, or on a figure too few samples leave
    /// undecided (unless --accept-inconclusive). Prints a Markdown table.
    Compare(CompareArgs),
    /// The candidate against the baseline on one schedule: every arrival
    /// to both (or alternately) with the same prompt, the difference on
    /// each objective judged on the pairs, and the run stopped as soon as
    /// every objective is shown within its tolerance (exit 0) or one past
    /// it (exit 1); undecided at the cap, it fails (exit 1). Writes
    /// ab.json, ab.md, ab.html, ab-junit.xml and each target's run.
    Ab(AbArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrendOrder {
    Start,
    Given,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Refserver,
    Nginx,
}

/// How a saved run is judged again (`report`, `merge`): by default as it
/// was (the run's SLO file and gate).
#[derive(Debug, Clone, clap::Args)]
pub struct Rejudge {
    /// Judge by this SLO file instead of the run's.
    #[arg(long, value_name = "FILE")]
    pub slo: Option<PathBuf>,
    /// The level that fails the run (default: the run's).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOnArg>,
    /// Objectives with no data do not fail the run (default: the run's).
    #[arg(long)]
    pub allow_missing: bool,
    /// Inconclusive percentiles do not fail the run (default: the run's).
    #[arg(long)]
    pub accept_inconclusive: bool,
}

impl Rejudge {
    /// The gate's flags, over what the run was judged by.
    pub fn gate(&self) -> slo::objective::GateOverride {
        slo::objective::GateOverride {
            fail_on: self.fail_on.map(Into::into),
            allow_missing: self.allow_missing,
            accept_inconclusive: self.accept_inconclusive,
        }
    }
}

/// The CI interface: 0 pass, 1 SLO violated, 2 usage or run error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Pass,
    SloViolated,
    Error,
    /// `loadgen capacity`: an objective fails at idle (exit 3).
    CapacityUndefined,
}

impl From<ExitStatus> for ExitCode {
    fn from(o: ExitStatus) -> ExitCode {
        ExitCode::from(match o {
            ExitStatus::Pass => 0,
            ExitStatus::SloViolated => 1,
            ExitStatus::Error => 2,
            ExitStatus::CapacityUndefined => 3,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct AbArgs {
    /// The scenario: an open model or a trace (one schedule for both).
    pub scenario: PathBuf,
    /// The target the candidate is held against.
    #[arg(long, value_name = "URL")]
    pub baseline: String,
    /// The target judged (the same URL twice: an A/A check of the load
    /// generator and the machine).
    #[arg(long, value_name = "URL")]
    pub candidate: String,
    /// A header sent to both ('NAME: VALUE', ${ENV} expanded).
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// A header sent to the baseline only.
    #[arg(long = "baseline-header", value_name = "'NAME: VALUE'")]
    pub baseline_headers: Vec<String>,
    /// A header sent to the candidate only.
    #[arg(long = "candidate-header", value_name = "'NAME: VALUE'")]
    pub candidate_headers: Vec<String>,
    /// The wire format of both (default: the scenario's).
    #[arg(long, value_enum, value_name = "NAME")]
    pub protocol: Option<crate::plan::ProtocolArg>,
    #[arg(long, value_enum, value_name = "NAME")]
    pub baseline_protocol: Option<crate::plan::ProtocolArg>,
    #[arg(long, value_enum, value_name = "NAME")]
    pub candidate_protocol: Option<crate::plan::ProtocolArg>,
    /// A CA certificate (PEM) both targets' TLS is trusted with.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub baseline_ca_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub candidate_ca_cert: Option<PathBuf>,
    /// Skip TLS verification for both (a test target only).
    #[arg(long)]
    pub insecure: bool,
    #[arg(long, value_enum, default_value_t = crate::plan::Pairing::Mirror)]
    pub pairing: crate::plan::Pairing,
    /// An objective, FIGURE.pNN=TOLERANCE or success_rate=POINTS (e.g.
    /// first_token.p95=5%, complete.p99=20ms); repeat for more. Figures:
    /// first_token, first_audio, complete, inter_token, tokens_per_s,
    /// success_rate. Default: first_token, complete and inter_token p95
    /// +5 %, first_audio p95 +5 % with audio, tokens_per_s p50 -5 %,
    /// success_rate -1 point.
    #[arg(long = "objective", value_name = "SPEC")]
    pub objectives: Vec<String>,
    /// The chance of a right verdict whatever the candidate (1 - alpha).
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Judge at most this many pairs (default: the scenario's arrivals
    /// after its warm-up, half of them alternating).
    #[arg(long, value_name = "N")]
    pub max_pairs: Option<usize>,
    /// Where ab.json, the reports and each target's run go (default
    /// runs/ab-NAME-SECONDS).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The two runs start together this long after ab does (each reads
    /// its scenario and loads its tokenizer first; a run not ready by
    /// then fails, and says so).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub start_in: std::time::Duration,
    /// When decided, how long each target's requests in flight may finish.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub stop_grace: std::time::Duration,
    /// Only the verdict and the objectives.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct TrendArgs {
    /// Run folders or report.json files (e.g. the last N CI artifacts).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where trend.md and trend.html are written.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Runs in the order of their start (`started_at`), or as given
    /// (a CI job's run numbers, commits in history order).
    #[arg(long, value_enum, default_value_t = TrendOrder::Start)]
    pub order: TrendOrder,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The log file: refserver's JSON lines, or an nginx access log in
    /// the guide's `streaming` format.
    pub file: PathBuf,
    /// List the requests slower than this (ms): first token in
    /// refserver's log, `rt` (the whole request) in nginx's.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub slower_than: u64,
    /// Which log it is; `auto`: nginx unless the first line is JSON.
    #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
    pub format: LogFormat,
    /// nginx: count only requests to this path (e.g.
    /// /api/chat/stream); the others are still listed by path.
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline report.json (e.g. reports/baselines/smoke.json).
    pub baseline: PathBuf,
    /// The current report.json.
    pub current: PathBuf,
    /// Tolerance over the defaults: METRIC=PERCENT% or METRIC=ABSOLUTE,
    /// e.g. latency_ms.first_token.p95=5% or requests.success_rate=0.5.
    /// Repeatable.
    #[arg(long, value_name = "METRIC=TOL")]
    pub tolerance: Vec<String>,
    /// Where comparison.md and comparison.html are written (default:
    /// the current report's folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Figures too few samples leave undecided do not fail the
    /// comparison (a regression still does).
    #[arg(long)]
    pub accept_inconclusive: bool,
}

/// The capacity search's own flags (beside `run`'s).
#[derive(clap::Args, Debug, Clone)]
pub struct CapacityFlags {
    /// The shortest measured part of a step (it goes on until its
    /// percentiles have their minimum of requests and are decided).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub step_duration: Duration,
    /// A step's cap on its first try (at least twice the time its
    /// minimum of requests takes); doubled on each repeat.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub step_max_duration: Duration,
    /// How many times one rate is run while its percentiles stay
    /// inconclusive (then it counts as not held) or the self-check
    /// does not trust it (then the client saturated: the search stops).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub step_tries: u32,
    /// Warm the target (caches, connections) at --start-rps this long
    /// before the idle step; 0s to skip.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub warm: Duration,
    /// The warm-up of each step (excluded from its figures).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub step_warmup: Duration,
    /// The first rate tried, requests/s: the idle step, which finds the
    /// objectives that fail without load. Keep it well below the
    /// capacity (a third of it or less).
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    pub start_rps: f64,
    /// The highest rate tried.
    #[arg(long, value_name = "R", default_value_t = 1000.0)]
    pub max_rps: f64,
    /// The lowest rate tried when even the start fails.
    #[arg(long, value_name = "R", default_value_t = 0.1)]
    pub min_rps: f64,
    /// Ramp factor between steps.
    #[arg(long, value_name = "F", default_value_t = 2.0)]
    pub factor: f64,
    /// Stop bisecting when (first failing - last passing) / last passing <= this.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.1)]
    pub precision: f64,
    /// The traffic the service must carry; exit 1 when the capacity is lower.
    #[arg(long, value_name = "R")]
    pub expected_rps: Option<f64>,
    /// End the search after this long, as interrupted (exit 1), with
    /// what it measured written; `--dry-run` prints the worst case the
    /// other flags allow.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_time: Option<Duration>,
}

/// `loadgen init`'s flags.
#[derive(Debug, clap::Args)]
pub struct InitFlags {
    /// The target to probe and to write into the scenario (absent: the
    /// embedded reference server).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Where the files go.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The scenario's name, and its files': NAME.toml and NAME-slo.toml.
    #[arg(long, default_value = "my-backend")]
    pub name: String,
    /// The protocol, instead of what the probe finds.
    #[arg(long, value_enum, value_name = "NAME")]
    pub protocol: Option<crate::plan::ProtocolArg>,
    /// A header for the probe and the scenario, 'Name: value' (repeatable;
    /// `${NAME}` is kept as a reference and read from the environment).
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// A PEM bundle of CAs to trust besides the system's, for the probe
    /// and the scenario's [tls] (an https:// target with a private CA).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// No certificate check, for the probe and the scenario (said at the
    /// top of every report of its runs).
    #[arg(long)]
    pub insecure: bool,
}
