//! One row of the request log: a request as the client saw it, and every
//! upstream attempt made for it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::UnixMs;

/// The most bytes a logged name may take (route, target): a client can name
/// any model, at any length, and each request is logged, refused or not.
pub const MAX_LOGGED_NAME: usize = 256;

/// The most bytes of a request body kept when `log_bodies` is on: enough
/// to see what a request was, without letting one request put the whole of
/// `max_request_bytes` into the store.
pub const MAX_LOGGED_BODY: usize = 64 * 1024;

/// `text` cut to at most `max` bytes, on a char boundary, ending in a
/// marker with the original length (`…(8388608 bytes)`), so that a
/// truncated value is never mistaken for a real one. Text that fits is
/// borrowed as is; cutting again what was cut changes nothing.
pub fn capped(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    Cow::Owned(cut(text, text.len(), max))
}

/// A body for the log: at most `max` bytes of it, as lossy UTF-8, marked
/// with its length when cut. Only the head is decoded, so a body of many
/// megabytes is never copied whole.
pub fn capped_body(body: &[u8], max: usize) -> String {
    let head = String::from_utf8_lossy(body.get(..max).unwrap_or(body));
    // Invalid bytes become U+FFFD (three bytes each), so even a body that
    // fits may decode to more than `max`.
    if body.len() <= max && head.len() <= max {
        return head.into_owned();
    }
    cut(&head, body.len(), max)
}

fn cut(text: &str, original: usize, max: usize) -> String {
    let marker = format!("…({original} bytes)");
    // `str::floor_char_boundary` is newer than the MSRV (1.89).
    let mut end = max.saturating_sub(marker.len()).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + marker.len());
    out.push_str(&text[..end]);
    out.push_str(&marker);
    out
}

fn cap_in_place(text: &mut String, max: usize) {
    if let Cow::Owned(cut) = capped(text, max) {
        *text = cut;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Unique per request, made by Bulwark; attempts refer to it. It is
    /// also the request id a client is given when it sent none.
    pub id: String,
    /// The `x-request-id` the client sent, when it was sane and returned
    /// as the request id. Kept beside `id` rather than in its place:
    /// clients reuse ids, and the log's key must stay unique.
    #[serde(default)]
    pub client_request_id: Option<String>,
    /// When the request arrived.
    pub at: UnixMs,
    /// The route it resolved to (or the model asked for, if none matched).
    pub route: String,
    /// `openai` or `anthropic`: the front door it came in through.
    pub client_format: String,
    pub stream: bool,
    /// HTTP status the client got (200 for a stream that started, even if
    /// it broke later; `error_class` then says `stream`).
    pub status: u16,
    /// Low-cardinality class of the failure the client saw, if any.
    pub error_class: Option<String>,
    /// `provider/model` that answered, or `static` / `cache`.
    pub target: Option<String>,
    /// Answered by a target other than the route's first.
    pub fallback: bool,
    /// `hit`, `miss` or `stale`, when the route caches.
    pub cache: Option<String>,
    /// How the answer was degraded: `stale-cache`, a target, or `static`.
    pub degraded: Option<String>,
    /// Features of the request left out for the answering target's format
    /// (`wire::translate` names them; a few dozen at most, so uncapped).
    #[serde(default)]
    pub dropped: Vec<String>,
    /// From arrival to the last byte sent.
    pub latency_ms: f64,
    /// From arrival to the first content byte sent, for streams and
    /// complete answers alike.
    pub first_token_ms: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The client key's name, never the key.
    pub key_id: Option<String>,
    /// Set only when `log_bodies: true`.
    pub request_body: Option<String>,
    pub attempts: Vec<AttemptRecord>,
}

/// One call to one upstream target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// `provider/model`.
    pub target: String,
    /// When the attempt started.
    pub at: UnixMs,
    /// Until the answer's first content, or until it failed.
    pub latency_ms: f64,
    pub first_token_ms: Option<f64>,
    /// The provider's HTTP status, when it sent one.
    pub status: Option<u16>,
    /// `None` when the attempt answered; else the failure class
    /// (`overloaded`, `timeout`, `rate_limited`, ...).
    pub error_class: Option<String>,
    /// Started as a hedge beside a slow attempt.
    pub hedge: bool,
}

impl RequestRecord {
    /// Cuts every field a client can set to its cap: the route is the
    /// model asked for when no route matched, a target is `provider/model`
    /// with the client's model for a direct target (and so is a degraded
    /// answer's), and the body is the client's. The other fields are
    /// Bulwark's own (ids, classes, formats) or configured (key names).
    pub fn cap_client_fields(&mut self) {
        cap_in_place(&mut self.route, MAX_LOGGED_NAME);
        if let Some(target) = &mut self.target {
            cap_in_place(target, MAX_LOGGED_NAME);
        }
        if let Some(degraded) = &mut self.degraded {
            cap_in_place(degraded, MAX_LOGGED_NAME);
        }
        if let Some(body) = &mut self.request_body {
            cap_in_place(body, MAX_LOGGED_BODY);
        }
        for attempt in &mut self.attempts {
            cap_in_place(&mut attempt.target, MAX_LOGGED_NAME);
        }
    }

    /// Whether this request counts as good for SLOs and impact: the client
    /// got a real answer, whether from a fallback or the cache. A static
    /// degraded answer is an apology, not an answer, and a stream that
    /// broke after it started is a failure too.
    pub fn is_good(&self) -> bool {
        self.status < 400
            && self.error_class.is_none()
            && self.degraded.as_deref() != Some("static")
    }

    /// The client got an error status because of what it sent (bad input,
    /// unknown model, its own quota, a deadline shorter than the route's):
    /// not a failure of the service.
    pub fn is_client_error(&self) -> bool {
        matches!(self.status, 400..=428 | 430..=499)
            || (self.status == 429
                && self.attempts.is_empty()
                && self.error_class.as_deref() == Some("client_quota"))
            || self.error_class.as_deref() == Some("deadline")
    }

    /// An outcome label for metrics: `ok`, `fallback`, `cache`, `stale`,
    /// `degraded`, `client_error` or `error`.
    pub fn outcome(&self) -> &'static str {
        if self.is_client_error() {
            "client_error"
        } else if !self.is_good() {
            "error"
        } else if self.degraded.as_deref() == Some("stale-cache")
            || self.cache.as_deref() == Some("stale")
        {
            "stale"
        } else if self.degraded.is_some() {
            "degraded"
        } else if self.cache.as_deref() == Some("hit") {
            "cache"
        } else if self.fallback {
            "fallback"
        } else {
            "ok"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_fits_is_kept_as_is() {
        assert!(matches!(capped("chat", 256), Cow::Borrowed("chat")));
        let exact = "x".repeat(256);
        assert_eq!(capped(&exact, 256), exact.as_str());
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_its_length() {
        // Three-byte chars: a byte cut would split one.
        let text = "€".repeat(1000);
        let cut = capped(&text, 256);
        assert!(cut.len() <= 256, "{}", cut.len());
        assert!(cut.ends_with("…(3000 bytes)"), "{cut}");
        assert!(cut.starts_with("€€€"));
        // Cutting again what was cut changes nothing.
        assert_eq!(capped(&cut, 256), cut);
    }

    #[test]
    fn a_long_body_is_cut_and_an_invalid_one_stays_within_the_cap() {
        let body = vec![b'a'; 1 << 20];
        let logged = capped_body(&body, MAX_LOGGED_BODY);
        assert!(logged.len() <= MAX_LOGGED_BODY);
        assert!(logged.ends_with("…(1048576 bytes)"));
        assert_eq!(
            capped_body(b"{\"model\":\"chat\"}", 64),
            "{\"model\":\"chat\"}"
        );
        // 100 invalid bytes fit, but decode to 300.
        let invalid = capped_body(&[0xff; 100], 128);
        assert!(invalid.len() <= 128, "{}", invalid.len());
        assert!(invalid.ends_with("…(100 bytes)"));
    }

    #[test]
    fn every_client_field_of_a_record_is_capped() {
        let long = "m".repeat(10_000);
        let mut record = RequestRecord {
            route: long.clone(),
            target: Some(format!("p/{long}")),
            degraded: Some(format!("p/{long}")),
            request_body: Some("b".repeat(MAX_LOGGED_BODY + 1)),
            key_id: Some("team-a".into()),
            attempts: vec![AttemptRecord {
                target: format!("p/{long}"),
                ..AttemptRecord::default()
            }],
            ..RequestRecord::default()
        };
        record.cap_client_fields();
        assert!(record.route.len() <= MAX_LOGGED_NAME);
        assert!(record.route.ends_with("…(10000 bytes)"));
        assert!(
            record
                .target
                .as_ref()
                .is_some_and(|t| t.len() <= MAX_LOGGED_NAME)
        );
        assert!(
            record
                .degraded
                .as_ref()
                .is_some_and(|t| t.len() <= MAX_LOGGED_NAME)
        );
        assert!(record.attempts[0].target.len() <= MAX_LOGGED_NAME);
        assert!(
            record
                .request_body
                .as_ref()
                .is_some_and(|b| b.len() <= MAX_LOGGED_BODY)
        );
        assert_eq!(record.key_id.as_deref(), Some("team-a"));
    }
}
