//! Azure OpenAI: OpenAI's Chat Completions at a resource's deployment
//! paths (`/openai/deployments/{deployment}/chat/completions?api-version=`),
//! or at the `/openai/v1/` surface with the model in the body. The
//! target's model is the deployment.
//!
//! Auth is the resource's key in `api-key`, or an Entra ID token
//! (client credentials, `entra.rs`) as a bearer, kept and renewed before
//! it expires by the token cache.

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::entra::EntraSource;
use super::token::TokenCache;
use super::{CloudApi, CloudAuthError, path_segment, set_secret_header};
use crate::config::{AzureConfig, Secret};
use crate::error::ApiError;
use crate::unary::{Unary, UnaryCall};
use crate::wire::UpstreamDialect;

/// The first API version that takes `stream_options` (versions are dates,
/// so they compare as strings).
const STREAM_OPTIONS_SINCE: &str = "2024-08-01";

/// The first API version that knows `max_completion_tokens`
/// (2024-09-01-preview; a longer string sorts after its prefix).
const MAX_COMPLETION_TOKENS_SINCE: &str = "2024-09-01";

#[derive(Debug)]
pub(crate) struct Azure {
    base_url: String,
    api_version: Option<String>,
    auth: Auth,
}

#[derive(Debug)]
enum Auth {
    Key(Secret),
    Entra(TokenCache),
    /// `bulwark check` refuses such a config; a request says why.
    Missing,
}

impl Azure {
    pub(crate) fn new(
        config: &AzureConfig,
        base_url: String,
        api_key: Option<Secret>,
        http: &reqwest::Client,
    ) -> Self {
        let auth = match (&config.entra, api_key) {
            (Some(entra), _) => Auth::Entra(TokenCache::new(
                Box::new(EntraSource::new(entra)),
                http.clone(),
            )),
            (None, Some(key)) => Auth::Key(key),
            (None, None) => Auth::Missing,
        };
        Azure {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_version: config.api_version.clone(),
            auth,
        }
    }
}

impl CloudApi for Azure {
    fn dialect(&self, _model: &str) -> &'static dyn UpstreamDialect {
        &crate::wire::openai::Upstream::Azure
    }

    fn url(
        &self,
        _dialect: &'static dyn UpstreamDialect,
        model: &str,
        _stream: bool,
    ) -> Result<String, ApiError> {
        let base = &self.base_url;
        Ok(match &self.api_version {
            Some(version) => format!(
                "{base}/openai/deployments/{}/chat/completions?api-version={version}",
                path_segment(model)?
            ),
            None => format!("{base}/openai/v1/chat/completions"),
        })
    }

    /// The deployment paths ignore the body's `model`, so it stays. API
    /// versions before `stream_options` refuse it as an unrecognized
    /// argument: they are sent none, and their streams carry no usage.
    /// Versions before `max_completion_tokens` refuse it too, and know the
    /// limit as `max_tokens` (a client's own `max_tokens` wins).
    fn adapt(
        &self,
        _dialect: &'static dyn UpstreamDialect,
        body: &mut Value,
        forwarded: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let before = |since: &str| {
            self.api_version
                .as_deref()
                .is_some_and(|version| version < since)
        };
        if let Some(body) = body.as_object_mut() {
            if before(STREAM_OPTIONS_SINCE) {
                body.remove("stream_options");
            }
            if before(MAX_COMPLETION_TOKENS_SINCE)
                && let Some(max) = body.remove("max_completion_tokens")
                && !body.contains_key("max_tokens")
            {
                body.insert("max_tokens".into(), max);
            }
        }
        forwarded.to_vec()
    }

    fn authorize<'a>(
        &'a self,
        request: &'a mut reqwest::Request,
    ) -> BoxFuture<'a, Result<(), CloudAuthError>> {
        Box::pin(async move {
            match &self.auth {
                Auth::Key(key) => {
                    set_secret_header(request, HeaderName::from_static("api-key"), key.expose())
                }
                Auth::Entra(tokens) => {
                    let token = tokens.bearer().await?;
                    let value = format!("Bearer {}", token.expose());
                    set_secret_header(request, http::header::AUTHORIZATION, &value)
                }
                Auth::Missing => Err(CloudAuthError::Refused(
                    "the provider has neither `api_key` nor `entra`".into(),
                )),
            }
        })
    }

    fn credentials_rejected(&self) {
        if let Auth::Entra(tokens) = &self.auth {
            tokens.forget();
        }
    }

    fn semconv_name(&self) -> &'static str {
        "azure.ai.openai"
    }

    /// Embeddings at the deployment's `/embeddings` (with the same
    /// `api-version`), or at `/openai/v1/embeddings` with the model in the
    /// body; the body and answer are OpenAI's.
    fn unary<'a>(
        &self,
        operation: &'a Unary,
        model: &str,
    ) -> Option<Result<UnaryCall<'a>, ApiError>> {
        let base = match &self.api_version {
            Some(_) => match path_segment(model) {
                Ok(deployment) => format!("{}/openai/deployments/{deployment}", self.base_url),
                Err(error) => return Some(Err(error)),
            },
            None => format!("{}/openai/v1", self.base_url),
        };
        let mut call = self.dialect(model).unary(operation, &base, model)?;
        if let (Ok(call), Some(version)) = (&mut call, &self.api_version) {
            call.url.push_str("?api-version=");
            call.url.push_str(version);
        }
        Some(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(api_version: Option<&str>) -> Azure {
        let config = AzureConfig {
            api_version: api_version.map(String::from),
            entra: None,
        };
        let key = Some(Secret::new("k"));
        Azure::new(
            &config,
            "https://r.openai.azure.com/".into(),
            key,
            &reqwest::Client::new(),
        )
    }

    #[test]
    fn deployments_take_the_version_and_v1_the_model_in_the_body() -> Result<(), ApiError> {
        let dialect: &'static dyn UpstreamDialect = &crate::wire::openai::Upstream::Azure;
        assert_eq!(
            azure(Some("2024-10-21")).url(dialect, "my gpt", true)?,
            "https://r.openai.azure.com/openai/deployments/my%20gpt/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            azure(None).url(dialect, "gpt-4o", true)?,
            "https://r.openai.azure.com/openai/v1/chat/completions"
        );
        let request = crate::unary::EmbeddingsRequest::decode(br#"{"model": "e", "input": "x"}"#)?;
        let operation = Unary::Embeddings(request);
        let url = |azure: Azure| {
            azure
                .unary(&operation, "emb")
                .map(|call| call.map(|c| c.url))
        };
        assert_eq!(
            url(azure(Some("2024-10-21"))).transpose()?.as_deref(),
            Some(
                "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
            )
        );
        assert_eq!(
            url(azure(None)).transpose()?.as_deref(),
            Some("https://r.openai.azure.com/openai/v1/embeddings")
        );
        Ok(())
    }

    #[test]
    fn old_api_versions_are_sent_no_stream_options() {
        let dialect: &'static dyn UpstreamDialect = &crate::wire::openai::Upstream::Azure;
        for (version, kept) in [
            (Some("2024-06-01"), false),
            (Some("2024-08-01-preview"), true),
            (Some("2024-10-21"), true),
            (None, true),
        ] {
            let mut body = serde_json::json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}});
            azure(version).adapt(dialect, &mut body, &[]);
            assert_eq!(body.get("stream_options").is_some(), kept, "{version:?}");
            assert_eq!(body["model"], "m");
        }
    }

    /// The body `azure` is sent for `request`, translated as the engine
    /// would for its dialect.
    fn sent(azure: &Azure, request: &crate::api::ChatRequest) -> Result<Value, String> {
        let dialect = azure.dialect("dep");
        let prepared = crate::wire::translate::prepare(
            request,
            dialect.format(),
            crate::wire::translate::traits("dep", None),
            dialect.takes_top_k(),
            4096,
            crate::config::Translation::Lenient,
        )
        .map_err(|refusal| refusal.describe())?;
        let request = prepared.request.as_ref().unwrap_or(request);
        let mut body = dialect
            .encode_request(request, "dep", 4096)
            .map_err(|e| e.message)?;
        azure.adapt(dialect, &mut body, &[]);
        Ok(body)
    }

    #[test]
    fn the_output_limit_keeps_its_new_name_where_the_version_knows_it() -> Result<(), String> {
        let relayed = crate::wire::openai::decode_request(
            br#"{"model": "m", "max_completion_tokens": 300, "messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .map_err(|e| e.message)?;
        let translated = crate::wire::anthropic::decode_request(
            br#"{"model": "m", "max_tokens": 300, "top_k": 5, "messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .map_err(|e| e.message)?;
        for (version, key) in [
            (None, "max_completion_tokens"),
            (Some("2024-10-21"), "max_completion_tokens"),
            (Some("2024-09-01-preview"), "max_completion_tokens"),
            (Some("2024-08-01-preview"), "max_tokens"),
            (Some("2024-06-01"), "max_tokens"),
        ] {
            let other = if key == "max_tokens" {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            for request in [&relayed, &translated] {
                let body = sent(&azure(version), request)?;
                assert_eq!(body[key], 300, "{version:?}: {body}");
                assert!(body.get(other).is_none(), "{version:?}: {body}");
                assert!(body.get("top_k").is_none(), "{version:?}: {body}");
            }
        }
        Ok(())
    }

    #[test]
    fn a_clients_own_max_tokens_wins_on_old_versions() {
        let dialect = azure(None).dialect("dep");
        let mut body = serde_json::json!({"max_tokens": 10, "max_completion_tokens": 20});
        azure(Some("2024-06-01")).adapt(dialect, &mut body, &[]);
        assert_eq!(body, serde_json::json!({"max_tokens": 10}));
    }

    #[test]
    fn responses_clients_stay_on_chat_completions() {
        let dialect = azure(None).dialect("dep");
        assert!(
            dialect
                .also_speaks(crate::api::WireFormat::Responses)
                .is_none()
        );
        assert!(!dialect.takes_top_k());
    }
}
