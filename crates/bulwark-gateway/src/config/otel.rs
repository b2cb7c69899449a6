//! The `otel:` key: where the gateway sends OpenTelemetry traces (OTLP over
//! HTTP, protobuf). Without it no exporter runs. Only the settings live here:
//! the engine emits plain `tracing` spans, and the binary exports them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use bulwark::config::{Document, Issue, Secret};

/// The OTLP/HTTP port on this machine, as every collector listens by default.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";
pub const DEFAULT_SERVICE_NAME: &str = "bulwark";

#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// The collector's base URL, without a trailing `/`; see [`Self::traces_url`].
    pub endpoint: String,
    /// `service.name` of every span.
    pub service_name: String,
    /// The share of requests traced, 0 to 1, decided per trace.
    pub sample_ratio: f64,
    /// Sent with every export, e.g. a vendor's API key.
    pub headers: BTreeMap<String, Secret>,
}

impl OtelConfig {
    /// Where spans are posted: the OTLP/HTTP traces path under the endpoint.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtel {
    endpoint: Option<String>,
    service_name: Option<String>,
    sample_ratio: Option<f64>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// `None` when the key is absent, or when it has problems (reported in
/// `issues`, which then keep the config from loading).
pub(crate) fn build(
    raw: Option<Value>,
    doc: &Document,
    issues: &mut Vec<Issue>,
) -> Option<OtelConfig> {
    let raw = doc.read::<RawOtel>(raw?, "otel", issues)?;
    let before = issues.len();
    let endpoint = raw
        .endpoint
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
        .trim_end_matches('/')
        .to_string();
    match reqwest::Url::parse(&endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            if url.path().ends_with("/v1/traces") {
                issues.push(Issue {
                    path: "otel.endpoint".into(),
                    message: format!(
                        "`{endpoint}` already ends in /v1/traces; give the collector's base URL (e.g. {DEFAULT_ENDPOINT}), the traces path is added"
                    ),
                });
            }
        }
        _ => issues.push(Issue {
            path: "otel.endpoint".into(),
            message: format!("`{endpoint}` is not an http(s) URL"),
        }),
    }
    let service_name = raw
        .service_name
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
    if service_name.trim().is_empty() {
        issues.push(Issue {
            path: "otel.service_name".into(),
            message: "must not be empty".into(),
        });
    }
    let sample_ratio = raw.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        issues.push(Issue {
            path: "otel.sample_ratio".into(),
            message: format!("{sample_ratio} is not between 0 and 1"),
        });
    }
    let mut headers = BTreeMap::new();
    for (name, value) in raw.headers {
        let path = format!("otel.headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            issues.push(Issue {
                path,
                message: "is not a valid HTTP header name".into(),
            });
        } else if http::HeaderValue::from_str(&value).is_err() {
            // The value is not shown: it is often a key.
            issues.push(Issue {
                path,
                message: "the value is not a valid HTTP header value".into(),
            });
        } else {
            headers.insert(name, Secret::new(value));
        }
    }
    (issues.len() == before).then_some(OtelConfig {
        endpoint,
        service_name,
        sample_ratio,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;
    use bulwark::config::ConfigError;

    const PROVIDERS: &str = "providers:\n  a: { kind: openai }\n";

    fn load(otel: &str) -> Result<GatewayConfig, ConfigError> {
        let env = |name: &str| (name == "HONEYCOMB_KEY").then(|| "hc-secret".to_string());
        GatewayConfig::from_yaml(&format!("{PROVIDERS}{otel}"), "test.yaml", &env)
    }

    #[test]
    fn absent_means_no_tracing() -> Result<(), ConfigError> {
        assert_eq!(load("")?.otel, None);
        Ok(())
    }

    #[test]
    fn reads_every_key_and_defaults_the_rest() -> Result<(), ConfigError> {
        let config = load(
            "otel:\n  endpoint: https://api.honeycomb.io/\n  service_name: gw-eu\n  sample_ratio: 0.25\n  headers: { x-honeycomb-team: ${HONEYCOMB_KEY} }\n",
        )?;
        let Some(otel) = config.otel else {
            panic!("no otel config");
        };
        assert_eq!(otel.endpoint, "https://api.honeycomb.io");
        assert_eq!(otel.traces_url(), "https://api.honeycomb.io/v1/traces");
        assert_eq!(otel.service_name, "gw-eu");
        assert_eq!(otel.sample_ratio, 0.25);
        assert_eq!(
            otel.headers.get("x-honeycomb-team").map(Secret::expose),
            Some("hc-secret")
        );
        assert!(!format!("{:?}", otel.headers).contains("hc-secret"));

        let defaults = load("otel: {}\n")?.otel;
        assert_eq!(
            defaults,
            Some(OtelConfig {
                endpoint: DEFAULT_ENDPOINT.into(),
                service_name: "bulwark".into(),
                sample_ratio: 1.0,
                headers: BTreeMap::new(),
            })
        );
        Ok(())
    }

    #[test]
    fn reports_each_problem_with_its_path() {
        let Err(error) = load(
            "otel:\n  endpoint: grpc://collector:4317\n  service_name: ''\n  sample_ratio: 1.5\n  headers: { 'bad name': x, ok: \"line\\nbreak\" }\n",
        ) else {
            panic!("an invalid otel config loaded");
        };
        let found: Vec<(&str, &str)> = error
            .issues
            .iter()
            .map(|i| (i.path.as_str(), i.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "otel.endpoint",
                    "`grpc://collector:4317` is not an http(s) URL"
                ),
                ("otel.service_name", "must not be empty"),
                ("otel.sample_ratio", "1.5 is not between 0 and 1"),
                ("otel.headers.bad name", "is not a valid HTTP header name"),
                (
                    "otel.headers.ok",
                    "the value is not a valid HTTP header value"
                ),
            ]
        );

        let Err(error) = load("otel: { endpoint: http://127.0.0.1:4318/v1/traces }\n") else {
            panic!("a traces URL was taken as the endpoint");
        };
        assert_eq!(error.issues[0].path, "otel.endpoint");
        assert!(
            error.issues[0]
                .message
                .contains("already ends in /v1/traces")
        );

        let Err(error) = load("otel: { endpont: http://127.0.0.1:4318 }\n") else {
            panic!("a misspelled key loaded");
        };
        assert_eq!(error.issues[0].path, "otel.endpont");
        assert!(error.issues[0].message.contains("unknown field"));
    }
}
