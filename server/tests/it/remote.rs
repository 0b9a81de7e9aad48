//! Admin actions from a non-loopback address: the test makes a network
//! namespace joined to this one by a veth pair (iproute2, as root; both
//! installed and given by the test command) and runs the `refserver`
//! binary inside it. A client in the namespace reaches it on 127.0.0.1
//! (loopback); this process reaches it on the veth address (not loopback).
//! Nothing listens outside the namespace.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_refserver");

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2's ip runs (ci/install.sh installs it)");
    assert!(
        o.status.success(),
        "ip {}: {} (the test needs root for network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A namespace with a veth pair: this side `10.213.N.1`, the namespace's
/// side `10.213.N.2`. Removed on drop.
struct Namespace {
    name: String,
    host_if: String,
    inside: String,
}

impl Namespace {
    fn new() -> Namespace {
        let n = std::process::id() % 250;
        let name = format!("lgt{}", std::process::id());
        let (host_if, ns_if) = (format!("lgh{n}"), format!("lgn{n}"));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&["netns", "add", &name]);
        let ns = Namespace {
            name: name.clone(),
            host_if: host_if.clone(),
            inside: format!("10.213.{n}.2"),
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("10.213.{n}.1/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let exec = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name.as_str(), "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        exec(&["addr", "add", &format!("10.213.{n}.2/30"), "dev", &ns_if]);
        exec(&["link", "set", &ns_if, "up"]);
        exec(&["link", "set", "lo", "up"]);
        ns
    }

    /// `refserver ARGS` inside, on port 5000 of every address it has.
    fn refserver(&self, args: &[&str]) -> testkit::Daemon {
        testkit::Daemon(
            Command::new("ip")
                .args(["netns", "exec", &self.name, BIN, "--listen", "0.0.0.0:5000"])
                .args(["--log-level", "error"])
                .args(args)
                .stdout(Stdio::null())
                .spawn()
                .expect("ip netns exec runs refserver"),
        )
    }

    /// POST /api/admin/faults from a loopback client inside (curl): the
    /// status.
    fn post_from_loopback(&self, token: Option<&str>) -> u16 {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "curl", "-s", "-o", "/dev/null"])
            .args(["-w", "%{http_code}", "-X", "POST"])
            .args(["-H", "content-type: application/json", "-d", "{}"]);
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let o = cmd
            .arg("http://127.0.0.1:5000/api/admin/faults")
            .output()
            .expect("curl runs (ci/install.sh installs it)");
        String::from_utf8_lossy(&o.stdout)
            .parse()
            .unwrap_or_else(|_| panic!("curl: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// POST /api/admin/faults from this process, a non-loopback peer.
async fn post_from_outside(base: &str, token: Option<&str>) -> (u16, String) {
    let mut req = crate::support::http()
        .post(format!("{base}/api/admin/faults"))
        .json(&serde_json::json!({}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn wait_up(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::support::get(format!("{base}/api/metrics/health/streaming"))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "refserver did not answer on {base}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admin_actions_from_loopback_and_from_another_address() {
    let ns = Namespace::new();
    let base = format!("http://{}:5000", ns.inside);

    // No admin token: loopback only.
    let server = ns.refserver(&[]);
    wait_up(&base).await;
    assert_eq!(ns.post_from_loopback(None), 200);
    let (status, text) = post_from_outside(&base, None).await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("loopback clients only") && text.contains("10.213."),
        "{text}"
    );
    // Monitoring is open to everyone.
    let r = crate::support::get(format!("{base}/api/metrics/streaming/summary"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    drop(server);

    // With a token: without it, with a wrong one and with the right one,
    // from either side.
    let _server = ns.refserver(&["--admin-token", "s3cret"]);
    wait_up(&base).await;
    for (token, want) in [(None, 401), (Some("wrong"), 401), (Some("s3cret"), 200)] {
        assert_eq!(ns.post_from_loopback(token), want, "loopback, {token:?}");
        let (status, text) = post_from_outside(&base, token).await;
        assert_eq!(status, want, "outside, {token:?}: {text}");
        if want == 401 {
            assert!(text.contains("Authorization: Bearer"), "{text}");
        }
    }
}
