//! The clouds that serve a provider's API at their own paths, with their
//! own auth, framing and error shapes: Azure OpenAI, Amazon Bedrock and
//! Google Vertex AI. Each is an independent implementation of what the
//! cloud checks (signatures, tokens, API versions), so that the gateway's
//! cloud code is tested against something that refuses what the real cloud
//! would refuse.

use serde::{Deserialize, Serialize};

pub(crate) mod azure;
pub(crate) mod entra;
pub(crate) mod filter;

/// Which cloud a request arrived through; `None` on `Incoming` for the
/// providers' own APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Azure OpenAI: OpenAI's format at deployment paths.
    Azure,
    /// Amazon Bedrock: Anthropic's format (InvokeModel), SigV4, binary event streams.
    Bedrock,
    /// Google Vertex AI: Anthropic's and Gemini's formats at publisher paths.
    Vertex,
}

impl Cloud {
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Azure => "azure",
            Cloud::Bedrock => "bedrock",
            Cloud::Vertex => "vertex",
        }
    }
}
