//! Three gateways sharing Redis and one PostgreSQL store judge health as
//! one: an outage is one incident and one alert whichever instances saw
//! it, every instance's status JSON is the same, and stopping the judge
//! hands the incident to another within the lease without a second one;
//! a follower restarted mid-incident leaves its resolution to the judge.

mod common;

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use bulwark_sim::{Fault, FaultRule, PrivateRedis, SimConfig, SimServer};

type TestResult = Result<(), Box<dyn Error>>;

const ADMIN: &str = "admin-key-for-tests-0123456789";

/// Counts the alerts it is sent.
async fn start_receiver() -> Result<(Arc<AtomicU32>, String), Box<dyn Error>> {
    let count = Arc::new(AtomicU32::new(0));
    let counted = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((count, url))
}

fn psql(sql: &str) -> Result<(), Box<dyn Error>> {
    let output = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test"])
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()?;
    if !output.status.success() {
        return Err(format!("{sql}: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(())
}

/// A database of its own, dropped with this.
struct Database(String);

impl Database {
    fn create() -> Result<Database, Box<dyn Error>> {
        let name = format!(
            "bulwark_shared_health_{}_{}",
            std::process::id(),
            fastrand::u32(..)
        );
        psql(&format!("CREATE DATABASE {name}"))?;
        Ok(Database(name))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

/// `db`: one PostgreSQL store for all, or each its own in memory.
/// This test's keys in the shared Redis, deleted with this.
struct Keys(String);

impl Drop for Keys {
    fn drop(&mut self) {
        let Ok(found) = std::process::Command::new("redis-cli")
            .args(["--scan", "--pattern", &format!("{}*", self.0)])
            .output()
        else {
            return;
        };
        let found = String::from_utf8_lossy(&found.stdout).into_owned();
        let keys: Vec<&str> = found.lines().filter(|k| !k.is_empty()).collect();
        if !keys.is_empty() {
            let _ = std::process::Command::new("redis-cli")
                .arg("del")
                .args(keys)
                .output();
        }
    }
}

fn config(sim: &SimServer, redis: &str, prefix: &str, db: Option<&Database>, hook: &str) -> String {
    let store = db.map_or_else(
        || "store: \"sqlite::memory:\"".to_string(),
        |db| format!("store: \"postgres://postgres@127.0.0.1:5432/{}\"", db.0),
    );
    format!(
        r#"listen: 127.0.0.1:0
admin_key: {ADMIN}
{store}
redis: {{ url: "{redis}", key_prefix: "{prefix}" }}
providers:
  p: {{ kind: openai, base_url: "{sim}/v1", api_key: k }}
routes:
  chat: {{ targets: [p/gpt-4o-mini], max_retries: 0 }}
breaker: {{ consecutive_failures: 1000 }}
health: {{ window: 2s, evaluate_every: 200ms, min_volume: 3, raise_after: 1, recover_after: 1, incident_after: 1ms, resolve_after: 1h }}
alerts:
  webhooks:
    - {{ url: "{hook}", format: generic, events: ["incident_opened"] }}
"#,
        sim = sim.url(),
    )
}

async fn text(http: &reqwest::Client, url: &str) -> Result<String, Box<dyn Error>> {
    Ok(http.get(url).send().await?.text().await?)
}

async fn is_leader(http: &reqwest::Client, base: &str) -> Result<bool, Box<dyn Error>> {
    let metrics = text(http, &format!("{base}/metrics")).await?;
    Ok(metrics.lines().any(|l| l == "bulwark_health_leader 1"))
}

/// Which of `bases` hold the lease now.
async fn leaders(http: &reqwest::Client, bases: &[String]) -> Result<Vec<usize>, Box<dyn Error>> {
    let mut held = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        if is_leader(http, base).await? {
            held.push(i);
        }
    }
    Ok(held)
}

/// Failing requests spread over every gateway.
async fn traffic(http: &reqwest::Client, bases: &[String], rounds: usize) {
    for _ in 0..rounds {
        for base in bases {
            let _ = common::chat(http, base).await;
        }
    }
}

/// Which of `bases` hold the lease, once one does (or after 5 s).
async fn one_judge(http: &reqwest::Client, bases: &[String]) -> Result<Vec<usize>, Box<dyn Error>> {
    let mut held = Vec::new();
    for _ in 0..50 {
        held = leaders(http, bases).await?;
        if held.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(held)
}

/// Sends failing traffic until `store`'s gateway has an open incident
/// stored: whether one opened within about 4 s.
async fn incident_opens(
    http: &reqwest::Client,
    bases: &[String],
    store: &common::Running,
) -> Result<bool, Box<dyn Error>> {
    for _ in 0..40 {
        traffic(http, bases, 2).await;
        store.gateway.observer().flush_alerts().await;
        if open_incidents(store).await? > 0 {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}

async fn open_incidents(running: &common::Running) -> Result<usize, Box<dyn Error>> {
    let stored = running.gateway.observer().store().incidents(50).await?;
    Ok(stored.iter().filter(|i| !i.status.is_closed()).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_judge_one_outage_as_one_and_hand_it_over() -> TestResult {
    let db = Database::create()?;
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let (alerts, hook) = start_receiver().await?;
    let prefix = format!("test:shared-health:{:08x}:", fastrand::u32(..));
    let _keys = Keys(prefix.clone());
    let yaml = config(&sim, "redis://127.0.0.1:6379/0", &prefix, Some(&db), &hook);
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(common::start_gateway(&yaml).await?);
    }
    let bases: Vec<String> = gateways.iter().map(|g| g.base.clone()).collect();
    let http = reqwest::Client::new();

    // One of them takes the lease once Redis is reached.
    let held = one_judge(&http, &bases).await?;
    assert_eq!(held.len(), 1, "exactly one judge: {held:?}");

    // A live page served by an instance that does not judge.
    let Some(follower) = (0..bases.len()).find(|i| !held.contains(i)) else {
        return Err("no follower".into());
    };
    let mut live = gateways[follower].gateway.observer().subscribe_status();
    // Two evaluations, so that it has read the judge's healthy status to
    // tell changes from.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The provider fails everything, on every instance.
    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let opened = incident_opens(&http, &bases, &gateways[0]).await?;
    assert!(opened, "the outage opened an incident");
    // Several more evaluations on every instance: still one of each.
    for _ in 0..6 {
        traffic(&http, &bases, 1).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for running in &gateways {
        running.gateway.observer().flush_alerts().await;
    }
    let stored = gateways[0].gateway.observer().store().incidents(50).await?;
    assert_eq!(stored.len(), 1, "one incident: {stored:#?}");
    let incident = stored[0].id.clone();
    assert_eq!(alerts.load(Ordering::SeqCst), 1, "one alert");
    // It streams the judge's changes, once each, not its own as well.
    let mut told = Vec::new();
    while let Ok(update) = live.try_recv() {
        told.push(serde_json::from_str::<serde_json::Value>(&update)?);
    }
    let opened = told
        .iter()
        .filter(|u| u["type"] == "incident" && u["change"] == "opened")
        .count();
    assert_eq!(opened, 1, "{told:#?}");
    let down = told
        .iter()
        .filter(|u| u["component"] == "p/gpt-4o-mini" && u["status"] == "major_outage")
        .count();
    assert_eq!(down, 1, "{told:#?}");

    // Every instance shows the same status: the judge's, with the same
    // history. A round where the judge republished between two reads is
    // tried again.
    let mut same = false;
    for _ in 0..20 {
        let mut pages = Vec::new();
        for base in &bases {
            pages.push(text(&http, &format!("{base}/api/v2/summary.json")).await?);
        }
        if pages.iter().all(|p| p == &pages[0]) {
            assert!(pages[0].contains(&incident), "{}", pages[0]);
            same = true;
            break;
        }
    }
    assert!(same, "the status JSON differs between instances");

    // The judge stops: another takes over within the lease (600 ms) and a
    // margin, carrying the same incident on.
    let Some(&judge) = held.first() else {
        return Err("no judge".into());
    };
    let stopped = gateways.remove(judge);
    let stopped_base = stopped.base.clone();
    drop(stopped);
    let bases: Vec<String> = bases.into_iter().filter(|b| b != &stopped_base).collect();
    let since = tokio::time::Instant::now();
    let mut taken = false;
    while since.elapsed() < Duration::from_secs(5) {
        traffic(&http, &bases, 1).await;
        if leaders(&http, &bases).await?.len() == 1 {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(taken, "no instance took the lease over");
    for _ in 0..6 {
        traffic(&http, &bases, 1).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for running in &gateways {
        running.gateway.observer().flush_alerts().await;
    }
    let stored = gateways[0].gateway.observer().store().incidents(50).await?;
    assert_eq!(stored.len(), 1, "no second incident: {stored:#?}");
    assert_eq!(stored[0].id, incident);
    assert!(!stored[0].status.is_closed());
    assert_eq!(alerts.load(Ordering::SeqCst), 1, "no second alert");

    // An admin's word through an instance that does not judge reaches the
    // judge: the note lands in the stored incident, and the maintenance
    // shows on every instance.
    let held = leaders(&http, &bases).await?;
    let Some(follower) = (0..bases.len()).find(|i| !held.contains(i)) else {
        return Err("no follower".into());
    };
    let note = "the provider confirmed an outage";
    let answer = http
        .post(format!(
            "{}/admin/incidents/current/updates",
            bases[follower]
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(serde_json::json!({"status": "identified", "message": note}).to_string())
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let answer = http
        .put(format!(
            "{}/admin/components/chat/maintenance",
            bases[follower]
        ))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let mut heard = false;
    for _ in 0..50 {
        let stored = gateways[0].gateway.observer().store().incidents(50).await?;
        let noted = stored
            .first()
            .is_some_and(|i| i.timeline.iter().any(|e| e.message == note));
        let mut everywhere = true;
        for base in &bases {
            let shown = states(&http, base).await?;
            everywhere &= state_of(&shown, "chat") == Some("under_maintenance");
        }
        if noted && everywhere {
            heard = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(heard, "the judge took the admin's word from a follower");
    Ok(())
}

/// Each component's status on `base`'s Statuspage summary.
async fn states(
    http: &reqwest::Client,
    base: &str,
) -> Result<Vec<(String, String)>, Box<dyn Error>> {
    let summary: serde_json::Value =
        serde_json::from_str(&text(http, &format!("{base}/api/v2/summary.json")).await?)?;
    let Some(components) = summary["components"].as_array() else {
        return Err(format!("no components: {summary}").into());
    };
    Ok(components
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// The Gateway group of `/admin/status`: its state and its members.
async fn admin_gateway_group(
    http: &reqwest::Client,
    base: &str,
) -> Result<(String, Vec<String>), Box<dyn Error>> {
    let body = http
        .get(format!("{base}/admin/status"))
        .bearer_auth(ADMIN)
        .send()
        .await?
        .text()
        .await?;
    let shown: serde_json::Value = serde_json::from_str(&body)?;
    let Some(group) = shown["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["name"] == "Gateway"))
    else {
        return Err(format!("no Gateway group in {shown}").into());
    };
    let members = group["components"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    Ok((
        group["status"].as_str().unwrap_or_default().to_string(),
        members,
    ))
}

fn state_of<'a>(states: &'a [(String, String)], name: &str) -> Option<&'a str> {
    states
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_frozen_each_gateway_judges_alone_and_says_so() -> TestResult {
    let redis = PrivateRedis::start()?;
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let (alerts, hook) = start_receiver().await?;
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let prefix = format!("test:frozen:{:08x}:", fastrand::u32(..));
    // Each its own in-memory store: what each judged alone is told apart.
    let yaml = config(&sim, &url, &prefix, None, &hook);
    let mut gateways = Vec::new();
    for _ in 0..2 {
        gateways.push(common::start_gateway(&yaml).await?);
    }
    let bases: Vec<String> = gateways.iter().map(|g| g.base.clone()).collect();
    let http = reqwest::Client::new();
    let held = one_judge(&http, &bases).await?;
    assert_eq!(held.len(), 1, "exactly one judge: {held:?}");
    for base in &bases {
        let shown = states(&http, base).await?;
        assert_eq!(
            state_of(&shown, "Shared state (Redis)"),
            Some("operational")
        );
    }

    redis.signal("-STOP");
    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let mut alone = false;
    for _ in 0..50 {
        let started = tokio::time::Instant::now();
        traffic(&http, &bases, 2).await;
        // A frozen Redis costs a request at most its timeout, not a hang.
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut both = true;
        for running in &gateways {
            let shown = states(&http, &running.base).await?;
            both &= state_of(&shown, "Shared state (Redis)") == Some("degraded_performance")
                && state_of(&shown, "p/gpt-4o-mini") == Some("major_outage")
                && open_incidents(running).await? == 1;
        }
        if both {
            alone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        alone,
        "each gateway should judge the outage itself and show Redis degraded"
    );
    // Operators see Redis too, in the Gateway group.
    for base in &bases {
        assert_eq!(
            admin_gateway_group(&http, base).await?,
            (
                "degraded_performance".to_string(),
                vec!["Shared state (Redis)".to_string()]
            )
        );
    }
    for running in &gateways {
        running.gateway.observer().flush_alerts().await;
    }
    assert_eq!(
        alerts.load(Ordering::SeqCst),
        2,
        "each instance spoke for itself"
    );

    // Redis back: one judge again, and Redis shown operational.
    redis.signal("-CONT");
    let mut back = false;
    for _ in 0..50 {
        let mut operational = true;
        for base in &bases {
            let shown = states(&http, base).await?;
            operational &= state_of(&shown, "Shared state (Redis)") == Some("operational");
        }
        if operational && leaders(&http, &bases).await?.len() == 1 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "one judge again once Redis is back");

    // Each told its own incident while alone; once one judges again the
    // other's is closed as merged into the judge's, not left open forever.
    let mut merged = false;
    let mut last = Vec::new();
    for _ in 0..50 {
        last.clear();
        // By id: each gateway has its own store here, and a new judge that
        // carried the other's incident on stores it too.
        let mut open = std::collections::HashSet::new();
        let mut closed_as_merged = 0;
        for running in &gateways {
            let stored = running.gateway.observer().store().incidents(50).await?;
            last.push(
                stored
                    .iter()
                    .map(|i| {
                        (
                            i.id.clone(),
                            i.status,
                            i.timeline.last().map(|e| e.message.clone()),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
            open.extend(
                stored
                    .iter()
                    .filter(|i| !i.status.is_closed())
                    .map(|i| i.id.clone()),
            );
            closed_as_merged += stored
                .iter()
                .filter(|i| {
                    i.status.is_closed()
                        && i.timeline
                            .last()
                            .is_some_and(|e| e.message.starts_with("merged into"))
                })
                .count();
        }
        if open.len() == 1 && closed_as_merged == 1 {
            merged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        merged,
        "the follower's own incident should be resolved as merged: {last:?}"
    );
    Ok(())
}

/// Counts the alerts it is sent, by kind.
async fn start_kind_receiver()
-> Result<(Arc<std::sync::Mutex<Vec<String>>>, String), Box<dyn Error>> {
    let kinds = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = kinds.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let heard = heard.clone();
            async move {
                let kind = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["kind"].as_str().map(str::to_string))
                    .unwrap_or_default();
                if let Ok(mut heard) = heard.lock() {
                    heard.push(kind);
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((kinds, url))
}

/// A follower restarted mid-incident reads the judge's incident from the
/// store, and then follows it. When the judge resolves it, the story is
/// the judge's to tell: one "resolved" alert, and the stored incident
/// keeps the judge's ending, not a follower's copy resolved a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_leaves_the_resolution_to_the_judge() -> TestResult {
    let db = Database::create()?;
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let (kinds, hook) = start_kind_receiver().await?;
    let prefix = format!("test:shared-health-resolve:{:08x}:", fastrand::u32(..));
    let _keys = Keys(prefix.clone());
    let yaml = config(&sim, "redis://127.0.0.1:6379/0", &prefix, Some(&db), &hook)
        .replace("resolve_after: 1h", "resolve_after: 400ms")
        // The outage opens the breaker (by failure rate); short breaks let
        // the recovery show within the test.
        .replace(
            "breaker: { consecutive_failures: 1000 }",
            "breaker: { consecutive_failures: 1000, base_ejection: 200ms, max_ejection: 400ms }",
        )
        .replace(
            r#"events: ["incident_opened"]"#,
            r#"events: ["incident_opened", "incident_resolved"]"#,
        );
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(common::start_gateway(&yaml).await?);
    }
    let http = reqwest::Client::new();
    let bases = |gateways: &[common::Running]| -> Vec<String> {
        gateways.iter().map(|g| g.base.clone()).collect()
    };
    let held = one_judge(&http, &bases(&gateways)).await?;
    assert_eq!(held.len(), 1, "exactly one judge: {held:?}");

    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let opened = incident_opens(&http, &bases(&gateways), &gateways[0]).await?;
    assert!(opened, "the outage opened an incident");

    // A follower restarts: it reads the open incident from the store.
    let Some(follower) = (0..gateways.len()).find(|i| !held.contains(i)) else {
        return Err("no follower".into());
    };
    drop(gateways.remove(follower));
    gateways.push(common::start_gateway(&yaml).await?);
    for _ in 0..8 {
        traffic(&http, &bases(&gateways), 1).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // The provider recovers; the judge resolves the incident.
    sim.sim.set_faults(Vec::new());
    let mut resolved = false;
    for _ in 0..60 {
        traffic(&http, &bases(&gateways), 1).await;
        if open_incidents(&gateways[0]).await? == 0 {
            resolved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !resolved {
        let stored = gateways[0].gateway.observer().store().incidents(50).await?;
        let summary = text(&http, &format!("{}/api/v2/summary.json", gateways[0].base)).await?;
        panic!("the incident was not resolved: {stored:#?}\n{summary}");
    }
    // Several more rounds on every instance, for a second telling to show.
    for _ in 0..8 {
        traffic(&http, &bases(&gateways), 1).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for running in &gateways {
        running.gateway.observer().flush().await;
        running.gateway.observer().flush_alerts().await;
    }
    let heard = kinds.lock().map(|k| k.clone()).unwrap_or_default();
    let count = |kind: &str| heard.iter().filter(|k| k.as_str() == kind).count();
    assert_eq!(count("incident_opened"), 1, "{heard:?}");
    assert_eq!(count("incident_resolved"), 1, "{heard:?}");
    let stored = gateways[0].gateway.observer().store().incidents(50).await?;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert!(
        !stored[0].timeline.iter().any(|e| e
            .message
            .contains("the instance judging for all sees no incident")),
        "a follower resolved the judge's incident again: {:#?}",
        stored[0].timeline
    );
    Ok(())
}
