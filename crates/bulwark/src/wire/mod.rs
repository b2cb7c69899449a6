//! One module per wire format: decode and encode requests, responses, SSE
//! streams and error bodies. `json` holds the field readers they share.

pub mod anthropic;
pub mod gemini;
pub mod json;
pub mod openai;

use crate::api::{ChatRequest, Role};
use crate::error::ApiError;

/// Splits leading system messages from the conversation. Anthropic and Gemini
/// take system instructions once, before the conversation, so a system
/// message later on cannot be expressed there.
pub(crate) fn leading_system(
    request: &ChatRequest,
    format_name: &str,
) -> Result<(Option<String>, usize), ApiError> {
    let mut parts = Vec::new();
    let mut first_turn = 0;
    for message in &request.messages {
        if message.role != Role::System {
            break;
        }
        parts.push(message.joined_text());
        first_turn += 1;
    }
    if let Some(position) = request.messages[first_turn..]
        .iter()
        .position(|m| m.role == Role::System)
    {
        return Err(ApiError::invalid_param(
            format!("messages[{}]", first_turn + position),
            format!(
                "{format_name} accepts system instructions only before the conversation; move this system message to the start"
            ),
        ));
    }
    let system = (!parts.is_empty()).then(|| parts.join("\n\n"));
    Ok((system, first_turn))
}

/// The error for fields the target's format has no way to express.
pub(crate) fn untranslatable(fields: &[String], format_name: &str) -> ApiError {
    ApiError::invalid_param(
        fields.join(", "),
        format!(
            "{} cannot be expressed in the {format_name} format of this route's target; remove {} or route the request to a provider that speaks the client's format",
            fields.join(", "),
            if fields.len() == 1 { "it" } else { "them" }
        ),
    )
}
