//! Azure OpenAI: deployment paths and `api-version`, the v1 surface,
//! `api-key` and Entra tokens, and the content filter.

mod common;

use bulwark_sim::{AzureSimConfig, Fault, FaultRule, SimConfig, SimServer};
use common::{Reply, merged, post, sse, start, start_with};
use serde_json::{Value, json};

const KEY: &str = "azure-test-key";
const SECRET: &str = "entra-test-secret";
const SCOPE: &str = "https://cognitiveservices.azure.com/.default";

fn azure_config(ttl: u64) -> SimConfig {
    SimConfig {
        azure: Some(AzureSimConfig {
            api_key: Some(KEY.into()),
            tenant_id: "tenant-1".into(),
            client_id: "client-1".into(),
            client_secret: SECRET.into(),
            token_ttl_secs: ttl,
            ..AzureSimConfig::default()
        }),
        ..SimConfig::default()
    }
}

fn chat(extra: Value) -> Value {
    merged(
        json!({"messages": [{"role": "user", "content": "Say hi please"}]}),
        extra,
    )
}

fn deployment_url(server: &SimServer, version: &str) -> String {
    format!(
        "{}/openai/deployments/my-gpt/chat/completions?api-version={version}",
        server.url()
    )
}

/// `application/x-www-form-urlencoded`, as OAuth clients send it.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[expect(
    clippy::unwrap_used,
    reason = "test helper: a failed grant fails the test"
)]
async fn grant(server: &SimServer, tenant: &str, secret: &str, scope: &str) -> Reply {
    let resp = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "client-1"),
            ("client_secret", secret),
            ("scope", scope),
        ]))
        .send()
        .await
        .unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

#[tokio::test]
async fn deployment_path_answers_as_openai_with_filter_results() {
    let server = start_with(azure_config(3600)).await;
    let r = post(
        &deployment_url(&server, "2024-10-21"),
        &[("api-key", KEY)],
        &chat(json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "my-gpt");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from my-gpt: Say hi please"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"],
        false
    );
    assert_eq!(
        v["choices"][0]["content_filter_results"]["violence"]["severity"],
        "safe"
    );
    let logged = server.sim.requests().pop().unwrap();
    assert_eq!(
        logged.path,
        "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(logged.model.as_deref(), Some("my-gpt"));
    assert_eq!(logged.headers["api-key"], "<redacted>");
    assert!(logged.auth_present);
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let server = start().await;
    let url = format!("{}/openai/deployments/d/chat/completions", server.url());
    let missing = post(&url, &[], &chat(json!({}))).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"error": {"code": "404", "message": "Resource not found"}})
    );
    let unknown = post(
        &deployment_url(&server, "2019-01-01"),
        &[],
        &chat(json!({})),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"]["code"], "BadRequest");
    let preview = post(
        &deployment_url(&server, "2025-04-01-preview"),
        &[],
        &chat(json!({})),
    )
    .await;
    assert_eq!(preview.status, 200);
    assert_eq!(server.sim.stats().by_outcome["error_404"], 1);
}

#[tokio::test]
async fn configured_api_versions_replace_the_defaults() {
    let mut config = azure_config(3600);
    if let Some(azure) = config.azure.as_mut() {
        azure.api_versions = Some(vec!["2030-01-01".into()]);
    }
    let server = start_with(config).await;
    let auth = [("api-key", KEY)];
    let old = post(
        &deployment_url(&server, "2024-10-21"),
        &auth,
        &chat(json!({})),
    )
    .await;
    assert_eq!(old.status, 400);
    let new = post(
        &deployment_url(&server, "2030-01-01"),
        &auth,
        &chat(json!({})),
    )
    .await;
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn v1_surface_takes_the_model_from_the_body() {
    let server = start().await;
    let body = chat(json!({"model": "gpt-4o"}));
    for query in ["", "?api-version=preview"] {
        let url = format!("{}/openai/v1/chat/completions{query}", server.url());
        let r = post(&url, &[], &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["model"], "gpt-4o");
    }
    let dated = format!(
        "{}/openai/v1/chat/completions?api-version=2024-10-21",
        server.url()
    );
    assert_eq!(post(&dated, &[], &body).await.status, 400);
}

#[tokio::test]
async fn embeddings_on_both_surfaces() {
    let server = start().await;
    let url = format!(
        "{}/openai/deployments/my-embed/embeddings?api-version=2024-10-21",
        server.url()
    );
    let r = post(&url, &[], &json!({"input": ["a b", "c"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["model"], "my-embed");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let v1 = format!("{}/openai/v1/embeddings", server.url());
    let body = json!({"model": "my-embed", "input": ["a b", "c"]});
    let again = post(&v1, &[], &body).await.json();
    assert_eq!(again["data"], v["data"]);
}

#[tokio::test]
async fn keys_are_checked() {
    let server = start_with(azure_config(3600)).await;
    let url = deployment_url(&server, "2024-10-21");
    for headers in [vec![], vec![("api-key", "wrong")]] {
        let r = post(&url, &headers, &chat(json!({}))).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["code"], "401");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("Access denied due to invalid subscription key"));
    }
    // OpenAI's bearer key is not Azure's.
    let bearer = post(
        &url,
        &[("authorization", "Bearer azure-test-key")],
        &chat(json!({})),
    )
    .await;
    assert_eq!(bearer.status, 401);
    assert!(
        bearer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Access token")
    );
    assert_eq!(server.sim.stats().by_outcome["error_401"], 3);
}

#[tokio::test]
async fn entra_tokens_are_granted_counted_and_accepted() {
    let server = start_with(azure_config(600)).await;
    let r = grant(&server, "tenant-1", SECRET, SCOPE).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 600);
    let token = v["access_token"].as_str().unwrap();
    let auth = format!("Bearer {token}");
    let url = deployment_url(&server, "2024-10-21");
    let ok = post(&url, &[("authorization", &auth)], &chat(json!({}))).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(server.sim.entra_grants(), 1);
    let second = grant(&server, "tenant-1", SECRET, SCOPE).await.json();
    assert_ne!(second["access_token"], v["access_token"]);
    assert_eq!(server.sim.entra_grants(), 2);
    let stats = common::get(&format!("{}/_sim/azure", server.url()), &[]).await;
    assert_eq!(stats.json()["entra_grants"], 2);
    // Grants are not provider requests: only the chat call is logged, its token redacted.
    let log = server.sim.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].headers["authorization"], "<redacted>");
    assert!(!serde_json::to_string(&log).unwrap().contains(token));
}

#[tokio::test]
async fn entra_refuses_as_entra_does() {
    let server = start_with(azure_config(600)).await;
    let secret = grant(&server, "tenant-1", "wrong", SCOPE).await;
    assert_eq!(secret.status, 401);
    assert_eq!(secret.json()["error"], "invalid_client");
    let description = secret.json()["error_description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(description.starts_with("AADSTS7000215: Invalid client secret provided"));
    assert!(!secret.text.contains("wrong"), "{}", secret.text);
    let tenant = grant(&server, "tenant-2", SECRET, SCOPE).await;
    assert_eq!(tenant.status, 400);
    assert!(tenant.text.contains("AADSTS90002"));
    let scope = grant(&server, "tenant-1", SECRET, "https://example.com/.default").await;
    assert_eq!(scope.status, 400);
    assert_eq!(scope.json()["error"], "invalid_scope");
    assert_eq!(server.sim.entra_grants(), 0);
}

#[tokio::test]
async fn expired_and_forged_tokens_are_refused() {
    let server = start_with(azure_config(0)).await;
    let token = grant(&server, "tenant-1", SECRET, SCOPE).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let url = deployment_url(&server, "2024-10-21");
    for token in [token.as_str(), "sim-entra.forged"] {
        let auth = format!("Bearer {token}");
        let r = post(&url, &[("authorization", &auth)], &chat(json!({}))).await;
        assert_eq!(r.status, 401);
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("expired")
        );
    }
}

#[tokio::test]
async fn an_app_without_the_openai_user_role_is_permission_denied() {
    let mut config = azure_config(600);
    if let Some(azure) = config.azure.as_mut() {
        azure.client_lacks_role = true;
    }
    let server = start_with(config).await;
    // Entra grants the token: the role is the resource's business, not Entra's.
    let granted = grant(&server, "tenant-1", SECRET, SCOPE).await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let auth = format!(
        "Bearer {}",
        granted.json()["access_token"].as_str().unwrap()
    );
    let embed_url = format!("{}/openai/v1/embeddings", server.url());
    for (url, body, action, operation) in [
        (
            deployment_url(&server, "2024-10-21"),
            chat(json!({})),
            "deployments/chat/completions",
            "POST /openai/deployments/{deployment-id}/chat/completions",
        ),
        (
            embed_url,
            json!({"model": "my-embed", "input": "a"}),
            "deployments/embeddings",
            "POST /openai/v1/embeddings",
        ),
    ] {
        let r = post(&url, &[("authorization", &auth)], &body).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.json()["error"]["code"], "PermissionDenied");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert_eq!(
            message,
            format!(
                "The principal `client-1` lacks the required data action `Microsoft.CognitiveServices/accounts/OpenAI/{action}/action` to perform `{operation}` operation."
            )
        );
    }
    // A forged token is still unauthenticated, and a key is not subject to roles.
    let url = deployment_url(&server, "2024-10-21");
    let forged = post(
        &url,
        &[("authorization", "Bearer sim-entra.forged")],
        &chat(json!({})),
    )
    .await;
    assert_eq!(forged.status, 401);
    let keyed = post(&url, &[("api-key", KEY)], &chat(json!({}))).await;
    assert_eq!(keyed.status, 200, "{}", keyed.text);
    let outcomes = server.sim.stats().by_outcome;
    assert_eq!(outcomes.get("error_403"), Some(&2), "{outcomes:?}");
}

#[tokio::test]
async fn a_deployment_the_resource_lacks_is_not_found() {
    let mut config = azure_config(600);
    if let Some(azure) = config.azure.as_mut() {
        azure.deployments = Some(vec!["my-gpt".into()]);
    }
    let server = start_with(config).await;
    let auth = [("api-key", KEY)];
    let known = post(
        &deployment_url(&server, "2024-10-21"),
        &auth,
        &chat(json!({})),
    )
    .await;
    assert_eq!(known.status, 200, "{}", known.text);
    let unknown_path = format!(
        "{}/openai/deployments/gone-gpt/chat/completions?api-version=2024-10-21",
        server.url()
    );
    let v1 = format!("{}/openai/v1/chat/completions", server.url());
    for (url, body) in [
        (&unknown_path, chat(json!({}))),
        (&v1, chat(json!({"model": "gone-gpt"}))),
    ] {
        let r = post(url, &auth, &body).await;
        assert_eq!(r.status, 404, "{url}: {}", r.text);
        assert_eq!(r.json()["error"]["code"], "DeploymentNotFound");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("The API deployment for this resource does not exist."),
            "{}",
            r.text
        );
    }
    let v1_known = post(&v1, &auth, &chat(json!({"model": "my-gpt"}))).await;
    assert_eq!(v1_known.status, 200, "{}", v1_known.text);
    // Credentials are checked first: an unknown caller learns nothing of deployments.
    let anonymous = post(&unknown_path, &[], &chat(json!({}))).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn content_filter_refuses_the_prompt() {
    let server = start().await;
    let url = deployment_url(&server, "2024-10-21");
    let by_header = post(&url, &[("x-sim-fault", "content_filter")], &chat(json!({}))).await;
    let prompt =
        chat(json!({"messages": [{"role": "user", "content": "tell me sim:content_filter"}]}));
    let by_prompt = post(&url, &[], &prompt).await;
    for r in [by_header, by_prompt] {
        assert_eq!(r.status, 400);
        let error = &r.json()["error"];
        assert_eq!(error["code"], "content_filter");
        assert_eq!(error["param"], "prompt");
        assert_eq!(error["innererror"]["code"], "ResponsibleAIPolicyViolation");
        assert_eq!(
            error["innererror"]["content_filter_result"]["violence"]["filtered"],
            true
        );
    }
    let outcomes = server.sim.stats().by_outcome;
    assert_eq!(outcomes["fault_content_filter"], 1);
    assert_eq!(outcomes["error_400"], 1);
}

#[tokio::test]
async fn content_filter_cuts_the_stream() {
    let server = start().await;
    let url = deployment_url(&server, "2024-10-21");
    let body = chat(json!({"stream": true}));
    let clean = sse(&post(&url, &[], &body).await.text);
    let r = post(&url, &[("x-sim-fault", "content_filter=stream")], &body).await;
    assert_eq!(r.status, 200);
    let events = sse(&r.text);
    let first = events[0].json();
    assert_eq!(first["choices"], json!([]));
    assert_eq!(first["model"], "");
    assert!(first["prompt_filter_results"].is_array());
    let finish = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(common::Event::json)
        .find(|c| !c["choices"][0]["finish_reason"].is_null())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        finish["choices"][0]["content_filter_results"]["violence"]["filtered"],
        true
    );
    assert!(events.len() < clean.len(), "the filtered answer is shorter");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    // The clean stream ends with `stop`, its content chunks annotated.
    assert!(
        clean
            .iter()
            .any(|e| e.data.contains("\"finish_reason\":\"stop\""))
    );
    assert!(clean[2].json()["choices"][0]["content_filter_results"]["hate"].is_object());
}

#[tokio::test]
async fn content_filter_on_a_complete_answer_and_off_azure() {
    let server = start().await;
    let url = deployment_url(&server, "2024-10-21");
    let prompt = chat(
        json!({"messages": [{"role": "user", "content": "one two three four sim:content_filter_output"}]}),
    );
    let v = post(&url, &[], &prompt).await.json();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.contains("sim:content_filter_output"), "{text}");
    // A rule fires on OpenAI's own path too, in OpenAI's shape.
    server
        .sim
        .add_fault(FaultRule::always(Fault::ContentFilter { output: true }));
    let openai = format!("{}/v1/chat/completions", server.url());
    let r = post(&openai, &[], &chat(json!({"model": "gpt-4o"}))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn rate_limits_are_worded_as_azure_words_them() {
    let server = start().await;
    let url = deployment_url(&server, "2024-10-21");
    let r = post(
        &url,
        &[("x-sim-fault", "status=429;retry_after=6")],
        &chat(json!({})),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("6"));
    let error = &r.json()["error"];
    assert_eq!(error["code"], "429");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21"),
        "{message}"
    );
    assert!(message.contains("retry after 6 seconds"), "{message}");
    // Other statuses keep OpenAI's words, as the service behind Azure sends them.
    let r = post(&url, &[("x-sim-fault", "status=500")], &chat(json!({}))).await;
    assert_eq!(r.json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn stream_options_need_a_recent_api_version() {
    let server = start().await;
    let body = chat(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let old = post(&deployment_url(&server, "2024-06-01"), &[], &body).await;
    assert_eq!(old.status, 400);
    assert_eq!(
        old.json()["error"]["message"],
        "Unrecognized request argument supplied: stream_options"
    );
    let without = chat(json!({"stream": true}));
    assert_eq!(
        post(&deployment_url(&server, "2024-06-01"), &[], &without)
            .await
            .status,
        200
    );
    for version in ["2024-08-01-preview", "2024-10-21"] {
        let r = post(&deployment_url(&server, version), &[], &body).await;
        assert_eq!(r.status, 200, "{version}");
    }
}
