//! The translation table: each field the neutral model does not carry,
//! per client format, with its fate (left out and reported, or refused).
//! `docs/translation.md` is this table in prose.

use crate::api::{Fate, Unmapped, WireFormat};

/// A fate, for the client format it applies to (`None`: any).
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub client: Option<WireFormat>,
    pub feature: &'static str,
    pub fate: Fate,
}

const fn row(client: Option<WireFormat>, feature: &'static str, fate: Fate) -> Row {
    Row {
        client,
        feature,
        fate,
    }
}

const ANTHROPIC: Option<WireFormat> = Some(WireFormat::Anthropic);
const OPENAI: Option<WireFormat> = Some(WireFormat::OpenAi);
const RESPONSES: Option<WireFormat> = Some(WireFormat::Responses);
const GEMINI: Option<WireFormat> = Some(WireFormat::Gemini);
const ANY: Option<WireFormat> = None;

const NOT_REASONING: &str = "the target model does not reason; it answers without thinking first";
const UNKNOWN: &str = "Bulwark does not know this field, so no other format can carry it; the target answers without it";

// Anthropic's rules for thinking (its extended-thinking guide): a budget of
// at least 1024 tokens and below `max_tokens`; no forced tool call; in a
// tool loop the last assistant turn must start with its own signed thinking
// block, which no translated conversation has; no sampling settings beside
// it. Reasoning that cannot be sent within them is left out, for these
// reasons, reported under the client's reasoning feature.

/// Why reasoning is left out of a request to Anthropic in a tool loop.
pub const NO_THINKING_IN_TOOL_LOOP: &str = "Anthropic thinks in a tool loop only when the last assistant turn starts with its own signed thinking block, which a translated conversation lacks; the target answers without thinking";
/// Why reasoning is left out of a request to Anthropic that forces a tool call.
pub const NO_THINKING_WITH_FORCED_TOOL: &str =
    "Anthropic does not think while a tool call is forced; the target answers without thinking";
/// Why reasoning is left out when `max_tokens` is small.
pub const NO_ROOM_TO_THINK: &str = "`max_tokens` leaves no room for Anthropic's smallest thinking budget (1024 tokens) beside an answer as long; the target answers without thinking";
/// Why sampling settings are left out beside thinking at Anthropic.
pub const NO_SAMPLING_BESIDE_THINKING: &str = "Anthropic takes no temperature, top_p or top_k beside thinking; the target samples at its defaults";
/// The sampling settings `NO_SAMPLING_BESIDE_THINKING` drops, as reported.
pub const SAMPLING_FEATURES: [&str; 3] = ["temperature", "top_p", "top_k"];

/// Why top-k is left out of a request to Bedrock's Converse API.
pub const CONVERSE_NO_TOP_K: &str = "Bedrock's Converse API takes top-k only in each model's own fields, which Bulwark does not write; the target samples without it";
/// Why reasoning is left out of a request to Bedrock's Converse API.
pub const CONVERSE_NO_REASONING: &str = "Bedrock's Converse API takes reasoning settings only in each model's own fields, which Bulwark does not write; the target answers without thinking first";
/// Why JSON mode is left out of a request to Bedrock's Converse API.
pub const CONVERSE_NO_JSON_MODE: &str =
    "Bedrock's Converse API has no JSON mode; the target is not held to JSON";

/// Anthropic's smallest thinking budget.
pub const MIN_ANTHROPIC_THINKING_BUDGET: u32 = 1024;

/// Every fate a translation can report, by client format and feature.
/// Features are what `x-bulwark-dropped`, the request log and the
/// `bulwark_translation_dropped_total` metric name, so they stay few.
pub const FATES: &[Row] = &[
    // Anthropic clients.
    row(
        ANTHROPIC,
        "cache_control",
        Fate::Drop("a cost hint for Anthropic's prompt cache; the answer is the same without it"),
    ),
    row(
        ANTHROPIC,
        "context_management",
        Fate::Drop(
            "Anthropic's own trimming of old context; the target is sent the whole conversation",
        ),
    ),
    row(
        ANTHROPIC,
        "output_config",
        Fate::Drop("output settings other than `effort` have no equivalent"),
    ),
    row(
        ANTHROPIC,
        "output_format",
        Fate::Refuse(
            "an output format Bulwark does not know; its shape would not be enforced, and a client parsing the answer relies on it",
        ),
    ),
    row(ANTHROPIC, "thinking", Fate::Drop(NOT_REASONING)),
    row(
        ANTHROPIC,
        "thinking_block",
        Fate::Drop(
            "earlier reasoning is signed by Anthropic and only Anthropic reads it; it is never sent as text",
        ),
    ),
    row(
        ANTHROPIC,
        "citations",
        Fate::Drop("citation settings only shape how Anthropic annotates its answer"),
    ),
    row(
        ANTHROPIC,
        "document",
        Fate::Refuse("the document would be lost, and the answer would ignore it"),
    ),
    row(
        ANTHROPIC,
        "file_reference",
        Fate::Refuse(
            "the content is held in Anthropic's Files API, which no other provider can read",
        ),
    ),
    row(
        ANTHROPIC,
        "server_tool",
        Fate::Drop(
            "the tool runs inside Anthropic; the target answers without it, as a model not offered that tool",
        ),
    ),
    row(
        ANTHROPIC,
        "service_tier",
        Fate::Drop("a capacity choice at Anthropic; the answer is the same"),
    ),
    // OpenAI clients.
    row(OPENAI, "reasoning_effort", Fate::Drop(NOT_REASONING)),
    row(
        OPENAI,
        "n",
        Fate::Refuse("the target answers with one choice, and the client asked for several"),
    ),
    row(
        OPENAI,
        "logprobs",
        Fate::Refuse("the target gives no token log-probabilities, which the client asked for"),
    ),
    row(
        OPENAI,
        "response_format",
        Fate::Refuse(
            "a response format Bulwark does not know; its shape would not be enforced, and a client parsing the answer relies on it",
        ),
    ),
    row(
        OPENAI,
        "audio",
        Fate::Refuse("audio in or out has no equivalent in the target's format"),
    ),
    row(
        OPENAI,
        "strict_tools",
        Fate::Drop(
            "the target follows the tool's schema without OpenAI's guarantee of exact adherence",
        ),
    ),
    row(
        OPENAI,
        "store",
        Fate::Drop("whether OpenAI keeps a copy; the answer is the same"),
    ),
    row(
        OPENAI,
        "metadata",
        Fate::Drop("tags for OpenAI's dashboard; the answer is the same"),
    ),
    row(
        OPENAI,
        "service_tier",
        Fate::Drop("a capacity choice at OpenAI; the answer is the same"),
    ),
    row(
        OPENAI,
        "prompt_cache_key",
        Fate::Drop("a cost hint for OpenAI's prompt cache; the answer is the same"),
    ),
    row(
        OPENAI,
        "seed",
        Fate::Drop("the target samples without a seed; answers may differ between runs"),
    ),
    row(
        OPENAI,
        "penalties",
        Fate::Drop(
            "frequency and presence penalties have no equivalent; the target samples without them",
        ),
    ),
    row(
        OPENAI,
        "logit_bias",
        Fate::Drop("token biases are per tokenizer and mean nothing to another provider's model"),
    ),
    row(
        OPENAI,
        "server_tool",
        Fate::Drop(
            "the tool runs inside OpenAI; the target answers without it, as a model not offered that tool",
        ),
    ),
    // OpenAI Responses API clients (`/v1/responses`): no provider speaks
    // it, so every target is sent a translation.
    row(
        RESPONSES,
        "previous_response_id",
        Fate::Refuse(
            "the earlier turns are held by whoever stored that response, and this request does not carry them; the target would answer without the conversation",
        ),
    ),
    row(
        RESPONSES,
        "reasoning_item",
        Fate::Drop(
            "earlier reasoning items are OpenAI's (often encrypted) and only OpenAI reads them; the conversation goes on without them",
        ),
    ),
    row(
        RESPONSES,
        "item_reference",
        Fate::Refuse("the item is stored at OpenAI, and no other provider can read it"),
    ),
    row(
        RESPONSES,
        "server_tool",
        Fate::Drop(
            "the tool runs inside OpenAI; the target answers without it, as a model not offered that tool",
        ),
    ),
    row(
        RESPONSES,
        "custom_tool",
        Fate::Drop(
            "free-form (custom) tools have no equivalent elsewhere; the target answers as a model not offered that tool",
        ),
    ),
    row(
        RESPONSES,
        "strict_tools",
        Fate::Drop(
            "the target follows the tool's schema without OpenAI's guarantee of exact adherence",
        ),
    ),
    row(
        RESPONSES,
        "reasoning_summary",
        Fate::Drop(
            "a summary of the model's reasoning is OpenAI's; the target's answer comes without one",
        ),
    ),
    row(
        RESPONSES,
        "verbosity",
        Fate::Drop("a length hint only OpenAI's models take; the target answers at its own length"),
    ),
    row(
        RESPONSES,
        "response_format",
        Fate::Refuse(
            "a text format Bulwark does not know; its shape would not be enforced, and a client parsing the answer relies on it",
        ),
    ),
    row(
        RESPONSES,
        "include",
        Fate::Drop(
            "extra output OpenAI adds on request (encrypted reasoning, tool sources); the answer itself is the same",
        ),
    ),
    row(
        RESPONSES,
        "truncation",
        Fate::Drop(
            "OpenAI's own trimming of old context; the target is sent the whole conversation",
        ),
    ),
    row(
        RESPONSES,
        "metadata",
        Fate::Drop("tags for OpenAI's dashboard; the answer is the same"),
    ),
    row(
        RESPONSES,
        "service_tier",
        Fate::Drop("a capacity choice at OpenAI; the answer is the same"),
    ),
    row(
        RESPONSES,
        "prompt_cache_key",
        Fate::Drop("a cost hint for OpenAI's prompt cache; the answer is the same"),
    ),
    row(
        RESPONSES,
        "max_tool_calls",
        Fate::Drop("the target is not held to a number of built-in tool calls, and it has none"),
    ),
    row(
        RESPONSES,
        "logprobs",
        Fate::Refuse("the target gives no token log-probabilities, which the client asked for"),
    ),
    row(
        RESPONSES,
        "background",
        Fate::Refuse(
            "a background response is run and kept by OpenAI for later polling; the client would wait for something no target keeps",
        ),
    ),
    row(
        RESPONSES,
        "conversation",
        Fate::Refuse(
            "the conversation is stored at OpenAI; the target would answer without its earlier turns",
        ),
    ),
    row(
        RESPONSES,
        "prompt",
        Fate::Refuse("the prompt template is stored at OpenAI; the target would answer without it"),
    ),
    row(
        RESPONSES,
        "file_reference",
        Fate::Refuse("the content is held in OpenAI's Files API, which no other provider can read"),
    ),
    row(
        RESPONSES,
        "document",
        Fate::Refuse("the document would be lost, and the answer would ignore it"),
    ),
    row(
        RESPONSES,
        "audio",
        Fate::Refuse("audio has no equivalent in the target's format"),
    ),
    // Gemini clients.
    row(
        GEMINI,
        "thought",
        Fate::Drop("earlier thoughts are Gemini's own reasoning; they are never sent as text"),
    ),
    row(
        GEMINI,
        "thought_signature",
        Fate::Drop("a signature of Gemini's own earlier reasoning, which only Gemini reads"),
    ),
    row(
        GEMINI,
        "include_thoughts",
        Fate::Drop(
            "thought summaries are shown only by Gemini itself; no other format's answer carries them",
        ),
    ),
    row(
        GEMINI,
        "inline_media",
        Fate::Refuse(
            "inline documents, audio and video have no equivalent; the answer would ignore them",
        ),
    ),
    row(
        GEMINI,
        "file_reference",
        Fate::Refuse(
            "the content is held at Google (Files API, Cloud Storage, YouTube), which no other provider reads",
        ),
    ),
    row(
        GEMINI,
        "server_tool",
        Fate::Drop(
            "the tool (search, code execution, URL context) runs inside Gemini; the target answers as a model not offered it",
        ),
    ),
    row(
        GEMINI,
        "safety_settings",
        Fate::Drop("the target applies its own safety policy, not Gemini's thresholds"),
    ),
    row(
        GEMINI,
        "cached_content",
        Fate::Refuse(
            "the content is held in Gemini's context cache, which no other provider can read; the answer would ignore it",
        ),
    ),
    row(
        GEMINI,
        "candidate_count",
        Fate::Refuse("the target answers with one candidate, and the client asked for several"),
    ),
    row(
        GEMINI,
        "response_mime_type",
        Fate::Refuse(
            "an answer type other than JSON or text (`text/x.enum`) has no equivalent, and a client parsing the answer relies on it",
        ),
    ),
    row(
        GEMINI,
        "penalties",
        Fate::Drop(
            "frequency and presence penalties have no equivalent; the target samples without them",
        ),
    ),
    row(
        GEMINI,
        "seed",
        Fate::Drop("the target samples without a seed; answers may differ between runs"),
    ),
    row(
        GEMINI,
        "logprobs",
        Fate::Refuse("the target gives no token log-probabilities, which the client asked for"),
    ),
    row(
        GEMINI,
        "audio",
        Fate::Refuse("audio or image output has no equivalent in the target's format"),
    ),
    row(
        GEMINI,
        "media_resolution",
        Fate::Drop("how Gemini tokenizes media; the target reads images its own way"),
    ),
    // Any client.
    row(ANY, "reasoning", Fate::Drop(NOT_REASONING)),
    // Any client's top_k, one built in code too, to OpenAI itself.
    row(
        ANY,
        "top_k",
        Fate::Drop("OpenAI has no top-k sampling; the target samples without it"),
    ),
    row(
        ANY,
        "parallel_tool_calls",
        Fate::Drop(
            "Gemini, and the models behind Bedrock's Converse API, cannot be held to one tool call per turn; they may make several",
        ),
    ),
    row(
        ANY,
        "structured_output",
        Fate::Refuse(
            "Bedrock's Converse API has no output schema; the answer's shape would not be enforced, and a client parsing the answer relies on it",
        ),
    ),
    row(
        ANY,
        "tool_choice_none",
        Fate::Drop(
            "Bedrock's Converse API cannot forbid tool calls in a conversation that holds some; the target may call a tool",
        ),
    ),
    row(
        ANY,
        "image",
        Fate::Refuse(
            "the target model reads text only (`vision: false`), and the answer would ignore the image",
        ),
    ),
    row(
        ANY,
        "unknown_role",
        Fate::Refuse(
            "the message's role has no equivalent, so its place in the conversation would be lost",
        ),
    ),
    row(
        ANY,
        "json_mode",
        Fate::Drop(
            "Anthropic enforces only a full JSON schema, not JSON without one; the target is not held to JSON",
        ),
    ),
    row(ANY, "unknown_block", Fate::Drop(UNKNOWN)),
    row(ANY, "unknown_field", Fate::Drop(UNKNOWN)),
];

/// The fate of `feature` from a `client` request. A feature missing from
/// the table is a bug caught by the test below; it is refused, the safe side.
pub fn fate(client: Option<WireFormat>, feature: &'static str) -> Fate {
    FATES
        .iter()
        .find(|r| r.feature == feature && (r.client.is_none() || r.client == client))
        .map_or(
            Fate::Refuse("Bulwark has no translation for this field"),
            |r| r.fate,
        )
}

/// How many unmapped fields one request records with their paths.
pub const MAX_UNMAPPED: usize = 64;

/// Records an unmapped field of a `client` request with its fate. Past
/// [`MAX_UNMAPPED`] a field whose feature is already recorded is only
/// counted (in that entry's `more`): its fate is the feature's, and a body
/// of a million unknown blocks must not cost a million paths, nor a
/// million-line error. A new feature is still recorded, so no fate is lost.
pub fn unmapped(
    client: WireFormat,
    path: impl Into<String>,
    feature: &'static str,
    out: &mut Vec<Unmapped>,
) {
    if out.len() >= MAX_UNMAPPED
        && let Some(recorded) = out.iter_mut().rev().find(|u| u.feature == feature)
    {
        recorded.more += 1;
        return;
    }
    out.push(Unmapped {
        path: path.into(),
        feature,
        fate: fate(Some(client), feature),
        more: 0,
    });
}
