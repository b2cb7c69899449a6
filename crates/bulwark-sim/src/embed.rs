//! Embeddings in OpenAI's and Gemini's shapes. A vector is derived from
//! the text and the model's name alone, the same in every format: a test
//! can tell two models apart, and check that a fallback to the same model
//! at another provider gave the same vectors. Vectors are unit length.

use base64::Engine;
use serde_json::{Value, json};

use crate::format::Format;
use crate::wire::Invalid;

/// Dimensions when the request names none: small, as tests want.
pub(crate) const DEFAULT_DIMENSIONS: usize = 16;
/// More than any real model has; bounds what one request can make the
/// simulator allocate.
const MAX_DIMENSIONS: u64 = 4096;
/// OpenAI's limit on inputs per request.
const MAX_INPUTS: usize = 2048;
/// Gemini's limit on the requests of one `batchEmbedContents`.
const MAX_GEMINI_BATCH: usize = 100;

/// The answer to an embeddings request in `format`, or why it is refused.
pub(crate) fn answer(
    format: Format,
    body: &Value,
    model: &str,
    batch: bool,
) -> Result<Value, Invalid> {
    match format {
        Format::Gemini if batch => gemini_batch(body, model),
        Format::Gemini => {
            let text = gemini_text(body)?;
            let dims = dimensions(body.get("outputDimensionality"), "outputDimensionality")?;
            Ok(json!({"embedding": {"values": vector(model, &text, dims)}}))
        }
        _ => openai(body, model),
    }
}

/// The deterministic unit vector of `text` under `model`.
pub(crate) fn vector(model: &str, text: &str, dims: usize) -> Vec<f32> {
    // FNV-1a over the model, a separator, and the text, then xorshift.
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in model.bytes().chain([0u8]).chain(text.bytes()) {
        state ^= u64::from(byte);
        state = state.wrapping_mul(0x0100_0000_01b3);
    }
    let mut values: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The top 24 bits, as a float in [-1, 1).
            ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for v in &mut values {
            *v /= norm;
        }
    }
    values
}

fn dimensions(value: Option<&Value>, name: &str) -> Result<usize, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_DIMENSIONS),
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| {
                Invalid::param(
                    format!("{name} must be an integer from 1 to {MAX_DIMENSIONS}"),
                    name,
                )
            }),
    }
}

fn openai(body: &Value, model: &str) -> Result<Value, Invalid> {
    if model.is_empty() {
        return Err(Invalid::param(
            "you must provide a model parameter",
            "model",
        ));
    }
    let wrong = || {
        Invalid::param(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            "input",
        )
    };
    let texts: Vec<String> = match body.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_INPUTS => {
            if items.iter().all(Value::is_string) {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            } else if items.iter().all(Value::is_u64) {
                vec![token_text(items)]
            } else {
                items
                    .iter()
                    .map(|item| match item {
                        Value::Array(ids) if !ids.is_empty() && ids.iter().all(Value::is_u64) => {
                            Ok(token_text(ids))
                        }
                        _ => Err(wrong()),
                    })
                    .collect::<Result<_, _>>()?
            }
        }
        None => {
            return Err(Invalid::param(
                "you must provide an input parameter",
                "input",
            ));
        }
        _ => return Err(wrong()),
    };
    let base64 = match body.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => {
            return Err(Invalid::param(
                "encoding_format must be one of 'float' or 'base64'",
                "encoding_format",
            ));
        }
    };
    let dims = dimensions(body.get("dimensions"), "dimensions")?;
    let tokens: u64 = texts
        .iter()
        .map(|t| t.split_whitespace().count().max(1) as u64)
        .sum();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = vector(model, text, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// Token ids embedded as their decimal text: deterministic, and distinct
/// from any text a test would send.
fn token_text(ids: &[Value]) -> String {
    let ids: Vec<String> = ids.iter().map(Value::to_string).collect();
    format!("tokens:{}", ids.join(","))
}

/// The text of a Gemini `content`: its parts' texts, joined.
fn content_text(content: Option<&Value>) -> Result<String, Invalid> {
    let parts = content
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .filter(|parts| !parts.is_empty())
        .ok_or_else(|| Invalid::param("* content: parts must not be empty", "content"))?;
    Ok(parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(""))
}

fn gemini_text(body: &Value) -> Result<String, Invalid> {
    content_text(body.get("content"))
}

fn gemini_batch(body: &Value, model: &str) -> Result<Value, Invalid> {
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            Invalid::param("* BatchEmbedContentsRequest.requests: required", "requests")
        })?;
    if requests.len() > MAX_GEMINI_BATCH {
        return Err(Invalid::param(
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
            "requests",
        ));
    }
    let path_model = format!("models/{model}");
    let embeddings = requests
        .iter()
        .map(|request| {
            let named = request.get("model").and_then(Value::as_str);
            if named != Some(path_model.as_str()) {
                return Err(Invalid::param(
                    format!(
                        "Model {} does not match the model of the batch request ({path_model}).",
                        named.unwrap_or("(none)")
                    ),
                    "requests.model",
                ));
            }
            let text = content_text(request.get("content"))?;
            let dims = dimensions(request.get("outputDimensionality"), "outputDimensionality")?;
            Ok(json!({"values": vector(model, &text, dims)}))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"embeddings": embeddings}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_depend_on_the_text_and_the_model_only() {
        let a = vector("m1", "hello", 8);
        assert_eq!(a, vector("m1", "hello", 8));
        assert_ne!(a, vector("m2", "hello", 8));
        assert_ne!(a, vector("m1", "hellp", 8));
        let norm: f32 = a.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }

    #[test]
    fn openai_and_gemini_give_the_same_vectors_for_the_same_model() {
        let openai = answer(
            Format::OpenAi,
            &json!({"model": "e", "input": ["x"]}),
            "e",
            false,
        );
        let gemini = answer(
            Format::Gemini,
            &json!({"content": {"parts": [{"text": "x"}]}}),
            "e",
            false,
        );
        let (Ok(openai), Ok(gemini)) = (openai, gemini) else {
            panic!("refused");
        };
        assert_eq!(
            openai["data"][0]["embedding"],
            gemini["embedding"]["values"]
        );
    }

    #[test]
    fn base64_batches_and_refusals() {
        let Ok(b64) = answer(
            Format::OpenAi,
            &json!({"model": "e", "input": "x", "encoding_format": "base64", "dimensions": 4}),
            "e",
            false,
        ) else {
            panic!("refused");
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64["data"][0]["embedding"].as_str().unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(bytes.len(), 16);
        let batch = answer(
            Format::Gemini,
            &json!({"requests": [
                {"model": "models/e", "content": {"parts": [{"text": "a"}]}},
                {"model": "models/e", "content": {"parts": [{"text": "b"}]}},
            ]}),
            "e",
            true,
        );
        assert_eq!(
            batch.ok().map(|b| b["embeddings"].as_array().map(Vec::len)),
            Some(Some(2))
        );
        let wrong_model = answer(
            Format::Gemini,
            &json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]}),
            "e",
            true,
        );
        assert!(wrong_model.is_err());
        let one: Value = json!({"model": "models/e", "content": {"parts": [{"text": "a"}]}});
        let too_many = answer(
            Format::Gemini,
            &json!({"requests": vec![one; 101]}),
            "e",
            true,
        );
        assert!(too_many.is_err_and(|e| e.message.contains("at most 100 requests")));
        assert!(answer(Format::OpenAi, &json!({"model": "e"}), "e", false).is_err());
        assert!(
            answer(
                Format::OpenAi,
                &json!({"model": "e", "input": []}),
                "e",
                false
            )
            .is_err()
        );
    }
}
