//! Input items: what a Responses request's `input` becomes, and how a
//! stored conversation and the new turn are joined into one list. Pure
//! JSON work, so it is tested without a store.

use bulwark::error::ApiError;
use serde_json::{Map, Value, json};

/// A request's `input` as a list of items: a string is one user message,
/// a list is taken as it is, no `input` is no items. Items are not
/// checked here: whatever a provider accepts passes.
pub fn input_items(input: Option<&Value>) -> Result<Vec<Value>, ApiError> {
    match input {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![user_message(text)]),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(ApiError::invalid_param(
            "input",
            "`input` must be a string or a list of input items",
        )),
    }
}

fn user_message(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": text})
}

/// One output item of a stored response, as the input item that carries
/// it into the next turn. A message is the assistant's turn; function
/// calls, reasoning and every other item go back as they came out, since
/// the Responses API accepts its output items as input.
pub fn output_as_input(item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(fields) = item.as_object_mut()
        && fields.get("type").and_then(Value::as_str) == Some("message")
    {
        fields.insert("role".into(), Value::String("assistant".into()));
    }
    item
}

/// The input of a request continuing `previous`: the stored input items,
/// then the previous response's output, then the new input.
pub fn continued(stored_input: Vec<Value>, previous: &Value, new_input: Vec<Value>) -> Vec<Value> {
    let output = previous
        .get("output")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut items = stored_input;
    items.reserve(output.len() + new_input.len());
    items.extend(output.iter().map(output_as_input));
    items.extend(new_input);
    items
}

/// Rewrites a request continuing `previous` (whose input items were
/// `stored_input`) into one that carries its whole history: `input` is the
/// joined list and `previous_response_id` is gone. The previous request's
/// `instructions` are not carried over, as OpenAI documents: only this
/// request's own apply.
pub fn rewrite(
    body: &mut Map<String, Value>,
    stored_input: Vec<Value>,
    previous: &Value,
) -> Result<(), ApiError> {
    let new_input = input_items(body.get("input"))?;
    let items = continued(stored_input, previous, new_input);
    body.remove("previous_response_id");
    body.insert("input".into(), Value::Array(items));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn a_string_input_is_one_user_message() {
        assert_eq!(
            input_items(Some(&json!("hi"))).unwrap(),
            vec![json!({"type": "message", "role": "user", "content": "hi"})]
        );
        assert!(input_items(None).unwrap().is_empty());
        let list = json!([{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]);
        assert_eq!(
            input_items(Some(&list)).unwrap(),
            list.as_array().unwrap().clone()
        );
        let error = input_items(Some(&json!(7))).unwrap_err();
        assert_eq!((error.status, error.param.as_deref()), (400, Some("input")));
    }

    #[test]
    fn output_messages_become_assistant_turns_and_other_items_stay() {
        let message = json!({"type": "message", "id": "msg_1", "status": "completed",
            "content": [{"type": "output_text", "text": "Paris", "annotations": []}]});
        let turned = output_as_input(&message);
        assert_eq!(turned["role"], "assistant");
        assert_eq!(turned["content"], message["content"]);
        let call = json!({"type": "function_call", "id": "fc_1", "call_id": "call_1",
            "name": "weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"});
        assert_eq!(output_as_input(&call), call);
        let reasoning = json!({"type": "reasoning", "id": "rs_1", "summary": [],
            "encrypted_content": "opaque"});
        assert_eq!(output_as_input(&reasoning), reasoning);
    }

    #[test]
    fn the_history_comes_first_and_the_old_instructions_stay_behind() {
        let stored = vec![json!({"type": "message", "role": "user", "content": "first"})];
        let previous = json!({"id": "resp_1", "instructions": "be terse",
            "output": [{"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "one"}]}]});
        let mut request = body(json!({"model": "m", "previous_response_id": "resp_1",
            "input": "second", "instructions": "be kind"}));
        rewrite(&mut request, stored, &previous).unwrap();
        assert_eq!(
            Value::Object(request),
            json!({"model": "m", "instructions": "be kind", "input": [
                {"type": "message", "role": "user", "content": "first"},
                {"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "one"}]},
                {"type": "message", "role": "user", "content": "second"},
            ]})
        );
    }

    #[test]
    fn a_tool_result_follows_the_call_it_answers() {
        let stored = vec![json!({"type": "message", "role": "user", "content": "weather?"})];
        let previous = json!({"output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
        ]});
        let result = json!({"type": "function_call_output", "call_id": "call_1",
            "output": "sunny"});
        let mut request = body(json!({"previous_response_id": "resp_1",
            "input": [result.clone()]}));
        rewrite(&mut request, stored, &previous).unwrap();
        let input = request["input"].as_array().unwrap();
        let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "message",
                "reasoning",
                "function_call",
                "function_call_output"
            ]
        );
        assert_eq!(input[3], result);
        assert!(!request.contains_key("previous_response_id"));
    }

    #[test]
    fn no_new_input_continues_with_the_history_alone() {
        let previous = json!({"output": []});
        let mut request = body(json!({"previous_response_id": "r"}));
        rewrite(
            &mut request,
            vec![json!({"role": "user", "content": "a"})],
            &previous,
        )
        .unwrap();
        assert_eq!(request["input"], json!([{"role": "user", "content": "a"}]));
        let mut bad = body(json!({"previous_response_id": "r", "input": {"x": 1}}));
        assert_eq!(
            rewrite(&mut bad, Vec::new(), &previous)
                .unwrap_err()
                .param
                .as_deref(),
            Some("input")
        );
    }
}
