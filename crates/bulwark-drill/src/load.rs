//! The drill's load: a realistic mix of requests (streaming and not, both
//! client formats, varied sizes), each sent through Bulwark and, as the
//! same logical request, directly to the primary provider in its own
//! format, the way an app without a gateway would call it.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::outcome::{Path, Sent};
use crate::scenario::WireFormat;

/// One logical request of the mix.
#[derive(Debug, Clone)]
pub struct Shape {
    pub seq: u64,
    pub stream: bool,
    /// The format the app speaks to Bulwark.
    pub anthropic_client: bool,
    pub prompt: String,
    pub max_tokens: u32,
}

const WORDS: &[&str] = &[
    "summarise",
    "the",
    "incident",
    "report",
    "for",
    "our",
    "customers",
    "and",
    "explain",
    "which",
    "regions",
    "were",
    "affected",
    "during",
    "outage",
    "window",
    "please",
    "include",
    "timeline",
    "latency",
    "error",
    "budget",
    "fallback",
    "provider",
];

impl Shape {
    /// Draws the next request of the mix.
    pub fn draw(
        seq: u64,
        stream_share: f64,
        anthropic_share: f64,
        rng: &mut fastrand::Rng,
    ) -> Shape {
        // Prompts from a sentence to a few paragraphs, answers from a word
        // to a page: most are short, a few long, as in real traffic.
        let words = 8 + (rng.f64().powi(3) * 600.0) as usize;
        let prompt = (0..words)
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ");
        Shape {
            seq,
            stream: rng.f64() < stream_share,
            anthropic_client: rng.f64() < anthropic_share,
            prompt,
            max_tokens: 16 + (rng.f64().powi(2) * 496.0) as u32,
        }
    }

    fn client_format(&self, path: Path, direct: WireFormat) -> &'static str {
        match path {
            Path::Bulwark if self.anthropic_client => "anthropic",
            Path::Bulwark => "openai",
            Path::Direct => match direct {
                WireFormat::Anthropic => "anthropic",
                WireFormat::Gemini => "gemini",
                WireFormat::Openai | WireFormat::OpenaiCompatible => "openai",
            },
        }
    }
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base: String,
    /// The model (for Bulwark: the route) asked for.
    pub model: String,
    pub format: WireFormat,
}

/// Sends one request and reads the whole answer. Never fails: whatever
/// happens is the outcome.
pub async fn send(
    http: &reqwest::Client,
    shape: &Shape,
    path: Path,
    endpoint: &Endpoint,
    timeout: Duration,
    started: Instant,
) -> Sent {
    let at = started.elapsed();
    let sent_at = Instant::now();
    let format = match path {
        Path::Bulwark if shape.anthropic_client => WireFormat::Anthropic,
        Path::Bulwark => WireFormat::Openai,
        Path::Direct => endpoint.format,
    };
    let (url, body) = request(shape, endpoint, format);
    let mut sent = Sent {
        path,
        seq: shape.seq,
        at,
        stream: shape.stream,
        client_format: shape.client_format(path, endpoint.format).to_string(),
        status: None,
        ok: false,
        error: None,
        detail: None,
        latency: Duration::ZERO,
        first_token: None,
        target: None,
        attempts: None,
        fallback: false,
        cache: None,
        degraded: None,
        dropped: None,
    };
    let call = async {
        let mut builder = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if format == WireFormat::Anthropic {
            builder = builder
                .header("anthropic-version", "2023-06-01")
                .header("x-api-key", "drill");
        } else if format == WireFormat::Gemini {
            builder = builder.header("x-goog-api-key", "drill");
        } else {
            builder = builder.bearer_auth("drill");
        }
        let response = builder.send().await.map_err(|e| short_error(&e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (target, attempts, fallback, cache, degraded) = (
            header("x-bulwark-target"),
            header("x-bulwark-attempts").and_then(|v| v.parse().ok()),
            header("x-bulwark-fallback").is_some_and(|v| v == "true"),
            header("x-bulwark-cache").filter(|c| c == "hit" || c == "stale"),
            header("x-bulwark-degraded"),
        );
        let dropped = header("x-bulwark-dropped");
        let mut body = Vec::new();
        let mut first = None;
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| short_error(&e))?;
            if first.is_none() && !chunk.is_empty() {
                first = Some(sent_at.elapsed());
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, String>((
            status, body, first, target, attempts, fallback, cache, degraded, dropped,
        ))
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => sent.error = Some("client timeout".into()),
        Ok(Err(error)) => sent.error = Some(error),
        Ok(Ok((status, body, first, target, attempts, fallback, cache, degraded, dropped))) => {
            sent.status = Some(status);
            sent.target = target;
            sent.attempts = attempts;
            sent.fallback = fallback;
            sent.cache = cache;
            sent.degraded = degraded;
            sent.dropped = dropped;
            if status != 200 {
                sent.error = Some(status.to_string());
                sent.detail = error_message(&body);
            } else {
                match judge(format, shape.stream, &body) {
                    Ok(()) => {
                        sent.ok = true;
                        sent.first_token = first;
                    }
                    Err(why) => sent.error = Some(why.into()),
                }
            }
        }
    }
    sent.latency = sent_at.elapsed();
    sent
}

/// The URL and body of `shape` in `format`.
fn request(shape: &Shape, endpoint: &Endpoint, format: WireFormat) -> (String, Value) {
    let base = endpoint.base.trim_end_matches('/');
    let model = &endpoint.model;
    match format {
        WireFormat::Anthropic => (
            format!("{base}/v1/messages"),
            json!({
                "model": model, "max_tokens": shape.max_tokens, "stream": shape.stream,
                "messages": [{"role": "user", "content": shape.prompt}],
            }),
        ),
        WireFormat::Openai | WireFormat::OpenaiCompatible => {
            let mut body = json!({
                "model": model, "max_tokens": shape.max_tokens, "stream": shape.stream,
                "messages": [{"role": "user", "content": shape.prompt}],
            });
            if shape.stream {
                body["stream_options"] = json!({"include_usage": true});
            }
            (format!("{base}/v1/chat/completions"), body)
        }
        WireFormat::Gemini => {
            let method = if shape.stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (
                format!("{base}/v1beta/models/{model}:{method}"),
                json!({
                    "contents": [{"role": "user", "parts": [{"text": shape.prompt}]}],
                    "generationConfig": {"maxOutputTokens": shape.max_tokens},
                }),
            )
        }
    }
}

/// Whether a 200 answer is whole: a complete body with content, or a
/// stream that ended the way its format ends and carried no error event.
fn judge(format: WireFormat, stream: bool, body: &[u8]) -> Result<(), &'static str> {
    let text = String::from_utf8_lossy(body);
    if !stream {
        let value: Value = serde_json::from_str(&text).map_err(|_| "malformed answer")?;
        let has_content = match format {
            WireFormat::Anthropic => value["content"].as_array().is_some_and(|c| !c.is_empty()),
            WireFormat::Gemini => value["candidates"]
                .as_array()
                .is_some_and(|c| !c.is_empty()),
            _ => value["choices"].as_array().is_some_and(|c| !c.is_empty()),
        };
        return if has_content {
            Ok(())
        } else {
            Err("empty answer")
        };
    }
    let errored = match format {
        WireFormat::Anthropic => text.contains("event: error"),
        _ => text.contains("data: {\"error\""),
    };
    if errored {
        return Err("stream error event");
    }
    let ended = match format {
        WireFormat::Anthropic => text.contains("event: message_stop"),
        WireFormat::Gemini => text.contains("finishReason"),
        _ => text.contains("data: [DONE]"),
    };
    if ended { Ok(()) } else { Err("stream cut") }
}

/// The message of an error body. OpenAI, Anthropic and Gemini all put it
/// at `error.message`.
fn error_message(body: &[u8]) -> Option<String> {
    const LONGEST: usize = 500;
    let value: Value = serde_json::from_slice(body).ok()?;
    let message = value["error"]["message"].as_str()?;
    Some(message.chars().take(LONGEST).collect())
}

fn short_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connect".into()
    } else if error.is_body() || error.is_decode() {
        "body".into()
    } else {
        "transport".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_message() {
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_message(anthropic).as_deref(), Some("Overloaded"));
        let openai = br#"{"error":{"message":"no answer within the deadline","type":"timeout"}}"#;
        assert_eq!(
            error_message(openai).as_deref(),
            Some("no answer within the deadline")
        );
        assert_eq!(error_message(b"<html>bad gateway</html>"), None);
    }

    #[test]
    fn the_mix_has_its_shares() {
        let mut rng = fastrand::Rng::with_seed(7);
        let shapes: Vec<_> = (0..10_000)
            .map(|i| Shape::draw(i, 0.3, 0.5, &mut rng))
            .collect();
        let streams = shapes.iter().filter(|s| s.stream).count();
        let anthropic = shapes.iter().filter(|s| s.anthropic_client).count();
        assert!((2_800..3_200).contains(&streams), "{streams}");
        assert!((4_800..5_200).contains(&anthropic), "{anthropic}");
        assert!(shapes.iter().any(|s| s.prompt.split(' ').count() > 300));
        assert!(shapes.iter().all(|s| (16..=512).contains(&s.max_tokens)));
    }

    #[test]
    fn streams_must_end_properly() {
        let done = b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n";
        assert_eq!(judge(WireFormat::Openai, true, done), Ok(()));
        assert_eq!(
            judge(WireFormat::Openai, true, b"data: {\"choices\":[]}\n\n"),
            Err("stream cut")
        );
        let anthropic_error = b"event: message_start\ndata: {}\n\nevent: error\ndata: {}\n\n";
        assert_eq!(
            judge(WireFormat::Anthropic, true, anthropic_error),
            Err("stream error event")
        );
        assert_eq!(
            judge(
                WireFormat::Anthropic,
                false,
                b"{\"content\":[{\"type\":\"text\"}]}"
            ),
            Ok(())
        );
        assert_eq!(
            judge(WireFormat::Openai, false, b"<html>"),
            Err("malformed answer")
        );
    }
}
