//! Amazon Bedrock. Claude: Anthropic's Messages body at
//! `/model/{modelId}/invoke` (complete) and
//! `/invoke-with-response-stream` (AWS event stream), without `model` and
//! `stream`, with `anthropic_version`. Every other model (Nova, Llama,
//! Mistral...): the Converse API's body at `/model/{modelId}/converse` and
//! `/converse-stream`. Signed with SigV4 or sent with a Bedrock API key.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::{CloudApi, CloudAuthError, Framing, path_segment, set_secret_header};
use crate::api::WireFormat;
use crate::config::{AwsCredentials, BedrockConfig, Secret};
use crate::error::ApiError;
use crate::wire::UpstreamDialect;

/// The Messages API version Bedrock takes in the body.
pub(crate) const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The service name in SigV4 credential scopes, for Bedrock's runtime too.
const SIGNING_NAME: &str = "bedrock";

#[derive(Debug)]
pub(crate) struct Bedrock {
    base_url: String,
    region: String,
    credentials: Option<AwsCredentials>,
    api_key: Option<Secret>,
}

impl Bedrock {
    pub(crate) fn new(config: &BedrockConfig, base_url: String, api_key: Option<Secret>) -> Self {
        Bedrock {
            base_url,
            region: config.region.clone(),
            credentials: config.credentials.clone(),
            api_key,
        }
    }
}

/// Whether Bedrock serves `model` through Anthropic's Messages API.
fn is_anthropic(model: &str) -> bool {
    model.contains("anthropic.")
}

/// Signs `request` (URL, headers and body final) with SigV4 at `time`:
/// adds `x-amz-date`, `x-amz-security-token` with session credentials,
/// and `authorization`. Only `host`, `content-type` and the `x-amz-*`
/// headers are signed: others may still change on the way (a proxy's, or
/// the HTTP client's own) and would break the signature.
pub(crate) fn sign_request(
    request: &mut reqwest::Request,
    credentials: &AwsCredentials,
    region: &str,
    time: SystemTime,
) -> Result<(), CloudAuthError> {
    sign_for(request, credentials, (region, SIGNING_NAME), time)
}

/// [`sign_request`] for any service: `scope` is the region and the service.
fn sign_for(
    request: &mut reqwest::Request,
    credentials: &AwsCredentials,
    (region, service): (&str, &str),
    time: SystemTime,
) -> Result<(), CloudAuthError> {
    let identity: Identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials
            .session_token
            .as_ref()
            .map(|token| token.expose().to_string()),
        None,
        "bulwark-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CloudAuthError::Refused(format!("SigV4 signing parameters: {e}")))?
        .into();
    let body = match request.body() {
        None => &[][..],
        Some(body) => body.as_bytes().ok_or_else(|| {
            CloudAuthError::Refused("a streamed request body cannot be signed".into())
        })?,
    };
    let signed_headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter(|(name, _)| {
            *name == http::header::CONTENT_TYPE || name.as_str().starts_with("x-amz-")
        })
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        signed_headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| CloudAuthError::Refused(format!("the request cannot be signed: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| CloudAuthError::Refused(format!("SigV4 signing failed: {e}")))?
        .into_parts();
    let (headers, _params) = instructions.into_parts();
    for header in headers {
        let name = HeaderName::from_bytes(header.name().as_bytes()).map_err(|_| {
            CloudAuthError::Refused(format!(
                "the signer named an invalid header `{}`",
                header.name()
            ))
        })?;
        let mut value = HeaderValue::from_str(header.value()).map_err(|_| {
            CloudAuthError::Refused(format!("the signed `{name}` is not a valid header value"))
        })?;
        value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

impl CloudApi for Bedrock {
    /// Claude's model ids name Anthropic (`anthropic.claude-...`, and with
    /// a cross-region inference profile `us.anthropic.claude-...`); the
    /// Converse API serves the rest, and has no Anthropic-only features.
    fn dialect(&self, model: &str) -> &'static dyn UpstreamDialect {
        if is_anthropic(model) {
            &crate::wire::anthropic::Upstream
        } else {
            &crate::wire::converse::Upstream
        }
    }

    fn url(
        &self,
        dialect: &'static dyn UpstreamDialect,
        model: &str,
        stream: bool,
    ) -> Result<String, ApiError> {
        let action = match (dialect.format(), stream) {
            (WireFormat::Converse, true) => "converse-stream",
            (WireFormat::Converse, false) => "converse",
            (_, true) => "invoke-with-response-stream",
            (_, false) => "invoke",
        };
        Ok(format!(
            "{}/model/{}/{action}",
            self.base_url,
            path_segment(model)?
        ))
    }

    fn adapt(
        &self,
        dialect: &'static dyn UpstreamDialect,
        body: &mut Value,
        forwarded: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)> {
        if dialect.format() == WireFormat::Converse {
            // The URL names the model and asks for the stream; a request
            // for a complete answer was marked `stream: false`, a field
            // Converse refuses. The client's headers name another API.
            if let Some(body) = body.as_object_mut() {
                body.remove("stream");
            }
            return Vec::new();
        }
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
            if let Some(credentials) = &self.credentials {
                return sign_request(request, credentials, &self.region, SystemTime::now());
            }
            let key = self.api_key.as_ref().ok_or_else(|| {
                CloudAuthError::Refused(
                    "no Bedrock API key and no AWS credentials to sign with".into(),
                )
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

    /// Bedrock names its errors in `x-amzn-ErrorType`
    /// (`ThrottlingException:http://internal.amazon.com/coral/...`), its
    /// body holding only a message.
    fn error_code(&self, headers: &HeaderMap, body: Option<&Value>) -> Option<String> {
        let from_header = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(':').next());
        let from_body = body
            .and_then(|b| b.get("__type"))
            .and_then(Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t));
        from_header
            .or(from_body)
            .map(str::trim)
            .filter(|code| !code.is_empty())
            .map(String::from)
    }

    fn semconv_name(&self) -> &'static str {
        "aws.bedrock"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn credentials(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
            source: "the test".into(),
        }
    }

    fn bedrock(credentials: Option<AwsCredentials>, api_key: Option<&str>) -> Bedrock {
        Bedrock::new(
            &BedrockConfig {
                region: "us-east-1".into(),
                credentials,
            },
            "https://bedrock-runtime.us-east-1.amazonaws.com".into(),
            api_key.map(Secret::new),
        )
    }

    fn header<'r>(request: &'r reqwest::Request, name: &str) -> &'r str {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// AWS's published SigV4 test suite, post-vanilla: what is signed and
    /// how is the suite's, so the signature is its published one.
    #[test]
    fn signs_as_the_aws_test_suite_says() {
        let mut request = reqwest::Client::new()
            .post("https://example.amazonaws.com/")
            // Not signed: a header on the way may change it.
            .header("user-agent", "bulwark")
            .build()
            .unwrap();
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        sign_for(
            &mut request,
            &credentials(None),
            ("us-east-1", "service"),
            time,
        )
        .unwrap();
        assert_eq!(header(&request, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&request, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert!(request.headers()["authorization"].is_sensitive());
    }

    #[tokio::test]
    async fn bedrock_requests_sign_the_body_the_model_path_and_the_session_token() {
        let cloud = bedrock(Some(credentials(Some("session-token"))), None);
        let url = cloud
            .url(
                &crate::wire::anthropic::Upstream,
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
                true,
            )
            .unwrap();
        assert!(url.ends_with(
            "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
        ));
        let mut request = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body("{}")
            .build()
            .unwrap();
        cloud.authorize(&mut request).await.unwrap();
        let auth = header(&request, "authorization");
        assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert_eq!(header(&request, "x-amz-security-token"), "session-token");
        assert!(request.headers()["x-amz-security-token"].is_sensitive());
    }

    #[tokio::test]
    async fn an_api_key_is_a_bearer_token_and_nothing_is_refused() {
        let cloud = bedrock(None, Some("bedrock-key"));
        let mut request = reqwest::Client::new().post("https://x/").build().unwrap();
        cloud.authorize(&mut request).await.unwrap();
        assert_eq!(header(&request, "authorization"), "Bearer bedrock-key");
        let none = bedrock(None, None);
        let refused = none.authorize(&mut request).await.unwrap_err();
        assert!(matches!(refused, CloudAuthError::Refused(_)));
    }

    #[test]
    fn the_body_loses_model_and_stream_and_gains_version_and_betas() {
        let cloud = bedrock(None, Some("k"));
        let mut body = serde_json::json!({"model": "m", "stream": true, "max_tokens": 5});
        let forwarded = [
            (
                HeaderName::from_static("anthropic-beta"),
                HeaderValue::from_static("a-1, b-2"),
            ),
            (
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static("2023-06-01"),
            ),
            (
                HeaderName::from_static("x-other"),
                HeaderValue::from_static("kept"),
            ),
        ];
        let left = cloud.adapt(&crate::wire::anthropic::Upstream, &mut body, &forwarded);
        assert_eq!(
            body,
            serde_json::json!({"max_tokens": 5, "anthropic_version": ANTHROPIC_VERSION,
                "anthropic_beta": ["a-1", "b-2"]})
        );
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, "x-other");
    }

    #[test]
    fn error_codes_come_from_x_amzn_errortype() {
        let cloud = bedrock(None, Some("k"));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ),
        );
        assert_eq!(
            cloud.error_code(&headers, None).as_deref(),
            Some("ThrottlingException")
        );
        let body = serde_json::json!({"__type": "com.amazon#ValidationException", "message": "x"});
        assert_eq!(
            cloud.error_code(&HeaderMap::new(), Some(&body)).as_deref(),
            Some("ValidationException")
        );
        assert_eq!(cloud.error_code(&HeaderMap::new(), None), None);
    }

    #[test]
    fn models_other_than_claude_go_to_converse_with_its_body_untouched() {
        let cloud = bedrock(None, Some("k"));
        for claude in [
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ] {
            assert_eq!(cloud.dialect(claude).format(), WireFormat::Anthropic);
        }
        let converse = cloud.dialect("amazon.nova-pro-v1:0");
        assert_eq!(converse.format(), WireFormat::Converse);
        assert_eq!(
            cloud.dialect("meta.llama3-70b-instruct-v1:0").format(),
            WireFormat::Converse
        );
        let stream = cloud.url(converse, "amazon.nova-pro-v1:0", true).unwrap();
        assert_eq!(
            stream,
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/converse-stream"
        );
        let complete = cloud.url(converse, "amazon.nova-pro-v1:0", false).unwrap();
        assert!(complete.ends_with("/model/amazon.nova-pro-v1%3A0/converse"));
        let mut body = serde_json::json!({"messages": [], "stream": false});
        let forwarded = [(
            HeaderName::from_static("anthropic-beta"),
            HeaderValue::from_static("a-1"),
        )];
        let left = cloud.adapt(converse, &mut body, &forwarded);
        assert_eq!(body, serde_json::json!({"messages": []}));
        assert!(left.is_empty());
    }
}
