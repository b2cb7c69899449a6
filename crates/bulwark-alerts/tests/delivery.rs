//! Delivery against real HTTP receivers on 127.0.0.1.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers and receivers: a failed setup fails the test"
)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bulwark::observe::component::ComponentState;
use bulwark::observe::incident::{Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind};
use bulwark_alerts::{
    Alert, AlertSender, AlertStats, Alerter, BurnSeverity, DeliveryOptions, Webhook, WebhookFormat,
};
use serde_json::Value;
use tokio::time::Instant;

/// What one receiver got, and what it answers next.
#[derive(Default)]
struct Receiver {
    bodies: Mutex<Vec<Value>>,
    headers: Mutex<Vec<HeaderMap>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    /// Calls seen, including failed ones.
    calls: Mutex<u32>,
    hang: bool,
}

impl Receiver {
    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
    fn kinds(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["kind"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

async fn receive(
    State(rx): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    *rx.calls.lock().unwrap() += 1;
    if rx.hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let next = rx.script.lock().unwrap().pop_front();
    let mut out = HeaderMap::new();
    match next {
        Some((status, retry_after)) => {
            if let Some(ra) = retry_after {
                out.insert("retry-after", ra.parse().unwrap());
            }
            (StatusCode::from_u16(status).unwrap(), out)
        }
        None => {
            rx.bodies
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            rx.headers.lock().unwrap().push(headers);
            (StatusCode::OK, out)
        }
    }
}

/// Starts a receiver and returns it with its URL.
async fn start(receiver: Receiver) -> (Arc<Receiver>, String) {
    let receiver = Arc::new(receiver);
    let app = Router::new()
        .route("/hook/{secret}", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, format!("http://{addr}/hook/s3cr3t"))
}

fn scripted(script: &[(u16, Option<&'static str>)]) -> Receiver {
    Receiver {
        script: Mutex::new(script.iter().copied().collect()),
        ..Receiver::default()
    }
}

fn options() -> DeliveryOptions {
    DeliveryOptions {
        max_attempts: 4,
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        dedup_window: Duration::from_secs(3600),
        queue_capacity: 64,
    }
}

fn hook(url: &str) -> Webhook {
    Webhook {
        url: url.to_string(),
        format: WebhookFormat::Generic,
        events: None,
    }
}

fn incident(id: &str) -> Incident {
    Incident {
        id: id.to_string(),
        title: "openai/gpt-4o is failing".to_string(),
        status: IncidentStatus::Investigating,
        worst: ComponentState::MajorOutage,
        components: vec!["openai/gpt-4o".to_string(), "chat".to_string()],
        started_at: 1_764_400_000_000,
        updated_at: 1_764_400_000_000,
        resolved_at: None,
        impact: Impact {
            affected: 120,
            saved_by_fallback: 80,
            from_cache: 10,
            degraded: 5,
            failed: 25,
        },
        timeline: vec![TimelineEntry {
            at: 1_764_400_000_000,
            kind: TimelineKind::Detected,
            component: Some("openai/gpt-4o".to_string()),
            status: IncidentStatus::Investigating,
            message: "error rate 62 % over 60 s".to_string(),
        }],
    }
}

fn resolved(id: &str) -> Incident {
    let mut i = incident(id);
    i.status = IncidentStatus::Resolved;
    i.resolved_at = Some(i.started_at + 25 * 60_000);
    i.timeline.push(TimelineEntry {
        at: i.started_at + 25 * 60_000,
        kind: TimelineKind::Resolved,
        component: None,
        status: IncidentStatus::Resolved,
        message: "recovered".to_string(),
    });
    i
}

async fn flushed(sender: &AlertSender) -> AlertStats {
    tokio::time::timeout(Duration::from_secs(20), sender.flush())
        .await
        .expect("flush did not finish");
    sender.stats()
}

#[tokio::test]
async fn open_and_resolve_arrive_once_each_in_order() {
    let (rx, url) = start(Receiver::default()).await;
    let sender = Alerter::spawn(vec![hook(&url)], options());
    sender.send(Alert::IncidentOpened(incident("inc-a")));
    sender.send(Alert::IncidentResolved(resolved("inc-a")));
    let stats = flushed(&sender).await;
    assert_eq!(rx.kinds(), ["incident_opened", "incident_resolved"]);
    let bodies = rx.bodies();
    assert_eq!(bodies[0]["incident"]["id"], "inc-a");
    assert_eq!(bodies[0]["incident"]["impact"]["affected"], 120);
    assert_eq!(bodies[1]["incident"]["status"], "resolved");
    assert!(bodies[1]["text"].as_str().unwrap().contains("25 min"));
    let headers = &rx.headers.lock().unwrap()[0];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["user-agent"], "bulwark");
    assert_eq!(
        stats,
        AlertStats {
            delivered: 2,
            ..AlertStats::default()
        }
    );
}

#[tokio::test]
async fn a_failed_first_delivery_arrives_once_after_a_retry() {
    let (rx, url) = start(scripted(&[(500, None)])).await;
    let sender = Alerter::spawn(vec![hook(&url)], options());
    sender.send(Alert::IncidentOpened(incident("inc-b")));
    let stats = flushed(&sender).await;
    assert_eq!(rx.kinds(), ["incident_opened"]);
    assert_eq!(rx.calls(), 2);
    assert_eq!((stats.delivered, stats.retried, stats.failed), (1, 1, 0));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (rx, url) = start(scripted(&[(429, Some("1"))])).await;
    let sender = Alerter::spawn(
        vec![hook(&url)],
        DeliveryOptions {
            backoff_cap: Duration::from_secs(5),
            ..options()
        },
    );
    let started = Instant::now();
    sender.send(Alert::IncidentOpened(incident("inc-c")));
    let stats = flushed(&sender).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rx.kinds(), ["incident_opened"]);
    assert_eq!((stats.delivered, stats.retried), (1, 1));
}

#[tokio::test]
async fn the_same_alert_twice_is_posted_once() {
    let (rx, url) = start(Receiver::default()).await;
    let sender = Alerter::spawn(vec![hook(&url)], options());
    sender.send(Alert::IncidentOpened(incident("inc-d")));
    sender.send(Alert::IncidentOpened(incident("inc-d")));
    flushed(&sender).await;
    // Re-raised later too, e.g. by a restarted health tracker's replay.
    sender.send(Alert::IncidentOpened(incident("inc-d")));
    let stats = flushed(&sender).await;
    assert_eq!(rx.kinds(), ["incident_opened"]);
    assert_eq!((stats.delivered, stats.deduplicated), (1, 2));
}

#[tokio::test]
async fn a_given_up_alert_is_not_remembered_as_delivered() {
    let (rx, url) = start(scripted(&[(500, None), (500, None)])).await;
    let sender = Alerter::spawn(
        vec![hook(&url)],
        DeliveryOptions {
            max_attempts: 2,
            ..options()
        },
    );
    sender.send(Alert::IncidentOpened(incident("inc-e")));
    let stats = flushed(&sender).await;
    assert_eq!((stats.delivered, stats.failed), (0, 1));
    sender.send(Alert::IncidentOpened(incident("inc-e")));
    let stats = flushed(&sender).await;
    assert_eq!(rx.kinds(), ["incident_opened"]);
    assert_eq!((stats.delivered, stats.deduplicated), (1, 0));
}

#[tokio::test]
async fn a_400_gives_up_without_retrying() {
    let (rx, url) = start(scripted(&[(400, None), (400, None), (400, None)])).await;
    let sender = Alerter::spawn(vec![hook(&url)], options());
    sender.send(Alert::IncidentOpened(incident("inc-f")));
    sender.send(Alert::IncidentResolved(resolved("inc-f")));
    let stats = flushed(&sender).await;
    assert_eq!(rx.calls(), 2, "one call per alert, no retries");
    assert_eq!(
        stats,
        AlertStats {
            failed: 2,
            ..AlertStats::default()
        }
    );
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_up_another_webhook() {
    let (slow, slow_url) = start(Receiver {
        hang: true,
        ..Receiver::default()
    })
    .await;
    let (fast, fast_url) = start(Receiver::default()).await;
    let sender = Alerter::spawn(
        vec![hook(&slow_url), hook(&fast_url)],
        DeliveryOptions {
            timeout: Duration::from_secs(30),
            ..options()
        },
    );
    let started = Instant::now();
    sender.send(Alert::IncidentOpened(incident("inc-g")));
    sender.send(Alert::IncidentResolved(resolved("inc-g")));
    // send() itself never waits on a receiver.
    assert!(started.elapsed() < Duration::from_millis(100));
    tokio::time::timeout(Duration::from_secs(5), async {
        while fast.bodies().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the fast webhook waited for the hanging one");
    assert_eq!(fast.kinds(), ["incident_opened", "incident_resolved"]);
    assert!(slow.bodies().is_empty());
    assert_eq!(slow.calls(), 1);
}

#[tokio::test]
async fn a_timed_out_delivery_is_retried_then_given_up() {
    let (slow, url) = start(Receiver {
        hang: true,
        ..Receiver::default()
    })
    .await;
    let sender = Alerter::spawn(
        vec![hook(&url)],
        DeliveryOptions {
            max_attempts: 2,
            timeout: Duration::from_millis(200),
            ..options()
        },
    );
    sender.send(Alert::IncidentOpened(incident("inc-h")));
    let stats = flushed(&sender).await;
    assert_eq!(slow.calls(), 2);
    assert_eq!((stats.failed, stats.retried, stats.delivered), (1, 1, 0));
}

#[tokio::test]
async fn slack_bodies_have_text_and_mrkdwn_blocks() {
    let (rx, url) = start(Receiver::default()).await;
    let sender = Alerter::spawn(
        vec![Webhook {
            format: WebhookFormat::Slack,
            ..hook(&url)
        }],
        options(),
    );
    sender.send(Alert::IncidentOpened(incident("inc-i")));
    sender.send(Alert::BudgetBurn {
        route: "chat".to_string(),
        severity: BurnSeverity::Page,
        burn_rate: 14.4,
        long_window: Duration::from_secs(3600),
        short_window: Duration::from_secs(300),
        budget_remaining: 0.5,
    });
    flushed(&sender).await;
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2);
    let open = &bodies[0];
    assert!(
        open.get("kind").is_none(),
        "slack body is not the generic one"
    );
    assert!(
        open["text"]
            .as_str()
            .unwrap()
            .starts_with("Incident opened")
    );
    let blocks = open["blocks"].as_array().unwrap();
    let texts: Vec<String> = blocks
        .iter()
        .flat_map(|b| {
            let mut t = vec![];
            if let Some(s) = b["text"]["text"].as_str() {
                assert_eq!(b["text"]["type"], "mrkdwn");
                t.push(s.to_string());
            }
            for f in b["fields"].as_array().into_iter().flatten() {
                assert_eq!(f["type"], "mrkdwn");
                t.push(f["text"].as_str().unwrap().to_string());
            }
            for e in b["elements"].as_array().into_iter().flatten() {
                t.push(e["text"].as_str().unwrap().to_string());
            }
            t
        })
        .collect();
    let all = texts.join("\n");
    assert_eq!(blocks[0]["type"], "section");
    assert!(
        texts[0].contains("Incident opened") && texts[0].contains("Major outage"),
        "{all}"
    );
    assert!(all.contains("*Components*\nopenai/gpt-4o, chat"), "{all}");
    // The impact is what clients got: 21 % failed, the rest answered by
    // fallback, cache or a degrade step, is minor on the route ladder.
    assert!(
        all.contains("*Impact* (minor)\n120 requests affected, 25 failed"),
        "{all}"
    );
    assert!(
        all.contains("*Latest update*") && all.contains("error rate 62 % over 60 s"),
        "{all}"
    );
    assert!(all.contains("inc-i"), "{all}");

    let burn = &bodies[1];
    assert!(burn["text"].as_str().unwrap().contains("route chat (page)"));
    assert!(burn["blocks"].as_array().unwrap().len() >= 2);
}

#[tokio::test]
async fn webhooks_only_get_the_kinds_they_asked_for() {
    let (opens, opens_url) = start(Receiver::default()).await;
    let (all, all_url) = start(Receiver::default()).await;
    let sender = Alerter::spawn(
        vec![
            Webhook {
                events: Some(vec![
                    "incident_opened".to_string(),
                    "budget_burn".to_string(),
                ]),
                ..hook(&opens_url)
            },
            hook(&all_url),
        ],
        options(),
    );
    sender.send(Alert::IncidentOpened(incident("inc-j")));
    sender.send(Alert::IncidentUpdated {
        incident: incident("inc-j"),
        update: TimelineEntry {
            at: 1_764_400_060_000,
            kind: TimelineKind::Note,
            component: None,
            status: IncidentStatus::Identified,
            message: "provider confirmed".to_string(),
        },
    });
    sender.send(Alert::IncidentResolved(resolved("inc-j")));
    let stats = flushed(&sender).await;
    assert_eq!(opens.kinds(), ["incident_opened"]);
    assert_eq!(
        all.kinds(),
        ["incident_opened", "incident_updated", "incident_resolved"]
    );
    assert_eq!(all.bodies()[1]["update"]["message"], "provider confirmed");
    assert_eq!(stats.delivered, 4);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let (_slow, url) = start(Receiver {
        hang: true,
        ..Receiver::default()
    })
    .await;
    let sender = Alerter::spawn(
        vec![hook(&url)],
        DeliveryOptions {
            queue_capacity: 2,
            timeout: Duration::from_secs(30),
            ..options()
        },
    );
    let started = Instant::now();
    for n in 0..10 {
        sender.send(Alert::IncidentOpened(incident(&format!("inc-k{n}"))));
    }
    assert!(started.elapsed() < Duration::from_millis(100));
    // The worker holds one, the queue two: at least seven dropped.
    assert!(sender.stats().dropped >= 7, "{:?}", sender.stats());
}

/// Backoff sleeps on Tokio's clock: under paused time a run of retries
/// with minute-long backoffs finishes at once. Whether a try ends as a
/// refused connection or (the paused clock jumping ahead) a timeout, both
/// are retried, so the counts are deterministic.
#[tokio::test(start_paused = true)]
async fn backoff_runs_on_tokio_time() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sender = Alerter::spawn(
        vec![hook(&format!("http://127.0.0.1:{port}/hook"))],
        DeliveryOptions {
            max_attempts: 5,
            backoff_base: Duration::from_secs(60),
            backoff_cap: Duration::from_secs(600),
            timeout: Duration::from_secs(3600),
            ..options()
        },
    );
    // The point is that the wall clock barely moves while Tokio's jumps.
    #[expect(
        clippy::disallowed_types,
        reason = "measures real time under paused time"
    )]
    let wall = std::time::Instant::now();
    sender.send(Alert::IncidentOpened(incident("inc-l")));
    sender.flush().await;
    let stats = sender.stats();
    assert_eq!((stats.failed, stats.retried), (1, 4));
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "{:?}",
        wall.elapsed()
    );
}
