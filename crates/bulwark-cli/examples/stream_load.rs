//! Opens many concurrent streaming chat requests and reports time to first
//! token and stream duration as JSON; used by `bench/run.py` to measure the
//! cost of streams through each proxy.
//!
//! `cargo run --release -p bulwark-cli --example stream_load -- URL STREAMS [MODEL]`
//! where URL is an OpenAI-style base such as http://127.0.0.1:8080/v1.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .ok_or("usage: stream_load URL STREAMS [MODEL]")?;
    let streams: usize = args
        .next()
        .ok_or("usage: stream_load URL STREAMS [MODEL]")?
        .parse()?;
    let model = args.next().unwrap_or_else(|| "gpt-4o-mini".to_string());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(streams)
        .build()?;
    // A long prompt makes a long (echoing) answer: the streams stay open.
    let prompt = "tell me a long story about resilient gateways ".repeat(8);
    let body = serde_json::json!({
        "model": model,
        "stream": true,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": prompt}],
    })
    .to_string();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..streams {
        let http = http.clone();
        let url = format!("{base}/chat/completions");
        let body = body.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .header("authorization", "Bearer bench")
                .body(body)
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            let mut response = response;
            let mut first: Option<Duration> = None;
            let mut done = false;
            while let Ok(Some(chunk)) = response.chunk().await {
                let text = String::from_utf8_lossy(&chunk);
                if first.is_none()
                    && text.contains("\"content\":\"")
                    && !text.contains("\"content\":\"\"")
                {
                    first = Some(sent.elapsed());
                }
                done |= text.contains("[DONE]");
            }
            done.then(|| (first.unwrap_or_else(|| sent.elapsed()), sent.elapsed()))
        });
    }
    let mut firsts = Vec::new();
    let mut totals = Vec::new();
    let mut errors = 0usize;
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Some((first, total))) => {
                firsts.push(first);
                totals.push(total);
            }
            _ => errors += 1,
        }
    }
    firsts.sort_unstable();
    totals.sort_unstable();
    let pct = |v: &[Duration], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[rank.min(v.len() - 1)].as_secs_f64() * 1000.0
    };
    println!(
        "{}",
        serde_json::json!({
            "streams": streams,
            "completed": firsts.len(),
            "errors": errors,
            "ttft_p50_ms": pct(&firsts, 50.0),
            "ttft_p99_ms": pct(&firsts, 99.0),
            "duration_p50_ms": pct(&totals, 50.0),
            "wall_ms": started.elapsed().as_secs_f64() * 1000.0,
        })
    );
    Ok(())
}
