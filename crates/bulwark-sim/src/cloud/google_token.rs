//! Google's OAuth token endpoint for service accounts (`POST /token`, the
//! JWT-bearer grant), and the access tokens it hands out, which the Vertex
//! paths then demand.
//!
//! The simulator owns one service account, backed by a TEST-ONLY RSA key
//! pair committed beside this file (generated once with openssl; it guards
//! nothing). [`service_account_json`] writes the file a client would be
//! given, so the gateway signs with the private half and the endpoint checks
//! the signature with the public half, as Google does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cloud::vertex::VertexSimConfig;
use crate::state::Sim;

/// The private half: handed out in the service-account file, never used by
/// the simulator itself. TEST-ONLY, committed on purpose.
const PRIVATE_KEY_PEM: &str = include_str!("sim-test-service-account.key.pem");
/// The public half the token endpoint verifies assertions with.
const PUBLIC_KEY_PEM: &str = include_str!("sim-test-service-account.pub.pem");
/// The key id in the service-account file; a JWT header's `kid`, when sent,
/// must name it.
pub(crate) const PRIVATE_KEY_ID: &str = "sim-test-service-account-key-1";

pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google refuses assertions meant to live longer than an hour.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// The audience Google's own client libraries always sign for, whatever
/// the key file's `token_uri` (google-auth's `_GOOGLE_OAUTH2_TOKEN_ENDPOINT`);
/// Google accepts it, so the simulator does too.
const GOOGLE_TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
/// How far a client's clock may run ahead of Google's.
const CLOCK_SKEW_SECS: i64 = 300;

/// The complete service-account JSON file for the simulator's account, its
/// `token_uri` pointing at `token_uri` (e.g. `http://127.0.0.1:PORT/token`).
pub(crate) fn service_account_json(vertex: &VertexSimConfig, token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": vertex.project,
        "private_key_id": PRIVATE_KEY_ID,
        "private_key": PRIVATE_KEY_PEM,
        "client_email": vertex.client_email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com"
    })
    .to_string()
}

impl Sim {
    /// The simulator's service-account JSON file (TEST-ONLY key), its
    /// `token_uri` set to `token_uri`, usually `{sim url}/token`. Its
    /// project and account are those of [`SimConfig::vertex`](crate::SimConfig::vertex)
    /// (or the defaults).
    pub fn service_account_json(&self, token_uri: &str) -> String {
        service_account_json(&self.config().vertex.unwrap_or_default(), token_uri)
    }

    /// Access tokens `POST /token` has granted since start.
    pub fn token_grants(&self) -> u64 {
        self.google_tokens().grants()
    }

    /// When each of those grants was made (tokio's clock), oldest first: a
    /// test tells renewal ahead of expiry, and no stampede, from the gaps.
    pub fn token_grant_times(&self) -> Vec<Instant> {
        self.google_tokens().grant_times()
    }

    /// Token requests `POST /token` has refused since start.
    pub fn token_refusals(&self) -> u64 {
        self.google_tokens().refusals()
    }

    /// Invalidates every access token granted so far, as a revocation would.
    pub fn revoke_tokens(&self) {
        self.google_tokens().revoke_all();
    }
}

/// `GET /_sim/tokens`: the token endpoint's counters.
pub(crate) async fn token_stats(State(sim): State<Sim>) -> Response {
    let body = json!({"grants": sim.token_grants(), "refusals": sim.token_refusals()});
    json_response(StatusCode::OK, &body)
}

/// Access tokens issued and not yet expired, and the endpoint's counters.
#[derive(Default)]
pub(crate) struct Tokens {
    live: Mutex<HashMap<String, Instant>>,
    granted_at: Mutex<Vec<Instant>>,
    grants: AtomicU64,
    refusals: AtomicU64,
}

/// Why an access token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Unknown,
    Expired,
}

impl Tokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Issues a token valid for `ttl` from `now`.
    pub(crate) fn issue(&self, now: Instant, ttl: Duration) -> String {
        let token = format!(
            "ya29.sim-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let mut live = self.lock();
        // Expired tokens are kept a while so a late use is told "expired"
        // (useful when debugging a refresh) rather than "unknown".
        let grace = Duration::from_secs(3600);
        live.retain(|_, expires| now.saturating_duration_since(*expires) < grace);
        live.insert(token.clone(), now + ttl);
        drop(live);
        self.granted_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(now);
        self.grants.fetch_add(1, Ordering::Relaxed);
        token
    }

    /// Whether `token` was issued here and is still valid at `now`.
    pub(crate) fn check(&self, token: &str, now: Instant) -> Result<(), TokenProblem> {
        match self.lock().get(token) {
            None => Err(TokenProblem::Unknown),
            Some(expires) if now >= *expires => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Forgets every token, as a revocation would.
    pub(crate) fn revoke_all(&self) {
        self.lock().clear();
    }

    pub(crate) fn grants(&self) -> u64 {
        self.grants.load(Ordering::Relaxed)
    }

    pub(crate) fn grant_times(&self) -> Vec<Instant> {
        self.granted_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }
}

/// The claims Google reads from a service account's assertion.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<String>,
    scope: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// A refused grant: Google's OAuth error code and description, sent as 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub error: &'static str,
    pub description: String,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }

    fn grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }
}

/// What an assertion must say to be accepted here.
pub(crate) struct Expected<'a> {
    pub client_email: &'a str,
    /// This endpoint's own URL, which `aud` must name (or Google's).
    pub audience: &'a str,
    /// Wall-clock Unix seconds.
    pub now: i64,
}

/// Checks a JWT-bearer assertion as Google's token endpoint does.
pub(crate) fn verify(assertion: &str, expected: &Expected<'_>) -> Result<(), Refusal> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| Refusal::grant("Invalid JWT: malformed assertion."))?;
    if header.alg != Algorithm::RS256 {
        return Err(Refusal::grant("Invalid JWT: the algorithm must be RS256."));
    }
    // The account is looked up before the signature, so an unknown account
    // is told so whatever key signed it.
    let unverified = unverified_claims(assertion)?;
    if unverified.iss.as_deref() != Some(expected.client_email) {
        return Err(Refusal::grant("Invalid grant: account not found"));
    }
    if header
        .kid
        .as_deref()
        .is_some_and(|kid| kid != PRIVATE_KEY_ID)
    {
        return Err(Refusal::grant("Invalid JWT Signature."));
    }
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes())
        .map_err(|_| Refusal::new("internal_failure", "the simulator's key is unreadable"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Time and audience are checked below with Google's own messages.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
        .map_err(|_| Refusal::grant("Invalid JWT Signature."))?
        .claims;
    let audience = claims.aud.as_deref();
    if audience != Some(expected.audience) && audience != Some(GOOGLE_TOKEN_AUDIENCE) {
        return Err(Refusal::grant(format!(
            "Invalid JWT: Failed audience check. The right audience is {}",
            expected.audience
        )));
    }
    let timely = match (claims.iat, claims.exp) {
        (Some(iat), Some(exp)) => {
            iat <= expected.now + CLOCK_SKEW_SECS
                && exp > expected.now
                && exp > iat
                && exp - iat <= MAX_ASSERTION_LIFETIME_SECS
        }
        _ => false,
    };
    if !timely {
        return Err(Refusal::grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ));
    }
    let scoped = claims
        .scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|s| s == CLOUD_PLATFORM_SCOPE));
    if !scoped {
        return Err(Refusal::new(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    Ok(())
}

/// The claims before the signature is checked: only to find the account.
fn unverified_claims(assertion: &str) -> Result<Claims, Refusal> {
    use base64::Engine as _;
    let malformed = || Refusal::grant("Invalid JWT: malformed assertion.");
    let payload = assertion.split('.').nth(1).ok_or_else(malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed())?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// The form a client posts.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    assertion: Option<String>,
}

/// `POST /token`.
pub(crate) async fn token_endpoint(
    State(sim): State<Sim>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let vertex = sim.config().vertex.unwrap_or_default();
    let tokens = sim.google_tokens();
    if let Some(status) = vertex.token_status {
        tokens.refusals.fetch_add(1, Ordering::Relaxed);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let body = json!({"error": "internal_failure", "error_description": "The service is currently unavailable."});
        return json_response(status, &body);
    }
    let answer = grant(&vertex, &headers, form.ok().map(|Form(f)| f));
    match answer {
        Ok(()) => {
            let ttl = Duration::from_secs(vertex.token_ttl_secs);
            let token = tokens.issue(Instant::now(), ttl);
            let body = json!({
                "access_token": token,
                "expires_in": vertex.token_ttl_secs,
                "token_type": "Bearer"
            });
            json_response(StatusCode::OK, &body)
        }
        Err(refusal) => {
            tokens.refusals.fetch_add(1, Ordering::Relaxed);
            let body = json!({"error": refusal.error, "error_description": refusal.description});
            json_response(StatusCode::BAD_REQUEST, &body)
        }
    }
}

fn grant(
    vertex: &VertexSimConfig,
    headers: &HeaderMap,
    form: Option<TokenForm>,
) -> Result<(), Refusal> {
    let Some(form) = form else {
        return Err(Refusal::new(
            "invalid_request",
            "Invalid request: expected an application/x-www-form-urlencoded body.",
        ));
    };
    match form.grant_type.as_deref() {
        Some(JWT_BEARER_GRANT) => {}
        Some(other) => {
            return Err(Refusal::new(
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            ));
        }
        None => {
            return Err(Refusal::new(
                "unsupported_grant_type",
                "Invalid grant_type: ",
            ));
        }
    }
    let Some(assertion) = form.assertion.filter(|a| !a.is_empty()) else {
        return Err(Refusal::new(
            "invalid_request",
            "Missing required parameter: assertion",
        ));
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let audience = format!("http://{host}/token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    verify(
        &assertion,
        &Expected {
            client_email: &vertex.client_email,
            audience: &audience,
            now,
        },
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const UNKNOWN_KEY_PEM: &str = include_str!("sim-test-unknown-key.pem");
    const EMAIL: &str = "sim@bulwark-sim.iam.gserviceaccount.com";
    const AUD: &str = "http://127.0.0.1:9/token";
    const NOW: i64 = 1_800_000_000;

    fn assertion(key_pem: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(PRIVATE_KEY_ID.into());
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": EMAIL, "aud": AUD, "scope": CLOUD_PLATFORM_SCOPE, "iat": NOW, "exp": NOW + 3600})
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn check(jwt: &str) -> Result<(), Refusal> {
        verify(
            jwt,
            &Expected {
                client_email: EMAIL,
                audience: AUD,
                now: NOW + 10,
            },
        )
    }

    #[test]
    fn a_jwt_signed_with_the_account_key_is_accepted() {
        assert_eq!(check(&assertion(PRIVATE_KEY_PEM, claims())), Ok(()));
        let scopes = format!("openid {CLOUD_PLATFORM_SCOPE}");
        let jwt = assertion(PRIVATE_KEY_PEM, with(claims(), "scope", json!(scopes)));
        assert_eq!(check(&jwt), Ok(()));
        let google = with(claims(), "aud", json!(GOOGLE_TOKEN_AUDIENCE));
        assert_eq!(check(&assertion(PRIVATE_KEY_PEM, google)), Ok(()));
    }

    #[test]
    fn a_jwt_signed_with_another_key_is_refused() {
        let refusal = check(&assertion(UNKNOWN_KEY_PEM, claims())).unwrap_err();
        assert_eq!(refusal.error, "invalid_grant");
        assert_eq!(refusal.description, "Invalid JWT Signature.");
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let jwt = assertion(PRIVATE_KEY_PEM, claims());
        let other = assertion(PRIVATE_KEY_PEM, with(claims(), "scope", json!("x y")));
        let mut parts: Vec<&str> = jwt.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        let refusal = check(&parts.join(".")).unwrap_err();
        assert_eq!(refusal.description, "Invalid JWT Signature.");
    }

    #[test]
    fn wrong_claims_are_refused_with_googles_errors() {
        let cases = [
            (
                with(claims(), "aud", json!("https://example.com/token")),
                "invalid_grant",
                "audience",
            ),
            (
                with(claims(), "iss", json!("other@x.iam.gserviceaccount.com")),
                "invalid_grant",
                "account not found",
            ),
            (
                with(
                    claims(),
                    "scope",
                    json!("https://www.googleapis.com/auth/drive"),
                ),
                "invalid_scope",
                "scope",
            ),
            (
                with(claims(), "exp", json!(NOW + 3601)),
                "invalid_grant",
                "short-lived",
            ),
            (
                with(
                    with(claims(), "iat", json!(NOW - 7200)),
                    "exp",
                    json!(NOW - 3600),
                ),
                "invalid_grant",
                "short-lived",
            ),
            (
                with(
                    with(claims(), "iat", json!(NOW + 3600)),
                    "exp",
                    json!(NOW + 4000),
                ),
                "invalid_grant",
                "short-lived",
            ),
            (
                with(claims(), "exp", Value::Null),
                "invalid_grant",
                "short-lived",
            ),
        ];
        for (claims, error, words) in cases {
            let refusal = check(&assertion(PRIVATE_KEY_PEM, claims.clone())).unwrap_err();
            assert_eq!(refusal.error, error, "{claims}");
            assert!(refusal.description.contains(words), "{claims}: {refusal:?}");
        }
    }

    #[test]
    fn garbage_and_other_algorithms_are_refused() {
        assert!(check("not-a-jwt").is_err());
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(PUBLIC_KEY_PEM.as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(check(&hs).unwrap_err().description.contains("RS256"));
    }

    #[test]
    fn tokens_expire_and_unknown_ones_are_refused() {
        let tokens = Tokens::default();
        let t0 = Instant::now();
        let token = tokens.issue(t0, Duration::from_secs(60));
        assert_eq!(tokens.check(&token, t0 + Duration::from_secs(59)), Ok(()));
        assert_eq!(
            tokens.check(&token, t0 + Duration::from_secs(60)),
            Err(TokenProblem::Expired)
        );
        assert_eq!(tokens.check("ya29.forged", t0), Err(TokenProblem::Unknown));
        assert_eq!(tokens.grants(), 1);
        let second = tokens.issue(t0 + Duration::from_secs(30), Duration::from_secs(60));
        assert_ne!(second, token);
        assert_eq!(tokens.grant_times(), [t0, t0 + Duration::from_secs(30)]);
        tokens.revoke_all();
        assert_eq!(tokens.check(&second, t0), Err(TokenProblem::Unknown));
        assert_eq!(tokens.grant_times().len(), 2, "revoking forgets no grant");
    }

    #[test]
    fn the_service_account_file_carries_a_usable_key() {
        let vertex = VertexSimConfig::default();
        let file: Value =
            serde_json::from_str(&service_account_json(&vertex, "http://h/token")).unwrap();
        assert_eq!(file["type"], "service_account");
        assert_eq!(file["token_uri"], "http://h/token");
        assert_eq!(file["client_email"], vertex.client_email.as_str());
        let key = file["private_key"].as_str().unwrap();
        let jwt = assertion(key, with(claims(), "iss", json!(vertex.client_email)));
        let expected = Expected {
            client_email: &vertex.client_email,
            audience: AUD,
            now: NOW,
        };
        assert_eq!(verify(&jwt, &expected), Ok(()));
    }
}
