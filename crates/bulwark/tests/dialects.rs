//! The dialect traits: what each provider kind and front door says about
//! URLs, headers, finish reasons and statuses, and the neutral-event
//! encoders that write an answer in a provider's own format.

use bulwark::api::{FinishReason, StreamEvent, Usage, WireFormat};
use bulwark::config::ProviderKind;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::wire::{self, StreamHead, anthropic, openai};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KINDS: [ProviderKind; 4] = [
    ProviderKind::OpenAi,
    ProviderKind::OpenAiCompatible,
    ProviderKind::Anthropic,
    ProviderKind::Gemini,
];

#[test]
fn each_provider_kind_has_its_url_headers_and_names() -> TestResult {
    let header_names = |kind, key| -> Vec<(&'static str, String)> {
        wire::upstream(kind)
            .headers(key)
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect()
    };
    let expected = [
        (
            ProviderKind::OpenAi,
            WireFormat::OpenAi,
            "openai",
            "openai",
            Some("https://api.openai.com/v1"),
            "http://h/chat/completions",
            vec![("authorization", "Bearer k".to_string())],
        ),
        (
            ProviderKind::OpenAiCompatible,
            WireFormat::OpenAi,
            "openai-compatible",
            "openai",
            None,
            "http://h/chat/completions",
            vec![("authorization", "Bearer k".to_string())],
        ),
        (
            ProviderKind::Anthropic,
            WireFormat::Anthropic,
            "anthropic",
            "anthropic",
            Some("https://api.anthropic.com"),
            "http://h/v1/messages",
            vec![
                ("x-api-key", "k".to_string()),
                ("anthropic-version", anthropic::API_VERSION.to_string()),
            ],
        ),
        (
            ProviderKind::Gemini,
            WireFormat::Gemini,
            "gemini",
            "gcp.gemini",
            Some("https://generativelanguage.googleapis.com"),
            "http://h/v1beta/models/m-1.5:streamGenerateContent?alt=sse",
            vec![("x-goog-api-key", "k".to_string())],
        ),
    ];
    for (kind, format, name, semconv, base, url, headers) in expected {
        let dialect = wire::upstream(kind);
        assert_eq!(dialect.format(), format, "{kind:?}");
        assert_eq!(dialect.kind_name(), name);
        assert_eq!(dialect.semconv_name(), semconv);
        assert_eq!(dialect.default_base_url(), base);
        assert_eq!(dialect.url("http://h", "m-1.5")?, url);
        assert_eq!(header_names(kind, Some("k")), headers);
        assert!(
            dialect
                .headers(Some("k"))
                .iter()
                .all(|h| h.secret == h.value.contains('k'))
        );
    }
    // Without a key only the headers the API requires are sent.
    assert_eq!(
        header_names(ProviderKind::Anthropic, None),
        vec![("anthropic-version", anthropic::API_VERSION.to_string())]
    );
    assert!(header_names(ProviderKind::OpenAi, None).is_empty());
    Ok(())
}

#[test]
fn only_anthropic_continues_a_prefill() {
    for kind in KINDS {
        assert_eq!(
            wire::upstream(kind).continues_prefill(),
            kind == ProviderKind::Anthropic,
            "{kind:?}"
        );
    }
}

#[test]
fn gemini_refuses_a_model_name_that_could_reach_another_endpoint() {
    let gemini = wire::upstream(ProviderKind::Gemini);
    for model in ["../files", "m?alt=json", "m/x", "m:generateContent"] {
        let error = gemini.url("http://h", model).err();
        assert_eq!(
            error.as_ref().and_then(|e| e.param.as_deref()),
            Some("model"),
            "{model}"
        );
    }
    // Other kinds carry the model in the body, where any name is harmless.
    assert!(
        wire::upstream(ProviderKind::OpenAi)
            .url("http://h", "../files")
            .is_ok()
    );
}

/// Google's `retryDelay` is honoured whichever kind relays it: a proxy in
/// front of Gemini passes its error bodies through.
#[test]
fn every_kind_reads_googles_wait_from_the_error_body() {
    let body = serde_json::json!({"error": {"details": [{"retryDelay": "41s"}]}});
    for kind in KINDS {
        let hint = wire::upstream(kind).retry_hint(&body);
        assert_eq!(hint, Some(std::time::Duration::from_secs(41)), "{kind:?}");
    }
    let plain = serde_json::json!({"error": {"message": "slow down"}});
    for kind in KINDS {
        assert_eq!(wire::upstream(kind).retry_hint(&plain), None, "{kind:?}");
    }
}

#[test]
fn finish_reasons_read_and_write_through_one_table() {
    let all = [
        FinishReason::Stop,
        FinishReason::StopSequence,
        FinishReason::Length,
        FinishReason::ToolUse,
        FinishReason::ContentFilter,
    ];
    for reason in all {
        let anthropic = reason.name(WireFormat::Anthropic);
        assert_eq!(
            FinishReason::from_name(WireFormat::Anthropic, anthropic),
            Some(reason.clone())
        );
        // OpenAI has no name of its own for a stop sequence.
        let openai = reason.name(WireFormat::OpenAi);
        let read = FinishReason::from_name(WireFormat::OpenAi, openai);
        let expected = match reason {
            FinishReason::StopSequence => FinishReason::Stop,
            other => other,
        };
        assert_eq!(read, Some(expected));
    }
    assert_eq!(
        FinishReason::from_name(WireFormat::OpenAi, "model_length"),
        Some(FinishReason::Length)
    );
    assert_eq!(
        FinishReason::from_name(WireFormat::Anthropic, "model_context_window_exceeded"),
        Some(FinishReason::Length)
    );
    assert_eq!(FinishReason::from_name(WireFormat::OpenAi, "novel"), None);
}

#[test]
fn each_sdk_gets_the_status_that_raises_its_matching_exception() {
    let overloaded = ApiError::new(ErrorKind::Overloaded, "busy");
    let billing = ApiError::new(ErrorKind::Billing, "no credit");
    let rate = ApiError::new(ErrorKind::RateLimit, "slow down");
    let anthropic = &anthropic::FrontDoor as &dyn wire::ClientDialect;
    let openai = &openai::FrontDoor as &dyn wire::ClientDialect;
    assert_eq!(anthropic.status_for(&overloaded), 529);
    assert_eq!(anthropic.status_for(&billing), 402);
    assert_eq!(openai.status_for(&overloaded), 503);
    assert_eq!(openai.status_for(&billing), 429);
    for door in [anthropic, openai] {
        assert_eq!(door.status_for(&rate), 429);
        assert_eq!(door.status_for(&overloaded.clone().with_status(500)), 500);
    }
}

fn data(chunk: &bulwark::provider::Chunk) -> Result<Value, serde_json::Error> {
    serde_json::from_str(&chunk.raw.data)
}

fn ending(reason: FinishReason) -> Vec<StreamEvent> {
    vec![
        StreamEvent::TextDelta {
            index: 0,
            text: "lo".into(),
        },
        StreamEvent::Finish {
            reason,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 4,
        }),
    ]
}

#[test]
fn an_openai_answer_is_continued_in_its_own_chunks() -> TestResult {
    let head = StreamHead {
        id: "chatcmpl-1".into(),
        model: "gpt".into(),
        created: 7,
        started: true,
        ..StreamHead::default()
    };
    let chunks = openai::encode_events(&head, &ending(FinishReason::Length), true);
    assert_eq!(chunks.len(), 4, "{chunks:#?}");
    let text = data(&chunks[0])?;
    assert_eq!(
        (&text["id"], &text["model"], &text["created"]),
        (&"chatcmpl-1".into(), &"gpt".into(), &7.into())
    );
    assert_eq!(text["choices"][0]["delta"]["content"], "lo");
    assert_eq!(data(&chunks[1])?["choices"][0]["finish_reason"], "length");
    assert_eq!(data(&chunks[2])?["usage"]["total_tokens"], 7);
    assert_eq!(chunks[3].raw.data, "[DONE]");
    let expected = ending(FinishReason::Length);
    assert_eq!(chunks[0].events, vec![expected[0].clone()]);
    assert_eq!(chunks[1].events, vec![expected[1].clone()]);
    // Every neutral event travels with some raw event, in order.
    let events: Vec<_> = chunks.iter().flat_map(|c| c.events.clone()).collect();
    assert_eq!(events, expected);
    // The same through the registry, by the provider's format.
    assert_eq!(
        wire::encode_events(WireFormat::OpenAi, &head, &expected, true),
        chunks
    );
    // A Gemini answer goes on in Gemini's own chunks, which a client of
    // the Gemini front door is relayed: no terminator, the finish reason
    // and usage on a last chunk.
    let gemini = wire::encode_events(WireFormat::Gemini, &head, &expected, true);
    assert_eq!(gemini.len(), 2, "{gemini:#?}");
    let text = data(&gemini[0])?;
    assert_eq!(text["candidates"][0]["content"]["parts"][0]["text"], "lo");
    assert_eq!(text["responseId"], "chatcmpl-1");
    let last = data(&gemini[1])?;
    assert_eq!(last["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 7);
    let events: Vec<_> = gemini.iter().flat_map(|c| c.events.clone()).collect();
    assert_eq!(events, expected);
    Ok(())
}

#[test]
fn an_anthropic_answer_is_continued_in_its_open_block() -> TestResult {
    let head = StreamHead {
        id: "msg_1".into(),
        model: "claude".into(),
        created: 0,
        started: true,
        open_text: Some((0, 1)),
        blocks: 2,
    };
    let chunks = anthropic::encode_events(&head, &ending(FinishReason::StopSequence), true);
    let names: Vec<_> = chunks.iter().map(|c| c.raw.event.as_deref()).collect();
    assert_eq!(
        names,
        vec![
            Some("content_block_delta"),
            Some("content_block_stop"),
            Some("message_delta"),
            Some("message_stop")
        ]
    );
    assert_eq!(data(&chunks[0])?["index"], 1);
    assert_eq!(data(&chunks[0])?["delta"]["text"], "lo");
    assert_eq!(data(&chunks[1])?["index"], 1);
    assert_eq!(data(&chunks[2])?["delta"]["stop_reason"], "stop_sequence");
    assert_eq!(data(&chunks[2])?["usage"]["output_tokens"], 4);
    // Every neutral event travels with some raw event, in order.
    let events: Vec<_> = chunks.iter().flat_map(|c| c.events.clone()).collect();
    assert_eq!(events, ending(FinishReason::StopSequence));
    Ok(())
}

#[test]
fn a_fresh_answer_opens_with_the_chosen_id() -> TestResult {
    let head = StreamHead {
        id: "chatcmpl-bulwark-static".into(),
        model: "bulwark-static".into(),
        created: 9,
        ..StreamHead::default()
    };
    let sse = openai::encode_sse(&head, &ending(FinishReason::Stop), true);
    let first: Value = serde_json::from_str(&sse[0].data)?;
    assert_eq!(first["id"], "chatcmpl-bulwark-static");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    // It decodes as any provider's stream does.
    let mut decoder = openai::StreamDecoder::new();
    let mut events = Vec::new();
    for event in &sse {
        decoder.on_event(event, &mut events)?;
    }
    assert!(decoder.is_done());

    let head = StreamHead {
        id: "msg_static".into(),
        ..StreamHead::default()
    };
    let sse = anthropic::encode_sse(&head, &ending(FinishReason::Stop), true);
    let first: Value = serde_json::from_str(&sse[0].data)?;
    assert_eq!(first["message"]["id"], "msg_static");
    let mut decoder = anthropic::StreamDecoder::new();
    let mut events = Vec::new();
    for event in &sse {
        decoder.on_event(event, &mut events)?;
    }
    assert!(decoder.is_done());
    Ok(())
}
