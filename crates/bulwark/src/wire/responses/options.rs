//! A Responses request's settings besides its input: function tools and
//! `tool_choice`, `reasoning`, and `text.format`, decoded into the neutral
//! request (what no other format can carry recorded in `unmapped`).

use serde_json::{Value, json};

use super::inbound::{FORMAT, unmapped};
use crate::api::{Effort, OutputFormat, Reasoning, Tool, ToolChoice, Unmapped};
use crate::error::ApiError;
use crate::wire::json as j;

/// A tool offered to the model; `None` for a built-in tool (it runs inside
/// OpenAI) or a custom (free-form) tool, which no other format can offer.
pub(super) fn decode_tool(
    item: Value,
    i: usize,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<Tool>, ApiError> {
    let path = format!("tools[{i}]");
    let mut obj = j::into_object(item, &path)?;
    let kind = j::require_string(&mut obj, "type", &format!("{path}.type"))?;
    match kind.as_str() {
        "function" => {}
        "custom" => {
            unmapped(unmapped_fields, path, "custom_tool");
            return Ok(None);
        }
        _ => {
            unmapped(unmapped_fields, path, "server_tool");
            return Ok(None);
        }
    }
    let name = j::require_string(&mut obj, "name", &format!("{path}.name"))?;
    let description = j::take_string(&mut obj, "description", &format!("{path}.description"))?;
    let parameters = j::take(&mut obj, "parameters")
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    // The Responses API defaults `strict` to true; the guarantee is OpenAI's
    // alone.
    if j::take_bool(&mut obj, "strict", &format!("{path}.strict"))? != Some(false) {
        unmapped(unmapped_fields, format!("{path}.strict"), "strict_tools");
    }
    j::leftovers(&obj, &path, FORMAT, unmapped_fields);
    Ok(Some(Tool {
        name,
        description,
        parameters,
    }))
}

pub(super) fn decode_tool_choice(
    value: Value,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<ToolChoice>, ApiError> {
    match &value {
        Value::String(s) => Ok(match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => {
                unmapped(unmapped_fields, "tool_choice", "unknown_field");
                None
            }
        }),
        Value::Object(obj) => match (j::get_str(&value, "type"), obj.get("name")) {
            (Some("function"), Some(Value::String(name))) => {
                Ok(Some(ToolChoice::Tool(name.clone())))
            }
            // `allowed_tools`, built-in and custom tools: choices no other
            // format can express.
            _ => {
                unmapped(unmapped_fields, "tool_choice", "unknown_field");
                Ok(None)
            }
        },
        other => Err(j::wrong_type("tool_choice", "a string or an object", other)),
    }
}

pub(super) fn decode_reasoning(
    mut settings: j::Object,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<Reasoning>, ApiError> {
    let effort = match j::take_string(&mut settings, "effort", "reasoning.effort")? {
        None => None,
        Some(name) => match Effort::parse(&name) {
            Some(effort) => effort.map(Reasoning::Effort),
            None => {
                unmapped(unmapped_fields, "reasoning.effort", "unknown_field");
                None
            }
        },
    };
    for key in ["summary", "generate_summary"] {
        if j::take(&mut settings, key).is_some() {
            unmapped(
                unmapped_fields,
                format!("reasoning.{key}"),
                "reasoning_summary",
            );
        }
    }
    j::leftovers(&settings, "reasoning", FORMAT, unmapped_fields);
    Ok(effort)
}

/// Reads `text`: its `format` (`text`, `json_object`, or `json_schema` with
/// the schema's fields beside the type) and `verbosity`.
pub(super) fn decode_text(
    mut text: j::Object,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<OutputFormat>, ApiError> {
    if j::take(&mut text, "verbosity").is_some() {
        unmapped(unmapped_fields, "text.verbosity", "verbosity");
    }
    let output = match j::take_object(&mut text, "format", "text.format")? {
        None => None,
        Some(mut format) => {
            let path = "text.format";
            let kind = j::take_string(&mut format, "type", "text.format.type")?;
            let output = match kind.as_deref() {
                None | Some("text") => None,
                Some("json_object") => Some(OutputFormat::JsonObject),
                Some("json_schema") => Some(crate::wire::openai::inbound::json_schema_output(
                    &mut format,
                    path,
                )?),
                // A format newer than Bulwark: its shape would not be held.
                Some(_) => {
                    unmapped(unmapped_fields, path, "response_format");
                    return Ok(None);
                }
            };
            j::leftovers(&format, path, FORMAT, unmapped_fields);
            output
        }
    };
    j::leftovers(&text, "text", FORMAT, unmapped_fields);
    Ok(output)
}
