//! The commands: [`run`] takes the command line as `cli` parsed it and
//! does what it says; the commands that read saved files and write
//! reports (trend, paths, logs, compare) are here, the others
//! (`run::run`, `capacity`, `merge`, `rebuild`, `watch`) in their own
//! modules. Each returns the exit status.

use crate::cli::{
    CapacityFlags, Cli, Command, CompareArgs, ExitStatus, LogFormat, LogsArgs, TrendArgs,
    TrendOrder,
};
use crate::plan::RunArgs;
use crate::{capacity, plan, rebuild, watch};
use std::path::PathBuf;

/// Runs the command; prints the verdict summary on standard error.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Capacity { run, search } => capacity(&run, &search),
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
        Command::Trend(args) => trend(args),
        Command::Paths => paths(),
        Command::AlertRules { scale, interval } => alert_rules(scale, interval),
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
        } => watch(watch::WatchArgs {
            url,
            interval,
            once,
            webhook,
            count,
        }),
        Command::Logs(args) => logs(args),
        Command::Compare(args) => compare(args),
        Command::Ab(args) => crate::ab::ab(&args),
        Command::Run(args) => run_once(&args),
        Command::Init(flags) => init(flags),
        Command::Completions { shell } => completions(shell),
        Command::Man { out_dir } => man(&out_dir),
        Command::Serve(cli) => {
            server::run(*cli)?;
            Ok(ExitStatus::Pass)
        }
    }
}

/// `loadgen init`: the files, checked, and what to do next.
fn init(flags: crate::cli::InitFlags) -> anyhow::Result<ExitStatus> {
    let (scenario, slo, found) = crate::init::init(&flags)?;
    for n in &found.notes {
        eprintln!("loadgen init: {n}");
    }
    eprintln!(
        "loadgen init: wrote {} ({}) and {}",
        scenario.display(),
        found.protocol.as_str(),
        slo.display()
    );
    match crate::init::check(&scenario) {
        Ok(plan) => {
            eprint!("{plan}");
            eprintln!(
                "loadgen init: next: loadgen run {} (edit the files first: every key is in docs/scenarios.md)",
                scenario.display()
            );
            Ok(ExitStatus::Pass)
        }
        Err(e) => Err(e.context(format!(
            "{} was written but does not check: edit it, then `loadgen run {} --dry-run`",
            scenario.display(),
            scenario.display()
        ))),
    }
}

/// The completion script of `shell`, on standard output.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitStatus> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "loadgen", &mut script);
    use std::io::Write;
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| anyhow::anyhow!("cannot write the script to standard output: {e}"))?;
    Ok(ExitStatus::Pass)
}

/// The manual pages, one for loadgen and one for each subcommand.
fn man(dir: &std::path::Path) -> anyhow::Result<ExitStatus> {
    use anyhow::Context;
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot make the folder {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the manual pages to {}", dir.display()))?;
    eprintln!("loadgen: manual pages written to {}", dir.display());
    Ok(ExitStatus::Pass)
}

/// A judged report's exit status.
fn verdict(r: &slo::report::Report) -> ExitStatus {
    match r.verdict {
        slo::report::Verdict::Pass => ExitStatus::Pass,
        slo::report::Verdict::Fail => ExitStatus::SloViolated,
        // A shard's part: 0 when it is whole (measured, complete,
        // trustworthy); the merge judges it.
        slo::report::Verdict::NotJudged if r.verdict_reasons.is_empty() => ExitStatus::Pass,
        slo::report::Verdict::NotJudged => ExitStatus::SloViolated,
    }
}

/// `loadgen run`: the plan (printed with --dry-run), the run, its summary.
fn run_once(args: &RunArgs) -> anyhow::Result<ExitStatus> {
    let plan = plan::Plan::from_args(args)?;
    if args.dry_run {
        use std::io::Write;
        std::io::stdout()
            .write_all(plan.describe().as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write the plan to standard output: {e}"))?;
        return Ok(ExitStatus::Pass);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(crate::run::run(&plan))?;
    summarize(&report, &plan.out, plan.quiet);
    Ok(verdict(&report))
}

/// `loadgen capacity`: the flags checked, the search (or its worst case
/// with --dry-run), the exit status of its outcome.
fn capacity(run: &RunArgs, flags: &CapacityFlags) -> anyhow::Result<ExitStatus> {
    let &CapacityFlags {
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
    } = flags;
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
    let plan = plan::Plan::from_args(run)?;
    if let slo::scenario::LoadShape::Trace(t) = &plan.scenario.load.shape {
        anyhow::bail!(
            "{}: load.trace: a capacity search sets the rate step by step and a trace ({}) sets its own; search with [tokens] input and output lengths (e.g. the trace's) at an open model instead",
            run.scenario.display(),
            t.file.display()
        );
    }
    if plan.scenario.load.is_open() && plan.scenario.multi_turn() {
        anyhow::bail!(
            "{}: conversation: a capacity search steps a rate of requests, and here each arrival is a whole conversation; search with model = \"closed\" (users hold conversations) or without conversations",
            run.scenario.display()
        );
    }
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
        std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write the plan to standard output: {e}"))?;
        return Ok(ExitStatus::Pass);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(capacity::capacity(&plan, &args, |l| eprintln!("{l}")))?;
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

/// `loadgen alert-rules`: the guide's rules at a time scale, as YAML.
fn alert_rules(scale: f64, interval: std::time::Duration) -> anyhow::Result<ExitStatus> {
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

/// `loadgen watch`: exit 1 while an alert fires.
fn watch(args: watch::WatchArgs) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Runtime::new()?;
    let firing = runtime.block_on(watch::watch(&args, |line| eprintln!("{line}")));
    Ok(if firing {
        ExitStatus::SloViolated
    } else {
        ExitStatus::Pass
    })
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

/// `loadgen trend`: key figures across runs; exit 1 when the last run
/// crossed into a worse level.
pub fn trend(args: TrendArgs) -> anyhow::Result<ExitStatus> {
    let TrendArgs { runs, out, order } = args;
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

/// `loadgen paths`: every metric path an objective or a tolerance may name.
pub fn paths() -> anyhow::Result<ExitStatus> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for source in [
        slo::objective::Source::Client,
        slo::objective::Source::Server,
    ] {
        let side = match source {
            slo::objective::Source::Client => "client",
            slo::objective::Source::Server => "server",
            slo::objective::Source::Engine => "engine",
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

/// `loadgen logs`: the guide's log analysis.
pub fn logs(args: LogsArgs) -> anyhow::Result<ExitStatus> {
    let LogsArgs {
        file,
        slower_than,
        json,
        format,
        path,
    } = args;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let name = file.display().to_string();
    // The summary as JSON, or as text.
    let (as_json, as_text) = if format == LogFormat::Nginx
        || (format == LogFormat::Auto && slo::logs::looks_like_nginx(first))
    {
        let s = slo::logs::analyze_nginx(text.lines(), slower_than, path.as_deref());
        (
            serde_json::to_string_pretty(&s)?,
            slo::render::logs::nginx_text(&s, &name),
        )
    } else {
        let s = slo::logs::analyze(text.lines(), slower_than);
        (
            serde_json::to_string_pretty(&s)?,
            slo::render::logs::logs_text(&s, &name),
        )
    };
    #[allow(clippy::print_stdout)]
    if json {
        println!("{as_json}");
    } else {
        print!("{as_text}");
    }
    Ok(ExitStatus::Pass)
}

/// `loadgen compare`: a run against a baseline; exit 1 on a regression,
/// or an inconclusive figure not accepted.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitStatus> {
    let CompareArgs {
        baseline,
        current,
        tolerance,
        out,
        accept_inconclusive,
    } = args;
    let read = |p: &PathBuf| -> anyhow::Result<serde_json::Value> {
        let bytes =
            std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
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
