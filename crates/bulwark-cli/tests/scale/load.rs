//! Requests as clients send them, and what the tests read back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// What one request got: status (0 when no HTTP answer came), how long
/// the whole answer took, and the cache header.
#[derive(Debug, Clone)]
pub struct Shot {
    pub status: u16,
    pub took: Duration,
    pub cache: Option<String>,
    pub body: String,
}

/// A deterministic (temperature 0, hence cacheable) OpenAI chat request
/// for `model` (a route) saying `text`.
pub async fn chat(client: &reqwest::Client, url: &str, model: &str, text: &str) -> Shot {
    let start = Instant::now();
    let sent = client
        .post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "model": model, "temperature": 0,
                "messages": [{"role": "user", "content": text}]
            })
            .to_string(),
        )
        .send()
        .await;
    let Ok(response) = sent else {
        return Shot {
            status: 0,
            took: start.elapsed(),
            cache: None,
            body: String::new(),
        };
    };
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-bulwark-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    Shot {
        status,
        took: start.elapsed(),
        cache,
        body,
    }
}

/// `count` requests with at most `concurrency` in flight, each with its own
/// text (so none is a cache hit).
pub async fn burst(
    client: &reqwest::Client,
    url: &str,
    model: &str,
    count: usize,
    concurrency: usize,
) -> Vec<Shot> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, model, next) = (
                client.clone(),
                url.to_string(),
                model.to_string(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut shots = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return shots;
                    }
                    shots.push(chat(&client, &url, &model, &format!("burst {n}")).await);
                }
            })
        })
        .collect();
    let mut shots = Vec::new();
    for worker in workers {
        if let Ok(mut mine) = worker.await {
            shots.append(&mut mine);
        }
    }
    shots
}

/// Load that runs until `stop` is set: `concurrency` clients, each sending
/// its next request as soon as the last is answered. Returns every shot
/// with the instant it started.
pub fn keep_loading(
    client: &reqwest::Client,
    url: &str,
    model: &str,
    concurrency: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(Instant, Shot)>> {
    let (client, url, model) = (client.clone(), url.to_string(), model.to_string());
    tokio::spawn(async move {
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (client, url, model, stop) =
                    (client.clone(), url.clone(), model.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut shots = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let text = format!("load {w}-{n}");
                        shots.push((started, chat(&client, &url, &model, &text).await));
                        n += 1;
                    }
                    shots
                })
            })
            .collect();
        let mut shots = Vec::new();
        for worker in workers {
            if let Ok(mut mine) = worker.await {
                shots.append(&mut mine);
            }
        }
        shots
    })
}

/// GET `url` as JSON (Null when it cannot be had).
pub async fn json(client: &reqwest::Client, url: &str) -> Value {
    match client.get(url).send().await {
        Ok(response) => response
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// GET `url` as text (empty when it cannot be had).
pub async fn text(client: &reqwest::Client, url: &str) -> String {
    match client.get(url).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Calls `check` every 100 ms until it gives Some, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
