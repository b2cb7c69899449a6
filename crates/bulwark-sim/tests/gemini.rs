//! Gemini generateContent wire format.

mod common;

use common::{merged, post, sse, start};
use serde_json::{Value, json};

fn request(extra: Value) -> Value {
    let body = json!({
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "contents": [{"role": "user", "parts": [{"text": "Say hi please"}]}],
        "generationConfig": {"temperature": 0.2}
    });
    merged(body, extra)
}

#[tokio::test]
async fn non_stream_response_shape() {
    let server = start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent",
        server.url()
    );
    let r = post(&url, &[("x-goog-api-key", "k")], &request(json!({}))).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let c = &v["candidates"][0];
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(
        c["content"]["parts"],
        json!([{"text": "Simulated answer from gemini-2.5-flash: Say hi please"}])
    );
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(c["index"], 0);
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 5);
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 7);
    assert_eq!(v["usageMetadata"]["totalTokenCount"], 12);
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");
    assert!(v["responseId"].is_string());
}

#[tokio::test]
async fn sse_stream() {
    let server = start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        server.url()
    );
    let r = post(&url, &[], &request(json!({}))).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(r.text.contains("\r\n\r\n"));
    let events = sse(&r.text);
    assert_eq!(events.len(), 7);
    let chunks: Vec<Value> = events.iter().map(|e| e.json()).collect();
    let text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        text,
        "Simulated answer from gemini-2.5-flash: Say hi please"
    );
    for c in &chunks[..6] {
        assert!(c["candidates"][0].get("finishReason").is_none());
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 7);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 12);
}

#[tokio::test]
async fn json_array_stream_without_alt() {
    let server = start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        server.url()
    );
    let r = post(&url, &[], &request(json!({}))).await;
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn function_calls_and_responses() {
    let server = start().await;
    let base = server.url();
    let tools = json!({"tools": [{"functionDeclarations": [{
        "name": "get_weather", "description": "Weather",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "metric": {"type": "BOOLEAN"}}}
    }]}]});
    let url = format!("{base}/v1beta/models/gemini-2.5-flash:generateContent");
    let any = merged(
        tools.clone(),
        json!({"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}),
    );
    let v = post(&url, &[], &request(any)).await.json();
    let c = &v["candidates"][0];
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(
        c["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "sim", "metric": true}})
    );

    let url = format!("{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    let mut asked = request(tools.clone());
    asked["contents"][0]["parts"][0]["text"] = json!("Weather? sim:call get_weather");
    let events = sse(&post(&url, &[], &asked).await.text);
    assert_eq!(events.len(), 1);
    let c = events[0].json();
    assert_eq!(
        c["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    assert_eq!(c["candidates"][0]["finishReason"], "STOP");

    let mut body = request(tools);
    body["contents"] = json!([
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"forecast": "sunny"}}}]}
    ]);
    let url = format!("{base}/v1beta/models/gemini-2.5-flash:generateContent");
    let v = post(&url, &[], &body).await.json();
    let text = v["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("the tool returned"), "{text}");
    assert!(text.contains("sunny"), "{text}");
}

#[tokio::test]
async fn max_output_tokens_and_images() {
    let server = start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent",
        server.url()
    );
    let body =
        request(json!({"generationConfig": {"maxOutputTokens": 3, "stopSequences": ["zzz"]}}));
    let v = post(&url, &[], &body).await.json();
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Simulated answer from"
    );
    let body = request(json!({"contents": [{"role": "user", "parts": [
        {"text": "What is it"},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}}
    ]}]}));
    let v = post(&url, &[], &body).await.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Simulated answer from gemini-2.5-flash: What is it (2 images)"
    );
}

#[tokio::test]
async fn models_and_count_tokens() {
    let server = start().await;
    let v = common::get(&format!("{}/v1beta/models", server.url()), &[])
        .await
        .json();
    assert_eq!(v["models"][0]["name"], "models/gpt-4o-mini");
    assert!(v["models"][0]["supportedGenerationMethods"].is_array());
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:countTokens",
        server.url()
    );
    let v = post(&url, &[], &request(json!({}))).await.json();
    assert_eq!(v["totalTokens"], 5);
}

#[tokio::test]
async fn missing_contents_is_invalid_argument() {
    let server = start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent",
        server.url()
    );
    let r = post(&url, &[], &json!({})).await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(e["code"], 400);
    assert_eq!(e["status"], "INVALID_ARGUMENT");
}

/// A `thinkingBudget` outside the model family's range is refused, as
/// Gemini does.
#[tokio::test]
async fn thinking_budget_out_of_range_is_invalid_argument() {
    let server = start().await;
    let base = server.url();
    let body = |budget: i64| {
        request(json!({"generationConfig": {"thinkingConfig": {"thinkingBudget": budget}}}))
    };
    for (model, budget, status) in [
        ("gemini-2.5-flash", 24576, 200),
        ("gemini-2.5-flash", 0, 200),
        ("gemini-2.5-flash", -1, 200),
        ("gemini-2.5-flash", 24577, 400),
        ("gemini-2.5-pro", 32768, 200),
        ("gemini-2.5-pro", 0, 400),
        ("gemini-2.5-pro", 40000, 400),
        ("gemini-2.0-flash", 40000, 200),
    ] {
        let url = format!("{base}/v1beta/models/{model}:generateContent");
        let r = post(&url, &[], &body(budget)).await;
        assert_eq!(r.status, status, "{model} {budget}: {}", r.text);
        if status == 400 {
            assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
        }
    }
}
