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
    // The kernel hands out a port that is free now; another test process
    // may be handed the same one before the server this port is for has
    // bound it (a third-party server on Python takes a second). Each port
    // is claimed once in a file only one process can create, so no two
    // tests of a suite get the same port (the suite once saw a test's requests
    // answered by another test's reference server). A claim older than
    // ten minutes is from an earlier suite and lapses.
    let claims = std::env::temp_dir().join("loadgen-test-ports");
    std::fs::create_dir_all(&claims).expect("the temp folder is writable");
    for _ in 0..1000 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("loopback has a free port")
            .port();
        let claim = claims.join(port.to_string());
        let lapsed = std::fs::metadata(&claim)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 600));
        if lapsed {
            let _ = std::fs::remove_file(&claim);
        }
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim)
            .is_ok()
        {
            return port;
        }
    }
    panic!("no loopback port unclaimed in {}", claims.display());
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
    pub width: usize,
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
            width: info.width as usize,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The pixel at (`x`, `y`) from the top left.
    pub fn at(&self, x: usize, y: usize) -> &[u8] {
        let i = (y * self.width + x) * self.samples;
        &self.bytes[i..i + self.samples]
    }

    /// Whether a pixel is `rgb` (a CSS colour `#rrggbb`), each channel
    /// within `tolerance`.
    pub fn is(p: &[u8], rgb: &str, tolerance: u8) -> bool {
        let c = u32::from_str_radix(rgb.trim_start_matches('#'), 16).expect("#rrggbb");
        let want = [(c >> 16) as u8, (c >> 8) as u8, c as u8];
        p.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= tolerance)
    }

    /// How many pixels `keep` picks.
    pub fn count(&self, keep: impl Fn(&[u8]) -> bool) -> usize {
        self.bytes.chunks(self.samples).filter(|p| keep(p)).count()
    }
}

/// A fresh folder under the system temp dir for one test, removed when
/// the test passes. A failing test (the thread is panicking) keeps it and
/// says where, so its outputs are there to read.
pub struct Scratch(PathBuf);

impl Scratch {
    /// `{prefix}-{pid}` under the temp dir, emptied first.
    pub fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the failed test's files in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A program the test started, killed when dropped (a failed assertion
/// leaves nothing running).
pub struct Daemon(pub std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`:
/// up to 30 s, since a daemon beside other tests on a busy machine starts
/// slowly (Python's mockllm once took over 5 s to import and listen);
/// no test judges how long a daemon takes to start.
pub fn wait_for_port(port: u16, what: &str) {
    for _ in 0..1200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 30 s");
}

/// Runs a command to its end; panics with its output when it fails.
fn must(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start ({e}); ci/install.sh installs it"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a server certificate it signed for 127.0.0.1 and
/// localhost, made by the `openssl` command in `dir`: returns the paths
/// of the CA certificate, the server certificate and its key (PEM).
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name);
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    must(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=loadgen test CA",
            ])
            .args(ec)
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem")),
        "openssl (the test CA)",
    );
    must(
        Command::new("openssl")
            .args(["req", "-nodes", "-subj", "/CN=127.0.0.1"])
            .args(ec)
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")),
        "openssl (the server key)",
    );
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    )
    .expect("the extensions file is written");
    must(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("server.ext"))
            .arg("-out")
            .arg(p("server.pem")),
        "openssl (the server certificate)",
    );
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

/// An nginx `location /` that proxies to `upstream` (host:port). Buffering:
/// nginx's defaults, as a first deployment has them (HTTP/1.0 to the
/// upstream, `proxy_buffering on`: nginx then holds an unchunked stream
/// until a buffer fills or it ends, unless the upstream says
/// `X-Accel-Buffering: no`). Not buffering: keep-alive HTTP/1.1 and
/// `proxy_buffering off`, the configuration a streaming backend needs.
pub fn proxy_location(upstream: impl std::fmt::Display, buffering: bool) -> String {
    if buffering {
        format!("location / {{ proxy_pass http://{upstream}; proxy_buffering on; }}")
    } else {
        format!(
            "location / {{ proxy_pass http://{upstream}; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; }}"
        )
    }
}

/// Debian's nginx on 127.0.0.1:`port` with `http` (directives of the
/// `http { }` block, e.g. a `log_format`) and `server` (the body of one
/// `server { }` block, `listen` included), its logs, pid and temp files
/// in `dir`. Returns once it listens.
pub fn nginx(dir: &Path, port: u16, http: &str, server: &str) -> Daemon {
    let d = dir.display();
    let conf = format!(
        "error_log {d}/nginx-error.log warn;\npid {d}/nginx.pid;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  {http}\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/nginx-tmp;\n  proxy_temp_path {d}/nginx-tmp;\n  \
         fastcgi_temp_path {d}/nginx-tmp;\n  uwsgi_temp_path {d}/nginx-tmp;\n  scgi_temp_path {d}/nginx-tmp;\n  server {{\n{server}\n  }}\n}}\n"
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).expect("nginx.conf is written");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&file)
        .args(["-g", "daemon off; master_process on;"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("nginx (Debian package, installed by ci/install.sh) starts");
    let daemon = Daemon(child);
    wait_for_port(port, "nginx");
    daemon
}

/// Debian's redis-server on 127.0.0.1:`port`, nothing saved to disk
/// (`dir` is its working folder). Returns once it listens; dropping it
/// stops Redis.
pub fn redis_server(port: u16, dir: &Path) -> Daemon {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (Debian package, installed by ci/install.sh) starts");
    let daemon = Daemon(child);
    wait_for_port(port, "redis-server");
    daemon
}

/// A Hugging Face `tokenizer.json` trained on `text` and saved by
/// Hugging Face's own `tokenizers` (PyPI, installed by ci/install.sh;
/// `ci/tokenizer.py`), in a model's folder: `dir/model`, returned.
pub fn trained_tokenizer(dir: &Path, text: &str) -> PathBuf {
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, text).unwrap();
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let o = Command::new("python3")
        .arg(root().join("ci/tokenizer.py"))
        .args(["train", corpus.to_str().unwrap(), model.to_str().unwrap()])
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "ci/tokenizer.py train (tokenizers from PyPI, ci/install.sh): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    model
}
