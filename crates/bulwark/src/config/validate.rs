//! From the file as written to the engine's [`Config`]: every problem is
//! collected as an [`Issue`] with its key path, never only the first.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::raw::{Document, RawBreaker, RawBudget, RawCache, RawConfig, RawProvider, RawRoute};
use super::{
    Config, DEFAULT_CACHE_BYTES, DEFAULT_CACHE_TTL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_STALE, DEFAULT_MAX_TOKENS, Degrade, HedgeAfter, Issue,
    MidStream, ProviderConfig, ProviderKind, RetryPolicy, RouteCache, RouteConfig, RoutePolicy,
    Secret, TargetRef, Timeouts, Translation, duration, embeddings,
};
use crate::resilience::backoff::Backoff;
use crate::resilience::balance::Balance;
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::budget::BudgetConfig;
use crate::resilience::concurrency::ConcurrencyConfig;

/// Builds the engine's config from its top-level keys. What is valid is
/// kept even when other parts are not, so that the gateway's keys can be
/// checked against the routes that do exist.
pub(crate) fn config(raw: RawConfig, doc: &Document, issues: &mut Vec<Issue>) -> Config {
    let mut providers = BTreeMap::new();
    for (name, raw) in raw.providers {
        let path = format!("providers.{name}");
        if name.contains('/') {
            issues.push(Issue {
                path: path.clone(),
                message: "a provider name cannot contain `/`, which separates provider and model in targets".into(),
            });
        }
        if let Some(raw) = doc.read::<RawProvider>(raw, &path, issues)
            && let Some(provider) = build_provider(raw, &doc.ambient, &path, issues)
        {
            providers.insert(name, provider);
        }
    }
    if providers.is_empty() && !issues.iter().any(|i| i.path.starts_with("providers.")) {
        issues.push(Issue {
            path: "providers".into(),
            message: "at least one provider is required".into(),
        });
    }

    let mut routes = BTreeMap::new();
    for (name, raw) in raw.routes {
        let path = format!("routes.{name}");
        if name.contains('/') {
            issues.push(Issue {
                path: path.clone(),
                message: "a route name cannot contain `/`; names with `/` mean `provider/model`"
                    .into(),
            });
        }
        if let Some(raw) = doc.read::<RawRoute>(raw, &path, issues)
            && let Some(route) = build_route(raw, &path, &providers, doc, issues)
        {
            routes.insert(name, route);
        }
    }

    let breaker = match raw.breaker {
        None => BreakerConfig::default(),
        Some(raw) => doc
            .read::<RawBreaker>(raw, "breaker", issues)
            .map(|raw| build_breaker(raw, issues))
            .unwrap_or_default(),
    };
    let retry_budget = match raw.retry_budget {
        None => BudgetConfig::default(),
        Some(raw) => doc
            .read::<RawBudget>(raw, "retry_budget", issues)
            .map(|raw| build_budget(raw, issues))
            .unwrap_or_default(),
    };
    let cache_max_bytes = match raw.cache {
        None => DEFAULT_CACHE_BYTES,
        Some(raw) => doc
            .read::<RawCache>(raw, "cache", issues)
            .and_then(|c| c.max_bytes)
            .unwrap_or(DEFAULT_CACHE_BYTES),
    };
    let shared = raw
        .redis
        .and_then(|raw| super::shared::build(raw, doc, issues));
    Config {
        providers,
        routes,
        breaker,
        retry_budget,
        cache_max_bytes,
        shared,
    }
}

fn build_provider(
    mut raw: RawProvider,
    ambient: &BTreeMap<&'static str, String>,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<ProviderConfig> {
    let before = issues.len();
    let default_cloud_url = super::cloud::default_base_url(&raw);
    let cloud = super::cloud::build(&mut raw, ambient, path, issues);
    let probe = raw
        .probe
        .map(|probe| crate::observe::config::build_probe(probe, path, issues));
    let base_url = match raw.base_url.or(default_cloud_url).or_else(|| {
        crate::wire::upstream(raw.kind)
            .default_base_url()
            .map(str::to_string)
    }) {
        Some(url) => {
            match reqwest::Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => issues.push(Issue {
                    path: format!("{path}.base_url"),
                    message: format!("`{url}` is not an http(s) URL"),
                }),
            }
            url.trim_end_matches('/').to_string()
        }
        // A cloud kind without its region or resource was reported above.
        None if raw.kind.is_cloud() => String::new(),
        None => {
            issues.push(Issue {
                path: format!("{path}.base_url"),
                message: "required for kind openai-compatible (e.g. http://127.0.0.1:11434/v1)"
                    .into(),
            });
            String::new()
        }
    };
    let connect_timeout = duration::timeout(
        raw.connect_timeout,
        DEFAULT_CONNECT_TIMEOUT,
        &format!("{path}.connect_timeout"),
        issues,
    );
    for (name, value) in &raw.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            issues.push(Issue {
                path: format!("{path}.headers.{name}"),
                message: "not a valid HTTP header name".into(),
            });
        }
        refuse_control_characters(value, &format!("{path}.headers.{name}"), issues);
    }
    if let Some(key) = &raw.api_key {
        refuse_control_characters(key, &format!("{path}.api_key"), issues);
    }
    // Zero would refuse every answer, which is a typo, not a setting.
    if raw.max_response_bytes == Some(0) {
        issues.push(Issue {
            path: format!("{path}.max_response_bytes"),
            message: "must be more than 0 (the default is 67108864, 64 MiB)".into(),
        });
    }
    // Gemini's URL, not its body, chooses a stream (`streamGenerateContent`),
    // and the URL is the dialect's to write.
    if raw.stream == Some(false) && raw.kind == ProviderKind::Gemini {
        issues.push(Issue {
            path: format!("{path}.stream"),
            message: "`stream: false` is for OpenAI-format and Anthropic providers; Gemini is always asked for a stream".into(),
        });
    }
    (issues.len() == before).then(|| ProviderConfig {
        kind: raw.kind,
        base_url,
        api_key: raw.api_key.filter(|k| !k.is_empty()).map(Secret::new),
        connect_timeout,
        default_max_tokens: raw.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        max_response_bytes: raw.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        stream: raw.stream.unwrap_or(true),
        headers: raw
            .headers
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect(),
        context_windows: raw.context_windows,
        models: raw.models,
        prices: raw.prices,
        probe,
        cloud,
        limits: raw.limits.unwrap_or_default(),
        concurrency: raw
            .max_concurrency
            .map_or_else(ConcurrencyConfig::default, |n| {
                ConcurrencyConfig::pinned(n.max(1))
            }),
    })
}

/// A key or header value is sent in an HTTP header, which cannot carry
/// control characters: with one (typically the newline a key file or
/// `echo` leaves behind), every request would fail before leaving, as a
/// retried connection error counted against the target's breaker. Checked
/// after `${VAR}` interpolation, since that is where such a value comes
/// from. The message names the characters, never the value: it is a secret.
fn refuse_control_characters(value: &str, path: &str, issues: &mut Vec<Issue>) {
    let mut found: Vec<&str> = Vec::new();
    for c in value.chars().filter(|c| c.is_control()) {
        let name = match c {
            '\r' => "CR",
            '\n' => "LF",
            '\t' => "tab",
            '\0' => "NUL",
            _ => "another control character",
        };
        if !found.contains(&name) {
            found.push(name);
        }
    }
    if !found.is_empty() {
        issues.push(Issue {
            path: path.to_string(),
            message: format!(
                "contains a control character ({}), which an HTTP header cannot carry; remove it (a trailing newline from a file or an environment variable?)",
                found.join(", ")
            ),
        });
    }
}

fn build_route(
    raw: RawRoute,
    path: &str,
    providers: &BTreeMap<String, ProviderConfig>,
    doc: &Document,
    issues: &mut Vec<Issue>,
) -> Option<RouteConfig> {
    let before = issues.len();
    if raw.targets.is_empty() {
        issues.push(Issue {
            path: format!("{path}.targets"),
            message: "a route needs at least one target (`provider/model`)".into(),
        });
    }
    let mut targets = Vec::with_capacity(raw.targets.len());
    let mut weights = Vec::with_capacity(raw.targets.len());
    let mut tiers = Vec::with_capacity(raw.targets.len());
    for (i, entry) in raw.targets.iter().enumerate() {
        let entry_path = format!("{path}.targets[{i}]");
        let start = targets.len();
        match entry {
            // A nested list is one tier: its targets share the load.
            Value::Array(members) => {
                if members.is_empty() {
                    issues.push(Issue {
                        path: entry_path.clone(),
                        message: "an empty tier".into(),
                    });
                }
                for (k, member) in members.iter().enumerate() {
                    let member_path = format!("{entry_path}[{k}]");
                    if let Some((target, weight)) =
                        parse_target(member, &member_path, providers, doc, issues)
                    {
                        targets.push(target);
                        weights.push(weight);
                    }
                }
            }
            other => {
                if let Some((target, weight)) =
                    parse_target(other, &entry_path, providers, doc, issues)
                {
                    targets.push(target);
                    weights.push(weight);
                }
            }
        }
        if targets.len() > start {
            tiers.push(start..targets.len());
        }
    }
    embeddings::check_route(path, &targets, providers, issues);
    let balance = match raw.balance.as_deref() {
        None | Some("weighted") => Balance::Weighted,
        Some("least_latency") => Balance::LeastLatency,
        Some(other) => {
            issues.push(Issue {
                path: format!("{path}.balance"),
                message: format!("`{other}` is not `weighted` or `least_latency`"),
            });
            Balance::Weighted
        }
    };
    let defaults = Timeouts::default();
    let timeouts = Timeouts {
        deadline: duration::timeout(
            raw.deadline,
            defaults.deadline,
            &format!("{path}.deadline"),
            issues,
        ),
        attempt: duration::timeout(
            raw.attempt_timeout,
            defaults.attempt,
            &format!("{path}.attempt_timeout"),
            issues,
        ),
        first_token: duration::timeout(
            raw.first_token_timeout,
            defaults.first_token,
            &format!("{path}.first_token_timeout"),
            issues,
        ),
        stream_idle: duration::timeout(
            raw.stream_idle_timeout,
            defaults.stream_idle,
            &format!("{path}.stream_idle_timeout"),
            issues,
        ),
    };
    let retry_defaults = RetryPolicy::default();
    let retry = RetryPolicy {
        max_retries: raw.max_retries.unwrap_or(retry_defaults.max_retries),
        backoff: Backoff {
            base: duration::timeout(
                raw.backoff_base,
                retry_defaults.backoff.base,
                &format!("{path}.backoff_base"),
                issues,
            ),
            cap: duration::timeout(
                raw.backoff_cap,
                retry_defaults.backoff.cap,
                &format!("{path}.backoff_cap"),
                issues,
            ),
        },
    };
    let hedge_path = format!("{path}.hedge_after");
    let hedge_after =
        raw.hedge_after
            .map(|text| match text.strip_prefix('p').map(str::parse::<f64>) {
                // `p95`: the 95th percentile of the primary's recent first tokens.
                Some(Ok(percentile)) if percentile > 0.0 && percentile < 100.0 => {
                    HedgeAfter::Percentile {
                        percentile,
                        fallback: timeouts.first_token / 2,
                    }
                }
                Some(_) => {
                    issues.push(Issue {
                        path: hedge_path.clone(),
                        message: format!("`{text}` is not a percentile such as p95"),
                    });
                    HedgeAfter::Fixed(Duration::ZERO)
                }
                None => HedgeAfter::Fixed(duration::timeout(
                    Some(text),
                    Duration::ZERO,
                    &hedge_path,
                    issues,
                )),
            });
    let mid_stream = match raw.mid_stream.as_deref() {
        None | Some("error") => MidStream::Error,
        Some("continue") => MidStream::Continue,
        Some(other) => {
            issues.push(Issue {
                path: format!("{path}.mid_stream"),
                message: format!("`{other}` is not `error` or `continue`"),
            });
            MidStream::Error
        }
    };
    let translation = match raw.translation.as_deref() {
        None | Some("lenient") => Translation::Lenient,
        Some("strict") => Translation::Strict,
        Some(other) => {
            issues.push(Issue {
                path: format!("{path}.translation"),
                message: format!("`{other}` is not `lenient` or `strict`"),
            });
            Translation::Lenient
        }
    };
    let cache = raw.cache.map(|raw| RouteCache {
        ttl: duration::timeout(
            raw.ttl,
            DEFAULT_CACHE_TTL,
            &format!("{path}.cache.ttl"),
            issues,
        ),
        max_stale: duration::timeout(
            raw.max_stale,
            DEFAULT_MAX_STALE,
            &format!("{path}.cache.max_stale"),
            issues,
        ),
        nondeterministic: raw.nondeterministic,
    });
    let mut degrade = Vec::new();
    for (i, step) in raw.degrade.iter().enumerate() {
        let step_path = format!("{path}.degrade[{i}]");
        match step {
            Value::String(s) if s == "stale-cache" => {
                if cache.is_none() {
                    issues.push(Issue {
                        path: step_path,
                        message: "`stale-cache` needs the route's `cache:` to be set".into(),
                    });
                } else {
                    degrade.push(Degrade::StaleCache);
                }
            }
            Value::Object(map)
                if map.len() == 1 && map.get("static").is_some_and(Value::is_string) =>
            {
                degrade.push(Degrade::Static(
                    map.get("static")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
            other => {
                if let Some((target, _)) = parse_target(other, &step_path, providers, doc, issues) {
                    degrade.push(Degrade::Target(target));
                }
            }
        }
    }
    let admission = raw.admission.and_then(|a| {
        if a.max_concurrency == 0 {
            issues.push(Issue {
                path: format!("{path}.admission.max_concurrency"),
                message: "must be at least 1".into(),
            });
            return None;
        }
        Some((a.max_concurrency, a.queue.unwrap_or(a.max_concurrency * 4)))
    });
    let slo = raw
        .slo
        .and_then(|slo| crate::observe::config::build_slo(slo, path, issues));
    (issues.len() == before).then_some(RouteConfig {
        targets,
        degrade,
        admission,
        slo,
        policy: RoutePolicy {
            tiers,
            weights,
            balance,
            timeouts,
            retry,
            hedge_after,
            mid_stream,
            translation,
            cache,
        },
    })
}

/// A target: `provider/model`, or `{ target: provider/model, weight: N }`.
fn parse_target(
    value: &Value,
    path: &str,
    providers: &BTreeMap<String, ProviderConfig>,
    doc: &Document,
    issues: &mut Vec<Issue>,
) -> Option<(TargetRef, u32)> {
    let (text, weight) = match value {
        Value::String(text) => (text.as_str(), 1),
        Value::Object(map) => {
            let text = map.get("target").and_then(Value::as_str);
            let weight = match map.get("weight") {
                None => Some(1),
                // Read as a section for `weight: ${W}`; the message below
                // says more than serde's would.
                Some(w) => doc.read::<u32>(w.clone(), &format!("{path}.weight"), &mut Vec::new()),
            };
            let unknown: Vec<&String> = map
                .keys()
                .filter(|k| !matches!(k.as_str(), "target" | "weight"))
                .collect();
            match (text, weight) {
                (Some(text), Some(weight)) if unknown.is_empty() => (text, weight),
                _ => {
                    issues.push(Issue {
                        path: path.to_string(),
                        message: "expected `{ target: provider/model, weight: <whole number> }`"
                            .into(),
                    });
                    return None;
                }
            }
        }
        _ => {
            issues.push(Issue {
                path: path.to_string(),
                message: "expected `provider/model`, `{ target: provider/model, weight: N }`, or a list of them (a tier)".into(),
            });
            return None;
        }
    };
    match TargetRef::parse(text) {
        Some(target) if providers.contains_key(&target.provider) => Some((target, weight)),
        Some(target) => {
            issues.push(Issue {
                path: path.to_string(),
                message: format!(
                    "unknown provider `{}`; the providers are: {}",
                    target.provider,
                    providers.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
            None
        }
        None => {
            issues.push(Issue {
                path: path.to_string(),
                message: format!("`{text}` is not `provider/model`"),
            });
            None
        }
    }
}

fn build_breaker(raw: RawBreaker, issues: &mut Vec<Issue>) -> BreakerConfig {
    let d = BreakerConfig::default();
    let failure_rate = raw.failure_rate.unwrap_or(d.failure_rate);
    if !(failure_rate > 0.0 && failure_rate <= 1.0) {
        issues.push(Issue {
            path: "breaker.failure_rate".into(),
            message: format!("{failure_rate} is not a share between 0 (exclusive) and 1"),
        });
    }
    let half_open_probes = raw.half_open_probes.unwrap_or(d.half_open_probes);
    if half_open_probes == 0 {
        issues.push(Issue {
            path: "breaker.half_open_probes".into(),
            message: "must be at least 1, or the breaker could never close".into(),
        });
    }
    BreakerConfig {
        consecutive_failures: raw
            .consecutive_failures
            .unwrap_or(d.consecutive_failures)
            .max(1),
        failure_rate,
        window: duration::timeout(raw.window, d.window, "breaker.window", issues),
        min_calls: raw.min_calls.unwrap_or(d.min_calls),
        slow_call: match raw.slow_call.as_deref() {
            Some("off") => None,
            Some(_) => Some(duration::timeout(
                raw.slow_call,
                Duration::ZERO,
                "breaker.slow_call",
                issues,
            )),
            None => d.slow_call,
        },
        base_ejection: duration::timeout(
            raw.base_ejection,
            d.base_ejection,
            "breaker.base_ejection",
            issues,
        ),
        max_ejection: duration::timeout(
            raw.max_ejection,
            d.max_ejection,
            "breaker.max_ejection",
            issues,
        ),
        half_open_probes,
        probe_timeout: d.probe_timeout,
    }
}

fn build_budget(raw: RawBudget, issues: &mut Vec<Issue>) -> BudgetConfig {
    let d = BudgetConfig::default();
    let ratio = raw.ratio.unwrap_or(d.ratio);
    let min_per_second = raw.min_per_second.unwrap_or(d.min_per_second);
    for (key, value) in [("ratio", ratio), ("min_per_second", min_per_second)] {
        if !(value.is_finite() && value >= 0.0) {
            issues.push(Issue {
                path: format!("retry_budget.{key}"),
                message: format!("{value} must be a non-negative number"),
            });
        }
    }
    BudgetConfig {
        ratio,
        min_per_second,
        window: duration::timeout(raw.window, d.window, "retry_budget.window", issues),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    const SECRET: &str = "sk-live-SECRET123456";

    fn load_with(value: &str) -> Result<Config, ConfigError> {
        let env = |name: &str| (name == "KEY").then(|| value.to_string());
        Config::from_yaml(
            "providers:\n  a: { kind: openai, api_key: ${KEY}, headers: { x-team: ${KEY} } }\nroutes: {}\n",
            "t.yaml",
            &env,
        )
    }

    #[test]
    fn control_characters_in_keys_and_headers_are_refused_after_interpolation() {
        for (value, named) in [
            (format!("{SECRET}\n"), "(LF)"),
            (format!("{SECRET}\r\n"), "(CR, LF)"),
            (format!("{SECRET}\u{7f}"), "(another control character)"),
        ] {
            let Err(error) = load_with(&value) else {
                panic!("a key with {named} loaded");
            };
            let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
            assert_eq!(paths, ["providers.a.headers.x-team", "providers.a.api_key"]);
            for issue in &error.issues {
                assert!(
                    issue.message.starts_with("contains a control character")
                        && issue.message.contains(named),
                    "{}",
                    issue.message
                );
            }
            // The report names the problem, never the secret.
            assert!(!error.to_string().contains("SECRET"), "{error}");
        }
        // Ordinary keys, with a space or non-ASCII text in a header, still load.
        assert!(load_with(SECRET).is_ok());
        assert!(load_with("Bearer clé").is_ok());
    }

    #[test]
    fn control_characters_written_in_the_file_are_refused_too() {
        let Err(error) = Config::from_yaml(
            "providers:\n  a: { kind: openai, api_key: \"sk-abc\\r\\n\" }\nroutes: {}\n",
            "t.yaml",
            &|_| None,
        ) else {
            panic!("a key with CR LF loaded");
        };
        assert_eq!(error.issues.len(), 1);
        assert_eq!(error.issues[0].path, "providers.a.api_key");
    }
}
