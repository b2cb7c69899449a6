//! The gateway's eyes: every finished request becomes a [`RequestRecord`]
//! that feeds the metrics, the request log and the health tracker; a
//! background loop turns the tracker's judgements into component states,
//! incidents, alerts, uptime history and live status-page updates.
//!
//! Nothing here is on a request's critical path except `finish`, which
//! only updates counters, queues the log row and pushes into in-memory
//! windows.

mod cluster;
mod probe;
pub mod process;
mod record;
mod snapshot;
mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use crate::config::GatewayConfig;
use bulwark::observe::record::RequestRecord;
use bulwark::observe::unix_ms_now;
use bulwark_alerts::{AlertSender, Alerter, DeliveryOptions, Webhook};
use bulwark_health::{HealthSettings, HealthTracker, SloSettings, Topology};
use bulwark_metrics::Metrics;
use bulwark_store::{LogSender, LogWriter, Store, StoreError, WriterOptions};
use tokio::sync::broadcast;

pub(crate) use cluster::AdminWord;
pub use record::{Pending, StreamEnd};

/// Stores, alerts on and publishes an incident's change.
pub fn publish_incident_update(observer: &Observer, update: bulwark_health::IncidentUpdate) {
    watch::incident_update(observer, update);
}

/// One health evaluation, now.
pub async fn evaluate_now(observer: &Observer, client: &bulwark::Client) {
    watch::evaluate(observer, client).await;
}

/// What a start-up of the observability side can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("the store `{url}` could not be opened: {source}")]
    Store {
        url: String,
        #[source]
        source: StoreError,
    },
}

#[derive(Debug)]
pub struct Observer {
    pub(crate) metrics: Metrics,
    pub(crate) store: Store,
    log: LogSender,
    pub(crate) alerts: AlertSender,
    health: Mutex<HealthTracker>,
    /// Status changes, as JSON, for `/status/events` subscribers.
    pub(crate) updates: broadcast::Sender<String>,
    pub(crate) log_bodies: bool,
    pub(crate) page_title: String,
    pub(crate) page_url: Option<String>,
    /// What the public surfaces may name (`status_page.show_targets`);
    /// shared with live `/status/events` streams, so that a reload's new
    /// targets stay hidden there too.
    pub(crate) public: Arc<RwLock<bulwark_status::PublicView>>,
    pub(crate) slos: RwLock<HashMap<String, SloSettings>>,
    /// The engine of the current config, for the health loop: a reload
    /// points it at the new one.
    client: RwLock<Weak<bulwark::Client>>,
    /// Counts reloads; a probe loop of an older config ends.
    generation: AtomicU64,
    incidents: tokio::sync::mpsc::UnboundedSender<bulwark::observe::incident::Incident>,
    /// The live incidents, kept here so the status page never waits on
    /// the store for what is happening now.
    pub(crate) recent: Mutex<Vec<bulwark::observe::incident::Incident>>,
    /// The other instances, when `redis:` is set: who judges, and what
    /// they observed.
    pub(crate) cluster: cluster::Cluster,
}

/// Everything, or with `show_targets: false` every route's targets and
/// every provider's name hidden.
fn public_view(config: &GatewayConfig) -> bulwark_status::PublicView {
    let names = bulwark_status::display_names(
        config
            .engine
            .providers
            .iter()
            .map(|(name, provider)| (name.clone(), provider.kind.name())),
    );
    if config.observe.status_page.show_targets {
        return bulwark_status::PublicView::everything().with_provider_names(names);
    }
    let routes = config.engine.routes.iter().map(|(name, route)| {
        let targets = route.targets.iter().map(ToString::to_string);
        (name.clone(), targets)
    });
    bulwark_status::PublicView::without_targets(routes, config.engine.providers.keys().cloned())
        .with_provider_names(names)
}

fn topology(config: &GatewayConfig) -> Topology {
    Topology {
        routes: config
            .engine
            .routes
            .iter()
            .map(|(name, route)| {
                let targets = route.targets.iter().map(ToString::to_string).collect();
                (name.clone(), targets)
            })
            .collect(),
    }
}

fn slo_settings(config: &GatewayConfig) -> HashMap<String, SloSettings> {
    config
        .engine
        .routes
        .iter()
        .filter_map(|(name, route)| {
            let slo = route.slo?;
            Some((
                name.clone(),
                SloSettings {
                    objective: slo.objective,
                    window: slo.window,
                },
            ))
        })
        .collect()
}

/// A lock that only guards a value swapped whole: a panic elsewhere cannot
/// leave it half-written.
fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Observer {
    pub async fn start(
        config: &GatewayConfig,
        client: &Arc<bulwark::Client>,
    ) -> Result<Arc<Observer>, ObserveError> {
        let url = &config.observe.store;
        let store = Store::connect(url)
            .await
            .map_err(|source| ObserveError::Store {
                url: bulwark_store::redact_url(url),
                source,
            })?;
        let (log, _writer) = LogWriter::spawn(store.clone(), WriterOptions::default());
        bulwark_store::spawn_retention(
            store.clone(),
            config.observe.retention,
            Duration::from_secs(3600),
        );
        let topology = topology(config);
        let slos = slo_settings(config);
        let settings: HealthSettings = config.observe.health.clone();
        let cluster = cluster::Cluster::new(client.shared().cloned(), settings.evaluate_every);
        let mut health =
            HealthTracker::new(settings, topology.clone(), slos.clone(), unix_ms_now());
        let recent = match store.incidents(50).await {
            Ok(recent) => recent,
            Err(error) => {
                tracing::warn!("cannot read incidents from the store: {error}");
                Vec::new()
            }
        };
        // An incident still open when the gateway last stopped carries on.
        if let Some(open) = recent.iter().find(|i| !i.status.is_closed()) {
            health.resume(open.clone());
        }
        let metrics = Metrics::from_config(&config.engine);
        // `bulwark check` has refused a bad format or event already.
        let webhooks = config
            .observe
            .webhooks
            .iter()
            .filter_map(|w| {
                Webhook::from_config(w)
                    .inspect_err(|error| tracing::error!(url = %w.url, "webhook left out: {error}"))
                    .ok()
            })
            .collect();
        let alerts = Alerter::spawn(webhooks, DeliveryOptions::default());
        let (incidents, to_store) = tokio::sync::mpsc::unbounded_channel();
        let observer = Arc::new(Observer {
            incidents,
            recent: Mutex::new(recent),
            metrics,
            store,
            log,
            alerts,
            health: Mutex::new(health),
            updates: broadcast::channel(64).0,
            log_bodies: config.observe.log_bodies,
            page_title: config.observe.status_page.title.clone(),
            page_url: config.observe.status_page.url.clone(),
            public: Arc::new(RwLock::new(public_view(config))),
            slos: RwLock::new(slos),
            client: RwLock::new(Arc::downgrade(client)),
            generation: AtomicU64::new(0),
            cluster,
        });
        watch::spawn(&observer, client, to_store);
        cluster::spawn(&observer);
        probe::spawn(&config.engine, &observer, client, 0);
        Ok(observer)
    }

    /// Follows a reloaded config: the health tracker's routes and targets
    /// (a kept component keeps its history, the open incident carries on),
    /// the SLOs, what the public view hides, the metrics' label names and
    /// prices, and the probes, which now go through `client`.
    pub(crate) fn reconfigure(
        self: &Arc<Self>,
        config: &GatewayConfig,
        client: &Arc<bulwark::Client>,
    ) {
        let slos = slo_settings(config);
        self.health()
            .set_topology(topology(config), slos.clone(), unix_ms_now());
        *write(&self.slos) = slos;
        *write(&self.public) = public_view(config);
        self.metrics.reconfigure(&config.engine);
        *write(&self.client) = Arc::downgrade(client);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        probe::spawn(&config.engine, self, client, generation);
    }

    /// The engine the health loop and probes watch.
    pub(crate) fn client(&self) -> Option<Arc<bulwark::Client>> {
        self.client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade()
    }

    /// Whether a probe started at `generation` belongs to the current config.
    pub(crate) fn is_generation(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }

    pub(crate) fn public(&self) -> bulwark_status::PublicView {
        self.public
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn slos(&self) -> HashMap<String, SloSettings> {
        self.slos
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Queues an incident's new version for the store and keeps it for
    /// the status page.
    pub(crate) fn save_incident(&self, incident: bulwark::observe::incident::Incident) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            match recent.iter_mut().find(|i| i.id == incident.id) {
                Some(known) => *known = incident.clone(),
                None => recent.insert(0, incident.clone()),
            }
            recent.truncate(50);
        }
        let _ = self.incidents.send(incident);
    }

    /// An admin's word given to this instance, for the others: the judge
    /// writes an annotation into the incident, and every instance takes a
    /// maintenance switch.
    pub(crate) fn share_admin_word(&self, word: AdminWord) {
        self.cluster.note_admin(word);
    }

    /// Books one finished request everywhere it counts. The client's
    /// strings are capped whoever built the record (a request's own record
    /// comes capped already; capping again changes nothing).
    pub fn finish(&self, mut record: RequestRecord) {
        record.cap_client_fields();
        self.metrics.record(&record);
        self.cluster.note_record(&record);
        let update = self.health().observe(&record);
        if let Some(update) = update {
            watch::incident_update(self, update);
        }
        self.log.send(record);
    }

    pub(crate) fn health(&self) -> MutexGuard<'_, HealthTracker> {
        // A panic while holding the lock must not take health down with it.
        self.health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until every request finished so far is in the store.
    pub async fn flush(&self) {
        self.log.flush().await;
    }

    /// Waits until every alert raised so far is delivered or given up.
    pub async fn flush_alerts(&self) {
        self.alerts.flush().await;
    }

    /// Component and incident changes as they happen, as JSON (what
    /// `/status/events` streams).
    pub fn subscribe_status(&self) -> broadcast::Receiver<String> {
        self.updates.subscribe()
    }

    /// The latest incidents, open and resolved, newest first.
    pub fn recent_incidents(&self) -> Vec<bulwark::observe::incident::Incident> {
        self.recent.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn log_stats(&self) -> bulwark_store::WriterStats {
        self.log.stats()
    }
}
