//! Stored Responses API conversations over HTTP (issue 13):
//! `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`,
//! per client key, with OpenAI's shapes and its 404. Responses are stored
//! through the gateway's own `remember`, as the Responses front door does
//! after an answer.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed setup fails the test"
)]

mod common;

use bulwark_sim::{SimConfig, SimServer};
use serde_json::{Map, Value, json};

const KEY_A: &str = "team-a-key-0123456789";
const KEY_B: &str = "team-b-key-0123456789";

async fn gateway(keys: &str) -> (SimServer, common::Running) {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\", api_key: k }}\nroutes:\n  chat: {{ targets: [p/gpt-4o-mini] }}\n{keys}",
        sim.url()
    );
    let running = common::start_gateway(&yaml).await.unwrap();
    (sim, running)
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn answer(id: &str, text: &str) -> Value {
    json!({"id": id, "object": "response", "created_at": 1_770_000_000, "status": "completed",
        "model": "gpt-4o-mini", "output": [{"type": "message", "id": format!("msg_{id}"),
            "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}]})
}

async fn call(
    method: reqwest::Method,
    url: String,
    key: Option<&str>,
) -> (reqwest::StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

fn openai_404(id: &str) -> Value {
    json!({"error": {"message": format!("Response with id '{id}' not found."),
        "type": "invalid_request_error", "param": null, "code": null}})
}

#[tokio::test]
async fn a_key_reads_lists_and_deletes_only_its_own_responses() {
    let (_sim, running) = gateway(&format!(
        "keys:\n  team-a: {{ key: {KEY_A} }}\n  team-b: {{ key: {KEY_B} }}\n"
    ))
    .await;
    let conversations = running.gateway.conversations();
    let base = &running.base;
    let first = map(json!({"model": "chat", "input": "What is the capital of France?"}));
    conversations
        .remember(Some("team-a"), &first, &answer("resp_1", "Paris."))
        .await;
    let mut second = map(json!({"model": "chat", "previous_response_id": "resp_1",
        "input": [{"type": "message", "role": "user", "content": "And of Spain?"}]}));
    conversations
        .expand(Some("team-a"), &mut second)
        .await
        .unwrap();
    conversations
        .remember(Some("team-a"), &second, &answer("resp_2", "Madrid."))
        .await;

    let get = reqwest::Method::GET;
    let (status, body) = call(
        get.clone(),
        format!("{base}/v1/responses/resp_2"),
        Some(KEY_A),
    )
    .await;
    assert_eq!((status.as_u16(), body), (200, answer("resp_2", "Madrid.")));

    // The whole conversation is listed, newest first, with OpenAI's list shape.
    let (status, list) = call(
        get.clone(),
        format!("{base}/v1/responses/resp_2/input_items"),
        Some(KEY_A),
    )
    .await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    let texts: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["role"].as_str().unwrap(),
                item["content"][0]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("user", "And of Spain?"),
            ("assistant", "Paris."),
            ("user", "What is the capital of France?")
        ]
    );
    assert_eq!(list["first_id"], list["data"][0]["id"]);
    assert_eq!(list["last_id"], list["data"][2]["id"]);
    assert_eq!(
        list["data"][1]["id"], "msg_resp_1",
        "an item keeps its own id"
    );

    let (_, page) = call(
        get.clone(),
        format!("{base}/v1/responses/resp_2/input_items?order=asc&limit=1"),
        Some(KEY_A),
    )
    .await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["role"], "user");
    assert_eq!(
        page["data"][0]["content"][0]["text"],
        "What is the capital of France?"
    );

    // Another key, or none, sees nothing.
    for path in ["resp_2", "resp_2/input_items"] {
        let (status, body) = call(
            get.clone(),
            format!("{base}/v1/responses/{path}"),
            Some(KEY_B),
        )
        .await;
        assert_eq!((status.as_u16(), body), (404, openai_404("resp_2")));
        let (status, body) = call(get.clone(), format!("{base}/v1/responses/{path}"), None).await;
        assert_eq!(status.as_u16(), 401);
        assert_eq!(body["error"]["type"], "authentication_error");
    }
    let delete = reqwest::Method::DELETE;
    let (status, body) = call(
        delete.clone(),
        format!("{base}/v1/responses/resp_1"),
        Some(KEY_B),
    )
    .await;
    assert_eq!((status.as_u16(), body), (404, openai_404("resp_1")));

    let (status, body) = call(
        delete.clone(),
        format!("{base}/v1/responses/resp_1"),
        Some(KEY_A),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body),
        (
            200,
            json!({"id": "resp_1", "object": "response", "deleted": true})
        )
    );
    let (status, body) = call(
        get.clone(),
        format!("{base}/v1/responses/resp_1"),
        Some(KEY_A),
    )
    .await;
    assert_eq!((status.as_u16(), body), (404, openai_404("resp_1")));
    let (status, _) = call(delete, format!("{base}/v1/responses/resp_1"), Some(KEY_A)).await;
    assert_eq!(status.as_u16(), 404);

    // A later response holds its own copy of the history: deleting an
    // earlier one does not break the conversation.
    let mut third = map(json!({"previous_response_id": "resp_2", "input": "And Italy?"}));
    conversations
        .expand(Some("team-a"), &mut third)
        .await
        .unwrap();
    assert_eq!(third["input"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn unknown_ids_and_bad_parameters_answer_in_openai_s_format() {
    let (_sim, running) = gateway("").await;
    let base = &running.base;
    let get = reqwest::Method::GET;
    for path in ["resp_nope", "resp_nope/input_items"] {
        let (status, body) = call(get.clone(), format!("{base}/v1/responses/{path}"), None).await;
        assert_eq!((status.as_u16(), body), (404, openai_404("resp_nope")));
    }
    let (status, body) = call(
        reqwest::Method::DELETE,
        format!("{base}/v1/responses/resp_nope"),
        None,
    )
    .await;
    assert_eq!((status.as_u16(), body), (404, openai_404("resp_nope")));

    running
        .gateway
        .conversations()
        .remember(
            None,
            &map(json!({"input": "hi"})),
            &answer("resp_open", "hello"),
        )
        .await;
    let (status, body) = call(
        get.clone(),
        format!("{base}/v1/responses/resp_open/input_items?limit=500"),
        None,
    )
    .await;
    assert_eq!(status.as_u16(), 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "limit");
    let (status, body) = call(
        get.clone(),
        format!("{base}/v1/responses/resp_open?stream=true"),
        None,
    )
    .await;
    assert_eq!(status.as_u16(), 400);
    assert_eq!(body["error"]["param"], "stream");
    let (status, body) = call(get, format!("{base}/v1/responses/resp_open"), None).await;
    assert_eq!(
        (status.as_u16(), body["id"].as_str()),
        (200, Some("resp_open"))
    );
}
