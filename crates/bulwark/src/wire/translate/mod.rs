//! What becomes of a client's request when a target that speaks another
//! format serves it: the one place where each field the neutral model does
//! not carry gets its fate (left out and reported, or the target refuses),
//! and where a target's model decides whether reasoning and images reach
//! it. `docs/translation.md` is this module in prose; a test keeps every
//! feature named here in it.
//!
//! A target that speaks the client's own format is sent the client's body
//! as it came (`SourceBody`), so nothing here applies to it but what the
//! model itself cannot take (images for a text-only model).

use crate::api::{
    ChatRequest, ContentBlock, Effort, Fate, OutputFormat, Reasoning, Role, ToolChoice, Unmapped,
    WireFormat,
};
use crate::config::Translation;
use crate::error::ApiError;

mod fates;
mod traits;

pub use fates::{
    CONVERSE_NO_JSON_MODE, CONVERSE_NO_REASONING, CONVERSE_NO_TOP_K, FATES, MAX_UNMAPPED,
    MIN_ANTHROPIC_THINKING_BUDGET, NO_ROOM_TO_THINK, NO_SAMPLING_BESIDE_THINKING,
    NO_THINKING_IN_TOOL_LOOP, NO_THINKING_WITH_FORCED_TOOL, Row, SAMPLING_FEATURES, fate, unmapped,
};
pub use traits::{ModelTraits, traits};

/// What a Responses request may name only at a provider that holds it:
/// OpenAI's stored conversations, prompts, items and files, and background
/// responses kept there for polling. Relayed under the gateway's one
/// OpenAI key, shared by every client key, an id would reach whatever that
/// account holds, another tenant's included; translated, nothing else can
/// read it. Refused either way.
const ACCOUNT_STATE: [&str; 5] = [
    "conversation",
    "prompt",
    "item_reference",
    "background",
    "file_reference",
];

const ACCOUNT_STATE_REASON: &str = "it names state kept in the provider account that every client of this gateway shares, which one client must not reach; send the content itself, or continue a conversation with `previous_response_id`, which Bulwark keeps per client key";

/// The request a target is sent, when it differs from the client's, and
/// the features left out of it.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// `None`: the client's request as it is.
    pub request: Option<ChatRequest>,
    /// Features left out, unique, in the order first met.
    pub dropped: Vec<&'static str>,
}

/// Why a target cannot take a request: each field with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub fields: Vec<Refused>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub path: String,
    pub feature: &'static str,
    pub reason: String,
    /// Further fields like it, not recorded (see [`unmapped`]).
    pub more: usize,
}

impl Refusal {
    /// The fields' paths, for an error's `param`.
    pub fn paths(&self) -> String {
        let paths: Vec<&str> = self.fields.iter().map(|f| f.path.as_str()).collect();
        paths.join(", ")
    }

    /// Each field with its reason.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("`{}` ({}): {}", f.path, f.feature, f.reason))
            .collect();
        parts.join("; ")
    }
}

/// Translates `request` for a target of `format` whose model has `traits`,
/// under the route's `mode`: what it is sent and what was left out, or why
/// it cannot take the request at all. `takes_top_k`: whether the target's
/// dialect has top-k sampling; `default_max_tokens`: the target's
/// `max_tokens` when the request sets none.
pub fn prepare(
    request: &ChatRequest,
    format: WireFormat,
    traits: ModelTraits,
    takes_top_k: bool,
    default_max_tokens: u32,
    mode: Translation,
) -> Result<Prepared, Refusal> {
    let mut refused = Vec::new();
    if !traits.vision {
        for (i, message) in request.messages.iter().enumerate() {
            if message.content.iter().any(holds_image) {
                refused.push(Refused {
                    path: format!("messages[{i}]"),
                    feature: "image",
                    reason: fate(None, "image").reason().to_string(),
                    more: 0,
                });
            }
        }
    }
    let client = request.source.as_ref().map(|s| s.format);
    if client == Some(format) {
        // The client's own body goes out: nothing is translated, but what
        // names state in the provider account every client key shares is
        // still refused.
        if format == WireFormat::Responses {
            refused.extend(
                request
                    .unmapped
                    .iter()
                    .filter(|u| ACCOUNT_STATE.contains(&u.feature))
                    .map(|u| Refused {
                        path: u.path.clone(),
                        feature: u.feature,
                        reason: ACCOUNT_STATE_REASON.to_string(),
                        more: u.more,
                    }),
            );
        }
        return if refused.is_empty() {
            Ok(Prepared::default())
        } else {
            Err(Refusal { fields: refused })
        };
    }
    let mut left_out: Vec<Unmapped> = request.unmapped.clone();
    let mut translated = request.clone();
    if let Some(reasoning) = request.reasoning {
        let feature = match client {
            Some(WireFormat::Anthropic) => "thinking",
            Some(WireFormat::OpenAi) => "reasoning_effort",
            _ => "reasoning",
        };
        let sent = if traits.reasons {
            reasoning_for(request, reasoning, format, traits, default_max_tokens)
        } else {
            Err(fate(client, feature).reason())
        };
        match sent {
            Ok(sent) => translated.reasoning = Some(sent),
            Err(reason) => {
                left_out.push(Unmapped {
                    path: feature.to_string(),
                    feature,
                    fate: Fate::Drop(reason),
                    more: 0,
                });
                translated.reasoning = None;
            }
        }
    }
    if format == WireFormat::Anthropic && translated.reasoning.is_some() {
        let [temperature, top_p, top_k] = SAMPLING_FEATURES;
        for (feature, set) in [
            (temperature, translated.temperature.take().is_some()),
            (top_p, translated.top_p.take().is_some()),
            (top_k, translated.top_k.take().is_some()),
        ] {
            if set {
                left_out.push(Unmapped {
                    path: feature.into(),
                    feature,
                    fate: Fate::Drop(NO_SAMPLING_BESIDE_THINKING),
                    more: 0,
                });
            }
        }
    }
    if translated.top_k.is_some() && !takes_top_k {
        left_out.push(Unmapped {
            path: "top_k".into(),
            feature: "top_k",
            fate: if format == WireFormat::Converse {
                Fate::Drop(CONVERSE_NO_TOP_K)
            } else {
                fate(client, "top_k")
            },
            more: 0,
        });
        translated.top_k = None;
    }
    if format == WireFormat::Converse {
        converse_fates(request, client, &mut translated, &mut left_out);
    }
    if request.parallel_tool_calls == Some(false)
        && matches!(format, WireFormat::Gemini | WireFormat::Converse)
    {
        left_out.push(Unmapped {
            path: match client {
                Some(WireFormat::Anthropic) => "tool_choice.disable_parallel_tool_use".into(),
                _ => "parallel_tool_calls".into(),
            },
            feature: "parallel_tool_calls",
            fate: fate(None, "parallel_tool_calls"),
            more: 0,
        });
    }
    if request.output_format == Some(OutputFormat::JsonObject) && format == WireFormat::Anthropic {
        left_out.push(Unmapped {
            path: match client {
                Some(WireFormat::Responses) => "text.format".into(),
                _ => "response_format".into(),
            },
            feature: "json_mode",
            fate: fate(None, "json_mode"),
            more: 0,
        });
        translated.output_format = None;
    }
    let mut dropped = Vec::new();
    for field in left_out {
        match (field.fate, mode) {
            (Fate::Drop(_), Translation::Lenient) => {
                if !dropped.contains(&field.feature) {
                    dropped.push(field.feature);
                }
            }
            (Fate::Drop(reason), Translation::Strict) => refused.push(Refused {
                path: field.path,
                feature: field.feature,
                reason: format!("the route translates strictly, and {reason}"),
                more: field.more,
            }),
            (Fate::Refuse(reason), _) => refused.push(Refused {
                path: field.path,
                feature: field.feature,
                reason: reason.to_string(),
                more: field.more,
            }),
        }
    }
    if !refused.is_empty() {
        return Err(Refusal { fields: refused });
    }
    let changed = translated.reasoning != request.reasoning
        || translated.temperature != request.temperature
        || translated.top_p != request.top_p
        || translated.top_k != request.top_k
        || translated.output_format != request.output_format;
    Ok(Prepared {
        request: changed.then_some(translated),
        dropped,
    })
}

/// What Bedrock's Converse API cannot carry beyond the other formats: a
/// JSON mode or an output schema (it has neither), and `tool_choice: none`
/// in a conversation that already holds tool calls (it has no such choice,
/// and reads those calls only beside their tools).
fn converse_fates(
    request: &ChatRequest,
    client: Option<WireFormat>,
    translated: &mut ChatRequest,
    left_out: &mut Vec<Unmapped>,
) {
    let format_path = || -> String {
        match client {
            Some(WireFormat::Responses) => "text.format".into(),
            Some(WireFormat::Anthropic) => "output_config.format".into(),
            Some(WireFormat::Gemini) => "generationConfig.responseMimeType".into(),
            _ => "response_format".into(),
        }
    };
    match request.output_format {
        None => {}
        Some(OutputFormat::JsonObject) => {
            left_out.push(Unmapped {
                path: format_path(),
                feature: "json_mode",
                fate: Fate::Drop(CONVERSE_NO_JSON_MODE),
                more: 0,
            });
            translated.output_format = None;
        }
        Some(OutputFormat::JsonSchema { .. }) => left_out.push(Unmapped {
            path: format_path(),
            feature: "structured_output",
            fate: fate(None, "structured_output"),
            more: 0,
        }),
    }
    if request.tool_choice == Some(ToolChoice::None)
        && !request.tools.is_empty()
        && crate::wire::converse::holds_tool_blocks(request)
    {
        left_out.push(Unmapped {
            path: "tool_choice".into(),
            feature: "tool_choice_none",
            fate: fate(None, "tool_choice_none"),
            more: 0,
        });
    }
}

/// The reasoning a reasoning model of a `format` target is sent, in the
/// kind and size it takes, or why none can be sent.
fn reasoning_for(
    request: &ChatRequest,
    reasoning: Reasoning,
    format: WireFormat,
    traits: ModelTraits,
    default_max_tokens: u32,
) -> Result<Reasoning, &'static str> {
    match format {
        // No provider speaks the Responses API; were one to, it takes OpenAI's efforts.
        WireFormat::OpenAi | WireFormat::Responses => {
            Ok(Reasoning::Effort(match reasoning.effort() {
                Effort::Minimal if !traits.minimal_effort => Effort::Low,
                effort => effort,
            }))
        }
        WireFormat::Gemini => {
            let budget = reasoning.budget();
            Ok(Reasoning::Budget(
                traits
                    .budget_range
                    .map_or(budget, |(min, max)| budget.clamp(min, max)),
            ))
        }
        // Each model family behind Converse takes reasoning in its own
        // field, which Bulwark does not write.
        WireFormat::Converse => Err(CONVERSE_NO_REASONING),
        WireFormat::Anthropic => {
            if matches!(
                request.tool_choice,
                Some(ToolChoice::Required | ToolChoice::Tool(_))
            ) {
                return Err(NO_THINKING_WITH_FORCED_TOOL);
            }
            let in_tool_loop = request
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::Assistant)
                .is_some_and(|m| {
                    m.content
                        .iter()
                        .any(|b| matches!(b, ContentBlock::ToolUse(_)))
                });
            if in_tool_loop {
                return Err(NO_THINKING_IN_TOOL_LOOP);
            }
            // At most half of `max_tokens` goes to thinking, so the answer
            // keeps as much room as the reasoning.
            let cap = request.max_tokens.unwrap_or(default_max_tokens) / 2;
            if cap < MIN_ANTHROPIC_THINKING_BUDGET {
                return Err(NO_ROOM_TO_THINK);
            }
            Ok(Reasoning::Budget(
                reasoning.budget().clamp(MIN_ANTHROPIC_THINKING_BUDGET, cap),
            ))
        }
    }
}

fn holds_image(block: &ContentBlock) -> bool {
    match block {
        ContentBlock::Image(_) => true,
        ContentBlock::ToolResult(result) => result.content.iter().any(holds_image),
        ContentBlock::Text(_) | ContentBlock::ToolUse(_) => false,
    }
}

/// The error an encoder gives when a request reaching it still holds a
/// field its format refuses: only callers that skip `prepare` meet it.
pub(crate) fn refused_fields(request: &ChatRequest, format_name: &str) -> Result<(), ApiError> {
    let refused: Vec<&Unmapped> = request
        .unmapped
        .iter()
        .filter(|u| matches!(u.fate, Fate::Refuse(_)))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let paths: Vec<&str> = refused.iter().map(|u| u.path.as_str()).collect();
    let reasons: Vec<String> = refused
        .iter()
        .map(|u| format!("`{}`: {}", u.path, u.fate.reason()))
        .collect();
    Err(ApiError::invalid_param(
        paths.join(", "),
        format!(
            "{} cannot be expressed in the {format_name} format of this route's target ({}); remove {} or route the request to a provider that speaks the client's format",
            paths.join(", "),
            reasons.join("; "),
            if paths.len() == 1 { "it" } else { "them" }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_is_documented() {
        let doc = include_str!("../../../../../docs/translation.md");
        let features = FATES.iter().map(|row| row.feature);
        for feature in features.chain(SAMPLING_FEATURES) {
            assert!(
                doc.contains(&format!("`{feature}`")),
                "docs/translation.md does not mention `{feature}`"
            );
        }
    }
}
