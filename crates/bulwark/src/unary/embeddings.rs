//! `POST /v1/embeddings` in OpenAI's shape: the request as the client sent
//! it, read only as far as Bulwark needs (the model, the inputs, the
//! encoding, the dimensions), and the answer in the shape the client asked
//! for, whichever provider made the vectors.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// How the client wants each vector: a JSON array, or (the Python SDK's
/// default) base64 of its little-endian `f32`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Float,
    Base64,
}

/// What is embedded: texts, or (OpenAI only) token arrays.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    Texts(Vec<String>),
    Tokens(Vec<Vec<u64>>),
}

impl Inputs {
    pub fn len(&self) -> usize {
        match self {
            Inputs::Texts(texts) => texts.len(),
            Inputs::Tokens(tokens) => tokens.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    /// The route or `provider/model` the client named.
    pub model: String,
    pub inputs: Inputs,
    pub encoding: Encoding,
    pub dimensions: Option<u32>,
    /// The client's whole body: an OpenAI target is sent it as it is, but
    /// for the model, so that fields Bulwark does not read still arrive.
    pub body: Arc<Map<String, Value>>,
}

impl EmbeddingsRequest {
    /// Reads a client's body; what OpenAI itself refuses is refused here
    /// with its own words, and nothing else is.
    pub fn decode(body: &[u8]) -> Result<EmbeddingsRequest, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::invalid(format!(
                "We could not parse the JSON body of your request. ({e})"
            ))
        })?;
        let Value::Object(body) = value else {
            return Err(ApiError::invalid("the request body must be a JSON object"));
        };
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            _ => {
                return Err(ApiError::invalid_param(
                    "model",
                    "you must provide a model parameter",
                ));
            }
        };
        let inputs = match body.get("input") {
            Some(input) => inputs(input)?,
            None => {
                return Err(ApiError::invalid_param(
                    "input",
                    "you must provide an input parameter",
                ));
            }
        };
        let encoding = match body.get("encoding_format") {
            None | Some(Value::Null) => Encoding::Float,
            Some(Value::String(s)) if s == "float" => Encoding::Float,
            Some(Value::String(s)) if s == "base64" => Encoding::Base64,
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "encoding_format",
                    "`encoding_format` must be `float` or `base64`",
                ));
            }
        };
        let dimensions = match body.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .filter(|&d| d > 0)
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            "dimensions",
                            "`dimensions` must be a positive integer",
                        )
                    })?,
            ),
        };
        Ok(EmbeddingsRequest {
            model,
            inputs,
            encoding,
            dimensions,
            body: Arc::new(body),
        })
    }

    /// A rough count of the tokens embedded, for providers whose answer
    /// carries none (Gemini): four characters a token, as `limit::estimate`.
    pub fn estimated_tokens(&self) -> u64 {
        match &self.inputs {
            Inputs::Texts(texts) => texts.iter().map(|t| (t.len() as u64).div_ceil(4)).sum(),
            Inputs::Tokens(tokens) => tokens.iter().map(|t| t.len() as u64).sum(),
        }
    }
}

/// The most inputs one request may carry: OpenAI's own limit, and what
/// bounds the work (and, on Gemini, the batches) one request can cause.
pub const MAX_INPUTS: usize = 2048;

/// `input`: a string, an array of strings, an array of token ids, or an
/// array of such arrays.
fn inputs(input: &Value) -> Result<Inputs, ApiError> {
    let inputs = any_inputs(input)?;
    if inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid_param(
            "input",
            format!(
                "'$.input' is invalid: an array of at most {MAX_INPUTS} inputs is allowed, got {}",
                inputs.len()
            ),
        ));
    }
    Ok(inputs)
}

fn any_inputs(input: &Value) -> Result<Inputs, ApiError> {
    let wrong = || {
        ApiError::invalid_param(
            "input",
            "`input` must be a string, an array of strings, an array of token ids or an array of token arrays",
        )
    };
    let empty = || ApiError::invalid_param("input", "`input` cannot be empty");
    match input {
        Value::String(text) => Ok(Inputs::Texts(vec![text.clone()])),
        Value::Array(items) if items.is_empty() => Err(empty()),
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(Inputs::Texts(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )),
        Value::Array(items) if items.iter().all(Value::is_u64) => Ok(Inputs::Tokens(vec![
            items.iter().filter_map(Value::as_u64).collect(),
        ])),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(ids) if !ids.is_empty() && ids.iter().all(Value::is_u64) => {
                    Ok(ids.iter().filter_map(Value::as_u64).collect())
                }
                Value::Array(ids) if ids.is_empty() => Err(empty()),
                _ => Err(wrong()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Inputs::Tokens),
        _ => Err(wrong()),
    }
}

/// Vectors made by a provider of another format, in OpenAI's answer: each
/// encoded as the client asked.
pub fn openai_answer(
    vectors: Vec<Vec<f32>>,
    model: &str,
    encoding: Encoding,
    prompt_tokens: u64,
) -> Value {
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = match encoding {
                Encoding::Float => json!(vector),
                Encoding::Base64 => Value::String(base64_floats(&vector)),
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
}

/// A vector as OpenAI sends it with `encoding_format: base64`: its `f32`s,
/// little-endian, in standard base64.
pub fn base64_floats(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An OpenAI-shaped answer's check: a `data` list of embeddings. A server
/// answering anything else has not embedded.
pub fn check_openai_answer(answer: Value) -> Result<Value, String> {
    match answer.get("data") {
        Some(Value::Array(_)) => Ok(answer),
        _ => Err("the embeddings answer has no `data` list".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: Value) -> Result<EmbeddingsRequest, ApiError> {
        EmbeddingsRequest::decode(body.to_string().as_bytes())
    }

    #[test]
    fn every_input_shape_is_read() {
        let one = decode(json!({"model": "m", "input": "hi"})).map(|r| r.inputs);
        assert_eq!(one.ok(), Some(Inputs::Texts(vec!["hi".into()])));
        let many = decode(json!({"model": "m", "input": ["a", "b"]})).map(|r| r.inputs);
        assert_eq!(many.ok(), Some(Inputs::Texts(vec!["a".into(), "b".into()])));
        let ids = decode(json!({"model": "m", "input": [1, 2]})).map(|r| r.inputs);
        assert_eq!(ids.ok(), Some(Inputs::Tokens(vec![vec![1, 2]])));
        let arrays = decode(json!({"model": "m", "input": [[1], [2, 3]]})).map(|r| r.inputs);
        assert_eq!(arrays.ok(), Some(Inputs::Tokens(vec![vec![1], vec![2, 3]])));
    }

    #[test]
    fn what_openai_refuses_is_refused_with_the_field_named() {
        for (body, param) in [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": []}), "input"),
            (json!({"model": "m", "input": [["a"]]}), "input"),
            (json!({"model": "m", "input": 5}), "input"),
            (
                json!({"model": "m", "input": "x", "encoding_format": "hex"}),
                "encoding_format",
            ),
            (
                json!({"model": "m", "input": "x", "dimensions": 0}),
                "dimensions",
            ),
        ] {
            let error = decode(body.clone()).err();
            assert_eq!(
                error.as_ref().and_then(|e| e.param.as_deref()),
                Some(param),
                "{body}"
            );
            assert_eq!(error.map(|e| e.status), Some(400));
        }
        assert!(EmbeddingsRequest::decode(b"not json").is_err());
    }

    #[test]
    fn more_than_2048_inputs_are_refused_as_openai_does() {
        let at_limit = vec![json!("x"); MAX_INPUTS];
        assert!(decode(json!({"model": "m", "input": at_limit})).is_ok());
        for input in [
            json!(vec![json!(""); MAX_INPUTS + 1]),
            json!(vec![json!([1]); MAX_INPUTS + 1]),
        ] {
            let error = decode(json!({"model": "m", "input": input})).err();
            assert_eq!(
                error.as_ref().map(|e| (e.status, e.param.as_deref())),
                Some((400, Some("input")))
            );
        }
        // One array of token ids is one input, however long.
        let ids = vec![json!(1); MAX_INPUTS + 1];
        assert!(decode(json!({"model": "m", "input": ids})).is_ok());
    }

    #[test]
    fn the_encoding_and_dimensions_are_read_and_other_fields_kept() {
        let request = decode(json!({
            "model": "m", "input": "x", "encoding_format": "base64", "dimensions": 8, "user": "u"
        }));
        let Ok(request) = request else {
            panic!("refused");
        };
        assert_eq!(request.encoding, Encoding::Base64);
        assert_eq!(request.dimensions, Some(8));
        assert_eq!(request.body.get("user"), Some(&json!("u")));
    }

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 is 0x3f800000: bytes 00 00 80 3f.
        assert_eq!(base64_floats(&[1.0]), "AACAPw==");
        let answer = openai_answer(vec![vec![1.0, 2.0]], "m", Encoding::Base64, 3);
        assert_eq!(answer["data"][0]["embedding"], json!("AACAPwAAAEA="));
        assert_eq!(answer["usage"]["prompt_tokens"], json!(3));
        let floats = openai_answer(vec![vec![0.5]], "m", Encoding::Float, 1);
        assert_eq!(floats["data"][0]["embedding"], json!([0.5]));
        assert_eq!(floats["data"][0]["index"], json!(0));
    }
}
