//! Embeddings on Gemini: `:embedContent` for one text, `:batchEmbedContents`
//! for several, `dimensions` as `outputDimensionality`, and the answer
//! turned into OpenAI's shape (Gemini counts no tokens for it: they are
//! estimated).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::unary::UnaryCall;
use crate::unary::embeddings::{EmbeddingsRequest, Inputs, openai_answer};

/// The call for `request`; `None` for token arrays, which Gemini cannot
/// embed.
pub(super) fn call(
    base_url: &str,
    model: &str,
    request: &EmbeddingsRequest,
) -> Option<Result<UnaryCall, ApiError>> {
    let Inputs::Texts(texts) = &request.inputs else {
        return None;
    };
    let model = match super::upstream::safe_model(model) {
        Ok(model) => model.to_string(),
        Err(error) => return Some(Err(error)),
    };
    let content = |text: &str| json!({"parts": [{"text": text}]});
    let with_dimensions = |mut body: Value| {
        if let (Some(d), Some(body)) = (request.dimensions, body.as_object_mut()) {
            body.insert("outputDimensionality".into(), json!(d));
        }
        body
    };
    let single = texts.len() == 1 && request.body.get("input").is_some_and(Value::is_string);
    let (url, body) = if single {
        (
            format!("{base_url}/v1beta/models/{model}:embedContent"),
            with_dimensions(json!({"content": content(&texts[0])})),
        )
    } else {
        let requests: Vec<Value> = texts
            .iter()
            .map(|text| {
                with_dimensions(
                    json!({"model": format!("models/{model}"), "content": content(text)}),
                )
            })
            .collect();
        (
            format!("{base_url}/v1beta/models/{model}:batchEmbedContents"),
            json!({"requests": requests}),
        )
    };
    let encoding = request.encoding;
    let tokens = request.estimated_tokens();
    let expected = texts.len();
    Some(Ok(UnaryCall {
        url,
        body,
        decode: Box::new(move |answer: Value| {
            let vectors = if single {
                vec![values(answer.get("embedding"))?]
            } else {
                answer
                    .get("embeddings")
                    .and_then(Value::as_array)
                    .ok_or("the batchEmbedContents answer has no `embeddings` list")?
                    .iter()
                    .map(|e| values(Some(e)))
                    .collect::<Result<Vec<_>, _>>()?
            };
            if vectors.len() != expected {
                return Err(format!(
                    "Gemini answered {} embeddings for {expected} inputs",
                    vectors.len()
                ));
            }
            Ok(openai_answer(vectors, &model, encoding, tokens))
        }),
    }))
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
            call.body,
            json!({"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 4})
        );
        let answer = (call.decode)(json!({"embedding": {"values": [0.5, 1.0]}}));
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
        assert_eq!(call.body["requests"][1]["model"], json!("models/e"));
        assert_eq!(
            call.body["requests"][1]["content"]["parts"][0]["text"],
            json!("b")
        );
        let answer = (call.decode)(json!({"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}));
        let Ok(answer) = answer else {
            panic!("refused")
        };
        assert_eq!(answer["data"][0]["embedding"], json!("AACAPw=="));
        assert_eq!(answer["data"][1]["index"], json!(1));
        // One vector for two inputs is a broken answer, not a short one.
        assert!((call.decode)(json!({"embeddings": [{"values": [1.0]}]})).is_err());
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
