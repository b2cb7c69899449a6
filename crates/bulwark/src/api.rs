//! Provider-neutral request, response and stream types.
//!
//! Every wire format decodes into these and encodes from them, so a request
//! that arrived in one format can be served by a provider that speaks another.
//! The model follows the Anthropic shape (content blocks, tool results inside
//! user turns) because it is the most general of the three: OpenAI's and
//! Gemini's shapes map into it without loss.

use serde_json::{Map, Value};

/// The wire formats Bulwark speaks. OpenAI-compatible servers speak `OpenAi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    OpenAi,
    Anthropic,
    Gemini,
    /// OpenAI's Responses API: a front door, and the second API of the
    /// `openai` provider kind, which only a Responses client's request
    /// reaches (`UpstreamDialect::also_speaks`); other targets get it
    /// translated.
    Responses,
    /// Amazon Bedrock's Converse API, which serves the models on Bedrock
    /// that are not Anthropic's. Upstream only: no front door speaks it,
    /// so every client is sent a translation of its answers.
    Converse,
}

impl WireFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WireFormat::OpenAi => "openai",
            WireFormat::Anthropic => "anthropic",
            WireFormat::Gemini => "gemini",
            WireFormat::Responses => "openai-responses",
            WireFormat::Converse => "bedrock-converse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// System instructions (OpenAI `system`/`developer`, Anthropic top-level
    /// `system`, Gemini `systemInstruction`).
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: vec![ContentBlock::Text(text.into())],
        }
    }

    /// All text blocks joined; used where a format only accepts plain text.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for block in &self.content {
            if let ContentBlock::Text(text) = block {
                out.push_str(text);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlock {
    Text(String),
    Image(ImageSource),
    ToolUse(ToolCall),
    ToolResult(ToolResult),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON object.
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub tool_use_id: String,
    /// Text and image blocks only.
    pub content: Vec<ContentBlock>,
    pub is_error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// The model must call some tool (OpenAI `required`, Anthropic `any`, Gemini `ANY`).
    Required,
    Tool(String),
}

/// The request body exactly as the client sent it, with what else of its
/// request names its own format's features.
///
/// A target that speaks the client's own format receives this body (with its
/// model replaced), its query string and its provider headers, so nothing the
/// neutral model does not describe is lost. Other targets get none of the
/// query and headers: they name one provider's features.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceBody {
    pub format: WireFormat,
    pub body: SourceJson,
    /// The query string of the client's request, without the `?`.
    pub query: Option<String>,
    /// The client's headers that its front door's dialect forwards
    /// (`ClientDialect::forwarded_headers`), in the order received.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// A client's body (a JSON object) kept as its bytes rather than as a tree:
/// a tree of many small items costs twenty and more times their size, the
/// request holds its source for as long as it runs, and only a target of
/// the client's own format reads it (parsing it then, once per attempt, as
/// it would have copied the tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceJson(bytes::Bytes);

impl SourceJson {
    /// The bytes of a body already parsed as a JSON object.
    pub fn from_parsed(body: &[u8]) -> Self {
        SourceJson(bytes::Bytes::copy_from_slice(body))
    }

    /// An object changed after parsing (a Responses conversation's history
    /// put in), written back as bytes.
    pub fn from_object(object: &Map<String, Value>) -> Self {
        // Writing a `Map` of `Value`s cannot fail: its keys are strings.
        SourceJson(bytes::Bytes::from(
            serde_json::to_vec(object).unwrap_or_default(),
        ))
    }

    /// The body as an object again.
    pub fn object(&self) -> Result<Map<String, Value>, crate::error::ApiError> {
        match serde_json::from_slice::<Value>(&self.0) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(crate::error::ApiError::new(
                crate::error::ErrorKind::Api,
                "the client's body could not be read again",
            )),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model as the client named it: a route or `provider/model`.
    pub model: String,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop: Vec<String>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub stream: bool,
    /// OpenAI clients must ask for the usage chunk; other formats always send usage.
    pub include_usage: bool,
    /// How hard the model should think, when the client asked.
    pub reasoning: Option<Reasoning>,
    /// Who is asking (OpenAI `user`, Anthropic `metadata.user_id`), for the
    /// provider's abuse checks.
    pub user: Option<String>,
    /// `Some(false)`: at most one tool call per turn (OpenAI
    /// `parallel_tool_calls: false`, Anthropic `disable_parallel_tool_use`).
    pub parallel_tool_calls: Option<bool>,
    /// The shape the answer's text must have (OpenAI `response_format`,
    /// Anthropic `output_config.format`, Gemini `responseMimeType` with
    /// `responseJsonSchema`).
    pub output_format: Option<OutputFormat>,
    /// The original body, when the request came through a front door.
    pub source: Option<SourceBody>,
    /// Fields the client sent that the neutral model does not carry, each
    /// with what becomes of it when another format serves the request
    /// (`wire::translate` decides; `docs/translation.md` lists them).
    pub unmapped: Vec<Unmapped>,
}

/// Structured output: the answer's text is a JSON document of this shape.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// A document that satisfies `schema` (JSON Schema).
    JsonSchema {
        /// OpenAI requires a name for the schema; other formats have none.
        name: Option<String>,
        schema: Value,
        /// OpenAI's `strict`: exact adherence, where the provider offers it.
        strict: Option<bool>,
    },
    /// Any JSON object (OpenAI's JSON mode).
    JsonObject,
}

/// How much a reasoning model should think before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    /// Anthropic's `thinking.budget_tokens`, Gemini's `thinkingBudget`.
    Budget(u32),
    /// OpenAI's `reasoning_effort`, Anthropic's adaptive thinking with
    /// `output_config.effort`.
    Effort(Effort),
}

impl Reasoning {
    /// The thinking budget asked for, converting an effort by the table in
    /// `Effort::budget`: the one conversion every budget-taking format uses.
    pub fn budget(self) -> u32 {
        match self {
            Reasoning::Budget(budget) => budget,
            Reasoning::Effort(effort) => effort.budget(),
        }
    }

    /// The effort asked for, converting a budget by `Effort::for_budget`.
    pub fn effort(self) -> Effort {
        match self {
            Reasoning::Effort(effort) => effort,
            Reasoning::Budget(budget) => Effort::for_budget(budget),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }

    /// Reads the effort names OpenAI and Anthropic use; `none` asks for no
    /// reasoning at all, and names past `high` (`xhigh`, `max`) ask for the
    /// most there is.
    pub fn parse(name: &str) -> Option<Option<Effort>> {
        Some(match name {
            "none" => None,
            "minimal" => Some(Effort::Minimal),
            "low" => Some(Effort::Low),
            "medium" => Some(Effort::Medium),
            "high" | "xhigh" | "max" => Some(Effort::High),
            _ => return None,
        })
    }

    /// The thinking budget that stands for this effort where a format takes
    /// only budgets.
    pub fn budget(self) -> u32 {
        match self {
            Effort::Minimal => 1024,
            Effort::Low => 2048,
            Effort::Medium => 8192,
            Effort::High => 16384,
        }
    }

    /// The effort that stands for `budget` where a format takes only efforts.
    pub fn for_budget(budget: u32) -> Effort {
        match budget {
            0..=1024 => Effort::Minimal,
            1025..=4096 => Effort::Low,
            4097..=12288 => Effort::Medium,
            _ => Effort::High,
        }
    }
}

/// A field of the client's request that the neutral model does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// Where it was in the client's body (`messages[1].content[0]`).
    pub path: String,
    /// A short, low-cardinality name (`cache_control`, `n`): what headers,
    /// records and metrics report.
    pub feature: &'static str,
    pub fate: Fate,
    /// Further fields of the same feature left unrecorded past the cap on
    /// what one request records (`wire::translate::MAX_UNMAPPED`).
    pub more: usize,
}

/// What becomes of an unmapped field when another format serves the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Left out: the answer means the same without it (the reason says why).
    Drop(&'static str),
    /// The target cannot take the request: without the field the answer
    /// would not be the one the client asked for.
    Refuse(&'static str),
}

impl Fate {
    pub fn reason(self) -> &'static str {
        match self {
            Fate::Drop(reason) | Fate::Refuse(reason) => reason,
        }
    }
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            max_tokens: None,
            temperature: None,
            top_p: None,
            top_k: None,
            stop: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            stream: false,
            include_usage: false,
            reasoning: None,
            user: None,
            parallel_tool_calls: None,
            output_format: None,
            source: None,
            unmapped: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model finished its turn.
    Stop,
    /// A stop sequence was hit (OpenAI reports this as `stop`).
    StopSequence,
    /// The output token limit was reached.
    Length,
    ToolUse,
    ContentFilter,
}

/// How each wire format names a finish reason, as one table: a reason is
/// written as the first name in its format's list, and a name is read as the
/// reason of the first row that lists it, so `stop` reads as `Stop`, never
/// `StopSequence`. Each format keeps its own default for names not listed.
struct FinishNames {
    reason: FinishReason,
    openai: &'static [&'static str],
    anthropic: &'static [&'static str],
    gemini: &'static [&'static str],
}

const FINISH_NAMES: [FinishNames; 5] = [
    FinishNames {
        reason: FinishReason::Stop,
        openai: &["stop"],
        anthropic: &["end_turn"],
        gemini: &["STOP", "FINISH_REASON_UNSPECIFIED", "OTHER"],
    },
    FinishNames {
        reason: FinishReason::StopSequence,
        openai: &["stop"],
        anthropic: &["stop_sequence"],
        gemini: &["STOP"],
    },
    FinishNames {
        reason: FinishReason::Length,
        openai: &["length", "model_length"],
        anthropic: &["max_tokens", "model_context_window_exceeded"],
        gemini: &["MAX_TOKENS"],
    },
    FinishNames {
        reason: FinishReason::ToolUse,
        openai: &["tool_calls", "function_call"],
        anthropic: &["tool_use"],
        // Gemini has no name of its own: a `STOP` after a call is a tool use.
        gemini: &["STOP"],
    },
    FinishNames {
        reason: FinishReason::ContentFilter,
        openai: &["content_filter"],
        anthropic: &["refusal"],
        gemini: &["SAFETY"],
    },
];

impl FinishNames {
    fn names(&self, format: WireFormat) -> &'static [&'static str] {
        match format {
            WireFormat::OpenAi => self.openai,
            WireFormat::Anthropic => self.anthropic,
            WireFormat::Gemini => self.gemini,
            // The Responses API has no finish reasons of its own (it has a
            // status); where one is named, it is the Chat Completions name.
            WireFormat::Responses => self.openai,
            // Converse names its stop reasons as Anthropic's Messages API
            // does, and adds its own blocks (`guardrail_intervened`,
            // `content_filtered`), read as filters by its decoder.
            WireFormat::Converse => self.anthropic,
        }
    }
}

impl FinishReason {
    /// The name `format` gives this reason.
    pub fn name(&self, format: WireFormat) -> &'static str {
        FINISH_NAMES
            .iter()
            .find(|row| row.reason == *self)
            .and_then(|row| row.names(format).first())
            .copied()
            .unwrap_or("stop")
    }

    /// The reason `format` means by `name`, if the table knows the name;
    /// each format decides what an unknown name means.
    pub fn from_name(format: WireFormat, name: &str) -> Option<FinishReason> {
        FINISH_NAMES
            .iter()
            .find(|row| row.names(format).contains(&name))
            .map(|row| row.reason.clone())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    /// The model the provider says answered.
    pub model: String,
    /// Text and tool-use blocks.
    pub content: Vec<ContentBlock>,
    pub finish_reason: FinishReason,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
    /// Unix seconds.
    pub created: u64,
}

/// One event of a streamed answer, in the order a client needs them.
///
/// Text and tool calls are numbered by `index`, the position of their block in
/// the final answer, so encoders can open and close blocks correctly.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Start {
        id: String,
        model: String,
        created: u64,
        input_tokens: Option<u64>,
    },
    TextDelta {
        index: usize,
        text: String,
    },
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: usize,
        partial_json: String,
    },
    /// The model is thinking: Anthropic `thinking` and `redacted_thinking`
    /// blocks (their start, `thinking_delta`, `signature_delta`), an
    /// OpenAI-format server's `reasoning_content` or `reasoning`, Gemini's
    /// `thought` parts. `text` is the thinking as far as the format shows
    /// it (empty for a block's start, a signature or redacted thinking).
    /// No other format has a place for it, so encoders leave it out: only a
    /// client relayed the provider's own events sees it.
    Thinking {
        index: usize,
        text: String,
    },
    Finish {
        reason: FinishReason,
        stop_sequence: Option<String>,
    },
    /// Cumulative usage; the last one seen is the answer's total.
    Usage(Usage),
}

impl StreamEvent {
    /// Whether this is part of the answer whatever the client's format, so
    /// that the client has been shown something; until then a failed
    /// attempt can still be replaced by another target unseen. Thinking is
    /// not: only a client relayed the provider's own events sees it
    /// (`Chunk::is_shown`).
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            StreamEvent::TextDelta { .. }
                | StreamEvent::ToolCallStart { .. }
                | StreamEvent::ToolCallDelta { .. }
                | StreamEvent::Finish { .. }
        )
    }

    /// Whether the model is producing output: content, or thinking that a
    /// client of another format is never shown. The waits that look for a
    /// hung provider (`first_token_timeout`, `hedge_after`) end at the first
    /// such event; the answer's opening and keep-alives (Anthropic `ping`)
    /// are no sign of life, so a provider that sends only those still
    /// times out.
    pub fn is_output(&self) -> bool {
        self.is_content() || matches!(self, StreamEvent::Thinking { .. })
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
