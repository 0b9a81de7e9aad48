//! The live dashboard at /dashboard, in headless Chromium: it loads, shows
//! the server's current figures after traffic, logs no console error, and
//! draws (the screenshot is not blank).

use crate::support::{EXACT, body, chat, start};

fn chromium(profile: &std::path::Path, args: &[String]) -> std::process::Output {
    let mut all = vec!["--virtual-time-budget=4000".to_owned()];
    all.extend_from_slice(args);
    testkit::chromium(profile, (1000, 1200), &all)
}

#[tokio::test]
async fn the_dashboard_shows_the_current_figures() {
    let server = start(EXACT).await;
    let url = server.url();
    for i in 0..3 {
        chat(&url, &body(&format!("dashboard {i}"), None, true)).await;
    }
    let dir = testkit::Scratch::new("dashboard");
    let page = format!("{url}/dashboard");
    let profile = |name: &str| dir.join(name);
    let dom = tokio::task::spawn_blocking({
        let (page, p) = (page.clone(), profile("a"));
        move || chromium(&p, &["--dump-dom".into(), page])
    })
    .await
    .unwrap();
    assert!(dom.status.success());
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains(r#"id="total-requests">3<"#),
        "the page shows 3 requests: {html}"
    );
    assert!(html.contains(r#"id="success-rate">100.0%<"#));
    assert!(html.contains(r#"id="status">healthy<"#));
    assert!(
        html.contains(r#"class="metric healthy" id="tile-success""#),
        "status colours by the guide's thresholds"
    );
    assert!(html.contains("stream_complete"), "recent events are listed");
    let console = testkit::console_lines(&dom);
    assert!(console.is_empty(), "console messages: {console:?}");

    let shot = dir.join("dashboard.png");
    let out = tokio::task::spawn_blocking({
        let (page, p, s) = (
            page,
            profile("b"),
            format!("--screenshot={}", shot.display()),
        );
        move || chromium(&p, &[s, page])
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let green = testkit::Pixels::read(&shot).count(|p| p[1] > 150 && p[0] < 120 && p[2] < 120);
    assert!(
        green > 200,
        "the healthy tiles are drawn green: {green} green pixels"
    );
    server.stop().await.unwrap();
}
