//! Test helpers used by more than one crate's tests. Only tests depend on
//! this crate; nothing here is part of the product.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (where `Cargo.toml`, `scenarios/` and `reports/` are).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits one level below the root")
        .to_path_buf()
}

/// A TCP port on loopback that was free a moment ago (for programs that
/// take a port, not a listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback has a free port")
        .port()
}

/// Where `value` breaks the committed schema at `schema` (relative to the
/// root, e.g. `reports/schema/report.schema.json`); empty when it keeps it.
pub fn schema_errors(schema: &str, value: &Value) -> Vec<String> {
    let path = root().join(schema);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_slice(&text).expect("a committed schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the committed schema compiles");
    validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Fails the test, saying where, when `value` breaks the schema.
pub fn assert_matches_schema(schema: &str, value: &Value, what: &str) {
    let errors = schema_errors(schema, value);
    assert!(
        errors.is_empty(),
        "{what} does not match {schema}: {errors:#?}"
    );
}

/// Headless Chromium (installed by `ci/install.sh`) with a fresh profile in
/// `profile`, a window of `width`x`height`, and `args` after the common
/// flags. Its console goes to stderr.
pub fn chromium(profile: &Path, (width, height): (u32, u32), args: &[String]) -> Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium (installed by ci/install.sh) runs")
}

/// The console lines Chromium logged (`CONSOLE` in its stderr).
pub fn console_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_owned)
        .collect()
}

/// A PNG's pixels as RGB(A) samples, each pixel `samples` values long.
pub struct Pixels {
    pub bytes: Vec<u8>,
    pub samples: usize,
}

impl Pixels {
    pub fn read(png_file: &Path) -> Pixels {
        let file =
            std::fs::File::open(png_file).unwrap_or_else(|e| panic!("{}: {e}", png_file.display()));
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("a sized PNG")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        buf.truncate(info.buffer_size());
        Pixels {
            bytes: buf,
            samples: info.color_type.samples(),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many pixels `keep` picks.
    pub fn count(&self, keep: impl Fn(&[u8]) -> bool) -> usize {
        self.bytes.chunks(self.samples).filter(|p| keep(p)).count()
    }
}
