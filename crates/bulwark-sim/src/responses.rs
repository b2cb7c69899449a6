//! OpenAI's Responses API (`POST /v1/responses`): request reading, the
//! Response object, and the typed event stream (`event:` lines, each
//! event's `type` and `sequence_number`), ending with `response.completed`
//! or `response.incomplete`. Errors are OpenAI's, as on every endpoint; a
//! stream broken by an error ends with an `error` event.

use serde_json::{Value, json};

use crate::answer::{Answer, Finish, Output, Prompt, ToolChoice, ToolDecl, stream_tokens};
use crate::stream::Frame;
use crate::wire::{Ctx, ErrorSpec, Invalid, sse_event, text_of, u64_field};

/// Read a request body into a prompt.
pub(crate) fn parse(body: &Value, model: &str) -> Result<Prompt, Invalid> {
    if model.is_empty() {
        return Err(Invalid::param(
            "Missing required parameter: 'model'.",
            "model",
        ));
    }
    let mut prompt = Prompt {
        model: model.to_string(),
        ..Prompt::default()
    };
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
        prompt.texts.push(instructions.to_string());
    }
    let items: Vec<Value> = match body.get("input") {
        Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items.clone(),
        _ => {
            return Err(Invalid::param(
                "Missing required parameter: 'input'.",
                "input",
            ));
        }
    };
    let mut trailing_outputs = Vec::new();
    let mut last_role = None;
    for item in &items {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                let content = item.get("content").unwrap_or(&Value::Null);
                let text = text_of(content);
                prompt.texts.push(text.clone());
                if role == "user" {
                    prompt.last_user_text = text;
                    prompt.images = content.as_array().map_or(0, |parts| {
                        parts
                            .iter()
                            .filter(|p| {
                                p.get("type").and_then(Value::as_str) == Some("input_image")
                            })
                            .count()
                    });
                }
                if !matches!(role, "system" | "developer") {
                    last_role = Some(role.to_string());
                    trailing_outputs.clear();
                }
            }
            "function_call" => {
                if let Some(args) = item.get("arguments").and_then(Value::as_str) {
                    prompt.texts.push(args.to_string());
                }
                last_role = Some("assistant".into());
                trailing_outputs.clear();
            }
            "function_call_output" | "custom_tool_call_output" => {
                let output = text_of(item.get("output").unwrap_or(&Value::Null));
                prompt.texts.push(output.clone());
                trailing_outputs.push(output);
                last_role = Some("tool".into());
            }
            // Reasoning items and built-in tool calls carry no prompt text.
            _ => {}
        }
    }
    if !trailing_outputs.is_empty() {
        prompt.tool_results = Some(trailing_outputs);
    }
    prompt.last_is_user = last_role.as_deref() == Some("user");
    prompt.tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|t| {
            Some(ToolDecl {
                name: t.get("name")?.as_str()?.to_string(),
                schema: t.get("parameters").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    prompt.tool_choice = match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(obj @ Value::Object(_)) => obj
            .get("name")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, |n| ToolChoice::Named(n.to_string())),
        _ => ToolChoice::Auto,
    };
    prompt.max_tokens = u64_field(body, "max_output_tokens")?;
    prompt.thinking = matches!(
        body.pointer("/reasoning/effort").and_then(Value::as_str),
        Some(effort) if effort != "none"
    );
    prompt.output = match body.pointer("/text/format/type").and_then(Value::as_str) {
        Some("json_schema") => Some(Output::Schema(
            body.pointer("/text/format/schema")
                .cloned()
                .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
        )),
        Some("json_object") => Some(Output::JsonObject),
        _ => None,
    };
    Ok(prompt)
}

fn response_id(ctx: &Ctx) -> String {
    format!("resp_sim{}", ctx.hex_id(0))
}

fn message_id(ctx: &Ctx) -> String {
    format!("msg_sim{}", ctx.hex_id(1))
}

fn call_item_id(ctx: &Ctx) -> String {
    format!("fc_sim{}", ctx.hex_id(2))
}

fn call_id(ctx: &Ctx) -> String {
    format!("call_sim{}", ctx.hex_id(3))
}

fn reasoning_id(ctx: &Ctx) -> String {
    format!("rs_sim{}", ctx.hex_id(4))
}

/// Reasoning stays hidden, as OpenAI keeps it without a summary asked for:
/// only its tokens show, in `output_tokens_details.reasoning_tokens`.
fn usage(answer: &Answer) -> Value {
    let output = answer.billed_output_tokens();
    json!({
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": answer.thinking_tokens},
        "total_tokens": answer.input_tokens + output
    })
}

fn status(answer: &Answer) -> &'static str {
    match answer.finish {
        Finish::Length => "incomplete",
        Finish::Stop | Finish::StopSequence(_) | Finish::ToolUse => "completed",
    }
}

fn message_item(ctx: &Ctx, text: &str, status: &str) -> Value {
    json!({
        "id": message_id(ctx), "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    })
}

fn call_item(ctx: &Ctx, name: &str, arguments: &str, status: &str) -> Value {
    json!({
        "id": call_item_id(ctx), "type": "function_call", "status": status,
        "call_id": call_id(ctx), "name": name, "arguments": arguments
    })
}

fn reasoning_item(ctx: &Ctx) -> Value {
    json!({"id": reasoning_id(ctx), "type": "reasoning", "summary": []})
}

/// The output items of a finished answer.
fn output(ctx: &Ctx, answer: &Answer) -> Vec<Value> {
    let status = status(answer);
    let mut items = Vec::new();
    if answer.thinking.is_some() {
        items.push(reasoning_item(ctx));
    }
    match &answer.tool_call {
        Some(call) => items.push(call_item(
            ctx,
            &call.name,
            &call.arguments.to_string(),
            status,
        )),
        None => items.push(message_item(ctx, &answer.text, status)),
    }
    items
}

/// The request settings a Response object repeats, with OpenAI's defaults
/// for those the request left out.
fn echoed(request: &Value) -> [(&'static str, Value); 13] {
    let get = |key: &str, default: Value| {
        request
            .get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    [
        ("instructions", get("instructions", Value::Null)),
        ("max_output_tokens", get("max_output_tokens", Value::Null)),
        ("metadata", get("metadata", json!({}))),
        (
            "parallel_tool_calls",
            get("parallel_tool_calls", json!(true)),
        ),
        (
            "previous_response_id",
            get("previous_response_id", Value::Null),
        ),
        (
            "reasoning",
            get("reasoning", json!({"effort": null, "summary": null})),
        ),
        ("store", get("store", json!(true))),
        ("temperature", get("temperature", json!(1.0))),
        ("text", get("text", json!({"format": {"type": "text"}}))),
        ("tool_choice", get("tool_choice", json!("auto"))),
        ("tools", get("tools", json!([]))),
        ("top_p", get("top_p", json!(1.0))),
        ("truncation", get("truncation", json!("disabled"))),
    ]
}

/// A Response object: in progress (`answer` none) or finished.
fn object(ctx: &Ctx, request: &Value, answer: Option<&Answer>) -> Value {
    let (status, output, usage, incomplete) = match answer {
        None => ("in_progress", Vec::new(), Value::Null, Value::Null),
        Some(a) => (
            status(a),
            output(ctx, a),
            usage(a),
            if a.finish == Finish::Length {
                json!({"reason": "max_output_tokens"})
            } else {
                Value::Null
            },
        ),
    };
    let mut object = json!({
        "id": response_id(ctx), "object": "response", "created_at": ctx.created,
        "status": status, "error": null, "incomplete_details": incomplete,
        "model": ctx.model, "output": output, "usage": usage
    });
    for (key, value) in echoed(request) {
        object[key] = value;
    }
    object
}

/// A non-streaming answer to `request`: the Response object.
pub(crate) fn response(ctx: &Ctx, request: &Value, answer: &Answer) -> Value {
    object(ctx, request, Some(answer))
}

/// Writes typed events, numbering them in order.
struct Events {
    frames: Vec<Frame>,
    sequence: u64,
}

impl Events {
    fn push(&mut self, paced: bool, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let frame = sse_event(kind, &data);
        self.frames.push(if paced {
            Frame::paced(frame)
        } else {
            Frame::immediate(frame)
        });
    }
}

/// Streaming events: created, in progress, each output item added, its
/// deltas (one per word, or argument fragments), its done events, then the
/// final `response.completed` (or `response.incomplete`) with the whole
/// Response object.
pub(crate) fn stream_frames(ctx: &Ctx, request: &Value, answer: &Answer) -> Vec<Frame> {
    let mut events = Events {
        frames: Vec::new(),
        sequence: 0,
    };
    events.push(
        false,
        "response.created",
        json!({"response": object(ctx, request, None)}),
    );
    events.push(
        false,
        "response.in_progress",
        json!({"response": object(ctx, request, None)}),
    );
    let status = status(answer);
    let mut index = 0;
    if answer.thinking.is_some() {
        events.push(
            false,
            "response.output_item.added",
            json!({"output_index": index, "item": reasoning_item(ctx)}),
        );
        events.push(
            false,
            "response.output_item.done",
            json!({"output_index": index, "item": reasoning_item(ctx)}),
        );
        index += 1;
    }
    match &answer.tool_call {
        Some(call) => {
            let arguments = call.arguments.to_string();
            events.push(
                false,
                "response.output_item.added",
                json!({"output_index": index, "item": call_item(ctx, &call.name, "", "in_progress")}),
            );
            for piece in crate::answer::fragments(&arguments) {
                events.push(
                    true,
                    "response.function_call_arguments.delta",
                    json!({"item_id": call_item_id(ctx), "output_index": index, "delta": piece}),
                );
            }
            events.push(
                false,
                "response.function_call_arguments.done",
                json!({"item_id": call_item_id(ctx), "output_index": index, "arguments": arguments}),
            );
            events.push(
                false,
                "response.output_item.done",
                json!({"output_index": index, "item": call_item(ctx, &call.name, &arguments, status)}),
            );
        }
        None => {
            let empty_part = json!({"type": "output_text", "text": "", "annotations": []});
            events.push(
                false,
                "response.output_item.added",
                json!({"output_index": index, "item": {"id": message_id(ctx), "type": "message",
                       "status": "in_progress", "role": "assistant", "content": []}}),
            );
            events.push(
                false,
                "response.content_part.added",
                json!({"item_id": message_id(ctx), "output_index": index, "content_index": 0, "part": empty_part}),
            );
            for token in stream_tokens(&answer.text) {
                events.push(
                    true,
                    "response.output_text.delta",
                    json!({"item_id": message_id(ctx), "output_index": index, "content_index": 0,
                           "delta": token, "logprobs": []}),
                );
            }
            events.push(
                false,
                "response.output_text.done",
                json!({"item_id": message_id(ctx), "output_index": index, "content_index": 0,
                       "text": answer.text, "logprobs": []}),
            );
            events.push(
                false,
                "response.content_part.done",
                json!({"item_id": message_id(ctx), "output_index": index, "content_index": 0,
                       "part": {"type": "output_text", "text": answer.text, "annotations": []}}),
            );
            events.push(
                false,
                "response.output_item.done",
                json!({"output_index": index, "item": message_item(ctx, &answer.text, status)}),
            );
        }
    }
    let last = if answer.finish == Finish::Length {
        "response.incomplete"
    } else {
        "response.completed"
    };
    events.push(
        false,
        last,
        json!({"response": object(ctx, request, Some(answer))}),
    );
    events.frames
}

/// The `error` event that breaks a stream, with OpenAI's error fields.
pub(crate) fn error_frame(spec: &ErrorSpec) -> String {
    let body = crate::openai::error_body(spec);
    let error = body.get("error").cloned().unwrap_or(Value::Null);
    sse_event(
        "error",
        &json!({
            "type": "error",
            "code": error.get("code").and_then(Value::as_str).or_else(|| error.get("type").and_then(Value::as_str)),
            "message": error.get("message"),
            "param": error.get("param"),
            "sequence_number": 0
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::answer;

    fn ctx() -> Ctx {
        Ctx {
            seq: 7,
            created: 1_700_000_000,
            model: "gpt-sim".into(),
            request_id: "req_1".into(),
            include_usage: false,
        }
    }

    fn data(frame: &Frame) -> Value {
        let text = String::from_utf8_lossy(frame.bytes.as_ref()).to_string();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_default()
            .to_string();
        serde_json::from_str(&line).unwrap_or(Value::Null)
    }

    #[test]
    fn items_instructions_and_tool_outputs_are_read() {
        let prompt = parse(
            &json!({"model": "m", "instructions": "be brief", "max_output_tokens": 5,
                "reasoning": {"effort": "low"},
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
                    {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "sunny"}
                ],
                "tools": [{"type": "function", "name": "w", "parameters": {}}, {"type": "web_search"}]}),
            "m",
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(prompt.last_user_text, "weather?");
        assert_eq!(prompt.tool_results, Some(vec!["sunny".to_string()]));
        assert!(!prompt.last_is_user);
        assert_eq!(prompt.tools.len(), 1);
        assert_eq!(prompt.max_tokens, Some(5));
        assert!(prompt.thinking);
        assert!(parse(&json!({"model": "m"}), "m").is_err());
    }

    #[test]
    fn a_stream_is_numbered_typed_events_ending_in_the_response() {
        let prompt = parse(&json!({"model": "m", "input": "hello there"}), "m")
            .unwrap_or_else(|e| panic!("{}", e.message));
        let answer = answer(&prompt);
        let frames = stream_frames(&ctx(), &Value::Null, &answer);
        let events: Vec<Value> = frames.iter().map(data).collect();
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event["sequence_number"], json!(i));
        }
        assert_eq!(events[0]["type"], "response.created");
        let text: String = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(text, answer.text);
        let last = events.last().cloned().unwrap_or(Value::Null);
        assert_eq!(last["type"], "response.completed");
        assert_eq!(last["response"], response(&ctx(), &Value::Null, &answer));
        assert_eq!(
            last["response"]["output"][0]["content"][0]["text"],
            json!(answer.text)
        );
    }

    #[test]
    fn a_broken_stream_ends_with_an_error_event_carrying_openais_code() {
        let spec = ErrorSpec {
            status: 429,
            model: "m".into(),
            ..ErrorSpec::default()
        };
        let frame = error_frame(&spec);
        assert!(frame.starts_with("event: error\n"), "{frame}");
        let data: Value = serde_json::from_str(
            frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_default(),
        )
        .unwrap_or(Value::Null);
        assert_eq!(data["type"], "error");
        assert_eq!(data["code"], "rate_limit_exceeded");
        assert!(
            data["message"]
                .as_str()
                .is_some_and(|m| m.contains("Rate limit"))
        );
    }

    #[test]
    fn a_called_tool_streams_argument_deltas() {
        let prompt = parse(
            &json!({"model": "m", "input": "sim:call w {\"a\":1}",
                    "tools": [{"type": "function", "name": "w", "parameters": {}}]}),
            "m",
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        let answer = answer(&prompt);
        let events: Vec<Value> = stream_frames(&ctx(), &Value::Null, &answer)
            .iter()
            .map(data)
            .collect();
        let arguments: String = events
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(arguments, "{\"a\":1}");
        let last = events.last().cloned().unwrap_or(Value::Null);
        assert_eq!(last["response"]["output"][0]["type"], "function_call");
        assert_eq!(last["response"]["output"][0]["name"], "w");
    }
}
