//! Translation between wire formats, field by field, against the reference
//! shapes in `shared/reference` (Part C).

use bulwark::api::{
    ContentBlock, Effort, FinishReason, OutputFormat, Reasoning, Role, StreamEvent, Usage,
    WireFormat,
};
use bulwark::config::Translation;
use bulwark::error::ErrorKind;
use bulwark::sse::SseDecoder;
use bulwark::wire::{StreamFault, UpstreamDialect, anthropic, gemini, openai, translate};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// An OpenAI request using every translatable feature.
fn openai_request() -> Value {
    json!({
        "model": "smart",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
            {"role": "user", "content": "Thanks"}
        ],
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}],
        "tool_choice": "auto",
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
}

#[test]
fn openai_request_translates_to_anthropic() -> TestResult {
    let request = openai::decode_request(&bytes(&openai_request()))?;
    assert!(request.stream && request.include_usage);
    let encoded = anthropic::encode_request(&request, "claude-sonnet-4-5", 4096)?;
    assert_eq!(
        encoded,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "system": "Be terse.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "18C and sunny"}]}
                ]},
                {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}
            ],
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "tools": [{"name": "get_weather", "description": "Weather for a city", "input_schema": weather_schema()}],
            "tool_choice": {"type": "auto"},
            "stream": true
        })
    );
    Ok(())
}

#[test]
fn openai_request_translates_to_gemini() -> TestResult {
    let request = openai::decode_request(&bytes(&openai_request()))?;
    let encoded = gemini::encode_request(&request)?;
    assert_eq!(
        encoded,
        json!({
            "systemInstruction": {"parts": [{"text": "Be terse."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is in this picture?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}
                ]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "18C and sunny"}}}]},
                {"role": "user", "parts": [{"text": "Thanks"}]}
            ],
            "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 64, "stopSequences": ["END"]},
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather for a city", "parametersJsonSchema": weather_schema()}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
        })
    );
    Ok(())
}

#[test]
fn anthropic_request_translates_to_openai_both_dialects() -> TestResult {
    let body = json!({
        "model": "smart",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
            ]}
        ],
        "stop_sequences": ["STOP"],
        "top_k": 40,
        "tools": [{"name": "get_weather", "input_schema": weather_schema()}],
        "tool_choice": {"type": "any"},
        "metadata": {"user_id": "u1"}
    });
    let request = anthropic::decode_request(&bytes(&body))?;
    let expected_messages = json!([
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}
    ]);
    let compatible = openai::encode_request(&request, "llama3", openai::Upstream::Compatible)?;
    assert_eq!(
        compatible,
        json!({
            "model": "llama3",
            "messages": expected_messages,
            "max_tokens": 100,
            "top_k": 40,
            "stop": ["STOP"],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}],
            "tool_choice": "required",
            "user": "u1",
            // Bulwark always streams from providers.
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
    // OpenAI itself has no top_k: `prepare` leaves it out, reported.
    let (sent, dropped) = prepared(&request, WireFormat::OpenAi, "gpt-4o")?;
    assert!(dropped.contains(&"top_k"), "{dropped:?}");
    let encoded = openai::encode_request(&sent, "gpt-4o", openai::Upstream::OpenAi)?;
    assert_eq!(encoded.get("top_k"), None);
    Ok(())
}

#[test]
fn same_format_passes_every_field_through() -> TestResult {
    let mut body = openai_request();
    body["seed"] = json!(7);
    body["logprobs"] = json!(true);
    body["stream"] = json!(false);
    let request = openai::decode_request(&bytes(&body))?;
    let unmapped: Vec<(&str, &str)> = request
        .unmapped
        .iter()
        .map(|u| (u.path.as_str(), u.feature))
        .collect();
    assert_eq!(unmapped, vec![("logprobs", "logprobs"), ("seed", "seed")]);
    let encoded = openai::encode_request(&request, "gpt-4o-mini", openai::Upstream::OpenAi)?;
    let mut expected = body.clone();
    expected["model"] = json!("gpt-4o-mini");
    expected["stream"] = json!(true);
    expected["stream_options"] = json!({"include_usage": true});
    assert_eq!(encoded, expected);
    // The same request cannot be expressed for Anthropic, and says why.
    let error = anthropic::encode_request(&request, "claude", 4096)
        .err()
        .ok_or("untranslatable fields were dropped")?;
    // Only the field whose loss would change the answer refuses.
    assert_eq!(error.param.as_deref(), Some("logprobs"));
    assert!(error.message.contains("Anthropic"), "{}", error.message);
    Ok(())
}

#[test]
fn openai_client_asking_for_temperature_above_one_is_refused_by_anthropic() -> TestResult {
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1.5});
    let request = openai::decode_request(&bytes(&body))?;
    let error = anthropic::encode_request(&request, "claude", 4096)
        .err()
        .ok_or("out-of-range temperature was accepted")?;
    assert_eq!(error.param.as_deref(), Some("temperature"));
    Ok(())
}

#[test]
fn late_system_messages_keep_their_place_and_url_images_are_refused_by_gemini() -> TestResult {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
        {"role": "system", "content": "late"}
    ]});
    let request = openai::decode_request(&bytes(&body))?;
    let encoded = anthropic::encode_request(&request, "c", 10)?;
    assert_eq!(encoded.get("system"), None);
    // A user turn, marked as a system note.
    let note =
        json!({"role": "user", "content": [{"type": "text", "text": "<system>\nlate\n</system>"}]});
    assert_eq!(encoded["messages"][1], note);
    let mut text_only = request.clone();
    text_only.messages[0].content = vec![ContentBlock::Text("Hi".into())];
    let encoded = gemini::encode_request(&text_only)?;
    assert_eq!(
        encoded["contents"][1],
        json!({"role": "user", "parts": [{"text": "<system>\nlate\n</system>"}]})
    );
    let mut early = request.clone();
    early.messages.truncate(1);
    let error = gemini::encode_request(&early)
        .err()
        .ok_or("URL image accepted by Gemini")?;
    assert!(error.message.contains("base64"), "{}", error.message);
    Ok(())
}

#[test]
fn client_errors_name_the_field() {
    let cases: [(&[u8], &str); 6] = [
        (b"{not json", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (br#"{"messages": []}"#, "`model` is required"),
        (
            br#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}"#,
            "`temperature` must be a number, but it is a string",
        ),
        (
            br#"{"model": "m", "messages": {"role": "user"}}"#,
            "`messages` must be an array, but it is an object",
        ),
        (
            br#"{"model": "m", "messages": [{"role": "user", "content": 5}]}"#,
            "`messages[0].content` must be a string or an array",
        ),
    ];
    for (body, expected) in cases {
        match openai::decode_request(body) {
            Ok(_) => panic!("accepted {}", String::from_utf8_lossy(body)),
            Err(error) => {
                assert_eq!(error.status, 400);
                assert!(
                    error.message.contains(expected),
                    "{} vs {expected}",
                    error.message
                );
            }
        }
    }
    let missing_max = br#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#;
    match anthropic::decode_request(missing_max) {
        Ok(_) => panic!("Anthropic front door accepted a request without max_tokens"),
        Err(error) => assert_eq!(error.param.as_deref(), Some("max_tokens")),
    }
}

#[test]
fn responses_translate_with_usage_and_finish_reasons() -> TestResult {
    // The reference example of each format.
    let from_openai = openai::decode_response(&bytes(&json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1726012687, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 13, "completion_tokens": 2, "total_tokens": 15}
    })))?;
    assert_eq!(
        from_openai.usage,
        Usage {
            input_tokens: 13,
            output_tokens: 2
        }
    );
    assert_eq!(
        anthropic::encode_response(&from_openai),
        json!({
            "id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o-mini-2024-07-18",
            "content": [{"type": "text", "text": "Hi!"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 13, "output_tokens": 2}
        })
    );

    let from_anthropic = anthropic::decode_response(&bytes(&json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3}
    })))?;
    let encoded = openai::encode_response(&from_anthropic);
    assert_eq!(encoded["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(encoded["choices"][0]["message"]["content"], "Checking.");
    assert_eq!(
        encoded["choices"][0]["message"]["tool_calls"],
        json!([{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
    );
    assert_eq!(
        encoded["usage"],
        json!({"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20})
    );

    let from_gemini = gemini::decode_response(&bytes(&json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi!"}]}, "finishReason": "MAX_TOKENS", "index": 0}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2, "totalTokenCount": 10},
        "modelVersion": "gemini-2.5-flash", "responseId": "abc123"
    })))?;
    assert_eq!(from_gemini.finish_reason, FinishReason::Length);
    assert_eq!(
        anthropic::encode_response(&from_gemini)["stop_reason"],
        "max_tokens"
    );
    assert_eq!(
        openai::encode_response(&from_gemini)["choices"][0]["finish_reason"],
        "length"
    );
    assert_eq!(
        from_gemini.usage,
        Usage {
            input_tokens: 8,
            output_tokens: 2
        }
    );
    Ok(())
}

#[test]
fn finish_reasons_map_across_formats() -> TestResult {
    let anthropic_to_openai = [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ];
    for (stop_reason, finish_reason) in anthropic_to_openai {
        let response = anthropic::decode_response(&bytes(&json!({
            "id": "m", "model": "c", "content": [], "stop_reason": stop_reason, "usage": {}
        })))?;
        assert_eq!(
            openai::encode_response(&response)["choices"][0]["finish_reason"],
            finish_reason
        );
    }
    let openai_to_anthropic = [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ];
    for (finish_reason, stop_reason) in openai_to_anthropic {
        let response = openai::decode_response(&bytes(&json!({
            "id": "c", "model": "g", "choices": [{"message": {"content": "x"}, "finish_reason": finish_reason}]
        })))?;
        assert_eq!(
            anthropic::encode_response(&response)["stop_reason"],
            stop_reason
        );
    }
    Ok(())
}

/// A client stream encoder of either format.
trait ClientEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<bytes::Bytes>);
    fn finish(&mut self, out: &mut Vec<bytes::Bytes>);
}

impl ClientEncoder for openai::StreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<bytes::Bytes>) {
        openai::StreamEncoder::encode(self, event, out);
    }
    fn finish(&mut self, out: &mut Vec<bytes::Bytes>) {
        openai::StreamEncoder::finish(self, out);
    }
}

impl ClientEncoder for anthropic::StreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<bytes::Bytes>) {
        anthropic::StreamEncoder::encode(self, event, out);
    }
    fn finish(&mut self, out: &mut Vec<bytes::Bytes>) {
        anthropic::StreamEncoder::finish(self, out);
    }
}

/// Writes a whole stream through a client encoder, as SSE text.
fn encode_all(encoder: &mut impl ClientEncoder, events: &[StreamEvent]) -> String {
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    out.iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

fn decode_events(
    sse: &str,
    mut on_event: impl FnMut(&bulwark::sse::SseEvent, &mut Vec<StreamEvent>) -> Result<(), StreamFault>,
) -> Result<Vec<StreamEvent>, StreamFault> {
    let mut decoder = SseDecoder::new();
    let mut sse_events = Vec::new();
    decoder.feed(sse.as_bytes(), &mut sse_events);
    let mut events = Vec::new();
    for event in &sse_events {
        on_event(event, &mut events)?;
    }
    Ok(events)
}

const ANTHROPIC_STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi!\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

fn expected_stream_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::TextDelta {
            index: 0,
            text: "Hi!".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "toolu_1".into(),
            name: "get_weather".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 1,
            partial_json: "{\"city\":".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 1,
            partial_json: "\"Paris\"}".into(),
        },
        StreamEvent::Finish {
            reason: FinishReason::ToolUse,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 25,
            output_tokens: 15,
        }),
    ]
}

fn without_start(events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    events
        .into_iter()
        .filter(|e| !matches!(e, StreamEvent::Start { .. }))
        .collect()
}

#[test]
fn anthropic_stream_round_trips_through_the_openai_stream_format() -> TestResult {
    let mut decoder = anthropic::StreamDecoder::new();
    let events = decode_events(ANTHROPIC_STREAM, |e, out| decoder.on_event(e, out))?;
    assert!(decoder.is_done());
    assert_eq!(without_start(events.clone()), expected_stream_events());

    // Re-encode for an OpenAI client, then decode as an OpenAI provider would be.
    let mut encoder = openai::StreamEncoder::new(true);
    let text = encode_all(&mut encoder, &events);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(
        text.contains("\"choices\":[],"),
        "usage chunk missing: {text}"
    );
    let mut openai_decoder = openai::StreamDecoder::new();
    let again = decode_events(&text, |e, out| openai_decoder.on_event(e, out))?;
    assert!(openai_decoder.is_done());
    assert_eq!(without_start(again), expected_stream_events());
    Ok(())
}

#[test]
fn stream_round_trips_through_the_anthropic_stream_format() -> TestResult {
    let mut encoder = anthropic::StreamEncoder::new();
    let mut out: Vec<bytes::Bytes> = Vec::new();
    let mut events = vec![StreamEvent::Start {
        id: "x".into(),
        model: "m".into(),
        created: 0,
        input_tokens: Some(25),
    }];
    events.extend(expected_stream_events());
    for event in &events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    let text: String = out
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let mut decoder = anthropic::StreamDecoder::new();
    let again = decode_events(&text, |e, out| decoder.on_event(e, out))?;
    // Tool calls are written whole, so the fragments arrive joined.
    assert_eq!(
        bulwark::aggregate::aggregate(&again).content,
        bulwark::aggregate::aggregate(&expected_stream_events()).content
    );
    Ok(())
}

#[test]
fn gemini_stream_decodes_text_calls_and_usage() -> TestResult {
    let sse = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hi\"}]},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":2,\"totalTokenCount\":10}}\r\n\r\n";
    let mut decoder = gemini::StreamDecoder::new();
    let events = decode_events(sse, |e, out| decoder.on_event(e, out))?;
    assert!(decoder.is_done());
    assert_eq!(
        without_start(events),
        vec![
            StreamEvent::TextDelta {
                index: 0,
                text: "Hi".into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "call_get_weather_1".into(),
                name: "get_weather".into()
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                partial_json: "{\"city\":\"Paris\"}".into()
            },
            StreamEvent::Usage(Usage {
                input_tokens: 8,
                output_tokens: 2
            }),
            StreamEvent::Finish {
                reason: FinishReason::ToolUse,
                stop_sequence: None
            },
        ]
    );
    Ok(())
}

#[test]
fn error_events_inside_streams_are_errors() {
    let mut decoder = anthropic::StreamDecoder::new();
    let result = decode_events(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        |e, out| decoder.on_event(e, out),
    );
    assert!(result.is_err_and(|m| m.code.as_deref() == Some("overloaded_error")));
    let mut decoder = openai::StreamDecoder::new();
    let result = decode_events("data: {\"error\":{\"message\":\"boom\"}}\n\n", |e, out| {
        decoder.on_event(e, out)
    });
    assert!(result.is_err_and(|m| m.message.contains("boom")));
    let mut decoder = openai::StreamDecoder::new();
    let result = decode_events("data: {\"choices\": [\n\n", |e, out| {
        decoder.on_event(e, out)
    });
    assert!(result.is_err_and(|m| m.message.contains("malformed")));
}

#[test]
fn client_errors_are_written_in_each_format() {
    let error =
        bulwark::ApiError::new(ErrorKind::NotFound, "no such model").with_code("model_not_found");
    assert_eq!(
        openai::encode_error(&error),
        json!({"error": {"message": "no such model", "type": "invalid_request_error", "param": null, "code": "model_not_found"}})
    );
    assert_eq!(
        anthropic::encode_error(&error),
        json!({"type": "error", "error": {"type": "not_found_error", "message": "no such model"}})
    );
}

#[test]
fn interleaved_parallel_tool_calls_are_never_dropped() {
    // An OpenAI-format provider may start both calls before their arguments.
    let events = vec![
        StreamEvent::ToolCallStart {
            index: 0,
            id: "a".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "b".into(),
            name: "g".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            partial_json: "{\"x\":1}".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 1,
            partial_json: "{\"y\":2}".into(),
        },
        StreamEvent::Finish {
            reason: FinishReason::ToolUse,
            stop_sequence: None,
        },
    ];
    let mut encoder = anthropic::StreamEncoder::new();
    let text = encode_all(&mut encoder, &events);
    let raw: Vec<bulwark::sse::SseEvent> = {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        decoder.feed(text.as_bytes(), &mut events);
        events
    };
    let message = anthropic::assemble_response(&raw);
    assert_eq!(message["content"][0]["input"], json!({"x": 1}), "{text}");
    assert_eq!(message["content"][1]["input"], json!({"y": 2}), "{text}");
}

#[test]
fn review_fixes_hold() -> TestResult {
    // Defaults and answer-neutral hints are not "untranslatable".
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "parallel_tool_calls": true, "logprobs": false, "store": false, "user": "u-1", "n": 1});
    let request = openai::decode_request(&bytes(&body))?;
    assert!(request.unmapped.is_empty(), "{:?}", request.unmapped);

    // An assistant prefill cannot go to OpenAI or Gemini.
    let body = json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "Give JSON"}, {"role": "assistant", "content": "{\"answer\":"}]});
    let request = anthropic::decode_request(&bytes(&body))?;
    let error = openai::encode_request(&request, "gpt", openai::Upstream::OpenAi)
        .err()
        .ok_or("prefill sent to OpenAI")?;
    assert_eq!(error.param.as_deref(), Some("messages[1]"));
    assert!(gemini::encode_request(&request).is_err());

    // Empty text beside tool calls is not sent to Anthropic; errors survive as words.
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "sunny"}]});
    let request = openai::decode_request(&bytes(&body))?;
    let encoded = anthropic::encode_request(&request, "claude", 100)?;
    assert_eq!(
        encoded["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "c", "name": "w", "input": {}}])
    );
    let body = json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": true, "content": "boom"}]}]});
    let request = anthropic::decode_request(&bytes(&body))?;
    let encoded = openai::encode_request(&request, "gpt", openai::Upstream::OpenAi)?;
    assert_eq!(encoded["messages"][2]["content"], "Error: boom");

    // Compatible servers get `max_tokens` even when the client wrote the new name.
    let body = json!({"model": "m", "max_completion_tokens": 7, "messages": [{"role": "user", "content": "hi"}]});
    let request = openai::decode_request(&bytes(&body))?;
    let encoded = openai::encode_request(&request, "llama", openai::Upstream::Compatible)?;
    assert_eq!(
        (
            encoded.get("max_tokens"),
            encoded.get("max_completion_tokens")
        ),
        (Some(&json!(7)), None)
    );
    Ok(())
}

#[test]
fn openai_streams_need_a_finish_reason_and_carry_refusals() -> TestResult {
    let mut decoder = openai::StreamDecoder::new();
    let cut = decode_events(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n",
        |e, out| decoder.on_event(e, out),
    );
    assert!(cut.is_err_and(|f| f.message.contains("truncated")));
    let mut decoder = openai::StreamDecoder::new();
    let events = decode_events(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I can't\"}}]}\n\ndata: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        |e, out| decoder.on_event(e, out),
    )?;
    let response = bulwark::aggregate::aggregate(&events);
    assert_eq!(
        response.content,
        vec![bulwark::api::ContentBlock::Text("I can't".into())]
    );
    Ok(())
}

/// The shape of Claude Code's requests (`POST /v1/messages?beta=true`),
/// with its two dozen tools cut to three.
fn claude_code_request() -> Value {
    let tool = |name: &str| {
        json!({"name": name, "description": format!("The {name} tool"),
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}})
    };
    json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Environment: linux."},
            {"type": "text", "text": "Follow the repository's conventions.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "Fix the failing test."}
            ]},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "user", "content": [{"type": "text", "text": "Go on.", "cache_control": {"type": "ephemeral"}}]}
        ],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "{\"device_id\":\"d1\",\"session_id\":\"s1\"}"},
        "tools": [tool("Read"), tool("Edit"), tool("Bash")]
    })
}

#[test]
fn claude_codes_request_decodes_and_reaches_anthropic_untouched() -> TestResult {
    let body = claude_code_request();
    let request = anthropic::decode_request(&bytes(&body))?;
    assert_eq!(
        request.messages[2].role,
        Role::System,
        "mid-conversation system"
    );
    assert_eq!(request.reasoning, Some(Reasoning::Effort(Effort::High)));
    assert_eq!(
        request.user.as_deref(),
        Some("{\"device_id\":\"d1\",\"session_id\":\"s1\"}")
    );
    assert_eq!(request.tools.len(), 3);
    let encoded = anthropic::encode_request(&request, "claude-sonnet-4-5", 4096)?;
    let mut expected = body;
    expected["model"] = json!("claude-sonnet-4-5");
    assert_eq!(encoded, expected);
    Ok(())
}

#[test]
fn claude_codes_request_translates_to_openai() -> TestResult {
    let request = anthropic::decode_request(&bytes(&claude_code_request()))?;
    for (model, reasons) in [("o3-mini", true), ("gpt-4o", false)] {
        let traits = translate::traits(model, None);
        assert_eq!(traits.reasons, reasons, "{model}");
        let prepared = translate::prepare(
            &request,
            WireFormat::OpenAi,
            traits,
            false,
            4096,
            Translation::Lenient,
        )
        .map_err(|refusal| refusal.describe())?;
        let sent = prepared.request.as_ref().unwrap_or(&request);
        let encoded = openai::encode_request(sent, model, openai::Upstream::OpenAi)?;
        let roles: Vec<&str> = encoded["messages"]
            .as_array()
            .ok_or("no messages")?
            .iter()
            .filter_map(|m| m["role"].as_str())
            .collect();
        // The system message stays where it was in the conversation.
        assert_eq!(roles, ["system", "user", "system", "user"], "{model}");
        assert_eq!(
            encoded["messages"][2]["content"],
            "The user switched to plan mode."
        );
        // The system blocks stay apart as paragraphs.
        assert_eq!(
            encoded["messages"][0]["content"],
            "You are Claude Code.\n\nEnvironment: linux.\n\nFollow the repository's conventions."
        );
        assert_eq!(
            encoded["user"],
            "{\"device_id\":\"d1\",\"session_id\":\"s1\"}"
        );
        assert_eq!(encoded["max_completion_tokens"], 32000);
        assert_eq!(encoded["tools"].as_array().map(Vec::len), Some(3));
        let expected_dropped = if reasons {
            assert_eq!(encoded["reasoning_effort"], "high");
            vec!["cache_control", "context_management"]
        } else {
            assert_eq!(encoded.get("reasoning_effort"), None, "{model}");
            vec!["cache_control", "context_management", "thinking"]
        };
        assert_eq!(prepared.dropped, expected_dropped, "{model}");
    }
    // A strict route refuses it, naming each field with its reason.
    let refusal = translate::prepare(
        &request,
        WireFormat::OpenAi,
        translate::traits("gpt-4o", None),
        false,
        4096,
        Translation::Strict,
    )
    .err()
    .ok_or("a strict translation dropped fields")?;
    assert!(
        refusal.paths().contains("context_management"),
        "{}",
        refusal.paths()
    );
    assert!(
        refusal.describe().contains("strictly"),
        "{}",
        refusal.describe()
    );
    Ok(())
}

#[test]
fn front_doors_accept_what_the_provider_might() -> TestResult {
    // Anthropic: new roles, block types, image sources and tool types.
    let body = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Read this", "citations": {"enabled": true}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "hologram", "data": "?"}
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Done."}
        ]},
        {"role": "narrator", "content": "Later..."}
    ],
    "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    "brand_new_option": true});
    let request = anthropic::decode_request(&bytes(&body))?;
    let features: Vec<(&str, &str)> = request
        .unmapped
        .iter()
        .map(|u| (u.path.as_str(), u.feature))
        .collect();
    assert_eq!(
        features,
        [
            ("messages[0].content[0].citations", "citations"),
            ("messages[0].content[1]", "document"),
            ("messages[0].content[2].source", "file_reference"),
            ("messages[0].content[3]", "unknown_block"),
            ("messages[1].content[0]", "thinking_block"),
            ("messages[2].role", "unknown_role"),
            ("tools[0]", "server_tool"),
            ("brand_new_option", "unknown_field"),
        ]
    );
    // Thinking blocks are never sent as text.
    assert_eq!(
        request.messages[1].content,
        vec![ContentBlock::Text("Done.".into())]
    );
    assert!(request.tools.is_empty());

    // OpenAI: developer messages, new roles, part types and tool types.
    let body = json!({"model": "m", "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Listen"},
            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}
        ]},
        {"role": "function", "name": "f", "content": "42"}
    ],
    "tools": [{"type": "custom", "custom": {"name": "grammar"}}],
    "response_format": {"type": "grammar", "grammar": "root ::= x"}});
    let request = openai::decode_request(&bytes(&body))?;
    assert_eq!(request.messages[0].role, Role::System);
    let features: Vec<&str> = request.unmapped.iter().map(|u| u.feature).collect();
    assert_eq!(
        features,
        ["audio", "unknown_role", "server_tool", "response_format"]
    );
    // Every feature a front door reports has its fate written in the table.
    for feature in features {
        assert!(
            translate::FATES.iter().any(|row| row.feature == feature),
            "{feature}"
        );
    }
    Ok(())
}

/// `request` as `prepare` translates it for a lenient route's target of
/// `format` serving `model`: what it is sent, and the features dropped.
fn prepared(
    request: &bulwark::api::ChatRequest,
    format: WireFormat,
    model: &str,
) -> Result<(bulwark::api::ChatRequest, Vec<&'static str>), String> {
    let takes_top_k = format != WireFormat::OpenAi;
    let prepared = translate::prepare(
        request,
        format,
        translate::traits(model, None),
        takes_top_k,
        4096,
        Translation::Lenient,
    )
    .map_err(|refusal| refusal.describe())?;
    let sent = prepared.request.unwrap_or_else(|| request.clone());
    Ok((sent, prepared.dropped))
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget_for_anthropic() -> TestResult {
    let body = json!({"model": "m", "max_completion_tokens": 20000, "reasoning_effort": "medium",
        "temperature": 0.3, "user": "u-7", "parallel_tool_calls": false,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}],
        "messages": [{"role": "user", "content": "Weather?"}]});
    let request = openai::decode_request(&bytes(&body))?;
    assert!(request.unmapped.is_empty(), "{:?}", request.unmapped);
    let (sent, dropped) = prepared(&request, WireFormat::Anthropic, "claude-sonnet-4-5")?;
    let encoded = anthropic::encode_request(&sent, "claude-sonnet-4-5", 4096)?;
    assert_eq!(
        encoded["thinking"],
        json!({"type": "enabled", "budget_tokens": 8192})
    );
    // Anthropic refuses a temperature beside thinking: left out, reported.
    assert_eq!(encoded.get("temperature"), None);
    assert_eq!(dropped, ["temperature"]);
    assert_eq!(encoded["metadata"], json!({"user_id": "u-7"}));
    assert_eq!(
        encoded["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    // The budget takes at most half of max_tokens, so the answer has room.
    let mut small = request.clone();
    small.max_tokens = Some(3000);
    let (sent, _) = prepared(&small, WireFormat::Anthropic, "claude-sonnet-4-5")?;
    let encoded = anthropic::encode_request(&sent, "claude-sonnet-4-5", 4096)?;
    assert_eq!(encoded["thinking"]["budget_tokens"], 1500);
    // Without max_tokens, the target's default bounds it: high asks 16384.
    let mut high = request.clone();
    high.max_tokens = None;
    high.reasoning = Some(Reasoning::Effort(Effort::High));
    let (sent, _) = prepared(&high, WireFormat::Anthropic, "claude-sonnet-4-5")?;
    let encoded = anthropic::encode_request(&sent, "claude-sonnet-4-5", 4096)?;
    assert_eq!(encoded["thinking"]["budget_tokens"], 2048);
    assert_eq!(encoded["max_tokens"], 4096);
    // Half of max_tokens below Anthropic's floor: no thinking, reported, and
    // the temperature is kept.
    small.max_tokens = Some(2000);
    let (sent, dropped) = prepared(&small, WireFormat::Anthropic, "claude-sonnet-4-5")?;
    let encoded = anthropic::encode_request(&sent, "claude-sonnet-4-5", 4096)?;
    assert_eq!(encoded.get("thinking"), None);
    assert_eq!(encoded["temperature"], 0.3);
    assert_eq!(dropped, ["reasoning_effort"]);

    // Gemini takes a budget too.
    let (sent, _) = prepared(&request, WireFormat::Gemini, "gemini-2.5-flash")?;
    let encoded = gemini::encode_request(&sent)?;
    assert_eq!(
        encoded["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 8192})
    );
    Ok(())
}

#[test]
fn thinking_is_left_out_and_reported_in_a_tool_loop_or_with_a_forced_tool() -> TestResult {
    // An OpenAI client's tool loop: the assistant turn has a tool call and,
    // translated, no thinking block, which Anthropic refuses beside thinking.
    let body = json!({"model": "m", "reasoning_effort": "high", "max_completion_tokens": 20000,
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    ]});
    let request = openai::decode_request(&bytes(&body))?;
    let (sent, dropped) = prepared(&request, WireFormat::Anthropic, "claude-sonnet-4-5")?;
    let encoded = anthropic::encode_request(&sent, "claude-sonnet-4-5", 4096)?;
    assert_eq!(encoded.get("thinking"), None);
    assert_eq!(dropped, ["reasoning_effort"]);
    // A strict route refuses it instead, with Anthropic's reason.
    let refusal = translate::prepare(
        &request,
        WireFormat::Anthropic,
        translate::traits("claude-sonnet-4-5", None),
        true,
        4096,
        Translation::Strict,
    )
    .err()
    .ok_or("a strict route dropped thinking")?;
    assert!(
        refusal.describe().contains("tool loop"),
        "{}",
        refusal.describe()
    );
    // Gemini and OpenAI take reasoning in a tool loop.
    let (sent, dropped) = prepared(&request, WireFormat::Gemini, "gemini-2.5-flash")?;
    assert!(sent.reasoning.is_some() && dropped.is_empty());

    // A forced tool call, in a request built in code.
    let mut forced = bulwark::api::ChatRequest::new(
        "m",
        vec![bulwark::api::Message {
            role: Role::User,
            content: vec![ContentBlock::Text("Weather?".into())],
        }],
    );
    forced.reasoning = Some(Reasoning::Budget(4000));
    forced.tool_choice = Some(bulwark::api::ToolChoice::Required);
    let (sent, dropped) = prepared(&forced, WireFormat::Anthropic, "claude-opus-4-1")?;
    assert_eq!(sent.reasoning, None);
    assert_eq!(dropped, ["reasoning"]);
    Ok(())
}

#[test]
fn reasoning_fits_each_models_range() -> TestResult {
    let mut request = bulwark::api::ChatRequest::new(
        "m",
        vec![bulwark::api::Message {
            role: Role::User,
            content: vec![ContentBlock::Text("Think.".into())],
        }],
    );
    // Claude Code's budget, beyond what Gemini takes.
    request.reasoning = Some(Reasoning::Budget(31999));
    for (model, budget) in [
        ("gemini-2.5-flash", 24576),
        ("gemini-2.5-flash-lite", 24576),
        ("gemini-2.5-pro", 31999),
    ] {
        let (sent, _) = prepared(&request, WireFormat::Gemini, model)?;
        let encoded = gemini::encode_request(&sent)?;
        assert_eq!(
            encoded["generationConfig"]["thinkingConfig"]["thinkingBudget"], budget,
            "{model}"
        );
    }
    request.reasoning = Some(Reasoning::Budget(40000));
    let (sent, _) = prepared(&request, WireFormat::Gemini, "gemini-2.5-pro")?;
    assert_eq!(sent.reasoning, Some(Reasoning::Budget(32768)));
    // A small budget is "minimal", which the o-series refuses: it gets low.
    request.reasoning = Some(Reasoning::Budget(1024));
    for (model, effort) in [("o3-mini", "low"), ("o1", "low"), ("gpt-5-mini", "minimal")] {
        let (sent, _) = prepared(&request, WireFormat::OpenAi, model)?;
        let encoded = openai::encode_request(&sent, model, openai::Upstream::OpenAi)?;
        assert_eq!(encoded["reasoning_effort"], effort, "{model}");
    }
    Ok(())
}

#[test]
fn top_k_from_a_request_built_in_code_is_dropped_for_openai() -> TestResult {
    let mut request = bulwark::api::ChatRequest::new(
        "m",
        vec![bulwark::api::Message {
            role: Role::User,
            content: vec![ContentBlock::Text("Hi".into())],
        }],
    );
    request.top_k = Some(40);
    let (sent, dropped) = prepared(&request, WireFormat::OpenAi, "gpt-4o")?;
    assert_eq!(sent.top_k, None);
    assert_eq!(dropped, ["top_k"]);
    Ok(())
}

#[test]
fn images_never_reach_a_model_configured_text_only() -> TestResult {
    let request = openai::decode_request(&bytes(&openai_request()))?;
    let text_only = translate::ModelTraits {
        vision: false,
        ..translate::traits("gpt-4o", None)
    };
    for format in [WireFormat::OpenAi, WireFormat::Anthropic] {
        let refusal = translate::prepare(
            &request,
            format,
            text_only,
            true,
            4096,
            Translation::Lenient,
        )
        .err()
        .ok_or("an image was sent to a text-only model")?;
        assert_eq!(refusal.paths(), "messages[1]");
        assert_eq!(refusal.fields[0].feature, "image");
    }
    Ok(())
}

/// A schema as Pydantic writes it for the OpenAI SDK's `parse`.
fn greeting_schema() -> Value {
    json!({"$defs": {"Mood": {"enum": ["calm", "loud"], "type": "string"}},
        "properties": {"greeting": {"type": "string"}, "mood": {"$ref": "#/$defs/Mood"},
            "words": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["greeting", "mood", "words"], "type": "object", "additionalProperties": false})
}

fn lenient(
    request: &bulwark::api::ChatRequest,
    format: WireFormat,
    mode: Translation,
) -> Result<translate::Prepared, translate::Refusal> {
    let traits = translate::traits("claude-sonnet-4-5", None);
    translate::prepare(request, format, traits, true, 4096, mode)
}

#[test]
fn openai_json_schema_maps_to_anthropic_and_gemini() -> TestResult {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "Greet"}],
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "Greeting", "strict": true, "schema": greeting_schema()}}});
    let request = openai::decode_request(&bytes(&body))?;
    assert!(request.unmapped.is_empty(), "{:?}", request.unmapped);
    assert_eq!(
        request.output_format,
        Some(OutputFormat::JsonSchema {
            name: Some("Greeting".into()),
            schema: greeting_schema(),
            strict: Some(true)
        })
    );
    for format in [WireFormat::Anthropic, WireFormat::Gemini] {
        let prepared = lenient(&request, format, Translation::Strict).map_err(|r| r.describe())?;
        assert!(prepared.dropped.is_empty() && prepared.request.is_none());
    }
    let encoded = anthropic::encode_request(&request, "claude-sonnet-4-5", 4096)?;
    assert_eq!(
        encoded["output_config"],
        json!({"format": {"type": "json_schema", "schema": greeting_schema()}})
    );
    let encoded = gemini::encode_request(&request)?;
    assert_eq!(
        encoded["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": greeting_schema()})
    );
    // The same format gets the body as it came.
    let encoded = openai::encode_request(&request, "gpt-4o", openai::Upstream::OpenAi)?;
    assert_eq!(encoded["response_format"], body["response_format"]);
    // The format's description travels in the schema, where the other
    // formats' providers read it.
    let mut described = body.clone();
    described["response_format"]["json_schema"]["description"] = json!("A greeting");
    let request = openai::decode_request(&bytes(&described))?;
    assert!(request.unmapped.is_empty(), "{:?}", request.unmapped);
    let encoded = anthropic::encode_request(&request, "claude-sonnet-4-5", 4096)?;
    assert_eq!(
        encoded["output_config"]["format"]["schema"]["description"],
        "A greeting"
    );
    // `text` is the default: no format at all.
    let plain = json!({"model": "m", "messages": [{"role": "user", "content": "Greet"}],
        "response_format": {"type": "text"}});
    let request = openai::decode_request(&bytes(&plain))?;
    assert!(request.output_format.is_none() && request.unmapped.is_empty());
    let encoded = anthropic::encode_request(&request, "claude-sonnet-4-5", 4096)?;
    assert_eq!(encoded.get("output_config"), None);
    Ok(())
}

#[test]
fn anthropic_output_format_maps_to_openai_and_gemini() -> TestResult {
    for format_fields in [
        json!({"output_config": {"effort": "low", "format": {"type": "json_schema", "schema": greeting_schema()}}}),
        // The structured-outputs beta's top-level field.
        json!({"output_format": {"type": "json_schema", "schema": greeting_schema()}}),
    ] {
        let mut body = json!({"model": "m", "max_tokens": 100,
            "messages": [{"role": "user", "content": "Greet"}]});
        for (key, value) in format_fields.as_object().ok_or("an object")? {
            body[key] = value.clone();
        }
        let request = anthropic::decode_request(&bytes(&body))?;
        assert!(request.unmapped.is_empty(), "{:?}", request.unmapped);
        for dialect in [openai::Upstream::OpenAi, openai::Upstream::Compatible] {
            let encoded = openai::encode_request(&request, "gpt-4o", dialect)?;
            assert_eq!(
                encoded["response_format"],
                json!({"type": "json_schema", "json_schema": {
                    "name": "response", "schema": greeting_schema(), "strict": true}}),
                "{format_fields}"
            );
        }
        let encoded = gemini::encode_request(&request)?;
        assert_eq!(
            encoded["generationConfig"]["responseJsonSchema"],
            greeting_schema()
        );
        assert_eq!(
            encoded["generationConfig"]["responseMimeType"],
            "application/json"
        );
    }
    // OpenAI refuses `strict` on a schema outside its strict subset (an
    // optional property here): such a schema goes without it.
    let mut open_schema = greeting_schema();
    open_schema["required"] = json!(["greeting"]);
    let body = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Greet"}],
        "output_config": {"format": {"type": "json_schema", "schema": open_schema}}});
    let request = anthropic::decode_request(&bytes(&body))?;
    let encoded = openai::encode_request(&request, "gpt-4o", openai::Upstream::OpenAi)?;
    assert_eq!(
        encoded["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "response", "schema": open_schema}})
    );
    // The effort beside the format is still reasoning.
    let body = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Greet"}],
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": greeting_schema()}}});
    let request = anthropic::decode_request(&bytes(&body))?;
    assert_eq!(request.reasoning, Some(Reasoning::Effort(Effort::Low)));
    let encoded = openai::encode_request(&request, "o3", openai::Upstream::OpenAi)?;
    assert_eq!(encoded["reasoning_effort"], "low");
    Ok(())
}

#[test]
fn json_mode_is_dropped_for_anthropic_and_kept_elsewhere() -> TestResult {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "Greet in JSON"}],
        "response_format": {"type": "json_object"}});
    let request = openai::decode_request(&bytes(&body))?;
    assert_eq!(request.output_format, Some(OutputFormat::JsonObject));
    let prepared =
        lenient(&request, WireFormat::Anthropic, Translation::Lenient).map_err(|r| r.describe())?;
    assert_eq!(prepared.dropped, ["json_mode"]);
    let sent = prepared.request.ok_or("the target's copy changes")?;
    assert_eq!(sent.output_format, None);
    let encoded = anthropic::encode_request(&sent, "claude-sonnet-4-5", 4096)?;
    assert_eq!(encoded.get("output_config"), None);
    let refusal = lenient(&request, WireFormat::Anthropic, Translation::Strict)
        .err()
        .ok_or("a strict route refuses JSON mode for Anthropic")?;
    assert_eq!(refusal.paths(), "response_format");
    assert_eq!(refusal.fields[0].feature, "json_mode");

    let prepared =
        lenient(&request, WireFormat::Gemini, Translation::Strict).map_err(|r| r.describe())?;
    assert!(prepared.dropped.is_empty());
    let encoded = gemini::encode_request(&request)?;
    assert_eq!(
        encoded["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    // A request built in code reaches an OpenAI target in JSON mode.
    let mut built = bulwark::api::ChatRequest::new("m", request.messages.clone());
    built.output_format = Some(OutputFormat::JsonObject);
    let encoded = openai::encode_request(&built, "gpt-4o", openai::Upstream::OpenAi)?;
    assert_eq!(encoded["response_format"], json!({"type": "json_object"}));
    Ok(())
}

#[test]
fn unknown_output_formats_are_refused_across_formats() -> TestResult {
    let body = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}],
        "output_config": {"format": {"type": "xml_schema", "schema": "<x/>"}}});
    let request = anthropic::decode_request(&bytes(&body))?;
    let refusal = lenient(&request, WireFormat::OpenAi, Translation::Lenient)
        .err()
        .ok_or("an unknown output format is refused")?;
    assert_eq!(refusal.paths(), "output_config.format");
    assert_eq!(refusal.fields[0].feature, "output_format");
    // Its own format's provider judges it.
    let prepared =
        lenient(&request, WireFormat::Anthropic, Translation::Strict).map_err(|r| r.describe())?;
    assert!(prepared.request.is_none());
    // A malformed schema is the client's error at the door.
    let bad = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": "nope"}}});
    let error = openai::decode_request(&bytes(&bad))
        .err()
        .ok_or("a schema that is not an object is refused")?;
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    Ok(())
}

/// Consecutive `tool` messages form one user turn per run; a user message
/// between runs starts a new one. Grouping is linear: rescanning the
/// growing turn for every tool message made a request of many quadratic.
#[test]
fn runs_of_many_openai_tool_messages_each_form_one_turn() -> TestResult {
    let tool = |i: usize| json!({"role": "tool", "tool_call_id": format!("c{i}"), "content": "x"});
    let mut messages: Vec<Value> = vec![json!({"role": "user", "content": "go"})];
    messages.extend((0..20_000).map(tool));
    messages.push(json!({"role": "user", "content": "and now?"}));
    messages.extend((0..3).map(tool));
    let request = openai::decode_request(&bytes(&json!({"model": "m", "messages": messages})))?;
    let turns: Vec<(Role, usize)> = request
        .messages
        .iter()
        .map(|m| (m.role, m.content.len()))
        .collect();
    assert_eq!(
        turns,
        vec![
            (Role::User, 1),
            (Role::User, 20_000),
            (Role::User, 1),
            (Role::User, 3)
        ]
    );
    Ok(())
}

/// What Bedrock's Converse API cannot carry is dropped and reported, or
/// refused (an output schema), under the features `docs/translation.md`
/// names.
#[test]
fn converse_reports_what_it_cannot_carry() -> TestResult {
    let converse = |body: Value, mode: Translation| {
        let mut request = openai::decode_request(&bytes(&body))?;
        // OpenAI clients have no top-k; one built in code may.
        request.top_k = body
            .get("top_k")
            .and_then(Value::as_u64)
            .and_then(|k| u32::try_from(k).ok());
        request.unmapped.retain(|u| u.path != "top_k");
        let traits = translate::traits("amazon.nova-pro-v1:0", None);
        Ok::<_, Box<dyn std::error::Error>>(translate::prepare(
            &request,
            WireFormat::Converse,
            traits,
            bulwark::wire::converse::Upstream.takes_top_k(),
            4096,
            mode,
        ))
    };
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
        "top_k": 5, "parallel_tool_calls": false,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"}});
    let prepared = converse(body.clone(), Translation::Lenient)?.map_err(|r| r.describe())?;
    assert_eq!(
        prepared.dropped,
        ["top_k", "json_mode", "parallel_tool_calls"]
    );
    let sent = prepared.request.ok_or("the request was not changed")?;
    assert_eq!((sent.top_k, sent.output_format), (None, None));
    let refusal = converse(body, Translation::Strict)?
        .err()
        .ok_or("a strict route dropped fields")?;
    assert!(
        refusal.describe().contains("Converse"),
        "{}",
        refusal.describe()
    );

    let schema = json!({"model": "m", "messages": [{"role": "user", "content": "Greet"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "G", "schema": greeting_schema()}}});
    let refusal = converse(schema, Translation::Lenient)?
        .err()
        .ok_or("an output schema was not refused")?;
    assert_eq!(refusal.fields[0].feature, "structured_output");
    assert_eq!(refusal.paths(), "response_format");

    let none_in_a_tool_loop = json!({"model": "m", "tool_choice": "none",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "done"}]});
    let prepared =
        converse(none_in_a_tool_loop, Translation::Lenient)?.map_err(|r| r.describe())?;
    assert_eq!(prepared.dropped, ["tool_choice_none"]);
    Ok(())
}
