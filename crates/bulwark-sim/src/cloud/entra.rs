//! Microsoft Entra ID's token endpoint, as far as a daemon app uses it:
//! `POST /{tenant}/oauth2/v2.0/token` with the client-credentials grant
//! (form fields `grant_type`, `client_id`, `client_secret`, `scope`).
//!
//! Tokens are opaque random strings remembered with their expiry (tokio's
//! clock, so paused-time tests reach it); Azure's paths accept only those.
//! Token requests are not in the request log: their bodies hold the secret.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::azure::json_response;
use crate::state::Sim;

/// The scope Azure OpenAI tokens are asked for.
pub(crate) const COGNITIVE_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

impl Sim {
    /// When each successful Entra grant was made (tokio's clock), oldest
    /// first: a test tells renewal ahead of expiry, and no stampede, from
    /// the gaps.
    pub fn entra_grant_times(&self) -> Vec<Instant> {
        self.entra().grant_times()
    }
}

/// Issued tokens, how many grants succeeded and when.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Instant>>,
    granted_at: Mutex<Vec<Instant>>,
    grants: AtomicU64,
}

impl Tokens {
    /// A new token valid for `ttl`; expired ones are forgotten on the way.
    pub(crate) fn issue(&self, ttl: Duration) -> String {
        let token = format!(
            "sim-entra.{:032x}{:032x}",
            fastrand::u128(..),
            fastrand::u128(..)
        );
        let now = Instant::now();
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued.retain(|_, expires| *expires > now);
        issued.insert(token.clone(), now + ttl);
        drop(issued);
        self.granted_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(now);
        self.grants.fetch_add(1, Ordering::Relaxed);
        token
    }

    /// Whether `token` was issued here and has not expired.
    pub(crate) fn valid(&self, token: &str) -> bool {
        let issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }

    pub(crate) fn grants(&self) -> u64 {
        self.grants.load(Ordering::Relaxed)
    }

    pub(crate) fn grant_times(&self) -> Vec<Instant> {
        self.granted_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Entra's error body: an OAuth error plus its AADSTS code.
fn refused(status: u16, error: &str, code: u64, description: &str) -> Response {
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": crate::clock::rfc3339(crate::clock::unix_secs()),
            "trace_id": format!("{:032x}", fastrand::u128(..)),
            "correlation_id": format!("{:032x}", fastrand::u128(..)),
        }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`, checked in Entra's order: tenant,
/// grant type, client, secret, scope.
pub(crate) async fn token(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let config = sim.config();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let Some(azure) = config.azure.filter(|a| a.tenant_id == tenant) else {
        return refused(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    };
    match field("grant_type") {
        "client_credentials" => {}
        "" => {
            return refused(
                400,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
        _ => {
            return refused(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            );
        }
    }
    let client_id = field("client_id");
    if client_id.is_empty() || client_id != azure.client_id {
        return refused(
            400,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    if azure.client_secret.is_empty() || field("client_secret") != azure.client_secret {
        return refused(
            401,
            "invalid_client",
            7_000_215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        );
    }
    let scope = field("scope");
    if scope != COGNITIVE_SCOPE {
        return refused(
            400,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    let ttl = azure.token_ttl_secs;
    let access_token = sim.entra().issue(Duration::from_secs(ttl));
    json_response(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": ttl,
            "ext_expires_in": ttl,
            "access_token": access_token,
        }),
    )
}

/// `GET /_sim/azure`: how many tokens were granted, for tests that check
/// a client refreshed (or did not).
pub(crate) async fn stats(State(sim): State<Sim>) -> Response {
    let body: Value = json!({"entra_grants": sim.entra().grants()});
    json_response(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokens_expire_and_count() {
        let tokens = Tokens::default();
        let t0 = Instant::now();
        let token = tokens.issue(Duration::from_secs(10));
        assert!(tokens.valid(&token));
        assert!(!tokens.valid("sim-entra.forged"));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!tokens.valid(&token));
        let second = tokens.issue(Duration::from_secs(10));
        assert_ne!(second, token);
        assert_eq!(tokens.grants(), 2);
        assert_eq!(
            tokens.grant_times(),
            [t0, t0 + Duration::from_secs(11)],
            "each grant at its own time"
        );
    }
}
