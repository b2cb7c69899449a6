//! Structured output across formats (issue 12): an OpenAI client's
//! `json_schema` request on a route whose OpenAI target fails every request
//! is served by the Anthropic target, with JSON that satisfies the schema.

mod common;
mod sim_gateway;

use bulwark_sim::{Fault, FaultRule, Format, SimConfig, SimServer};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
const BROKEN_MODEL: &str = "broken-model";

/// A Pydantic model's schema as the OpenAI SDK's `parse` sends it:
/// `$defs` and `$ref`, an enum, an array of objects, `anyOf` with null.
fn schema() -> Value {
    json!({
        "$defs": {"Step": {"type": "object", "additionalProperties": false,
            "properties": {"explanation": {"type": "string"}, "output": {"type": "integer"}},
            "required": ["explanation", "output"]}},
        "type": "object", "additionalProperties": false,
        "properties": {
            "kind": {"enum": ["a", "b"], "type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}}
        },
        "required": ["kind", "note", "steps"]
    })
}

async fn start() -> Result<(SimServer, common::Running), Box<dyn std::error::Error>> {
    let config = SimConfig {
        faults: vec![
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
routes:
  structured: {{ targets: [sim-openai/{BROKEN_MODEL}, sim-anthropic/{ANTHROPIC_MODEL}], max_retries: 0 }}
"
        )
    })
    .await
}

#[tokio::test]
async fn openai_json_schema_is_served_by_the_anthropic_fallback_with_matching_json() -> TestResult {
    let (_sim, gateway) = start().await?;
    let http = reqwest::Client::new();
    for stream in [false, true] {
        let body = json!({
            "model": "structured",
            "stream": stream,
            "messages": [{"role": "user", "content": "Make a plan"}],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "Plan", "strict": true, "schema": schema()}}
        });
        let response = http
            .post(format!("{}/v1/chat/completions", gateway.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let header = |name: &str| sim_gateway::header(&response, name).unwrap_or_default();
        assert_eq!(response.status(), 200, "stream: {stream}");
        assert_eq!(
            header("x-bulwark-target"),
            format!("sim-anthropic/{ANTHROPIC_MODEL}")
        );
        assert_eq!(header("x-bulwark-fallback"), "true");
        // Mapped, not dropped.
        assert_eq!(header("x-bulwark-dropped"), "");
        let text = response.text().await?;
        let content = if stream {
            text.lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter(|d| *d != "[DONE]")
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|c| {
                    c["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(str::to_string)
                })
                .collect::<String>()
        } else {
            let v: Value = serde_json::from_str(&text)?;
            v["choices"][0]["message"]["content"]
                .as_str()
                .ok_or("no content")?
                .to_string()
        };
        // The simulator answers JSON only when the Anthropic request carried
        // the schema (`output_config.format`): plain text would not parse.
        let answer: Value = serde_json::from_str(&content)
            .map_err(|e| format!("not JSON ({e}), stream: {stream}: {content}"))?;
        assert_eq!(
            answer,
            json!({"kind": "a",
                "note": format!("Simulated answer from {ANTHROPIC_MODEL}: Make a plan"),
                "steps": [{"explanation": "sim", "output": 1}]}),
            "stream: {stream}"
        );
    }
    Ok(())
}
