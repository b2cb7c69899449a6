//! Fault rules, their selection, and the compact `x-sim-fault` /
//! `x-sim-latency` header syntax (documented with a table in the crate docs).

use serde::{Deserialize, Serialize};

use crate::config::Latency;
use crate::format::Format;

/// Which requests a rule applies to; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

impl FaultMatch {
    fn matches(&self, format: Format, model: &str, stream: bool) -> bool {
        self.format.is_none_or(|f| f == format)
            && self.model.as_deref().is_none_or(|m| m == model)
            && self.stream.is_none_or(|s| s == stream)
    }
}

fn one() -> f64 {
    1.0
}

/// A fault with the requests it applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(rename = "match", default)]
    pub matcher: FaultMatch,
    /// Chance (0..=1) that a matching request gets the fault.
    #[serde(default = "one")]
    pub probability: f64,
    /// Only the next N matching requests that fire get the fault; counts down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub fault: Fault,
}

impl FaultRule {
    /// A rule that applies `fault` to every request.
    pub fn always(fault: Fault) -> Self {
        Self {
            matcher: FaultMatch::default(),
            probability: 1.0,
            count: None,
            fault,
        }
    }

    /// Restrict to one wire format.
    pub fn for_format(mut self, format: Format) -> Self {
        self.matcher.format = Some(format);
        self
    }

    /// Restrict to one model name.
    pub fn for_model(mut self, model: impl Into<String>) -> Self {
        self.matcher.model = Some(model.into());
        self
    }

    /// Restrict to streaming (`true`) or non-streaming (`false`) requests.
    pub fn for_stream(mut self, stream: bool) -> Self {
        self.matcher.stream = Some(stream);
        self
    }

    /// Fire only for the next `n` matching requests.
    pub fn times(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    /// Fire with probability `p` (clamped to 0..=1).
    pub fn with_probability(mut self, p: f64) -> Self {
        self.probability = p.clamp(0.0, 1.0);
        self
    }
}

/// Pick the fault for a request from `rules`, counting down `count`.
pub(crate) fn select(
    rules: &mut [FaultRule],
    format: Format,
    model: &str,
    stream: bool,
) -> Option<Fault> {
    for rule in rules.iter_mut() {
        if rule.count == Some(0) || !rule.matcher.matches(format, model, stream) {
            continue;
        }
        let fires = rule.probability >= 1.0
            || (rule.probability > 0.0 && fastrand::f64() < rule.probability);
        if !fires {
            continue;
        }
        if let Some(n) = rule.count.as_mut() {
            *n -= 1;
        }
        return Some(rule.fault.clone());
    }
    None
}

/// An injected failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// An HTTP error status with the provider's body and headers.
    Status(StatusFault),
    /// Wait before sending headers.
    Hang { duration_ms: u64 },
    /// Pause mid-stream, then continue.
    Stall {
        after_chunks: usize,
        duration_ms: u64,
    },
    /// End the body cleanly without the terminator.
    Cut { after_chunks: usize },
    /// One chunk carries invalid JSON.
    Malformed { after_chunks: usize },
    /// An error event inside the 200 stream, then end.
    ErrorEvent {
        after_chunks: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// Abort the connection without a response body.
    ConnectionReset,
    /// Azure's content filter: the prompt refused with a 400
    /// `content_filter`, or (`output`) the answer cut short with
    /// `finish_reason: content_filter`. Off Azure's paths, a 400 in the
    /// path's own shape.
    ContentFilter {
        #[serde(default)]
        output: bool,
    },
}

impl Fault {
    /// A status fault with the provider's default body.
    pub fn status(status: u16) -> Self {
        Fault::Status(StatusFault::new(status))
    }

    /// Wait `duration_ms` before headers.
    pub fn hang(duration_ms: u64) -> Self {
        Fault::Hang { duration_ms }
    }

    /// Pause `duration_ms` after `after_chunks` chunks.
    pub fn stall(after_chunks: usize, duration_ms: u64) -> Self {
        Fault::Stall {
            after_chunks,
            duration_ms,
        }
    }

    /// End the stream after `after_chunks` chunks.
    pub fn cut(after_chunks: usize) -> Self {
        Fault::Cut { after_chunks }
    }

    /// Break the JSON of the chunk after `after_chunks` chunks.
    pub fn malformed(after_chunks: usize) -> Self {
        Fault::Malformed { after_chunks }
    }

    /// Send an in-stream overload error after `after_chunks` chunks.
    pub fn error_event(after_chunks: usize) -> Self {
        Fault::ErrorEvent {
            after_chunks,
            status: None,
        }
    }

    /// Short label used in stats, e.g. `status_529`, `cut`.
    pub(crate) fn label(&self) -> String {
        match self {
            Fault::Status(s) => format!("status_{}", s.status),
            Fault::Hang { .. } => "hang".into(),
            Fault::Stall { .. } => "stall".into(),
            Fault::Cut { .. } => "cut".into(),
            Fault::Malformed { .. } => "malformed".into(),
            Fault::ErrorEvent { .. } => "error_event".into(),
            Fault::ConnectionReset => "connection_reset".into(),
            Fault::ContentFilter { .. } => "content_filter".into(),
        }
    }
}

/// Options of a status fault. In YAML either `status: 529` or
/// `status: { status: 429, retry_after: 3, ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StatusFaultRepr")]
pub struct StatusFault {
    pub status: u16,
    /// `retry-after: N` (Gemini: also `RetryInfo.retryDelay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// `retry-after-ms: N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// `retry-after: <HTTP date>` this many seconds from now (negative = past).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_date: Option<i64>,
    /// Override the error type (OpenAI `type`, Anthropic `error.type`, Gemini `status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Override the error code (OpenAI `code`, e.g. `insufficient_quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Override the human-readable message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Gemini `QuotaFailure` quotaId; one containing `PerDay` signals daily exhaustion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_id: Option<String>,
    /// Sends `x-should-retry: true|false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub should_retry: Option<bool>,
    /// A Cloudflare-style HTML page instead of JSON.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub html: bool,
}

impl StatusFault {
    /// Status `status` with every option unset.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            retry_after_ms: None,
            retry_after_date: None,
            error_type: None,
            code: None,
            message: None,
            quota_id: None,
            should_retry: None,
            html: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusFaultRepr {
    Code(u16),
    Full(StatusFaultFields),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusFaultFields {
    status: u16,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
    #[serde(default)]
    retry_after_date: Option<i64>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    quota_id: Option<String>,
    #[serde(default)]
    should_retry: Option<bool>,
    #[serde(default)]
    html: bool,
}

impl From<StatusFaultRepr> for StatusFault {
    fn from(repr: StatusFaultRepr) -> Self {
        match repr {
            StatusFaultRepr::Code(status) => StatusFault::new(status),
            StatusFaultRepr::Full(f) => StatusFault {
                status: f.status,
                retry_after: f.retry_after,
                retry_after_ms: f.retry_after_ms,
                retry_after_date: f.retry_after_date,
                error_type: f.error_type,
                code: f.code,
                message: f.message,
                quota_id: f.quota_id,
                should_retry: f.should_retry,
                html: f.html,
            },
        }
    }
}

fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{key}: expected a number, got {value:?}"))
}

fn pair(key: &str, value: &str) -> Result<(usize, u64), String> {
    let (a, b) = value
        .split_once(':')
        .ok_or_else(|| format!("{key}: expected AFTER:MS, got {value:?}"))?;
    Ok((num(key, a)?, num(key, b)?))
}

/// Parse an `x-sim-fault` header value.
pub fn parse_fault_header(spec: &str) -> Result<Fault, String> {
    let mut parts = spec.split(';').map(str::trim).filter(|p| !p.is_empty());
    let head = parts.next().ok_or("empty fault spec")?;
    let (kind, value) = head.split_once('=').unwrap_or((head, ""));
    let fault = match kind.trim() {
        "status" => {
            let mut s = StatusFault::new(num("status", value)?);
            for opt in parts.by_ref() {
                let (k, v) = opt.split_once('=').unwrap_or((opt, "true"));
                let v = v.trim();
                match k.trim() {
                    "retry_after" => s.retry_after = Some(num(k, v)?),
                    "retry_after_ms" => s.retry_after_ms = Some(num(k, v)?),
                    "retry_after_date" => s.retry_after_date = Some(num(k, v)?),
                    "error_type" => s.error_type = Some(v.to_string()),
                    "code" => s.code = Some(v.to_string()),
                    "message" => s.message = Some(v.to_string()),
                    "quota_id" => s.quota_id = Some(v.to_string()),
                    "should_retry" => s.should_retry = Some(num(k, v)?),
                    "html" => s.html = num(k, v)?,
                    other => return Err(format!("unknown status option {other:?}")),
                }
            }
            Fault::Status(s)
        }
        "hang" => Fault::hang(num("hang", value)?),
        "stall" => {
            let (after, ms) = pair("stall", value)?;
            Fault::stall(after, ms)
        }
        "cut" => Fault::cut(num("cut", value)?),
        "malformed" => Fault::malformed(num("malformed", value)?),
        "error_event" => match value.split_once(':') {
            Some((after, status)) => Fault::ErrorEvent {
                after_chunks: num("error_event", after)?,
                status: Some(num("error_event", status)?),
            },
            None => Fault::error_event(num("error_event", value)?),
        },
        "connection_reset" | "reset" => Fault::ConnectionReset,
        "content_filter" => Fault::ContentFilter {
            output: match value.trim() {
                "" | "prompt" => false,
                "stream" | "output" => true,
                other => {
                    return Err(format!(
                        "content_filter: expected prompt or stream, got {other:?}"
                    ));
                }
            },
        },
        other => return Err(format!("unknown fault kind {other:?}")),
    };
    if let Some(extra) = parts.next() {
        return Err(format!("unexpected option {extra:?} for this fault kind"));
    }
    Ok(fault)
}

/// Apply an `x-sim-latency` header value on top of `base`.
pub fn parse_latency_header(spec: &str, base: Latency) -> Result<Latency, String> {
    let mut out = base;
    for part in spec
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("expected key=ms, got {part:?}"))?;
        let k = k.trim();
        match k {
            "headers_ms" => out.headers_ms = num(k, v)?,
            "first_token_ms" => out.first_token_ms = num(k, v)?,
            "token_interval_ms" => out.token_interval_ms = num(k, v)?,
            other => return Err(format!("unknown latency key {other:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_specs() {
        assert_eq!(
            parse_fault_header("status=529").unwrap(),
            Fault::status(529)
        );
        assert_eq!(
            parse_fault_header("status=429; retry_after=3;should_retry=false;html").unwrap(),
            Fault::Status(StatusFault {
                retry_after: Some(3),
                should_retry: Some(false),
                html: true,
                ..StatusFault::new(429)
            })
        );
        assert_eq!(parse_fault_header("hang=2000").unwrap(), Fault::hang(2000));
        assert_eq!(
            parse_fault_header("stall=3:5000").unwrap(),
            Fault::stall(3, 5000)
        );
        assert_eq!(parse_fault_header("cut=3").unwrap(), Fault::cut(3));
        assert_eq!(
            parse_fault_header("malformed=2").unwrap(),
            Fault::malformed(2)
        );
        assert_eq!(
            parse_fault_header("error_event=2:500").unwrap(),
            Fault::ErrorEvent {
                after_chunks: 2,
                status: Some(500)
            }
        );
        assert_eq!(parse_fault_header("reset").unwrap(), Fault::ConnectionReset);
        assert_eq!(
            parse_fault_header("content_filter").unwrap(),
            Fault::ContentFilter { output: false }
        );
        assert_eq!(
            parse_fault_header("content_filter=stream").unwrap(),
            Fault::ContentFilter { output: true }
        );
        assert!(parse_fault_header("content_filter=maybe").is_err());
        assert!(parse_fault_header("bogus=1").is_err());
        assert!(parse_fault_header("status=abc").is_err());
        assert!(parse_fault_header("cut=3;retry_after=1").is_err());
    }

    #[test]
    fn latency_header() {
        let base = Latency {
            headers_ms: 7,
            ..Latency::default()
        };
        let l = parse_latency_header("first_token_ms=5, token_interval_ms=2", base).unwrap();
        assert_eq!(
            l,
            Latency {
                headers_ms: 7,
                first_token_ms: 5,
                token_interval_ms: 2
            }
        );
        assert!(parse_latency_header("speed=3", base).is_err());
    }

    #[test]
    fn selection_respects_match_and_count() {
        let mut rules = vec![
            FaultRule::always(Fault::status(529))
                .for_format(Format::Anthropic)
                .times(2),
            FaultRule::always(Fault::cut(1)).for_stream(true),
            FaultRule::always(Fault::status(500)).with_probability(0.0),
        ];
        assert_eq!(select(&mut rules, Format::OpenAi, "m", false), None);
        assert_eq!(
            select(&mut rules, Format::OpenAi, "m", true),
            Some(Fault::cut(1))
        );
        for _ in 0..2 {
            assert_eq!(
                select(&mut rules, Format::Anthropic, "m", false),
                Some(Fault::status(529))
            );
        }
        assert_eq!(rules[0].count, Some(0));
        assert_eq!(select(&mut rules, Format::Anthropic, "m", false), None);
    }

    #[test]
    fn json_round_trip() {
        let rule = FaultRule::always(Fault::stall(1, 2))
            .for_model("x")
            .times(1);
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"match": {"model": "x"}, "probability": 1.0, "count": 1,
                "fault": {"stall": {"after_chunks": 1, "duration_ms": 2}}})
        );
        let back: FaultRule = serde_json::from_value(json).unwrap();
        assert_eq!(back, rule);
        let status: Fault = serde_json::from_str(r#"{"status": 503}"#).unwrap();
        assert_eq!(status, Fault::status(503));
        let reset: Fault = serde_json::from_str(r#""connection_reset""#).unwrap();
        assert_eq!(reset, Fault::ConnectionReset);
    }
}
