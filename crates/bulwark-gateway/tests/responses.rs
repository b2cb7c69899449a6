//! The OpenAI Responses API front door (`POST /v1/responses`, issue 13):
//! answers, typed event streams and tool calls through an OpenAI target
//! (which is sent the client's own body at `/v1/responses` and relayed),
//! an Anthropic target (translated), and a route whose first target is
//! overloaded (529) and fails over.

mod common;
mod sim_gateway;

use bulwark::observe::record::RequestRecord;
use bulwark_sim::{Fault, FaultRule, Format, SimConfig, SimServer};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BROKEN_MODEL: &str = "claude-overloaded";
const ROUTES: [&str; 3] = ["same", "cross", "failover"];

async fn start() -> Result<(SimServer, common::Running), Box<dyn std::error::Error>> {
    let config = SimConfig {
        faults: vec![
            FaultRule::always(Fault::status(529))
                .for_format(Format::Anthropic)
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
routes:
  same:     {{ targets: [sim-openai/gpt-4o-mini] }}
  cross:    {{ targets: [sim-anthropic/claude-sonnet-4-5] }}
  failover: {{ targets: [sim-anthropic/{BROKEN_MODEL}, sim-openai/gpt-4o-mini], max_retries: 0 }}
  down:     {{ targets: [sim-anthropic/{BROKEN_MODEL}], max_retries: 0 }}
  cached:   {{ targets: [sim-anthropic/claude-sonnet-4-5], cache: {{ ttl: 1h }} }}
  continued: {{ targets: [sim-openai/gpt-4o-mini, sim-anthropic/claude-sonnet-4-5], mid_stream: continue, max_retries: 0 }}
  convo:    {{ targets: [sim-anthropic/claude-sonnet-4-5, sim-openai/gpt-4o-mini], max_retries: 0 }}
  cached-openai: {{ targets: [sim-openai/gpt-4o-mini], cache: {{ ttl: 1h }} }}
  openai-first: {{ targets: [sim-openai/gpt-4o-mini, sim-anthropic/claude-sonnet-4-5], max_retries: 0 }}
"
        )
    })
    .await
}

/// reqwest is built without its `json` feature here.
trait JsonBody {
    async fn json_value(self) -> Result<Value, Box<dyn std::error::Error>>;
}

impl JsonBody for reqwest::Response {
    async fn json_value(self) -> Result<Value, Box<dyn std::error::Error>> {
        Ok(serde_json::from_str(&self.text().await?)?)
    }
}

fn expected_target(route: &str) -> &'static str {
    match route {
        "cross" => "sim-anthropic/claude-sonnet-4-5",
        _ => "sim-openai/gpt-4o-mini",
    }
}

async fn post(base: &str, body: &Value) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{base}/v1/responses"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
}

/// The events of a stream, each checked to name its type twice (the SSE
/// `event:` line and the data's `type`).
fn events(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut event = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event: ") {
                event = Some(name.to_string());
            } else if let Some(part) = line.strip_prefix("data: ") {
                data.push_str(part);
            }
        }
        let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        assert_eq!(event.as_deref(), value["type"].as_str(), "{block}");
        out.push(value);
    }
    out
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": false},
           "strict": true})
}

async fn logged(running: &common::Running) -> Vec<RequestRecord> {
    let observer = running.gateway.observer();
    observer.flush().await;
    observer
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn a_text_answer_is_a_response_object_on_every_route() -> TestResult {
    let (sim, gateway) = start().await?;
    for route in ROUTES {
        let response = post(
            &gateway.base,
            &json!({"model": route, "instructions": "Be brief.", "input": "Say hello please",
                    "max_output_tokens": 200, "metadata": {"k": "v"}}),
        )
        .await?;
        assert_eq!(response.status(), 200, "{route}");
        let header = |name: &str| sim_gateway::header(&response, name).unwrap_or_default();
        assert_eq!(header("x-bulwark-target"), expected_target(route));
        assert_eq!(
            header("x-bulwark-fallback") == "true",
            route == "failover",
            "{route}"
        );
        // Only a translated answer leaves out what its format lacks.
        let dropped = if route == "cross" { "metadata" } else { "" };
        assert_eq!(header("x-bulwark-dropped"), dropped, "{route}");
        let body: Value = response.json_value().await?;
        assert!(
            body["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("resp_"))
        );
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["instructions"], "Be brief.");
        assert_eq!(body["max_output_tokens"], 200);
        assert_eq!(body["output"][0]["type"], "message");
        let text = body["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            text.starts_with("Simulated answer from") && text.contains("Say hello please"),
            "{route}: {body}"
        );
        let usage = &body["usage"];
        assert!(usage["input_tokens"].as_u64().is_some_and(|n| n > 0));
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(
                usage["input_tokens"].as_u64().unwrap_or(0)
                    + usage["output_tokens"].as_u64().unwrap_or(0)
            )
        );
    }
    // The OpenAI target was sent the client's own body at /v1/responses.
    let sent = sim.sim.requests();
    let to_openai = sent
        .iter()
        .find(|r| r.body["model"] == "gpt-4o-mini")
        .cloned()
        .ok_or("the OpenAI target was never called")?;
    assert_eq!(to_openai.path, "/v1/responses");
    assert_eq!(to_openai.body["instructions"], "Be brief.");
    assert_eq!(to_openai.body["input"], "Say hello please");
    assert_eq!(to_openai.body["max_output_tokens"], 200);
    assert_eq!(to_openai.body["metadata"], json!({"k": "v"}));
    assert!(
        to_openai.body.get("messages").is_none(),
        "{}",
        to_openai.body
    );
    // The request log names the format.
    let rows = logged(&gateway).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.client_format == "openai-responses"));
    Ok(())
}

#[tokio::test]
async fn streams_are_typed_events_numbered_from_zero_on_every_route() -> TestResult {
    let (_sim, gateway) = start().await?;
    for route in ROUTES {
        let response = post(
            &gateway.base,
            &json!({"model": route, "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "Stream a few words"}]}], "stream": true}),
        )
        .await?;
        assert_eq!(response.status(), 200, "{route}");
        assert_eq!(
            sim_gateway::header(&response, "content-type").as_deref(),
            Some("text/event-stream")
        );
        assert_eq!(
            sim_gateway::header(&response, "x-bulwark-target").as_deref(),
            Some(expected_target(route))
        );
        let events = events(&response.text().await?);
        for (n, event) in events.iter().enumerate() {
            assert_eq!(event["sequence_number"], json!(n), "{route}: {event}");
        }
        let kinds = types(&events);
        assert_eq!(
            kinds[..4],
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added"
            ],
            "{route}"
        );
        assert_eq!(
            kinds[kinds.len() - 4..],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ],
            "{route}"
        );
        let deltas: String = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert!(deltas.contains("Stream a few words"), "{route}: {deltas}");
        let last = &events[events.len() - 1]["response"];
        assert_eq!(last["status"], "completed");
        assert_eq!(last["id"], events[0]["response"]["id"]);
        assert_eq!(last["output"][0]["content"][0]["text"], deltas.as_str());
        assert!(
            last["usage"]["output_tokens"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "{route}: {last}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn tool_calls_and_their_outputs_round_trip_streamed_and_not() -> TestResult {
    let (_sim, gateway) = start().await?;
    for route in ROUTES {
        for stream in [false, true] {
            let first = json!({"model": route, "stream": stream, "tools": [weather_tool()],
                "input": "What is the weather? sim:call get_weather {\"city\": \"Oslo\"}"});
            let response = post(&gateway.base, &first).await?;
            assert_eq!(response.status(), 200, "{route} {stream}");
            let answer = if stream {
                let events = events(&response.text().await?);
                let kinds = types(&events);
                assert!(
                    kinds.contains(&"response.function_call_arguments.delta")
                        && kinds.contains(&"response.function_call_arguments.done"),
                    "{route}: {kinds:?}"
                );
                let done = events
                    .iter()
                    .find(|e| e["type"] == "response.function_call_arguments.done")
                    .cloned()
                    .unwrap_or_default();
                let added = events
                    .iter()
                    .find(|e| {
                        e["type"] == "response.output_item.added"
                            && e["item"]["type"] == "function_call"
                    })
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(done["item_id"], added["item"]["id"]);
                assert_eq!(done["output_index"], added["output_index"]);
                events[events.len() - 1]["response"].clone()
            } else {
                response.json_value().await?
            };
            let call = answer["output"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["type"] == "function_call"))
                .cloned()
                .unwrap_or_default();
            assert_eq!(call["name"], "get_weather", "{route} {stream}: {answer}");
            assert!(call["id"].as_str().is_some_and(|id| id.starts_with("fc_")));
            let arguments: Value =
                serde_json::from_str(call["arguments"].as_str().unwrap_or_default())?;
            assert_eq!(arguments, json!({"city": "Oslo"}));

            // The client runs the tool and sends the call and its output back.
            let second = json!({"model": route, "stream": stream, "tools": [weather_tool()],
            "input": [
                {"role": "user", "content": "What is the weather?"},
                call,
                {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny and 21C"}
            ]});
            let response = post(&gateway.base, &second).await?;
            assert_eq!(response.status(), 200, "{route} {stream}");
            let answer = if stream {
                let events = events(&response.text().await?);
                events[events.len() - 1]["response"].clone()
            } else {
                response.json_value().await?
            };
            let text = answer["output"][0]["content"][0]["text"]
                .as_str()
                .unwrap_or_default();
            assert!(
                text.contains("the tool returned sunny and 21C"),
                "{route} {stream}: {answer}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_answer_cut_by_max_output_tokens_is_incomplete() -> TestResult {
    let (_sim, gateway) = start().await?;
    for route in ["same", "cross"] {
        let body = json!({"model": route, "input": "one two three four five six seven",
                          "max_output_tokens": 3});
        let answer: Value = post(&gateway.base, &body).await?.json_value().await?;
        assert_eq!(answer["status"], "incomplete", "{route}: {answer}");
        assert_eq!(answer["incomplete_details"]["reason"], "max_output_tokens");

        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let events = events(&post(&gateway.base, &streamed).await?.text().await?);
        let last = &events[events.len() - 1];
        assert_eq!(last["type"], "response.incomplete", "{route}");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }
    Ok(())
}

#[tokio::test]
async fn structured_output_reaches_each_target_as_its_own_schema() -> TestResult {
    let (_sim, gateway) = start().await?;
    let schema = json!({"type": "object", "additionalProperties": false,
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"]});
    for route in ROUTES {
        let body = json!({"model": route, "input": "Plan a trip",
            "text": {"format": {"type": "json_schema", "name": "Trip", "strict": true, "schema": schema}}});
        let response = post(&gateway.base, &body).await?;
        assert_eq!(response.status(), 200, "{route}");
        let answer: Value = response.json_value().await?;
        assert_eq!(
            answer["text"]["format"]["name"], "Trip",
            "{route}: {answer}"
        );
        let text = answer["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        let parsed: Value = serde_json::from_str(text)?;
        assert!(
            parsed["city"].is_string() && parsed["days"].is_i64(),
            "{route}: {text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn refusals_at_the_door_and_upstream_failures_are_openai_errors() -> TestResult {
    let (_sim, gateway) = start().await?;
    // A conversation this gateway never stored: OpenAI's 404, by name.
    let response = post(
        &gateway.base,
        &json!({"model": "same", "input": "hi", "previous_response_id": "resp_123"}),
    )
    .await?;
    assert_eq!(response.status(), 404);
    let body: Value = response.json_value().await?;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "previous_response_id");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("resp_123")),
        "{body}"
    );

    // A prompt stored at OpenAI cannot reach a translated target: refused
    // by name (an OpenAI target is sent it as it is).
    let response = post(
        &gateway.base,
        &json!({"model": "cross", "prompt": {"id": "pmpt_1"}}),
    )
    .await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json_value().await?;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("prompt")),
        "{body}"
    );

    let response = post(&gateway.base, &json!({"input": "hi"})).await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json_value().await?;
    assert_eq!(body["error"]["param"], "model");

    // Every target overloaded: a 5xx in OpenAI's error shape, never a 4xx.
    for stream in [false, true] {
        let response = post(
            &gateway.base,
            &json!({"model": "down", "input": "hi", "stream": stream}),
        )
        .await?;
        assert!(response.status().is_server_error(), "{}", response.status());
        let body: Value = response.json_value().await?;
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(body["error"]["type"].is_string(), "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn a_stream_broken_after_content_ends_with_error_and_response_failed() -> TestResult {
    let (sim, gateway) = start().await?;
    // Cut after the relayed stream's first words.
    sim.sim.set_faults(vec![
        FaultRule::always(Fault::cut(6)).for_format(Format::OpenAi),
    ]);
    let response = post(
        &gateway.base,
        &json!({"model": "same", "input": "Tell me a long story about a fox", "stream": true}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let events = events(&response.text().await?);
    let kinds = types(&events);
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["error", "response.failed"],
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"response.completed"));
    let error = &events[events.len() - 2];
    assert!(error["error"]["message"].is_string(), "{error}");
    let failed = &events[events.len() - 1]["response"];
    assert_eq!(failed["status"], "failed");
    // The relayed response fails by its own id.
    assert_eq!(failed["id"], events[0]["response"]["id"]);
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], json!(n));
    }
    Ok(())
}

#[tokio::test]
async fn a_cached_answer_is_replayed_as_a_new_response_and_metrics_name_the_format() -> TestResult {
    let (sim, gateway) = start().await?;
    let mut ids = Vec::new();
    for (stream, cache) in [(false, "miss"), (false, "hit"), (true, "hit")] {
        let body = json!({"model": "cached", "input": "Cache me please", "stream": stream, "temperature": 0});
        let response = post(&gateway.base, &body).await?;
        assert_eq!(
            sim_gateway::header(&response, "x-bulwark-cache").as_deref(),
            Some(cache),
            "stream: {stream}"
        );
        let answer = if stream {
            let events = events(&response.text().await?);
            events[events.len() - 1]["response"].clone()
        } else {
            response.json_value().await?
        };
        let text = answer["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(text.contains("Cache me please"), "{answer}");
        ids.push(answer["id"].clone());
    }
    assert_eq!(
        sim.sim.requests().len(),
        1,
        "the cache answered the repeats"
    );
    // Each answer is a response of its own, a replayed one too.
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");

    let metrics = reqwest::get(format!("{}/metrics", gateway.base))
        .await?
        .text()
        .await?;
    assert!(metrics.contains("format=\"openai-responses\""), "{metrics}");
    Ok(())
}

#[tokio::test]
async fn a_stream_continued_by_another_target_stays_one_well_formed_response() -> TestResult {
    let (sim, gateway) = start().await?;
    sim.sim.set_faults(vec![
        FaultRule::always(Fault::cut(4)).for_format(Format::OpenAi),
    ]);
    let response = post(
        &gateway.base,
        &json!({"model": "continued", "input": "one two three four five six seven eight", "stream": true}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let events = events(&response.text().await?);
    let kinds = types(&events);
    assert_eq!(kinds.last(), Some(&"response.completed"), "{kinds:?}");
    assert!(!kinds.contains(&"error"), "{kinds:?}");
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], json!(n));
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == "response.created").count(),
        1
    );
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    let last = &events[events.len() - 1]["response"];
    let output = last["output"].as_array().cloned().unwrap_or_default();
    let text: String = output
        .iter()
        .filter_map(|item| item["content"][0]["text"].as_str())
        .collect();
    assert_eq!(text, deltas, "{last}");
    assert!(
        sim.sim.requests().len() >= 2,
        "the stream was continued elsewhere"
    );
    Ok(())
}

/// Polls the gateway until it has stored response `id` (storing runs after
/// the answer, off its path), and returns the stored object.
async fn stored(base: &str, id: &str) -> Result<Value, Box<dyn std::error::Error>> {
    for _ in 0..500 {
        let response = reqwest::Client::new()
            .get(format!("{base}/v1/responses/{id}"))
            .send()
            .await?;
        if response.status() == 200 {
            return response.json_value().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Err(format!("response {id} was never stored").into())
}

/// The body of the last request the sim received for `model`.
async fn last_sim_body(sim: &SimServer, model: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let log: Value = reqwest::get(format!("{}/_sim/requests", sim.url()))
        .await?
        .json_value()
        .await?;
    let requests = log
        .as_array()
        .or_else(|| log["requests"].as_array())
        .cloned()
        .unwrap_or_default();
    requests
        .iter()
        .rev()
        .find(|r| r["model"] == model && r["outcome"] == "ok")
        .map(|r| r["body"].clone())
        .ok_or_else(|| format!("the sim served no request for {model}: {log}").into())
}

/// The point of keeping conversation state in Bulwark rather than at a
/// provider: a conversation started on Anthropic goes on at OpenAI when
/// Anthropic fails, and OpenAI receives every earlier turn.
#[tokio::test]
async fn a_conversation_started_on_one_provider_continues_on_another_when_it_fails() -> TestResult {
    let (sim, gateway) = start().await?;
    let first = post(
        &gateway.base,
        &json!({"model": "convo", "instructions": "Be brief.", "input": "Remember the word kumquat."}),
    )
    .await?;
    assert_eq!(first.status(), 200);
    let first: Value = first.json_value().await?;
    let first_id = first["id"].as_str().ok_or("no id")?.to_string();
    let first_text = first["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        first_text.contains("Simulated answer from claude-sonnet-4-5"),
        "{first}"
    );
    assert_eq!(stored(&gateway.base, &first_id).await?["id"], first["id"]);

    // Anthropic goes down for good.
    let put = reqwest::Client::new()
        .put(format!("{}/_sim/faults", sim.url()))
        .header("content-type", "application/json")
        .body(json!([{"match": {"format": "anthropic"}, "fault": {"status": 529}}]).to_string())
        .send()
        .await?;
    assert!(put.status().is_success(), "{}", put.text().await?);

    // The second turn, streamed, continues the first by its id only.
    let second = post(
        &gateway.base,
        &json!({"model": "convo", "input": "Which word was it?", "previous_response_id": first_id, "stream": true}),
    )
    .await?;
    assert_eq!(second.status(), 200);
    let second = events(&second.text().await?);
    let completed = second
        .iter()
        .find(|e| e["type"] == "response.completed")
        .ok_or("no response.completed")?;
    assert_eq!(
        completed["response"]["previous_response_id"], first_id,
        "the answer names the response it continues"
    );
    let second_id = completed["response"]["id"]
        .as_str()
        .ok_or("no id")?
        .to_string();
    let openai_saw = last_sim_body(&sim, "gpt-4o-mini").await?.to_string();
    for earlier in [
        "Remember the word kumquat.",
        first_text.as_str(),
        "Which word was it?",
    ] {
        assert!(
            openai_saw.contains(earlier),
            "OpenAI was not given {earlier:?}: {openai_saw}"
        );
    }
    // Instructions belong to the request that sent them (OpenAI's rule).
    assert!(!openai_saw.contains("Be brief."), "{openai_saw}");

    // A third turn reads the stored chain in one piece, second turn included.
    stored(&gateway.base, &second_id).await?;
    let third = post(
        &gateway.base,
        &json!({"model": "convo", "input": "Thanks.", "previous_response_id": second_id}),
    )
    .await?;
    assert_eq!(third.status(), 200);
    let openai_saw = last_sim_body(&sim, "gpt-4o-mini").await?.to_string();
    for earlier in [
        "Remember the word kumquat.",
        "Which word was it?",
        "Thanks.",
    ] {
        assert!(
            openai_saw.contains(earlier),
            "OpenAI was not given {earlier:?}: {openai_saw}"
        );
    }
    // The first two turns were read back above, so both were stored.
    let metrics = reqwest::get(format!("{}/metrics", gateway.base))
        .await?
        .text()
        .await?;
    let stored: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("bulwark_conversations_stored_total "))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| format!("no bulwark_conversations_stored_total in {metrics}"))?;
    assert!(stored >= 2, "{stored}");
    Ok(())
}

/// Issue 13's "pass through losslessly": what Chat Completions cannot say
/// (reasoning summaries, `include`, built-in and namespace tools, prompt
/// caching, the service tier) reaches an OpenAI target as the client wrote
/// it, and the target's own events and ids reach the client.
#[tokio::test]
async fn an_openai_target_is_sent_the_clients_own_body_and_relayed_as_it_answers() -> TestResult {
    let (sim, gateway) = start().await?;
    let tools = json!([
        {"type": "web_search"},
        {"type": "namespace", "name": "repo", "description": "Repository tools",
         "tools": [{"type": "function", "name": "grep", "parameters": {"type": "object"}}]},
        weather_tool()
    ]);
    for stream in [false, true] {
        let body = json!({"model": "same", "stream": stream, "input": "Think, then say hi",
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "high", "summary": "auto"},
            "tools": tools, "truncation": "auto", "prompt_cache_key": "conv-7",
            "service_tier": "flex", "store": false});
        let response = post(&gateway.base, &body).await?;
        assert_eq!(response.status(), 200, "stream: {stream}");
        assert_eq!(
            sim_gateway::header(&response, "x-bulwark-dropped"),
            None,
            "nothing is left out"
        );
        let answer = if stream {
            let events = events(&response.text().await?);
            for (n, event) in events.iter().enumerate() {
                assert_eq!(event["sequence_number"], json!(n), "{event}");
            }
            // The reasoning item translation would have lost, as sent.
            assert!(
                events
                    .iter()
                    .any(|e| e["type"] == "response.output_item.added"
                        && e["item"]["type"] == "reasoning"
                        && e["item"]["id"]
                            .as_str()
                            .is_some_and(|id| id.starts_with("rs_sim"))),
                "{events:?}"
            );
            let deltas = events
                .iter()
                .filter(|e| e["type"] == "response.output_text.delta")
                .collect::<Vec<_>>();
            assert!(!deltas.is_empty());
            assert!(
                deltas.iter().all(|e| e["item_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("msg_sim"))),
                "{deltas:?}"
            );
            assert_eq!(
                events[0]["response"]["id"],
                events[events.len() - 1]["response"]["id"]
            );
            events[events.len() - 1]["response"].clone()
        } else {
            response.json_value().await?
        };
        // The sim's own Response object, its ids and settings included.
        assert!(
            answer["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("resp_sim")),
            "{answer}"
        );
        assert_eq!(answer["output"][0]["type"], "reasoning", "{answer}");
        assert_eq!(answer["output"][1]["type"], "message", "{answer}");
        assert_eq!(answer["truncation"], "auto");
        assert_eq!(answer["tools"], tools);

        let sent = sim
            .sim
            .requests()
            .last()
            .cloned()
            .ok_or("the sim was never called")?;
        assert_eq!(sent.path, "/v1/responses");
        assert_eq!(sent.body["model"], "gpt-4o-mini");
        assert_eq!(sent.body["stream"], true, "Bulwark streams from providers");
        for field in [
            "input",
            "include",
            "reasoning",
            "tools",
            "truncation",
            "prompt_cache_key",
            "service_tier",
            "store",
        ] {
            assert_eq!(sent.body[field], body[field], "{field}");
        }
        assert!(sent.body.get("messages").is_none());
    }
    Ok(())
}

/// A failing OpenAI target is passed over for an Anthropic one, which is
/// reached through translation; the client sees one well-formed answer.
#[tokio::test]
async fn a_broken_openai_target_fails_over_to_a_translated_anthropic_one() -> TestResult {
    let (sim, gateway) = start().await?;
    for (fault, label) in [
        (Fault::status(500), "500"),
        (Fault::error_event(2), "error event"),
    ] {
        sim.sim
            .set_faults(vec![FaultRule::always(fault).for_format(Format::OpenAi)]);
        sim.sim.clear_requests();
        for stream in [false, true] {
            let response = post(
                &gateway.base,
                &json!({"model": "openai-first", "input": "Say hello please", "stream": stream}),
            )
            .await?;
            assert_eq!(response.status(), 200, "{label} {stream}");
            assert_eq!(
                sim_gateway::header(&response, "x-bulwark-target").as_deref(),
                Some("sim-anthropic/claude-sonnet-4-5"),
                "{label} {stream}"
            );
            assert_eq!(
                sim_gateway::header(&response, "x-bulwark-fallback").as_deref(),
                Some("true")
            );
            let answer = if stream {
                let events = events(&response.text().await?);
                for (n, event) in events.iter().enumerate() {
                    assert_eq!(event["sequence_number"], json!(n), "{label}: {event}");
                }
                let kinds = types(&events);
                assert!(!kinds.contains(&"error"), "{label}: {kinds:?}");
                assert_eq!(kinds.last(), Some(&"response.completed"), "{label}");
                events[events.len() - 1]["response"].clone()
            } else {
                response.json_value().await?
            };
            let text = answer["output"][0]["content"][0]["text"]
                .as_str()
                .unwrap_or_default();
            assert!(
                text.starts_with("Simulated answer from claude-sonnet-4-5"),
                "{label} {stream}: {answer}"
            );
        }
        let paths: Vec<String> = sim.sim.requests().iter().map(|r| r.path.clone()).collect();
        assert!(paths.iter().any(|p| p == "/v1/responses"), "{paths:?}");
        assert!(paths.iter().any(|p| p == "/v1/messages"), "{paths:?}");
    }
    Ok(())
}

/// A conversation answered by a relayed OpenAI target is stored from the
/// target's own Response objects (the streamed one from its
/// `response.completed` event) and continued by id: the target receives
/// the whole history and no `previous_response_id`.
#[tokio::test]
async fn a_conversation_through_a_relayed_target_is_stored_and_continued() -> TestResult {
    let (sim, gateway) = start().await?;
    let first: Value = post(
        &gateway.base,
        &json!({"model": "same", "input": "Remember the word kumquat."}),
    )
    .await?
    .json_value()
    .await?;
    let first_id = first["id"].as_str().ok_or("no id")?.to_string();
    assert!(first_id.starts_with("resp_sim"), "{first}");
    assert_eq!(stored(&gateway.base, &first_id).await?["id"], first["id"]);
    let first_text = first["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let second = post(
        &gateway.base,
        &json!({"model": "same", "input": "Which word was it?", "previous_response_id": first_id, "stream": true}),
    )
    .await?;
    assert_eq!(second.status(), 200);
    let second = events(&second.text().await?);
    let second_id = second[second.len() - 1]["response"]["id"]
        .as_str()
        .ok_or("no id")?
        .to_string();
    assert!(second_id.starts_with("resp_sim"));
    // The target was sent the history, not the id; the answer names it.
    for event in second.iter().filter(|e| e["response"].is_object()) {
        assert_eq!(
            event["response"]["previous_response_id"],
            json!(first_id),
            "{event}"
        );
    }
    let sent = last_sim_body(&sim, "gpt-4o-mini").await?;
    assert!(sent.get("previous_response_id").is_none(), "{sent}");
    let sent = sent.to_string();
    for earlier in [
        "Remember the word kumquat.",
        first_text.as_str(),
        "Which word was it?",
    ] {
        assert!(sent.contains(earlier), "not given {earlier:?}: {sent}");
    }

    // The streamed turn was stored from its own final event.
    assert_eq!(
        stored(&gateway.base, &second_id).await?["id"],
        json!(second_id)
    );
    let third = post(
        &gateway.base,
        &json!({"model": "same", "input": "Thanks.", "previous_response_id": second_id}),
    )
    .await?;
    assert_eq!(third.status(), 200);
    let third: Value = third.json_value().await?;
    assert_eq!(third["previous_response_id"], json!(second_id));
    let sent = last_sim_body(&sim, "gpt-4o-mini").await?.to_string();
    for earlier in [
        "Remember the word kumquat.",
        "Which word was it?",
        "Thanks.",
    ] {
        assert!(sent.contains(earlier), "not given {earlier:?}: {sent}");
    }
    Ok(())
}

/// A relayed answer is cached as the target sent it and replayed in either
/// shape: a stream as the target's own events, a complete answer as its
/// own Response object.
#[tokio::test]
async fn a_relayed_answer_is_cached_and_replayed_streamed_and_not() -> TestResult {
    let (sim, gateway) = start().await?;
    let mut texts = Vec::new();
    for (stream, cache) in [(true, "miss"), (false, "hit"), (true, "hit")] {
        let body = json!({"model": "cached-openai", "input": "Cache me too", "stream": stream, "temperature": 0});
        let response = post(&gateway.base, &body).await?;
        assert_eq!(
            sim_gateway::header(&response, "x-bulwark-cache").as_deref(),
            Some(cache),
            "stream: {stream}"
        );
        let answer = if stream {
            let events = events(&response.text().await?);
            for (n, event) in events.iter().enumerate() {
                assert_eq!(event["sequence_number"], json!(n), "{event}");
            }
            assert_eq!(types(&events).last(), Some(&"response.completed"));
            events[events.len() - 1]["response"].clone()
        } else {
            response.json_value().await?
        };
        assert!(
            answer["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("resp_sim")),
            "{answer}"
        );
        texts.push(answer["output"][0]["content"][0]["text"].clone());
    }
    assert!(
        texts[0]
            .as_str()
            .is_some_and(|t| t.contains("Cache me too")),
        "{texts:?}"
    );
    assert!(texts.iter().all(|t| *t == texts[0]), "{texts:?}");
    assert_eq!(
        sim.sim.requests().len(),
        1,
        "the cache answered the repeats"
    );
    Ok(())
}

/// A relayed request goes out under the gateway's one OpenAI key, shared by
/// every client key: what names state kept in that account (a stored
/// conversation, prompt, item or file) is refused, not passed on, so no
/// client reaches another's; the openai target is never called.
#[tokio::test]
async fn account_state_is_refused_even_where_the_body_is_relayed() -> TestResult {
    let (sim, gateway) = start().await?;
    for (field, body) in [
        (
            "conversation",
            json!({"model": "same", "input": "hi", "conversation": "conv_1"}),
        ),
        (
            "prompt",
            json!({"model": "same", "input": "hi", "prompt": {"id": "pmpt_1"}}),
        ),
        (
            "item_reference",
            json!({"model": "same", "input": [{"type": "item_reference", "id": "msg_1"}]}),
        ),
        (
            "file",
            json!({"model": "same", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]}),
        ),
    ] {
        let response = post(&gateway.base, &body).await?;
        assert_eq!(response.status(), 400, "{field}");
        let error: Value = response.json_value().await?;
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("provider account")),
            "{field}: {error}"
        );
    }
    let log: Value = reqwest::get(format!("{}/_sim/requests", sim.url()))
        .await?
        .json_value()
        .await?;
    let calls = log
        .as_array()
        .or_else(|| log["requests"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(calls, 0, "{log}");
    // Without them the same route answers.
    let response = post(&gateway.base, &json!({"model": "same", "input": "hi"})).await?;
    assert_eq!(response.status(), 200);
    Ok(())
}

/// A relayed stream cut by `max_output_tokens` ends with
/// `response.incomplete`, which carries the whole Response object like
/// `response.completed`: it is stored, so the conversation can go on.
#[tokio::test]
async fn a_relayed_incomplete_stream_is_stored_for_the_next_turn() -> TestResult {
    let (_sim, gateway) = start().await?;
    let response = post(
        &gateway.base,
        &json!({"model": "same", "input": "one two three four five six seven", "max_output_tokens": 3, "stream": true}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let events = events(&response.text().await?);
    let last = events.last().ok_or("no events")?;
    assert_eq!(last["type"], "response.incomplete", "{last}");
    let id = last["response"]["id"].as_str().ok_or("no id")?;
    assert_eq!(stored(&gateway.base, id).await?["status"], "incomplete");
    Ok(())
}
