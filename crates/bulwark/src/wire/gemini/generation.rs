//! A Gemini client's `generationConfig`: sampling, the answer's shape
//! (`responseMimeType` with a schema, OpenAPI schemas turned into JSON
//! Schema) and `thinkingConfig`, decoded into the neutral request.

use serde_json::{Map, Value, json};

use super::inbound::{FORMAT, take_object, unmapped};
use crate::api::{ChatRequest, Effort, OutputFormat, Reasoning, Unmapped};
use crate::error::ApiError;
use crate::wire::json as j;

pub(super) fn decode_generation_config(
    mut config: j::Object,
    request: &mut ChatRequest,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<(), ApiError> {
    const PATH: &str = "generationConfig";
    let at = |key: &str| format!("{PATH}.{key}");
    request.temperature = j::take_f64(&mut config, "temperature", &at("temperature"))?;
    request.top_p = j::take_f64(&mut config, "topP", &at("topP"))?;
    // The Python SDK types `top_k` as a float and sends `40.0`.
    request.top_k = match j::take_f64(&mut config, "topK", &at("topK"))? {
        None => None,
        Some(k) if k >= 0.0 && k.fract() == 0.0 && k <= f64::from(u32::MAX) => Some(k as u32),
        Some(_) => {
            return Err(ApiError::invalid_param(
                at("topK"),
                "`generationConfig.topK` must be a whole number of at least 0",
            ));
        }
    };
    request.max_tokens = j::take_u32(&mut config, "maxOutputTokens", &at("maxOutputTokens"))?;
    request.stop = j::take_string_list(&mut config, "stopSequences", &at("stopSequences"))?;
    match j::take_u32(&mut config, "candidateCount", &at("candidateCount"))? {
        None | Some(1) => {}
        Some(_) => unmapped(unmapped_fields, at("candidateCount"), "candidate_count"),
    }
    request.output_format = decode_output_format(&mut config, unmapped_fields)?;
    if let Some(thinking) = take_object(&mut config, "thinkingConfig", &at("thinkingConfig"))? {
        request.reasoning = decode_thinking(thinking, unmapped_fields)?;
    }
    for key in ["presencePenalty", "frequencyPenalty"] {
        if config.remove(key).is_some() {
            unmapped(unmapped_fields, at(key), "penalties");
        }
    }
    if config.remove("seed").is_some() {
        unmapped(unmapped_fields, at("seed"), "seed");
    }
    for key in ["responseLogprobs", "logprobs"] {
        if config.remove(key).is_some() {
            unmapped(unmapped_fields, at(key), "logprobs");
        }
    }
    if let Some(modalities) = j::take(&mut config, "responseModalities") {
        let text_only = modalities
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m.as_str() == Some("TEXT")));
        if !text_only {
            unmapped(unmapped_fields, at("responseModalities"), "audio");
        }
    }
    if config.remove("speechConfig").is_some() {
        unmapped(unmapped_fields, at("speechConfig"), "audio");
    }
    if config.remove("mediaResolution").is_some() {
        unmapped(unmapped_fields, at("mediaResolution"), "media_resolution");
    }
    j::leftovers(&config, PATH, FORMAT, unmapped_fields);
    Ok(())
}

/// `responseMimeType` with `responseJsonSchema` (JSON Schema) or
/// `responseSchema` (Google's OpenAPI subset).
fn decode_output_format(
    config: &mut j::Object,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<OutputFormat>, ApiError> {
    const PATH: &str = "generationConfig";
    let mime = j::take_string(
        config,
        "responseMimeType",
        "generationConfig.responseMimeType",
    )?;
    let schema = match (
        j::take(config, "responseJsonSchema"),
        j::take(config, "responseSchema"),
    ) {
        (Some(schema), _) => Some(schema),
        (None, Some(schema)) => Some(openapi_to_json_schema(schema)),
        (None, None) => None,
    };
    Ok(match (mime.as_deref(), schema) {
        (None | Some("text/plain"), None) => None,
        (Some("application/json"), None) => Some(OutputFormat::JsonObject),
        (Some("application/json") | None, Some(schema)) => Some(OutputFormat::JsonSchema {
            name: None,
            schema,
            // Gemini always holds the answer to the schema.
            strict: None,
        }),
        // `text/x.enum` and other types: a shape no other format enforces.
        _ => {
            unmapped(
                unmapped_fields,
                format!("{PATH}.responseMimeType"),
                "response_mime_type",
            );
            None
        }
    })
}

/// `thinkingConfig`: a budget (0 turns thinking off, -1 lets the model
/// decide) or, for Gemini 3, a level.
fn decode_thinking(
    mut thinking: j::Object,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<Reasoning>, ApiError> {
    const PATH: &str = "generationConfig.thinkingConfig";
    if thinking.remove("includeThoughts").is_some() {
        unmapped(
            unmapped_fields,
            format!("{PATH}.includeThoughts"),
            "include_thoughts",
        );
    }
    let level = j::take_string(
        &mut thinking,
        "thinkingLevel",
        &format!("{PATH}.thinkingLevel"),
    )?;
    let budget = match j::take(&mut thinking, "thinkingBudget") {
        None => None,
        Some(value) => Some(value.as_i64().ok_or_else(|| {
            j::wrong_type(&format!("{PATH}.thinkingBudget"), "a whole number", &value)
        })?),
    };
    j::leftovers(&thinking, PATH, FORMAT, unmapped_fields);
    let reasoning = match (budget, level) {
        (Some(0), _) => None,
        (Some(budget), _) if budget > 0 => {
            Some(Reasoning::Budget(u32::try_from(budget).unwrap_or(u32::MAX)))
        }
        // Dynamic thinking: the model thinks as much as it needs.
        (Some(_), _) => Some(Reasoning::Effort(Effort::Medium)),
        (None, Some(level)) => match Effort::parse(&level.to_ascii_lowercase()) {
            Some(effort) => effort.map(Reasoning::Effort),
            None => {
                unmapped(
                    unmapped_fields,
                    format!("{PATH}.thinkingLevel"),
                    "unknown_field",
                );
                None
            }
        },
        (None, None) => None,
    };
    Ok(reasoning)
}

/// Google's OpenAPI schema subset as JSON Schema: type names lower-cased,
/// `nullable` as a `null` type, and Gemini's own `propertyOrdering` left
/// out, so other providers read it.
pub fn openapi_to_json_schema(schema: Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            let nullable = map.get("nullable").and_then(Value::as_bool) == Some(true);
            for (key, value) in map {
                match key.as_str() {
                    "nullable" | "propertyOrdering" => {}
                    "type" => {
                        let name = match value {
                            Value::String(name) => Value::String(name.to_ascii_lowercase()),
                            other => other,
                        };
                        let name = match name {
                            Value::String(name) if nullable => json!([name, "null"]),
                            other => other,
                        };
                        out.insert(key, name);
                    }
                    // Maps of names to schemas: the names are not schemas.
                    "properties" | "$defs" | "definitions" => {
                        let value = match value {
                            Value::Object(props) => Value::Object(
                                props
                                    .into_iter()
                                    .map(|(name, s)| (name, openapi_to_json_schema(s)))
                                    .collect(),
                            ),
                            other => other,
                        };
                        out.insert(key, value);
                    }
                    "items" | "anyOf" | "oneOf" | "allOf" | "not" | "additionalProperties" => {
                        out.insert(key, openapi_to_json_schema(value));
                    }
                    _ => {
                        out.insert(key, value);
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(openapi_to_json_schema).collect())
        }
        other => other,
    }
}
