//! Raw flags and the scenario file become one validated plan before
//! anything runs.

use anyhow::{Context, bail};
use clap::Args;
use slo::objective::{FailOn, SloFile};
use slo::scenario::{LoadShape, ProtocolName, Scenario};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The scenario file (TOML), e.g. scenarios/smoke.toml.
    pub scenario: PathBuf,
    /// Base URL of the target, over the scenario's (e.g.
    /// http://127.0.0.1:5000). Without one in either, the reference server
    /// is started in-process.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Output folder (default runs/<scenario>-<unix time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Measured duration, over the scenario's (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// The warm-up before the measured part (e.g. 5s, 0s), over the
    /// scenario's: its requests load the target but are not judged.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// The cap of a run that sizes itself (`min_requests`,
    /// `until_conclusive`), over the scenario's `max_duration`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_duration: Option<Duration>,
    /// A closed model with N users, over the scenario's load.
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    pub users: Option<usize>,
    /// An open model at R requests per second, over the scenario's load.
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// The SLO file to judge by, over the scenario's.
    #[arg(long, value_name = "FILE")]
    pub slo: Option<PathBuf>,
    /// The target's wire format, over the scenario's `protocol`
    /// (`openai-chat` needs the scenario's [openai] table).
    #[arg(long, value_enum, value_name = "NAME")]
    pub protocol: Option<ProtocolArg>,
    /// A request header, 'Name: value', over the scenario's [headers]
    /// (repeatable, as curl takes it); `${NAME}` is read from the
    /// environment, e.g. -H 'Authorization: Bearer ${API_KEY}'. Values are
    /// never written to any output.
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// A PEM bundle of CA certificates to trust (besides the system's) for
    /// an https:// target, over the scenario's tls.ca_cert.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the target's TLS certificate at all. Every report of
    /// the run says so at the top.
    #[arg(long)]
    pub insecure: bool,
    /// The level that fails the run: target, warning or critical.
    #[arg(long, value_enum, default_value_t = FailOnArg::Warning)]
    pub fail_on: FailOnArg,
    /// Objectives that were not measured (no data) do not fail the run;
    /// the report says so. By default they fail it.
    #[arg(long)]
    pub allow_missing: bool,
    /// Percentiles whose 95% interval does not decide them (or that have
    /// too few samples) do not fail the run; the report says so. By
    /// default they fail it.
    #[arg(long)]
    pub accept_inconclusive: bool,
    /// No live view or progress line, and of the summary at the end only
    /// the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
    /// No live view on the terminal: the one-line progress instead (as
    /// when standard output is not a terminal).
    #[arg(long)]
    pub no_tui: bool,
    /// After Ctrl-C or SIGTERM, how long requests in flight may finish
    /// before they are cancelled (as `interrupted`); a second signal
    /// cancels them at once. Every file is written either way.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub stop_grace: Duration,
    /// Run shard I of N (I from 0, as Kubernetes' JOB_COMPLETION_INDEX):
    /// 1/N of the users or of the rate, its own seed and client ids, its
    /// files in OUT/shard-I. It judges nothing (`loadgen merge` does)
    /// unless --judge. In an Indexed Job, JOB_COMPLETION_INDEX gives I and
    /// --shards (or the scenario's `shards`) gives N.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// The number of shards, with the index from JOB_COMPLETION_INDEX
    /// (over the scenario's `shards`).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Send the first request at this wall-clock time (RFC 3339, e.g.
    /// 2026-11-30T12:00:00Z), so that shards start together. More than 1 s
    /// past when the run is ready to start: exit 2.
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub start_at: Option<std::time::SystemTime>,
    /// A shard judges its own part by the SLO file too (exit code as any
    /// run's).
    #[arg(long)]
    pub judge: bool,
    /// Check everything (flags, files, the shard's part of the load) and
    /// print what the run would do, without sending a request or writing
    /// a file; exit 0 when it would start.
    #[arg(long)]
    pub dry_run: bool,
    /// Serve the load generator's own Prometheus metrics at
    /// http://ADDR/metrics while it runs (requests by outcome, latency
    /// histograms, open streams, the self-check), e.g. 0.0.0.0:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// With --metrics-listen: keep serving the final counts this long after
    /// the run, so a last scrape sees them (one scrape interval or more).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub metrics_linger: Duration,
    /// Let the scenario's timeline run its `command` events (programs of
    /// the scenario's author, on this machine).
    #[arg(long)]
    pub allow_commands: bool,
    /// A Prometheus that scrapes the target with the guide's rules
    /// (`loadgen alert-rules`): its alerts are read during the run and
    /// judge the drill (the scenario's `[alerts] prometheus`).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// `loadgen ab` runs each target as a run of its own with this: which
    /// target it is. It stops when its standard input closes.
    #[arg(long, hide = true, value_enum)]
    pub ab_arm: Option<Arm>,
    /// `loadgen ab`: how the two targets share the arrivals.
    #[arg(long, hide = true, value_enum, default_value_t = Pairing::Mirror)]
    pub ab_pairing: Pairing,
}

/// `I/N`, as `--shard` takes it.
fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let parsed = s
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        Some((i, n)) => Err(format!(
            "shard {i} of {n}: the index counts from 0, as Kubernetes' JOB_COMPLETION_INDEX (0/{n} to {}/{n})",
            n.saturating_sub(1)
        )),
        None => Err(format!(
            "{s:?} is not I/N (e.g. 0/4: the first of 4 shards)"
        )),
    }
}

/// The environment variable an Indexed Job sets to each pod's index.
pub const JOB_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The shard a run is (index, count), from `--shard`, or from the Indexed
/// Job's index with `--shards` or the scenario's `shards`; `job_index`:
/// the environment variable's value.
pub fn shard_of(
    flag: Option<(u32, u32)>,
    count_flag: Option<u32>,
    scenario_count: Option<u32>,
    job_index: Option<&str>,
) -> anyhow::Result<Option<(u32, u32)>> {
    if let Some(s) = flag {
        if let Some(n) = count_flag.filter(|&n| n != s.1) {
            bail!("--shards {n} contradicts --shard {}/{}", s.0, s.1);
        }
        return Ok(Some(s));
    }
    let count = count_flag.or(scenario_count);
    match (job_index, count) {
        (Some(i), Some(n)) => {
            let i: u32 = i.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "{JOB_INDEX_ENV}: {i:?} is not a shard index (a whole number from 0)"
                )
            })?;
            parse_shard(&format!("{i}/{n}"))
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{JOB_INDEX_ENV} with --shards/`shards`: {e}"))
        }
        (Some(i), None) => bail!(
            "{JOB_INDEX_ENV} is set ({i}: an Indexed Job) but no shard count is: pass --shards N (the Job's completions) or set `shards` in the scenario"
        ),
        (None, Some(n)) if count_flag.is_some() => bail!(
            "--shards {n} needs the shard's index: --shard I/{n}, or run in an Indexed Job ({JOB_INDEX_ENV})"
        ),
        (None, _) => Ok(None),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    ChatV1,
    OpenaiChat,
    Template,
}

impl From<ProtocolArg> for ProtocolName {
    fn from(p: ProtocolArg) -> ProtocolName {
        match p {
            ProtocolArg::ChatV1 => ProtocolName::ChatV1,
            ProtocolArg::OpenaiChat => ProtocolName::OpenaiChat,
            ProtocolArg::Template => ProtocolName::Template,
        }
    }
}

/// One of `loadgen ab`'s two targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arm {
    Baseline,
    Candidate,
}

/// How `loadgen ab` gives the arrivals to its two targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pairing {
    /// Every arrival to both, at the same instant (the second of each
    /// pair, drawn at random, 0.2 ms later).
    Mirror,
    /// Arrivals in twos: the first to one target (drawn at random), the
    /// second to the other, both with the pair's prompt: each target gets
    /// half the rate.
    Alternate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOnArg {
    Target,
    Warning,
    Critical,
}

impl From<FailOnArg> for FailOn {
    fn from(f: FailOnArg) -> FailOn {
        match f {
            FailOnArg::Target => FailOn::Target,
            FailOnArg::Warning => FailOn::Warning,
            FailOnArg::Critical => FailOn::Critical,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub scenario_file: PathBuf,
    /// `None`: start the reference server in-process.
    pub target: Option<String>,
    pub out: PathBuf,
    pub slo: Option<(PathBuf, SloFile)>,
    /// Headers and TLS trust (resolved: header values are secrets).
    pub reach: crate::client::Reach,
    /// The dataset's conversations, read (None: the scenario's prompts or
    /// the built-in corpus).
    pub dataset: Option<std::sync::Arc<Vec<crate::dataset::Conversation>>>,
    /// `[tokens]`: the tokenizer loaded, the corpus read.
    pub tokens: Option<std::sync::Arc<crate::workload::TokenWork>>,
    /// A trace's rows this run replays, at their offsets.
    pub replay: Option<std::sync::Arc<crate::trace::Replay>>,
    /// What fails the run: `--fail-on`, `--allow-missing`,
    /// `--accept-inconclusive`.
    pub gate: slo::objective::Gate,
    pub quiet: bool,
    /// The live view when standard output is a terminal (not `--no-tui`).
    pub tui: bool,
    /// The objectives a run that sizes itself (`until_conclusive`) waits
    /// to decide; `None`: the SLO file's. A capacity step names its
    /// deciding objectives only.
    pub sizing: Option<Vec<slo::objective::Objective>>,
    /// A run that sizes itself also ends once one of them is shown
    /// breached (a capacity step: the breach decides it).
    pub stop_on_breach: bool,
    /// After a stop, how long requests in flight may finish.
    pub stop_grace: Duration,
    /// This run is shard (index, count) of a sharded run.
    pub shard: Option<(u32, u32)>,
    /// The seed before the shard's own was drawn from it.
    pub whole_seed: u64,
    /// The load of the whole run before the split (a shard's report says it).
    pub whole_load: slo::scenario::Load,
    /// The first request goes out at this wall time (`--start-at`).
    pub start_at: Option<std::time::SystemTime>,
    /// Judge the objectives: always, except a shard not asked to.
    pub judge: bool,
    /// Where the run's own metrics are served, and how long after it.
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub metrics_linger: Duration,
    /// One target of `loadgen ab`.
    pub ab: Option<crate::shared::AbArm>,
}

impl Plan {
    pub fn from_args(args: &RunArgs) -> anyhow::Result<Plan> {
        // The flags override the file, and the file is checked with them
        // applied; a value a flag set is named by the flag.
        let mut scenario = crate::files::read_scenario_with(&args.scenario, |scenario| {
            apply_flags(scenario, args)
        })?;
        let shard = shard_of(
            args.shard,
            args.shards,
            scenario.shards,
            std::env::var(JOB_INDEX_ENV).ok().as_deref(),
        )?;
        let whole_seed = scenario.seed;
        let whole_load = scenario.load.clone();
        if let Some((i, n)) = shard
            && n > 1
            && scenario.target.is_none()
        {
            bail!(
                "--shard {i}/{n}: shards must load one target: give --target (or the scenario's `target`); the embedded reference server would be one per shard"
            );
        }
        if let Some((i, n)) = shard {
            // Checked whole first: an error names the scenario's value.
            if let Err(e) = scenario.validate() {
                bail!("{}: {e}", args.scenario.display());
            }
            scenario = scenario
                .shard(i, n)
                .map_err(|e| anyhow::anyhow!("--shard {i}/{n}: {}: {}", e.field, e.problem))?;
        }
        prometheus_and_commands(&mut scenario, args)?;
        if let Err(e) = scenario.validate() {
            bail!(
                "{}: {}",
                flag_of(e.field, args).unwrap_or(e.field),
                e.problem
            );
        }
        let base = args
            .scenario
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        let reach = reach_of(args, &scenario, &base)?;
        let dataset = match &scenario.dataset {
            Some(d) => Some(std::sync::Arc::new(crate::dataset::load(
                d,
                &base.join(&d.file),
                match scenario.protocol {
                    slo::scenario::ProtocolName::ChatV1 => slo::protocol::MAX_MESSAGE_CHARS,
                    _ => slo::openai::MAX_PROMPT_CHARS,
                },
            )?)),
            None => None,
        };
        let replay = match &scenario.load.shape {
            LoadShape::Trace(t) => {
                let rows = crate::trace::read(&base.join(&t.file), t.format)
                    .map_err(anyhow::Error::msg)?;
                Some(std::sync::Arc::new(crate::trace::window(
                    &rows,
                    t,
                    scenario.duration,
                )))
            }
            _ => None,
        };
        let longest = replay
            .as_ref()
            .and_then(|r| r.iter().map(|(_, row)| row.input).max());
        let tokens = match &scenario.tokens {
            Some(t) => Some(std::sync::Arc::new(
                crate::workload::TokenWork::load(t, &args.scenario, longest)
                    .map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        let slo = slo_of(args, &scenario, &base)?;
        let out = out_of(args, &scenario, shard)?;
        let ab = args.ab_arm.map(|arm| crate::shared::AbArm {
            candidate: arm == Arm::Candidate,
            alternate: args.ab_pairing == Pairing::Alternate,
            seed: scenario.seed,
        });
        Ok(Plan {
            target: scenario.target.clone(),
            scenario,
            scenario_file: args.scenario.clone(),
            out,
            slo,
            reach,
            dataset,
            tokens,
            replay,
            gate: slo::objective::Gate {
                fail_on: args.fail_on.into(),
                allow_missing: args.allow_missing,
                accept_inconclusive: args.accept_inconclusive,
            },
            quiet: args.quiet,
            tui: !args.no_tui,
            sizing: None,
            stop_on_breach: false,
            stop_grace: args.stop_grace,
            shard,
            whole_seed,
            whole_load,
            start_at: args.start_at,
            judge: shard.is_none() || args.judge,
            metrics_listen: args.metrics_listen,
            metrics_linger: args.metrics_linger,
            ab,
        })
    }

    /// What the run would do, in a few lines (`--dry-run`).
    pub fn describe(&self) -> String {
        let sc = &self.scenario;
        let load = |l: &slo::scenario::Load| match &l.shape {
            LoadShape::Open { rate, .. } => format!("open model, {rate} requests/s"),
            LoadShape::Users { users, .. } => format!("closed model, {users} users"),
            LoadShape::TestPlan(p) => format!("closed model, test plan {p}"),
            LoadShape::Trace(t) => format!(
                "trace {} at {}x{}",
                t.file.display(),
                t.speedup(),
                self.replay
                    .as_ref()
                    .map_or(String::new(), |r| format!(", {} requests", r.len()))
            ),
        };
        let mut o = format!(
            "scenario: {} ({})\ntarget: {}\nload: {}\n",
            sc.name,
            self.scenario_file.display(),
            self.target
                .as_deref()
                .unwrap_or("the embedded reference server"),
            load(&sc.load)
        );
        if let Some((i, n)) = self.shard {
            o += &format!(
                "shard: {i} of {n} (from 0), seed {}; the whole run: {}\njudged: {}\n",
                sc.seed,
                load(&self.whole_load),
                if self.judge {
                    "yes (--judge)"
                } else {
                    "no: `loadgen merge` judges the shards together"
                }
            );
        }
        if let Some(t) = self.start_at {
            o += &format!("start at: {}\n", humantime::format_rfc3339_millis(t));
        }
        o += &format!(
            "duration: {} after a {} warm-up\nSLO file: {}\nheaders: {}\nout: {}\n",
            humantime::format_duration(sc.duration),
            humantime::format_duration(sc.warmup),
            self.slo
                .as_ref()
                .map_or("none (the default policy)".to_owned(), |(p, _)| p
                    .display()
                    .to_string()),
            self.reach.header_names().join(", "),
            self.out.display()
        );
        o
    }

    /// Warm-up plus the measured duration.
    pub fn run_length(&self) -> Duration {
        self.scenario.warmup + self.scenario.duration
    }
}

/// The run's flags over the file's values (checked with them applied: a
/// value a flag set is named by the flag).
fn apply_flags(scenario: &mut Scenario, args: &RunArgs) -> anyhow::Result<()> {
    if let Some(d) = args.duration {
        scenario.duration = d;
    }
    if let Some(d) = args.max_duration {
        scenario.max_duration = Some(d);
    }
    if let Some(w) = args.warmup {
        scenario.warmup = w;
    }
    if let Some(users) = args.users {
        scenario.load = scenario.load.closed_users(users);
    }
    if let Some(rate) = args.rate {
        scenario.load = scenario.load.open_at(rate);
    }
    if let Some(t) = &args.target {
        scenario.target = Some(t.clone());
    }
    if let Some(p) = args.protocol {
        scenario.protocol = p.into();
    }
    if let Err(e) = scenario.validate()
        && let Some(flag) = flag_of(e.field, args)
    {
        bail!("{flag}: {}", e.problem);
    }
    Ok(())
}

/// `--prometheus` (the drill's alerts from a real Prometheus), and a
/// timeline's commands, refused without `--allow-commands`.
fn prometheus_and_commands(scenario: &mut Scenario, args: &RunArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.prometheus {
        if !slo::scenario::is_http_url(url) {
            bail!("--prometheus {url:?}: not an http(s) URL, e.g. http://127.0.0.1:9090");
        }
        scenario
            .alerts
            .get_or_insert_with(Default::default)
            .prometheus = Some(url.clone());
    }
    if let Some((i, e)) = scenario
        .timeline
        .iter()
        .enumerate()
        .find(|(_, e)| matches!(e.action, slo::scenario::Action::Command(_)))
        && !args.allow_commands
    {
        bail!(
            "{}: timeline event {} runs a command ({}): pass --allow-commands to let it",
            args.scenario.display(),
            i + 1,
            e.describe()
        );
    }
    Ok(())
}

/// How the target is reached: headers (flags over the file, secrets from
/// the environment), the CA certificate, whether TLS is checked.
fn reach_of(
    args: &RunArgs,
    scenario: &Scenario,
    base: &Path,
) -> anyhow::Result<crate::client::Reach> {
    let headers = slo::headers::resolve(&scenario.headers, &args.headers, |name| {
        std::env::var(name).ok()
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.scenario.display()))?;
    Ok(crate::client::Reach {
        headers,
        ca_cert: match (&args.ca_cert, &scenario.tls.ca_cert) {
            (Some(flag), _) => Some(flag.clone()),
            (None, Some(rel)) => Some(base.join(rel)),
            (None, None) => None,
        },
        insecure: args.insecure || scenario.tls.insecure,
    })
}

/// The SLO file: the flag's, or the scenario's beside it.
fn slo_of(
    args: &RunArgs,
    scenario: &Scenario,
    base: &Path,
) -> anyhow::Result<Option<(PathBuf, SloFile)>> {
    let slo_path = match (&args.slo, &scenario.slo) {
        (Some(flag), _) => Some(flag.clone()),
        (None, Some(rel)) => Some(base.join(rel)),
        (None, None) => None,
    };
    Ok(match slo_path {
        Some(p) => {
            let file = crate::files::read_slo_file(&p)?;
            // An engine figure names one of the scenario's scrapes.
            for o in &file.objectives {
                if o.source == slo::objective::Source::Engine {
                    slo::engine::check_path(&scenario.scrape, &o.metric).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: objective {:?}: metric: {e}; the scenario's [[scrape]] tables name the series",
                            p.display(),
                            o.name
                        )
                    })?;
                }
            }
            Some((p, file))
        }
        None => None,
    })
}

/// The output folder (a shard's inside the run's), created and checked
/// writable unless this is a dry run.
fn out_of(
    args: &RunArgs,
    scenario: &Scenario,
    shard: Option<(u32, u32)>,
) -> anyhow::Result<PathBuf> {
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            // Shards started together share their folder's name.
            let secs = args
                .start_at
                .unwrap_or_else(std::time::SystemTime::now)
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from("runs").join(format!("{}-{secs}", scenario.name))
        }
    };
    let out = match shard {
        Some((i, _)) => out.join(format!("shard-{i}")),
        None => out,
    };
    if !args.dry_run {
        std::fs::create_dir_all(&out)
            .with_context(|| format!("--out: cannot create the output folder {}", out.display()))?;
        writable(&out)?;
    }
    Ok(out)
}

/// Every file a run writes can be written in `out`: found before the run
/// starts, not after it (a file that is a folder, a folder that is not
/// writable). Files the check creates are removed.
pub fn writable(out: &std::path::Path) -> anyhow::Result<()> {
    let f = crate::report::files();
    for name in [
        &f.csv,
        &f.interval_log,
        &f.goose_html,
        &f.goose_json,
        &f.report,
        &f.markdown,
        &f.junit,
        &f.html,
    ] {
        let path = out.join(name);
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "--out: cannot write {} (checked before the run); choose a folder you can write",
                    path.display()
                )
            })?;
        if !existed {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

/// The flag that set a scenario's key, when one was given.
fn flag_of(field: &str, args: &RunArgs) -> Option<&'static str> {
    match field {
        "duration" if args.duration.is_some() => Some("--duration"),
        "load.users" if args.users.is_some() => Some("--users"),
        "load.rate" if args.rate.is_some() => Some("--rate"),
        "target" if args.target.is_some() => Some("--target"),
        "protocol" if args.protocol.is_some() => Some("--protocol"),
        _ => None,
    }
}
