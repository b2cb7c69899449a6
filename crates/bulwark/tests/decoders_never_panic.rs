//! The fuzz targets' properties (`fuzz/`, run by hand with nightly), checked
//! in CI with proptest: every decoder that reads bytes a client or a
//! provider sends (the four front doors' request decoders, each upstream
//! format's stream and complete-answer decoders, the SSE decoder, the
//! engine's config loader) takes any input without panicking, and never
//! holds more than `K` times the input's size plus `C` bytes while it
//! decodes.
//!
//! Inputs are arbitrary bytes, generated JSON values (with the field names
//! and type tags the formats use, so they get past the first `match`), and
//! the seed corpora (`fuzz/corpus/`, and the captured requests of
//! `tests/corpus/`) mutated: a node of their JSON replaced, or bytes
//! flipped, cut, inserted or repeated. 256 cases per property;
//! `PROPTEST_CASES` raises it.
//!
//! Peaks are measured with a counting global allocator
//! (`allocation_counter`), which counts the current thread only, so tests
//! running in parallel do not see each other's allocations.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bulwark::api::WireFormat;
use bulwark::fuzzing::{self, CLIENT_FORMATS, UPSTREAM_FORMATS};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};

/// Bytes held at the peak per byte of input. The decoders parse JSON into
/// `serde_json::Value`s, whose cost per byte of text depends on the shape:
/// a one-entry object (`{"text":"a"},`, 13 bytes) takes a whole B-tree
/// node of about 640 bytes, and while an array's `Vec` grows its old and
/// new buffers are both live. Measured (`large_inputs_stay_within_the_bound`):
/// 105.5 bytes per byte for an answer of many one-entry parts, 98x for an
/// array of `{"":0}`, 72x for a Gemini request of one-part `contents`, 48x
/// for an array of numbers; a typical request 25-45x (the seed corpus).
/// So this is what `Value` costs, not a decoder's copy; a decoder that
/// copied its input per element, or expanded it, would go over.
const K: usize = 112;

/// The config loader's: its YAML is read within a budget of 128 bytes per
/// byte of text (`config/budget.rs`, which stops aliases expanding past
/// it), and the parser keeps its own events beside the value.
const K_CONFIG: usize = 144;

/// Bytes a decoder may hold whatever its input: its own state, the error
/// text it writes, a small neutral request or answer, the config budget's
/// fixed part.
const C: usize = 128 * 1024;

fn bound(what: &str, n: usize) -> usize {
    let k = if what.starts_with("config") {
        K_CONFIG
    } else {
        K
    };
    k * n + C
}

/// The peak bytes held while `decode` runs on `n` bytes of input.
fn peak(decode: impl FnOnce()) -> usize {
    let info = allocation_counter::measure(decode);
    usize::try_from(info.bytes_max).unwrap_or(usize::MAX)
}

/// Runs `decode` on an input of `n` bytes; fails when it held more than the
/// bound at its peak.
fn bounded(what: &str, n: usize, decode: impl FnOnce()) -> Result<(), TestCaseError> {
    let peak = peak(decode);
    let bound = bound(what, n);
    prop_assert!(
        peak <= bound,
        "{what}: {peak} bytes at the peak for {n} bytes of input (bound {bound})"
    );
    Ok(())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed corpus of one fuzz target, as committed (a chunked target's
/// seeds start with their cutting header).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(repo().join("fuzz/corpus").join(target))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|file| std::fs::read(file.path()).ok())
        .collect();
    files.sort();
    files
}

const DOOR_PATHS: [(WireFormat, &str); 4] = [
    (WireFormat::OpenAi, "/v1/chat/completions"),
    (WireFormat::Anthropic, "/v1/messages"),
    (WireFormat::Responses, "/v1/responses"),
    (WireFormat::Gemini, "/v1/models/"),
];

/// A front door's request seeds: its fuzz corpus and the captured bodies
/// of `tests/corpus/`, the large Claude Code and Codex ones included (the
/// fuzz corpus leaves them out to keep libFuzzer's inputs small).
fn requests(format: WireFormat) -> &'static [Vec<u8>] {
    static ALL: OnceLock<Vec<Vec<Vec<u8>>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mut captured: Vec<(String, Vec<u8>)> = Vec::new();
        let clients = std::fs::read_dir(repo().join("tests/corpus"));
        for client in clients.into_iter().flatten().flatten() {
            for file in std::fs::read_dir(client.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let Some(capture) = std::fs::read(file.path())
                    .ok()
                    .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
                else {
                    continue;
                };
                if let Ok(body) = serde_json::to_vec(&capture["body"]) {
                    let path = capture["path"].as_str().unwrap_or_default().to_string();
                    captured.push((path, body));
                }
            }
        }
        DOOR_PATHS
            .iter()
            .map(|&(format, path)| {
                let mut bodies = seeds(&format!("request_{}", name(format)));
                bodies.extend(
                    captured
                        .iter()
                        .filter(|(p, _)| p.starts_with(path))
                        .map(|(_, body)| body.clone()),
                );
                bodies.sort();
                bodies
            })
            .collect()
    });
    let i = DOOR_PATHS.iter().position(|&(f, _)| f == format);
    i.and_then(|i| all.get(i)).map_or(&[], Vec::as_slice)
}

fn name(format: WireFormat) -> &'static str {
    match format {
        WireFormat::OpenAi => "openai",
        WireFormat::Anthropic => "anthropic",
        WireFormat::Responses => "responses",
        WireFormat::Gemini => "gemini",
        WireFormat::Converse => "converse",
    }
}

/// Field names and type tags of the four formats, so that generated JSON
/// reaches past the decoders' first checks.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "tools",
    "tool_choice",
    "input",
    "instructions",
    "contents",
    "parts",
    "system",
    "max_tokens",
    "stream",
    "choices",
    "delta",
    "finish_reason",
    "usage",
    "candidates",
    "functionCall",
    "functionResponse",
    "args",
    "thinking",
    "signature",
    "index",
    "content_block",
    "partial_json",
    "output",
    "item",
    "response",
    "error",
    "message",
    "code",
    "status",
    "image_url",
    "url",
    "source",
    "data",
    "media_type",
    "inlineData",
    "mimeType",
    "generationConfig",
    "stop",
    "temperature",
    "reasoning",
    "summary",
    "call_id",
    "output_index",
    "tool_use_id",
    "input_schema",
    "parameters",
    "response_format",
    "thought",
    "usageMetadata",
    "systemInstruction",
    "stop_reason",
    "refusal",
    "json_schema",
    "schema",
    "properties",
    "items",
    "n",
    "logprobs",
    "metadata",
    "stream_options",
    "include_usage",
    "prompt_tokens",
    "input_tokens",
    "output_tokens",
    "finishReason",
    "promptFeedback",
    "blockReason",
];

const TAGS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "model",
    "text",
    "image",
    "image_url",
    "tool_use",
    "tool_result",
    "function",
    "function_call",
    "function_call_output",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "signature_delta",
    "message_delta",
    "message_stop",
    "response.created",
    "response.output_text.delta",
    "response.completed",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.failed",
    "response.incomplete",
    "error",
    "stop",
    "length",
    "tool_calls",
    "STOP",
    "MAX_TOKENS",
    "[DONE]",
    "input_text",
    "output_text",
    "reasoning",
    "base64",
    "image/png",
    "data:image/png;base64,AAAA",
    "auto",
    "any",
    "none",
    "required",
    "object",
    "array",
    "string",
    "OBJECT",
    "json_schema",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(TAGS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![4 => prop::sample::select(KEYS).prop_map(String::from), 1 => ".{0,6}"],
                    inner
                ),
                0..8
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A change to a seed.
#[derive(Debug, Clone)]
enum Mutation {
    /// The nth node of its JSON (pre-order; of its nth event's data in a
    /// stream) replaced.
    Node(Index, Index, Value),
    Flip(Index, u8),
    Cut(Index),
    Insert(Index, Vec<u8>),
    /// A slice repeated, as a flood of one element would be.
    Repeat(Index, u8, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<Index>(), json_value()).prop_map(|(e, n, v)| Mutation::Node(e, n, v)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<Index>().prop_map(Mutation::Cut),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1..64u8, 2..32u8).prop_map(|(i, len, times)| Mutation::Repeat(i, len, times)),
    ]
}

/// Replaces the `n`th node of `value` in pre-order (counting down `n`).
fn replace_nth(value: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *value = with.clone();
        return true;
    }
    *n -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|item| replace_nth(item, n, with)),
        Value::Object(fields) => fields.values_mut().any(|field| replace_nth(field, n, with)),
        _ => false,
    }
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(fields) => fields.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn replace_node(json: &[u8], node: &Index, with: &Value) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(json).ok()?;
    let mut n = node.index(count_nodes(&value));
    replace_nth(&mut value, &mut n, with);
    serde_json::to_vec(&value).ok()
}

fn mutate_bytes(seed: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut out = seed.to_vec();
    let at = |i: &Index| i.index(seed.len().max(1)).min(seed.len());
    match mutation {
        Mutation::Node(..) => {}
        Mutation::Flip(i, b) => {
            if let Some(byte) = out.get_mut(at(i)) {
                *byte ^= b | 1;
            }
        }
        Mutation::Cut(i) => out.truncate(at(i)),
        Mutation::Insert(i, bytes) => {
            out.splice(at(i)..at(i), bytes.iter().copied());
        }
        Mutation::Repeat(i, len, times) => {
            let start = at(i);
            let end = (start + usize::from(*len)).min(seed.len());
            let slice = seed[start..end].to_vec();
            for _ in 1..*times {
                out.splice(end..end, slice.iter().copied());
            }
        }
    }
    out
}

/// A JSON body (a request, a complete answer) mutated.
fn mutate_json(seed: &[u8], mutation: &Mutation) -> Vec<u8> {
    match mutation {
        Mutation::Node(_, node, with) => {
            replace_node(seed, node, with).unwrap_or_else(|| seed.to_vec())
        }
        _ => mutate_bytes(seed, mutation),
    }
}

/// A chunked seed (cutting header and event stream) mutated: a node of
/// one event's JSON data, or its bytes.
fn mutate_stream(seed: &[u8], mutation: &Mutation) -> Vec<u8> {
    let Mutation::Node(event, node, with) = mutation else {
        return mutate_bytes(seed, mutation);
    };
    let (lengths, body) = fuzzing::split(seed);
    let mut events = fuzzing::sse(body, &[]);
    if !events.is_empty() {
        let i = event.index(events.len());
        if let Some(data) = replace_node(events[i].data.as_bytes(), node, with) {
            events[i].data = String::from_utf8_lossy(&data).into_owned();
        }
    }
    let mut out = seed[..seed.len() - body.len()].to_vec();
    debug_assert_eq!(fuzzing::split(&out).0.len(), lengths.len());
    for e in &events {
        out.extend_from_slice(&bulwark::sse::encode(e.event.as_deref(), &e.data));
    }
    out
}

fn sse_of(events: &[(Option<&str>, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend_from_slice(&bulwark::sse::encode(*name, &data.to_string()));
    }
    out
}

fn event_names() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop::sample::select(TAGS))
}

fn lengths() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..300usize, 0..6)
}

fn client_format() -> impl Strategy<Value = WireFormat> {
    prop::sample::select(&CLIENT_FORMATS[..])
}

fn upstream_format() -> impl Strategy<Value = WireFormat> {
    prop::sample::select(&UPSTREAM_FORMATS[..])
}

fn pick<'a>(seeds: &'a [Vec<u8>], i: &Index) -> &'a [u8] {
    if seeds.is_empty() {
        return &[];
    }
    &seeds[i.index(seeds.len())]
}

fn request(format: WireFormat, body: &[u8]) -> Result<(), TestCaseError> {
    bounded(&format!("{format:?} request"), body.len(), || {
        fuzzing::request(format, body)
    })
}

fn stream(format: WireFormat, body: &[u8], lengths: &[usize]) -> Result<(), TestCaseError> {
    bounded(&format!("{format:?} stream"), body.len(), || {
        fuzzing::stream(format, body, lengths)
    })
}

fn complete(format: WireFormat, body: &[u8]) -> Result<(), TestCaseError> {
    bounded(&format!("{format:?} complete answer"), body.len(), || {
        fuzzing::complete(format, body)
    })
}

proptest! {
    #[test]
    fn request_decoders_take_any_bytes(
        format in client_format(),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        request(format, &body)?;
    }

    #[test]
    fn request_decoders_take_any_json(format in client_format(), value in json_value()) {
        let mut body = serde_json::Map::new();
        body.insert("model".into(), "m".into());
        let body = match value {
            Value::Object(fields) => { let mut fields = fields; fields.append(&mut body); Value::Object(fields) }
            other => other,
        };
        request(format, body.to_string().as_bytes())?;
    }

    #[test]
    fn request_decoders_take_mutated_requests(
        format in client_format(),
        seed in any::<Index>(),
        mutation in mutation(),
    ) {
        let body = mutate_json(pick(requests(format), &seed), &mutation);
        request(format, &body)?;
    }

    #[test]
    fn stream_decoders_take_any_bytes(
        format in upstream_format(),
        body in prop::collection::vec(any::<u8>(), 0..2048),
        lengths in lengths(),
    ) {
        stream(format, &body, &lengths)?;
    }

    #[test]
    fn stream_decoders_take_any_events(
        format in upstream_format(),
        events in prop::collection::vec((event_names(), json_value()), 0..10),
        lengths in lengths(),
    ) {
        stream(format, &sse_of(&events), &lengths)?;
    }

    #[test]
    fn stream_decoders_take_mutated_streams(
        format in upstream_format(),
        seed in any::<Index>(),
        mutation in mutation(),
    ) {
        let input = mutate_stream(pick(&seeds(&format!("stream_{}", name(format))), &seed), &mutation);
        let (lengths, body) = fuzzing::split(&input);
        stream(format, body, &lengths)?;
    }

    #[test]
    fn complete_decoders_take_any_bytes(
        format in upstream_format(),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        complete(format, &body)?;
    }

    #[test]
    fn complete_decoders_take_any_json(format in upstream_format(), value in json_value()) {
        complete(format, value.to_string().as_bytes())?;
    }

    #[test]
    fn complete_decoders_take_mutated_answers(
        format in upstream_format(),
        seed in any::<Index>(),
        mutation in mutation(),
    ) {
        let body = mutate_json(pick(&seeds(&format!("complete_{}", name(format))), &seed), &mutation);
        complete(format, &body)?;
    }

    #[test]
    fn the_sse_decoder_takes_any_bytes(
        body in prop::collection::vec(
            prop_oneof![
                any::<u8>(),
                prop::sample::select(&b"data:event: \r\n\n\r"[..]),
            ],
            0..2048,
        ),
        lengths in lengths(),
    ) {
        bounded("sse", body.len(), || { let _ = fuzzing::sse(&body, &lengths); })?;
    }

    #[test]
    fn the_config_loader_takes_any_text(
        text in prop_oneof![
            ".{0,512}",
            prop::collection::vec(
                prop_oneof![
                    prop::sample::select(&[
                        "providers:", "routes:", "\n", "  ", "- ", ": ", "{", "}", "[", "]",
                        ",", "&a ", "*a", "<<: ", "${X}", "kind: openai", "targets: [a/b]",
                        "a", "1s", "\"", "'", "#", "!!str ", "? ", "|\n", ">\n", "---\n",
                    ][..]).prop_map(String::from),
                    ".{0,8}",
                ],
                0..96,
            ).prop_map(|parts| parts.concat()),
        ],
    ) {
        bounded("config", text.len(), || fuzzing::config(&text))?;
    }

    #[test]
    fn the_config_loader_takes_mutated_configs(seed in any::<Index>(), mutation in mutation()) {
        let text = mutate_bytes(pick(&seeds("config"), &seed), &mutation);
        let text = String::from_utf8_lossy(&text);
        bounded("config", text.len(), || fuzzing::config(&text))?;
    }
}

/// The seed corpora are there: without them the mutation properties would
/// pass on empty input.
#[test]
fn every_target_has_seeds() {
    for format in CLIENT_FORMATS {
        assert!(requests(format).len() >= 3, "{format:?} requests");
    }
    for format in UPSTREAM_FORMATS {
        assert!(!seeds(&format!("stream_{}", name(format))).is_empty());
        assert!(!seeds(&format!("complete_{}", name(format))).is_empty());
    }
    assert!(!seeds("sse").is_empty());
    assert!(!seeds("config").is_empty());
}

/// The shapes that cost the most per byte, large enough that `C` does not
/// hide them (the proptests' inputs are small); `--nocapture` prints the
/// worst. Measured when `K` was set: see `K`; a config of many providers
/// 59x.
#[test]
fn large_inputs_stay_within_the_bound() {
    let n = 64 * 1024;
    let repeat = |item: &str| format!("{item},").repeat(n / (item.len() + 1));
    let array = |item: &str| format!("[{}{item}]", repeat(item));
    let messages = |item: &str| format!(r#"{{"model":"m","messages":[{}{item}]}}"#, repeat(item));
    let text_part = r#"{"type":"text","text":""}"#;
    let bodies = [
        array("0"),
        array("{}"),
        array(r#"{"":0}"#),
        array(r#""""#),
        format!("{}{}", "[".repeat(n / 2), "]".repeat(n / 2)),
        messages(r#"{"role":"user","content":"a"}"#),
        messages("0"),
        format!(
            r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":{}}}]}}"#,
            array(text_part)
        ),
        format!(
            r#"{{"contents":{}}}"#,
            array(r#"{"role":"user","parts":[{"text":"a"}]}"#)
        ),
        format!(
            r#"{{"model":"m","input":{}}}"#,
            array(r#"{"role":"user","content":"a"}"#)
        ),
        format!(
            r#"{{"choices":[{{"message":{{"content":"a","tool_calls":{}}}}}]}}"#,
            array(r#"{"id":"c","function":{"name":"f","arguments":"{}"}}"#)
        ),
        format!(r#"{{"content":{}}}"#, array(text_part)),
        format!(
            r#"{{"candidates":[{{"content":{{"parts":{}}}}}]}}"#,
            array(r#"{"text":"a"}"#)
        ),
        format!(
            r#"{{"output":{}}}"#,
            array(r#"{"type":"message","content":[{"type":"output_text","text":"a"}]}"#)
        ),
    ];
    let mut worst = (0.0, String::new());
    let mut check = |what: String, n: usize, peak: usize| {
        let ratio = peak as f64 / n as f64;
        if ratio > worst.0 {
            worst = (ratio, what.clone());
        }
        assert!(peak <= bound(&what, n), "{what}: {peak} bytes for {n}");
    };
    for (i, body) in bodies.iter().enumerate() {
        for format in CLIENT_FORMATS {
            check(
                format!("{format:?} request {i}"),
                body.len(),
                peak(|| fuzzing::request(format, body.as_bytes())),
            );
            check(
                format!("{format:?} complete {i}"),
                body.len(),
                peak(|| fuzzing::complete(format, body.as_bytes())),
            );
            let stream = format!("data: {body}\n\n");
            check(
                format!("{format:?} stream {i}"),
                stream.len(),
                peak(|| fuzzing::stream(format, stream.as_bytes(), &[])),
            );
        }
    }
    let events = [
        "data: {}\n\n".to_string(),
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n".to_string(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n".to_string(),
        "data: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"a\"}\n\n".to_string(),
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n".to_string(),
        "data:\n\n".to_string(),
    ];
    for (i, event) in events.iter().enumerate() {
        let stream = event.repeat(n / event.len());
        for format in UPSTREAM_FORMATS {
            check(
                format!("{format:?} stream of events {i}"),
                stream.len(),
                peak(|| fuzzing::stream(format, stream.as_bytes(), &[])),
            );
        }
        check(
            format!("sse {i}"),
            stream.len(),
            peak(|| {
                let _ = fuzzing::sse(stream.as_bytes(), &[1]);
            }),
        );
    }
    let config = format!(
        "providers:\n{}routes:\n  r: {{ targets: [p0/x] }}\n",
        (0..2000)
            .map(|i| format!("  p{i}: {{ kind: openai }}\n"))
            .collect::<String>()
    );
    check(
        "config".into(),
        config.len(),
        peak(|| fuzzing::config(&config)),
    );
    eprintln!("worst: {:.1} bytes per byte, {}", worst.0, worst.1);
}

/// Found by `the_config_loader_takes_*`'s measurements: each alias replays
/// its anchor, so five lines of nested aliases made 34 MB of a 300-byte
/// file (and one more line, ten times that).
#[test]
fn config_aliases_cannot_expand_past_the_bound() {
    let laughs = "x0: &a0 [1,1,1,1,1,1,1,1,1,1]\n\
        x1: &a1 [*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0]\n\
        x2: &a2 [*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1]\n\
        x3: &a3 [*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2]\n\
        x4: &a4 [*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3]\n";
    let long = format!(
        "s: &s \"{}\"\nl: [{}]\n",
        "a".repeat(4000),
        "*s,".repeat(2000)
    );
    for text in [laughs, &long] {
        let peak = peak(|| fuzzing::config(text));
        assert!(
            peak <= bound("config", text.len()),
            "{peak} bytes for {}",
            text.len()
        );
    }
}
