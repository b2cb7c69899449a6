//! What the test binaries that drive the in-process `Client` against
//! upstreams on 127.0.0.1 build the same way: the client from YAML, and a
//! plain request to route `main`.

use bulwark::api::{ChatRequest, Message, Role};
use bulwark::{Client, Config};

/// A client from `yaml`, with no environment variables.
pub fn client_from_yaml(yaml: &str) -> Result<Client, Box<dyn std::error::Error>> {
    Ok(Client::from_config(&Config::from_yaml(
        yaml,
        "test",
        &|_| None,
    )?)?)
}

/// A request to route `main`: one user message `text`, at most `max_tokens`.
pub fn request(text: &str, max_tokens: u32) -> ChatRequest {
    let mut request = ChatRequest::new("main", vec![Message::text(Role::User, text)]);
    request.max_tokens = Some(max_tokens);
    request
}
