//! The `bulwark serve` process's life under load, as an operator's tools
//! end it: SIGTERM from `docker stop`, systemd or Kubernetes must lose
//! nothing in flight, and `kill -9` (an OOM kill, a lost host) must leave a
//! store that the next start reads whole.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn bulwark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
}

/// A scratch directory of this test alone, removed when it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Scratch, std::io::Error> {
        let dir =
            std::env::temp_dir().join(format!("bulwark-lifecycle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    fn write(&self, name: &str, text: &str) -> Result<PathBuf, std::io::Error> {
        let path = self.0.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(
    command: &mut Command,
    prefix: &str,
) -> Result<(Running, String), Box<dyn std::error::Error>> {
    let mut child = Running(
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix(prefix)
        .ok_or(format!("unexpected first line: {line}"))?
        .to_string();
    // Keep reading so that the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while matches!(reader.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
    });
    Ok((child, address))
}

fn start_sim(
    scratch: &Scratch,
    scenario: &str,
) -> Result<(Running, String), Box<dyn std::error::Error>> {
    let path = scratch.write("sim.yaml", scenario)?;
    spawn(
        bulwark()
            .args(["sim", "--listen", "127.0.0.1:0", "--scenario"])
            .arg(path),
        "bulwark-sim listening on ",
    )
}

fn start_gateway(config: &Path) -> Result<(Running, String), Box<dyn std::error::Error>> {
    spawn(
        bulwark().args(["serve", "--config"]).arg(config),
        "bulwark listening on ",
    )
}

/// One request of a mixed load: both front doors, streamed and not.
fn request(client: &reqwest::Client, url: &str, n: usize) -> reqwest::RequestBuilder {
    let stream = n.is_multiple_of(2);
    if n % 4 < 2 {
        client
            .post(format!("{url}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "model": "main", "stream": stream,
                    "messages": [{"role": "user", "content": format!("request {n}")}]
                })
                .to_string(),
            )
    } else {
        client
            .post(format!("{url}/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "model": "main", "stream": stream, "max_tokens": 64,
                    "messages": [{"role": "user", "content": format!("request {n}")}]
                })
                .to_string(),
            )
    }
}

/// Whether a 200 body is a whole answer: a stream reached its terminator.
fn is_whole(n: usize, body: &str) -> bool {
    match (n % 4 < 2, n.is_multiple_of(2)) {
        (true, true) => body.trim_end().ends_with("data: [DONE]"),
        (false, true) => body.contains("event: message_stop"),
        (true, false) => body.contains("\"finish_reason\":\"stop\""),
        (false, false) => body.contains("\"stop_reason\":\"end_turn\""),
    }
}

async fn sim_requests_seen(client: &reqwest::Client, sim: &str) -> usize {
    match client.get(format!("{sim}/_sim/requests")).send().await {
        Ok(response) => response
            .text()
            .await
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0),
        Err(_) => 0,
    }
}

fn wait_for_exit(
    child: &mut Running,
    within: Duration,
) -> Result<std::process::ExitStatus, Box<dyn std::error::Error>> {
    let steps = within.as_millis() / 50;
    for _ in 0..steps {
        if let Some(status) = child.0.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("still running {within:?} after the signal").into())
}

fn signal(child: &Running, name: &str) -> TestResult {
    let pid = child.0.id().to_string();
    if !Command::new("kill").args([name, &pid]).status()?.success() {
        return Err(format!("kill {name} {pid} failed").into());
    }
    Ok(())
}

/// SIGTERM while 24 requests (half of them streams that take about a
/// second) are in flight: every one completes whole, the request log holds
/// every one, and the process exits 0.
#[test]
fn sigterm_under_load_finishes_every_request_and_logs_it() -> TestResult {
    let scratch = Scratch::new("sigterm")?;
    // Slow enough that every request is still being answered when the
    // signal comes: headers after 300 ms, then a token every 40 ms.
    let (_sim, sim) = start_sim(
        &scratch,
        "latency: { headers_ms: 300, first_token_ms: 100, token_interval_ms: 40 }\n",
    )?;
    let store = format!("sqlite://{}", scratch.0.join("log.db").display());
    let config = scratch.write(
        "bulwark.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstore: \"{store}\"\nshutdown_grace: 30s\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{sim}/v1\" }}\nroutes:\n  main: {{ targets: [sim/llama3] }}\n"
        ),
    )?;
    let (mut gateway, url) = start_gateway(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    const IN_FLIGHT: usize = 24;
    let results = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for n in 0..IN_FLIGHT {
            let request = request(&client, &url, n);
            tasks.push(tokio::spawn(async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let body = response.text().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((n, status, body))
            }));
        }
        // Every request has reached the provider: all are in flight now.
        for _ in 0..400 {
            if sim_requests_seen(&client, &sim).await >= IN_FLIGHT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let reached = sim_requests_seen(&client, &sim).await;
        signal(&gateway, "-TERM").map_err(|e| e.to_string())?;
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.map_err(|e| e.to_string())?);
        }
        Ok::<_, String>((reached, results))
    });
    let (reached, results) = results?;
    assert_eq!(
        reached, IN_FLIGHT,
        "requests in flight when SIGTERM was sent"
    );
    for result in results {
        let (n, status, body) = result?;
        assert_eq!(status, 200, "request {n}: {body}");
        assert!(is_whole(n, &body), "request {n} was cut: {body}");
    }
    let exit = wait_for_exit(&mut gateway, Duration::from_secs(40))?;
    assert!(exit.success(), "exit status after SIGTERM: {exit}");

    let logged = runtime.block_on(async {
        let store = bulwark_store::Store::connect(&store).await?;
        let logged = store.requests_between(0, i64::MAX, None).await;
        store.close().await;
        logged
    })?;
    assert_eq!(logged.len(), IN_FLIGHT, "request-log rows after SIGTERM");
    Ok(())
}

fn incident_ids(summary: &Value) -> Vec<String> {
    summary["incidents"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `kill -9` in the middle of load, with an incident open: the restarted
/// gateway opens the same store, finds it intact (SQLite's own integrity
/// check), still lists every incident it had reported before the kill, and
/// serves again.
#[test]
fn kill_9_under_load_then_restart_keeps_the_store_and_every_reported_incident() -> TestResult {
    let scratch = Scratch::new("kill9")?;
    // The primary always fails with 500; the fallback answers. Clients are
    // served; the primary's component goes down and opens an incident.
    let (_sim, sim) = start_sim(
        &scratch,
        "latency: { token_interval_ms: 5 }\nfaults:\n  - { match: { model: broken }, fault: { status: 500 } }\n",
    )?;
    let db = scratch.0.join("log.db");
    let store = format!("sqlite://{}", db.display());
    let config = scratch.write(
        "bulwark.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstore: \"{store}\"\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{sim}/v1\" }}\nroutes:\n  main: {{ targets: [sim/broken, sim/llama3], max_retries: 0 }}\nhealth: {{ window: 10s, evaluate_every: 100ms, min_volume: 3, raise_after: 1, incident_after: 200ms }}\n"
        ),
    )?;
    let (mut gateway, url) = start_gateway(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        runtime.spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<_> = (0..8)
                    .map(|i| request(&client, &url, n + i).send())
                    .collect();
                n += 8;
                futures_util::future::join_all(batch).await;
            }
        })
    };
    let reported = runtime.block_on(async {
        for _ in 0..600 {
            if let Ok(response) = client
                .get(format!("{url}/api/v2/incidents.json"))
                .send()
                .await
                && let Ok(text) = response.text().await
                && let Ok(summary) = serde_json::from_str::<Value>(&text)
                && !incident_ids(&summary).is_empty()
            {
                return Ok(incident_ids(&summary));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("no incident was reported within 30 s")
    })?;
    // More load after the report, then the kill in the middle of it.
    std::thread::sleep(Duration::from_millis(500));
    signal(&gateway, "-KILL")?;
    let exit = wait_for_exit(&mut gateway, Duration::from_secs(10))?;
    assert!(!exit.success(), "kill -9 ends the process: {exit}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    runtime.block_on(load)?;

    let integrity = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('pragma integrity_check').fetchone()[0])",
        ])
        .arg(&db)
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&integrity.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&integrity.stderr)
    );

    let (_restarted, url) = start_gateway(&config)?;
    let (after, status) = runtime.block_on(async {
        let text = client
            .get(format!("{url}/api/v2/incidents.json"))
            .send()
            .await?
            .text()
            .await?;
        let summary: Value = serde_json::from_str(&text)?;
        let status = request(&client, &url, 1).send().await?.status().as_u16();
        Ok::<_, Box<dyn std::error::Error>>((incident_ids(&summary), status))
    })?;
    for id in &reported {
        assert!(
            after.contains(id),
            "incident {id} reported before the kill is gone: {after:?}"
        );
    }
    assert_eq!(status, 200, "the restarted gateway serves");
    Ok(())
}
