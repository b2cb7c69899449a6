//! Microsoft Entra ID tokens for Azure OpenAI: the OAuth 2.0
//! client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token`.
//! The token cache (`token.rs`) decides when to ask.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::CloudAuthError;
use super::answer::read_token_answer;
use super::token::{Token, TokenSource};
use crate::config::{EntraConfig, Secret};

/// The longest error description quoted from Entra: its first sentence
/// names the problem (`AADSTS7000215: Invalid client secret provided.`),
/// the rest is trace ids and links.
const MAX_DESCRIPTION: usize = 200;

#[derive(Debug)]
pub(crate) struct EntraSource {
    token_url: String,
    client_id: String,
    client_secret: Secret,
    scope: String,
}

impl EntraSource {
    pub(crate) fn new(config: &EntraConfig) -> Self {
        EntraSource {
            token_url: format!(
                "{}/{}/oauth2/v2.0/token",
                config.authority.trim_end_matches('/'),
                config.tenant_id
            ),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            scope: config.scope.clone(),
        }
    }

    /// The grant as `application/x-www-form-urlencoded`; `Url`'s query
    /// serializer is that encoding, and spares a dependency for it.
    fn form(&self) -> Result<String, CloudAuthError> {
        let mut url = reqwest::Url::parse("http://form.invalid/")
            .map_err(|e| CloudAuthError::Refused(format!("cannot encode the grant: {e}")))?;
        url.query_pairs_mut()
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose())
            .append_pair("scope", &self.scope);
        Ok(url.query().unwrap_or_default().to_string())
    }

    async fn grant(&self, http: &reqwest::Client) -> Result<Token, CloudAuthError> {
        let url = &self.token_url;
        let response = http
            .post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(self.form()?)
            .send()
            .await
            // Without the URL reqwest would add: the message says where.
            .map_err(|e| {
                CloudAuthError::Unavailable(format!(
                    "Entra ID at {url} could not be reached: {}",
                    e.without_url()
                ))
            })?;
        let status = response.status();
        let body = read_json(response).await;
        if !status.is_success() {
            let message = format!(
                "Entra ID at {url} answered {} for client {}{}",
                status.as_u16(),
                self.client_id,
                describe(body.as_ref())
            );
            // The endpoint's own trouble passes; anything else is the
            // configuration (secret, client, tenant, scope, authority).
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                CloudAuthError::Unavailable(message)
            } else {
                CloudAuthError::Refused(message)
            });
        }
        read_token(body.as_ref()).ok_or_else(|| {
            CloudAuthError::Unavailable(format!(
                "Entra ID at {url} answered without an access token and its lifetime"
            ))
        })
    }
}

impl TokenSource for EntraSource {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Token, CloudAuthError>> {
        Box::pin(self.grant(http))
    }
}

/// The answer as JSON; `None` when it is not JSON, cannot be read, or is
/// larger than any token answer (an endpoint that is not Entra's).
async fn read_json(response: reqwest::Response) -> Option<Value> {
    let body = read_token_answer(response).await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// `: <error>: <description's first sentence>` from an OAuth error body.
/// Entra never quotes the secret back; the description is cut short all
/// the same, as it is the one free text of the answer.
fn describe(body: Option<&Value>) -> String {
    let Some(body) = body else {
        return String::new();
    };
    let error = body.get("error").and_then(Value::as_str).unwrap_or("");
    let description = body
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let first = description
        .split_inclusive(". ")
        .next()
        .unwrap_or("")
        .trim_end();
    let first: String = first.chars().take(MAX_DESCRIPTION).collect();
    match (error.is_empty(), first.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(": {error}"),
        (true, false) => format!(": {first}"),
        (false, false) => format!(": {error}: {first}"),
    }
}

/// `access_token` and `expires_in` (a number; Entra's older v1 endpoint
/// sends it as a string).
fn read_token(body: Option<&Value>) -> Option<Token> {
    let body = body?;
    let value = body.get("access_token")?.as_str()?;
    let expires_in = match body.get("expires_in")? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    (!value.is_empty()).then(|| Token {
        value: Secret::new(value),
        expires_in: Duration::from_secs(expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source() -> EntraSource {
        EntraSource::new(&EntraConfig {
            authority: "https://login.example/".into(),
            tenant_id: "t1".into(),
            client_id: "c1".into(),
            client_secret: Secret::new("s e&cret=1"),
            scope: "https://cognitiveservices.azure.com/.default".into(),
        })
    }

    #[test]
    fn the_grant_is_form_encoded_at_the_tenants_endpoint() {
        let source = source();
        assert_eq!(
            source.token_url,
            "https://login.example/t1/oauth2/v2.0/token"
        );
        let form = source.form().unwrap();
        assert_eq!(
            form,
            "grant_type=client_credentials&client_id=c1&client_secret=s+e%26cret%3D1&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default"
        );
        assert!(!format!("{source:?}").contains("e&cret"));
    }

    #[test]
    fn tokens_are_read_with_either_lifetime_shape() {
        let token = read_token(Some(&json!({"access_token": "abc", "expires_in": 3599}))).unwrap();
        assert_eq!(token.expires_in, Duration::from_secs(3599));
        assert_eq!(token.value.expose(), "abc");
        let token = read_token(Some(&json!({"access_token": "abc", "expires_in": "60"}))).unwrap();
        assert_eq!(token.expires_in, Duration::from_secs(60));
        assert!(read_token(Some(&json!({"access_token": "", "expires_in": 1}))).is_none());
        assert!(read_token(Some(&json!({"expires_in": 1}))).is_none());
    }

    #[test]
    fn refusals_are_described_by_their_first_sentence() {
        let body = json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent. Trace ID: x"});
        assert_eq!(
            describe(Some(&body)),
            ": invalid_client: AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(describe(None), "");
    }
}
