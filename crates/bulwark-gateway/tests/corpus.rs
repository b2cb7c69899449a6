//! Replays the captured real-client requests of `tests/corpus` (written by
//! `tests/clients/capture.mjs`: Claude Code, the Vercel AI SDK, LangChain,
//! the official SDKs' helpers) through the gateway, on each route kind:
//! same format, cross format, and failover (a first target that fails every
//! request, then the other provider). Every one must be served (2xx; a
//! translation may report what it dropped in `x-bulwark-dropped`); none may
//! be refused by Bulwark.
//!
//! Each entry is `{method, path, query, headers, body}` as the client sent
//! it, credentials removed; only `body.model` is replaced, by the route name
//! (for Gemini clients, the model in the path).

mod common;
mod sim_gateway;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bulwark_sim::{Fault, FaultRule, Format, SimConfig, SimServer};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
const OPENAI_MODEL: &str = "gpt-4o-mini";
const GEMINI_MODEL: &str = "gemini-2.5-flash";
const BROKEN_MODEL: &str = "broken-model";

/// Headers not replayed: the transport's own, which the replaying client
/// sets for the body and connection it actually sends.
const TRANSPORT_HEADERS: &[&str] = &["host", "content-length", "connection", "transfer-encoding"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RouteKind {
    SameFormat,
    CrossFormat,
    Failover,
}

struct Entry {
    name: String,
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl Entry {
    fn client_format(&self) -> Option<Format> {
        if self.path.starts_with("/v1/messages") {
            Some(Format::Anthropic)
        } else if self.path.starts_with("/v1/chat/completions") {
            Some(Format::OpenAi)
        } else if self.path.starts_with("/v1/responses") {
            // No provider speaks the Responses API: its own provider is
            // OpenAI, reached through Chat Completions.
            Some(Format::OpenAi)
        } else if self.gemini_method().is_some() {
            Some(Format::Gemini)
        } else {
            None
        }
    }
}

impl Entry {
    /// The path's `(prefix, method)` around its model, for a Gemini path
    /// (`/v1/models/{model}:{method}`, or `/v1beta/...`).
    fn gemini_method(&self) -> Option<(&str, &str)> {
        let prefix = ["/v1/models/", "/v1beta/models/"]
            .into_iter()
            .find(|p| self.path.starts_with(p))?;
        let (_, method) = self.path.rsplit_once(':')?;
        Some((prefix, method))
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

/// Every `tests/corpus/<client>/<name>.json`, sorted by name.
fn load_corpus(dir: &Path) -> Result<Vec<Entry>, Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    for client in std::fs::read_dir(dir)? {
        let client = client?.path();
        if client.is_dir() {
            for file in std::fs::read_dir(&client)? {
                let file = file?.path();
                if file.extension().is_some_and(|e| e == "json") {
                    files.push(file);
                }
            }
        }
    }
    files.sort();
    let mut entries = Vec::new();
    for file in files {
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(&file)?)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let strings = |key: &str| -> BTreeMap<String, String> {
            raw[key]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let name = file
            .strip_prefix(dir)
            .unwrap_or(&file)
            .with_extension("")
            .display()
            .to_string();
        entries.push(Entry {
            name,
            method: raw["method"].as_str().unwrap_or("POST").to_string(),
            path: raw["path"].as_str().unwrap_or("/").to_string(),
            query: strings("query"),
            headers: strings("headers"),
            body: raw["body"].clone(),
        });
    }
    Ok(entries)
}

/// The route an entry is replayed on, and the upstream model that must serve it.
fn route_for(format: Format, kind: RouteKind) -> (&'static str, &'static str) {
    if format == Format::Gemini {
        return match kind {
            RouteKind::SameFormat => ("to-gemini", GEMINI_MODEL),
            RouteKind::CrossFormat => ("to-openai", OPENAI_MODEL),
            RouteKind::Failover => ("failover-to-anthropic", ANTHROPIC_MODEL),
        };
    }
    let anthropic = format == Format::Anthropic;
    match (kind, anthropic) {
        (RouteKind::SameFormat, true) => ("to-anthropic", ANTHROPIC_MODEL),
        (RouteKind::SameFormat, false) => ("to-openai", OPENAI_MODEL),
        (RouteKind::CrossFormat, true) => ("to-openai", OPENAI_MODEL),
        (RouteKind::CrossFormat, false) => ("to-anthropic", ANTHROPIC_MODEL),
        (RouteKind::Failover, true) => ("failover-to-openai", OPENAI_MODEL),
        (RouteKind::Failover, false) => ("failover-to-anthropic", ANTHROPIC_MODEL),
    }
}

/// A simulator whose `broken-model` fails every request the way its
/// provider does when overloaded, and a gateway with the three route kinds.
async fn start() -> Result<(SimServer, common::Running), Box<dyn std::error::Error>> {
    let config = SimConfig {
        faults: vec![
            FaultRule::always(Fault::status(529))
                .for_format(Format::Anthropic)
                .for_model(BROKEN_MODEL),
            FaultRule::always(Fault::status(503))
                .for_format(Format::OpenAi)
                .for_model(BROKEN_MODEL),
        ],
        ..SimConfig::default()
    };
    sim_gateway::start(config, |url| {
        format!(
            "listen: 127.0.0.1:0
providers:
  sim-openai:    {{ kind: openai, base_url: \"{url}/v1\", api_key: test }}
  sim-anthropic: {{ kind: anthropic, base_url: \"{url}\", api_key: test }}
  sim-gemini:    {{ kind: gemini, base_url: \"{url}\", api_key: test }}
routes:
  to-anthropic: {{ targets: [sim-anthropic/{ANTHROPIC_MODEL}] }}
  to-gemini: {{ targets: [sim-gemini/{GEMINI_MODEL}] }}
  to-openai: {{ targets: [sim-openai/{OPENAI_MODEL}] }}
  failover-to-openai: {{ targets: [sim-anthropic/{BROKEN_MODEL}, sim-openai/{OPENAI_MODEL}], max_retries: 0 }}
  failover-to-anthropic: {{ targets: [sim-openai/{BROKEN_MODEL}, sim-anthropic/{ANTHROPIC_MODEL}], max_retries: 0 }}
"
        )
    })
    .await
}

/// `?k=v&...`, percent-encoded, or nothing for no parameters.
fn query_string(query: &BTreeMap<String, String>) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    if query.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", pairs.join("&"))
}

/// Replays one entry; the error says how it was not served.
async fn replay(
    http: &reqwest::Client,
    base: &str,
    entry: &Entry,
    kind: RouteKind,
) -> Result<String, String> {
    let format = entry.client_format().ok_or_else(|| {
        format!(
            "{} {} is not a front door this test knows",
            entry.method, entry.path
        )
    })?;
    let (route, model) = route_for(format, kind);
    let mut body = entry.body.clone();
    let path = match entry.gemini_method() {
        Some((prefix, method)) => format!("{prefix}{route}:{method}"),
        None => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("model".into(), Value::String(route.into()));
            }
            entry.path.clone()
        }
    };
    let method = reqwest::Method::from_bytes(entry.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = http
        .request(
            method,
            format!("{base}{path}{}", query_string(&entry.query)),
        )
        .body(body.to_string());
    for (name, value) in &entry.headers {
        if !TRANSPORT_HEADERS.contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let header = |name: &str| sim_gateway::header(&response, name).unwrap_or_default();
    let (target, fallback, dropped, encoding) = (
        header("x-bulwark-target"),
        header("x-bulwark-fallback"),
        header("x-bulwark-dropped"),
        header("content-encoding"),
    );
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("{status}, body unreadable: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    if !status.is_success() {
        let shown: String = text.chars().take(400).collect();
        return Err(format!("{status} {shown}"));
    }
    if !target.ends_with(&format!("/{model}")) {
        return Err(format!("{status} but served by `{target}`, not */{model}"));
    }
    if kind == RouteKind::Failover && fallback != "true" {
        return Err(format!(
            "{status} without x-bulwark-fallback: true (got `{fallback}`)"
        ));
    }
    // A stream that starts with 200 can still fail; its error event is in the body.
    if encoding.is_empty()
        && (text.contains("event: error")
            || text.contains("\"type\":\"error\"")
            || text.contains("data: {\"error\":"))
    {
        let shown: String = text.chars().take(400).collect();
        return Err(format!("{status} but the body carries an error: {shown}"));
    }
    Ok(if dropped.is_empty() {
        format!("{status} from {target}")
    } else {
        format!("{status} from {target}, dropped: {dropped}")
    })
}

async fn replay_corpus(kind: RouteKind) -> TestResult {
    let dir = corpus_dir();
    let entries = load_corpus(&dir)?;
    assert!(
        !entries.is_empty(),
        "no corpus under {}: run tests/clients/capture.mjs",
        dir.display()
    );
    let (_sim, gateway) = start().await?;
    let http = reqwest::Client::builder()
        // A guard against a hung answer, not a check on speed.
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let mut failures = Vec::new();
    for entry in &entries {
        match replay(&http, &gateway.base, entry, kind).await {
            Ok(outcome) => println!("ok   {:?} {}: {outcome}", kind, entry.name),
            Err(e) => {
                println!("FAIL {:?} {}: {e}", kind, entry.name);
                failures.push(format!(
                    "{} ({} {}): {e}",
                    entry.name, entry.method, entry.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} captured client requests were not served on the {kind:?} route:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn corpus_is_served_on_same_format_routes() -> TestResult {
    replay_corpus(RouteKind::SameFormat).await
}

#[tokio::test]
async fn corpus_is_served_on_cross_format_routes() -> TestResult {
    replay_corpus(RouteKind::CrossFormat).await
}

#[tokio::test]
async fn corpus_is_served_on_failover_routes() -> TestResult {
    replay_corpus(RouteKind::Failover).await
}
