//! Micro-benchmarks of the per-request hot paths: decoding and translating
//! requests, decoding provider streams and re-encoding them for a client of
//! another format, assembling a relayed answer, and the breaker, budget and
//! concurrency decisions made on every attempt.
//!
//! `cargo bench -p bulwark --bench hot_paths`

use bulwark::api::StreamEvent;
use bulwark::resilience::breaker::{Breaker, BreakerConfig, CallOutcome};
use bulwark::resilience::budget::{BudgetConfig, RetryBudget};
use bulwark::resilience::concurrency::{Aimd, ConcurrencyConfig, Signal};
use bulwark::sse::{SseDecoder, SseEvent};
use bulwark::wire::{anthropic, gemini, openai};
use divan::{Bencher, black_box};
use tokio::time::Instant;

fn main() {
    divan::main();
}

/// A typical chat request: system prompt, a few turns, a tool.
fn openai_body() -> Vec<u8> {
    let mut messages = vec![
        serde_json::json!({"role": "system", "content": "You are a helpful assistant. Answer briefly."}),
    ];
    for i in 0..6 {
        messages.push(serde_json::json!({"role": "user", "content": format!("Question {i}: what is the capital of country number {i}, and why does it matter for trade?")}));
        messages.push(serde_json::json!({"role": "assistant", "content": format!("Answer {i}: it is the largest city, a port, and the seat of government.")}));
    }
    messages
        .push(serde_json::json!({"role": "user", "content": "Summarise all of that in one line."}));
    serde_json::json!({
        "model": "smart",
        "messages": messages,
        "max_tokens": 256,
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look a city up", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "stream": true,
    })
    .to_string()
    .into_bytes()
}

fn anthropic_stream() -> String {
    let mut sse = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    for i in 0..100 {
        sse.push_str(&format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n"
        ));
    }
    sse.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":100}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    sse
}

#[divan::bench]
fn decode_openai_request(bencher: Bencher) {
    let body = openai_body();
    bencher.bench(|| openai::decode_request(black_box(&body)));
}

#[divan::bench]
fn translate_openai_to_anthropic(bencher: Bencher) {
    let request = openai::decode_request(&openai_body()).ok();
    bencher.bench(|| {
        request.as_ref().map(|r| {
            anthropic::encode_request(black_box(r), "claude-sonnet-4-5", 4096)
                .map(|v| v.to_string())
        })
    });
}

#[divan::bench]
fn translate_openai_to_gemini(bencher: Bencher) {
    let request = openai::decode_request(&openai_body()).ok();
    bencher.bench(|| {
        request
            .as_ref()
            .map(|r| gemini::encode_request(black_box(r)).map(|v| v.to_string()))
    });
}

#[divan::bench]
fn relay_openai_to_openai(bencher: Bencher) {
    let request = openai::decode_request(&openai_body()).ok();
    bencher.bench(|| {
        request.as_ref().map(|r| {
            openai::encode_request(black_box(r), "gpt-4o-mini", openai::Upstream::OpenAi)
                .map(|v| v.to_string())
        })
    });
}

/// 100 text deltas split into 1 KiB network reads.
#[divan::bench]
fn parse_sse_stream(bencher: Bencher) {
    let sse = anthropic_stream();
    bencher.bench(|| {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for piece in black_box(sse.as_bytes()).chunks(1024) {
            decoder.feed(piece, &mut events);
        }
        events.len()
    });
}

fn sse_events() -> Vec<SseEvent> {
    let mut events = Vec::new();
    SseDecoder::new().feed(anthropic_stream().as_bytes(), &mut events);
    events
}

/// The whole stream: decode Anthropic events, re-encode for an OpenAI client.
#[divan::bench]
fn translate_stream_anthropic_to_openai(bencher: Bencher) {
    let events = sse_events();
    bencher.bench(|| {
        let mut decoder = anthropic::StreamDecoder::new();
        let mut encoder = openai::StreamEncoder::new(true);
        let mut neutral: Vec<StreamEvent> = Vec::new();
        let mut out: Vec<bytes::Bytes> = Vec::new();
        for event in black_box(&events) {
            neutral.clear();
            let _ = decoder.on_event(event, &mut neutral);
            for e in &neutral {
                encoder.encode(e, &mut out);
            }
        }
        encoder.finish(&mut out);
        out.len()
    });
}

/// A complete answer for a client of the provider's own format.
#[divan::bench]
fn assemble_relayed_answer(bencher: Bencher) {
    let events = sse_events();
    bencher.bench(|| {
        anthropic::assemble_response(black_box(&events))
            .to_string()
            .len()
    });
}

#[divan::bench]
fn breaker_admit_and_record(bencher: Bencher) {
    let mut breaker = Breaker::new(BreakerConfig::default(), Instant::now());
    bencher.bench_local(|| {
        let now = Instant::now();
        if let Ok((admission, _)) = breaker.admit(now) {
            breaker.record(
                now,
                admission,
                CallOutcome::Success {
                    latency: std::time::Duration::from_millis(200),
                },
            );
        }
    });
}

#[divan::bench]
fn retry_budget_request_and_retry(bencher: Bencher) {
    let mut budget = RetryBudget::new(BudgetConfig::default());
    bencher.bench_local(|| {
        let now = Instant::now();
        budget.record_request(now);
        budget.try_withdraw(now)
    });
}

#[divan::bench]
fn concurrency_acquire_release(bencher: Bencher) {
    let mut aimd = Aimd::new(ConcurrencyConfig::default());
    bencher.bench_local(|| {
        if aimd.try_acquire() {
            aimd.release(Signal::Success);
        }
    });
}
