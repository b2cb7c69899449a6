//! Simulator configuration, constructible in Rust or loaded from a YAML
//! scenario file.
//!
//! ```yaml
//! latency: { headers_ms: 0, first_token_ms: 0, token_interval_ms: 0 }
//! latency_dist: { first_token: { p50_ms: 400, p95_ms: 1200 } }
//! speed: 1
//! rate_limit_rpm: null
//! models: [gpt-4o-mini, claude-sonnet-4-5, gemini-2.5-flash]
//! strict_models: false
//! api_key: null
//! faults:
//!   - match: { format: anthropic, stream: true }
//!     probability: 0.5
//!     count: 3
//!     fault: { stall: { after_chunks: 3, duration_ms: 5000 } }
//!   - fault: { status: 529 }
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cloud::azure::AzureSimConfig;
use crate::dist::LatencyDist;
use crate::error::SimError;
use crate::fault::FaultRule;

/// Pacing applied to every response unless a request overrides it with the
/// `x-sim-latency` header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    /// Delay before the response headers are sent.
    pub headers_ms: u64,
    /// Delay before the first content chunk of a stream.
    pub first_token_ms: u64,
    /// Delay between subsequent content chunks of a stream.
    pub token_interval_ms: u64,
}

/// Whole-simulator configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub latency: Latency,
    /// Per-request sampled pacing; components it sets replace the fixed
    /// values of `latency` (an `x-sim-latency` header still wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_dist: Option<LatencyDist>,
    /// Time compression: every duration waited or advertised is divided by
    /// this (see the `speed` module); 1 is real time.
    pub speed: f64,
    /// Models listed by the model endpoints (and the only ones accepted when
    /// `strict_models` is set).
    pub models: Vec<String>,
    /// Reject unknown models with 404 instead of answering leniently.
    pub strict_models: bool,
    /// When set, requests must carry this key in the provider's auth header.
    pub api_key: Option<String>,
    /// Fault rules, checked in order; the first that matches and fires wins.
    pub faults: Vec<FaultRule>,
    /// Rate-limiting mode: at most this many generation requests in any
    /// minute (a minute of scenario time: `60 s / speed`); more get 429
    /// with real rate-limit headers, and every answer's headers say how many
    /// requests remain.
    pub rate_limit_rpm: Option<u64>,
    /// Amazon Bedrock's credentials; `None`: Bedrock paths check no auth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<crate::cloud::bedrock::BedrockSimConfig>,
    /// Google Vertex AI's project, region and service account; `None`:
    /// Vertex paths check no token, project or region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertex: Option<crate::cloud::vertex::VertexSimConfig>,
    /// Azure OpenAI's credentials and API versions (`None`: Azure's paths
    /// check no credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSimConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            latency_dist: None,
            speed: 1.0,
            models: [
                "gpt-4o-mini",
                "gpt-4o",
                "claude-sonnet-4-5",
                "claude-haiku-4-5",
                "gemini-2.5-flash",
                "gemini-2.5-pro",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            strict_models: false,
            api_key: None,
            faults: Vec::new(),
            rate_limit_rpm: None,
            bedrock: None,
            vertex: None,
            azure: None,
        }
    }
}

/// Parse a YAML scenario; errors name the file and the reason.
pub fn load_scenario(path: &Path) -> Result<SimConfig, SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::ScenarioIo {
        path: path.to_path_buf(),
        source,
    })?;
    parse_scenario(&text).map_err(|reason| SimError::Scenario {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parse scenario text; split out so tests need no files.
pub(crate) fn parse_scenario(text: &str) -> Result<SimConfig, String> {
    if text.trim().is_empty() {
        return Ok(SimConfig::default());
    }
    let config: SimConfig = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    config.problem().map_or(Ok(config), Err)
}

impl SimConfig {
    /// The first value that would make the simulator misbehave, described
    /// with its key path.
    pub fn problem(&self) -> Option<String> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Some(format!("speed must be above 0, got {}", self.speed));
        }
        if let Some(problem) = self.latency_dist.as_ref().and_then(LatencyDist::problem) {
            return Some(format!("latency_dist.{problem}"));
        }
        self.faults.iter().enumerate().find_map(|(i, rule)| {
            (!(0.0..=1.0).contains(&rule.probability)).then(|| {
                format!(
                    "faults[{i}].probability must be between 0 and 1, got {}",
                    rule.probability
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Fault, StatusFault};
    use crate::format::Format;

    #[test]
    fn full_scenario_parses() {
        let yaml = r#"
latency: { headers_ms: 1, first_token_ms: 2, token_interval_ms: 3 }
models: [a, b]
strict_models: true
api_key: sk-test
faults:
  - match: { format: anthropic, model: b, stream: true }
    probability: 0.5
    count: 3
    fault: { stall: { after_chunks: 3, duration_ms: 5000 } }
  - fault: { status: 529 }
  - fault: { status: { status: 429, retry_after: 3, code: insufficient_quota } }
  - fault: connection_reset
  - fault: { error_event: { after_chunks: 2 } }
"#;
        let c = parse_scenario(yaml).unwrap();
        assert_eq!(c.latency.token_interval_ms, 3);
        assert_eq!(c.models, vec!["a", "b"]);
        assert!(c.strict_models);
        assert_eq!(c.api_key.as_deref(), Some("sk-test"));
        assert_eq!(c.faults.len(), 5);
        assert_eq!(c.faults[0].matcher.format, Some(Format::Anthropic));
        assert_eq!(c.faults[0].count, Some(3));
        assert_eq!(
            c.faults[0].fault,
            Fault::Stall {
                after_chunks: 3,
                duration_ms: 5000
            }
        );
        assert_eq!(c.faults[1].fault, Fault::status(529));
        assert_eq!(c.faults[1].probability, 1.0);
        let Fault::Status(s) = &c.faults[2].fault else {
            panic!("not a status fault")
        };
        assert_eq!(
            s,
            &StatusFault {
                retry_after: Some(3),
                code: Some("insufficient_quota".into()),
                ..StatusFault::new(429)
            }
        );
        assert_eq!(c.faults[3].fault, Fault::ConnectionReset);
    }

    #[test]
    fn speed_and_latency_dist_parse_and_validate() {
        let c = parse_scenario(
            "speed: 60\nrate_limit_rpm: 30\nlatency_dist: { first_token: { p50_ms: 400, p95_ms: 1200 } }\n",
        )
        .unwrap();
        assert_eq!(c.speed, 60.0);
        assert_eq!(c.rate_limit_rpm, Some(30));
        assert!(c.latency_dist.unwrap().first_token.is_some());
        assert!(parse_scenario("speed: 0\n").unwrap_err().contains("speed"));
        let err = parse_scenario("latency_dist: { first_token: { p50_ms: 9, p95_ms: 1 } }\n")
            .unwrap_err();
        assert!(err.starts_with("latency_dist.first_token: "), "{err}");
    }

    #[test]
    fn azure_section_parses_and_hides_secrets() {
        let c = parse_scenario(
            "azure: { api_key: k1, tenant_id: t, client_id: c, client_secret: s3cret, token_ttl_secs: 5 }\n",
        )
        .unwrap();
        let azure = c.azure.unwrap();
        assert_eq!(azure.api_key.as_deref(), Some("k1"));
        assert_eq!(azure.token_ttl_secs, 5);
        assert_eq!(azure.api_versions, None);
        let debug = format!("{azure:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("k1"),
            "{debug}"
        );
        assert!(parse_scenario("azure: { bogus: 1 }\n").is_err());
    }

    #[test]
    fn empty_scenario_is_default() {
        assert_eq!(parse_scenario("").unwrap(), SimConfig::default());
    }

    #[test]
    fn bad_scenario_reports_file_and_reason() {
        let dir = std::env::temp_dir().join(format!("bulwark-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "latency: { bogus: 1 }\n").unwrap();
        let err = load_scenario(&path).unwrap_err().to_string();
        assert!(err.contains("bad.yaml"), "{err}");
        assert!(err.contains("bogus"), "{err}");
        let missing = load_scenario(&dir.join("missing.yaml")).unwrap_err();
        assert!(missing.to_string().contains("missing.yaml"));
    }
}
