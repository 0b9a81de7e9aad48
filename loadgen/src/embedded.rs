//! The embedded reference server: the default target when a scenario
//! names none; with `[server] redis = true`, its caches in a Redis the
//! run starts, stops and starts again (the timeline's `redis` events).

use anyhow::Context;
use slo::scenario::{EmbeddedServer, RedisAction};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The embedded reference server, on its own runtime thread so the
/// client's scheduler is not shared with it.
pub struct Embedded {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Asks the server's thread for a graceful reload; answered with the
    /// count of reloads so far.
    reload: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<usize>>,
    thread: Option<std::thread::JoinHandle<()>>,
    redis: Option<Mutex<ManagedRedis>>,
}

/// A `redis-server` of the run: its port, and its process while it runs.
struct ManagedRedis {
    port: u16,
    child: Option<Child>,
}

impl ManagedRedis {
    fn start(port: u16) -> anyhow::Result<Child> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server ([server] redis = true needs it on the PATH, e.g. apt-get install redis-server)")?;
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!("redis-server on 127.0.0.1:{port} ended at once ({status})");
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                anyhow::bail!("redis-server did not listen on 127.0.0.1:{port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child)
    }
}

impl Drop for ManagedRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The run's target: the plan's URL, or the reference server started
/// here when the plan names none (held as long as the target is needed).
pub fn target(
    url: Option<&str>,
    server: &slo::scenario::EmbeddedServer,
) -> anyhow::Result<(String, Option<Embedded>)> {
    match url {
        Some(u) => Ok((u.to_owned(), None)),
        None => {
            let e = Embedded::start(server)?;
            Ok((e.url.clone(), Some(e)))
        }
    }
}

impl Embedded {
    pub fn start(server: &EmbeddedServer) -> anyhow::Result<Embedded> {
        let mut all: Vec<String> = ["--listen", "127.0.0.1:0", "--shutdown-grace", "1s"]
            .map(String::from)
            .to_vec();
        all.extend(server.args.iter().cloned());
        let redis = if server.redis {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("no free loopback port for the run's Redis")?
                .port();
            let child = ManagedRedis::start(port)?;
            all.extend(["--cache".to_owned(), format!("redis://127.0.0.1:{port}/0")]);
            Some(Mutex::new(ManagedRedis {
                port,
                child: Some(child),
            }))
        } else {
            None
        };
        let config = server::Config::from_args(&all).context("the scenario's [server] args")?;
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (reload, mut reloads) =
            tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<usize>>();
        let thread = std::thread::Builder::new()
            .name("refserver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("refserver-worker")
                    .enable_all()
                    .build()
                    .expect("a runtime for the embedded server");
                rt.block_on(async move {
                    match server::spawn(&config).await {
                        Ok(mut running) => {
                            let _ = addr_tx.send(Ok(running.url()));
                            loop {
                                tokio::select! {
                                    _ = &mut stopped => break,
                                    Some(reply) = reloads.recv() => {
                                        let _ = reply.send(running.reload());
                                    }
                                }
                            }
                            let _ = running.stop().await;
                        }
                        Err(e) => {
                            let _ = addr_tx.send(Err(e));
                        }
                    }
                });
            })
            .context("cannot start the embedded server's thread")?;
        let url = addr_rx
            .recv()
            .context("the embedded server's thread ended before it listened")?
            .context("the embedded server cannot listen on 127.0.0.1")?;
        Ok(Embedded {
            url,
            stop: Some(stop),
            reload,
            thread: Some(thread),
            redis,
        })
    }

    /// A graceful reload of the server ([`server::Running::reload`]).
    pub async fn reload(&self) -> Result<String, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.reload
            .send(reply)
            .map_err(|_| "the embedded server has stopped".to_owned())?;
        let n = answer
            .await
            .map_err(|_| "the embedded server stopped during the reload".to_owned())?;
        Ok(format!(
            "reload {n}: a new generation of the server accepts on {}; the old one drains",
            self.url
        ))
    }

    /// Stops or starts the run's Redis; what happened, or why not.
    pub fn redis(&self, action: RedisAction) -> Result<String, String> {
        let Some(r) = &self.redis else {
            return Err(
                "the embedded server has no Redis of the run ([server] redis = true)".into(),
            );
        };
        let mut r = r.lock().expect("redis lock");
        let port = r.port;
        match (action, r.child.take()) {
            (RedisAction::Stop, Some(mut c)) => {
                let _ = c.kill();
                let _ = c.wait();
                Ok(format!("redis-server on 127.0.0.1:{port} stopped"))
            }
            (RedisAction::Start, None) => {
                r.child = Some(ManagedRedis::start(port).map_err(|e| format!("{e:#}"))?);
                Ok(format!("redis-server on 127.0.0.1:{port} started (empty)"))
            }
            (RedisAction::Stop, None) => {
                Err(format!("redis-server on 127.0.0.1:{port} is not running"))
            }
            (RedisAction::Start, Some(c)) => {
                r.child = Some(c);
                Err(format!(
                    "redis-server on 127.0.0.1:{port} is already running"
                ))
            }
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
