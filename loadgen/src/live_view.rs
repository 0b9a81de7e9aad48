//! The live view of a run on a terminal (`loadgen run` when standard
//! output is one, unless `--no-tui` or `--quiet`): requests offered and
//! achieved a second, active streams, first-token and complete
//! percentiles a second against the SLO file's lines, failures by cause,
//! and the self-check, redrawn once a second with ratatui on the
//! alternate screen. `q` stops the run as Ctrl-C does (its reports are
//! written, marked interrupted; `q` again cancels what is in flight),
//! `p` pauses the chart (the run goes on).
//!
//! It runs on a thread of its own, as the progress line does: a terminal
//! that stops reading blocks that thread, never a runtime worker. The
//! keyboard is read there too (raw mode: Ctrl-C is a key, taken as `q`).

use crate::client_probe::ClientProbe;
use crate::recorder::{Live, LiveSecond};
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Sparkline};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the view reads, and what it says of the run.
pub struct Feed {
    pub live: Arc<Mutex<Live>>,
    pub active: Arc<AtomicI64>,
    pub probe: Arc<Mutex<ClientProbe>>,
    pub started: Instant,
    pub total: Duration,
    /// The scenario's name and the target's URL, for the title.
    pub title: String,
    /// The SLO file's lines drawn on the chart: first-token and complete
    /// p95 targets in ms, where it has them.
    pub lines: SloLines,
}

/// The targets of the SLO file's first-token and complete p95 objectives.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SloLines {
    pub first_token_p95_ms: Option<f64>,
    pub complete_p95_ms: Option<f64>,
}

impl SloLines {
    /// From an SLO file: the first objective on each p95 (client side,
    /// from the request's start or its scheduled start alike).
    pub fn of(slo: Option<&slo::objective::SloFile>) -> SloLines {
        let target = |which: &str| {
            slo?.objectives
                .iter()
                .find(|o| {
                    o.source == slo::objective::Source::Client
                        && o.window.is_none()
                        && (o.metric == format!("latency_ms.{which}.p95")
                            || o.metric == format!("scheduled_latency_ms.{which}.p95"))
                })
                .map(|o| o.target)
        };
        SloLines {
            first_token_p95_ms: target("first_token"),
            complete_p95_ms: target("complete"),
        }
    }
}

/// The view being drawn; [`LiveView::finish`] gives the terminal back.
pub struct LiveView {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Takes the terminal (raw mode, the alternate screen) and starts
/// drawing. An error leaves the terminal as it was.
pub fn start(feed: Feed) -> std::io::Result<LiveView> {
    let (terminal, screen) = Screen::take()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("live-view".into())
        .spawn(move || {
            let mut terminal = terminal;
            run(&mut terminal, &feed, &stopped);
            screen.give_back(terminal);
        });
    match thread {
        Ok(thread) => Ok(LiveView {
            stop,
            thread: Some(thread),
        }),
        // The closure, and with it the screen, is dropped: given back.
        Err(e) => Err(e),
    }
}

type Term = ratatui::Terminal<ratatui::backend::CrosstermBackend<std::fs::File>>;

/// The terminal while the view has it. Whatever else the process writes
/// meanwhile (goose's "All users launched", a warning, the embedded
/// server's log) would scroll the view away: standard output goes to
/// /dev/null and standard error to a file, which is written out on the
/// terminal once the view is gone, so nothing said is lost.
struct Screen {
    out: std::os::fd::OwnedFd,
    err: std::os::fd::OwnedFd,
    said: std::path::PathBuf,
    given_back: bool,
}

impl Screen {
    fn take() -> std::io::Result<(Term, Screen)> {
        use ratatui::crossterm::{execute, terminal};
        let out = rustix::io::dup(std::io::stdout())?;
        let err = rustix::io::dup(std::io::stderr())?;
        let said = std::env::temp_dir().join(format!("loadgen-live-{}.log", std::process::id()));
        let capture = std::fs::File::create(&said)?;
        let mut tty = std::fs::File::from(rustix::io::dup(&out)?);
        terminal::enable_raw_mode()?;
        let screen = Screen {
            out,
            err,
            said,
            given_back: false,
        };
        execute!(
            tty,
            terminal::EnterAlternateScreen,
            ratatui::crossterm::cursor::Hide
        )?;
        rustix::stdio::dup2_stdout(std::fs::File::open("/dev/null")?)?;
        rustix::stdio::dup2_stderr(&capture)?;
        let terminal = Term::new(ratatui::backend::CrosstermBackend::new(tty))?;
        Ok((terminal, screen))
    }

    /// The terminal as it was, then what was said meanwhile.
    fn give_back(mut self, mut terminal: Term) {
        use ratatui::crossterm::{execute, terminal as term};
        let _ = execute!(
            terminal.backend_mut(),
            term::LeaveAlternateScreen,
            ratatui::crossterm::cursor::Show
        );
        self.restore();
    }

    fn restore(&mut self) {
        if std::mem::replace(&mut self.given_back, true) {
            return;
        }
        let _ = ratatui::crossterm::terminal::disable_raw_mode();
        let _ = rustix::stdio::dup2_stdout(&self.out);
        let _ = rustix::stdio::dup2_stderr(&self.err);
        if let Ok(text) = std::fs::read(&self.said) {
            use std::io::Write;
            let _ = std::io::stderr().write_all(&text);
        }
        let _ = std::fs::remove_file(&self.said);
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // A view that ended without drawing its last frame (a panic): the
        // alternate screen is left on the terminal's own.
        if !self.given_back {
            use std::io::Write;
            let mut tty = std::fs::File::from(self.out.try_clone().expect("a dup of the terminal"));
            let _ = ratatui::crossterm::execute!(
                tty,
                ratatui::crossterm::terminal::LeaveAlternateScreen,
                ratatui::crossterm::cursor::Show
            );
            let _ = tty.flush();
        }
        self.restore();
    }
}

impl LiveView {
    /// Stops drawing and gives the terminal back as it was (as dropping
    /// it does: a run that ends in an error leaves a usable terminal).
    pub fn finish(self) {}
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the keys have set.
#[derive(Debug, Default)]
struct Keys {
    /// The chart's seconds as they were when `p` was pressed.
    paused: Option<Vec<LiveSecond>>,
    /// `q` pressed: once (stopping), twice (cancelling).
    quits: u32,
}

fn run(terminal: &mut Term, feed: &Feed, stop: &AtomicBool) {
    let mut keys = Keys::default();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            next = Instant::now() + Duration::from_secs(1);
            let snapshot = Snapshot::take(feed);
            let _ = terminal.draw(|f| draw(f, feed, &snapshot, &keys));
        }
        // Keys, a tenth of a second at a time, until the next frame.
        if event::poll(Duration::from_millis(100)).unwrap_or(false)
            && let Ok(Event::Key(k)) = event::read()
            && k.kind == KeyEventKind::Press
        {
            let ctrl_c =
                k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
            match k.code {
                KeyCode::Char('q') | KeyCode::Esc => quit(&mut keys),
                _ if ctrl_c => quit(&mut keys),
                KeyCode::Char('p') | KeyCode::Char(' ') => {
                    keys.paused = match keys.paused.take() {
                        Some(_) => None,
                        None => Some(
                            feed.live
                                .lock()
                                .expect("live lock")
                                .seconds
                                .iter()
                                .copied()
                                .collect(),
                        ),
                    };
                }
                _ => continue,
            }
            next = Instant::now();
        }
    }
}

/// `q`: the first stops the run as Ctrl-C does, the second cancels the
/// requests in flight (both still write every report).
fn quit(keys: &mut Keys) {
    keys.quits += 1;
    crate::stop::request("stopped from the live view (q)", keys.quits > 1);
}

/// One frame's figures.
struct Snapshot {
    live: Live,
    active: i64,
    check: crate::client_probe::LiveCheck,
    elapsed: Duration,
}

impl Snapshot {
    fn take(feed: &Feed) -> Snapshot {
        Snapshot {
            live: feed.live.lock().expect("live lock").clone(),
            active: feed.active.load(Ordering::Relaxed),
            check: feed.probe.lock().expect("probe lock").live(),
            elapsed: feed.started.elapsed(),
        }
    }
}

fn draw(f: &mut Frame, feed: &Feed, s: &Snapshot, keys: &Keys) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(8),
        Constraint::Length(8),
    ])
    .areas(f.area());
    f.render_widget(header(feed, s, keys), head);
    let seconds: Vec<LiveSecond> = match &keys.paused {
        Some(frozen) => frozen.clone(),
        None => s.live.seconds.iter().copied().collect(),
    };
    latency_chart(f, body, &seconds, feed.lines, keys.paused.is_some());
    let [rates, errors, check] = Layout::horizontal([
        Constraint::Percentage(40),
        Constraint::Percentage(30),
        Constraint::Percentage(30),
    ])
    .areas(foot);
    rates_panel(f, rates, &seconds, s);
    f.render_widget(errors_panel(&s.live), errors);
    f.render_widget(check_panel(&s.check), check);
}

fn header<'a>(feed: &'a Feed, s: &Snapshot, keys: &Keys) -> Paragraph<'a> {
    let state = match (keys.quits, keys.paused.is_some()) {
        (1, _) => Span::styled(
            " STOPPING (q again cancels what is in flight) ",
            Style::new().fg(Color::Yellow),
        ),
        (n, _) if n > 1 => Span::styled(" CANCELLING ", Style::new().fg(Color::Red)),
        (_, true) => Span::styled(" PAUSED (p resumes) ", Style::new().fg(Color::Yellow)),
        _ => Span::raw(""),
    };
    let line = Line::from(vec![
        Span::styled(
            format!(
                "{:>4.0} s / {} s",
                s.elapsed.as_secs_f64(),
                feed.total.as_secs()
            ),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " | requests {} | active streams {} | failed {} ",
            s.live.requests, s.active, s.live.errors
        )),
        state,
    ]);
    Paragraph::new(vec![
        line,
        Line::from("q: stop the run (its reports are written)   p: pause the chart"),
    ])
    .block(Block::bordered().title(format!(" loadgen: {} ", feed.title)))
}

/// The latencies a second: first token p50 and p95, complete p95, and the
/// SLO file's p95 lines.
fn latency_chart(f: &mut Frame, area: Rect, seconds: &[LiveSecond], lines: SloLines, paused: bool) {
    let series = |pick: fn(&LiveSecond) -> Option<f64>| -> Vec<(f64, f64)> {
        seconds
            .iter()
            .filter_map(|s| pick(s).map(|v| (s.t as f64, v)))
            .collect()
    };
    let ft50 = series(|s| s.first_token_p50_ms);
    let ft95 = series(|s| s.first_token_p95_ms);
    let c95 = series(|s| s.complete_p95_ms);
    let (x0, x1) = match (seconds.first(), seconds.last()) {
        (Some(a), Some(b)) => (a.t as f64, (b.t as f64).max(a.t as f64 + 1.0)),
        _ => (0.0, 1.0),
    };
    let line_at = |v: Option<f64>| v.map(|v| vec![(x0, v), (x1, v)]).unwrap_or_default();
    let (ft_line, c_line) = (
        line_at(lines.first_token_p95_ms),
        line_at(lines.complete_p95_ms),
    );
    let top = ft50
        .iter()
        .chain(&ft95)
        .chain(&c95)
        .chain(&ft_line)
        .chain(&c_line)
        .map(|p| p.1)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut sets = vec![
        dataset("first token p50", &ft50, Color::Green),
        dataset("first token p95", &ft95, Color::Cyan),
        dataset("complete p95", &c95, Color::Magenta),
    ];
    if !ft_line.is_empty() {
        sets.push(dataset("SLO: first token p95", &ft_line, Color::Red));
    }
    if !c_line.is_empty() {
        sets.push(dataset("SLO: complete p95", &c_line, Color::LightRed));
    }
    let title = if paused {
        " latency a second, ms (paused) "
    } else {
        " latency a second, ms (measured requests that ended in it) "
    };
    let chart = Chart::new(sets)
        .block(Block::bordered().title(title))
        // The legend names the lines; shown unless it would cover half.
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
        .x_axis(
            Axis::default()
                .title("s")
                .bounds([x0, x1])
                .labels([format!("{x0:.0}"), format!("{x1:.0}")]),
        )
        .y_axis(Axis::default().bounds([0.0, top]).labels([
            "0".to_owned(),
            format!("{:.0}", top / 2.0),
            format!("{top:.0}"),
        ]));
    f.render_widget(chart, area);
}

fn dataset<'a>(name: &'a str, data: &'a [(f64, f64)], color: Color) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(color))
        .data(data)
}

/// Offered (every request that ended in the second, dropped arrivals
/// included) and achieved (those that succeeded), with a sparkline of
/// the achieved.
fn rates_panel(f: &mut Frame, area: Rect, seconds: &[LiveSecond], s: &Snapshot) {
    let last = seconds.last().copied().unwrap_or_default();
    let [text, spark] = Layout::vertical([Constraint::Length(3), Constraint::Min(1)])
        .areas(Block::bordered().inner(area));
    f.render_widget(Block::bordered().title(" requests a second "), area);
    f.render_widget(
        Paragraph::new(vec![
            Line::from(format!(
                "offered  {:>6}/s   achieved {:>6}/s",
                last.offered, last.ok
            )),
            Line::from(format!("active streams {}", s.active)),
        ]),
        text,
    );
    let data: Vec<u64> = seconds.iter().map(|s| s.ok).collect();
    let width = usize::from(spark.width);
    let from = data.len().saturating_sub(width);
    f.render_widget(
        Sparkline::default()
            .data(&data[from..])
            .style(Style::new().fg(Color::Green)),
        spark,
    );
}

fn errors_panel(live: &Live) -> Paragraph<'static> {
    let mut lines: Vec<Line> = live
        .errors_by
        .iter()
        .map(|(cause, n)| Line::from(format!("{cause:<18} {n:>7}")))
        .collect();
    if lines.is_empty() {
        lines.push(Line::from("none"));
    }
    Paragraph::new(lines).block(Block::bordered().title(" failures by cause "))
}

fn check_panel(c: &crate::client_probe::LiveCheck) -> Paragraph<'static> {
    let (verdict, color) = if c.stalls == 0 {
        ("no stall so far", Color::Green)
    } else {
        ("stalled: the run may not be trusted", Color::Red)
    };
    Paragraph::new(vec![
        Line::from(Span::styled(verdict, Style::new().fg(color))),
        Line::from(format!("scheduler lag p99 {:.1} ms", c.lag_p99_ms)),
        Line::from(format!(
            "lag max {:.1} ms, stalls {}",
            c.lag_max_ms, c.stalls
        )),
        Line::from(format!("CPU {:.0} %", c.cpu_percent)),
    ])
    .block(Block::bordered().title(" self-check of the load generator "))
}
