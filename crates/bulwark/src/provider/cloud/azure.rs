//! Azure OpenAI: OpenAI's Chat Completions at a resource's deployment
//! paths (`/openai/deployments/{deployment}/chat/completions?api-version=`),
//! or at the `/openai/v1/` surface with the model in the body. The
//! target's model is the deployment.

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::{CloudApi, CloudAuthError, path_segment, set_secret_header};
use crate::config::{AzureConfig, Secret};
use crate::error::ApiError;
use crate::wire::UpstreamDialect;

#[derive(Debug)]
pub(crate) struct Azure {
    base_url: String,
    api_version: Option<String>,
    api_key: Option<Secret>,
}

impl Azure {
    pub(crate) fn new(
        config: &AzureConfig,
        base_url: String,
        api_key: Option<Secret>,
        _http: &reqwest::Client,
    ) -> Self {
        Azure {
            base_url,
            api_version: config.api_version.clone(),
            api_key,
        }
    }
}

impl CloudApi for Azure {
    fn dialect(&self, _model: &str) -> &'static dyn UpstreamDialect {
        &crate::wire::openai::Upstream::Compatible
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

    fn adapt(
        &self,
        _dialect: &'static dyn UpstreamDialect,
        _body: &mut Value,
        forwarded: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)> {
        forwarded.to_vec()
    }

    fn authorize<'a>(
        &'a self,
        request: &'a mut reqwest::Request,
    ) -> BoxFuture<'a, Result<(), CloudAuthError>> {
        Box::pin(async move {
            let key = self.api_key.as_ref().ok_or_else(|| {
                CloudAuthError::Refused("Entra ID tokens are not wired up yet".into())
            })?;
            set_secret_header(request, HeaderName::from_static("api-key"), key.expose())
        })
    }

    fn semconv_name(&self) -> &'static str {
        "azure.ai.openai"
    }
}
