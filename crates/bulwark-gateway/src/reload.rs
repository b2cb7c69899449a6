//! Config reload: on SIGHUP, `POST /admin/reload` or a change of the file
//! (`bulwark serve --watch-config`), the file the gateway started from is
//! read again (with `${VAR}` interpolation), validated as a whole, and
//! swapped in at once. A request takes the config's part of the gateway
//! ([`Live`]) once at its start, so whatever is in flight finishes on the
//! config it started with. A config with any problem is refused, each
//! reason logged as `bulwark check` prints it, and the old one keeps
//! serving.
//!
//! What a reload keeps: the response cache, the engine's event bus (and so
//! its subscribers), the state of every target whose settings did not
//! change (breaker, retry budget, concurrency, latency, quotas), each
//! unchanged client key's quota, and the health history and open incident
//! of every component still configured. Settings read once at start are
//! listed by [`RESTART_ONLY`]: a reload that changes one applies the rest
//! and warns, naming each.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bulwark::config::ConfigError;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::provider::ProviderBuildError;
use bulwark::reload::{Changes, TableDiff};
use serde_json::{Value, json};

use crate::{ClientFormat, Gateway, GatewayConfig, Live, respond};

/// The settings a running gateway cannot change: the listener, the store
/// and the loops started with the gateway hold them. Each is named by its
/// config key.
pub const RESTART_ONLY: &[&str] = &[
    "listen",
    "server",
    "shutdown_grace",
    "store",
    "retention",
    "log_bodies",
    "health",
    "alerts",
    "status_page.title",
    "status_page.url",
    "otel",
    "conversations",
    "cache.max_bytes",
    "redis",
];

/// What an applied reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    pub routes: Changes,
    pub targets: Changes,
    /// Changed settings that keep their old value until a restart.
    pub restart_needed: Vec<&'static str>,
}

impl ReloadSummary {
    pub fn to_json(&self) -> Value {
        let changes = |c: &Changes| json!({"added": c.added, "removed": c.removed, "changed": c.changed, "kept": c.kept});
        json!({
            "status": "applied",
            "routes": changes(&self.routes),
            "targets": changes(&self.targets),
            "restart_needed": self.restart_needed,
        })
    }
}

/// Why a reload was refused; the config before it keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Invalid(ConfigError),
    #[error(transparent)]
    Provider(#[from] ProviderBuildError),
    #[error("this gateway was not started from a config file, so there is no file to reload from")]
    NoFile,
    #[error(
        "the new config has no client keys, and this gateway listens beyond loopback: keep `keys:`, or restart with --insecure-open if something in front authenticates callers"
    )]
    WouldOpen,
}

impl ReloadError {
    /// Every reason, one a line, as `bulwark check` prints them.
    pub fn reasons(&self) -> Vec<String> {
        match self {
            ReloadError::Invalid(error) => error
                .to_string()
                .lines()
                .skip(1)
                .map(|line| line.trim().to_string())
                .filter(|line| !line.is_empty())
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// The config file a gateway reloads from, and the hash of the content it
/// last read there (applied or refused), which `watch_config` compares with.
#[derive(Debug, Clone)]
pub(crate) struct ConfigFile {
    path: PathBuf,
    last_read: Option<blake3::Hash>,
}

impl Gateway {
    /// The file reloads read: the one `bulwark serve` was started with,
    /// read (and so loaded) just before.
    pub fn set_config_path(&self, path: PathBuf) {
        let read = std::fs::read(&path).ok();
        self.set_config_file(path, read.as_deref());
    }

    /// Like [`Gateway::set_config_path`], with the content the running
    /// config was loaded from (read before the gateway started): an edit
    /// made while it started is then seen by the watcher.
    pub fn set_config_file(&self, path: PathBuf, loaded_from: Option<&[u8]>) {
        let last_read = loaded_from.map(blake3::hash);
        *self.config_file() = Some(ConfigFile { path, last_read });
    }

    pub fn config_path(&self) -> Option<PathBuf> {
        self.config_file().as_ref().map(|file| file.path.clone())
    }

    fn config_file(&self) -> std::sync::RwLockWriteGuard<'_, Option<ConfigFile>> {
        self.config_file
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The hash of what was last read from the config file.
    fn last_read(&self) -> Option<blake3::Hash> {
        self.config_file().as_ref().and_then(|file| file.last_read)
    }

    /// Reads the config file again and applies it (see the module's
    /// documentation); refused, the old config keeps serving.
    pub async fn reload_from_file(&self) -> Result<ReloadSummary, ReloadError> {
        // One at a time, from the read on: a slower reload must not apply
        // an older read of the file after a newer one.
        let _one = self.reloading.lock().await;
        let result = match self.read_config_file().await {
            Ok(config) => self.apply(config).await,
            Err(error) => Err(error),
        };
        self.report(&result);
        result
    }

    /// The config file, read and validated as `bulwark serve` does at start.
    async fn read_config_file(&self) -> Result<GatewayConfig, ReloadError> {
        let path = self.config_path().ok_or(ReloadError::NoFile)?;
        let name = path.display().to_string();
        let read = tokio::fs::read_to_string(&path).await.map_err(|error| {
            ReloadError::Invalid(ConfigError::new(
                name.clone(),
                vec![bulwark::config::Issue::new(
                    "",
                    format!("cannot read the file: {error}"),
                )],
            ))
        })?;
        if let Some(file) = self.config_file().as_mut() {
            file.last_read = Some(blake3::hash(read.as_bytes()));
        }
        GatewayConfig::from_yaml(&read, &name, &|var| std::env::var(var).ok())
            .map_err(ReloadError::Invalid)
    }

    /// Applies a config already read and validated.
    pub async fn reload(&self, config: GatewayConfig) -> Result<ReloadSummary, ReloadError> {
        let _one = self.reloading.lock().await;
        let result = self.apply(config).await;
        self.report(&result);
        result
    }

    /// Called with `reloading` held: each reload builds on the state the
    /// one before left.
    async fn apply(&self, config: GatewayConfig) -> Result<ReloadSummary, ReloadError> {
        let old = self.live();
        let (client, TableDiff { routes, targets }) = old.client.reloaded(&config.engine)?;
        let client = Arc::new(client);
        let restart_needed = restart_needed(&self.started, &config);
        let auth = old.auth.reloaded(config.keys.clone());
        if auth.is_open()
            && self
                .keys_required
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(ReloadError::WouldOpen);
        }
        let live = Live {
            client: Arc::clone(&client),
            auth: Arc::new(auth),
            max_request_bytes: config.max_request_bytes,
            admin_key: config.admin_key,
            metrics_key: config.metrics_key,
            config,
        };
        self.observer.reconfigure(&live.config, &client);
        let now_known: std::collections::HashSet<String> = client
            .target_states()
            .into_iter()
            .map(|(label, _)| label)
            .collect();
        let gone: Vec<String> = old
            .client
            .target_states()
            .into_iter()
            .map(|(label, _)| label)
            .filter(|label| !now_known.contains(label))
            .collect();
        self.observer.metrics.forget(&gone, &routes.removed);
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(live);
        Ok(ReloadSummary {
            routes,
            targets,
            restart_needed,
        })
    }

    fn report(&self, result: &Result<ReloadSummary, ReloadError>) {
        let now = bulwark::observe::unix_ms_now() / 1000;
        match result {
            Ok(summary) => {
                self.observer.metrics.config_reloaded(true, now);
                for field in &summary.restart_needed {
                    tracing::warn!(
                        "config reload: `{field}` changed, but takes effect only on restart; the old value stays in use"
                    );
                }
                let count = |c: &Changes| {
                    format!(
                        "{} added, {} removed, {} changed, {} kept",
                        c.added.len(),
                        c.removed.len(),
                        c.changed.len(),
                        c.kept.len()
                    )
                };
                tracing::info!(
                    "config reloaded: routes {}; targets {}",
                    count(&summary.routes),
                    count(&summary.targets)
                );
            }
            Err(error) => {
                self.observer.metrics.config_reloaded(false, now);
                for reason in error.reasons() {
                    tracing::error!("config reload refused: {reason}");
                }
                tracing::error!("config reload refused; the config before it keeps serving");
            }
        }
    }
}

/// The [`RESTART_ONLY`] settings that differ between the config the gateway
/// started with and `new`.
fn restart_needed(started: &GatewayConfig, new: &GatewayConfig) -> Vec<&'static str> {
    let (a, b) = (&started.observe, &new.observe);
    let differs = [
        started.listen != new.listen,
        started.server != new.server,
        started.shutdown_grace != new.shutdown_grace,
        a.store != b.store,
        a.retention != b.retention,
        a.log_bodies != b.log_bodies,
        a.health != b.health,
        a.webhooks != b.webhooks,
        a.status_page.title != b.status_page.title,
        a.status_page.url != b.status_page.url,
        started.otel != new.otel,
        started.conversations != new.conversations,
        started.engine.cache_max_bytes != new.engine.cache_max_bytes,
        started.engine.shared != new.engine.shared,
    ];
    RESTART_ONLY
        .iter()
        .zip(differs)
        .filter_map(|(field, differs)| differs.then_some(*field))
        .collect()
}

/// `POST /admin/reload`: reloads the config file; 200 with what changed,
/// or 422 with every reason it was refused.
pub(crate) async fn admin_reload(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Err(error) = crate::admin::authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    match gateway.reload_from_file().await {
        Ok(summary) => Json(summary.to_json()).into_response(),
        Err(ReloadError::NoFile) => respond::error(
            ClientFormat::OpenAi,
            &ApiError::new(ErrorKind::InvalidRequest, ReloadError::NoFile.to_string()),
            0,
        ),
        Err(error) => {
            let reasons = error.reasons();
            let body = json!({
                "error": {
                    "message": format!(
                        "the config was refused ({} problem{}); the config before it keeps serving: fix the file and reload again",
                        reasons.len(),
                        if reasons.len() == 1 { "" } else { "s" }
                    ),
                    "type": "invalid_request_error",
                    "code": "config_refused",
                    "reasons": reasons,
                }
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

/// Reloads whenever the config file's content changes, checking every
/// `every`. The file is read by its path each time, so an editor that
/// writes a new file and renames it over the old, or a Kubernetes
/// ConfigMap whose symlinks are swapped, is seen like an edit in place. A
/// file that cannot be read for a moment (mid-swap) is tried again at the
/// next check; a refused content is not tried again until it changes.
/// Runs until the gateway's runtime stops.
pub async fn watch_config(gateway: Gateway, every: Duration) {
    let Some(path) = gateway.config_path() else {
        tracing::warn!("--watch-config: no config file to watch");
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A new content is applied only once it reads the same on two checks in
    // a row: a file being written (truncated, then filled in pieces) can
    // pass for a valid but shorter config for a moment.
    let mut settling = None;
    loop {
        ticks.tick().await;
        let content = match tokio::fs::read(&path).await {
            Ok(content) => blake3::hash(&content),
            Err(error) => {
                tracing::debug!(
                    "--watch-config: cannot read {} now: {error}",
                    path.display()
                );
                continue;
            }
        };
        // Compared with what the last reload (or the start) read, so a
        // change made before this loop first looked is not missed, and a
        // SIGHUP's reload is not done twice.
        if gateway.last_read() == Some(content) {
            settling = None;
            continue;
        }
        if settling != Some(content) {
            settling = Some(content);
            continue;
        }
        settling = None;
        tracing::info!("{} changed; reloading", path.display());
        // Refused or applied, it is reported and logged already.
        let _ = gateway.reload_from_file().await;
    }
}
