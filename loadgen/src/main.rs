use clap::Parser;
use std::process::ExitCode;

/// jemalloc, as the reference server: glibc's allocator kept ~1 GB
/// resident after a few dozen requests each buffered 8 MiB (a target
/// sending an endless SSE line up to `request.max_event_bytes`); jemalloc
/// gives it back (see the fault-matrix test).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// goose logs every failed request at `warn` to the terminal; the
/// per-request CSV and the report hold those, so only goose's errors are
/// shown.
struct GooseErrors;

impl log::Log for GooseErrors {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Error
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("goose: {}", r.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: GooseErrors = GooseErrors;

fn main() -> ExitCode {
    let cli = loadgen::Cli::parse();
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    loadgen::client::tls_provider();
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Error);
    }
    match loadgen::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            loadgen::ExitStatus::Error.into()
        }
    }
}
