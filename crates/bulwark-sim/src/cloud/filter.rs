//! Azure's content filter: the annotations every answer carries
//! (`prompt_filter_results`, `content_filter_results`), a prompt refused
//! with a 400 `content_filter`, and an answer cut short with
//! `finish_reason: content_filter`.
//!
//! A request trips the filter by the `content_filter` fault (rules or
//! `x-sim-fault: content_filter` / `content_filter=stream`), or, so that
//! real clients can trip it, by `sim:content_filter` (prompt) or
//! `sim:content_filter_output` (answer) in its last user text.

use axum::response::Response;
use serde_json::{Value, json};

use super::Cloud;
use crate::answer::{Answer, count_words};
use crate::fault::Fault;
use crate::stream::Frame;

/// The prompt text that gets a prompt refused on Azure's paths.
pub(crate) const PROMPT_TRIGGER: &str = "sim:content_filter";
/// The prompt text that gets an answer filtered on Azure's paths.
pub(crate) const OUTPUT_TRIGGER: &str = "sim:content_filter_output";

const PROMPT_MESSAGE: &str = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766";

/// What the filter caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    /// The prompt: a 400 before any answer.
    Prompt,
    /// The answer: it stops early with `finish_reason: content_filter`.
    Output,
}

/// The filter a request trips, if any. Off Azure the fault still refuses
/// the prompt (there is no output filter to imitate), in the path's own
/// 400 shape; the prompt triggers work on Azure's paths only.
pub(crate) fn pick(
    cloud: Option<Cloud>,
    fault: Option<&Fault>,
    last_user_text: &str,
) -> Option<Filter> {
    let azure = cloud == Some(Cloud::Azure);
    if let Some(Fault::ContentFilter { output }) = fault {
        return Some(if *output && azure {
            Filter::Output
        } else {
            Filter::Prompt
        });
    }
    if !azure {
        None
    } else if last_user_text.contains(OUTPUT_TRIGGER) {
        Some(Filter::Output)
    } else if last_user_text.contains(PROMPT_TRIGGER) {
        Some(Filter::Prompt)
    } else {
        None
    }
}

/// Off Azure, the message of the plain 400 the fault becomes.
pub(crate) const GENERIC_MESSAGE: &str = "The request was refused by the content filter.";

fn severity(filtered: bool) -> Value {
    if filtered {
        json!({"filtered": true, "severity": "medium"})
    } else {
        json!({"filtered": false, "severity": "safe"})
    }
}

/// The four harm categories; `violence` is the one that trips.
fn categories(filtered: bool) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("hate".into(), severity(false));
    map.insert("self_harm".into(), severity(false));
    map.insert("sexual".into(), severity(false));
    map.insert("violence".into(), severity(filtered));
    map
}

fn prompt_results(filtered: bool) -> Value {
    let mut results = categories(filtered);
    results.insert(
        "jailbreak".into(),
        json!({"filtered": false, "detected": false}),
    );
    json!([{"prompt_index": 0, "content_filter_results": results}])
}

fn completion_results(filtered: bool) -> Value {
    let mut results = categories(filtered);
    let clean = json!({"filtered": false, "detected": false});
    results.insert("protected_material_code".into(), clean.clone());
    results.insert("protected_material_text".into(), clean);
    Value::Object(results)
}

/// The 400 for a filtered prompt, as Azure sends it.
pub(crate) fn refusal() -> Response {
    let mut result = categories(true);
    result.insert(
        "jailbreak".into(),
        json!({"filtered": false, "detected": false}),
    );
    super::azure::json_response(
        400,
        &json!({"error": {
            "message": PROMPT_MESSAGE,
            "type": null,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": result
            }
        }}),
    )
}

/// Keeps the first half of the answer's words: the rest was "filtered".
/// A tool call is withheld whole.
pub(crate) fn cut(answer: &mut Answer) {
    let words: Vec<&str> = answer.text.split_whitespace().collect();
    answer.text = if answer.tool_call.is_some() {
        String::new()
    } else {
        words[..words.len() / 2].join(" ")
    };
    answer.tool_call = None;
    answer.output_tokens = count_words(&answer.text);
}

/// Annotates a `chat.completion` body; `filtered`: the answer was cut.
pub(crate) fn decorate(body: &mut Value, filtered: bool) {
    body["prompt_filter_results"] = prompt_results(false);
    if let Some(choices) = body.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices {
            choice["content_filter_results"] = completion_results(filtered);
            if filtered {
                choice["finish_reason"] = json!("content_filter");
            }
        }
    }
}

/// Annotates a Chat Completions stream as Azure does: a first chunk with
/// no choices and an empty id and model carrying the prompt's results,
/// then the content chunks with theirs; the finishing chunk says
/// `content_filter` when `filtered`.
pub(crate) fn decorate_stream(frames: Vec<Frame>, filtered: bool) -> Vec<Frame> {
    let first = json!({
        "choices": [], "created": 0, "id": "", "model": "", "object": "",
        "prompt_filter_results": prompt_results(false)
    });
    let mut out = vec![Frame::immediate(format!("data: {first}\n\n"))];
    for frame in frames {
        let text = String::from_utf8_lossy(&frame.bytes);
        let parsed = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        let Some(mut chunk) = parsed else {
            out.push(frame);
            continue;
        };
        if let Some(choice) = chunk.pointer_mut("/choices/0") {
            let finishing = !choice["finish_reason"].is_null();
            let content = choice.pointer("/delta/content").is_some_and(|c| c != "");
            choice["content_filter_results"] = if finishing && filtered {
                choice["finish_reason"] = json!("content_filter");
                completion_results(true)
            } else if content || choice.pointer("/delta/tool_calls").is_some() {
                completion_results(false)
            } else {
                json!({})
            };
        }
        out.push(Frame {
            bytes: format!("data: {chunk}\n\n").into(),
            paced: frame.paced,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_and_triggers_pick_the_filter() {
        let fault = Fault::ContentFilter { output: true };
        assert_eq!(
            pick(Some(Cloud::Azure), Some(&fault), ""),
            Some(Filter::Output)
        );
        assert_eq!(pick(None, Some(&fault), ""), Some(Filter::Prompt));
        let azure = Some(Cloud::Azure);
        assert_eq!(
            pick(azure, None, "say sim:content_filter_output"),
            Some(Filter::Output)
        );
        assert_eq!(
            pick(azure, None, "say sim:content_filter now"),
            Some(Filter::Prompt)
        );
        assert_eq!(pick(None, None, "say sim:content_filter now"), None);
        assert_eq!(pick(azure, Some(&Fault::cut(1)), "hello"), None);
    }

    #[test]
    fn stream_gets_a_prompt_chunk_and_a_filtered_finish() {
        let frames = vec![
            Frame::immediate(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            ),
            Frame::paced(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            ),
            Frame::immediate(
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            ),
            Frame::immediate("data: [DONE]\n\n"),
        ];
        let out = decorate_stream(frames, true);
        assert_eq!(out.len(), 5);
        let json = |f: &Frame| -> Value {
            let text = String::from_utf8_lossy(&f.bytes).into_owned();
            serde_json::from_str(text.trim_start_matches("data: ").trim()).unwrap()
        };
        assert_eq!(json(&out[0])["choices"], json!([]));
        assert_eq!(json(&out[0])["prompt_filter_results"][0]["prompt_index"], 0);
        assert_eq!(
            json(&out[1])["choices"][0]["content_filter_results"],
            json!({})
        );
        assert_eq!(
            json(&out[2])["choices"][0]["content_filter_results"]["violence"]["filtered"],
            false
        );
        assert!(out[2].paced);
        let finish = json(&out[3]);
        assert_eq!(finish["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(
            finish["choices"][0]["content_filter_results"]["violence"]["filtered"],
            true
        );
        assert_eq!(&out[4].bytes[..], b"data: [DONE]\n\n");
    }
}
