//! Reloads under load: 20 reloads alternating two valid configs while
//! clients keep asking, streamed and not, at the OpenAI and Anthropic
//! doors, for routes both configs have: no request fails. Then a broken
//! config: refused, and the answers do not change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bulwark_gateway::{Gateway, GatewayConfig};
use bulwark_sim::{Latency, SimConfig, SimServer};
use tokio::net::TcpListener;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Config A or B: both serve `main` (OpenAI) and `claude` (Anthropic); B
/// has another route and gives provider `b` another setting, so its target
/// starts fresh at each swap.
fn yaml(sim: &SimServer, b_side: bool) -> String {
    let (b_extra, route) = if b_side {
        (
            ", default_max_tokens: 100",
            "  only_b: { targets: [a/gpt-4o] }\n",
        )
    } else {
        ("", "  only_a: { targets: [b/claude-haiku-4-5] }\n")
    };
    format!(
        "listen: 127.0.0.1:0\nstore: \"sqlite::memory:\"\nproviders:\n  a: {{ kind: openai, base_url: \"{url}/v1\" }}\n  b: {{ kind: anthropic, base_url: \"{url}\"{b_extra} }}\nroutes:\n  main: {{ targets: [a/gpt-4o-mini] }}\n  claude: {{ targets: [b/claude-sonnet-4-5] }}\n{route}",
        url = sim.url()
    )
}

#[derive(Clone, Copy)]
enum Door {
    OpenAi { stream: bool },
    Anthropic { stream: bool },
}

/// One request; `Err` says how it failed.
async fn one(http: &reqwest::Client, base: &str, door: Door) -> Result<(), String> {
    let (path, body, target, end) = match door {
        Door::OpenAi { stream } => (
            "/v1/chat/completions",
            serde_json::json!({"model": "main", "stream": stream, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
            "a/gpt-4o-mini",
            if stream {
                "data: [DONE]"
            } else {
                "\"choices\""
            },
        ),
        Door::Anthropic { stream } => (
            "/v1/messages",
            serde_json::json!({"model": "claude", "stream": stream, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
            "b/claude-sonnet-4-5",
            if stream {
                "message_stop"
            } else {
                "\"type\":\"message\""
            },
        ),
    };
    let response = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = response.status().as_u16();
    let served_by = response
        .headers()
        .get("x-bulwark-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{path}: body: {e}"))?;
    if status != 200 || served_by != target || !text.contains(end) {
        return Err(format!("{path}: {status} from `{served_by}`: {text}"));
    }
    Ok(())
}

/// Waits until `count` has grown by `by` since `from`.
async fn served_more(count: &AtomicU64, by: u64) -> Result<(), String> {
    let from = count.load(Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(60), async {
        while count.load(Ordering::SeqCst) < from + by {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .map_err(|_| "the clients stopped getting answers".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request_and_a_broken_config_changes_nothing()
-> TestResult {
    let sim = SimServer::start(
        "127.0.0.1:0",
        SimConfig {
            // Streams long enough to be in flight across a reload.
            latency: Latency {
                headers_ms: 0,
                first_token_ms: 5,
                token_interval_ms: 5,
            },
            ..SimConfig::default()
        },
    )
    .await?;
    let dir = std::env::temp_dir().join(format!("bulwark-reload-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("load.yaml");
    std::fs::write(&path, yaml(&sim, false))?;
    let gateway = Gateway::start(&GatewayConfig::load(&path)?).await?;
    gateway.set_config_path(path.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (_stop_serving, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bulwark_gateway::serve(listener, gateway.clone(), async {
        let _ = stopped.await;
    }));

    let ok = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    let doors = [
        Door::OpenAi { stream: false },
        Door::OpenAi { stream: true },
        Door::Anthropic { stream: false },
        Door::Anthropic { stream: true },
    ];
    for door in doors {
        let (ok, stop, base) = (Arc::clone(&ok), Arc::clone(&stop), base.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match one(&http, &base, door).await {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(failure) => failures.push(failure),
                }
            }
            failures
        }));
    }

    served_more(&ok, 8).await?;
    for round in 0..20 {
        std::fs::write(&path, yaml(&sim, round % 2 == 0))?;
        let summary = gateway.reload_from_file().await?;
        assert_eq!(summary.routes.kept, ["main"], "round {round}: {summary:?}");
        // Requests of every kind run between one reload and the next.
        served_more(&ok, 8).await?;
    }
    let before_broken = ok.load(Ordering::SeqCst);
    std::fs::write(
        &path,
        yaml(&sim, true).replace("kind: anthropic", "kind: anthropik"),
    )?;
    assert!(
        gateway.reload_from_file().await.is_err(),
        "a broken config was applied"
    );
    served_more(&ok, 40).await?;
    stop.store(true, Ordering::SeqCst);

    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await?);
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests failed; first: {:?}",
        failures.len(),
        failures.len() as u64 + ok.load(Ordering::SeqCst),
        failures.first()
    );
    assert!(ok.load(Ordering::SeqCst) > before_broken);
    Ok(())
}
