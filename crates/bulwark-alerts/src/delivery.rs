//! One worker per webhook: dedup, POST, retry with backoff.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulwark::resilience::backoff::Backoff;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::{Counters, DeliveryOptions, Queued, Webhook, payload, redact};

/// `None` when the HTTP client cannot be built (e.g. no TLS roots); every
/// delivery then fails, loudly, instead of the gateway refusing to start
/// over its alerting.
pub(crate) fn client(options: &DeliveryOptions) -> Option<reqwest::Client> {
    match reqwest::Client::builder()
        .user_agent("bulwark")
        .timeout(options.timeout)
        .build()
    {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; alerts will fail");
            None
        }
    }
}

/// The engine's full-jitter backoff, so receivers coming back from an
/// outage are not hit by every sender at once. A receiver's `Retry-After`
/// wins over the jitter but not over the cap.
pub fn retry_delay(
    retry: u32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(asked) = retry_after {
        return asked.min(cap);
    }
    Backoff { base, cap }.delay(retry, fastrand::f64())
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

enum Outcome {
    Delivered,
    Retry(Option<Duration>),
    GiveUp,
}

pub(crate) async fn run_worker(
    webhook: Webhook,
    mut queue: mpsc::Receiver<Queued>,
    done: watch::Sender<u64>,
    client: Option<reqwest::Client>,
    options: DeliveryOptions,
    counters: Arc<Counters>,
) {
    let host = redact(&webhook.url);
    // Keys delivered here, and when; forgotten once out of the window.
    let mut delivered: HashMap<Arc<str>, Instant> = HashMap::new();
    while let Some(Queued { alert, key }) = queue.recv().await {
        let now = Instant::now();
        delivered.retain(|_, at| now.duration_since(*at) < options.dedup_window);
        match delivered.entry(key) {
            Entry::Occupied(seen) => {
                tracing::debug!(webhook = %host, key = %seen.key(), "alert already delivered; skipped");
                Counters::add(&counters.deduplicated);
            }
            Entry::Vacant(slot) => {
                let body = payload::body(&alert, webhook.format, slot.key());
                match serde_json::to_vec(&body) {
                    Ok(bytes) => {
                        if deliver(&webhook, &host, client.as_ref(), bytes, &options, &counters)
                            .await
                        {
                            slot.insert(Instant::now());
                        }
                    }
                    Err(error) => {
                        tracing::error!(webhook = %host, %error, "cannot encode alert");
                        Counters::add(&counters.failed);
                    }
                }
            }
        }
        done.send_modify(|n| *n += 1);
    }
}

/// Whether the alert got through; counts the outcome either way.
async fn deliver(
    webhook: &Webhook,
    host: &str,
    client: Option<&reqwest::Client>,
    body: Vec<u8>,
    options: &DeliveryOptions,
    counters: &Counters,
) -> bool {
    let Some(client) = client else {
        Counters::add(&counters.failed);
        return false;
    };
    let attempts = options.max_attempts.max(1);
    for attempt in 1..=attempts {
        let outcome = post(client, webhook, host, body.clone()).await;
        let retry_after = match outcome {
            Outcome::Delivered => {
                Counters::add(&counters.delivered);
                return true;
            }
            Outcome::GiveUp => break,
            Outcome::Retry(retry_after) => retry_after,
        };
        if attempt == attempts {
            tracing::warn!(webhook = %host, attempts, "alert delivery failed; out of attempts");
            break;
        }
        let wait = retry_delay(
            attempt - 1,
            options.backoff_base,
            options.backoff_cap,
            retry_after,
        );
        Counters::add(&counters.retried);
        tokio::time::sleep(wait).await;
    }
    Counters::add(&counters.failed);
    false
}

async fn post(client: &reqwest::Client, webhook: &Webhook, host: &str, body: Vec<u8>) -> Outcome {
    let response = client
        .post(&webhook.url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Outcome::Delivered
            } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                tracing::info!(webhook = %host, %status, "alert receiver busy; will retry");
                Outcome::Retry(parse_retry_after(response.headers()))
            } else {
                // A 4xx will not change on retry: the receiver rejects the
                // body or the URL is wrong. Redirect loops end up here too.
                tracing::warn!(webhook = %host, %status, "alert receiver refused the alert; giving up");
                Outcome::GiveUp
            }
        }
        // A bad URL cannot succeed later.
        Err(error) if error.is_builder() => {
            tracing::warn!(webhook = %host, error = %error.without_url(), "webhook url unusable; giving up");
            Outcome::GiveUp
        }
        // Connect errors and timeouts: the receiver may be back soon. A
        // timed-out post may have arrived; a possible duplicate is better
        // than a lost incident alert, and generic bodies carry the
        // dedup key for receivers that care.
        Err(error) => {
            tracing::info!(webhook = %host, error = %error.without_url(), "alert delivery failed; will retry");
            Outcome::Retry(None)
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_is_capped_full_jitter() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for retry in 0..40 {
            let ceiling = (base * 2u32.saturating_pow(retry.min(20))).min(cap);
            for _ in 0..50 {
                let d = retry_delay(retry, base, cap, None);
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
            }
        }
        // Jitter actually varies.
        let samples: std::collections::HashSet<_> =
            (0..20).map(|_| retry_delay(3, base, cap, None)).collect();
        assert!(samples.len() > 1);
    }

    #[test]
    fn retry_after_wins_up_to_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(10);
        assert_eq!(
            retry_delay(0, base, cap, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_delay(0, base, cap, Some(Duration::from_secs(3600))),
            cap
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = parse_retry_after(&headers).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers), None);
    }
}
