//! Response headers in each provider's style: request ids, rate-limit
//! headers (OpenAI Go-duration resets, Anthropic RFC 3339 resets, none for
//! Gemini) and retry hints.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::clock;
use crate::fault::StatusFault;
use crate::format::Format;

const OPENAI_RPM: u64 = 10_000;
const OPENAI_TPM: u64 = 10_000_000;
const ANTHROPIC_RPM: u64 = 4_000;
const ANTHROPIC_TPM: u64 = 2_000_000;

fn put(map: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        map.insert(HeaderName::from_static(name), v);
    }
}

/// The request quota as it really stands (rate-limiting mode).
pub(crate) fn request_quota(
    h: &mut HeaderMap,
    format: Format,
    limit: u64,
    left: u64,
    reset: std::time::Duration,
) {
    match format {
        Format::OpenAi => {
            put(h, "x-ratelimit-limit-requests", limit);
            put(h, "x-ratelimit-remaining-requests", left);
            put(
                h,
                "x-ratelimit-reset-requests",
                clock::go_duration(reset.as_millis() as u64),
            );
        }
        Format::Anthropic => {
            put(h, "anthropic-ratelimit-requests-limit", limit);
            put(h, "anthropic-ratelimit-requests-remaining", left);
            put(
                h,
                "anthropic-ratelimit-requests-reset",
                clock::rfc3339(clock::unix_secs() + reset.as_secs().max(1)),
            );
        }
        // Gemini sends no rate-limit headers.
        Format::Gemini => {}
    }
}

/// Headers for a response. `fault` is the status fault being served, if any;
/// a 429 drains the rate-limit "remaining" values and points the resets at
/// its retry hint.
pub(crate) fn provider_headers(
    format: Format,
    request_id: &str,
    prompt_tokens: u64,
    fault: Option<&StatusFault>,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    let limited = fault.is_some_and(|f| f.status == 429);
    let reset_secs = fault.and_then(|f| f.retry_after).unwrap_or(1);
    match format {
        Format::OpenAi => {
            put(&mut h, "x-request-id", request_id);
            put(&mut h, "openai-version", "2020-10-01");
            put(&mut h, "openai-processing-ms", 1);
            put(&mut h, "x-ratelimit-limit-requests", OPENAI_RPM);
            put(&mut h, "x-ratelimit-limit-tokens", OPENAI_TPM);
            let (req_left, tok_left) = if limited {
                (0, 0)
            } else {
                (OPENAI_RPM - 1, OPENAI_TPM.saturating_sub(prompt_tokens))
            };
            put(&mut h, "x-ratelimit-remaining-requests", req_left);
            put(&mut h, "x-ratelimit-remaining-tokens", tok_left);
            let (req_reset, tok_reset) = if limited {
                let d = clock::go_duration(reset_secs * 1000);
                (d.clone(), d)
            } else {
                ("6ms".to_string(), "0s".to_string())
            };
            put(&mut h, "x-ratelimit-reset-requests", req_reset);
            put(&mut h, "x-ratelimit-reset-tokens", tok_reset);
        }
        Format::Anthropic => {
            put(&mut h, "request-id", request_id);
            let reset = clock::rfc3339(clock::unix_secs() + reset_secs);
            let req_left = if limited { 0 } else { ANTHROPIC_RPM - 1 };
            // Anthropic rounds token "remaining" values to the nearest thousand.
            let tok_left = if limited {
                0
            } else {
                (ANTHROPIC_TPM.saturating_sub(prompt_tokens) + 500) / 1000 * 1000
            };
            put(&mut h, "anthropic-ratelimit-requests-limit", ANTHROPIC_RPM);
            put(&mut h, "anthropic-ratelimit-requests-remaining", req_left);
            put(&mut h, "anthropic-ratelimit-requests-reset", &reset);
            put(&mut h, "anthropic-ratelimit-tokens-limit", ANTHROPIC_TPM);
            put(&mut h, "anthropic-ratelimit-tokens-remaining", tok_left);
            put(&mut h, "anthropic-ratelimit-tokens-reset", &reset);
            put(
                &mut h,
                "anthropic-ratelimit-input-tokens-limit",
                ANTHROPIC_TPM,
            );
            put(
                &mut h,
                "anthropic-ratelimit-input-tokens-remaining",
                tok_left,
            );
            put(&mut h, "anthropic-ratelimit-input-tokens-reset", &reset);
            put(
                &mut h,
                "anthropic-ratelimit-output-tokens-limit",
                ANTHROPIC_TPM / 5,
            );
            put(
                &mut h,
                "anthropic-ratelimit-output-tokens-remaining",
                if limited { 0 } else { ANTHROPIC_TPM / 5 },
            );
            put(&mut h, "anthropic-ratelimit-output-tokens-reset", &reset);
        }
        // Gemini sends no rate-limit headers; the hint lives in the body.
        Format::Gemini => {}
    }
    if let Some(f) = fault {
        // Gemini carries `retry_after` as RetryInfo.retryDelay, as the real API does.
        if let (Some(secs), false) = (f.retry_after, format == Format::Gemini) {
            put(&mut h, "retry-after", secs);
        }
        if let Some(offset) = f.retry_after_date {
            put(&mut h, "retry-after", clock::http_date_from_now(offset));
        }
        if let Some(ms) = f.retry_after_ms {
            put(&mut h, "retry-after-ms", ms);
        }
        if let Some(retry) = f.should_retry {
            put(&mut h, "x-should-retry", retry);
        }
    }
    h
}

/// A Cloudflare-style HTML error page, as CDNs in front of providers return
/// for 5xx/52x.
pub(crate) fn cdn_html(format: Format, status: u16, ray: &str) -> (HeaderMap, String) {
    let host = match format {
        Format::OpenAi => "api.openai.com",
        Format::Anthropic => "api.anthropic.com",
        Format::Gemini => "generativelanguage.googleapis.com",
    };
    let reason = match status {
        502 => "Bad gateway",
        503 => "Service unavailable",
        504 => "Gateway time-out",
        520 => "Web server is returning an unknown error",
        521 => "Web server is down",
        522 => "Connection timed out",
        523 => "Origin is unreachable",
        524 => "A timeout occurred",
        _ => "Error",
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<title>{host} | {status}: {reason}</title>\n\
         <meta charset=\"UTF-8\" />\n</head>\n<body>\n<div id=\"cf-error-details\">\n\
         <h1><span>{reason}</span> <span>Error code {status}</span></h1>\n\
         <p>Visit <a href=\"https://www.cloudflare.com/\">cloudflare.com</a> for more information.</p>\n\
         <p>Cloudflare Ray ID: <strong>{ray}</strong></p>\n</div>\n</body>\n</html>\n"
    );
    let mut h = HeaderMap::new();
    put(&mut h, "content-type", "text/html; charset=UTF-8");
    put(&mut h, "server", "cloudflare");
    put(&mut h, "cf-ray", format!("{ray}-SJC"));
    (h, body)
}
