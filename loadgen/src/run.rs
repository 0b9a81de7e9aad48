//! One run, start to end: the target (the embedded reference server when
//! the scenario names none), the scrape before, the goose attack with the
//! recorder, self-check, health poll and progress beside it, the scrape
//! after, and the report.

use crate::client_probe::{self, ClientProbe};
use crate::mix::{PromptMix, Source};
use crate::plan::Plan;
use crate::recorder::{self, Live};
use crate::report;
use crate::scrape::{self, Scraper};
use crate::shared::{Schedule, Sender, Shared};
use crate::users::{closed_iteration, open_iteration};
use anyhow::Context;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde_json::{Value, json};
use slo::monitoring::paths;
use slo::report::{Report, RunInfo, ScenarioInfo, TargetInfo};
use slo::scenario::LoadShape;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Goose's killswitch is process-wide: one run at a time per process.
static ONE_RUN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the plan and writes every output; returns the report. In phases:
/// resolve the target, start the tasks beside the attack, attack, assemble
/// what was measured, finish (build, write, fail on what went wrong).
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let _one = ONE_RUN.lock().await;
    crate::stop::reset();
    crate::stop::install();
    if plan.ab.is_some() {
        crate::ab::stop_when_stdin_closes();
    }
    let target = Target::resolve(plan).await?;
    let active = Arc::new(AtomicI64::new(0));
    let probe = Arc::new(Mutex::new(ClientProbe::default()));
    let exporter = start_exporter(plan, &active, &probe).await?;
    if let Some(at) = plan.start_at {
        wait_for_start(at).await?;
    }
    let tasks = Tasks::start(
        plan,
        &target,
        active,
        probe,
        exporter.as_ref().map(|(e, _)| Arc::clone(e)),
    )?;
    let mut ended = tasks.attack(plan, &target.url).await?;
    let meta = assemble(plan, target, &mut ended).await;
    finish(plan, meta, ended, exporter).await
}

/// Where the run sends its requests: a URL, or the embedded reference
/// server started for it; the target's detailed metrics before the run.
struct Target {
    url: String,
    embedded: Option<Arc<crate::embedded::Embedded>>,
    client: reqwest::Client,
    scraper: Scraper,
    before: Result<Value, crate::scrape::ScrapeError>,
    /// Its Prometheus text before the run, when it has one.
    prometheus_before: Option<String>,
}

impl Target {
    async fn resolve(plan: &Plan) -> anyhow::Result<Target> {
        let sc = &plan.scenario;
        let (url, embedded) = crate::embedded::target(plan.target.as_deref(), &sc.server)?;
        let client = crate::client::build(&plan.reach)?;
        let scraper = Scraper::with_client(&url, client.clone());
        let (before, prometheus_before) = tokio::join!(
            async { scraper.get(paths::DETAILED).await.and_then(ok_json) },
            prometheus_text(&scraper, sc),
        );
        Ok(Target {
            url,
            embedded: embedded.map(Arc::new),
            client,
            scraper,
            before,
            prometheus_before,
        })
    }
}

/// A token workload's target's Prometheus text (its prefix cache's
/// counters), read beside the monitoring endpoints; other runs do not ask.
async fn prometheus_text(scraper: &Scraper, sc: &slo::scenario::Scenario) -> Option<String> {
    match sc.tokens {
        Some(_) => scraper.text(paths::PROMETHEUS).await.ok(),
        None => None,
    }
}

type ExporterTask = (Arc<crate::exporter::Exporter>, tokio::task::JoinHandle<()>);

/// `--metrics-listen`: the run's own metrics, served from before the start.
async fn start_exporter(
    plan: &Plan,
    active: &Arc<AtomicI64>,
    probe: &Arc<Mutex<ClientProbe>>,
) -> anyhow::Result<Option<ExporterTask>> {
    let Some(addr) = plan.metrics_listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "--metrics-listen {addr}: cannot listen there (in use, or not an address of this host)"
        )
    })?;
    let e = Arc::new(crate::exporter::Exporter::new(
        &plan.scenario.name,
        plan.shard,
        Arc::clone(active),
        Arc::clone(probe),
    ));
    Ok(Some((
        Arc::clone(&e),
        tokio::spawn(crate::exporter::serve(listener, e)),
    )))
}

/// What the users share for one run.
fn new_shared(
    plan: &Plan,
    target: &Target,
    active: &Arc<AtomicI64>,
    clock: &Arc<std::sync::OnceLock<crate::shared::Clock>>,
    sizing: (&Arc<AtomicBool>, &Arc<Mutex<Option<String>>>),
    (tx, started_wall): (std::sync::mpsc::Sender<crate::shared::Msg>, SystemTime),
) -> Shared {
    let sc = &plan.scenario;
    Shared {
        protocol: crate::protocol::of(sc),
        client: target.client.clone(),
        cancel: tokio_util::sync::CancellationToken::new(),
        base_url: target.url.trim_end_matches('/').to_owned(),
        // Shards started together: their index keeps their ids apart.
        run_id: format!(
            "{:x}{}",
            started_wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            plan.shard.map_or(String::new(), |(i, _)| format!("-s{i}"))
        ),
        clock: Arc::clone(clock),
        run_length: plan.run_length(),
        run_cap: sc.warmup + sc.max_measured(),
        min_requests: sc.min_requests,
        conclusive: Arc::clone(sizing.0),
        hopeless: Arc::clone(sizing.1),
        warmup: sc.warmup,
        timeout: sc.request.timeout,
        audio: sc.request.audio,
        prepared: prepared(plan),
        tokens: plan.tokens.clone(),
        multi_turn: sc.multi_turn(),
        turn_think: sc.turn_think_time(),
        seq: AtomicU64::new(0),
        sessions: AtomicU64::new(0),
        active: Arc::clone(active),
        records: Sender::new(tx),
        schedule: match sc.load.shape {
            LoadShape::Open { .. } => Some(Mutex::new(Schedule::rate(
                &sc.load,
                sc.seed,
                // Evenly spaced shards interleave: shard I starts I
                // intervals of the whole rate late, so together they are
                // the whole run's even spacing, not N requests at once.
                match (plan.shard, plan.whole_load.rate()) {
                    (Some((i, _)), Some(whole)) => f64::from(i) / whole,
                    _ => 0.0,
                },
            ))),
            LoadShape::Trace(_) => Some(Mutex::new(Schedule::trace(
                plan.replay.clone().unwrap_or_default(),
            ))),
            LoadShape::Users { .. } | LoadShape::TestPlan(_) => None,
        },
        pacer: crate::pacer::Pacer::start(),
        max_lateness: sc.load.max_lateness(),
        max_event_bytes: usize::try_from(sc.request.max_event_bytes).unwrap_or(usize::MAX),
        max_body_bytes: usize::try_from(sc.request.max_body_bytes).unwrap_or(usize::MAX),
        measured_done: AtomicU64::new(0),
        stopped: Arc::default(),
        measured_end: std::sync::OnceLock::new(),
        ab: plan.ab,
    }
}

/// The thread that draws each arrival's session ahead of it: about two
/// seconds of arrivals at the peak rate (two sessions a closed user), 16
/// to 2,048 sessions.
fn prepared(plan: &Plan) -> Arc<crate::prepare::Prepared> {
    let sc = &plan.scenario;
    let (source, depth) = match (&sc.load.shape, &plan.replay) {
        (LoadShape::Trace(_), Some(rows)) => {
            // Two seconds at the window's mean rate (its bursts wait, and
            // show as lateness; not the whole trace: prompts can be large).
            let mean = rows.len() as f64 / sc.duration.as_secs_f64().max(1.0);
            let depth = (mean * 2.0).ceil() as usize;
            (crate::prepare::Source::Trace(Arc::clone(rows)), depth)
        }
        (LoadShape::Open { rate, stages, .. }, _) => {
            let peak = stages.iter().map(|s| s.target).fold(*rate, f64::max);
            (crate::prepare::Source::Mix, (peak * 2.0).ceil() as usize)
        }
        (LoadShape::Users { users, .. }, _) => (crate::prepare::Source::Mix, users * 2),
        _ => (crate::prepare::Source::Mix, sc.load.max_users() * 2),
    };
    crate::prepare::Prepared::start(mix_of(plan), source, depth.clamp(16, 2048))
}

/// Where the run's prompts come from, and the answer lengths it asks.
fn mix_of(plan: &Plan) -> PromptMix {
    let sc = &plan.scenario;
    let source = match (&plan.dataset, &plan.tokens) {
        (Some(conversations), _) => Source::dataset(
            conversations.as_ref().clone(),
            sc.dataset.as_ref().map(|d| d.order) == Some(slo::scenario::DatasetOrder::Shuffle),
        ),
        (None, Some(work)) if sc.tokens.as_ref().is_some_and(|t| t.input.is_some()) => {
            Source::Cut(Arc::clone(work))
        }
        (None, _) => Source::prompts(&sc.request.prompts),
    };
    let mix = PromptMix::new(
        sc.seed,
        source,
        &sc.request.chatbot_ids,
        sc.request.repeat_ratio,
    );
    let mix = match sc.conversation.as_ref().and_then(|c| c.turns.clone()) {
        Some(turns) => mix.with_turns(turns),
        None => mix,
    };
    match &plan.tokens {
        Some(work) => mix.with_lengths(Arc::clone(work)),
        None => mix,
    }
}

/// A run that sizes itself: the objectives it sizes on, and the flags it
/// raises when they are conclusive or shown to fail whatever comes.
fn until_conclusive(
    plan: &Plan,
    conclusive: &Arc<AtomicBool>,
    hopeless: &Arc<Mutex<Option<String>>>,
) -> Option<recorder::UntilConclusive> {
    let sc = &plan.scenario;
    (sc.until_conclusive || sc.min_requests > 0).then(|| recorder::UntilConclusive {
        objectives: plan.sizing.clone().unwrap_or_else(|| {
            plan.slo.as_ref().map_or_else(
                || slo::objective::default_policy().objectives,
                |(_, f)| f.objectives.clone(),
            )
        }),
        stop_on_breach: plan.stop_on_breach,
        fail_on: plan.gate.fail_on,
        open_model: sc.load.is_open(),
        percentiles: sc.until_conclusive,
        conclusive: Arc::clone(conclusive),
        hopeless: Arc::clone(hopeless),
    })
}

/// Everything that runs beside the attack, started.
struct Tasks {
    shared: Arc<Shared>,
    clock: Arc<std::sync::OnceLock<crate::shared::Clock>>,
    started: Instant,
    started_wall: SystemTime,
    probe: Arc<Mutex<ClientProbe>>,
    recorder: tokio::task::JoinHandle<anyhow::Result<(slo::aggregate::Aggregate, Option<String>)>>,
    health: Arc<Mutex<Vec<slo::server_view::HealthSample>>>,
    /// Aborted when the attack ends.
    helpers: Vec<tokio::task::JoinHandle<()>>,
    progress: Option<Display>,
    completed: Arc<AtomicBool>,
    /// Aborted once the report is written: a signal in any phase counts.
    stop_listeners: [tokio::task::JoinHandle<()>; 2],
    timeline: Option<tokio::task::JoinHandle<()>>,
    events_done: Arc<Mutex<Vec<slo::report::EventRecord>>>,
    alerting: Option<Arc<Mutex<crate::drill_alerts::Alerting>>>,
    engine: crate::engine::Readings,
    /// The `[[scrape]]` endpoints' thread, stopped with the helpers.
    scrapes: Option<crate::engine::Scrapes>,
}

impl Tasks {
    fn start(
        plan: &Plan,
        target: &Target,
        active: Arc<AtomicI64>,
        probe: Arc<Mutex<ClientProbe>>,
        exporter: Option<Arc<crate::exporter::Exporter>>,
    ) -> anyhow::Result<Tasks> {
        let sc = &plan.scenario;
        let (tx, rx) = std::sync::mpsc::channel();
        let conclusive = Arc::new(AtomicBool::new(!sc.until_conclusive));
        let hopeless = Arc::new(Mutex::new(None));
        let started = Instant::now();
        let started_wall = SystemTime::now();
        let clock = Arc::new(std::sync::OnceLock::new());
        let shared = Arc::new(new_shared(
            plan,
            target,
            &active,
            &clock,
            (&conclusive, &hopeless),
            (tx, started_wall),
        ));
        if let Some(at) = plan.start_at {
            // A shard's zero is --start-at itself, shared by every shard
            // (`run` waited for it; it may lie a little behind now).
            let behind = started_wall.duration_since(at).unwrap_or_default();
            shared.start_clock_at(started.checked_sub(behind).unwrap_or(started));
        }
        let live = Arc::new(Mutex::new(Live::default()));
        let setup = recorder::Setup {
            out: plan.out.clone(),
            started,
            started_wall,
            clock: Arc::clone(&clock),
            active: Arc::clone(&active),
            live: Arc::clone(&live),
            goodput: slo::report::goodput_limits(plan.slo.as_ref().map(|(_, f)| f)),
            warmup: sc.warmup,
            probe: Arc::clone(&probe),
            until_conclusive: until_conclusive(plan, &conclusive, &hopeless),
            exporter,
        };
        // Blocking file I/O: on the blocking pool, never on an async worker.
        let recorder = tokio::task::spawn_blocking(move || recorder::record(setup, rx));
        let health = Arc::new(Mutex::new(Vec::new()));
        let mut helpers = vec![
            tokio::spawn(client_probe::probe(Arc::clone(&probe))),
            tokio::spawn(target.scraper.clone().poll_health(
                started,
                Duration::from_secs(2),
                Arc::clone(&health),
            )),
        ];
        let progress = display(plan, target, started, (&live, &active, &probe))?;
        let completed = Arc::new(AtomicBool::new(false));
        helpers.push(tokio::spawn(end_of_run(
            Arc::clone(&shared),
            Arc::clone(&completed),
        )));
        if let Some(hook) = crate::client_probe::StallHook::from_env() {
            helpers.push(tokio::spawn(hook.run(Arc::clone(&clock))));
        }
        let stop_listeners = [
            tokio::spawn(crate::stop::on_sigterm()),
            tokio::spawn(crate::stop::drain(
                plan.stop_grace,
                shared.cancel.clone(),
                Arc::clone(&shared.stopped),
                {
                    let clock = Arc::clone(&clock);
                    move || clock.get().is_some()
                },
            )),
        ];
        // The timeline and the guide's alert rules evaluated live (a
        // drill): shard 0 of a sharded run applies them, alone.
        let first_shard = plan.shard.is_none_or(|(i, _)| i == 0);
        let events_done = Arc::new(Mutex::new(Vec::new()));
        let timeline = (!sc.timeline.is_empty() && first_shard).then(|| {
            tokio::spawn(crate::timeline::apply(
                sc.timeline.clone(),
                Arc::clone(&clock),
                (shared.client.clone(), shared.base_url.clone()),
                target.embedded.clone(),
                Arc::clone(&events_done),
            ))
        });
        let drill = sc.alerts.is_some() || sc.timeline.iter().any(|e| !e.expect.is_empty());
        let alerting = (drill && first_shard)
            .then(|| crate::drill_alerts::Alerting::new(sc.alerts.clone().unwrap_or_default()));
        if let Some(state) = &alerting {
            helpers.push(tokio::spawn(crate::drill_alerts::watch(
                Arc::clone(state),
                Arc::clone(&clock),
                (started, started_wall),
                shared.client.clone(),
                shared.base_url.clone(),
            )));
        }
        // The engine's endpoints (`[[scrape]]`): every shard reads them
        // (a merged run keeps the first shard's).
        let engine = crate::engine::Readings::default();
        let scrapes =
            crate::engine::spawn(&sc.scrape, (&plan.reach, &shared.base_url), &clock, &engine)?;
        Ok(Tasks {
            shared,
            clock,
            started,
            started_wall,
            probe,
            recorder,
            health,
            helpers,
            progress,
            completed,
            stop_listeners,
            timeline,
            events_done,
            alerting,
            engine,
            scrapes,
        })
    }

    /// Runs goose until the run ends, stops the tasks beside it and waits
    /// for the recorder's figures.
    async fn attack(mut self, plan: &Plan, url: &str) -> anyhow::Result<Ended> {
        goose::reset_killswitch();
        let attack = build_attack(plan, url, &self.shared)?;
        let goose_result = attack
            .execute()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        // The killswitch is pulled by end_of_run, by a signal, or by nobody
        // when goose ended by itself (a test plan that ran out).
        let killed = goose::is_killswitch_triggered();
        if let Some(t) = &self.timeline {
            t.abort();
        }
        crate::users::drop_unclaimed(&self.shared);
        self.shared.prepared.close();
        self.shared.records.close();
        for h in &self.helpers {
            h.abort();
        }
        if let Some(s) = self.scrapes.take() {
            s.stop().await;
        }
        if let Some(p) = self.progress {
            p.finish();
        }
        let measured_end = self.shared.measured_end.get().copied();
        drop(self.shared);
        let (aggregate, write_error) =
            self.recorder.await.context("the recorder task failed")??;
        let mut events = std::mem::take(&mut *self.events_done.lock().expect("events lock"));
        if self.timeline.is_some() {
            events.extend(crate::timeline::not_reached(
                &plan.scenario.timeline,
                &events,
            ));
        }
        Ok(Ended {
            elapsed: self.started.elapsed(),
            goose_result,
            killed,
            completed: self.completed.load(Ordering::SeqCst),
            measured_end,
            aggregate,
            write_error,
            clock: self.clock.get().copied(),
            started: self.started,
            started_wall: self.started_wall,
            probe: self.probe,
            health: std::mem::take(&mut *self.health.lock().expect("health lock")),
            events,
            alerting: self.alerting,
            engine: std::mem::take(&mut *self.engine.lock().expect("readings lock")),
            stop_listeners: self.stop_listeners,
        })
    }
}

/// What a run shows while it goes: the live view (standard output is a
/// terminal), else the progress line (standard error is one), else
/// nothing; nothing with `-q`, no live view with `--no-tui`.
enum Display {
    View(crate::live_view::LiveView),
    Line(crate::progress::Progress),
}

impl Display {
    fn finish(self) {
        match self {
            Display::View(v) => v.finish(),
            Display::Line(p) => p.finish(),
        }
    }
}

fn display(
    plan: &Plan,
    target: &Target,
    started: Instant,
    (live, active, probe): (&Arc<Mutex<Live>>, &Arc<AtomicI64>, &Arc<Mutex<ClientProbe>>),
) -> std::io::Result<Option<Display>> {
    if plan.quiet {
        return Ok(None);
    }
    if plan.tui && std::io::stdout().is_terminal() {
        let feed = crate::live_view::Feed {
            live: Arc::clone(live),
            active: Arc::clone(active),
            probe: Arc::clone(probe),
            started: started.into_std(),
            total: plan.run_length(),
            title: format!("{} -> {}", plan.scenario.name, target.url),
            lines: crate::live_view::SloLines::of(plan.slo.as_ref().map(|(_, f)| f)),
        };
        return crate::live_view::start(feed).map(|v| Some(Display::View(v)));
    }
    if std::io::stderr().is_terminal() {
        return crate::progress::start(
            started.into_std(),
            plan.run_length(),
            Arc::clone(live),
            Arc::clone(active),
        )
        .map(|p| Some(Display::Line(p)));
    }
    Ok(None)
}

/// What the attack left: goose's end, the recorder's figures, the tasks'
/// findings.
struct Ended {
    goose_result: Result<(), String>,
    killed: bool,
    completed: bool,
    measured_end: Option<Instant>,
    aggregate: slo::aggregate::Aggregate,
    write_error: Option<String>,
    elapsed: Duration,
    clock: Option<crate::shared::Clock>,
    started: Instant,
    started_wall: SystemTime,
    probe: Arc<Mutex<ClientProbe>>,
    health: Vec<slo::server_view::HealthSample>,
    events: Vec<slo::report::EventRecord>,
    alerting: Option<Arc<Mutex<crate::drill_alerts::Alerting>>>,
    /// The `[[scrape]]` endpoints' readings.
    engine: Vec<slo::engine::Reading>,
    stop_listeners: [tokio::task::JoinHandle<()>; 2],
}

impl Ended {
    /// Why the run stopped before its end, if it did.
    fn interrupted(&self) -> Option<String> {
        match (&self.goose_result, crate::stop::reason()) {
            // A signal is never lost, whatever phase it arrived in.
            (_, Some(why)) => Some(why),
            (Err(e), None) => Some(format!("the load test stopped with an error: {e}")),
            (Ok(()), None) if self.completed => None,
            // Goose was stopped and not by the end of the run: only its
            // Ctrl-C handler pulls the killswitch besides us.
            (Ok(()), None) if self.killed => Some("stopped by Ctrl-C (SIGINT)".to_owned()),
            // Goose ended by itself: a test plan shorter than the duration.
            (Ok(()), None) => None,
        }
    }

    /// The measured span: from the end of the warm-up to the end (or the cap).
    fn measured(&self) -> Duration {
        self.clock.map_or(Duration::ZERO, |c| {
            self.measured_end
                .unwrap_or_else(Instant::now)
                .min(c.cap)
                .saturating_duration_since(c.warmup_end)
        })
    }

    /// The run clock's zero in Unix microseconds (shards line up on it; a
    /// shard's clock starts at --start-at, which may lie before `started`).
    fn zero_unix_us(&self) -> u64 {
        self.clock
            .map_or(self.started_wall, |c| {
                if c.started >= self.started {
                    self.started_wall + (c.started - self.started)
                } else {
                    self.started_wall - (self.started - c.started)
                }
            })
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }

    /// The load generator's verdict on itself.
    fn self_check(&self, plan: &Plan) -> slo::self_check::SelfCheck {
        let sc = &plan.scenario;
        let mut check = self.probe.lock().expect("probe lock").verdict(
            plan.target.is_none(),
            self.aggregate.client_stalled,
            self.aggregate.total,
        );
        let users = match sc.load.shape {
            LoadShape::Open { .. } | LoadShape::Trace(_) => Some(sc.load.max_users()),
            LoadShape::Users { users, .. } => Some(users),
            LoadShape::TestPlan(_) => None,
        };
        if let (Some(w), Some(f)) = (
            users.and_then(client_probe::ports_warning),
            check.figures.as_mut(),
        ) {
            f.warnings.push(w);
        }
        check
    }
}

/// The report's run section: the scrape after, the target, the load, the
/// self-check. The embedded server stops here.
async fn assemble(plan: &Plan, target: Target, ended: &mut Ended) -> RunInfo {
    let sc = &plan.scenario;
    let (after, system, prometheus_after) = tokio::join!(
        async { target.scraper.get(paths::DETAILED).await.and_then(ok_json) },
        async { target.scraper.get(paths::SYSTEM).await.ok().map(|(_, v)| v) },
        prometheus_text(&target.scraper, sc),
    );
    drop(target.embedded);
    let mut server = scrape::section(
        target.before,
        after,
        system,
        std::mem::take(&mut ended.health),
    );
    server.prefix_cache = target
        .prometheus_before
        .zip(prometheus_after)
        .and_then(|(b, a)| scrape::prefix_cache(&b, &a));
    let warmup = sc.warmup.as_secs_f64();
    let engine = crate::engine::views(
        &sc.scrape,
        target.url.trim_end_matches('/'),
        &ended.engine,
        slo::engine::Window {
            from: warmup,
            to: warmup + ended.measured().as_secs_f64(),
        },
    );
    RunInfo {
        alerts: ended
            .alerting
            .as_ref()
            .map(|a| a.lock().expect("alerting lock").section()),
        scenario: ScenarioInfo {
            name: sc.name.clone(),
            file: plan.scenario_file.display().to_string(),
            description: sc.description.clone(),
        },
        target: TargetInfo {
            url: target.url,
            embedded: plan.target.is_none(),
            protocol: sc.protocol.as_str().to_owned(),
            headers: plan.reach.header_names(),
            ca_cert: plan.reach.ca_cert.as_ref().map(|p| p.display().to_string()),
            tls_insecure: plan.reach.insecure,
        },
        load: json!({
            "model": sc.load,
            "duration_s": sc.duration.as_secs_f64(),
            "warmup_s": sc.warmup.as_secs_f64(),
            "audio": sc.request.audio,
            "repeat_ratio": sc.request.repeat_ratio,
            "timeout_s": sc.request.timeout.as_secs_f64(),
        }),
        started_at: humantime::format_rfc3339_millis(ended.started_wall).to_string(),
        elapsed_s: ended.elapsed.as_secs_f64(),
        measured_s: ended.measured().as_secs_f64(),
        warmup_s: sc.warmup.as_secs_f64(),
        interrupted: ended.interrupted(),
        shard: plan.shard.map(|(index, count)| slo::report::ShardInfo {
            index,
            count,
            seed: plan.whole_seed,
            start_at: plan
                .start_at
                .map(|t| humantime::format_rfc3339_millis(t).to_string()),
            zero_unix_us: ended.zero_unix_us(),
            whole_load: json!(plan.whole_load),
        }),
        judge: plan.judge,
        shards: Vec::new(),
        shard_problems: Vec::new(),
        events: std::mem::take(&mut ended.events),
        windowed: crate::windows::judged(
            plan.slo.as_ref().map(|(_, f)| f),
            &crate::windows::Sources {
                dir: &plan.out,
                warmup_s: warmup,
                measured_s: ended.measured().as_secs_f64(),
                engine: &engine,
                readings: &ended.engine,
            },
            plan.gate.fail_on,
        ),
        engine,
        server,
        self_check: ended.self_check(plan),
        slo: plan.slo.clone(),
        gate: plan.gate,
        open_model: sc.load.is_open(),
        files: report::files(),
    }
}

/// Builds the report (again if a signal came meanwhile), writes every
/// output, and fails when writing or the attack itself failed.
async fn finish(
    plan: &Plan,
    meta: RunInfo,
    ended: Ended,
    exporter: Option<ExporterTask>,
) -> anyhow::Result<Report> {
    let url = meta.target.url.clone();
    let mut report = slo::report::build(meta.clone(), &ended.aggregate);
    // A signal that came while the report was being built still counts.
    if report.interrupted.is_none()
        && let Some(why) = crate::stop::reason()
    {
        report = slo::report::build(
            RunInfo {
                interrupted: Some(why),
                ..meta
            },
            &ended.aggregate,
        );
    }
    for listener in &ended.stop_listeners {
        listener.abort();
    }
    let written = report::write_all(&plan.out, &report).and_then(|()| {
        if ended.engine.is_empty() {
            Ok(())
        } else {
            crate::engine::write(&plan.out, &ended.engine)
        }
    });
    if let Some((_, server)) = exporter {
        // The final counts, for a last scrape.
        tokio::time::sleep(plan.metrics_linger).await;
        server.abort();
    }
    if let Some(e) = ended.write_error {
        let q = &report.figures.requests;
        return Err(anyhow::anyhow!(
            "{e}: the run stopped at once. Measured: {} requests ({} ok, {} failed); {}",
            q.total,
            q.ok,
            q.failed,
            match written {
                Ok(()) => format!("the reports are in {}", plan.out.display()),
                Err(w) => format!("the reports could not be written either: {w:#}"),
            }
        ));
    }
    written?;
    if let Err(e) = ended.goose_result
        && report.figures.requests.total == 0
    {
        return Err(anyhow::anyhow!(
            "the load test could not run against {url}: {e}"
        ));
    }
    Ok(report)
}

/// Sleeps until `at` (`--start-at`); a start more than a second late is
/// an error (shards must begin together), and so is a stop while waiting.
async fn wait_for_start(at: SystemTime) -> anyhow::Result<()> {
    let shown = humantime::format_rfc3339_millis(at);
    loop {
        let now = SystemTime::now();
        match at.duration_since(now) {
            Ok(left) if left > Duration::from_secs(24 * 3600) => anyhow::bail!(
                "--start-at {shown} is more than a day away; give the time the shards should start"
            ),
            Ok(left) if left.is_zero() => return Ok(()),
            Ok(left) => {
                if let Some(why) = crate::stop::reason() {
                    anyhow::bail!("{why} while waiting for --start-at {shown}: nothing was sent");
                }
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            }
            Err(past) if past.duration() <= Duration::from_secs(1) => return Ok(()),
            Err(past) => anyhow::bail!(
                "--start-at {shown} was {:.1} s ago when the run was ready: it would not start with the other shards; give a later time",
                past.duration().as_secs_f64()
            ),
        }
    }
}

fn ok_json((status, v): (u16, Value)) -> Result<Value, crate::scrape::ScrapeError> {
    if status == 200 {
        Ok(v)
    } else {
        Err(crate::scrape::ScrapeError::NotOk { status })
    }
}

/// At the end of `duration` (or later, up to the cap, while a run that
/// sizes itself lacks requests or conclusive percentiles and is not shown
/// to fail whatever they say), stops new
/// requests, waits for the ones in flight (up to the timeout), then stops
/// goose.
async fn end_of_run(s: Arc<Shared>, completed: Arc<AtomicBool>) {
    let clock = crate::shared::Clock::started(&s.clock).await;
    tokio::time::sleep_until(clock.end).await;
    // A run shown to fail whatever more requests say stops sizing itself.
    while Instant::now() < clock.cap
        && s.hopeless.lock().expect("hopeless lock").is_none()
        && (s.measured_done.load(Ordering::Relaxed) < s.min_requests
            || !s.conclusive.load(Ordering::Relaxed))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = Instant::now().min(clock.cap);
    let _ = s.measured_end.set(end);
    s.stopped.set();
    let give_up = end + s.timeout + Duration::from_secs(1);
    while s.active.load(Ordering::Relaxed) > 0 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    completed.store(true, Ordering::SeqCst);
    goose::trigger_killswitch("the scenario's duration is over");
}

fn build_attack(plan: &Plan, url: &str, shared: &Arc<Shared>) -> anyhow::Result<GooseAttack> {
    let sc = &plan.scenario;
    let mut config = GooseConfiguration::default();
    config.report_file = vec![
        plan.out.join("goose.html").display().to_string(),
        plan.out.join("goose.json").display().to_string(),
    ];
    let open = sc.load.is_open();
    let s = Arc::clone(shared);
    let transaction = Transaction::new(Arc::new(move |user| {
        let s = Arc::clone(&s);
        Box::pin(async move {
            if open {
                open_iteration(user, &s).await
            } else {
                closed_iteration(user, &s).await
            }
        })
    }))
    .set_name("chat");
    // Every user takes the run's client: one pool, the run's headers and TLS.
    let s = Arc::clone(shared);
    let take_client = Transaction::new(Arc::new(move |user| {
        user.client = s.client.clone();
        Box::pin(async { Ok(()) })
    }))
    .set_name("client")
    .set_on_start();
    let mut scenario = scenario!("chat")
        .register_transaction(take_client)
        .register_transaction(transaction);
    if !open && !sc.request.think_time.is_zero() {
        scenario = scenario.set_wait_time(sc.request.think_time, sc.request.think_time)?;
    }
    // A safety cap: the run normally ends when end_of_run stops it.
    let cap = (sc.warmup + sc.max_measured() + sc.request.timeout).as_secs() + 5;
    // Goose builds one client for all users (not one each) before they
    // take the run's.
    let mut attack = GooseAttack::initialize_with_config(config)?
        .set_client_builder_without_cookies(
            goose::client::GooseClientBuilder::new().without_cookies(),
        )?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, url)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::NoGzip, true)?
        .set_default(GooseDefault::Quiet, 1)?
        .set_default(
            GooseDefault::Timeout,
            (sc.request.timeout.as_secs() + 5).to_string().as_str(),
        )?;
    let shape = &sc.load.shape;
    // Goose refuses no_reset_metrics with a test plan (it never resets then).
    if !matches!(shape, LoadShape::TestPlan(_)) {
        attack = attack.set_default(GooseDefault::NoResetMetrics, true)?;
    }
    attack = match shape {
        LoadShape::Open { .. } | LoadShape::Trace(_) => {
            let max_users = sc.load.max_users();
            attack
                .set_default(GooseDefault::Users, max_users)?
                .set_default(
                    GooseDefault::IncreaseRate,
                    (max_users * 20).to_string().as_str(),
                )?
                .set_default(GooseDefault::RunTime, cap as usize)?
        }
        LoadShape::TestPlan(test_plan) => {
            attack.set_default(GooseDefault::TestPlan, test_plan.as_str())?
        }
        &LoadShape::Users { users, ramp_up } => {
            let ramp = ramp_up.unwrap_or_default().as_secs_f64();
            let rate = if ramp > 0.0 {
                users as f64 / ramp
            } else {
                users as f64 * 20.0
            };
            attack
                .set_default(GooseDefault::Users, users)?
                .set_default(GooseDefault::IncreaseRate, format!("{rate}").as_str())?
                .set_default(GooseDefault::RunTime, cap as usize)?
        }
    };
    Ok(*attack)
}
