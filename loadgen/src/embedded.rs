//! The embedded reference server: the default target when a scenario
//! names none.

use anyhow::Context;

/// The embedded reference server, on its own runtime thread so the
/// client's scheduler is not shared with it.
pub struct Embedded {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    pub fn start(args: &[String]) -> anyhow::Result<Embedded> {
        let mut all: Vec<String> = ["--listen", "127.0.0.1:0", "--shutdown-grace", "1s"]
            .map(String::from)
            .to_vec();
        all.extend(args.iter().cloned());
        let config = server::Config::from_args(&all).context("the scenario's [server] args")?;
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
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
                        Ok(running) => {
                            let _ = addr_tx.send(Ok(running.url()));
                            let _ = stopped.await;
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
            thread: Some(thread),
        })
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
