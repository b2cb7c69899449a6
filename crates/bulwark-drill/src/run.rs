//! Running a drill: simulated providers on the scenario's timeline, the
//! gateway in-process with the team's config (its clocks at the drill's
//! speed), the load through Bulwark and straight to the primary, and
//! everything the gateway did, gathered for the report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark::events::Event;
use bulwark::observe::config::WebhookConfig;
use bulwark::resilience::breaker::BreakerState;
use bulwark_gateway::{Gateway, GatewayConfig};
use bulwark_sim::SimServer;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::clock::Speed;
use crate::compile::sim_config;
use crate::compress::compress;
use crate::instances::Instances;
use crate::load::{Endpoint, Shape, send};
use crate::outcome::{DrillData, Marker, MarkerKind, Path, Sent};
use crate::scenario::{Scenario, WireFormat};
use crate::timeline::{Timeline, TimelineError, TimelineHandle};

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(
        "the scenario's provider `{0}` is not in the config's providers; name the config's providers as the scenario does (or pick another --config)"
    )]
    MissingProvider(String),
    #[error("no route of the config uses the scenario's primary provider `{0}`; pass --route")]
    NoRoute(String),
    #[error("the config has no route `{0}`")]
    UnknownRoute(String),
    #[error("cannot start a simulated provider: {0}")]
    Sim(#[from] bulwark_sim::SimError),
    #[error("cannot start the drill's alert receiver: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the gateway did not start: {0}")]
    Gateway(#[from] bulwark_gateway::StartError),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("--rps must be a positive number of requests per second")]
    BadRate,
    #[error(
        "{0} instances need the config's `redis:` (e.g. `redis: redis://127.0.0.1:6379/0`): it is what makes them one gateway"
    )]
    NeedsRedis(usize),
}

pub struct DrillOptions {
    pub scenario: Scenario,
    pub config: GatewayConfig,
    /// How the config was named on the command line (for the report).
    pub config_name: String,
    pub route: Option<String>,
    pub speed: Speed,
    /// Requests per real second; the scenario's load shape is scaled to it.
    pub rps: Option<f64>,
    /// Stop after this much scenario time.
    pub duration: Option<Duration>,
    /// The request log: in memory unless given.
    pub store: Option<String>,
    /// Where the gateway listens (the demo keeps it on 127.0.0.1:8080).
    pub listen: String,
    pub seed: u64,
    /// Gateway instances sharing the config's Redis (1: one process, as
    /// the config alone runs). The load is spread over them.
    pub instances: usize,
}

/// What the progress display shows, about four times a second.
#[derive(Debug, Clone)]
pub struct Progress {
    pub elapsed: Duration,
    pub total: Duration,
    /// The primary's phase now.
    pub phase: String,
    pub sent: u64,
    pub bulwark_ok: u64,
    pub bulwark_done: u64,
    pub direct_ok: u64,
    pub direct_done: u64,
}

/// A finished drill. The gateway and simulated providers keep running
/// (in their last phase) until this is dropped, so its status page can
/// still be looked at.
pub struct DrillRun {
    pub data: DrillData,
    /// The first instance, whose status page the demo shows.
    pub gateway: Gateway,
    pub base: String,
    _sims: Vec<SimServer>,
    _instances: Instances,
}

pub async fn run(
    options: DrillOptions,
    progress: impl Fn(&Progress),
) -> Result<DrillRun, DrillError> {
    let DrillOptions {
        scenario,
        mut config,
        config_name,
        route,
        speed,
        rps,
        duration,
        store,
        listen,
        seed,
        instances: count,
    } = options;
    let config_name = crate::instances::describe(config_name, count);
    crate::instances::isolate(&mut config, count)?;
    let factor = speed.factor();
    let route = match route {
        Some(route) if config.engine.routes.contains_key(&route) => route,
        Some(route) => return Err(DrillError::UnknownRoute(route)),
        None => config
            .engine
            .routes
            .iter()
            .find(|(_, r)| r.targets.iter().any(|t| t.provider == scenario.primary))
            .map(|(name, _)| name.clone())
            .ok_or_else(|| DrillError::NoRoute(scenario.primary.clone()))?,
    };

    let rate_scale = match rps {
        Some(r) if r > 0.0 && r.is_finite() => r / scenario.load.rps.max(f64::MIN_POSITIVE),
        Some(_) => return Err(DrillError::BadRate),
        None => 1.0,
    };
    let paced = quotas_in_real_time(&scenario, factor, rate_scale);

    // One simulator per provider, and one more for the primary, called
    // directly by the baseline so the two paths do not share quotas.
    let mut sims = HashMap::new();
    let mut servers = Vec::new();
    for (name, provider) in &paced.providers {
        let Some(settings) = config.engine.providers.get_mut(name) else {
            return Err(DrillError::MissingProvider(name.clone()));
        };
        let mut sim = sim_config(provider, speed);
        crate::clouds::expect_credentials(settings, &mut sim);
        let server = SimServer::start("127.0.0.1:0", sim).await?;
        // A cloud's base URL is its origin: its paths are its own.
        let base_path = match settings.kind.is_cloud() {
            true => "",
            false => bulwark::wire::upstream(settings.kind).base_path(),
        };
        settings.base_url = format!("{}{base_path}", server.url());
        crate::clouds::point_at(settings, &server.url());
        sims.insert(name.clone(), server.sim.clone());
        servers.push(server);
    }
    let primary = paced
        .providers
        .get(&scenario.primary)
        .ok_or_else(|| DrillError::MissingProvider(scenario.primary.clone()))?;
    let direct_server = SimServer::start("127.0.0.1:0", sim_config(primary, speed)).await?;
    let direct = Endpoint {
        base: direct_server.url(),
        model: primary
            .models
            .first()
            .cloned()
            .unwrap_or_else(|| "model".into()),
        format: primary.format,
    };
    let direct_sim = direct_server.sim.clone();
    servers.push(direct_server);

    // The drill hears the gateway's alerts like the team would.
    let alerts = AlertInbox::start().await?;
    config.observe.webhooks.push(WebhookConfig {
        url: alerts.url.clone(),
        format: "generic".into(),
        events: None,
    });
    // Each instance has its own log in memory unless one is given.
    let shared_store = store.is_some();
    config.observe.store = store.unwrap_or_else(|| "sqlite::memory:".into());
    let mean_rps = scenario.load.rps * rate_scale;
    compress(&mut config, factor, mean_rps);
    let deadline = config
        .engine
        .routes
        .get(&route)
        .map_or(Duration::from_secs(60), |r| r.policy.timeouts.deadline);

    let instances = crate::instances::start(&config, count, &listen).await?;
    let Some(gateway) = instances.gateways.first().cloned() else {
        return Err(DrillError::NeedsRedis(count));
    };
    let base = instances.bases.first().cloned().unwrap_or_default();

    let started = Instant::now();
    let markers = Arc::new(Mutex::new(Vec::new()));
    for (index, gateway) in instances.gateways.iter().enumerate() {
        // Breakers are shared: the first instance's show the deployment's.
        watch_markers(gateway, index == 0, started, Arc::clone(&markers));
    }
    alerts.mark_from(started, Arc::clone(&markers));

    let mut direct_scenario = paced.clone();
    direct_scenario
        .providers
        .retain(|name, _| name == &scenario.primary);
    let timeline = Timeline::start(&paced, speed, sims.clone())?;
    let _direct_timeline = Timeline::start(
        &direct_scenario,
        speed,
        HashMap::from([(scenario.primary.clone(), direct_sim)]),
    )?;
    let total = duration.unwrap_or(scenario.duration).min(scenario.duration);
    let wall_total = total.div_f64(factor);

    let bulwark_endpoints = instances
        .bases
        .iter()
        .map(|base| Endpoint {
            base: base.clone(),
            model: route.clone(),
            format: WireFormat::Openai,
        })
        .collect();
    let sent = drive_load(
        &scenario,
        &timeline,
        LoadPlan {
            factor,
            rate_scale,
            wall_total,
            deadline,
            seed,
            bulwark: bulwark_endpoints,
            direct,
            started,
        },
        &progress,
    )
    .await;

    // Judge health once more, so what the load saw is in the report.
    instances.settle().await;
    let wall_duration = started.elapsed();

    let upstream_calls = scenario
        .providers
        .keys()
        .filter_map(|name| Some((name.clone(), sims.get(name)?.request_count() as u64)))
        .collect();
    // One shared log is read once; in-memory logs are one per instance.
    let logs = match shared_store {
        true => &instances.gateways[..1],
        false => &instances.gateways[..],
    };
    let mut allowance = 0;
    for gateway in logs {
        allowance += retry_allowance(gateway, &config, wall_duration).await;
    }
    let incidents = instances.incidents();
    let spans = timeline.phases().to_vec();
    let primary_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.provider == scenario.primary)
        .collect();
    // Trouble starts with the primary's second phase; in a scenario where
    // the providers stay the same and the load changes (a storm), with the
    // load's second phase.
    let load_change = scenario.load.phases.first().and_then(|p| p.until);
    let outage_start = primary_spans
        .get(1)
        .map(|s| s.start)
        .or(load_change)
        .filter(|s| *s < total);
    let recovery_start = primary_spans
        .last()
        .filter(|s| primary_spans.len() > 2 && s.start < total)
        .map(|s| s.start);
    let mut markers = markers.lock().map(|m| m.clone()).unwrap_or_default();
    markers.sort_by_key(|m| m.at);
    let data = DrillData {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        config_name,
        speed: factor,
        wall_duration,
        primary: scenario.primary.clone(),
        route,
        deadline: deadline.mul_f64(factor),
        phases: spans,
        outage_start,
        recovery_start,
        sent,
        markers,
        upstream_calls,
        retry_budget_allowance: allowance,
        incidents,
    };
    Ok(DrillRun {
        data,
        gateway,
        base,
        _sims: servers,
        _instances: instances,
    })
}

/// The scenario with each `rpm` quota kept in proportion to the load: the
/// load is sent at real requests per second (scaled by `--rps`), and the
/// simulator counts a quota over a window compressed by `speed`, so the
/// quota per window shrinks by `speed` and grows with the load's scale.
fn quotas_in_real_time(scenario: &Scenario, speed: f64, rate_scale: f64) -> Scenario {
    let mut paced = scenario.clone();
    let adapt = |rpm: &mut Option<u64>| {
        if let Some(quota) = rpm {
            *quota = ((*quota as f64) * rate_scale / speed).round().max(1.0) as u64;
        }
    };
    for provider in paced.providers.values_mut() {
        for phase in &mut provider.phases {
            adapt(&mut phase.rpm);
            if let Some(flap) = &mut phase.flap {
                adapt(&mut flap.down.rpm);
            }
        }
    }
    paced
}

struct LoadPlan {
    factor: f64,
    rate_scale: f64,
    wall_total: Duration,
    deadline: Duration,
    seed: u64,
    /// One per instance, taken in turn (a load balancer's round robin).
    bulwark: Vec<Endpoint>,
    direct: Endpoint,
    started: Instant,
}

/// Sends the load open-loop (a slow answer does not slow the next
/// request, as with real users) and collects every outcome.
async fn drive_load(
    scenario: &Scenario,
    timeline: &TimelineHandle,
    plan: LoadPlan,
    progress: &impl Fn(&Progress),
) -> Vec<Sent> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel::<Sent>();
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let mut seq = 0u64;
    let mut next = plan.started;
    let mut last_progress = plan.started;
    let mut outcomes = Vec::new();
    let mut counts = Progress {
        elapsed: Duration::ZERO,
        total: plan.wall_total.mul_f64(plan.factor),
        phase: String::new(),
        sent: 0,
        bulwark_ok: 0,
        bulwark_done: 0,
        direct_ok: 0,
        direct_done: 0,
    };
    // A request may run up to the deadline, plus a little to hear back.
    let client_timeout = plan.deadline + Duration::from_millis(200);
    loop {
        let now = Instant::now();
        let elapsed = now.duration_since(plan.started);
        if elapsed >= plan.wall_total {
            break;
        }
        if now >= next {
            let scenario_time = elapsed.mul_f64(plan.factor);
            let rate = scenario.load.rps_at(scenario_time) * plan.rate_scale;
            let shape = Shape::draw(
                seq,
                scenario.load.stream_share,
                scenario.load.anthropic_client_share,
                &mut rng,
            );
            seq += 1;
            let instance = &plan.bulwark[seq as usize % plan.bulwark.len().max(1)];
            for (path, endpoint) in [(Path::Bulwark, instance), (Path::Direct, &plan.direct)] {
                let (http, shape, endpoint, tx) =
                    (http.clone(), shape.clone(), endpoint.clone(), tx.clone());
                let started = plan.started;
                tokio::spawn(async move {
                    let outcome =
                        send(&http, &shape, path, &endpoint, client_timeout, started).await;
                    let _ = tx.send(outcome);
                });
            }
            counts.sent = seq;
            // Evenly spaced with a little jitter: bursts come from the
            // scenario's load phases, not from the generator.
            let gap = if rate > 0.0 { 1.0 / rate } else { 0.25 };
            next += Duration::from_secs_f64(gap * (0.8 + 0.4 * rng.f64()));
        }
        while let Ok(outcome) = rx.try_recv() {
            tally(&mut counts, &outcome);
            outcomes.push(outcome);
        }
        if now.duration_since(last_progress) >= Duration::from_millis(250) {
            last_progress = now;
            counts.elapsed = elapsed.mul_f64(plan.factor);
            counts.phase = timeline
                .current_phase(&scenario.primary)
                .unwrap_or_default()
                .to_string();
            progress(&counts);
        }
        let wake = next.min(now + Duration::from_millis(50));
        tokio::time::sleep_until(wake).await;
    }
    drop(tx);
    // The last requests finish within the deadline.
    while let Some(outcome) = rx.recv().await {
        tally(&mut counts, &outcome);
        outcomes.push(outcome);
    }
    counts.elapsed = counts.total;
    progress(&counts);
    outcomes.sort_by_key(|o| (o.path == Path::Direct, o.seq));
    // What a user would have waited, in the incident's own time.
    for outcome in &mut outcomes {
        outcome.latency = outcome.latency.mul_f64(plan.factor);
        outcome.first_token = outcome.first_token.map(|t| t.mul_f64(plan.factor));
    }
    outcomes
}

fn tally(counts: &mut Progress, outcome: &Sent) {
    match outcome.path {
        Path::Bulwark => {
            counts.bulwark_done += 1;
            counts.bulwark_ok += u64::from(outcome.ok);
        }
        Path::Direct => {
            counts.direct_done += 1;
            counts.direct_ok += u64::from(outcome.ok);
        }
    }
}

/// Upstream calls the retry budget allows: per target, one call for each
/// request that reached it first-hand, plus the budget's share of those
/// and its floor rate over the drill.
async fn retry_allowance(gateway: &Gateway, config: &GatewayConfig, wall: Duration) -> u64 {
    let Ok(rows) = gateway
        .observer()
        .store()
        .requests_between(0, i64::MAX, None)
        .await
    else {
        return 0;
    };
    let mut first_hand: HashMap<String, u64> = HashMap::new();
    for row in &rows {
        let mut previous: Option<&str> = None;
        for attempt in &row.attempts {
            if previous != Some(attempt.target.as_str()) && !attempt.hedge {
                *first_hand.entry(attempt.target.clone()).or_default() += 1;
            }
            previous = Some(attempt.target.as_str());
        }
    }
    let budget = &config.engine.retry_budget;
    first_hand
        .values()
        .map(|&n| n as f64 * (1.0 + budget.ratio) + budget.min_per_second * wall.as_secs_f64())
        .sum::<f64>()
        .ceil() as u64
}

/// Turns the gateway's breaker and incident changes into chart markers.
fn watch_markers(
    gateway: &Gateway,
    breakers_too: bool,
    started: Instant,
    markers: Arc<Mutex<Vec<Marker>>>,
) {
    let mut events = gateway.subscribe();
    let breakers = Arc::clone(&markers);
    tokio::spawn(async move {
        if !breakers_too {
            return;
        }
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            if let Event::Breaker { target, to, .. } = event {
                let kind = match to {
                    BreakerState::Open => MarkerKind::BreakerOpened,
                    BreakerState::Closed => MarkerKind::BreakerClosed,
                    BreakerState::HalfOpen => continue,
                };
                push(
                    &breakers,
                    Marker {
                        at: started.elapsed(),
                        kind,
                        label: target,
                    },
                );
            }
        }
    });
    let mut updates = gateway.observer().subscribe_status();
    tokio::spawn(async move {
        loop {
            let update = match updates.recv().await {
                Ok(update) => update,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&update) else {
                continue;
            };
            if value["type"] != "incident" {
                continue;
            }
            let kind = match value["change"].as_str() {
                Some("opened") => MarkerKind::IncidentOpened,
                Some("resolved") => MarkerKind::IncidentResolved,
                _ => continue,
            };
            push(
                &markers,
                Marker {
                    at: started.elapsed(),
                    kind,
                    label: value["id"].as_str().unwrap_or_default().to_string(),
                },
            );
        }
    });
}

/// Adds a marker; an incident's opening or resolution heard from several
/// instances is one marker.
fn push(markers: &Mutex<Vec<Marker>>, marker: Marker) {
    let Ok(mut markers) = markers.lock() else {
        return;
    };
    let incident = matches!(
        marker.kind,
        MarkerKind::IncidentOpened | MarkerKind::IncidentResolved
    );
    if incident
        && markers
            .iter()
            .any(|m| m.kind == marker.kind && m.label == marker.label)
    {
        return;
    }
    markers.push(marker);
}

/// A webhook receiver inside the drill: when alerts arrive.
struct AlertInbox {
    url: String,
    arrivals: mpsc::UnboundedReceiver<String>,
}

impl AlertInbox {
    async fn start() -> std::io::Result<AlertInbox> {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/alerts",
            axum::routing::post(move |body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let kind = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["kind"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    let _ = tx.send(kind);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/alerts", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(AlertInbox { url, arrivals })
    }

    fn mark_from(self, started: Instant, markers: Arc<Mutex<Vec<Marker>>>) {
        let mut arrivals = self.arrivals;
        tokio::spawn(async move {
            while let Some(kind) = arrivals.recv().await {
                push(
                    &markers,
                    Marker {
                        at: started.elapsed(),
                        kind: MarkerKind::AlertDelivered,
                        label: kind,
                    },
                );
            }
        });
    }
}
