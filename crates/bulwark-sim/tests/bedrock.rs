//! Amazon Bedrock: Claude's InvokeModel and InvokeModelWithResponseStream,
//! requests signed by AWS's own signer (`aws-sigv4`), streams decoded by
//! AWS's own decoder (`aws-smithy-eventstream`).
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::event_stream::Message;
use base64::Engine;
use bulwark_sim::{BedrockSimConfig, Fault, FaultRule, Format, SimConfig, SimServer};
use common::{Reply, start_with};
use serde_json::{Value, json};

const MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const MODEL_ENCODED: &str = "anthropic.claude-sonnet-4-5-20250929-v1%3A0";
const KEY_ID: &str = "AKIDSIMEXAMPLE";
const SECRET: &str = "sim/secret+KEY0123456789abcdefEXAMPLE";
const REGION: &str = "us-east-1";

fn bedrock(session_token: Option<&str>) -> BedrockSimConfig {
    BedrockSimConfig {
        access_key_id: KEY_ID.into(),
        secret_access_key: SECRET.into(),
        session_token: session_token.map(String::from),
        api_key: Some("bedrock-api-key-sim".into()),
        region: REGION.into(),
    }
}

async fn start(session_token: Option<&str>) -> SimServer {
    start_with(SimConfig {
        bedrock: Some(bedrock(session_token)),
        ..SimConfig::default()
    })
    .await
}

fn body(extra: Value) -> Value {
    let mut base = json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Say hi please"}]
    });
    if let (Some(map), Value::Object(extra)) = (base.as_object_mut(), extra) {
        map.extend(extra);
    }
    base
}

/// How a test request is signed.
struct Signer<'a> {
    key_id: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    region: &'a str,
    time: SystemTime,
}

impl Default for Signer<'_> {
    fn default() -> Self {
        Self {
            key_id: KEY_ID,
            secret: SECRET,
            token: None,
            region: REGION,
            time: SystemTime::now(),
        }
    }
}

fn url(server: &SimServer, model_in_path: &str, action: &str) -> String {
    format!("{}/model/{model_in_path}/{action}", server.url())
}

/// Signs with `aws-sigv4` over `signed_body`, then sends `sent_body` (the
/// same, unless a test tampers with it), with `extra` headers unsigned.
async fn send_signed(
    url: &str,
    signer: &Signer<'_>,
    signed_body: &[u8],
    sent_body: &[u8],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let identity: Identity = Credentials::new(
        signer.key_id,
        signer.secret,
        signer.token.map(String::from),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(signer.region)
        .name("bedrock")
        .time(signer.time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [("content-type", "application/json")];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(signed_body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(sent_body.to_vec());
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn reply(response: reqwest::Response) -> Reply {
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

async fn signed(url: &str, signer: &Signer<'_>, body: &Value, extra: &[(&str, &str)]) -> Reply {
    let bytes = body.to_string().into_bytes();
    reply(send_signed(url, signer, &bytes, &bytes, extra).await).await
}

fn error_type(r: &Reply) -> String {
    let header = r.header("x-amzn-errortype").unwrap_or_default();
    header.split(':').next().unwrap_or_default().to_string()
}

/// Decodes an event-stream body with AWS's decoder.
fn frames(bytes: &[u8]) -> Vec<Message> {
    let mut decoder = MessageFrameDecoder::new();
    let mut buffer = bytes::Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    while let DecodedFrame::Complete(message) = decoder.decode_frame(&mut buffer).unwrap() {
        out.push(message);
    }
    assert!(buffer.is_empty(), "{} bytes left undecoded", buffer.len());
    out
}

fn header<'m>(message: &'m Message, name: &str) -> &'m str {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map_or("", |s| s.as_str())
}

/// The Anthropic event a `chunk` carries.
fn event(message: &Message) -> Value {
    let payload: Value = serde_json::from_slice(message.payload()).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload["bytes"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn stream(
    server: &SimServer,
    extra: &[(&str, &str)],
) -> (reqwest::header::HeaderMap, Vec<Message>) {
    let url = url(server, MODEL_ENCODED, "invoke-with-response-stream");
    let bytes = body(json!({})).to_string().into_bytes();
    let response = send_signed(&url, &Signer::default(), &bytes, &bytes, extra).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, frames(&response.bytes().await.unwrap()))
}

#[tokio::test]
async fn invoke_signed_by_aws_sigv4_answers_claude() {
    let server = start(None).await;
    for path_model in [MODEL_ENCODED, MODEL] {
        let url = url(&server, path_model, "invoke");
        let r = signed(&url, &Signer::default(), &body(json!({})), &[]).await;
        assert_eq!(r.status, 200, "{path_model}: {}", r.text);
        assert!(r.header("x-amzn-requestid").unwrap().starts_with("req_"));
        assert_eq!(r.header("anthropic-ratelimit-requests-limit"), None);
        let v = r.json();
        assert_eq!(v["type"], "message");
        assert_eq!(v["model"], MODEL);
        assert_eq!(
            v["content"][0]["text"],
            format!("Simulated answer from {MODEL}: Say hi please")
        );
    }
    let log = server.sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].path, format!("/model/{MODEL_ENCODED}/invoke"));
    assert_eq!(log[0].model.as_deref(), Some(MODEL));
    assert_eq!(log[0].format, Format::Anthropic);
    assert_eq!(log[0].headers["authorization"], "<redacted>");
    assert!(log[0].auth_present);
}

#[tokio::test]
async fn stream_is_event_stream_of_anthropic_events() {
    let server = start(None).await;
    let (headers, messages) = stream(&server, &[]).await;
    assert_eq!(
        headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert!(!messages.is_empty());
    for m in &messages {
        assert_eq!(header(m, ":event-type"), "chunk");
        assert_eq!(header(m, ":message-type"), "event");
        assert_eq!(header(m, ":content-type"), "application/json");
    }
    let events: Vec<Value> = messages.iter().map(event).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"message_start"));
    assert_eq!(types.last(), Some(&"message_stop"));
    let text: String = events
        .iter()
        .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(
        text,
        format!("Simulated answer from {MODEL}: Say hi please")
    );
    // Bedrock reports the invocation's counts and latencies on the last chunk only.
    let metrics = &events.last().unwrap()["amazon-bedrock-invocationMetrics"];
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(
        metrics["inputTokenCount"], events[0]["message"]["usage"]["input_tokens"],
        "{metrics}"
    );
    assert_eq!(
        metrics["outputTokenCount"], delta["usage"]["output_tokens"],
        "{metrics}"
    );
    assert!(
        metrics["outputTokenCount"].as_u64().unwrap() > 0,
        "{metrics}"
    );
    let first_byte = metrics["firstByteLatency"].as_u64().unwrap();
    assert!(
        metrics["invocationLatency"].as_u64().unwrap() >= first_byte,
        "{metrics}"
    );
    let marked = events
        .iter()
        .filter(|e| e.get("amazon-bedrock-invocationMetrics").is_some())
        .count();
    assert_eq!(marked, 1);
}

#[tokio::test]
async fn stream_faults_end_frames_as_bedrock_does() {
    let server = start(None).await;
    let (_, cut) = stream(&server, &[("x-sim-fault", "cut=4")]).await;
    assert_eq!(cut.len(), 4);
    assert!(cut.iter().all(|m| event(m)["type"] != "message_stop"));

    for (fault, exception) in [
        ("error_event=3:429", "throttlingException"),
        ("error_event=3:500", "internalServerException"),
        ("error_event=3", "serviceUnavailableException"),
    ] {
        let (_, messages) = stream(&server, &[("x-sim-fault", fault)]).await;
        assert_eq!(messages.len(), 4, "{fault}");
        let last = messages.last().unwrap();
        assert_eq!(header(last, ":message-type"), "exception", "{fault}");
        assert_eq!(header(last, ":exception-type"), exception, "{fault}");
        let payload: Value = serde_json::from_slice(last.payload()).unwrap();
        assert!(payload["message"].is_string(), "{fault}: {payload}");
    }
}

#[tokio::test]
async fn tampered_body_wrong_secret_and_unknown_key_are_refused() {
    let server = start(None).await;
    let url = url(&server, MODEL_ENCODED, "invoke");
    let good = body(json!({})).to_string().into_bytes();
    let tampered = body(json!({"max_tokens": 4096})).to_string().into_bytes();
    let r = reply(send_signed(&url, &Signer::default(), &good, &tampered, &[]).await).await;
    assert_eq!(r.status, 403);
    assert_eq!(error_type(&r), "InvalidSignatureException");
    assert!(
        r.header("x-amzn-errortype")
            .unwrap()
            .ends_with(":http://internal.amazon.com/coral/com.amazon.bedrock/")
    );
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("The request signature we calculated does not match"),
        "{message}"
    );
    // What was signed is shown, with the model id's `:` encoded twice.
    assert!(message.contains("%253A0/invoke"), "{message}");
    assert!(!message.contains(SECRET));

    let wrong_secret = Signer {
        secret: "not-the-secret",
        ..Signer::default()
    };
    let r = signed(&url, &wrong_secret, &body(json!({})), &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (403, "InvalidSignatureException")
    );

    let unknown = Signer {
        key_id: "AKIDUNKNOWN",
        ..Signer::default()
    };
    let r = signed(&url, &unknown, &body(json!({})), &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (403, "UnrecognizedClientException")
    );

    let other_region = Signer {
        region: "eu-west-1",
        ..Signer::default()
    };
    let r = signed(&url, &other_region, &body(json!({})), &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (403, "InvalidSignatureException")
    );

    let stale = Signer {
        time: SystemTime::now() - Duration::from_secs(10 * 60),
        ..Signer::default()
    };
    let r = signed(&url, &stale, &body(json!({})), &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (403, "InvalidSignatureException")
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired")
    );

    let unsigned = common::post(&url, &[], &body(json!({}))).await;
    assert_eq!(
        (unsigned.status, error_type(&unsigned).as_str()),
        (403, "MissingAuthenticationTokenException")
    );
    let log = server.sim.requests();
    assert_eq!(log.len(), 6, "refusals are logged too");
    assert!(log.iter().all(|r| r.outcome == "error_403"));
}

#[tokio::test]
async fn session_credentials_need_their_token() {
    let token = "IQoJb3JpZ2luX2VjEXAMPLEsessiontoken";
    let server = start(Some(token)).await;
    let url = url(&server, MODEL_ENCODED, "invoke");
    let with_token = Signer {
        token: Some(token),
        ..Signer::default()
    };
    let r = signed(&url, &with_token, &body(json!({})), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = signed(&url, &Signer::default(), &body(json!({})), &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (403, "UnrecognizedClientException")
    );
    let wrong = Signer {
        token: Some("another-token"),
        ..Signer::default()
    };
    let r = signed(&url, &wrong, &body(json!({})), &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (403, "UnrecognizedClientException")
    );
    let log = server.sim.requests();
    assert_eq!(log[0].headers["x-amz-security-token"], "<redacted>");
    let logged =
        serde_json::to_string(&log.iter().map(|r| &r.headers).collect::<Vec<_>>()).unwrap();
    assert!(!logged.contains(token) && !logged.contains("another-token"));
    assert!(!logged.contains("Signature="), "{logged}");
}

#[tokio::test]
async fn bedrock_api_keys_are_bearer_tokens() {
    let server = start(None).await;
    let url = url(&server, MODEL_ENCODED, "invoke");
    let ok = common::post(
        &url,
        &[("authorization", "Bearer bedrock-api-key-sim")],
        &body(json!({})),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let wrong = common::post(&url, &[("authorization", "Bearer nope")], &body(json!({}))).await;
    assert_eq!(
        (wrong.status, error_type(&wrong).as_str()),
        (403, "UnrecognizedClientException")
    );
}

#[tokio::test]
async fn bodies_are_checked_as_bedrock_checks_them() {
    let server = start(None).await;
    let url = url(&server, MODEL_ENCODED, "invoke");
    let with_model = signed(
        &url,
        &Signer::default(),
        &body(json!({"model": "claude"})),
        &[],
    )
    .await;
    assert_eq!(
        (with_model.status, error_type(&with_model).as_str()),
        (400, "ValidationException")
    );
    assert!(
        with_model.json()["message"]
            .as_str()
            .unwrap()
            .contains("extraneous key [model] is not permitted")
    );
    let mut no_version = body(json!({}));
    no_version
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    let r = signed(&url, &Signer::default(), &no_version, &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (400, "ValidationException")
    );
    let mut no_max = body(json!({}));
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let r = signed(&url, &Signer::default(), &no_max, &[]).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (400, "ValidationException")
    );
    assert!(r.json()["message"].as_str().unwrap().contains("max_tokens"));
}

#[tokio::test]
async fn faults_answer_in_bedrock_shape() {
    let server = start_with(SimConfig::default()).await;
    let url = url(&server, MODEL_ENCODED, "invoke");
    for (fault, status, kind) in [
        ("status=429", 429, "ThrottlingException"),
        ("status=529", 503, "ServiceUnavailableException"),
        ("status=503", 503, "ServiceUnavailableException"),
        ("status=424", 429, "ModelNotReadyException"),
        ("status=500", 500, "InternalServerException"),
        ("status=403", 403, "AccessDeniedException"),
        ("status=404", 404, "ResourceNotFoundException"),
        ("status=400", 400, "ValidationException"),
    ] {
        let r = common::post(&url, &[("x-sim-fault", fault)], &body(json!({}))).await;
        assert_eq!(
            (r.status, error_type(&r).as_str()),
            (status, kind),
            "{fault}"
        );
        assert!(r.json()["message"].is_string(), "{fault}");
        assert!(
            r.json().get("type").is_none(),
            "{fault}: not Anthropic's shape"
        );
    }
    // Rules match Bedrock's requests as format anthropic, by the path's model.
    server.sim.add_fault(
        FaultRule::always(Fault::status(429))
            .for_format(Format::Anthropic)
            .for_model(MODEL)
            .times(1),
    );
    let r = common::post(&url, &[], &body(json!({}))).await;
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (429, "ThrottlingException")
    );
    let r = common::post(&url, &[], &body(json!({}))).await;
    assert_eq!(r.status, 200);
    let unknown = common::post(&format!("{}/model/x/bogus", server.url()), &[], &json!({})).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn converse_answers_in_its_own_shape() {
    let server = start(None).await;
    let url = url(&server, MODEL_ENCODED, "converse");
    let request = json!({
        "messages": [{"role": "user", "content": [{"text": "Weather? sim:call get_weather {\"city\": \"Oslo\"}"}]}],
        "system": [{"text": "Be terse."}],
        "inferenceConfig": {"maxTokens": 512},
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}]}
    });
    let r = signed(&url, &Signer::default(), &request, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["stopReason"], "tool_use");
    let tool = &v["output"]["message"]["content"][0]["toolUse"];
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["input"], json!({"city": "Oslo"}));
    assert!(v["usage"]["totalTokens"].as_u64().unwrap() > 0);
    // The log keeps the Converse body as sent.
    assert_eq!(server.sim.requests()[0].body, request);

    let no_messages = signed(&url, &Signer::default(), &json!({"system": []}), &[]).await;
    assert_eq!(
        (no_messages.status, error_type(&no_messages).as_str()),
        (400, "ValidationException")
    );
}

#[tokio::test]
async fn converse_stream_sends_converse_events() {
    let server = start(None).await;
    let url = url(&server, MODEL_ENCODED, "converse-stream");
    let request = json!({
        "messages": [{"role": "user", "content": [{"text": "Say hi"}]}],
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        "inferenceConfig": {"maxTokens": 2048}
    });
    let bytes = request.to_string().into_bytes();
    let response = send_signed(&url, &Signer::default(), &bytes, &bytes, &[]).await;
    assert_eq!(response.status(), 200);
    let messages = frames(&response.bytes().await.unwrap());
    let names: Vec<&str> = messages.iter().map(|m| header(m, ":event-type")).collect();
    assert_eq!(names.first(), Some(&"messageStart"));
    assert_eq!(&names[names.len() - 2..], ["messageStop", "metadata"]);
    let payloads: Vec<Value> = messages
        .iter()
        .map(|m| serde_json::from_slice(m.payload()).unwrap())
        .collect();
    let text: String = payloads
        .iter()
        .filter_map(|p| p.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, format!("Simulated answer from {MODEL}: Say hi"));
    assert!(
        payloads
            .iter()
            .any(|p| p.pointer("/delta/reasoningContent/signature").is_some())
    );
    assert_eq!(payloads[names.len() - 2]["stopReason"], "end_turn");
}
