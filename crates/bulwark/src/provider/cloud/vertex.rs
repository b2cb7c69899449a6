//! Google Vertex AI: Claude through
//! `.../publishers/anthropic/models/{model}:streamRawPredict` (Anthropic's
//! body without `model`, with `anthropic_version`), Gemini through
//! `.../publishers/google/models/{model}:streamGenerateContent`, both with
//! a service account's bearer token.

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::token::TokenCache;
use super::{CloudApi, CloudAuthError, path_segment, set_secret_header};
use crate::api::WireFormat;
use crate::config::VertexConfig;
use crate::error::ApiError;
use crate::wire::UpstreamDialect;

/// The Messages API version Vertex takes in the body.
pub(crate) const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

#[derive(Debug)]
pub(crate) struct Vertex {
    /// `{base}/v1/projects/{project}/locations/{region}/publishers`.
    publishers: String,
    tokens: TokenCache,
}

impl Vertex {
    pub(crate) fn new(config: &VertexConfig, base_url: String, http: &reqwest::Client) -> Self {
        Vertex {
            publishers: format!(
                "{base_url}/v1/projects/{}/locations/{}/publishers",
                config.project, config.region
            ),
            tokens: TokenCache::new(
                super::google::token_source(&config.service_account),
                http.clone(),
            ),
        }
    }
}

impl CloudApi for Vertex {
    fn dialect(&self, model: &str) -> &'static dyn UpstreamDialect {
        if model.starts_with("gemini") {
            &crate::wire::gemini::Upstream
        } else {
            &crate::wire::anthropic::Upstream
        }
    }

    fn url(
        &self,
        dialect: &'static dyn UpstreamDialect,
        model: &str,
        stream: bool,
    ) -> Result<String, ApiError> {
        let model = path_segment(model)?;
        let publishers = &self.publishers;
        Ok(match (dialect.format(), stream) {
            (WireFormat::Gemini, true) => {
                format!("{publishers}/google/models/{model}:streamGenerateContent?alt=sse")
            }
            (WireFormat::Gemini, false) => {
                format!("{publishers}/google/models/{model}:generateContent")
            }
            (_, true) => format!("{publishers}/anthropic/models/{model}:streamRawPredict"),
            (_, false) => format!("{publishers}/anthropic/models/{model}:rawPredict"),
        })
    }

    fn adapt(
        &self,
        dialect: &'static dyn UpstreamDialect,
        body: &mut Value,
        forwarded: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)> {
        if let Some(body) = body.as_object_mut() {
            match dialect.format() {
                // The path names the model; `stream` stays, as Vertex
                // streams Claude on the body's word.
                WireFormat::Anthropic => {
                    body.remove("model");
                    body.insert("anthropic_version".into(), Value::from(ANTHROPIC_VERSION));
                }
                // Gemini streams by method, and its body has no `stream`
                // (a complete answer's request is marked so by the provider).
                WireFormat::Gemini => {
                    body.remove("stream");
                }
                _ => {}
            }
        }
        // The body carries the version Vertex reads; betas stay headers.
        forwarded
            .iter()
            .filter(|(name, _)| name.as_str() != "anthropic-version")
            .cloned()
            .collect()
    }

    fn authorize<'a>(
        &'a self,
        request: &'a mut reqwest::Request,
    ) -> BoxFuture<'a, Result<(), CloudAuthError>> {
        Box::pin(async move {
            let token = self.tokens.bearer().await?;
            set_secret_header(
                request,
                http::header::AUTHORIZATION,
                &format!("Bearer {}", token.expose()),
            )
        })
    }

    fn credentials_rejected(&self) {
        self.tokens.forget();
    }

    fn semconv_name(&self) -> &'static str {
        "gcp.vertex_ai"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::{Secret, ServiceAccount};

    fn vertex() -> Vertex {
        let config = VertexConfig {
            project: "proj-1".into(),
            region: "us-east5".into(),
            service_account: ServiceAccount {
                client_email: "sa@proj-1.iam.gserviceaccount.com".into(),
                private_key_id: None,
                private_key: Secret::new("not a key"),
                token_uri: "http://127.0.0.1:9/token".into(),
            },
        };
        Vertex::new(
            &config,
            "https://us-east5-aiplatform.googleapis.com".into(),
            &reqwest::Client::new(),
        )
    }

    #[test]
    fn claude_and_gemini_go_to_their_publishers_methods() -> Result<(), ApiError> {
        let v = vertex();
        let base = "https://us-east5-aiplatform.googleapis.com/v1/projects/proj-1/locations/us-east5/publishers";
        let claude = "claude-sonnet-4-5@20250929";
        let anthropic = v.dialect(claude);
        assert_eq!(anthropic.format(), WireFormat::Anthropic);
        assert_eq!(
            v.url(anthropic, claude, true)?,
            format!("{base}/anthropic/models/{claude}:streamRawPredict")
        );
        assert_eq!(
            v.url(anthropic, claude, false)?,
            format!("{base}/anthropic/models/{claude}:rawPredict")
        );
        let gemini = v.dialect("gemini-2.5-flash");
        assert_eq!(gemini.format(), WireFormat::Gemini);
        assert_eq!(
            v.url(gemini, "gemini-2.5-flash", true)?,
            format!("{base}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        );
        assert_eq!(
            v.url(gemini, "gemini-2.5-flash", false)?,
            format!("{base}/google/models/gemini-2.5-flash:generateContent")
        );
        assert!(
            v.url(anthropic, "../x", true)?
                .ends_with("/models/..%2Fx:streamRawPredict")
        );
        Ok(())
    }

    #[test]
    fn claudes_body_loses_its_model_and_gains_vertexs_version() {
        let v = vertex();
        let dialect = v.dialect("claude-sonnet-4-5@20250929");
        let mut body = json!({"model": "claude-sonnet-4-5@20250929", "stream": true, "max_tokens": 9,
            "thinking": {"type": "enabled", "budget_tokens": 1024}});
        let forwarded = [
            (
                HeaderName::from_static("anthropic-beta"),
                HeaderValue::from_static("interleaved-thinking-2025-05-14"),
            ),
            (
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static("2023-06-01"),
            ),
        ];
        let headers = v.adapt(dialect, &mut body, &forwarded);
        assert_eq!(
            body,
            json!({"anthropic_version": "vertex-2023-10-16", "stream": true, "max_tokens": 9,
                "thinking": {"type": "enabled", "budget_tokens": 1024}})
        );
        assert_eq!(headers, forwarded[..1].to_vec());
    }

    #[test]
    fn geminis_body_has_no_stream_field() {
        let v = vertex();
        let dialect = v.dialect("gemini-2.5-flash");
        let mut body = json!({"contents": [], "stream": false});
        assert!(v.adapt(dialect, &mut body, &[]).is_empty());
        assert_eq!(body, json!({"contents": []}));
    }

    #[tokio::test]
    async fn an_unusable_key_refuses_to_authorize() -> Result<(), Box<dyn std::error::Error>> {
        let v = vertex();
        let mut request =
            reqwest::Request::new(http::Method::POST, "http://127.0.0.1:9/v1/x".parse()?);
        let result = v.authorize(&mut request).await;
        assert!(
            matches!(result, Err(CloudAuthError::Refused(_))),
            "{result:?}"
        );
        assert!(request.headers().get(http::header::AUTHORIZATION).is_none());
        Ok(())
    }
}
