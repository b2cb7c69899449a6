//! Token estimates for rate limits, before the provider says how many a
//! request used. Roughly four characters a token (OpenAI's rule of thumb,
//! close enough for the other providers' tokenizers); the estimate is
//! corrected from the answer's usage.

use crate::api::{ChatRequest, ContentBlock};

/// What an image costs in most providers' accounting, roughly.
const IMAGE_TOKENS: u64 = 850;
const OVERHEAD_PER_MESSAGE: u64 = 4;

pub fn input_tokens(request: &ChatRequest) -> u64 {
    let mut chars = 0u64;
    let mut tokens = 0u64;
    for message in &request.messages {
        tokens += OVERHEAD_PER_MESSAGE;
        for block in &message.content {
            match block {
                ContentBlock::Text(text) => chars += text.len() as u64,
                ContentBlock::Image(_) => tokens += IMAGE_TOKENS,
                ContentBlock::ToolUse(call) => {
                    chars += call.name.len() as u64 + call.input.to_string().len() as u64
                }
                ContentBlock::ToolResult(result) => {
                    for part in &result.content {
                        match part {
                            ContentBlock::Text(text) => chars += text.len() as u64,
                            _ => tokens += IMAGE_TOKENS,
                        }
                    }
                }
            }
        }
    }
    for tool in &request.tools {
        chars += tool.name.len() as u64 + tool.parameters.to_string().len() as u64;
    }
    tokens + chars.div_ceil(4)
}

/// Input plus the most the answer may take: providers count `max_tokens`
/// against a token quota when the request arrives.
pub fn total_tokens(request: &ChatRequest, default_max_tokens: u64) -> u64 {
    input_tokens(request) + request.max_tokens.map_or(default_max_tokens, u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Message, Role};

    #[test]
    fn about_four_characters_a_token() {
        let mut request = ChatRequest::new("m", vec![Message::text(Role::User, "x".repeat(400))]);
        assert_eq!(input_tokens(&request), 104);
        request.max_tokens = Some(50);
        assert_eq!(total_tokens(&request, 1000), 154);
    }
}
