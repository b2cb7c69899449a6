//! Fallback across formats: a target that cannot take a client's request is
//! passed over before any call, what a translation leaves out is reported,
//! and a refusal never hides an outage behind a 400. The in-process
//! `Client` against simulated providers on 127.0.0.1, on tokio's paused
//! clock (see `fallback.rs`).

use bulwark::api::ChatRequest;
use bulwark::wire::{anthropic, openai};
use bulwark::{Client, Config, ErrorKind};
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Setup {
    client: Client,
    claude: SimServer,
    gpt: SimServer,
}

/// Providers `claude` (Anthropic format) and `gpt` (OpenAI format), with
/// routes over both in either order, strict or lenient.
async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let claude = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gpt = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let policy = "max_retries: 1, backoff_base: 10ms, backoff_cap: 50ms";
    let yaml = format!(
        "providers:
  claude: {{ kind: anthropic, base_url: \"{}\", api_key: k1 }}
  gpt: {{ kind: openai, base_url: \"{}/v1\", api_key: k2, models: {{ my-reasoner: {{ reasoning: true }} }} }}
routes:
  main: {{ targets: [claude/claude-sonnet-4-5, gpt/gpt-4o-mini], {policy} }}
  to-reasoner: {{ targets: [claude/claude-sonnet-4-5, gpt/o3-mini], {policy} }}
  to-configured: {{ targets: [claude/claude-sonnet-4-5, gpt/my-reasoner], {policy} }}
  strict: {{ targets: [claude/claude-sonnet-4-5, gpt/gpt-4o-mini], translation: strict, {policy} }}
  gpt-first: {{ targets: [gpt/gpt-4o-mini, claude/claude-sonnet-4-5], {policy} }}
  claude-only: {{ targets: [claude/claude-sonnet-4-5, claude/claude-opus-4-1], {policy} }}
  gpt-only: {{ targets: [gpt/gpt-4o-mini], {policy} }}
  gpt-strict: {{ targets: [gpt/gpt-4o-mini], translation: strict, {policy} }}
  cached: {{ targets: [claude/claude-sonnet-4-5, gpt/gpt-4o-mini], cache: {{ ttl: 10m, nondeterministic: true }}, {policy} }}
",
        claude.url(),
        gpt.url()
    );
    let config = Config::from_yaml(&yaml, "test", &|_| None)?;
    Ok(Setup {
        client: Client::from_config(&config)?,
        claude,
        gpt,
    })
}

/// An Anthropic client's request that thinks and marks its system prompt
/// for caching.
fn thinking_request(model: &str) -> Result<ChatRequest, Box<dyn std::error::Error>> {
    let body = json!({
        "model": model,
        "max_tokens": 4000,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hello there"}],
        "thinking": {"type": "enabled", "budget_tokens": 2000}
    });
    Ok(anthropic::decode_request(body.to_string().as_bytes())?)
}

fn openai_request(model: &str, extra: Value) -> Result<ChatRequest, Box<dyn std::error::Error>> {
    let mut body =
        json!({"model": model, "messages": [{"role": "user", "content": "Hello there"}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    Ok(openai::decode_request(body.to_string().as_bytes())?)
}

fn claude_overloaded(s: &Setup) {
    s.claude
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(529))]);
}

#[tokio::test(start_paused = true)]
async fn an_outage_falls_back_across_formats_and_reports_what_was_dropped() -> TestResult {
    let s = setup().await?;
    claude_overloaded(&s);
    let served = s.client.chat(thinking_request("main")?).await?;
    assert_eq!(served.target, "gpt/gpt-4o-mini");
    assert!(served.fallback);
    // gpt-4o-mini does not reason: the thinking is dropped, and said so.
    assert_eq!(served.dropped, vec!["cache_control", "thinking"]);
    assert_eq!(s.gpt.sim.request_count(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn reasoning_reaches_a_fallback_model_that_reasons() -> TestResult {
    for route in ["to-reasoner", "to-configured"] {
        let s = setup().await?;
        claude_overloaded(&s);
        let served = s.client.chat(thinking_request(route)?).await?;
        assert!(served.fallback, "{route}");
        assert_eq!(served.dropped, vec!["cache_control"], "{route}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_same_format_drops_nothing() -> TestResult {
    let s = setup().await?;
    let served = s.client.chat(thinking_request("main")?).await?;
    assert_eq!(served.target, "claude/claude-sonnet-4-5");
    assert!(served.dropped.is_empty(), "{:?}", served.dropped);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_strict_route_skips_the_other_format_but_reports_the_outage() -> TestResult {
    let s = setup().await?;
    // Healthy: the same-format target serves, nothing is translated.
    let served = s.client.chat(thinking_request("strict")?).await?;
    assert_eq!(served.target, "claude/claude-sonnet-4-5");

    claude_overloaded(&s);
    let failed = s
        .client
        .chat(thinking_request("strict")?)
        .await
        .err()
        .ok_or("a strict route translated a request it cannot carry")?;
    // The client hears about the outage (503, Anthropic's SDK gets 529 at
    // the edge), never that its request was bad.
    assert_eq!(failed.error.kind, ErrorKind::Overloaded);
    assert_eq!(failed.error.status, 503);
    assert!(failed.error.retry_after.is_some());
    assert!(
        failed
            .error
            .message
            .contains("gpt/gpt-4o-mini: cannot take"),
        "{}",
        failed.error.message
    );
    // The refusing target was never called.
    assert_eq!(s.gpt.sim.request_count(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refusing_target_never_turns_an_upstream_failure_into_a_400() -> TestResult {
    let s = setup().await?;
    s.gpt
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    // Claude cannot give two choices; the OpenAI target could but is down.
    let failed = s
        .client
        .chat(openai_request("gpt-first", json!({"n": 2}))?)
        .await
        .err()
        .ok_or("served despite the outage")?;
    assert_eq!(failed.error.status, 503, "{}", failed.error.message);
    assert_eq!(failed.error.kind, ErrorKind::Overloaded);
    assert_eq!(s.claude.sim.request_count(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_request_no_target_can_take_is_a_400_naming_field_reason_and_targets() -> TestResult {
    let s = setup().await?;
    let failed = s
        .client
        .chat(openai_request("claude-only", json!({"n": 2}))?)
        .await
        .err()
        .ok_or("two choices asked of Claude were served")?;
    assert_eq!(failed.error.status, 400);
    assert_eq!(failed.error.kind, ErrorKind::InvalidRequest);
    assert_eq!(failed.error.param.as_deref(), Some("n"));
    let message = &failed.error.message;
    for expected in [
        "`n`",
        "the client asked for several",
        "claude/claude-sonnet-4-5, claude/claude-opus-4-1",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert_eq!(failed.attempts, 0);
    assert_eq!(s.claude.sim.request_count(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn droppable_fields_from_openai_clients_are_served_and_reported() -> TestResult {
    let s = setup().await?;
    let request = openai_request(
        "claude-only",
        json!({"seed": 7, "reasoning_effort": "low", "n": 1, "store": true}),
    )?;
    let served = s.client.chat(request).await?;
    assert_eq!(served.target, "claude/claude-sonnet-4-5");
    // claude-sonnet-4-5 reasons: the effort becomes a thinking budget.
    assert_eq!(served.dropped, vec!["store", "seed"]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn each_target_is_sent_the_request_as_translated_for_it() -> TestResult {
    let s = setup().await?;
    claude_overloaded(&s);
    // OpenAI has no top_k; the fallback gets a copy without it.
    let body = json!({"model": "main", "max_tokens": 100, "top_k": 5,
        "messages": [{"role": "user", "content": "Hello there"}]});
    let request = anthropic::decode_request(body.to_string().as_bytes())?;
    let served = s.client.chat(request).await?;
    assert_eq!(served.target, "gpt/gpt-4o-mini");
    assert_eq!(served.dropped, vec!["top_k"]);
    Ok(())
}

fn gpt_refuses(s: &Setup) {
    s.gpt
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(400))]);
}

#[tokio::test(start_paused = true)]
async fn a_4xx_to_a_translation_never_hides_an_outage() -> TestResult {
    let s = setup().await?;
    claude_overloaded(&s);
    gpt_refuses(&s);
    // gpt-4o-mini refuses what the Anthropic client's request became
    // (say, a max_tokens over its cap): Claude's outage is the news.
    let failed = s
        .client
        .chat(thinking_request("main")?)
        .await
        .err()
        .ok_or("served despite the outage")?;
    assert_eq!(failed.error.status, 503, "{}", failed.error.message);
    assert_eq!(failed.error.kind, ErrorKind::Overloaded);
    assert!(failed.error.retry_after.is_some());
    assert_eq!(s.gpt.sim.request_count(), 1);
    let classes: Vec<Option<&str>> = failed
        .attempt_log
        .iter()
        .map(|a| a.error_class.as_deref())
        .collect();
    assert!(
        classes.contains(&Some("translation_refused")),
        "{classes:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_4xx_to_a_translation_fails_over_to_the_clients_own_format() -> TestResult {
    let s = setup().await?;
    gpt_refuses(&s);
    let served = s.client.chat(thinking_request("gpt-first")?).await?;
    assert_eq!(served.target, "claude/claude-sonnet-4-5");
    assert!(served.fallback);
    // Refused once, not retried: the same translation would be refused again.
    assert_eq!(s.gpt.sim.request_count(), 1);
    assert_eq!(s.claude.sim.request_count(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_request_every_target_refuses_gets_the_providers_4xx() -> TestResult {
    let s = setup().await?;
    gpt_refuses(&s);
    let failed = s
        .client
        .chat(thinking_request("gpt-only")?)
        .await
        .err()
        .ok_or("a refused request was served")?;
    assert_eq!(failed.error.status, 400, "{}", failed.error.message);
    assert_eq!(failed.error.kind, ErrorKind::InvalidRequest);
    assert_eq!(s.gpt.sim.request_count(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_same_format_4xx_still_fails_fast() -> TestResult {
    let s = setup().await?;
    s.claude
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(400))]);
    let failed = s
        .client
        .chat(thinking_request("main")?)
        .await
        .err()
        .ok_or("a refused request was served")?;
    assert_eq!(failed.error.status, 400, "{}", failed.error.message);
    assert_eq!(s.claude.sim.request_count(), 1);
    assert_eq!(s.gpt.sim.request_count(), 0, "no other target is asked");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_body_of_countless_unknown_blocks_gets_a_short_error() -> TestResult {
    const BLOCKS: usize = 100_000;
    let s = setup().await?;
    let mut content = vec![json!({"type": "text", "text": "Hello there"})];
    content.extend((0..BLOCKS).map(|_| json!({"type": "mystery"})));
    let body = json!({"model": "gpt-strict", "max_tokens": 100, "messages": [
        {"role": "user", "content": content},
        // Past the cap, a feature not yet seen is still recorded.
        {"role": "narrator", "content": "Meanwhile"},
    ]});
    let request = anthropic::decode_request(body.to_string().as_bytes())?;
    let recorded = request.unmapped.len();
    assert!(recorded <= 66, "{recorded} fields recorded");
    let counted: usize = request.unmapped.iter().map(|u| 1 + u.more).sum();
    assert_eq!(counted, BLOCKS + 1);
    assert!(request.unmapped.iter().any(|u| u.feature == "unknown_role"));

    let failed = s
        .client
        .chat(request)
        .await
        .err()
        .ok_or("a strict route translated unknown blocks")?;
    assert_eq!(failed.error.status, 400);
    let message = &failed.error.message;
    assert!(message.len() < 8 * 1024, "{} bytes", message.len());
    assert!(message.contains("unknown_role"), "{message}");
    assert!(
        message.contains(&format!(
            "`messages[0].content[1]` and {} more like it (unknown_block)",
            BLOCKS - 1
        )),
        "{message}"
    );
    let param = failed.error.param.as_deref().unwrap_or_default();
    assert!(param.len() < 1024, "{} bytes of param", param.len());
    assert_eq!(s.gpt.sim.request_count(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stream_continued_on_another_format_is_sent_the_translation() -> TestResult {
    use bulwark::events::Event;
    use futures_util::StreamExt;
    let gpt = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let claude = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    // claude-3-5-haiku does not reason: its translation has no thinking.
    let yaml = format!(
        "providers:
  gpt: {{ kind: openai, base_url: \"{}/v1\", api_key: k1 }}
  claude: {{ kind: anthropic, base_url: \"{}\", api_key: k2 }}
routes:
  main: {{ targets: [gpt/gpt-4o-mini, claude/claude-3-5-haiku], mid_stream: continue }}
",
        gpt.url(),
        claude.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    // The role chunk, then three words, then the connection ends.
    gpt.sim.set_faults(vec![FaultRule::always(Fault::cut(4))]);
    let mut events = client.subscribe();
    let served = client
        .stream(openai_request(
            "main",
            json!({"stream": true, "reasoning_effort": "high", "max_tokens": 4000}),
        )?)
        .await?;
    assert_eq!(served.target, "gpt/gpt-4o-mini");
    let mut stream = served.value;
    while let Some(item) = stream.next().await {
        item?;
    }
    let sent = claude.sim.requests();
    let continued = sent
        .last()
        .ok_or("the backup was never asked to continue")?;
    let messages = continued.body["messages"].as_array().ok_or("no messages")?;
    assert_eq!(
        messages.last().map(|m| &m["role"]),
        Some(&json!("assistant"))
    );
    assert!(
        continued.body.get("thinking").is_none(),
        "the continuation asked a model that does not reason to think: {}",
        continued.body
    );
    let mut dropped = None;
    while let Ok(event) = events.try_recv() {
        if let Event::Continued { dropped: d, .. } = event {
            dropped = Some(d);
        }
    }
    assert_eq!(dropped, Some(vec!["reasoning_effort"]));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_cache_hit_reports_what_its_answer_was_sent_without() -> TestResult {
    let s = setup().await?;
    claude_overloaded(&s);
    let served = s.client.chat(thinking_request("cached")?).await?;
    assert_eq!(served.target, "gpt/gpt-4o-mini");
    assert_eq!(served.dropped, vec!["cache_control", "thinking"]);
    let hit = s.client.chat(thinking_request("cached")?).await?;
    assert_eq!(hit.cache, Some(bulwark::cache::CacheStatus::Hit));
    // The hit names the cross-format target: it says what that target
    // was sent without, as the first answer did.
    assert_eq!(hit.target, "gpt/gpt-4o-mini");
    assert_eq!(hit.dropped, vec!["cache_control", "thinking"]);
    assert_eq!(s.gpt.sim.request_count(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn anthropic_is_sent_thinking_only_where_it_takes_it_and_each_drop_is_reported() -> TestResult
{
    let s = setup().await?;
    // An OpenAI client's tool loop with reasoning: Anthropic (the simulator
    // holds its rule) refuses thinking there, so it is left out, reported.
    let tool_loop = json!({"reasoning_effort": "high", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    ], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
    let served = s
        .client
        .chat(openai_request("claude-only", tool_loop)?)
        .await?;
    assert_eq!(served.target, "claude/claude-sonnet-4-5");
    assert_eq!(served.dropped, vec!["reasoning_effort"]);
    // Beside thinking, the temperature is left out, reported.
    let served = s
        .client
        .chat(openai_request(
            "claude-only",
            json!({"reasoning_effort": "high", "temperature": 0.4}),
        )?)
        .await?;
    assert_eq!(served.target, "claude/claude-sonnet-4-5");
    assert_eq!(served.dropped, vec!["temperature"]);
    Ok(())
}
