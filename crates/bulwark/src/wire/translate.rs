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
use crate::config::{ModelTraitsOverride, Translation};
use crate::error::ApiError;

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
        Fate::Drop("Gemini cannot be held to one tool call per turn; it may make several"),
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

/// What a target's model can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTraits {
    /// It reasons before answering: a thinking budget or effort reaches it.
    pub reasons: bool,
    /// It reads images.
    pub vision: bool,
    /// It takes the effort `minimal` (the o-series takes `low` and up).
    pub minimal_effort: bool,
    /// The thinking budgets it takes, where its provider limits them.
    pub budget_range: Option<(u32, u32)>,
}

/// What `model` can do: the provider's `models:` entry where it says,
/// otherwise guessed from the name. Every model is taken to read images
/// unless configured otherwise: a wrong guess there would refuse requests a
/// provider takes.
pub fn traits(model: &str, configured: Option<&ModelTraitsOverride>) -> ModelTraits {
    let configured = configured.copied().unwrap_or_default();
    ModelTraits {
        reasons: configured
            .reasoning
            .unwrap_or_else(|| reasons_by_name(model)),
        vision: configured.vision.unwrap_or(true),
        minimal_effort: !is_o_series(&family(model)),
        budget_range: gemini_budget_range(&family(model)),
    }
}

/// A model's name without a vendor prefix (`models/`, `openai/`), lowercased.
fn family(model: &str) -> String {
    model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase()
}

/// OpenAI's o1, o3 and o4 models, which take `reasoning_effort` `low`,
/// `medium` and `high` only.
fn is_o_series(name: &str) -> bool {
    ["o1", "o3", "o4"]
        .iter()
        .any(|family| name == *family || name.starts_with(&format!("{family}-")))
}

/// The `thinkingBudget` a Gemini model takes, per Google's Gemini API
/// thinking guide (ai.google.dev/gemini-api/docs/thinking, "Set budgets"):
/// 2.5 Pro 128 to 32768 (thinking cannot be turned off), 2.5 Flash 0 to
/// 24576, 2.5 Flash-Lite 512 to 24576. Other models are sent the budget as
/// asked. Flash-Lite is matched before Flash, whose name it starts with.
fn gemini_budget_range(name: &str) -> Option<(u32, u32)> {
    const RANGES: [(&str, (u32, u32)); 3] = [
        ("gemini-2.5-pro", (128, 32768)),
        ("gemini-2.5-flash-lite", (512, 24576)),
        ("gemini-2.5-flash", (0, 24576)),
    ];
    RANGES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, range)| *range)
}

/// The model families known to reason. Names may carry a vendor prefix
/// (`us.anthropic.`, `models/`), so the family is looked for after the last
/// `/` and anywhere in the name for Claude.
fn reasons_by_name(model: &str) -> bool {
    let name = family(model);
    // o1-mini and o1-preview reason but refuse `reasoning_effort`, and the
    // gpt-5 chat models do not reason: no setting reaches them.
    let openai =
        (is_o_series(&name) && !name.starts_with("o1-mini") && !name.starts_with("o1-preview"))
            || (name.starts_with("gpt-5") && !name.starts_with("gpt-5-chat"));
    let claude = name.contains("claude-3-7")
        || name.contains("sonnet-4")
        || name.contains("opus-4")
        || name.contains("haiku-4")
        || (name.contains("claude-") && name.contains("-4"));
    let gemini = name.starts_with("gemini-2.5") || name.starts_with("gemini-3");
    openai || claude || gemini
}

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
            fate: fate(client, "top_k"),
            more: 0,
        });
        translated.top_k = None;
    }
    if request.parallel_tool_calls == Some(false) && format == WireFormat::Gemini {
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
        let doc = include_str!("../../../../docs/translation.md");
        let features = FATES.iter().map(|row| row.feature);
        for feature in features.chain(SAMPLING_FEATURES) {
            assert!(
                doc.contains(&format!("`{feature}`")),
                "docs/translation.md does not mention `{feature}`"
            );
        }
    }

    #[test]
    fn reasoning_models_are_told_by_name_and_config_wins() {
        for model in [
            "o3-mini",
            "o1",
            "gpt-5-mini",
            "claude-sonnet-4-5",
            "claude-opus-4-1",
            "claude-3-7-sonnet-latest",
            "us.anthropic.claude-haiku-4-5",
            "gemini-2.5-flash",
            "models/gemini-3-pro",
        ] {
            assert!(traits(model, None).reasons, "{model}");
        }
        for model in [
            "gpt-4o",
            "gpt-4o-mini",
            // They reject `reasoning_effort`.
            "o1-mini",
            "o1-preview-2024-09-12",
            "gpt-5-chat-latest",
            "claude-3-5-haiku",
            "gemini-2.0-flash",
            "llama3",
        ] {
            assert!(!traits(model, None).reasons, "{model}");
        }
        let configured = ModelTraitsOverride {
            reasoning: Some(true),
            vision: Some(false),
        };
        let llama = traits("llama3", Some(&configured));
        assert!(llama.reasons && !llama.vision);
    }
}
