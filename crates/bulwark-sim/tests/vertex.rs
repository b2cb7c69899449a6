//! Google Vertex AI: the token endpoint, bearer tokens, and Claude and
//! Gemini at their publisher paths.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup fails the test"
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bulwark_sim::{SimConfig, SimServer, VertexSimConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use common::{Reply, get, post, sse, start_with};

const UNKNOWN_KEY: &str = include_str!("../src/cloud/sim-test-unknown-key.pem");
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const CLAUDE: &str = "claude-sonnet-4-5@20250929";

fn vertex_config(ttl: u64) -> SimConfig {
    SimConfig {
        vertex: Some(VertexSimConfig {
            project: "proj-1".into(),
            region: "us-east5".into(),
            token_ttl_secs: ttl,
            ..VertexSimConfig::default()
        }),
        ..SimConfig::default()
    }
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// The simulator's service-account file and the claims a correct
/// client signs with it.
fn account(server: &SimServer) -> (Value, Value) {
    let token_uri = format!("{}/token", server.url());
    let file: Value = serde_json::from_str(&server.sim.service_account_json(&token_uri)).unwrap();
    let claims = json!({
        "iss": file["client_email"], "aud": token_uri, "scope": SCOPE,
        "iat": now(), "exp": now() + 3600
    });
    (file, claims)
}

fn sign(key_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

async fn exchange(server: &SimServer, assertion: &str) -> Reply {
    let body = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/token", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

async fn token(server: &SimServer) -> String {
    let (file, claims) = account(server);
    let reply = exchange(
        server,
        &sign(file["private_key"].as_str().unwrap(), &claims),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["access_token"].as_str().unwrap().to_string()
}

fn claude_url(server: &SimServer, project: &str, region: &str, action: &str) -> String {
    format!(
        "{}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{CLAUDE}:{action}",
        server.url()
    )
}

fn claude_body(extra: Value) -> Value {
    common::merged(
        json!({
            "anthropic_version": "vertex-2023-10-16",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Say hi please"}]
        }),
        extra,
    )
}

#[tokio::test]
async fn a_signed_assertion_gets_a_token_that_opens_claude() {
    let server = start_with(vertex_config(120)).await;
    let (file, claims) = account(&server);
    let reply = exchange(
        &server,
        &sign(file["private_key"].as_str().unwrap(), &claims),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let grant = reply.json();
    assert_eq!(grant["token_type"], "Bearer");
    assert_eq!(grant["expires_in"], 120);
    let token = grant["access_token"].as_str().unwrap();
    assert_eq!(server.sim.token_grants(), 1);

    let bearer = format!("Bearer {token}");
    let url = claude_url(&server, "proj-1", "us-east5", "rawPredict");
    let r = post(&url, &[("authorization", &bearer)], &claude_body(json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], CLAUDE);
    assert_eq!(
        v["content"][0]["text"],
        format!("Simulated answer from {CLAUDE}: Say hi please")
    );

    let url = claude_url(&server, "proj-1", "us-east5", "streamRawPredict");
    let body = claude_body(json!({"stream": true}));
    let r = post(&url, &[("authorization", &bearer)], &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse(&r.text);
    assert_eq!(events[0].name.as_deref(), Some("message_start"));
    assert_eq!(events.last().unwrap().name.as_deref(), Some("message_stop"));

    let log = server.sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].model.as_deref(), Some(CLAUDE));
    assert!(log[1].stream);
    assert_eq!(log[1].headers["authorization"], "<redacted>");
    let stats: Value = get(&format!("{}/_sim/tokens", server.url()), &[])
        .await
        .json();
    assert_eq!(stats, json!({"grants": 1, "refusals": 0}));
}

#[tokio::test]
async fn bad_assertions_are_refused_as_google_does() {
    let server = start_with(vertex_config(3600)).await;
    let (file, claims) = account(&server);
    let key = file["private_key"].as_str().unwrap();
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("https://example.com/token");
    let mut expired = claims.clone();
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let mut stranger = claims.clone();
    stranger["iss"] = json!("stranger@elsewhere.iam.gserviceaccount.com");
    let cases = [
        (sign(UNKNOWN_KEY, &claims), "Invalid JWT Signature."),
        (sign(key, &wrong_aud), "audience"),
        (sign(key, &expired), "short-lived"),
        (sign(key, &stranger), "account not found"),
    ];
    for (assertion, words) in &cases {
        let r = exchange(&server, assertion).await;
        assert_eq!(r.status, 400, "{words}: {}", r.text);
        let v = r.json();
        assert_eq!(v["error"], "invalid_grant", "{words}");
        let description = v["error_description"].as_str().unwrap();
        assert!(description.contains(words), "{description}");
        assert!(!description.contains(assertion.as_str()));
    }
    assert_eq!(server.sim.token_grants(), 0);
    assert_eq!(server.sim.token_refusals(), 4);
}

#[tokio::test]
async fn missing_forged_and_expired_tokens_are_unauthenticated() {
    let server = start_with(vertex_config(0)).await;
    let expired = format!("Bearer {}", token(&server).await);
    let url = claude_url(&server, "proj-1", "us-east5", "rawPredict");
    // Each says which: a client debugging its refresh needs "expired".
    for (headers, says, expired_said) in [
        (vec![], "missing required authentication credential", false),
        (
            vec![("authorization", "Bearer ya29.forged")],
            "invalid authentication credentials",
            false,
        ),
        (
            vec![("authorization", expired.as_str())],
            "invalid authentication credentials",
            true,
        ),
    ] {
        let r = post(&url, &headers, &claude_body(json!({}))).await;
        assert_eq!(r.status, 401, "{headers:?}: {}", r.text);
        assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(r.json()["error"]["code"], 401);
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(says), "{headers:?}: {message}");
        assert_eq!(
            message.ends_with("The access token has expired."),
            expired_said,
            "{headers:?}: {message}"
        );
    }
    let log = server.sim.requests();
    assert!(log.iter().all(|r| r.outcome == "error_401"));
}

#[tokio::test]
async fn the_token_endpoint_can_be_down() {
    let server = start_with(vertex_config(3600)).await;
    let (file, claims) = account(&server);
    let assertion = sign(file["private_key"].as_str().unwrap(), &claims);
    server.sim.update(|c| {
        if let Some(v) = c.vertex.as_mut() {
            v.token_status = Some(503);
        }
    });
    assert_eq!(exchange(&server, &assertion).await.status, 503);
    server.sim.update(|c| {
        if let Some(v) = c.vertex.as_mut() {
            v.token_status = None;
        }
    });
    assert_eq!(exchange(&server, &assertion).await.status, 200);
    assert_eq!(server.sim.token_grants(), 1);
}

#[tokio::test]
async fn revoked_tokens_stop_working() {
    let server = start_with(vertex_config(3600)).await;
    let bearer = format!("Bearer {}", token(&server).await);
    let url = claude_url(&server, "proj-1", "us-east5", "rawPredict");
    let headers = [("authorization", bearer.as_str())];
    assert_eq!(
        post(&url, &headers, &claude_body(json!({}))).await.status,
        200
    );
    server.sim.revoke_tokens();
    assert_eq!(
        post(&url, &headers, &claude_body(json!({}))).await.status,
        401
    );
}

#[tokio::test]
async fn paths_must_name_the_configured_project_region_and_publisher() {
    let server = start_with(vertex_config(3600)).await;
    let bearer = format!("Bearer {}", token(&server).await);
    let headers = [("authorization", bearer.as_str())];
    let body = claude_body(json!({}));
    let wrong_project = claude_url(&server, "proj-2", "us-east5", "rawPredict");
    let r = post(&wrong_project, &headers, &body).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["error"]["status"], "PERMISSION_DENIED");
    let wrong_region = claude_url(&server, "proj-1", "europe-west1", "rawPredict");
    let r = post(&wrong_region, &headers, &body).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let claude_at_google = format!(
        "{}/v1/projects/proj-1/locations/us-east5/publishers/google/models/{CLAUDE}:generateContent",
        server.url()
    );
    assert_eq!(post(&claude_at_google, &headers, &body).await.status, 404);
    let unknown_method = claude_url(&server, "proj-1", "us-east5", "predict");
    assert_eq!(post(&unknown_method, &headers, &body).await.status, 404);
}

#[tokio::test]
async fn claude_bodies_must_be_vertexs() {
    let server = start_with(SimConfig::default()).await;
    let url = claude_url(&server, "any", "us-east5", "rawPredict");
    let cases = [
        json!({"model": "claude-sonnet-4-5"}),
        json!({"anthropic_version": "bedrock-2023-05-31"}),
        json!({"anthropic_version": null}),
    ];
    for extra in cases {
        let r = post(&url, &[], &claude_body(extra.clone())).await;
        assert_eq!(r.status, 400, "{extra}: {}", r.text);
        let v = r.json();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    // Without a Vertex config nothing but the body is checked.
    assert_eq!(post(&url, &[], &claude_body(json!({}))).await.status, 200);
}

#[tokio::test]
async fn gemini_is_served_in_its_own_format() {
    let server = start_with(vertex_config(3600)).await;
    let bearer = format!("Bearer {}", token(&server).await);
    let headers = [("authorization", bearer.as_str())];
    let base = format!(
        "{}/v1/projects/proj-1/locations/us-east5/publishers/google/models/gemini-2.5-flash",
        server.url()
    );
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Say hi please"}]}]});
    let r = post(&format!("{base}:generateContent"), &headers, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["candidates"][0]["content"]["parts"][0]["text"],
        "Simulated answer from gemini-2.5-flash: Say hi please"
    );
    let r = post(
        &format!("{base}:streamGenerateContent?alt=sse"),
        &headers,
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events = sse(&r.text);
    assert!(events.len() > 1);
    assert_eq!(
        events.last().unwrap().json()["candidates"][0]["finishReason"],
        "STOP"
    );
    let r = post(&format!("{base}:generateContent"), &[], &body).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn faults_apply_at_vertex_paths() {
    let server = start_with(vertex_config(3600)).await;
    let bearer = format!("Bearer {}", token(&server).await);
    let url = claude_url(&server, "proj-1", "us-east5", "rawPredict");
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-sim-fault", "status=529"),
    ];
    let r = post(&url, &headers, &claude_body(json!({}))).await;
    assert_eq!(r.status, 529, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    assert_eq!(server.sim.requests()[0].outcome, "fault_status_529");

    // Claude's rate limits are Vertex's quotas, in Google's shape.
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-sim-fault", "status=429;retry_after=3"),
    ];
    let r = post(&url, &headers, &claude_body(json!({}))).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(r.header("retry-after"), Some("3"));
    assert!(
        r.headers
            .keys()
            .all(|k| !k.as_str().starts_with("anthropic-ratelimit"))
    );
}
