//! Assembling a streamed answer into one response, for callers that asked
//! for the whole answer at once.

use serde_json::Value;

use crate::api::{
    ChatResponse, ContentBlock, FinishReason, StreamEvent, ToolCall, Usage, unix_now,
};

/// Builds the complete answer from its stream events. Tool-call arguments
/// arrive in fragments; once joined, text that is not valid JSON (a call cut
/// by the token limit) is kept as a string rather than lost.
pub fn aggregate<'a>(events: impl IntoIterator<Item = &'a StreamEvent>) -> ChatResponse {
    let mut response = ChatResponse {
        id: String::new(),
        model: String::new(),
        content: Vec::new(),
        finish_reason: FinishReason::Stop,
        stop_sequence: None,
        usage: Usage::default(),
        created: unix_now(),
    };
    // (block index, block, raw tool arguments)
    let mut blocks: Vec<(usize, ContentBlock, String)> = Vec::new();
    for event in events {
        match event {
            StreamEvent::Start {
                id,
                model,
                created,
                input_tokens,
            } => {
                response.id.clone_from(id);
                response.model.clone_from(model);
                response.created = *created;
                if let Some(input) = input_tokens {
                    response.usage.input_tokens = *input;
                }
            }
            StreamEvent::TextDelta { index, text } => {
                match blocks.iter_mut().find(|(i, _, _)| i == index) {
                    Some((_, ContentBlock::Text(existing), _)) => existing.push_str(text),
                    _ => blocks.push((*index, ContentBlock::Text(text.clone()), String::new())),
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => blocks.push((
                *index,
                ContentBlock::ToolUse(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    input: Value::Null,
                }),
                String::new(),
            )),
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                if let Some((_, _, raw)) = blocks.iter_mut().find(|(i, _, _)| i == index) {
                    raw.push_str(partial_json);
                }
            }
            StreamEvent::Finish {
                reason,
                stop_sequence,
            } => {
                response.finish_reason = reason.clone();
                response.stop_sequence.clone_from(stop_sequence);
            }
            StreamEvent::Usage(usage) => {
                response.usage.output_tokens = usage.output_tokens;
                if usage.input_tokens > 0 {
                    response.usage.input_tokens = usage.input_tokens;
                }
            }
            // The neutral answer has no thinking block: a client of the
            // provider's own format gets its thinking from the relayed
            // events instead (`assemble_relayed`).
            StreamEvent::Thinking { .. } => {}
        }
    }
    blocks.sort_by_key(|(index, _, _)| *index);
    response.content = blocks
        .into_iter()
        .map(|(_, block, raw)| match block {
            ContentBlock::ToolUse(mut call) => {
                call.input = if raw.trim().is_empty() {
                    Value::Object(Default::default())
                } else {
                    serde_json::from_str(&raw).unwrap_or(Value::String(raw))
                };
                ContentBlock::ToolUse(call)
            }
            other => other,
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn joins_text_and_tool_arguments_in_block_order() {
        let events = vec![
            StreamEvent::Start {
                id: "m1".into(),
                model: "x".into(),
                created: 5,
                input_tokens: Some(9),
            },
            StreamEvent::TextDelta {
                index: 0,
                text: "Hel".into(),
            },
            StreamEvent::TextDelta {
                index: 0,
                text: "lo".into(),
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "c1".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                partial_json: "{\"a\":".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                partial_json: "1}".into(),
            },
            StreamEvent::ToolCallStart {
                index: 2,
                id: "c2".into(),
                name: "g".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 2,
                partial_json: "{\"cut".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::Length,
                stop_sequence: None,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 0,
                output_tokens: 4,
            }),
        ];
        let response = aggregate(&events);
        assert_eq!(response.id, "m1");
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: 9,
                output_tokens: 4
            }
        );
        assert_eq!(response.finish_reason, FinishReason::Length);
        assert_eq!(
            response.content,
            vec![
                ContentBlock::Text("Hello".into()),
                ContentBlock::ToolUse(ToolCall {
                    id: "c1".into(),
                    name: "f".into(),
                    input: json!({"a": 1})
                }),
                ContentBlock::ToolUse(ToolCall {
                    id: "c2".into(),
                    name: "g".into(),
                    input: json!("{\"cut")
                }),
            ]
        );
    }

    #[test]
    fn thinking_leaves_the_answer_as_it_is() {
        let text = |index: usize, text: &str| StreamEvent::TextDelta {
            index,
            text: text.into(),
        };
        let thinking = StreamEvent::Thinking {
            index: 0,
            text: "Pondering.".into(),
        };
        let with = aggregate(&[thinking.clone(), text(1, "Hi"), thinking]);
        let without = aggregate(&[text(1, "Hi")]);
        assert_eq!(with.content, vec![ContentBlock::Text("Hi".into())]);
        assert_eq!(with.content, without.content);
    }
}
