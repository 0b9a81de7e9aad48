//! The command line: its flags, its subcommands, and the exit status CI
//! gates on.

use crate::plan::{FailOnArg, RunArgs};
use crate::{capacity, plan, rebuild, watch};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Load tests and SLO gates for streaming chat backends.
///
/// Exit codes: 0 the run passed, 1 an SLO was violated (or the run was not
/// trustworthy, or did not complete), 2 a usage or run error, 3 (capacity)
/// an objective fails at idle: capacity is undefined for it.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a scenario file and writes its reports.
    Run(RunArgs),
    /// Finds the highest arrival rate shown to hold every objective of the
    /// SLO file that load moves: a warm-up, an idle step, a geometric ramp
    /// until the first failing step, then bisection. Exit 0 when it meets
    /// --expected-rps (or none was given), 1 when not (or interrupted), 3
    /// when an objective fails at idle (capacity undefined for it).
    Capacity {
        #[command(flatten)]
        run: RunArgs,
        /// The shortest measured part of a step (it goes on until its
        /// percentiles have their minimum of requests and are decided).
        #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
        step_duration: Duration,
        /// A step's cap on its first try (at least twice the time its
        /// minimum of requests takes); doubled on each repeat.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
        step_max_duration: Duration,
        /// How many times one rate is run while its percentiles stay
        /// inconclusive (then it counts as not held) or the self-check
        /// does not trust it (then the client saturated: the search stops).
        #[arg(long, value_name = "N", default_value_t = 3)]
        step_tries: u32,
        /// Warm the target (caches, connections) at --start-rps this long
        /// before the idle step; 0s to skip.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
        warm: Duration,
        /// The warm-up of each step (excluded from its figures).
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
        step_warmup: Duration,
        /// The first rate tried, requests/s: the idle step, which finds the
        /// objectives that fail without load. Keep it well below the
        /// capacity (a third of it or less).
        #[arg(long, value_name = "R", default_value_t = 1.0)]
        start_rps: f64,
        /// The highest rate tried.
        #[arg(long, value_name = "R", default_value_t = 1000.0)]
        max_rps: f64,
        /// The lowest rate tried when even the start fails.
        #[arg(long, value_name = "R", default_value_t = 0.1)]
        min_rps: f64,
        /// Ramp factor between steps.
        #[arg(long, value_name = "F", default_value_t = 2.0)]
        factor: f64,
        /// Stop bisecting when (first failing - last passing) / last passing <= this.
        #[arg(long, value_name = "FRACTION", default_value_t = 0.1)]
        precision: f64,
        /// The traffic the service must carry; exit 1 when the capacity is lower.
        #[arg(long, value_name = "R")]
        expected_rps: Option<f64>,
        /// End the search after this long, as interrupted (exit 1), with
        /// what it measured written; `--dry-run` prints the worst case the
        /// other flags allow.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_time: Option<Duration>,
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
    Trend {
        /// Run folders or report.json files (e.g. the last N CI artifacts).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where trend.md and trend.html are written.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Runs in the order of their start (`started_at`), or as given
        /// (a CI job's run numbers, commits in history order).
        #[arg(long, value_enum, default_value_t = TrendOrder::Start)]
        order: TrendOrder,
    },
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
    Logs {
        /// The log file: refserver's JSON lines, or an nginx access log in
        /// the guide's `streaming` format.
        file: PathBuf,
        /// List the requests slower than this (ms): first token in
        /// refserver's log, `rt` (the whole request) in nginx's.
        #[arg(long, value_name = "MS", default_value_t = 2000)]
        slower_than: u64,
        /// Which log it is; `auto`: nginx unless the first line is JSON.
        #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
        format: LogFormat,
        /// nginx: count only requests to this path (e.g.
        /// /api/chat/stream); the others are still listed by path.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compares a run's report.json with a baseline's; exit 1 on a
    /// regression beyond tolerance, or on a figure too few samples leave
    /// undecided (unless --accept-inconclusive). Prints a Markdown table.
    Compare {
        /// The baseline report.json (e.g. reports/baselines/smoke.json).
        baseline: PathBuf,
        /// The current report.json.
        current: PathBuf,
        /// Tolerance over the defaults: METRIC=PERCENT% or METRIC=ABSOLUTE,
        /// e.g. latency_ms.first_token.p95=5% or requests.success_rate=0.5.
        /// Repeatable.
        #[arg(long, value_name = "METRIC=TOL")]
        tolerance: Vec<String>,
        /// Where comparison.md and comparison.html are written (default:
        /// the current report's folder).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Figures too few samples leave undecided do not fail the
        /// comparison (a regression still does).
        #[arg(long)]
        accept_inconclusive: bool,
    },
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

/// Runs the command; prints the verdict summary on standard error.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let verdict = |r: &slo::report::Report| match r.verdict {
        slo::report::Verdict::Pass => ExitStatus::Pass,
        slo::report::Verdict::Fail => ExitStatus::SloViolated,
        // A shard's part: 0 when it is whole (measured, complete,
        // trustworthy); the merge judges it.
        slo::report::Verdict::NotJudged if r.verdict_reasons.is_empty() => ExitStatus::Pass,
        slo::report::Verdict::NotJudged => ExitStatus::SloViolated,
    };
    match cli.command {
        Command::Capacity {
            run,
            step_duration,
            step_max_duration,
            step_tries,
            warm,
            step_warmup,
            start_rps,
            max_rps,
            min_rps,
            factor,
            precision,
            expected_rps,
            max_time,
        } => {
            let bad = |flag: &str, v: f64, ok: bool| {
                if ok {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("{flag}: {v} is out of range"))
                }
            };
            bad("--start-rps", start_rps, start_rps > 0.0)?;
            bad("--max-rps", max_rps, max_rps >= start_rps)?;
            bad("--min-rps", min_rps, min_rps > 0.0 && min_rps <= start_rps)?;
            bad("--factor", factor, factor > 1.0)?;
            bad("--precision", precision, precision > 0.0 && precision < 1.0)?;
            bad("--step-tries", f64::from(step_tries), step_tries >= 1)?;
            if run.shard.is_some() || run.shards.is_some() {
                anyhow::bail!(
                    "--shard: a capacity search cannot be sharded (each step decides on the whole load); run it from one process"
                );
            }
            let plan = plan::Plan::from_args(&run)?;
            let args = capacity::CapacityArgs {
                step_duration,
                step_warmup,
                step_max_duration,
                warm,
                search: slo::capacity::SearchConfig {
                    start: start_rps,
                    max: max_rps,
                    min: min_rps,
                    factor,
                    precision,
                    max_steps: 40,
                    max_tries: step_tries,
                },
                expected_rps,
                max_time,
            };
            if run.dry_run {
                use std::io::Write;
                let text = format!(
                    "{}{}",
                    plan.describe(),
                    capacity::describe_search(&plan, &args)
                );
                std::io::stdout().write_all(text.as_bytes()).map_err(|e| {
                    anyhow::anyhow!("cannot write the plan to standard output: {e}")
                })?;
                return Ok(ExitStatus::Pass);
            }
            let runtime = tokio::runtime::Runtime::new()?;
            let report =
                runtime.block_on(capacity::capacity(&plan, &args, |l| eprintln!("{l}")))?;
            eprint!("{}", slo::render::capacity::console(&report));
            eprintln!("reports in {}", plan.out.display());
            Ok(match report.status {
                slo::capacity::Status::Found => ExitStatus::Pass,
                slo::capacity::Status::ShortOfExpected | slo::capacity::Status::Incomplete => {
                    ExitStatus::SloViolated
                }
                slo::capacity::Status::Undefined => ExitStatus::CapacityUndefined,
            })
        }
        Command::Merge {
            dirs,
            out,
            shards,
            judge,
            quiet,
        } => {
            let report = crate::merge::merge(&crate::merge::MergeArgs {
                dirs,
                out: out.clone(),
                shards,
                gate: judge.gate(),
                slo: judge.slo,
            })?;
            summarize(&report, &out, quiet);
            Ok(verdict(&report))
        }
        Command::Trend { runs, out, order } => {
            let mut read = Vec::new();
            for p in &runs {
                let file = if p.is_dir() {
                    p.join(crate::report::REPORT_JSON)
                } else {
                    p.clone()
                };
                let bytes = std::fs::read(&file).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read {} ({e}): give run folders or report.json files",
                        file.display()
                    )
                })?;
                let report: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| anyhow::anyhow!("{} is not a report.json: {e}", file.display()))?;
                // A folder is named by its run (a commit, a build); a file
                // by its folder, or its own name.
                let named = if p.is_dir() {
                    p.as_path()
                } else {
                    p.parent().filter(|d| d.file_name().is_some()).unwrap_or(p)
                };
                let label = named.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                read.push(slo::render::trend::Run { label, report });
            }
            if order == TrendOrder::Start {
                read.sort_by(|a, b| {
                    a.report["started_at"]
                        .as_str()
                        .unwrap_or("")
                        .cmp(b.report["started_at"].as_str().unwrap_or(""))
                });
            }
            std::fs::create_dir_all(&out)
                .map_err(|e| anyhow::anyhow!("--out: cannot create {} ({e})", out.display()))?;
            for (name, text) in [
                ("trend.md", slo::render::trend::markdown(&read)),
                ("trend.html", slo::render::trend::html(&read)),
            ] {
                let path = out.join(name);
                std::fs::write(&path, text)
                    .map_err(|e| anyhow::anyhow!("cannot write {} ({e})", path.display()))?;
            }
            let lines = slo::render::trend::lines(&read);
            let last = read.len().saturating_sub(1);
            let crossed_last: Vec<&str> = lines
                .iter()
                .filter(|l| l.crossed.contains(&last))
                .map(|l| l.name.as_str())
                .collect();
            eprintln!(
                "{} runs; {}; trend in {}",
                read.len(),
                if crossed_last.is_empty() {
                    "the last run crossed no level".to_owned()
                } else {
                    format!(
                        "the last run crossed into a worse level: {}",
                        crossed_last.join(", ")
                    )
                },
                out.join("trend.html").display()
            );
            Ok(if crossed_last.is_empty() {
                ExitStatus::Pass
            } else {
                ExitStatus::SloViolated
            })
        }
        Command::Paths => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for source in [
                slo::objective::Source::Client,
                slo::objective::Source::Server,
            ] {
                let side = match source {
                    slo::objective::Source::Client => "client",
                    slo::objective::Source::Server => "server",
                };
                for p in slo::metric_paths::catalogue(source) {
                    let dir = slo::compare::direction_of(p).map_or("", |d| match d {
                        slo::objective::Direction::Max => "\tlower is better",
                        slo::objective::Direction::Min => "\thigher is better",
                    });
                    let dir = if source == slo::objective::Source::Client {
                        dir
                    } else {
                        ""
                    };
                    // A closed pipe (`| head`) ends the listing, not the process.
                    if writeln!(out, "{side}\t{p}{dir}").is_err() {
                        return Ok(ExitStatus::Pass);
                    }
                }
            }
            Ok(ExitStatus::Pass)
        }
        Command::AlertRules { scale, interval } => {
            use std::io::Write;
            if !(scale > 0.0 && scale <= 10.0) || interval.is_zero() {
                eprintln!(
                    "--scale must be more than 0 and at most 10, --interval longer than 0 (got {scale}, {})",
                    humantime::format_duration(interval)
                );
                return Ok(ExitStatus::Error);
            }
            let timing = slo::alerts::rules::Timing {
                scale,
                interval_s: interval.as_secs_f64(),
            };
            let _ = std::io::stdout()
                .lock()
                .write_all(slo::alerts::rules::yaml(&timing).as_bytes());
            Ok(ExitStatus::Pass)
        }
        Command::Report { dir, judge, quiet } => {
            let report = rebuild::rebuild(&dir, judge.slo.as_deref(), judge.gate())?;
            summarize(&report, &dir, quiet);
            Ok(verdict(&report))
        }
        Command::Watch {
            url,
            interval,
            once,
            webhook,
            count,
        } => {
            let args = watch::WatchArgs {
                url,
                interval,
                once,
                webhook,
                count,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let firing = runtime.block_on(watch::watch(&args, |line| eprintln!("{line}")));
            Ok(if firing {
                ExitStatus::SloViolated
            } else {
                ExitStatus::Pass
            })
        }
        Command::Logs {
            file,
            slower_than,
            json,
            format,
            path,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if format == LogFormat::Nginx
                || (format == LogFormat::Auto && slo::logs::looks_like_nginx(first))
            {
                let s = slo::logs::analyze_nginx(text.lines(), slower_than, path.as_deref());
                #[allow(clippy::print_stdout)]
                if json {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                } else {
                    print!("{}", nginx_text(&s, &file));
                }
                return Ok(ExitStatus::Pass);
            }
            let s = slo::logs::analyze(text.lines(), slower_than);
            #[allow(clippy::print_stdout)]
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", logs_text(&s, &file));
            }
            Ok(ExitStatus::Pass)
        }
        Command::Compare {
            baseline,
            current,
            tolerance,
            out,
            accept_inconclusive,
        } => {
            let read = |p: &PathBuf| -> anyhow::Result<serde_json::Value> {
                let bytes = std::fs::read(p)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| anyhow::anyhow!("{} is not a report.json: {e}", p.display()))
            };
            let (b, c) = (read(&baseline)?, read(&current)?);
            let mut checks = slo::compare::default_checks();
            for t in &tolerance {
                slo::compare::apply_override(&mut checks, t).map_err(anyhow::Error::msg)?;
            }
            let rows = slo::compare::compare(&b, &c, &checks);
            let markdown = slo::render::comparison::markdown(&rows, &b, &c, accept_inconclusive);
            let html = slo::render::comparison::html(
                &rows,
                &b,
                &c,
                (
                    &baseline.display().to_string(),
                    &current.display().to_string(),
                ),
                accept_inconclusive,
            );
            let dir = out.unwrap_or_else(|| {
                current
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            // As `run --out`: the folder is made when it does not exist.
            std::fs::create_dir_all(&dir).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create the folder {} ({e}); give another with --out",
                    dir.display()
                )
            })?;
            for (name, text) in [("comparison.md", &markdown), ("comparison.html", &html)] {
                let path = dir.join(name);
                std::fs::write(&path, text).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot write {} ({e}); give another folder with --out",
                        path.display()
                    )
                })?;
            }
            // The table on standard output (a CI job summary takes it), the
            // verdict on standard error.
            #[allow(clippy::print_stdout)]
            {
                print!("{markdown}");
            }
            eprintln!(
                "{}\ncomparison in {}",
                slo::render::comparison::headline(&rows, accept_inconclusive),
                dir.join("comparison.html").display()
            );
            Ok(
                if slo::render::comparison::fails(&rows, accept_inconclusive) {
                    ExitStatus::SloViolated
                } else {
                    ExitStatus::Pass
                },
            )
        }
        Command::Run(args) => {
            let plan = plan::Plan::from_args(&args)?;
            if args.dry_run {
                use std::io::Write;
                std::io::stdout()
                    .write_all(plan.describe().as_bytes())
                    .map_err(|e| {
                        anyhow::anyhow!("cannot write the plan to standard output: {e}")
                    })?;
                return Ok(ExitStatus::Pass);
            }
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(crate::run::run(&plan))?;
            summarize(&report, &plan.out, plan.quiet);
            Ok(verdict(&report))
        }
    }
}

/// A table of latency figures in ms, one row each, the names padded to
/// the longest.
fn latency_table(o: &mut String, title: &str, rows: &[(&str, &slo::aggregate::LatencyFigures)]) {
    use std::fmt::Write;
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    let w = rows
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max(title.len())
        .max(12);
    let _ = writeln!(
        o,
        "{title:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "avg", "p50", "p95", "p99", "max", "count"
    );
    for (name, f) in rows {
        let _ = writeln!(
            o,
            "{name:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
            ms(f.mean),
            ms(f.p50),
            ms(f.p95),
            ms(f.p99),
            ms(f.max),
            f.count
        );
    }
}

fn nginx_text(s: &slo::logs::NginxSummary, file: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let statuses: Vec<String> = s.statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        o,
        "{}: {} lines, {} malformed (skipped), {} requests; status {}",
        file.display(),
        s.lines,
        s.malformed,
        s.requests,
        if statuses.is_empty() {
            "-".to_owned()
        } else {
            statuses.join(", ")
        }
    );
    latency_table(
        &mut o,
        "nginx ms",
        &[
            ("request (rt)", &s.request_time_ms),
            ("upstream connect (uct)", &s.upstream_connect_ms),
            ("upstream header (uht)", &s.upstream_header_ms),
            ("upstream whole (urt)", &s.upstream_response_ms),
        ],
    );
    let _ = writeln!(
        o,
        "slower than {} ms (rt): {}",
        s.slow_threshold_ms,
        s.slow.len()
    );
    for line in &s.slow {
        let _ = writeln!(o, "  {line}");
    }
    let _ = writeln!(
        o,
        "by path{}:",
        s.path_filter
            .as_deref()
            .map_or(String::new(), |p| format!(" (counted above: {p} only)"))
    );
    for (what, n) in &s.by_path {
        let _ = writeln!(o, "  {n:>8} {what}");
    }
    o
}

fn logs_text(s: &slo::logs::LogSummary, file: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} lines, {} malformed (skipped), {} complete streams",
        file.display(),
        s.lines,
        s.malformed,
        s.complete
    );
    latency_table(
        &mut o,
        "latency ms",
        &[
            ("first token", &s.first_token_ms),
            ("first audio", &s.first_audio_ms),
            ("duration", &s.duration_ms),
        ],
    );
    let _ = writeln!(
        o,
        "slower than {} ms (first token): {}",
        s.slow_threshold_ms,
        s.slow.len()
    );
    for r in &s.slow {
        let _ = writeln!(o, "  {}", slo::logs::slow_line(r));
    }
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        o,
        "errors by type: {}",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(", ")
        }
    );
    o
}

fn summarize(r: &slo::report::Report, out: &std::path::Path, quiet: bool) {
    use std::io::IsTerminal;
    // Colour on a terminal only, unless NO_COLOR says otherwise.
    let style = slo::render::console::Style {
        color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        quiet,
    };
    eprint!("{}", slo::render::console::render(r, style));
    if !quiet {
        eprintln!("reports in {}", out.display());
    }
}
