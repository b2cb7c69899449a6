//! Google service-account credentials: a JWT signed with the account's
//! private key (RS256), exchanged for an access token at the file's
//! `token_uri` (the JWT-bearer grant, RFC 7523), as Google's own client
//! libraries do.
//!
//! The JWT is built and signed with `jsonwebtoken` (aws-lc-rs backend, the
//! crypto library rustls already links) and posted with the gateway's own
//! reqwest client. `gcp_auth` and `yup-oauth2` were passed over: each brings
//! its own hyper client (no shared pool, timeouts or proxy settings, and
//! `http://` token URIs, which the simulator needs, are not their supported
//! case) and its own token cache, which would duplicate `TokenCache`'s
//! refresh-before-expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::CloudAuthError;
use super::answer::{AnswerError, read_token_answer};
use super::token::{Token, TokenSource};
use crate::config::Secret;
use crate::config::ServiceAccount;

/// The scope Vertex AI needs.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, form-encoded.
const GRANT_TYPE_FORM: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
/// Google accepts assertions that live at most an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// A token endpoint that has not answered by then is down for this attempt.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's description is quoted in an error.
const MAX_DESCRIPTION: usize = 200;

/// Access tokens for one service account.
pub(crate) struct ServiceAccountSource {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    key: EncodingKey,
}

impl std::fmt::Debug for ServiceAccountSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountSource")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountSource {
    /// Reads the account's private key now, so that an unusable key is a
    /// configuration error rather than a failure on the first request.
    pub(crate) fn new(account: &ServiceAccount) -> Result<Self, CloudAuthError> {
        let key =
            EncodingKey::from_rsa_pem(account.private_key.expose().as_bytes()).map_err(|_| {
                CloudAuthError::Refused(format!(
                    "the private key of service account {} is not a PEM RSA key",
                    account.client_email
                ))
            })?;
        Ok(Self {
            client_email: account.client_email.clone(),
            private_key_id: account.private_key_id.clone(),
            token_uri: account.token_uri.clone(),
            key,
        })
    }

    /// The signed JWT asking for a token, issued at `now`.
    fn assertion(&self, now: SystemTime) -> Result<Secret, CloudAuthError> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: &self.client_email,
            scope: CLOUD_PLATFORM_SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|_| {
                CloudAuthError::Refused(format!(
                    "cannot sign a token request for service account {}",
                    self.client_email
                ))
            })
    }

    async fn exchange(&self, http: &reqwest::Client) -> Result<Token, CloudAuthError> {
        let assertion = self.assertion(SystemTime::now())?;
        let body = format!(
            "grant_type={GRANT_TYPE_FORM}&assertion={}",
            assertion.expose()
        );
        let response = http
            .post(&self.token_uri)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .timeout(TOKEN_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| self.unavailable(&transport_reason(&e)))?;
        let status = response.status();
        // An answer too large to be a token's is read as none: refused or
        // unavailable by its status, as Entra's (`entra.rs`).
        let bytes = match read_token_answer(response).await {
            Ok(bytes) => bytes,
            Err(AnswerError::Transport(e)) => return Err(self.unavailable(&transport_reason(&e))),
            Err(AnswerError::TooLarge) => Vec::new(),
        };
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            return Err(self.unavailable(&format!("answered {status}")));
        }
        if !status.is_success() {
            let reason = refusal_reason(&bytes, assertion.expose());
            return Err(CloudAuthError::Refused(format!(
                "token endpoint {} refused service account {}: {status}{reason}",
                self.token_uri, self.client_email
            )));
        }
        // A success that is not a grant is the endpoint's trouble (a proxy's
        // page, a cut answer), not the account's: unavailable, as Entra's.
        let grant: Grant = serde_json::from_slice(&bytes)
            .map_err(|_| self.unavailable(&format!("answered {status} without an access token")))?;
        if grant.access_token.is_empty() {
            return Err(self.unavailable(&format!("answered {status} without an access token")));
        }
        if !grant.token_type.eq_ignore_ascii_case("bearer") {
            return Err(CloudAuthError::Refused(format!(
                "token endpoint {} answered a token of type {:?}, not a bearer token",
                self.token_uri, grant.token_type
            )));
        }
        Ok(Token {
            value: Secret::new(grant.access_token),
            expires_in: Duration::from_secs(grant.expires_in),
        })
    }

    fn unavailable(&self, reason: &str) -> CloudAuthError {
        CloudAuthError::Unavailable(format!(
            "token endpoint {} for service account {}: {reason}",
            self.token_uri, self.client_email
        ))
    }
}

/// The token source for `account`; one whose key cannot sign refuses every
/// fetch with the reason, so the target is reported misconfigured.
pub(crate) fn token_source(account: &ServiceAccount) -> Box<dyn TokenSource> {
    match ServiceAccountSource::new(account) {
        Ok(source) => Box::new(source),
        Err(error) => Box::new(Unusable(error)),
    }
}

/// A service account whose key is unusable.
#[derive(Debug)]
struct Unusable(CloudAuthError);

impl TokenSource for Unusable {
    fn fetch<'a>(
        &'a self,
        _http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Token, CloudAuthError>> {
        let error = self.0.clone();
        Box::pin(async move { Err(error) })
    }
}

impl TokenSource for ServiceAccountSource {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Token, CloudAuthError>> {
        Box::pin(self.exchange(http))
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Grant {
    access_token: String,
    /// Google always sends it; an hour is its lifetime when a server does not.
    #[serde(default = "an_hour")]
    expires_in: u64,
    #[serde(default = "bearer")]
    token_type: String,
}

fn an_hour() -> u64 {
    3600
}

fn bearer() -> String {
    "Bearer".into()
}

/// `: error: description` from an OAuth error body, shortened, and never
/// quoting the assertion should a server echo it.
fn refusal_reason(body: &[u8], assertion: &str) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<OAuthError>(body) else {
        return String::new();
    };
    let mut reason: String = [parsed.error, parsed.error_description]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    if reason.is_empty() || reason.contains(assertion) {
        return String::new();
    }
    if let Some((cut, _)) = reason.char_indices().nth(MAX_DESCRIPTION) {
        reason.truncate(cut);
        reason.push('…');
    }
    format!(" ({reason})")
}

/// A transport error's kind, without its URL or body.
fn transport_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        "the exchange failed".into()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use bulwark_sim::{Fault, FaultRule, Format, SimConfig, SimServer, VertexSimConfig};
    use serde_json::Value;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sim_config(ttl: u64) -> SimConfig {
        SimConfig {
            vertex: Some(VertexSimConfig {
                token_ttl_secs: ttl,
                ..VertexSimConfig::default()
            }),
            ..SimConfig::default()
        }
    }

    /// The simulator's service account, as the config reads it.
    fn account(sim: &SimServer, token_uri: &str) -> Result<ServiceAccount, serde_json::Error> {
        let file: Value = serde_json::from_str(&sim.sim.service_account_json(token_uri))?;
        let text = |key: &str| file[key].as_str().unwrap_or_default().to_string();
        Ok(ServiceAccount {
            client_email: text("client_email"),
            private_key_id: Some(text("private_key_id")),
            private_key: Secret::new(text("private_key")),
            token_uri: token_uri.to_string(),
        })
    }

    async fn fetch(account: &ServiceAccount) -> Result<Token, CloudAuthError> {
        token_source(account).fetch(&reqwest::Client::new()).await
    }

    #[tokio::test]
    async fn the_account_gets_a_token_from_its_token_uri() -> TestResult {
        let sim = SimServer::start("127.0.0.1:0", sim_config(900)).await?;
        let account = account(&sim, &format!("{}/token", sim.url()))?;
        let token = fetch(&account).await?;
        assert!(token.value.expose().starts_with("ya29."));
        assert_eq!(token.expires_in, Duration::from_secs(900));
        assert_eq!(sim.sim.token_grants(), 1);
        Ok(())
    }

    #[test]
    fn the_assertion_claims_what_google_checks() -> TestResult {
        // The simulator's TEST-ONLY key; no server is needed to sign.
        let file: Value = serde_json::from_str(
            &bulwark_sim::Sim::new(SimConfig::default()).service_account_json("unused"),
        )?;
        let account = ServiceAccount {
            client_email: "sa@p.iam.gserviceaccount.com".into(),
            private_key_id: Some("k1".into()),
            private_key: Secret::new(file["private_key"].as_str().unwrap_or_default()),
            token_uri: "https://oauth2.googleapis.com/token".into(),
        };
        let source = ServiceAccountSource::new(&account)?;
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let jwt = source.assertion(now)?;
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |part: &str| -> Result<Value, Box<dyn std::error::Error>> {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
            Ok(serde_json::from_slice(&bytes)?)
        };
        let header = decode(parts[0])?;
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "k1");
        let claims = decode(parts[1])?;
        assert_eq!(
            claims,
            serde_json::json!({
                "iss": "sa@p.iam.gserviceaccount.com",
                "scope": CLOUD_PLATFORM_SCOPE,
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_800_000_000u64,
                "exp": 1_800_003_600u64
            })
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_account_the_endpoint_does_not_know_is_refused_without_secrets() -> TestResult {
        let sim = SimServer::start("127.0.0.1:0", sim_config(900)).await?;
        let mut account = account(&sim, &format!("{}/token", sim.url()))?;
        account.client_email = "stranger@elsewhere.iam.gserviceaccount.com".into();
        let Err(CloudAuthError::Refused(message)) = fetch(&account).await else {
            panic!("an unknown account was not refused");
        };
        assert!(message.contains("stranger@elsewhere"), "{message}");
        assert!(message.contains("invalid_grant"), "{message}");
        // A JWT starts `eyJ` (`{"`); neither it nor the key is quoted.
        assert!(!message.contains("eyJ"), "{message}");
        assert!(!message.contains("PRIVATE KEY"), "{message}");
        assert_eq!(sim.sim.token_refusals(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_key_that_cannot_sign_is_refused_before_any_request() -> TestResult {
        let sim = SimServer::start("127.0.0.1:0", sim_config(900)).await?;
        let mut account = account(&sim, &format!("{}/token", sim.url()))?;
        account.private_key =
            Secret::new("-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n");
        let Err(CloudAuthError::Refused(message)) = fetch(&account).await else {
            panic!("an unusable key was not refused");
        };
        assert!(message.contains("not a PEM RSA key"), "{message}");
        assert_eq!(sim.sim.token_grants() + sim.sim.token_refusals(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_failing_or_unreachable_endpoint_is_unavailable() -> TestResult {
        let sim = SimServer::start("127.0.0.1:0", sim_config(900)).await?;
        // Any simulated Gemini path answers 503 under this rule.
        sim.sim
            .add_fault(FaultRule::always(Fault::status(503)).for_format(Format::Gemini));
        let failing = format!(
            "{}/v1beta/models/gemini-2.5-flash:generateContent",
            sim.url()
        );
        let result = fetch(&account(&sim, &failing)?).await;
        assert!(
            matches!(&result, Err(CloudAuthError::Unavailable(m)) if m.contains("503")),
            "{:?}",
            result.err()
        );

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let unreachable = format!("http://{}/token", closed.local_addr()?);
        drop(closed);
        let result = fetch(&account(&sim, &unreachable)?).await;
        assert!(
            matches!(&result, Err(CloudAuthError::Unavailable(m)) if m.contains("cannot connect")),
            "{:?}",
            result.err()
        );
        Ok(())
    }

    /// The simulator's TEST-ONLY account, with its tokens at `token_uri`.
    fn offline_account(token_uri: &str) -> Result<ServiceAccount, serde_json::Error> {
        let file: Value = serde_json::from_str(
            &bulwark_sim::Sim::new(SimConfig::default()).service_account_json(token_uri),
        )?;
        Ok(ServiceAccount {
            client_email: "sa@p.iam.gserviceaccount.com".into(),
            private_key_id: Some("k1".into()),
            private_key: Secret::new(file["private_key"].as_str().unwrap_or_default()),
            token_uri: token_uri.to_string(),
        })
    }

    #[tokio::test]
    async fn a_success_without_a_grant_is_unavailable_and_read_within_bounds() -> TestResult {
        let too_large = vec![b' '; super::super::answer::MAX_TOKEN_ANSWER + 1];
        for body in [
            b"<html>proxy</html>".to_vec(),
            br#"{"access_token": "", "expires_in": 60}"#.to_vec(),
            too_large.clone(),
        ] {
            let url = super::super::answer::answer_once(200, body).await?;
            let result = fetch(&offline_account(&url)?).await;
            assert!(
                matches!(&result, Err(CloudAuthError::Unavailable(m)) if m.contains("without an access token")),
                "{:?}",
                result.err()
            );
        }
        // A refusal too large to read is still a refusal, unquoted.
        let url = super::super::answer::answer_once(400, too_large).await?;
        let result = fetch(&offline_account(&url)?).await;
        assert!(
            matches!(&result, Err(CloudAuthError::Refused(m)) if m.ends_with("400 Bad Request")),
            "{:?}",
            result.err()
        );
        Ok(())
    }

    #[test]
    fn a_refusal_is_quoted_short_and_never_with_the_assertion() {
        let body = br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#;
        assert_eq!(
            refusal_reason(body, "eyJhbGc.x.y"),
            " (invalid_grant: Invalid JWT Signature.)"
        );
        let echo = br#"{"error":"invalid_grant","error_description":"bad eyJhbGc.x.y"}"#;
        assert_eq!(refusal_reason(echo, "eyJhbGc.x.y"), "");
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(500));
        assert_eq!(
            refusal_reason(long.as_bytes(), "a").chars().count(),
            MAX_DESCRIPTION + 4
        );
        assert_eq!(refusal_reason(b"<html>", "a"), "");
    }
}
