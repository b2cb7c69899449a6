//! Request ids (issue #15, "logs for machines"): every request to a front
//! door has one, the client's `x-request-id` when it is sane or one made
//! by Bulwark, returned on every answer and written into the request log.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup fails the test"
)]

mod common;

use bulwark::observe::record::RequestRecord;
use bulwark_gateway::{MAX_REQUEST_ID_BYTES, REQUEST_ID_HEADER};
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
use reqwest::header::HeaderValue;
use serde_json::json;

async fn logged(running: &common::Running) -> Vec<RequestRecord> {
    let observer = running.gateway.observer();
    observer.flush().await;
    observer
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap()
}

fn body(stream: bool) -> String {
    json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
        .to_string()
}

fn post(base: &str, id: Option<HeaderValue>, body: String) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body);
    match id {
        Some(id) => request.header(REQUEST_ID_HEADER, id),
        None => request,
    }
}

fn returned_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(REQUEST_ID_HEADER)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// An id Bulwark made: the log row's own, `req_` and 16 hex digits.
fn is_made(id: &str) -> bool {
    id.strip_prefix("req_")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn a_sane_client_id_comes_back_and_is_logged_beside_the_rows_own() {
    let (_sim, running) = common::gateway_to_one_sim().await.unwrap();
    let sent = "client-abc_123 trace=7f";
    let response = post(
        &running.base,
        Some(HeaderValue::from_static(sent)),
        body(false),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(returned_id(&response), sent);
    response.text().await.unwrap();

    let rows = logged(&running).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].client_request_id.as_deref(), Some(sent));
    assert!(
        is_made(&rows[0].id),
        "the row keeps a unique id of its own: {}",
        rows[0].id
    );
}

#[tokio::test]
async fn a_stream_head_carries_the_id() {
    let (_sim, running) = common::gateway_to_one_sim().await.unwrap();
    let response = post(
        &running.base,
        Some(HeaderValue::from_static("stream-id-1")),
        body(true),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    assert_eq!(returned_id(&response), "stream-id-1");
    response.text().await.unwrap();

    let rows = logged(&running).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].client_request_id.as_deref(), Some("stream-id-1"));
}

#[tokio::test]
async fn without_an_id_one_is_made_and_it_is_the_log_rows_id() {
    let (_sim, running) = common::gateway_to_one_sim().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = post(&running.base, None, body(false)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        ids.push(returned_id(&response));
        response.text().await.unwrap();
    }
    assert!(ids.iter().all(|id| is_made(id)), "{ids:?}");
    assert_ne!(ids[0], ids[1], "each request has its own id");

    let mut logged_ids: Vec<String> = logged(&running).await.into_iter().map(|r| r.id).collect();
    logged_ids.sort();
    ids.sort();
    assert_eq!(logged_ids, ids, "the id returned is the log row's");
}

#[tokio::test]
async fn an_insane_id_is_ignored_and_one_is_made() {
    let (_sim, running) = common::gateway_to_one_sim().await.unwrap();
    let too_long = "a".repeat(MAX_REQUEST_ID_BYTES + 1);
    let insane = [
        HeaderValue::from_str(&too_long).unwrap(),
        HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        HeaderValue::from_bytes(b"tab\there").unwrap(),
        HeaderValue::from_bytes(b"raw\xffbyte").unwrap(),
        HeaderValue::from_static(""),
    ];
    for id in insane {
        let response = post(&running.base, Some(id.clone()), body(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let returned = returned_id(&response);
        assert!(is_made(&returned), "{id:?} was not replaced: {returned}");
        response.text().await.unwrap();
    }
    // The longest sane id is kept whole.
    let longest = "b".repeat(MAX_REQUEST_ID_BYTES);
    let response = post(
        &running.base,
        Some(HeaderValue::from_str(&longest).unwrap()),
        body(false),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(returned_id(&response), longest);
    response.text().await.unwrap();

    let rows = logged(&running).await;
    assert_eq!(rows.len(), 6);
    let kept: Vec<_> = rows
        .iter()
        .filter_map(|r| r.client_request_id.as_deref())
        .collect();
    assert_eq!(kept, [longest.as_str()], "no insane id reached the log");
}

#[tokio::test]
async fn every_error_carries_the_id() {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: anthropic, base_url: \"{}\", api_key: k }}\nroutes:\n  chat: {{ targets: [p/claude-sonnet-4-5], max_retries: 0 }}\nkeys:\n  small: {{ key: small-key-0123456789, limits: {{ rpm: 1 }} }}\n  big: {{ key: big-key-012345678901 }}\n",
        sim.url()
    );
    let running = common::start_gateway(&yaml).await.unwrap();
    let send = |id: &'static str, key: Option<&str>, body: String| {
        let request = post(&running.base, Some(HeaderValue::from_static(id)), body);
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
        .send()
    };

    let mut seen = Vec::new();
    for (id, key, body, status) in [
        ("no-key", None, body(false), 401),
        (
            "bad-json",
            Some("small-key-0123456789"),
            "{".to_string(),
            400,
        ),
        ("first", Some("small-key-0123456789"), body(false), 200),
        ("over-quota", Some("small-key-0123456789"), body(false), 429),
    ] {
        let response = send(id, key, body).await.unwrap();
        assert_eq!(response.status(), status, "{id}");
        assert_eq!(returned_id(&response), id, "{status}");
        response.text().await.unwrap();
        seen.push(id);
    }

    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let response = send("upstream-down", Some("big-key-012345678901"), body(false))
        .await
        .unwrap();
    assert!(response.status().is_server_error(), "{}", response.status());
    assert_eq!(returned_id(&response), "upstream-down");
    response.text().await.unwrap();
    seen.push("upstream-down");

    let mut logged_ids: Vec<String> = logged(&running)
        .await
        .into_iter()
        .filter_map(|r| r.client_request_id)
        .collect();
    logged_ids.sort();
    seen.sort();
    assert_eq!(logged_ids, seen, "refusals are logged with their id too");
}
