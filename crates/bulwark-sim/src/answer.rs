//! Deterministic answers and token counts, independent of wire format.
//!
//! Token rule: a token is a whitespace-separated word. Prompt tokens are the
//! words across the system prompt, every message's text, tool-result text and
//! earlier tool-call arguments (images and tool declarations count nothing),
//! with a minimum of 1. Completion tokens are the words of the answer text; a
//! tool call counts 1 for the name plus 1 per argument.
//!
//! Answer rule: `Simulated answer from <model>: <first 12 words of the last
//! user text>`, plus `(N image[s])` when that message holds images. When the
//! last message holds tool results the answer quotes them instead. Stop
//! sequences cut the text before the earliest match (trailing whitespace
//! trimmed so streamed and non-streamed text agree); `max_tokens` then
//! truncates to that many words.
//!
//! Tool rule: with tool choice auto (or none given) the model calls a tool
//! only when the last user text holds `sim:call <ToolName>`, optionally
//! followed on the same line by a JSON object of arguments: a client with
//! many tools declared (Claude Code sends two dozen) gets text unless it
//! asks. The named tool is called with those arguments, or with arguments
//! built from its schema when none are given; a tool that is not declared,
//! or arguments that are not a JSON object, get a text answer saying so.
//! With tool choice required (`any`, `ANY`) the model always calls: the
//! `sim:call` tool if it names a declared one, else the first declared; a
//! named tool choice calls that tool (with `sim:call`'s arguments when the
//! directive names the same tool). Tool results in the last turn always get
//! the text answer quoting them.
//!
//! Thinking rule: when the request asks for thinking (Anthropic `thinking`
//! enabled or adaptive, OpenAI `reasoning_effort`, Gemini
//! `thinkingConfig.includeThoughts`), the model also thinks
//! `Simulated thinking from <model>: <first 12 words of the last user
//! text>` (`... about the tool result` after tool results); its words are
//! reported as thinking tokens.
//!
//! Structured-output rule: when the request asks for a JSON schema (OpenAI
//! `response_format` `json_schema`, Anthropic `output_config.format` or the
//! beta's top-level `output_format`, Gemini `responseJsonSchema` or
//! `responseSchema`), the answer text is a compact JSON document satisfying
//! it, built by `schema::example` with the usual answer text as its first
//! plain string; JSON mode without a schema (OpenAI `json_object`, Gemini
//! `responseMimeType: application/json` alone) answers
//! `{"answer":"<the usual text>"}`. Stop sequences and `max_tokens` apply
//! to the JSON text as to any text, so a short limit cuts it, as a real
//! model's would be.

use serde_json::Value;

/// How many words of the user text the answer echoes.
const ECHO_WORDS: usize = 12;

/// The request, reduced to what the answer depends on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prompt {
    pub model: String,
    /// Every input text, for token counting.
    pub texts: Vec<String>,
    /// Text of the last user message.
    pub last_user_text: String,
    /// Images in the last user message.
    pub images: usize,
    /// Set when the last message carries tool results.
    pub tool_results: Option<Vec<String>>,
    /// Whether the last message is a user turn.
    pub last_is_user: bool,
    pub tools: Vec<ToolDecl>,
    pub tool_choice: ToolChoice,
    pub max_tokens: Option<u64>,
    pub stop: Vec<String>,
    /// Whether the request asked the model to think (or reason) first.
    pub thinking: bool,
    /// The shape the answer text must have, when the request set one.
    pub output: Option<Output>,
}

/// Structured output a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// A JSON document satisfying this JSON Schema.
    Schema(Value),
    /// Any JSON object.
    JsonObject,
}

/// A declared tool: name and JSON schema of its parameters.
#[derive(Debug, Clone)]
pub(crate) struct ToolDecl {
    pub name: String,
    pub schema: Value,
}

/// Normalised tool choice.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum ToolChoice {
    #[default]
    Auto,
    None,
    /// OpenAI `required`, Anthropic `any`, Gemini `ANY`: some tool must be called.
    Required,
    Named(String),
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Finish {
    Stop,
    Length,
    StopSequence(String),
    ToolUse,
}

/// A tool call the simulated model makes.
#[derive(Debug, Clone)]
pub(crate) struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// The simulated model output.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// What the model thought first, when the request asked for thinking.
    pub thinking: Option<String>,
    pub text: String,
    pub tool_call: Option<ToolCall>,
    pub finish: Finish,
    pub input_tokens: u64,
    /// Tokens of the visible answer (text or tool call), without thinking.
    pub output_tokens: u64,
    /// Words of `thinking` (0 without it).
    pub thinking_tokens: u64,
}

impl Answer {
    /// Output tokens with thinking included, as Anthropic and OpenAI bill them.
    pub(crate) fn billed_output_tokens(&self) -> u64 {
        self.output_tokens + self.thinking_tokens
    }
}

/// Count tokens (words) in `text`.
pub(crate) fn count_words(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

/// Prompt tokens: words across all input texts, at least 1.
pub(crate) fn prompt_tokens(texts: &[String]) -> u64 {
    texts.iter().map(|t| count_words(t)).sum::<u64>().max(1)
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Derive the answer for a prompt.
pub(crate) fn answer(prompt: &Prompt) -> Answer {
    let input_tokens = prompt_tokens(&prompt.texts);
    let thinking = prompt.thinking.then(|| thinking_text(prompt));
    let thinking_tokens = thinking.as_deref().map_or(0, count_words);
    let text = match decide_tool(prompt) {
        ToolDecision::Call(call) => {
            let output_tokens = 1 + call
                .arguments
                .as_object()
                .map_or(0, |m| u64::try_from(m.len()).unwrap_or(0));
            return Answer {
                thinking,
                text: String::new(),
                tool_call: Some(call),
                finish: Finish::ToolUse,
                input_tokens,
                output_tokens,
                thinking_tokens,
            };
        }
        ToolDecision::Refuse(note) => format!("Simulated answer from {}: {note}", prompt.model),
        ToolDecision::Text => text_answer(prompt),
    };
    let text = first_words(&text, usize::MAX);
    // The usual text is built first, so that it is the document's content.
    let text = match &prompt.output {
        None => text,
        Some(Output::JsonObject) => serde_json::json!({"answer": text}).to_string(),
        Some(Output::Schema(schema)) => crate::schema::example(schema, Some(&text)).to_string(),
    };
    let (text, mut finish) = apply_stop(text, &prompt.stop);
    let (text, truncated) = truncate(text, prompt.max_tokens);
    if truncated {
        finish = Finish::Length;
    }
    let output_tokens = count_words(&text);
    Answer {
        thinking,
        text,
        tool_call: None,
        finish,
        input_tokens,
        output_tokens,
        thinking_tokens,
    }
}

fn text_answer(prompt: &Prompt) -> String {
    let mut text = format!("Simulated answer from {}:", prompt.model);
    if let Some(results) = &prompt.tool_results {
        text.push_str(" the tool returned ");
        text.push_str(&first_words(&results.join(" "), ECHO_WORDS));
    } else {
        let echo = first_words(&prompt.last_user_text, ECHO_WORDS);
        if !echo.is_empty() {
            text.push(' ');
            text.push_str(&echo);
        }
        match prompt.images {
            0 => {}
            1 => text.push_str(" (1 image)"),
            n => text.push_str(&format!(" ({n} images)")),
        }
    }
    text
}

fn thinking_text(prompt: &Prompt) -> String {
    let about = if prompt.tool_results.is_some() {
        "about the tool result".to_string()
    } else {
        first_words(&prompt.last_user_text, ECHO_WORDS)
    };
    first_words(
        &format!("Simulated thinking from {}: {about}", prompt.model),
        usize::MAX,
    )
}

fn apply_stop(text: String, stops: &[String]) -> (String, Finish) {
    let earliest = stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|i| (i, s)))
        .min_by_key(|(i, _)| *i);
    match earliest {
        Some((i, s)) => (
            text[..i].trim_end().to_string(),
            Finish::StopSequence(s.clone()),
        ),
        None => (text, Finish::Stop),
    }
}

fn truncate(text: String, max_tokens: Option<u64>) -> (String, bool) {
    let Some(max) = max_tokens else {
        return (text, false);
    };
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if text.split_whitespace().count() <= max {
        return (text, false);
    }
    (first_words(&text, max), true)
}

/// What the model does about tools for this prompt.
#[derive(Debug)]
enum ToolDecision {
    Call(ToolCall),
    /// A text answer saying why the requested call was not made.
    Refuse(String),
    /// The ordinary text answer.
    Text,
}

/// `sim:call <ToolName> [{json arguments}]` found in the last user text.
#[derive(Debug, PartialEq)]
struct Directive {
    name: String,
    /// `None` when no arguments follow; `Err` when what follows is not a JSON object.
    arguments: Option<Result<Value, String>>,
}

const DIRECTIVE: &str = "sim:call";

/// The first `sim:call` directive in `text`, if any.
fn directive(text: &str) -> Option<Directive> {
    let mut rest = text;
    while let Some(at) = rest.find(DIRECTIVE) {
        let after = &rest[at + DIRECTIVE.len()..];
        rest = after;
        // `sim:call` must be followed by horizontal space, then the name.
        let line = after.split('\n').next().unwrap_or("");
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.len() == line.len() {
            continue;
        }
        let end = trimmed
            .find(|c: char| c.is_whitespace() || c == '{')
            .unwrap_or(trimmed.len());
        let name = &trimmed[..end];
        if name.is_empty() {
            continue;
        }
        let tail = trimmed[end..].trim_start();
        let arguments = tail.starts_with('{').then(|| {
            let mut values = serde_json::Deserializer::from_str(tail).into_iter::<Value>();
            match values.next() {
                Some(Ok(value @ Value::Object(_))) => Ok(value),
                Some(Ok(_)) => Err("not a JSON object".to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("missing".to_string()),
            }
        });
        return Some(Directive {
            name: name.to_string(),
            arguments,
        });
    }
    None
}

fn decide_tool(prompt: &Prompt) -> ToolDecision {
    if !prompt.last_is_user
        || prompt.tool_results.is_some()
        || prompt.tool_choice == ToolChoice::None
    {
        return ToolDecision::Text;
    }
    let asked = directive(&prompt.last_user_text);
    let declared = |name: &str| prompt.tools.iter().find(|t| t.name == name);
    let call = |tool: &ToolDecl, arguments: Option<&Result<Value, String>>| match arguments {
        None => ToolDecision::Call(ToolCall {
            name: tool.name.clone(),
            arguments: args_from_schema(&tool.schema),
        }),
        Some(Ok(arguments)) => ToolDecision::Call(ToolCall {
            name: tool.name.clone(),
            arguments: arguments.clone(),
        }),
        Some(Err(e)) => ToolDecision::Refuse(format!(
            "the arguments after sim:call {} are not a JSON object ({e})",
            tool.name
        )),
    };
    match &prompt.tool_choice {
        ToolChoice::None => ToolDecision::Text,
        ToolChoice::Auto => match asked {
            None => ToolDecision::Text,
            Some(d) => match declared(&d.name) {
                Some(tool) => call(tool, d.arguments.as_ref()),
                None => ToolDecision::Refuse(format!("no tool named {} is declared", d.name)),
            },
        },
        ToolChoice::Required => {
            let asked_tool = asked
                .as_ref()
                .and_then(|d| declared(&d.name).map(|tool| (tool, d.arguments.as_ref())));
            match asked_tool {
                Some((tool, arguments)) => call(tool, arguments),
                None => prompt
                    .tools
                    .first()
                    .map_or(ToolDecision::Text, |tool| call(tool, None)),
            }
        }
        ToolChoice::Named(name) => {
            let Some(tool) = declared(name).or(prompt.tools.first()) else {
                return ToolDecision::Text;
            };
            let arguments = asked
                .as_ref()
                .filter(|d| d.name == tool.name)
                .and_then(|d| d.arguments.as_ref());
            call(tool, arguments)
        }
    }
}

/// Arguments for a tool: a document satisfying its schema
/// (`schema::example`), every string `sim`. A schema that does not describe
/// an object (or none) gets `{}`.
pub(crate) fn args_from_schema(schema: &Value) -> Value {
    match crate::schema::example(schema, None) {
        args @ Value::Object(_) => args,
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// Split text into stream tokens: one word each, later words carry their
/// leading space so the concatenation equals the text.
pub(crate) fn stream_tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

/// Split a JSON argument string into at least two fragments (three when long
/// enough), on character boundaries, so clients must concatenate.
pub(crate) fn fragments(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let pieces = if chars.len() >= 6 { 3 } else { 2 };
    let size = chars.len().div_ceil(pieces).max(1);
    let mut out: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
    while out.len() < 2 {
        out.push(String::new());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt(text: &str) -> Prompt {
        Prompt {
            model: "m".into(),
            texts: vec!["Be terse.".into(), text.into()],
            last_user_text: text.into(),
            last_is_user: true,
            ..Prompt::default()
        }
    }

    #[test]
    fn token_counting() {
        assert_eq!(count_words("  a b\tc\nd "), 4);
        assert_eq!(prompt_tokens(&[]), 1);
        assert_eq!(prompt_tokens(&["".into()]), 1);
        assert_eq!(prompt_tokens(&["Be terse.".into(), "Say hi".into()]), 4);
    }

    #[test]
    fn text_answer_echoes_user() {
        let a = answer(&prompt("Say hi"));
        assert_eq!(a.text, "Simulated answer from m: Say hi");
        assert_eq!(a.finish, Finish::Stop);
        assert_eq!(a.input_tokens, 4);
        assert_eq!(a.output_tokens, 6);
    }

    #[test]
    fn images_and_tool_results() {
        let mut p = prompt("what is this");
        p.images = 2;
        assert_eq!(
            answer(&p).text,
            "Simulated answer from m: what is this (2 images)"
        );
        let mut p = prompt("x");
        p.tool_results = Some(vec!["sunny, 21C".into()]);
        p.last_is_user = false;
        assert_eq!(
            answer(&p).text,
            "Simulated answer from m: the tool returned sunny, 21C"
        );
    }

    #[test]
    fn max_tokens_and_stop() {
        let mut p = prompt("one two three");
        p.max_tokens = Some(3);
        let a = answer(&p);
        assert_eq!(a.text, "Simulated answer from");
        assert_eq!(a.finish, Finish::Length);
        assert_eq!(a.output_tokens, 3);

        let mut p = prompt("one two three");
        p.stop = vec!["three".into(), "two".into()];
        let a = answer(&p);
        assert_eq!(a.text, "Simulated answer from m: one");
        assert_eq!(a.finish, Finish::StopSequence("two".into()));
    }

    #[test]
    fn tool_call_from_schema() {
        let mut p = prompt("weather?");
        p.tools = vec![
            ToolDecl {
                name: "first".into(),
                schema: json!({}),
            },
            ToolDecl {
                name: "get_weather".into(),
                schema: json!({"type": "object", "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "temp": {"type": "number"},
                    "metric": {"type": "boolean"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "opts": {"type": "object"},
                    "maybe": {"type": ["null", "integer"]},
                    "up": {"type": "STRING"}
                }}),
            },
        ];
        p.tool_choice = ToolChoice::Named("get_weather".into());
        let a = answer(&p);
        let call = a.tool_call.unwrap();
        assert_eq!(call.name, "get_weather");
        assert_eq!(
            call.arguments,
            json!({"city": "sim", "days": 1, "temp": 1.5, "metric": true, "unit": "c",
                "tags": ["sim"], "opts": {}, "maybe": 1, "up": "sim"})
        );
        assert_eq!(a.finish, Finish::ToolUse);
        assert_eq!(a.output_tokens, 10);

        p.tool_choice = ToolChoice::Required;
        assert_eq!(answer(&p).tool_call.unwrap().name, "first");
        p.tool_choice = ToolChoice::None;
        assert!(answer(&p).tool_call.is_none());
        // Auto without a `sim:call` directive: text, whatever is declared.
        p.tool_choice = ToolChoice::Auto;
        let a = answer(&p);
        assert!(a.tool_call.is_none());
        assert_eq!(a.text, "Simulated answer from m: weather?");
    }

    fn with_tools(text: &str) -> Prompt {
        let mut p = prompt(text);
        p.tools = vec![
            ToolDecl {
                name: "Bash".into(),
                schema: json!({"type": "object", "properties": {"command": {"type": "string"}}}),
            },
            ToolDecl {
                name: "Read".into(),
                schema: json!({"type": "object", "properties": {"file_path": {"type": "string"}}}),
            },
        ];
        p
    }

    #[test]
    fn sim_call_directive_calls_on_demand() {
        let a = answer(&with_tools(
            "please sim:call Read {\"file_path\": \"/tmp/x/notes.txt\"} now\nmore",
        ));
        let call = a.tool_call.unwrap();
        assert_eq!(call.name, "Read");
        assert_eq!(call.arguments, json!({"file_path": "/tmp/x/notes.txt"}));
        assert_eq!(a.finish, Finish::ToolUse);

        let call = answer(&with_tools("sim:call Read")).tool_call.unwrap();
        assert_eq!(call.arguments, json!({"file_path": "sim"}));

        // Arguments on the next line are not the directive's.
        let call = answer(&with_tools("sim:call Bash\n{\"command\": \"ls\"}"))
            .tool_call
            .unwrap();
        assert_eq!(call.arguments, json!({"command": "sim"}));

        let a = answer(&with_tools("sim:call Write {}"));
        assert!(a.tool_call.is_none());
        assert_eq!(
            a.text,
            "Simulated answer from m: no tool named Write is declared"
        );
        assert_eq!(a.finish, Finish::Stop);

        let a = answer(&with_tools("sim:call Read {\"file_path\": "));
        assert!(a.tool_call.is_none());
        assert!(
            a.text.starts_with(
                "Simulated answer from m: the arguments after sim:call Read are not a JSON object"
            ),
            "{}",
            a.text
        );

        // No tools declared at all: the directive still answers that it is not.
        let a = answer(&prompt("sim:call Read"));
        assert_eq!(
            a.text,
            "Simulated answer from m: no tool named Read is declared"
        );
        // `sim:call` needs a name after a space.
        assert!(answer(&with_tools("sim:callRead")).tool_call.is_none());
        assert!(answer(&with_tools("sim:call")).tool_call.is_none());
    }

    #[test]
    fn tool_choice_required_and_named_with_directive() {
        let mut p = with_tools("sim:call Read {\"file_path\": \"/a\"}");
        p.tool_choice = ToolChoice::Required;
        let call = answer(&p).tool_call.unwrap();
        assert_eq!(
            (call.name.as_str(), call.arguments),
            ("Read", json!({"file_path": "/a"}))
        );
        p.last_user_text = "sim:call Nope".into();
        assert_eq!(answer(&p).tool_call.unwrap().name, "Bash");
        p.tool_choice = ToolChoice::Named("Read".into());
        let call = answer(&p).tool_call.unwrap();
        assert_eq!(
            (call.name.as_str(), call.arguments),
            ("Read", json!({"file_path": "sim"}))
        );
        // After a tool result, the text quoting it, even with a directive.
        p.tool_choice = ToolChoice::Auto;
        p.last_user_text = "sim:call Read".into();
        p.tool_results = Some(vec!["done".into()]);
        let a = answer(&p);
        assert!(a.tool_call.is_none());
        assert_eq!(a.text, "Simulated answer from m: the tool returned done");
    }

    #[test]
    fn thinking_when_asked() {
        let a = answer(&prompt("Say hi"));
        assert_eq!((a.thinking, a.thinking_tokens), (None, 0));
        let mut p = prompt("Say hi");
        p.thinking = true;
        let a = answer(&p);
        assert_eq!(
            a.thinking.as_deref(),
            Some("Simulated thinking from m: Say hi")
        );
        assert_eq!(a.thinking_tokens, 6);
        assert_eq!(a.output_tokens, 6);
        assert_eq!(a.billed_output_tokens(), 12);
    }

    #[test]
    fn stream_splitting() {
        assert_eq!(stream_tokens("a bc d"), vec!["a", " bc", " d"]);
        assert_eq!(fragments("{}"), vec!["{", "}"]);
        let f = fragments(r#"{"city":"sim"}"#);
        assert_eq!(f.len(), 3);
        assert_eq!(f.concat(), r#"{"city":"sim"}"#);
    }
}
