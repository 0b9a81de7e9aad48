//! The live view under a real terminal: tmux (Debian's) runs `loadgen
//! run` in a 120 x 40 pane; the test reads the screen as a person would
//! (`tmux capture-pane`), pauses the chart with `p`, stops the run with
//! `q` (its reports written, marked interrupted), and checks that
//! `--no-tui` draws the one-line progress instead.

use crate::support::{BIN, temp_dir};
use std::path::Path;
use std::time::{Duration, Instant};

/// A tmux server of the test's own (its socket in the test's folder, not
/// in the shared /tmp/tmux-UID), killed with it.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Tmux {
        let t = Tmux {
            socket: dir.join("tmux.sock").display().to_string(),
        };
        let o = t.cmd(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            dir.to_str().unwrap(),
            command,
        ]);
        assert!(o.status.success(), "tmux: {o:?}");
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux")
            .args(["-S", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs (ci/install.sh installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p"]).stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        assert!(self.cmd(&["send-keys", keys]).status.success());
    }

    /// Waits (at most `within`) until the screen shows `text`.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        self.wait_until(|s| s.contains(text), within)
    }

    /// Waits (at most `within`) until the screen is as `done` wants it: a
    /// frame reaches the terminal in more than one write, so a capture
    /// may hold part of one.
    fn wait_until(&self, done: impl Fn(&str) -> bool, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            let s = self.screen();
            if done(&s) || Instant::now() > until {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// A 20 s run against the embedded reference server, with the guide's
/// first-token and complete p95 lines from its SLO file.
fn scenario(dir: &Path) {
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"kpi\"\n\
         [[objective]]\nname = \"first token p95\"\nmetric = \"scheduled_latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 500\n\
         [[objective]]\nname = \"complete p95\"\nmetric = \"scheduled_latency_ms.complete.p95\"\ndirection = \"max\"\ntarget = 3000\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("live.toml"),
        "name = \"live\"\nduration = \"20s\"\nwarmup = \"0s\"\nslo = \"slo.toml\"\n\
         [server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"50\", \"--token-interval-ms\", \"5\"]\n\
         [load]\nmodel = \"open\"\nrate = 20.0\n[request]\naudio = false\n",
    )
    .unwrap();
}

#[test]
fn the_live_view_draws_its_panels_pauses_and_quits_into_an_interrupted_report() {
    let dir = temp_dir("live-view");
    scenario(&dir);
    let tmux = Tmux::start(
        &dir,
        &format!("{BIN} run live.toml --out out; echo EXIT=$? > exit.txt; sleep 60"),
    );
    // Every panel, whole (waited for: a frame may be captured half
    // written), with requests counted.
    let panels = [
        "loadgen: live -> http://127.0.0.1:",
        "latency a second, ms",
        "first token p95",
        "SLO: first token p95",
        "SLO: complete p95",
        "requests a second",
        "/s   achieved",
        "failures by cause",
        "self-check of the load generator",
        "q: stop the run",
    ];
    let screen = tmux.wait_until(
        |s| panels.iter().all(|p| s.contains(p)) && !s.contains("requests 0 |"),
        Duration::from_secs(30),
    );
    for panel in panels {
        assert!(
            screen.contains(panel),
            "no {panel:?} on the screen:\n{screen}"
        );
    }
    // The figures move: a later screen has more requests.
    let count = |s: &str| -> u64 {
        s.split("requests ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let first = count(&screen);
    let later = tmux.wait_until(|s| count(s) > first, Duration::from_secs(10));
    assert!(count(&later) > first, "{first} then:\n{later}");
    // `p` pauses the chart; the run goes on.
    tmux.keys("p");
    let paused = tmux.wait_for("PAUSED", Duration::from_secs(5));
    assert!(paused.contains("(paused)"), "{paused}");
    tmux.keys("p");
    let resumed = tmux.wait_for("measured requests that ended", Duration::from_secs(5));
    assert!(!resumed.contains("PAUSED"), "{resumed}");
    // `q` stops the run as Ctrl-C does: every file written, interrupted.
    tmux.keys("q");
    let until = Instant::now() + Duration::from_secs(30);
    while !dir.join("exit.txt").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit = std::fs::read_to_string(dir.join("exit.txt")).expect("the run ended");
    assert_eq!(exit.trim(), "EXIT=1", "an interrupted run does not pass");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/report.json")).unwrap()).unwrap();
    assert!(
        report["interrupted"]
            .as_str()
            .is_some_and(|r| r.contains("live view")),
        "{}",
        report["interrupted"]
    );
    assert!(report["requests"]["total"].as_u64().unwrap() > 0);
    // The terminal is given back: the summary is on the normal screen.
    let after = tmux.wait_for("FAIL", Duration::from_secs(5));
    assert!(
        after.contains("FAIL") && !after.contains("self-check of the load generator"),
        "{after}"
    );
}

#[test]
fn no_tui_draws_the_progress_line() {
    let dir = temp_dir("live-view-off");
    scenario(&dir);
    let tmux = Tmux::start(
        &dir,
        &format!(
            "{BIN} run live.toml --out out --no-tui --duration 3s; echo EXIT=$? > exit.txt; sleep 60"
        ),
    );
    let screen = tmux.wait_for("| requests ", Duration::from_secs(20));
    assert!(screen.contains("p95 first token"), "{screen}");
    assert!(!screen.contains("failures by cause"), "{screen}");
}
