//! Issue 14, proven with real processes: three `bulwark serve` instances
//! behind the shipped nginx config (`deploy/nginx/bulwark.conf`), sharing
//! the machine's Redis (a key prefix per test) and PostgreSQL (a database
//! per test), act as one gateway. The harness is in `scale/`.

mod scale;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use scale::load::{self, eventually};
use scale::{Cluster, Spec, TestResult, postgres, redis};

/// Fast enough that load is limited by the gateways, not the provider.
const QUICK_SIM: &str = "latency: { headers_ms: 2, first_token_ms: 2, token_interval_ms: 1 }\n";

fn spec<'a>(test: &'a str, scenario: &'a str, config: &'a str) -> Spec<'a> {
    Spec {
        test,
        scenario,
        config,
        redis_port: redis::MACHINE_PORT,
        store_port: postgres::MACHINE_PORT,
        together: false,
        net: None,
        redis_link: None,
    }
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

/// 900 requests, as fast as three instances take them, through nginx to a
/// target whose quota is 600 a minute: together they let 600 ± 5 % through,
/// not 600 each. The rest are refused (no room within the 1 s deadline),
/// never sent to the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_target_quota_holds_across_three_instances() -> TestResult {
    let _turn = scale::ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&spec(
        "quota",
        QUICK_SIM,
        "providers:\n  sim: { kind: openai-compatible, base_url: \"{sim}/v1\", limits: { rpm: 600 } }\nroutes:\n  main: { targets: [sim/llama3], max_retries: 0, deadline: 1s }\n",
    ))?;
    let client = reqwest::Client::new();
    let shots = load::burst(&client, &cluster.lb.url, "main", 900, 24).await;
    let served = shots.iter().filter(|s| s.status == 200).count();
    let refused = shots.iter().filter(|s| s.status == 429).count();
    let sent = cluster.sim_count(&client, "llama3").await;
    assert_eq!(
        served + refused,
        900,
        "only 200 or 429: {:?}",
        statuses(&shots)
    );
    assert!(
        (570..=630).contains(&served),
        "600 rpm across three instances let {served} through (570..=630 expected)"
    );
    assert!(
        (570..=630).contains(&sent),
        "the provider got {sent} requests for a 600 rpm quota"
    );
    Ok(())
}

const CLIENT_KEY: &str = "scale-out-client-key-0123456789";

/// The same for a client key's own quota (600 a minute across routes):
/// three instances together let the key have 600 ± 5 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_key_quota_holds_across_three_instances() -> TestResult {
    let _turn = scale::ONE_AT_A_TIME.lock().await;
    let config = format!(
        "keys:\n  team: {{ key: \"{CLIENT_KEY}\", limits: {{ rpm: 600 }} }}\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{{sim}}/v1\" }}\nroutes:\n  main: {{ targets: [sim/llama3], max_retries: 0, deadline: 1s }}\n"
    );
    let cluster = Cluster::start(&spec("key_quota", QUICK_SIM, &config))?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {CLIENT_KEY}").parse()?,
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let shots = load::burst(&client, &cluster.lb.url, "main", 900, 24).await;
    let served = shots.iter().filter(|s| s.status == 200).count();
    let refused = shots.iter().filter(|s| s.status == 429).count();
    assert_eq!(
        served + refused,
        900,
        "only 200 or 429: {:?}",
        statuses(&shots)
    );
    assert!(
        (570..=630).contains(&served),
        "a 600 rpm key quota across three instances let {served} through (570..=630 expected)"
    );
    Ok(())
}

/// Three instances started at the same moment on a new database: they
/// race to migrate it, one does (under the advisory lock), and all three
/// serve and log into the one schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_started_together_migrate_one_database_once() -> TestResult {
    let _turn = scale::ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&Spec {
        together: true,
        ..spec(
            "together",
            QUICK_SIM,
            "providers:\n  sim: { kind: openai-compatible, base_url: \"{sim}/v1\" }\nroutes:\n  main: { targets: [sim/llama3] }\n",
        )
    })?;
    let client = reqwest::Client::new();
    for instance in &cluster.instances {
        let shot = load::chat(&client, &instance.url, "main", &instance.name).await;
        assert_eq!(shot.status, 200, "{}: {}", instance.name, shot.body);
    }
    let logged = eventually(Duration::from_secs(15), || async {
        let rows: u64 = cluster
            .db
            .scalar("SELECT count(*) FROM requests")
            .ok()?
            .parse()
            .ok()?;
        (rows >= 3).then_some(rows)
    })
    .await;
    assert_eq!(
        logged,
        Some(3),
        "each instance's request is in the shared log"
    );
    Ok(())
}

fn statuses(shots: &[load::Shot]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for shot in shots {
        *counts.entry(shot.status).or_insert(0) += 1;
    }
    counts
}

/// A breaker opened through instance 1 (three 500s in a row) is honoured by
/// instances 2 and 3 within a second: they send the dead target nothing.
/// When the break ends, the three instances together send it one probe,
/// not one each; the probe fails and the target stays skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_through_one_instance_is_honoured_by_all_with_one_probe() -> TestResult {
    let _turn = scale::ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&spec(
        "breaker",
        QUICK_SIM,
        "providers:\n  sim: { kind: openai-compatible, base_url: \"{sim}/v1\" }\nroutes:\n  main: { targets: [sim/flaky, sim/llama3], max_retries: 0 }\nbreaker: { consecutive_failures: 3, min_calls: 1000, base_ejection: 3s, max_ejection: 60s, half_open_probes: 1 }\n",
    ))?;
    let client = reqwest::Client::new();
    cluster
        .set_faults(
            &client,
            json!([{ "match": { "model": "flaky" }, "fault": { "status": 500 } }]),
        )
        .await?;
    let [first, second, third] = &cluster.instances[..] else {
        panic!("three instances");
    };
    for n in 0..6 {
        let shot = load::chat(&client, &first.url, "main", &format!("open {n}")).await;
        assert_eq!(shot.status, 200, "the fallback answers: {}", shot.body);
    }
    let opened = Instant::now();
    let before = cluster.sim_count(&client, "flaky").await;
    assert!(
        (3..=6).contains(&before),
        "instance 1 opened its breaker after three failures ({before} calls)"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for instance in [second, third] {
        for n in 0..5 {
            let shot = load::chat(&client, &instance.url, "main", &format!("skip {n}")).await;
            assert_eq!(shot.status, 200, "{}", shot.body);
        }
    }
    let after = cluster.sim_count(&client, "flaky").await;
    assert_eq!(
        after, before,
        "instances 2 and 3 called the target whose breaker instance 1 opened a second ago"
    );

    // The break (3 s) ends on every instance by about 4 s after it opened;
    // load all three until 5.5 s, while the target still fails.
    tokio::time::sleep_until(opened + Duration::from_millis(3200)).await;
    let mut n = 0;
    while opened.elapsed() < Duration::from_millis(5500) {
        let round: Vec<_> = cluster
            .instances
            .iter()
            .flat_map(|i| (0..3).map(move |k| (i.url.clone(), k)))
            .map(|(url, k)| {
                let client = client.clone();
                let text = format!("probe {n}-{k}");
                async move { load::chat(&client, &url, "main", &text).await }
            })
            .collect();
        for shot in futures_util::future::join_all(round).await {
            assert_eq!(shot.status, 200, "{}", shot.body);
        }
        n += 1;
    }
    let probes = cluster.sim_count(&client, "flaky").await - after;
    assert_eq!(
        probes, 1,
        "three instances probed the dead target {probes} times"
    );
    Ok(())
}

/// An answer cached through instance 1 is a hit through instances 2 and 3
/// (the cache's Redis tier): the provider is asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_through_one_instance_is_a_hit_on_the_others() -> TestResult {
    let _turn = scale::ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&spec(
        "cache",
        QUICK_SIM,
        "providers:\n  sim: { kind: openai-compatible, base_url: \"{sim}/v1\" }\nroutes:\n  main: { targets: [sim/llama3], cache: { ttl: 1h } }\n",
    ))?;
    let client = reqwest::Client::new();
    let first = load::chat(&client, &cluster.instances[0].url, "main", "cache me").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.cache.as_deref(), Some("miss"));
    // The second tier is written after the answer; give it a moment. One
    // try each: a miss would fill the instance's own memory and a retry
    // would prove nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for instance in &cluster.instances[1..] {
        let shot = load::chat(&client, &instance.url, "main", "cache me").await;
        assert_eq!(shot.status, 200, "{}", shot.body);
        assert_eq!(
            shot.cache.as_deref(),
            Some("hit"),
            "{} did not find what instance 1 cached",
            instance.name
        );
        let answer = |body: &str| {
            serde_json::from_str::<Value>(body).map(|v| v["choices"][0]["message"].clone())
        };
        assert_eq!(answer(&shot.body)?, answer(&first.body)?);
    }
    assert_eq!(cluster.sim_count(&client, "llama3").await, 1);
    Ok(())
}

/// Receives webhook alerts: every JSON body posted to it.
async fn webhook_receiver() -> TestResult<(String, Arc<std::sync::Mutex<Vec<Value>>>)> {
    let received = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let store = store.clone();
            async move {
                if let (Ok(value), Ok(mut all)) = (serde_json::from_str(&body), store.lock()) {
                    all.push(value);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, received))
}

fn alerts_of(received: &std::sync::Mutex<Vec<Value>>, kind: &str) -> usize {
    received
        .lock()
        .map(|all| all.iter().filter(|a| a["kind"] == kind).count())
        .unwrap_or(0)
}

async fn incidents_from(client: &reqwest::Client, url: &str) -> Vec<String> {
    incident_ids(&load::json(client, &format!("{url}/api/v2/incidents.json")).await)
}

/// One outage seen by all three instances gives one incident and one alert;
/// all three serve the same status JSON; `kill -9` of the instance holding
/// the judge's lease hands the incident to another instance, which goes on
/// with it (and resolves it) without opening a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_outage_one_incident_one_alert_identical_status_and_a_lease_handover() -> TestResult {
    let _turn = scale::ONE_AT_A_TIME.lock().await;
    let (hook, received) = webhook_receiver().await?;
    let config = format!(
        "providers:\n  sim: {{ kind: openai-compatible, base_url: \"{{sim}}/v1\" }}\nroutes:\n  main: {{ targets: [sim/broken, sim/llama3], max_retries: 0 }}\nhealth: {{ window: 10s, evaluate_every: 200ms, min_volume: 3, raise_after: 1, recover_after: 1, incident_after: 500ms, resolve_after: 1s }}\nalerts: {{ webhooks: [{{ url: \"{hook}\", format: generic }}] }}\n"
    );
    let cluster = Cluster::start(&spec(
        "incident",
        "latency: { headers_ms: 2, first_token_ms: 2, token_interval_ms: 1 }\nfaults:\n  - { match: { model: broken }, fault: { status: 500 } }\n",
        &config,
    ))?;
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load::keep_loading(&client, &cluster.lb.url, "main", 6, stop.clone());

    let lb = cluster.lb.url.clone();
    let opened = eventually(Duration::from_secs(30), || {
        let (client, lb) = (client.clone(), lb.clone());
        async move { Some(incidents_from(&client, &lb).await).filter(|ids| !ids.is_empty()) }
    })
    .await
    .ok_or("no incident within 30 s")?;
    // Time for a second instance to open a second incident, if it would.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for instance in &cluster.instances {
        assert_eq!(
            incidents_from(&client, &instance.url).await,
            opened,
            "{} lists other incidents",
            instance.name
        );
    }
    assert_eq!(opened.len(), 1, "one outage, incidents {opened:?}");
    assert_eq!(alerts_of(&received, "incident_opened"), 1, "one alert");

    let urls: Vec<String> = cluster.instances.iter().map(|i| i.url.clone()).collect();
    let same_status = eventually(Duration::from_secs(10), || {
        let (client, urls) = (client.clone(), urls.clone());
        async move {
            let mut bodies = Vec::new();
            for url in &urls {
                bodies.push(load::text(&client, &format!("{url}/api/v2/status.json")).await);
            }
            (!bodies[0].is_empty() && bodies.iter().all(|b| *b == bodies[0])).then_some(())
        }
    })
    .await;
    assert!(
        same_status.is_some(),
        "the three instances never served the same /api/v2/status.json"
    );

    let holder = eventually(Duration::from_secs(5), || async { cluster.lease_holder() })
        .await
        .ok_or("no lease key under the prefix names an instance")?;
    cluster.instances[holder].process.signal("-KILL")?;
    let survivor = cluster.instances[(holder + 1) % cluster.instances.len()]
        .url
        .clone();
    // The lease expires and another instance takes it; the outage goes on.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        incidents_from(&client, &survivor).await,
        opened,
        "the new judge opened another incident"
    );
    assert_eq!(alerts_of(&received, "incident_opened"), 1);

    // The outage ends: the new judge resolves the one incident.
    cluster.set_faults(&client, json!([])).await?;
    let resolved = eventually(Duration::from_secs(30), || {
        let (client, survivor) = (client.clone(), survivor.clone());
        async move {
            let summary = load::json(&client, &format!("{survivor}/api/v2/incidents.json")).await;
            summary["incidents"]
                .as_array()
                .and_then(|all| all.iter().any(|i| i["status"] == "resolved").then_some(()))
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = traffic.await;
    assert!(
        resolved.is_some(),
        "no instance resolved the incident after the holder died"
    );
    assert_eq!(alerts_of(&received, "incident_opened"), 1);
    assert_eq!(alerts_of(&received, "incident_resolved"), 1);
    Ok(())
}

/// The shipped nginx config passes `nginx -t` as the tests run it, and
/// keeps the rule that matters most: another instance only when one cannot
/// be reached, never a POST sent twice.
#[test]
fn the_shipped_nginx_config_is_valid_and_never_replays_a_request() -> TestResult {
    let shipped = std::fs::read_to_string(scale::nginx::CONFIG)?;
    let directives: Vec<&str> = shipped
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let has = |d: &str| directives.contains(&d);
    assert!(
        has("proxy_next_upstream error;"),
        "failover on connection errors only"
    );
    assert!(
        !directives.iter().any(|l| l.contains("non_idempotent")),
        "a POST must not be replayed"
    );
    for needed in [
        "least_conn;",
        "proxy_http_version 1.1;",
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "client_max_body_size 32m;",
    ] {
        assert!(has(needed), "{needed} is missing");
    }
    // The upstream block's idle limit, in seconds ("keepalive_timeout 5s;"
    // there; the `http` block's one is for clients and comes first).
    let upstream = shipped
        .split("upstream bulwark {")
        .nth(1)
        .and_then(|block| block.split('}').next())
        .ok_or("no upstream block")?;
    let idle_secs: u64 = upstream
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("keepalive_timeout "))
        .and_then(|v| v.strip_suffix("s;"))
        .ok_or("no keepalive_timeout in the upstream block")?
        .parse()?;
    let closes_at = bulwark_gateway::config::server::DEFAULT_HEADER_TIMEOUT
        .min(bulwark_gateway::config::server::DEFAULT_IDLE_TIMEOUT);
    assert!(
        idle_secs * 2 <= closes_at.as_secs(),
        "nginx keeps idle connections {idle_secs} s, too close to Bulwark closing them at {closes_at:?}: a POST would meet a closing socket"
    );
    let scratch = scale::process::Scratch::new("nginx_check")?;
    let config = scale::nginx::config_for(
        &shipped,
        scale::process::free_port()?,
        &["127.0.0.1:1".into(), "127.0.0.1:2".into()],
    )?;
    assert_eq!(config.matches("max_fails=3 fail_timeout=10s;").count(), 2);
    let path = scratch.write("nginx.conf", &config)?;
    let status = std::process::Command::new(scale::nginx::binary())
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(&scratch.0)
        .arg("-e")
        .arg("stderr")
        .arg("-c")
        .arg(&path)
        .status()?;
    assert!(status.success(), "nginx -t refused the config");
    Ok(())
}

/// `deploy/bulwark.scale.yaml` is a valid config once its required secret
/// is set.
#[test]
fn the_shipped_scale_config_passes_bulwark_check() -> TestResult {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(["check", "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/bulwark.scale.yaml"
        ))
        .env("BULWARK_CLIENT_KEY", "a-client-key-of-32-characters-00")
        .output()?;
    assert!(
        output.status.success(),
        "bulwark check: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// What nginx must not break: a stream reaches the client as it is
/// written, the first words long before the last (the config's
/// `proxy_buffering off`, and Bulwark's own `X-Accel-Buffering: no` on
/// streams: either suffices, the static check above keeps the first), and
/// one request id follows a request through nginx into Bulwark's log and
/// back: the client's own, or one nginx made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_streams_unbuffered_and_carries_one_request_id() -> TestResult {
    let _turn = scale::ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&spec(
        "nginx",
        "latency: { headers_ms: 2, first_token_ms: 2, token_interval_ms: 100 }\n",
        "providers:\n  sim: { kind: openai-compatible, base_url: \"{sim}/v1\" }\nroutes:\n  main: { targets: [sim/llama3] }\n",
    ))?;
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut response = client
        .post(format!("{}/v1/chat/completions", cluster.lb.url))
        .header("content-type", "application/json")
        .body(
            json!({
                "model": "main", "stream": true,
                "messages": [{"role": "user", "content": "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"}]
            })
            .to_string(),
        )
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let mut arrivals = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        arrivals.push((start.elapsed(), String::from_utf8_lossy(&chunk).to_string()));
    }
    let Some((total, last)) = arrivals.last() else {
        panic!("an empty stream");
    };
    assert!(last.trim_end().ends_with("data: [DONE]"), "{last}");
    assert!(
        *total >= Duration::from_millis(1000),
        "the stream took {total:?}"
    );
    let early = arrivals
        .iter()
        .take_while(|(at, _)| *at < *total / 2)
        .any(|(_, text)| text.contains("\"content\":\""));
    assert!(
        early,
        "no words before half the stream's time: nginx buffered it"
    );

    let id = format!("scale-rid-{:08x}", fastrand::u32(..));
    let mine = client
        .post(format!("{}/v1/chat/completions", cluster.lb.url))
        .header("content-type", "application/json")
        .header("x-request-id", &id)
        .body(json!({"model": "main", "messages": [{"role": "user", "content": "id"}]}).to_string())
        .send()
        .await?;
    let echoed: Vec<_> = mine.headers().get_all("x-request-id").iter().collect();
    assert_eq!(echoed, [id.as_str()], "the client's id, once");
    let made = client
        .post(format!("{}/v1/chat/completions", cluster.lb.url))
        .header("content-type", "application/json")
        .body(
            json!({"model": "main", "messages": [{"role": "user", "content": "no id"}]})
                .to_string(),
        )
        .send()
        .await?;
    let made: Vec<String> = made
        .headers()
        .get_all("x-request-id")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let [made] = &made[..] else {
        panic!("one x-request-id expected: {made:?}");
    };
    // nginx's $request_id: 32 hex digits, which Bulwark logs as the
    // client's id.
    assert!(
        made.len() == 32 && made.chars().all(|c| c.is_ascii_hexdigit()),
        "{made}"
    );
    for logged_id in [id.as_str(), made.as_str()] {
        let sql = format!("SELECT count(*) FROM requests WHERE client_request_id = '{logged_id}'");
        let logged = eventually(Duration::from_secs(15), || async {
            Some(cluster.db.scalar(&sql).ok()?).filter(|n| n == "1")
        })
        .await;
        assert!(logged.is_some(), "{logged_id} is not in the request log");
    }
    Ok(())
}
