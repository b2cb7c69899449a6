//! The two front doors. Each decodes its format, runs the request through the
//! engine, and answers in the same format.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use bulwark::api::ChatRequest;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::wire::{anthropic, openai};

use crate::Gateway;
use crate::respond;

/// The wire format a client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFormat {
    OpenAi,
    Anthropic,
}

impl ClientFormat {
    fn decode(self, body: &[u8]) -> Result<ChatRequest, ApiError> {
        match self {
            ClientFormat::OpenAi => openai::decode_request(body),
            ClientFormat::Anthropic => anthropic::decode_request(body),
        }
    }
}

pub async fn openai(
    State(gateway): State<Gateway>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(gateway, ClientFormat::OpenAi, body).await
}

pub async fn anthropic(
    State(gateway): State<Gateway>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(gateway, ClientFormat::Anthropic, body).await
}

async fn handle(
    gateway: Gateway,
    format: ClientFormat,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return respond::error(
                format,
                &body_error(&rejection, gateway.max_request_bytes),
                0,
            );
        }
    };
    let request = match format.decode(&body) {
        Ok(request) => request,
        Err(error) => return respond::error(format, &error, 0),
    };
    if request.stream {
        let include_usage = request.include_usage;
        match gateway.client.stream(request).await {
            Ok(served) => respond::stream(format, served, include_usage),
            Err(failed) => respond::error(format, &failed.error, failed.attempts),
        }
    } else {
        match gateway.client.chat(request).await {
            Ok(served) => respond::complete(format, served),
            Err(failed) => respond::error(format, &failed.error, failed.attempts),
        }
    }
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status().as_u16() == 413 {
        ApiError::new(
            ErrorKind::RequestTooLarge,
            format!(
                "the request body is larger than this gateway's limit of {limit} bytes (config key `max_request_bytes`)"
            ),
        )
    } else {
        ApiError::invalid(format!("the request body could not be read: {rejection}"))
    }
}
