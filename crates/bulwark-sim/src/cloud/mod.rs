//! The clouds that serve a provider's API at their own paths, with their
//! own auth, framing and error shapes: Azure OpenAI, Amazon Bedrock and
//! Google Vertex AI. Each is an independent implementation of what the
//! cloud checks (signatures, tokens, API versions), so that the gateway's
//! cloud code is tested against something that refuses what the real cloud
//! would refuse.

pub(crate) mod azure;
pub(crate) mod bedrock;
mod bedrock_reply;
mod converse;
pub(crate) mod entra;
mod eventstream;
pub(crate) mod filter;
pub(crate) mod google_token;
mod invocation_metrics;
mod sigv4;
pub(crate) mod vertex;

use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::config::SimConfig;
use crate::handler::Incoming;
use crate::state::Sim;
use crate::wire::{Ctx, Invalid};

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

/// A request a cloud refuses itself, before the model's API sees it:
/// the request log's outcome label and the response.
pub(crate) struct Refused {
    pub label: String,
    pub response: Response,
}

/// What `cloud` refuses of a request (auth, paths, its body rules), or
/// `None` to let the provider's machinery answer.
pub(crate) fn refusal(
    cloud: Cloud,
    sim: &Sim,
    config: &SimConfig,
    inc: &Incoming,
    body: Option<&serde_json::Value>,
    ctx: &Ctx,
) -> Option<Refused> {
    match cloud {
        Cloud::Vertex => vertex::refusal(sim, config, inc, body, ctx),
        Cloud::Bedrock => bedrock::refuse(config, inc, &ctx.request_id)
            .map(|(label, response)| Refused { label, response }),
        Cloud::Azure => azure::gate(sim, config, inc, body),
    }
}

/// The provider's body a cloud's own request body stands for (Bedrock's
/// Converse body is read as Anthropic's); other bodies are the provider's.
pub(crate) fn provider_body(
    inc: &Incoming,
    body: serde_json::Value,
) -> Result<serde_json::Value, Invalid> {
    match (inc.cloud, bedrock::Api::of_path(&inc.path)) {
        (Some(Cloud::Bedrock), Some((bedrock::Api::Converse, _))) => converse::to_messages(&body),
        _ => Ok(body),
    }
}
