//! Incident scenarios: which providers exist, and what each of them does
//! over the course of the incident. The format is documented with examples
//! in `SCENARIOS.md`; this module holds the types and the parsing, and
//! `validate` the rules a parsed scenario must meet.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use bulwark_sim::Format;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::error::{Issue, ScenarioError};
use bulwark::config::duration;

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Length in scenario time; the last phase of every provider runs to it.
    #[serde(deserialize_with = "duration::required")]
    pub duration: Duration,
    /// The provider a "without Bulwark" baseline calls directly.
    pub primary: String,
    /// The compression the scenario was written for, used when the drill is
    /// not given one.
    #[serde(default)]
    pub speed: Option<f64>,
    pub providers: BTreeMap<String, Provider>,
    #[serde(default)]
    pub load: Load,
}

/// One simulated provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub format: WireFormat,
    #[serde(default)]
    pub models: Vec<String>,
    /// Pacing for every phase; a phase's own `latency` overrides it
    /// component by component.
    #[serde(default)]
    pub latency: Option<LatencySpec>,
    #[serde(default)]
    pub phases: Vec<Phase>,
}

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    Anthropic,
    Openai,
    Gemini,
    /// OpenAI's wire format from another vendor (vLLM, Groq, Mistral, ...).
    OpenaiCompatible,
}

impl WireFormat {
    /// The simulator format serving it.
    pub fn sim_format(self) -> Format {
        match self {
            WireFormat::Anthropic => Format::Anthropic,
            WireFormat::Openai | WireFormat::OpenaiCompatible => Format::OpenAi,
            WireFormat::Gemini => Format::Gemini,
        }
    }
}

/// One stretch of a provider's timeline. It repeats the fields of
/// `Conditions` rather than flattening them in: serde cannot combine
/// `flatten` with `deny_unknown_fields`, and a misspelt fault key must be an
/// error, not a healthy phase.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    /// End in scenario time; left out on the last phase, which runs to the
    /// scenario's `duration`.
    #[serde(default, deserialize_with = "duration::optional")]
    pub until: Option<Duration>,
    #[serde(default)]
    pub latency: Option<LatencySpec>,
    #[serde(default)]
    pub errors: BTreeMap<u16, ErrorShare>,
    #[serde(default)]
    pub hang: Option<HangSpec>,
    #[serde(default)]
    pub stall: Option<StallSpec>,
    #[serde(default)]
    pub cut: Option<CutSpec>,
    #[serde(default)]
    pub error_event: Option<ErrorEventSpec>,
    /// Share of requests whose connection is reset with no response.
    #[serde(default)]
    pub reset: Option<f64>,
    /// Request quota per scenario minute.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Alternate between this phase's conditions and `flap.down`.
    #[serde(default)]
    pub flap: Option<Flap>,
}

impl Phase {
    /// The conditions while up (the whole phase when it does not flap).
    pub fn conditions(&self) -> Conditions {
        Conditions {
            latency: self.latency.clone(),
            errors: self.errors.clone(),
            hang: self.hang.clone(),
            stall: self.stall.clone(),
            cut: self.cut,
            error_event: self.error_event,
            reset: self.reset,
            rpm: self.rpm,
        }
    }
}

/// What a provider does at one moment: latency, the fault mix and quota.
/// Unset parts are healthy.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default)]
    pub latency: Option<LatencySpec>,
    #[serde(default)]
    pub errors: BTreeMap<u16, ErrorShare>,
    #[serde(default)]
    pub hang: Option<HangSpec>,
    #[serde(default)]
    pub stall: Option<StallSpec>,
    #[serde(default)]
    pub cut: Option<CutSpec>,
    #[serde(default)]
    pub error_event: Option<ErrorEventSpec>,
    #[serde(default)]
    pub reset: Option<f64>,
    #[serde(default)]
    pub rpm: Option<u64>,
}

impl Conditions {
    /// Every fault share with its key path (relative to the conditions).
    pub fn shares(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .errors
            .iter()
            .map(|(status, e)| (format!("errors.{status}"), e.share()))
            .collect();
        let mut push = |key: &str, share: Option<f64>| {
            if let Some(share) = share {
                out.push((key.to_string(), share));
            }
        };
        push("hang.share", self.hang.as_ref().map(|h| h.share));
        push("stall.share", self.stall.as_ref().map(|s| s.share));
        push("cut.share", self.cut.map(|c| c.share));
        push("error_event.share", self.error_event.map(|e| e.share));
        push("reset", self.reset);
        out
    }
}

/// Going down for `down_for` at the start of every `period`, up for the rest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flap {
    #[serde(deserialize_with = "duration::required")]
    pub period: Duration,
    #[serde(deserialize_with = "duration::required")]
    pub down_for: Duration,
    pub down: Conditions,
}

/// Pacing components; each a fixed duration or a `{ p50, p95 }` spread.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// Before the response headers (time to first byte of a non-stream).
    #[serde(default)]
    pub headers: Option<Spread>,
    /// Before the first content chunk of a stream.
    #[serde(default)]
    pub first_token: Option<Spread>,
    /// Between content chunks.
    #[serde(default)]
    pub per_token: Option<Spread>,
}

impl LatencySpec {
    /// `self` with the components it leaves out taken from `base`.
    pub fn over(&self, base: Option<&LatencySpec>) -> LatencySpec {
        let base = base.cloned().unwrap_or_default();
        LatencySpec {
            headers: self.headers.or(base.headers),
            first_token: self.first_token.or(base.first_token),
            per_token: self.per_token.or(base.per_token),
        }
    }
}

/// A duration that is either fixed (`400ms`) or drawn per request from a
/// log-normal through two percentiles (`{ p50: 400ms, p95: 1.2s }`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spread {
    Fixed(Duration),
    Percentiles { p50: Duration, p95: Duration },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PercentilesRepr {
    #[serde(deserialize_with = "duration::required")]
    p50: Duration,
    #[serde(deserialize_with = "duration::required")]
    p95: Duration,
}

struct SpreadVisitor;

impl<'de> Visitor<'de> for SpreadVisitor {
    type Value = Spread;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 400ms, or { p50: 400ms, p95: 1.2s }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Spread, E> {
        duration::parse(v).map(Spread::Fixed).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Spread, E> {
        Err(E::custom(format!("`{v}` has no unit; write e.g. {v}ms")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Spread, E> {
        Err(E::custom(format!("`{v}` has no unit; write e.g. {v}ms")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Spread, E> {
        Err(E::custom(format!("`{v}` has no unit; write e.g. {v}s")))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Spread, A::Error> {
        let r = PercentilesRepr::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Spread::Percentiles {
            p50: r.p50,
            p95: r.p95,
        })
    }
}

impl<'de> Deserialize<'de> for Spread {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpreadVisitor)
    }
}

/// A status's share of requests: `0.45`, or with body details
/// `{ share: 0.45, type: overloaded_error, retry_after: 30s }`.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorShare {
    Share(f64),
    Detailed(ErrorDetails),
}

impl ErrorShare {
    pub fn share(&self) -> f64 {
        match self {
            ErrorShare::Share(s) => *s,
            ErrorShare::Detailed(d) => d.share,
        }
    }
}

/// Overrides for the provider's error body and headers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetails {
    pub share: f64,
    /// Error type (OpenAI `type`, Anthropic `error.type`, Gemini `status`).
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Advertised as `retry-after` (compressed with the scenario).
    #[serde(default, deserialize_with = "duration::optional")]
    pub retry_after: Option<Duration>,
    /// A CDN's HTML error page instead of the provider's JSON.
    #[serde(default)]
    pub html: bool,
}

struct ErrorShareVisitor;

impl<'de> Visitor<'de> for ErrorShareVisitor {
    type Value = ErrorShare;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a share such as 0.45, or { share: 0.45, type: ..., retry_after: 30s }")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ErrorShare, E> {
        Ok(ErrorShare::Share(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ErrorShare, E> {
        Ok(ErrorShare::Share(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ErrorShare, E> {
        Ok(ErrorShare::Share(v as f64))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ErrorShare, A::Error> {
        ErrorDetails::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(ErrorShare::Detailed)
    }
}

impl<'de> Deserialize<'de> for ErrorShare {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ErrorShareVisitor)
    }
}

/// Requests that wait `for` before the response starts (then succeed,
/// unless the client gave up first).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangSpec {
    pub share: f64,
    #[serde(rename = "for")]
    pub length: Spread,
}

/// Streams that go silent for `for` after `after` events, then resume.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallSpec {
    pub share: f64,
    #[serde(default = "default_after")]
    pub after: usize,
    #[serde(rename = "for")]
    pub length: Spread,
}

/// Streams that end after `after` events without their terminator.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutSpec {
    pub share: f64,
    #[serde(default = "default_after")]
    pub after: usize,
}

/// Streams that carry the provider's in-stream error event after `after`
/// events (`status` picks the error; default: the provider's overload).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorEventSpec {
    pub share: f64,
    #[serde(default = "default_after")]
    pub after: usize,
    #[serde(default)]
    pub status: Option<u16>,
}

fn default_after() -> usize {
    3
}

/// Default traffic for a drill of this scenario, in scenario time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Load {
    /// Requests per scenario second when `phases` is empty.
    pub rps: f64,
    /// Share of requests that stream.
    pub stream_share: f64,
    /// Share of clients speaking Anthropic's format to the gateway (the rest
    /// speak OpenAI's).
    pub anthropic_client_share: f64,
    /// Traffic changes over the scenario (a surge, a lull).
    pub phases: Vec<LoadPhase>,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            rps: 5.0,
            stream_share: 0.5,
            anthropic_client_share: 0.5,
            phases: Vec::new(),
        }
    }
}

impl Load {
    /// The request rate at scenario time `t`.
    pub fn rps_at(&self, t: Duration) -> f64 {
        self.phases
            .iter()
            .find(|p| p.until.is_none_or(|until| t < until))
            .or(self.phases.last())
            .map_or(self.rps, |p| p.rps)
    }
}

/// A stretch of constant request rate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPhase {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub until: Option<Duration>,
    pub rps: f64,
}

impl Scenario {
    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            source_name: source_name.clone(),
            issues: vec![Issue::new("", format!("cannot read the file: {e}"))],
        })?;
        Scenario::parse(&text, &source_name)
    }

    /// Parse and validate scenario text; `source_name` prefixes every
    /// problem.
    pub fn parse(text: &str, source_name: &str) -> Result<Scenario, ScenarioError> {
        let fail = |issues| ScenarioError {
            source_name: source_name.to_string(),
            issues,
        };
        // Through a JSON value, as `bulwark check` does, so that
        // serde_path_to_error can name the key that failed.
        let value: serde_json::Value = serde_saphyr::from_str(text)
            .map_err(|e| fail(vec![Issue::new("", format!("not valid YAML: {e}"))]))?;
        let scenario: Scenario = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            fail(vec![Issue::new(path, e.into_inner().to_string())])
        })?;
        let issues = crate::validate::validate(&scenario);
        if issues.is_empty() {
            Ok(scenario)
        } else {
            Err(fail(issues))
        }
    }

    /// Where each provider's phases start and end, in scenario time.
    pub fn phase_bounds(&self, provider: &Provider) -> Vec<(Duration, Duration)> {
        let mut start = Duration::ZERO;
        provider
            .phases
            .iter()
            .map(|p| {
                let end = p.until.unwrap_or(self.duration).min(self.duration);
                let bounds = (start, end);
                start = end;
                bounds
            })
            .collect()
    }
}
