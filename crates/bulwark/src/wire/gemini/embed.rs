//! Embeddings on Gemini: `:embedContent` for one text, `:batchEmbedContents`
//! for several, `dimensions` as `outputDimensionality`, and the answer
//! turned into OpenAI's shape (Gemini counts no tokens for it: they are
//! estimated).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::unary::embeddings::{EmbeddingsRequest, Inputs, openai_answer};
use crate::unary::{Bodies, UnaryCall};

/// The most texts one `batchEmbedContents` request may carry: more get
/// 400 ("at most 100 requests can be in one batch"), so more are sent as
/// several requests of one attempt.
const MAX_BATCH: usize = 100;

/// The call for `request`; `None` for token arrays, which Gemini cannot
/// embed. Its batch bodies are made one at a time as they are sent.
pub(super) fn call<'a>(
    base_url: &str,
    model: &str,
    request: &'a EmbeddingsRequest,
) -> Option<Result<UnaryCall<'a>, ApiError>> {
    let Inputs::Texts(texts) = &request.inputs else {
        return None;
    };
    let model = match super::upstream::safe_model(model) {
        Ok(model) => model.to_string(),
        Err(error) => return Some(Err(error)),
    };
    let single = texts.len() == 1 && request.body.get("input").is_some_and(Value::is_string);
    let dimensions = request.dimensions;
    let (url, parts, bodies): (String, usize, Bodies<'a>) = if single {
        (
            format!("{base_url}/v1beta/models/{model}:embedContent"),
            1,
            Box::new(move |_| {
                let text = texts.first().map_or("", String::as_str);
                with_dimensions(json!({"content": content(text)}), dimensions)
            }),
        )
    } else {
        let name = format!("models/{model}");
        (
            format!("{base_url}/v1beta/models/{model}:batchEmbedContents"),
            texts.len().div_ceil(MAX_BATCH),
            Box::new(move |part| {
                let requests: Vec<Value> = texts
                    .chunks(MAX_BATCH)
                    .nth(part)
                    .unwrap_or_default()
                    .iter()
                    .map(|text| {
                        with_dimensions(
                            json!({"model": name, "content": content(text)}),
                            dimensions,
                        )
                    })
                    .collect();
                json!({"requests": requests})
            }),
        )
    };
    let encoding = request.encoding;
    let tokens = request.estimated_tokens();
    let expected = texts.len();
    Some(Ok(UnaryCall::new(
        url,
        parts,
        bodies,
        Box::new(move |answers: Vec<Value>| {
            let mut vectors = Vec::with_capacity(expected);
            for answer in &answers {
                if single {
                    vectors.push(values(answer.get("embedding"))?);
                    continue;
                }
                let embeddings = answer
                    .get("embeddings")
                    .and_then(Value::as_array)
                    .ok_or("the batchEmbedContents answer has no `embeddings` list")?;
                for embedding in embeddings {
                    vectors.push(values(Some(embedding))?);
                }
            }
            if vectors.len() != expected {
                return Err(format!(
                    "Gemini answered {} embeddings for {expected} inputs",
                    vectors.len()
                ));
            }
            Ok(openai_answer(vectors, &model, encoding, tokens))
        }),
    )))
}

fn content(text: &str) -> Value {
    json!({"parts": [{"text": text}]})
}

fn with_dimensions(mut body: Value, dimensions: Option<u32>) -> Value {
    if let (Some(d), Some(body)) = (dimensions, body.as_object_mut()) {
        body.insert("outputDimensionality".into(), json!(d));
    }
    body
}

/// One `ContentEmbedding`'s `values`.
fn values(embedding: Option<&Value>) -> Result<Vec<f32>, String> {
    embedding
        .and_then(|e| e.get("values"))
        .and_then(Value::as_array)
        .ok_or("an embedding has no `values`")?
        .iter()
        // JSON numbers are f64; OpenAI's vectors are f32, as base64 carries them.
        .map(|v| {
            v.as_f64()
                .map(|f| f as f32)
                .ok_or("a non-numeric embedding value")
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unary::Encoding;

    fn bodies(call: &UnaryCall<'_>) -> Vec<Value> {
        (0..call.parts).map(|part| call.body(part)).collect()
    }

    fn request(body: Value) -> EmbeddingsRequest {
        match EmbeddingsRequest::decode(body.to_string().as_bytes()) {
            Ok(request) => request,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn one_text_uses_embed_content_with_its_dimensions() {
        let r = request(json!({"model": "r", "input": "hi", "dimensions": 4}));
        let Some(Ok(call)) = call("http://g", "text-embedding-004", &r) else {
            panic!("no call");
        };
        assert_eq!(
            call.url,
            "http://g/v1beta/models/text-embedding-004:embedContent"
        );
        assert_eq!(
            bodies(&call),
            [json!({"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 4})]
        );
        let answer = (call.decode)(vec![json!({"embedding": {"values": [0.5, 1.0]}})]);
        assert_eq!(
            answer.ok().map(|a| a["data"][0]["embedding"].clone()),
            Some(json!([0.5, 1.0]))
        );
    }

    #[test]
    fn several_texts_use_batch_embed_contents_and_base64_when_asked() {
        let r = request(json!({"model": "r", "input": ["a", "b"], "encoding_format": "base64"}));
        assert_eq!(r.encoding, Encoding::Base64);
        let Some(Ok(call)) = call("http://g", "e", &r) else {
            panic!("no call");
        };
        assert_eq!(call.url, "http://g/v1beta/models/e:batchEmbedContents");
        let sent = bodies(&call);
        assert_eq!(sent[0]["requests"][1]["model"], json!("models/e"));
        assert_eq!(
            sent[0]["requests"][1]["content"]["parts"][0]["text"],
            json!("b")
        );
        let answer = (call.decode)(vec![
            json!({"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}),
        ]);
        let Ok(answer) = answer else {
            panic!("refused")
        };
        assert_eq!(answer["data"][0]["embedding"], json!("AACAPw=="));
        assert_eq!(answer["data"][1]["index"], json!(1));
        // One vector for two inputs is a broken answer, not a short one.
        assert!((call.decode)(vec![json!({"embeddings": [{"values": [1.0]}]})]).is_err());
    }

    #[test]
    fn more_than_100_texts_go_as_several_batches_of_one_attempt() {
        let texts: Vec<String> = (0..250).map(|i| format!("t{i}")).collect();
        let r = request(json!({"model": "r", "input": texts}));
        let Some(Ok(call)) = call("http://g", "e", &r) else {
            panic!("no call");
        };
        let sent = bodies(&call);
        let sizes: Vec<usize> = sent
            .iter()
            .map(|b| b["requests"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(
            sent[2]["requests"][0]["content"]["parts"][0]["text"],
            json!("t200")
        );
        let answers: Vec<Value> = sizes
            .iter()
            .enumerate()
            .map(|(batch, &n)| {
                let values: Vec<Value> = (0..n)
                    .map(|i| json!({"values": [(batch * 100 + i) as f64]}))
                    .collect();
                json!({"embeddings": values})
            })
            .collect();
        let Ok(answer) = (call.decode)(answers) else {
            panic!("refused")
        };
        assert_eq!(answer["data"][249]["index"], json!(249));
        assert_eq!(answer["data"][249]["embedding"], json!([249.0]));
    }

    #[test]
    fn token_arrays_and_unsafe_model_names_are_not_sent() {
        assert!(
            call(
                "http://g",
                "e",
                &request(json!({"model": "r", "input": [1, 2]}))
            )
            .is_none()
        );
        let r = request(json!({"model": "r", "input": "x"}));
        assert!(matches!(call("http://g", "../x", &r), Some(Err(_))));
    }
}
