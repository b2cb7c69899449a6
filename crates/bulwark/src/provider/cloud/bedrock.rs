//! Claude on Amazon Bedrock: Anthropic's Messages body at
//! `/model/{modelId}/invoke` (complete) and
//! `/invoke-with-response-stream` (AWS event stream), without `model` and
//! `stream`, with `anthropic_version`; signed with SigV4 or sent with a
//! Bedrock API key.

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::{CloudApi, CloudAuthError, Framing, path_segment, set_secret_header};
use crate::config::{BedrockConfig, Secret};
use crate::error::ApiError;
use crate::wire::UpstreamDialect;

/// The Messages API version Bedrock takes in the body.
pub(crate) const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

#[derive(Debug)]
pub(crate) struct Bedrock {
    base_url: String,
    api_key: Option<Secret>,
}

impl Bedrock {
    pub(crate) fn new(_config: &BedrockConfig, base_url: String, api_key: Option<Secret>) -> Self {
        Bedrock { base_url, api_key }
    }
}

impl CloudApi for Bedrock {
    fn dialect(&self, _model: &str) -> &'static dyn UpstreamDialect {
        &crate::wire::anthropic::Upstream
    }

    fn url(
        &self,
        _dialect: &'static dyn UpstreamDialect,
        model: &str,
        stream: bool,
    ) -> Result<String, ApiError> {
        let action = if stream {
            "invoke-with-response-stream"
        } else {
            "invoke"
        };
        Ok(format!(
            "{}/model/{}/{action}",
            self.base_url,
            path_segment(model)?
        ))
    }

    fn adapt(
        &self,
        _dialect: &'static dyn UpstreamDialect,
        body: &mut Value,
        forwarded: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        let mut betas = Vec::new();
        for (name, value) in forwarded {
            match name.as_str() {
                // The body carries the version Bedrock reads.
                "anthropic-version" => {}
                // Bedrock takes betas in the body, not as a header.
                "anthropic-beta" => betas.extend(
                    value
                        .to_str()
                        .unwrap_or_default()
                        .split(',')
                        .map(str::trim)
                        .filter(|beta| !beta.is_empty())
                        .map(Value::from),
                ),
                _ => headers.push((name.clone(), value.clone())),
            }
        }
        if let Some(body) = body.as_object_mut() {
            body.remove("model");
            body.remove("stream");
            body.entry("anthropic_version")
                .or_insert_with(|| Value::from(ANTHROPIC_VERSION));
            if !betas.is_empty() && !body.contains_key("anthropic_beta") {
                body.insert("anthropic_beta".into(), Value::Array(betas));
            }
        }
        headers
    }

    fn authorize<'a>(
        &'a self,
        request: &'a mut reqwest::Request,
    ) -> BoxFuture<'a, Result<(), CloudAuthError>> {
        Box::pin(async move {
            let key = self.api_key.as_ref().ok_or_else(|| {
                CloudAuthError::Refused("SigV4 signing is not wired up yet".into())
            })?;
            set_secret_header(
                request,
                http::header::AUTHORIZATION,
                &format!("Bearer {}", key.expose()),
            )
        })
    }

    fn framing(&self) -> Framing {
        Framing::AwsEventStream
    }

    fn semconv_name(&self) -> &'static str {
        "aws.bedrock"
    }
}
