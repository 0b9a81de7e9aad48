//! `loadgen ab`: the candidate against the baseline on one schedule.
//!
//! Each target gets a run of its own (`loadgen run --ab-arm …`, a child
//! process each, so each has its own client, pacer and core to run on),
//! started at the same wall instant (`--start-at`) on the same scenario
//! and seed: the same arrivals, the same prompts, at the same moments
//! (`shared::AbArm` places each target in its pairs). The two runs'
//! `requests.csv` are read as they grow; pair `i` is arrival `i` of both
//! (mirror) or arrivals `2i` and `2i + 1` (alternate). At each planned
//! look (`slo::ab`) the first pairs are judged; the first look that
//! decides closes the children's standard input, which stops them (the
//! requests in flight finish within the stop grace), and the comparison
//! is written: `ab.json`, `ab.md`, `ab.html`, `ab-junit.xml`, and each
//! target's own run folder beside them.

use crate::cli::{AbArgs, ExitStatus};
use crate::plan::{Arm, Pairing};
use anyhow::{Context, bail};
use slo::ab::{self as core, AbPlan, AbReport, ArmReport, Look, Pair, Side, Verdict};
use slo::record::{Outcome, RequestRecord};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How often the runs' records are read.
const TICK: Duration = Duration::from_millis(250);

/// In a child run: its standard input closing (the comparison decided,
/// or `loadgen ab` gone) stops it as Ctrl-C would.
pub fn stop_when_stdin_closes() {
    let _ = std::thread::Builder::new()
        .name("ab-stdin".into())
        .spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            crate::stop::request("stopped by loadgen ab (its comparison ended)", false);
        });
}

/// Runs the comparison; prints its summary; the exit status is its
/// verdict's (an inconclusive one fails).
pub fn ab(args: &AbArgs) -> anyhow::Result<ExitStatus> {
    let setup = Setup::of(args)?;
    let report = compare(args, &setup)?;
    write(&setup.out, &report)?;
    eprint!("{}", slo::render::ab::console(&report));
    if !args.quiet {
        eprintln!("reports in {}", setup.out.display());
    }
    Ok(match report.verdict {
        Verdict::Pass => ExitStatus::Pass,
        Verdict::Fail | Verdict::Inconclusive => ExitStatus::SloViolated,
    })
}

/// What the comparison needs before it starts.
struct Setup {
    name: String,
    out: PathBuf,
    plan: AbPlan,
    alternate: bool,
    /// Each target's URL and its run's flags.
    arms: [(String, Vec<String>); 2],
}

impl Setup {
    fn of(args: &AbArgs) -> anyhow::Result<Setup> {
        let scenario_file = &args.scenario;
        // Each child's plan, checked here first: an error is named once,
        // before anything starts.
        let mut arms = Vec::new();
        let mut checked = None;
        for arm in [Arm::Baseline, Arm::Candidate] {
            let (url, flags) = arm_flags(args, arm);
            let mut argv = vec!["loadgen".to_owned(), "run".to_owned()];
            argv.push(scenario_file.display().to_string());
            argv.extend(flags.iter().cloned());
            argv.push("--dry-run".to_owned());
            let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv)
                .map_err(|e| anyhow::anyhow!("the {} flags: {e}", arm_name(arm)))?;
            let crate::cli::Command::Run(run) = cli.command else {
                bail!("the {} flags do not make a run", arm_name(arm));
            };
            let plan = crate::plan::Plan::from_args(&run)
                .with_context(|| format!("the {}'s run (--{})", arm_name(arm), arm_name(arm)))?;
            checked = Some(plan);
            arms.push((url, flags));
        }
        let plan = checked.expect("two arms");
        let sc = &plan.scenario;
        if !sc.load.is_open() {
            bail!(
                "{}: loadgen ab needs one schedule for both targets: an open model ([load] rate) or a trace; a closed model's users pace themselves on each target's answers",
                scenario_file.display()
            );
        }
        if sc.multi_turn() {
            bail!(
                "{}: loadgen ab pairs single requests; this scenario sends conversations ([conversation] or a dataset's turns): compare them with two runs and loadgen compare",
                scenario_file.display()
            );
        }
        let objectives = if args.objectives.is_empty() {
            core::default_objectives(sc.request.audio)
        } else {
            args.objectives
                .iter()
                .map(|s| core::parse_objective(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?
        };
        if !(0.5..1.0).contains(&args.confidence) {
            bail!(
                "--confidence {}: give a level between 0.5 and 1 (0.95 for 95 %)",
                args.confidence
            );
        }
        let alternate = args.pairing == Pairing::Alternate;
        let expected = expected_arrivals(&plan);
        let max_pairs = args
            .max_pairs
            .unwrap_or(if alternate { expected / 2 } else { expected });
        let first_look = AbPlan::first_look_for(&objectives);
        if max_pairs < first_look {
            bail!(
                "{}: at most {max_pairs} pairs (the scenario's arrivals after its warm-up{}), and the first look needs {first_look}: give a longer duration or a higher rate, or --max-pairs",
                scenario_file.display(),
                if alternate { ", two a pair" } else { "" }
            );
        }
        let out = match &args.out {
            Some(o) => o.clone(),
            None => {
                let secs = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                PathBuf::from("runs").join(format!("ab-{}-{secs}", sc.name))
            }
        };
        std::fs::create_dir_all(&out)
            .with_context(|| format!("--out: cannot create the output folder {}", out.display()))?;
        let arms: [(String, Vec<String>); 2] = arms.try_into().expect("two arms");
        Ok(Setup {
            name: sc.name.clone(),
            out,
            plan: AbPlan {
                objectives,
                confidence: args.confidence,
                first_look,
                max_pairs,
            },
            alternate,
            arms,
        })
    }
}

fn arm_name(arm: Arm) -> &'static str {
    match arm {
        Arm::Baseline => "baseline",
        Arm::Candidate => "candidate",
    }
}

/// A target's URL and the flags of its run: the shared ones, then its
/// own (which win).
fn arm_flags(args: &AbArgs, arm: Arm) -> (String, Vec<String>) {
    let (url, headers, protocol, ca) = match arm {
        Arm::Baseline => (
            &args.baseline,
            &args.baseline_headers,
            args.baseline_protocol,
            &args.baseline_ca_cert,
        ),
        Arm::Candidate => (
            &args.candidate,
            &args.candidate_headers,
            args.candidate_protocol,
            &args.candidate_ca_cert,
        ),
    };
    let mut f = vec!["--target".to_owned(), url.clone()];
    for h in args.headers.iter().chain(headers) {
        f.push("--header".to_owned());
        f.push(h.clone());
    }
    if let Some(p) = protocol.or(args.protocol) {
        f.push("--protocol".to_owned());
        f.push(
            clap::ValueEnum::to_possible_value(&p)
                .map_or_else(String::new, |v| v.get_name().to_owned()),
        );
    }
    if let Some(ca) = ca.as_ref().or(args.ca_cert.as_ref()) {
        f.push("--ca-cert".to_owned());
        f.push(ca.display().to_string());
    }
    if args.insecure {
        f.push("--insecure".to_owned());
    }
    (url.clone(), f)
}

/// Arrivals after the warm-up and before the end of the scenario's
/// duration, as the run's schedule draws them.
fn expected_arrivals(plan: &crate::plan::Plan) -> usize {
    let sc = &plan.scenario;
    let mut schedule = match &plan.replay {
        Some(rows) => crate::shared::Schedule::trace(std::sync::Arc::clone(rows)),
        None => crate::shared::Schedule::rate(&sc.load, sc.seed, 0.0),
    };
    let (from, to) = (
        sc.warmup.as_secs_f64(),
        (sc.warmup + sc.duration).as_secs_f64(),
    );
    let mut n = 0;
    loop {
        let (_, at) = schedule.next_start();
        if at >= to {
            return n;
        }
        if at >= from {
            n += 1;
        }
    }
}

/// A run's `requests.csv` read as it grows: the complete rows since the
/// last read.
struct Tail {
    path: PathBuf,
    offset: u64,
    headers: Option<csv::StringRecord>,
    /// Rows that did not read as a record (a broken file: fails closed).
    bad: Vec<String>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            headers: None,
            bad: Vec::new(),
        }
    }

    fn read(&mut self) -> Vec<RequestRecord> {
        let mut bytes = Vec::new();
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        // Only whole lines: the writer may be half-way through a row.
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&bytes[..=end]);
        let mut row = csv::StringRecord::new();
        let mut out = Vec::new();
        let mut used = 0;
        // A quoted field may hold a line break: a row cut there fails to
        // read now and is read whole next time.
        while let Ok(true) = reader.read_record(&mut row) {
            used = reader.position().byte();
            match &self.headers {
                None => self.headers = Some(row.clone()),
                Some(h) => match row.deserialize::<RequestRecord>(Some(h)) {
                    Ok(r) => out.push(r),
                    Err(e) => self.bad.push(format!("{}: {e}", self.path.display())),
                },
            }
        }
        self.offset += used;
        out
    }
}

/// One side's records as they come: by pair, and its counts.
#[derive(Default)]
struct Recorded {
    by_pair: HashMap<u64, RequestRecord>,
    counts: ArmReport,
}

impl Recorded {
    fn add(&mut self, r: RequestRecord, alternate: bool) {
        // A warm-up request is kept too (its pair is passed over).
        if !r.warmup {
            self.counts.requests += 1;
            match r.outcome {
                Outcome::Ok => self.counts.ok += 1,
                Outcome::Dropped => self.counts.dropped += 1,
                Outcome::Interrupted => self.counts.interrupted += 1,
                _ => {}
            }
        }
        if let Some(k) = r.arrival {
            self.by_pair.insert(if alternate { k / 2 } else { k }, r);
        }
    }
}

/// What a record gives the comparison: `None` when its pair cannot be
/// judged (dropped by the load generator, or cut off by the end).
fn side_of(r: &RequestRecord) -> Option<Side> {
    if matches!(r.outcome, Outcome::Dropped | Outcome::Interrupted) {
        return None;
    }
    let ms = |us: Option<u64>| us.map(|v| v as f64 / 1000.0);
    let (ft, done) = (ms(r.first_token_us), ms(r.complete_us));
    let streaming = match (ft, done) {
        (Some(a), Some(b)) if r.tokens > 1 && b > a => Some(b - a),
        _ => None,
    };
    Some(Side {
        ok: r.outcome.is_ok(),
        first_token_ms: ft,
        first_audio_ms: ms(r.first_audio_us),
        complete_ms: done,
        inter_token_ms: streaming.map(|s| s / f64::from(r.tokens - 1)),
        tokens_per_s: streaming.map(|s| f64::from(r.tokens - 1) / (s / 1000.0)),
    })
}

/// The pairs in arrival order, as far as both sides have recorded them.
struct Pairs {
    sides: [Recorded; 2],
    next: u64,
    pairs: Vec<Pair>,
}

impl Pairs {
    fn advance(&mut self) {
        loop {
            let [b, c] = &self.sides;
            let (Some(rb), Some(rc)) = (b.by_pair.get(&self.next), c.by_pair.get(&self.next))
            else {
                return;
            };
            if rb.warmup || rc.warmup {
                self.next += 1;
                continue;
            }
            // A pair with a side dropped or cut off is left out (each
            // side's counts say how many).
            if let (Some(baseline), Some(candidate)) = (side_of(rb), side_of(rc)) {
                self.pairs.push(Pair {
                    at_s: rb.scheduled_us.unwrap_or(rb.start_us) as f64 / 1e6,
                    baseline,
                    candidate,
                });
            }
            self.next += 1;
        }
    }
}

/// The comparison: both runs started, read, judged at each look, stopped
/// when decided (or at the cap, or when one ends), then judged once more
/// on everything they recorded.
fn compare(args: &AbArgs, setup: &Setup) -> anyhow::Result<AbReport> {
    crate::stop::install();
    // Each run reads its scenario, loads its tokenizer and resolves its
    // target before this.
    let start_at = SystemTime::now() + args.start_in;
    let mut children = Vec::new();
    for (i, arm) in [Arm::Baseline, Arm::Candidate].into_iter().enumerate() {
        children.push(spawn(setup, i, arm, start_at, args)?);
    }
    let mut tails = [0, 1].map(|i| Tail::new(run_dir(setup, i).join("requests.csv")));
    let mut pairs = Pairs {
        sides: [Recorded::default(), Recorded::default()],
        next: 0,
        pairs: Vec::new(),
    };
    let planned = setup.plan.looks();
    let mut looks: Vec<Look> = Vec::new();
    let mut reasons = Vec::new();
    let mut stopping = false;
    let mut exited: [Option<std::process::ExitStatus>; 2] = [None, None];
    let mut stopped_at = None::<Instant>;
    let mut killed = [false; 2];
    loop {
        std::thread::sleep(TICK);
        for (i, t) in tails.iter_mut().enumerate() {
            for r in t.read() {
                pairs.sides[i].add(r, setup.alternate);
            }
        }
        pairs.advance();
        // Each planned look once its pairs are in (the last at the cap).
        while !stopping && looks.len() < planned.len() && pairs.pairs.len() >= planned[looks.len()]
        {
            let l = core::look(&setup.plan, &pairs.pairs[..planned[looks.len()]]);
            let decided = l.verdict != Verdict::Inconclusive || looks.len() + 1 == planned.len();
            looks.push(l);
            if decided {
                stopping = true;
            }
        }
        if crate::stop::reason().is_some() && !stopping {
            reasons.push("interrupted before it was decided (Ctrl-C or SIGTERM)".to_owned());
            stopping = true;
        }
        for (i, c) in children.iter_mut().enumerate() {
            if exited[i].is_none() {
                exited[i] = c.0.try_wait().ok().flatten();
            }
        }
        if stopping && stopped_at.is_none() {
            stopped_at = Some(Instant::now());
            for c in &mut children {
                // Closing its standard input stops a child.
                drop(c.0.stdin.take());
            }
        }
        if exited.iter().all(Option::is_some) {
            break;
        }
        // A child that ended alone (its run over, or broken): the other
        // has nothing left to pair with.
        if exited.iter().any(Option::is_some) && !stopping {
            stopping = true;
        }
        let grace = args.stop_grace + Duration::from_secs(15);
        if stopped_at.is_some_and(|t| t.elapsed() > grace) {
            for (i, c) in children.iter_mut().enumerate() {
                if exited[i].is_none() {
                    let _ = c.0.kill();
                    killed[i] = true;
                    reasons.push(format!(
                        "the {} run did not stop within {} s of being asked: killed",
                        arm_name(c.1),
                        grace.as_secs()
                    ));
                    exited[i] = c.0.wait().ok();
                }
            }
            break;
        }
    }
    // What came after the last tick.
    for (i, t) in tails.iter_mut().enumerate() {
        for r in t.read() {
            pairs.sides[i].add(r, setup.alternate);
        }
    }
    pairs.advance();
    let decided = core::decided(&looks).is_some();
    if !decided && looks.len() < planned.len() && !pairs.pairs.is_empty() {
        // Ended before the cap: the last look, on every pair there is.
        looks.push(core::look(&setup.plan, &pairs.pairs));
    }
    for (i, c) in children.iter().enumerate() {
        // 2: the run could not be made (bad input, a target it could not
        // reach): its log says why.
        let died = exited[i].is_some_and(|s| s.code().is_none()) && !killed[i];
        if exited[i].and_then(|s| s.code()) == Some(2) || died {
            reasons.push(format!(
                "the {} run failed: {}",
                arm_name(c.1),
                log_tail(&run_dir(setup, i).with_extension("log"))
            ));
        }
    }
    Ok(assemble(args, setup, &looks, &pairs, &tails, reasons))
}

/// The report: the deciding look (or the last), the reasons, the
/// self-check, each side's counts and the charts' data.
fn assemble(
    args: &AbArgs,
    setup: &Setup,
    looks: &[Look],
    pairs: &Pairs,
    tails: &[Tail; 2],
    mut reasons: Vec<String>,
) -> AbReport {
    let last = core::decided(looks).or(looks.last());
    let mut verdict = last.map_or(Verdict::Inconclusive, |l| l.verdict);
    if let Some(l) = last {
        reasons.extend(core::reasons(l));
    } else {
        reasons.push(format!(
            "no look: {} pairs, and the first look needs {}",
            pairs.pairs.len(),
            setup.plan.first_look
        ));
    }
    for (i, side) in pairs.sides.iter().enumerate() {
        let c = &side.counts;
        if c.requests > 0 && c.dropped as f64 / c.requests as f64 > core::MAX_DROPPED_SHARE {
            reasons.push(format!(
                "the load generator dropped {} of the {}'s {} arrivals (no free user in time): the schedule was not kept, so the pairs are not the same arrivals",
                c.dropped,
                arm_name([Arm::Baseline, Arm::Candidate][i]),
                c.requests
            ));
        }
    }
    for t in tails {
        if let Some(first) = t.bad.first() {
            reasons.push(format!("{} rows could not be read: {first}", t.bad.len()));
        }
    }
    // Anything else said is a reason not to pass.
    if verdict == Verdict::Pass && !reasons.is_empty() {
        verdict = Verdict::Inconclusive;
    }
    let same_target = args.baseline.trim_end_matches('/') == args.candidate.trim_end_matches('/');
    let self_check = core::self_check(same_target, verdict);
    let arm = |i: usize| ArmReport {
        url: setup.arms[i].0.clone(),
        run: run_dir(setup, i).display().to_string(),
        ..pairs.sides[i].counts.clone()
    };
    AbReport {
        scenario: setup.name.clone(),
        pairing: if setup.alternate {
            "alternate"
        } else {
            "mirror"
        }
        .to_owned(),
        baseline: arm(0),
        candidate: arm(1),
        looks_planned: setup.plan.looks(),
        plan: setup.plan.clone(),
        verdict,
        reasons,
        pairs: last.map_or(pairs.pairs.len(), |l| l.pairs),
        objectives: last.map(|l| l.judged.clone()).unwrap_or_default(),
        looks: looks.to_vec(),
        cdf: [core::Figure::FirstToken, core::Figure::Complete]
            .into_iter()
            .map(|figure| core::FigureCdf {
                figure,
                points: core::cdf(&pairs.pairs, figure),
            })
            .filter(|c| !c.points.is_empty())
            .collect(),
        over_time: core::over_time(&pairs.pairs, core::Figure::FirstToken, 20),
        same_target,
        self_check,
    }
}

fn run_dir(setup: &Setup, i: usize) -> PathBuf {
    setup.out.join(["baseline", "candidate"][i])
}

/// One target's run, started: its output in its folder, its log beside.
fn spawn(
    setup: &Setup,
    i: usize,
    arm: Arm,
    start_at: SystemTime,
    args: &AbArgs,
) -> anyhow::Result<(Child, Arm)> {
    let exe =
        std::env::current_exe().context("cannot find the loadgen program to run each target")?;
    let dir = run_dir(setup, i);
    let log_path = dir.with_extension("log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot write {}", log_path.display()))?;
    let child = Command::new(exe)
        .arg("run")
        .arg(&args.scenario)
        .args(&setup.arms[i].1)
        .arg("--out")
        .arg(&dir)
        .arg("--start-at")
        .arg(humantime::format_rfc3339_micros(start_at).to_string())
        .arg("--stop-grace")
        .arg(humantime::format_duration(args.stop_grace).to_string())
        .args(["--ab-arm", arm_name(arm)])
        .args([
            "--ab-pairing",
            if setup.alternate {
                "alternate"
            } else {
                "mirror"
            },
        ])
        .arg("-q")
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the target's run")?;
    Ok((child, arm))
}

/// The last lines of a run's log: why it failed.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    if tail.is_empty() {
        format!("no output ({})", path.display())
    } else {
        format!("{tail} ({})", path.display())
    }
}

fn write(out: &Path, r: &AbReport) -> anyhow::Result<()> {
    let files = [
        ("ab.json", serde_json::to_string_pretty(r)? + "\n"),
        ("ab.md", slo::render::ab::markdown(r)),
        ("ab.html", slo::render::ab::html(r)),
        ("ab-junit.xml", slo::render::ab::junit(r)),
    ];
    for (name, text) in files {
        let p = out.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}
