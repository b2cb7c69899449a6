//! Google Vertex AI: Claude through
//! `.../publishers/anthropic/models/{model}:streamRawPredict` (Anthropic's
//! body without `model`, with `anthropic_version`), Gemini through
//! `.../publishers/google/models/{model}:streamGenerateContent`, both with
//! a service account's bearer token.

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::token::{Token, TokenCache, TokenSource};
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
            tokens: TokenCache::new(Box::new(NotYet), http.clone()),
        }
    }
}

/// Replaced by the service-account source.
#[derive(Debug)]
struct NotYet;

impl TokenSource for NotYet {
    fn fetch<'a>(
        &'a self,
        _http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Token, CloudAuthError>> {
        Box::pin(async {
            Err(CloudAuthError::Refused(
                "service-account tokens are not wired up yet".into(),
            ))
        })
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
            (WireFormat::Gemini, _) => {
                format!("{publishers}/google/models/{model}:streamGenerateContent?alt=sse")
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
        if dialect.format() == WireFormat::Anthropic
            && let Some(body) = body.as_object_mut()
        {
            body.remove("model");
            body.entry("anthropic_version")
                .or_insert_with(|| Value::from(ANTHROPIC_VERSION));
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

    fn semconv_name(&self) -> &'static str {
        "gcp.vertex_ai"
    }
}
