//! The Gemini front door (`/v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`) over the simulator: relayed to a Gemini
//! target, translated to OpenAI and Anthropic targets, and failing over
//! from a target that answers 529 or 503, streamed and not, with function
//! calls both ways.

mod common;
mod sim_gateway;

use bulwark_sim::{Fault, FaultRule, Format, SimConfig, SimServer};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CLIENT_KEY: &str = "gemini-client-key-0123456789";

async fn start(keys: bool) -> Result<(SimServer, common::Running), Box<dyn std::error::Error>> {
    let config = SimConfig {
        faults: vec![
            FaultRule::always(Fault::status(529))
                .for_format(Format::Anthropic)
                .for_model("broken-529"),
            FaultRule::always(Fault::status(503))
                .for_format(Format::Gemini)
                .for_model("broken-503"),
        ],
        ..SimConfig::default()
    };
    let keys = if keys {
        format!("keys:\n  team: {{ key: {CLIENT_KEY} }}\n")
    } else {
        String::new()
    };
    sim_gateway::start(config, |url| {
        format!(
            "listen: 127.0.0.1:0
providers:
  sim-openai:    {{ kind: openai, base_url: \"{url}/v1\", api_key: test }}
  sim-anthropic: {{ kind: anthropic, base_url: \"{url}\", api_key: test }}
  sim-gemini:    {{ kind: gemini, base_url: \"{url}\", api_key: upstream-gemini-key }}
routes:
  failover-529: {{ targets: [sim-anthropic/broken-529, sim-gemini/gemini-2.5-flash], max_retries: 0 }}
  failover-503: {{ targets: [sim-gemini/broken-503, sim-openai/gpt-4o-mini], max_retries: 0 }}
  chat:         {{ targets: [sim-anthropic/claude-sonnet-4-5] }}
{keys}"
        )
    })
    .await
}

const WEATHER: &str = "get_weather";

fn tools() -> Value {
    json!([{"functionDeclarations": [{
        "name": WEATHER,
        "description": "The weather in a city",
        // Google's OpenAPI subset, as the SDK writes it from a Python function.
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}
    }]}])
}

/// A first turn asking the simulated model to call the tool.
fn first_turn() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Weather in Oslo? sim:call get_weather {\"city\": \"Oslo\"}"}]}],
        "tools": tools(),
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 200}
    })
}

/// The second turn: the call, and its result, without ids, as a Gemini
/// client sends them.
fn second_turn(call: &Value) -> Value {
    json!({
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Oslo? sim:call get_weather {\"city\": \"Oslo\"}"}]},
            {"role": "model", "parts": [{"functionCall": {"name": call["name"], "args": call["args"]}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": WEATHER, "response": {"output": "sunny, 21 degrees"}}}]}
        ],
        "tools": tools()
    })
}

async fn post(
    http: &reqwest::Client,
    url: String,
    body: &Value,
) -> Result<reqwest::Response, reqwest::Error> {
    http.post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
}

/// Every `GenerateContentResponse` of a stream, SSE or JSON array.
fn chunks(stream: bool, sse: bool, text: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    Ok(if !stream {
        vec![serde_json::from_str(text)?]
    } else if sse {
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?
    } else {
        serde_json::from_str::<Vec<Value>>(text)?
    })
}

fn parts(chunks: &[Value]) -> Vec<Value> {
    chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"].as_array())
        .flatten()
        .cloned()
        .collect()
}

fn text_of(chunks: &[Value]) -> String {
    parts(chunks)
        .iter()
        .filter(|p| p.get("thought").is_none())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

fn finish_reason(chunks: &[Value]) -> Option<String> {
    chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["finishReason"].as_str())
        .next_back()
        .map(str::to_string)
}

/// The function call round trip on `model`, in each mode: the call comes
/// back as a `functionCall` part with the schema's arguments, and the
/// second turn's answer quotes the function's result.
async fn round_trip(base: &str, model: &str, target: &str) -> TestResult {
    let http = reqwest::Client::new();
    for (method, stream, sse) in [
        ("generateContent", false, false),
        ("streamGenerateContent?alt=sse", true, true),
        ("streamGenerateContent", true, false),
    ] {
        let url = format!("{base}/v1beta/models/{model}:{method}");
        let response = post(&http, url.clone(), &first_turn()).await?;
        let what = format!("{model} {method}");
        assert_eq!(response.status(), 200, "{what}");
        assert_eq!(
            sim_gateway::header(&response, "x-bulwark-target").as_deref(),
            Some(target),
            "{what}"
        );
        let content_type = sim_gateway::header(&response, "content-type").unwrap_or_default();
        assert_eq!(
            content_type.starts_with("text/event-stream"),
            sse,
            "{what}: {content_type}"
        );
        let got = chunks(stream, sse, &response.text().await?)?;
        let call = parts(&got)
            .into_iter()
            .find_map(|p| p.get("functionCall").cloned())
            .ok_or_else(|| format!("{what}: no functionCall in {got:?}"))?;
        assert_eq!(call["name"], WEATHER, "{what}");
        assert_eq!(call["args"], json!({"city": "Oslo"}), "{what}");
        assert_eq!(finish_reason(&got).as_deref(), Some("STOP"), "{what}");
        let usage = got
            .iter()
            .rev()
            .find_map(|c| c.get("usageMetadata"))
            .ok_or_else(|| format!("{what}: no usageMetadata"))?;
        assert!(usage["promptTokenCount"].as_u64() > Some(0), "{what}");

        let response = post(&http, url, &second_turn(&call)).await?;
        assert_eq!(response.status(), 200, "{what} (second turn)");
        let got = chunks(stream, sse, &response.text().await?)?;
        let text = text_of(&got);
        assert!(
            text.contains("sunny, 21 degrees"),
            "{what}: the answer does not quote the function's result: {text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_gemini_target_is_relayed_its_clients_body_as_sent() -> TestResult {
    let (sim, gateway) = start(false).await?;
    round_trip(
        &gateway.base,
        "sim-gemini/gemini-2.5-flash",
        "sim-gemini/gemini-2.5-flash",
    )
    .await?;
    // The body the target got is the client's own, untranslated: the
    // OpenAPI schema with its upper-case types, and the system instruction.
    let requests = sim.sim.requests();
    let first = requests
        .iter()
        .find(|r| r.format == Format::Gemini)
        .ok_or("no Gemini request")?;
    assert_eq!(first.body, first_turn());
    assert_eq!(first.model.as_deref(), Some("gemini-2.5-flash"));
    assert!(
        first.path.contains(":streamGenerateContent?alt=sse"),
        "{}",
        first.path
    );
    Ok(())
}

#[tokio::test]
async fn an_openai_target_is_translated_both_ways() -> TestResult {
    let (sim, gateway) = start(false).await?;
    round_trip(
        &gateway.base,
        "sim-openai/gpt-4o-mini",
        "sim-openai/gpt-4o-mini",
    )
    .await?;
    let requests = sim.sim.requests();
    let first = requests
        .iter()
        .find(|r| r.format == Format::OpenAi)
        .ok_or("no OpenAI request")?;
    assert_eq!(
        first.body["tools"][0]["function"]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    assert_eq!(first.body["messages"][0]["role"], "system");
    assert_eq!(first.body["max_completion_tokens"], 200, "{}", first.body);
    Ok(())
}

#[tokio::test]
async fn an_anthropic_target_is_translated_both_ways() -> TestResult {
    let (sim, gateway) = start(false).await?;
    round_trip(&gateway.base, "chat", "sim-anthropic/claude-sonnet-4-5").await?;
    let requests = sim.sim.requests();
    let first = requests
        .iter()
        .find(|r| r.format == Format::Anthropic)
        .ok_or("no Anthropic request")?;
    assert_eq!(first.body["system"], "Be brief.");
    assert_eq!(first.body["tools"][0]["name"], WEATHER);
    Ok(())
}

#[tokio::test]
async fn a_route_fails_over_from_529_and_503_unseen() -> TestResult {
    let (_sim, gateway) = start(false).await?;
    for (route, target) in [
        ("failover-529", "sim-gemini/gemini-2.5-flash"),
        ("failover-503", "sim-openai/gpt-4o-mini"),
    ] {
        let http = reqwest::Client::new();
        let response = post(
            &http,
            format!("{}/v1beta/models/{route}:generateContent", gateway.base),
            &first_turn(),
        )
        .await?;
        assert_eq!(
            sim_gateway::header(&response, "x-bulwark-fallback").as_deref(),
            Some("true"),
            "{route}"
        );
        assert_eq!(
            sim_gateway::header(&response, "x-bulwark-attempts").as_deref(),
            Some("2"),
            "{route}"
        );
        // Then every mode, tools both ways, on the route as it stands (the
        // first target may be skipped by now, its breaker open).
        round_trip(&gateway.base, route, target).await?;
    }
    Ok(())
}

#[tokio::test]
async fn errors_come_in_googles_shape() -> TestResult {
    let (_sim, gateway) = start(false).await?;
    let http = reqwest::Client::new();
    let base = &gateway.base;
    for (url, body, status, name) in [
        (
            format!("{base}/v1beta/models/chat:generateContent"),
            json!({"contents": []}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("{base}/v1beta/models/chat:embedContent"),
            json!({}),
            404,
            "NOT_FOUND",
        ),
        (
            format!("{base}/v1beta/models/no-such-route:generateContent"),
            json!({"contents": [{"parts": [{"text": "hi"}]}]}),
            404,
            "NOT_FOUND",
        ),
        (
            format!("{base}/v1beta/cachedContents"),
            json!({}),
            404,
            "NOT_FOUND",
        ),
        (
            format!("{base}/v1beta/tunedModels/my-tune:generateContent"),
            json!({"contents": [{"parts": [{"text": "hi"}]}]}),
            404,
            "NOT_FOUND",
        ),
        (
            format!("{base}/v1beta/models/%FF%FE:generateContent"),
            json!({"contents": [{"parts": [{"text": "hi"}]}]}),
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let response = post(&http, url.clone(), &body).await?;
        assert_eq!(response.status(), status, "{url}");
        let error: Value = serde_json::from_str(&response.text().await?)?;
        assert_eq!(error["error"]["status"], name, "{url}: {error}");
        assert_eq!(error["error"]["code"], status, "{url}: {error}");
        assert!(error["error"]["message"].is_string(), "{url}: {error}");
    }
    // Every target down: Google's 503 UNAVAILABLE, never Anthropic's 529.
    let response = post(
        &http,
        format!("{base}/v1beta/models/sim-anthropic/broken-529:generateContent"),
        &first_turn(),
    )
    .await?;
    assert_eq!(response.status(), 503);
    let error: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(error["error"]["status"], "UNAVAILABLE", "{error}");
    Ok(())
}

#[tokio::test]
async fn a_cross_format_field_gemini_alone_has_is_refused_or_dropped_as_the_table_says()
-> TestResult {
    let (_sim, gateway) = start(false).await?;
    let http = reqwest::Client::new();
    let mut body = json!({"contents": [{"parts": [{"text": "hi"}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]});
    let response = post(
        &http,
        format!(
            "{}/v1beta/models/sim-openai/gpt-4o-mini:generateContent",
            gateway.base
        ),
        &body,
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        sim_gateway::header(&response, "x-bulwark-dropped").as_deref(),
        Some("safety_settings")
    );
    body["cachedContent"] = json!("cachedContents/abc");
    let response = post(
        &http,
        format!(
            "{}/v1beta/models/sim-openai/gpt-4o-mini:generateContent",
            gateway.base
        ),
        &body,
    )
    .await?;
    assert_eq!(response.status(), 400);
    let error: Value = serde_json::from_str(&response.text().await?)?;
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cachedContent")),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn gemini_keys_are_accepted_and_never_forwarded() -> TestResult {
    let (sim, gateway) = start(true).await?;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1beta/models/sim-gemini/gemini-2.5-flash:generateContent",
        gateway.base
    );
    let body = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let response = post(&http, url.clone(), &body).await?;
    assert_eq!(response.status(), 401);
    let error: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");

    let response = http
        .post(url.clone())
        .header("x-goog-api-key", CLIENT_KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    assert_eq!(response.status(), 200);

    let response = post(&http, format!("{url}?key={CLIENT_KEY}&$alt=json"), &body).await?;
    assert_eq!(response.status(), 200);
    // The target got the gateway's own key as a header, and none of the
    // client's query.
    for request in sim.sim.requests() {
        assert!(!request.path.contains("key="), "{}", request.path);
        assert!(!request.path.contains("$alt"), "{}", request.path);
        assert_eq!(
            request.headers.get("x-goog-api-key").map(String::as_str),
            Some("<redacted>")
        );
    }
    let response = post(&http, format!("{url}?key=wrong-key"), &body).await?;
    assert_eq!(response.status(), 401);
    Ok(())
}

#[tokio::test]
async fn the_model_list_has_geminis_shape() -> TestResult {
    let (_sim, gateway) = start(false).await?;
    let list: Value = serde_json::from_str(
        &reqwest::get(format!("{}/v1beta/models", gateway.base))
            .await?
            .text()
            .await?,
    )?;
    let names: Vec<&str> = list["models"]
        .as_array()
        .ok_or("no models")?
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"models/failover-529"), "{names:?}");
    assert!(names.contains(&"models/chat"), "{names:?}");
    assert!(
        names.contains(&"models/sim-gemini/gemini-2.5-flash"),
        "{names:?}"
    );
    Ok(())
}

/// `google-genai`'s `models.get` at `v1beta` and `v1`: one route or target
/// as Gemini's `Model`, and Google's 404 for any other name.
#[tokio::test]
async fn one_model_is_got_in_geminis_shape() -> TestResult {
    let (_sim, gateway) = start(false).await?;
    let http = reqwest::Client::new();
    for path in [
        "/v1beta/models/sim-gemini/gemini-2.5-flash",
        "/v1beta/models/models/sim-gemini/gemini-2.5-flash",
        "/v1/models/sim-gemini/gemini-2.5-flash",
    ] {
        let response = http
            .get(format!("{}{path}", gateway.base))
            .header("x-goog-api-client", "google-genai-sdk/3.6.1 gl-python/3.11")
            .send()
            .await?;
        assert_eq!(response.status(), 200, "{path}");
        let model: Value = serde_json::from_str(&response.text().await?)?;
        assert_eq!(
            model["name"], "models/sim-gemini/gemini-2.5-flash",
            "{path}"
        );
        assert_eq!(
            model["supportedGenerationMethods"],
            json!(["generateContent", "streamGenerateContent"]),
            "{path}"
        );
    }
    for path in ["/v1beta/models/gemini-nothing", "/v1/models/gemini-nothing"] {
        let response = http
            .get(format!("{}{path}", gateway.base))
            .header("x-goog-api-key", "any")
            .send()
            .await?;
        assert_eq!(response.status(), 404, "{path}");
        let error: Value = serde_json::from_str(&response.text().await?)?;
        assert_eq!(error["error"]["status"], "NOT_FOUND", "{path}: {error}");
        assert_eq!(error["error"]["code"], 404, "{path}: {error}");
    }
    Ok(())
}

#[tokio::test]
async fn the_v1_api_version_reaches_the_same_door() -> TestResult {
    let (_sim, gateway) = start(false).await?;
    let http = reqwest::Client::new();
    let response = post(
        &http,
        format!(
            "{}/v1/models/sim-openai/gpt-4o-mini:streamGenerateContent?alt=sse",
            gateway.base
        ),
        &first_turn(),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let got = chunks(true, true, &response.text().await?)?;
    assert!(
        parts(&got).iter().any(|p| p.get("functionCall").is_some()),
        "{got:?}"
    );
    // `google-genai` lists `/v1/models` too, and gets Gemini's shape.
    let list: Value = serde_json::from_str(
        &http
            .get(format!("{}/v1/models", gateway.base))
            .header("x-goog-api-client", "google-genai-sdk/3.6.1 gl-python/3.11")
            .send()
            .await?
            .text()
            .await?,
    )?;
    assert!(list["models"].is_array(), "{list}");
    let openai: Value = serde_json::from_str(
        &reqwest::get(format!("{}/v1/models", gateway.base))
            .await?
            .text()
            .await?,
    )?;
    assert_eq!(openai["object"], "list", "{openai}");
    Ok(())
}

#[tokio::test]
async fn a_stream_broken_after_content_ends_with_an_error_chunk() -> TestResult {
    let config = SimConfig {
        faults: vec![
            FaultRule::always(Fault::error_event(3))
                .for_format(Format::OpenAi)
                .for_model("midstream-broken"),
        ],
        ..SimConfig::default()
    };
    let (_sim, gateway) = sim_gateway::start(config, |url| {
        format!(
            "listen: 127.0.0.1:0\nproviders:\n  sim-openai: {{ kind: openai, base_url: \"{url}/v1\", api_key: test }}\n"
        )
    })
    .await?;
    let http = reqwest::Client::new();
    let body = json!({"contents": [{"parts": [{"text": "one two three four five six seven"}]}]});
    for (query, sse) in [("?alt=sse", true), ("", false)] {
        let response = post(
            &http,
            format!(
                "{}/v1beta/models/sim-openai/midstream-broken:streamGenerateContent{query}",
                gateway.base
            ),
            &body,
        )
        .await?;
        assert_eq!(response.status(), 200);
        let got = chunks(true, sse, &response.text().await?)?;
        assert!(!text_of(&got).is_empty(), "{got:?}");
        let last = got.last().ok_or("no chunks")?;
        assert!(last["error"]["message"].is_string(), "{last}");
        assert_eq!(
            last["error"]["code"].as_u64().map(|c| c >= 500),
            Some(true),
            "{last}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_cached_route_answers_a_gemini_client_from_its_cache() -> TestResult {
    let (sim, gateway) = sim_gateway::start(SimConfig::default(), |url| {
        format!(
            "listen: 127.0.0.1:0\nproviders:\n  sim-gemini: {{ kind: gemini, base_url: \"{url}\", api_key: test }}\n  sim-openai: {{ kind: openai, base_url: \"{url}/v1\", api_key: test }}\nroutes:\n  cached-gemini: {{ targets: [sim-gemini/gemini-2.5-flash], cache: {{ ttl: 1h }} }}\n  cached-openai: {{ targets: [sim-openai/gpt-4o-mini], cache: {{ ttl: 1h }} }}\n"
        )
    })
    .await?;
    let http = reqwest::Client::new();
    // Only a deterministic request is cached unless the route says otherwise.
    let body = json!({"contents": [{"parts": [{"text": "cache me"}]}],
        "generationConfig": {"temperature": 0}});
    for route in ["cached-gemini", "cached-openai"] {
        let url = format!("{}/v1beta/models/{route}:generateContent", gateway.base);
        let first = post(&http, url.clone(), &body).await?;
        assert_eq!(
            sim_gateway::header(&first, "x-bulwark-cache").as_deref(),
            Some("miss"),
            "{route}"
        );
        let first: Value = serde_json::from_str(&first.text().await?)?;
        let second = post(&http, url, &body).await?;
        assert_eq!(
            sim_gateway::header(&second, "x-bulwark-cache").as_deref(),
            Some("hit"),
            "{route}"
        );
        let second: Value = serde_json::from_str(&second.text().await?)?;
        assert_eq!(text_of(&[second]), text_of(&[first]), "{route}");
    }
    assert_eq!(sim.sim.requests().len(), 2);
    Ok(())
}

#[tokio::test]
async fn the_request_log_records_a_gemini_client_with_its_route_and_stream() -> TestResult {
    let (_sim, gateway) = start(false).await?;
    let http = reqwest::Client::new();
    let response = post(
        &http,
        format!(
            "{}/v1beta/models/failover-503:streamGenerateContent?alt=sse",
            gateway.base
        ),
        &json!({"contents": [{"parts": [{"text": "log me"}]}],
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    response.text().await?;
    let observer = gateway.gateway.observer();
    observer.flush().await;
    let rows = observer.store().requests_between(0, i64::MAX, None).await?;
    let row = rows.first().ok_or("nothing logged")?;
    assert_eq!(row.client_format, "gemini");
    assert_eq!(row.route, "failover-503");
    assert!(row.stream);
    assert_eq!(row.status, 200);
    assert_eq!(row.target.as_deref(), Some("sim-openai/gpt-4o-mini"));
    assert!(row.fallback);
    assert_eq!(row.dropped, ["safety_settings"]);
    assert!(row.output_tokens > Some(0), "{row:?}");
    Ok(())
}
