use clap::Parser;
use std::process::ExitCode;

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
