//! The page in a real browser: Debian's headless Chromium loads it from a
//! local axum server, screenshots it at phone and desktop widths, and
//! reports what it rendered and whether anything is wider than a phone.
//!
//! Screenshots land in `target/status-screenshots/` for people to look at.
//! A missing Chromium fails the test: a silent skip would let the page's
//! only real rendering check disappear from CI unnoticed.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failed setup fails the test"
)]

mod common;

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::response::Html;
use axum::routing::get;
use bulwark_status::render_html;

/// A harness page that shows the real page in an iframe of an exact
/// width and, once it has loaded, measures whether the document or any
/// element in it reaches past that width. An iframe rather than the window
/// because headless Chromium will not make a window narrower than 500 px,
/// and a frame's media queries follow the frame's width. The answer is
/// written into the harness's DOM, where `--dump-dom` reads it.
fn harness(page: &str, width: u32) -> String {
    format!(
        r#"<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="/{page}" style="width:{width}px;height:2400px;border:0"></iframe>
<pre id="probe"></pre>
<script>
function measure() {{
  var f = document.getElementById('f'), d = f.contentDocument, w = f.contentWindow.innerWidth, bad = [];
  d.querySelectorAll('body *').forEach(function (e) {{
    var r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > w + 0.5 || r.left < -0.5)) {{
      bad.push(e.tagName.toLowerCase() + '.' + (e.getAttribute('class') || ''));
    }}
  }});
  document.getElementById('probe').textContent = 'PROBE scrollWidth=' +
    d.documentElement.scrollWidth + ' innerWidth=' + w +
    ' overflowing=' + bad.slice(0, 8).join(',') + ' END';
}}
var f = document.getElementById('f');
if (f.contentDocument && f.contentDocument.readyState === 'complete' && f.contentDocument.body && f.contentDocument.body.childElementCount) measure();
else f.addEventListener('load', measure);
</script></body></html>"#
    )
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "headless Chromium not found at {}: run `apt-get install chromium` \
         (or set CHROMIUM to its path); this test must not be skipped",
        path.display()
    );
    path
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("status-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Chromium with a throwaway profile and a deadline, so a hung
/// browser fails the test instead of hanging CI.
fn run_chromium(args: &[String]) -> String {
    let profile = std::env::temp_dir().join(format!(
        "bulwark-status-chromium-{}-{}",
        std::process::id(),
        fastish_id()
    ));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Drain the pipes while waiting: a DOM dump is larger than a pipe
    // buffer, and Chromium would block writing it.
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    #[expect(
        clippy::disallowed_types,
        reason = "a blocking wait on a child process, outside any runtime"
    )]
    let waiting = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if waiting.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        status.success(),
        "chromium failed ({status}): {args:?}\n{stderr}"
    );
    stdout
}

fn fastish_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn screenshot(url: &str, width: u32, height: u32, path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    run_chromium(&[
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
        "--virtual-time-budget=3000".to_string(),
        "--run-all-compositor-stages-before-draw".to_string(),
        url.to_string(),
    ]);
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 30_000,
        "{} is only {} bytes: blank page?",
        path.display(),
        png.len()
    );
    let png_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(png_width, width, "screenshot width");
}

fn dump_dom(url: &str, width: u32) -> String {
    run_chromium(&[
        "--dump-dom".to_string(),
        format!("--window-size={width},2400"),
        "--virtual-time-budget=3000".to_string(),
        url.to_string(),
    ])
}

fn probe(base: &str, page: &str, width: u32) -> (u32, u32, String) {
    let dom = dump_dom(&format!("{base}/frame/{page}/{width}"), 1280);
    let marker = "<pre id=\"probe\">";
    let start = dom
        .find(marker)
        .unwrap_or_else(|| panic!("probe did not run:\n{dom}"))
        + marker.len();
    let end = dom[start..]
        .find(" END")
        .unwrap_or_else(|| panic!("probe did not finish:\n{}", &dom[start..]))
        + start;
    let line = &dom[start..end];
    let field = |name: &str| -> String {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..].split(' ').next().unwrap_or("").to_string()
    };
    (
        field("scrollWidth").parse().unwrap(),
        field("innerWidth").parse().unwrap(),
        field("overflowing"),
    )
}

async fn serve() -> SocketAddr {
    let during = render_html(&common::during_incident());
    let quiet = render_html(&common::operational());
    let hostile = render_html(&common::hostile());
    let app =
        Router::new()
            .route("/status", get(move || async move { Html(during) }))
            .route("/quiet", get(move || async move { Html(quiet) }))
            .route("/hostile", get(move || async move { Html(hostile) }))
            .route(
                "/frame/{page}/{width}",
                get(|Path((page, width)): Path<(String, u32)>| async move {
                    Html(harness(&page, width))
                }),
            );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_renders_in_headless_chromium() {
    chromium();
    let addr = serve().await;
    let base = format!("http://{addr}");
    let dir = screenshot_dir();

    tokio::task::spawn_blocking(move || {
        screenshot(
            &format!("{base}/status"),
            390,
            2400,
            &dir.join("status-incident-390.png"),
        );
        screenshot(
            &format!("{base}/status"),
            1280,
            2400,
            &dir.join("status-incident-1280.png"),
        );
        screenshot(
            &format!("{base}/quiet"),
            1280,
            1600,
            &dir.join("status-operational-1280.png"),
        );

        // What the browser rendered: the component states and the
        // incident's timeline are in the DOM it built.
        let dom = dump_dom(&format!("{base}/status"), 1280);
        for text in [
            "Major outage",
            "Partial outage",
            "error rate 62 % over 60 s; circuit breaker open",
            "Active incidents",
            "Elevated errors from openai/gpt-4o",
            "Breaker opened",
            "Fallback engaged",
        ] {
            assert!(dom.contains(text), "rendered page lacks {text:?}");
        }
        for entry in common::open_timeline() {
            assert!(
                dom.contains(&entry.message),
                "rendered page lacks {:?}",
                entry.message
            );
        }

        // Nothing wider than a phone: not the document, not any element.
        for page in ["status", "quiet", "hostile"] {
            let (scroll, inner, overflowing) = probe(&base, page, 390);
            assert_eq!(inner, 390, "the viewport was not 390 px wide");
            assert!(
                scroll <= inner,
                "/{page} overflows horizontally at 390 px: scrollWidth {scroll}"
            );
            assert!(
                overflowing.is_empty(),
                "/{page}: elements past the right edge at 390 px: {overflowing}"
            );
        }
        for width in [320, 375, 1280] {
            let (scroll, inner, overflowing) = probe(&base, "status", width);
            assert_eq!(inner, width);
            assert!(scroll <= inner, "overflow at {width} px: {scroll}");
            assert!(overflowing.is_empty(), "at {width} px: {overflowing}");
        }
    })
    .await
    .unwrap();
}
