//! Active probes: a one-token completion to a target at an interval, so a
//! target no traffic reaches still has a true state on the status page.
//! Probes go through the engine like any request (a target whose breaker
//! is open is not called), and are logged with `client_format: probe`.

use std::sync::{Arc, Weak};

use bulwark::Client;
use bulwark::RequestOptions;
use bulwark::api::{ChatRequest, Message, Role};
use bulwark::config::Config;
use bulwark::observe::record::RequestRecord;
use bulwark::observe::{millis, unix_ms_now};

use super::Observer;

/// Starts the probes of one config; they end once a reload starts those of
/// the next (`generation` is the observer's count of reloads).
pub(crate) fn spawn(
    config: &Config,
    observer: &Arc<Observer>,
    client: &Arc<Client>,
    generation: u64,
) {
    for (provider, settings) in &config.providers {
        let Some(probe) = &settings.probe else {
            continue;
        };
        let model = probe.model.clone().or_else(|| {
            config
                .routes
                .values()
                .flat_map(|r| &r.targets)
                .find(|t| &t.provider == provider)
                .map(|t| t.model.clone())
        });
        let Some(model) = model else {
            tracing::warn!(provider = %provider, "probe configured but no route uses this provider and no `probe.model` is set; not probing");
            continue;
        };
        let target = format!("{provider}/{model}");
        let every = probe.every;
        let (observer, client) = (Arc::downgrade(observer), Arc::downgrade(client));
        tokio::spawn(async move {
            // At start a probe goes out at once; after a reload the next
            // one waits its period, so reloads never multiply paid calls.
            let first = if generation == 0 {
                tokio::time::Instant::now()
            } else {
                tokio::time::Instant::now() + every
            };
            let mut ticks = tokio::time::interval_at(first, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let current = observer
                    .upgrade()
                    .is_some_and(|o| o.is_generation(generation));
                if !current || !probe_once(&observer, &client, &target).await {
                    return;
                }
            }
        });
    }
}

/// One probe; `false` once the gateway is gone.
async fn probe_once(observer: &Weak<Observer>, client: &Weak<Client>, target: &str) -> bool {
    let Some(client) = client.upgrade() else {
        return false;
    };
    let mut request = ChatRequest::new(target, vec![Message::text(Role::User, "ping")]);
    request.max_tokens = Some(1);
    request.temperature = Some(0.0);
    let at = unix_ms_now();
    let started = tokio::time::Instant::now();
    let result = client.chat_with(request, RequestOptions::default()).await;
    drop(client);
    let Some(observer) = observer.upgrade() else {
        return false;
    };
    let (status, error_class, attempts) = match result {
        Ok(served) => (200, None, served.attempt_log),
        Err(failed) => (
            failed.error.status,
            Some(
                failed
                    .failures
                    .last()
                    .map_or("unavailable", |f| f.class())
                    .to_string(),
            ),
            failed.attempt_log,
        ),
    };
    observer.finish(RequestRecord {
        id: format!("probe_{:016x}", fastrand::u64(..)),
        at,
        route: target.to_string(),
        client_format: "probe".into(),
        status,
        error_class,
        target: Some(target.to_string()),
        latency_ms: millis(started.elapsed()),
        attempts,
        ..RequestRecord::default()
    });
    true
}
