use std::time::{Duration, SystemTime};

use super::*;

fn entry(data: String) -> Entry {
    let now = SystemTime::now();
    Entry {
        chunks: vec![
            Chunk {
                raw: SseEvent {
                    event: Some("message_start".into()),
                    data: r#"{"type":"message_start"}"#.into(),
                },
                events: vec![StreamEvent::Start {
                    id: "msg_1".into(),
                    model: "claude".into(),
                    created: 7,
                    input_tokens: Some(3),
                }],
            },
            Chunk {
                raw: SseEvent { event: None, data },
                events: vec![
                    StreamEvent::TextDelta {
                        index: 0,
                        text: "Hi".into(),
                    },
                    StreamEvent::ToolCallStart {
                        index: 1,
                        id: "t".into(),
                        name: "f".into(),
                    },
                    StreamEvent::ToolCallDelta {
                        index: 1,
                        partial_json: "{}".into(),
                    },
                    StreamEvent::Thinking {
                        index: 2,
                        text: "hm".into(),
                    },
                    StreamEvent::Finish {
                        reason: FinishReason::ToolUse,
                        stop_sequence: Some("END".into()),
                    },
                    StreamEvent::Usage(Usage {
                        input_tokens: 3,
                        output_tokens: 4,
                    }),
                ],
            },
        ],
        format: WireFormat::Anthropic,
        target: "primary/claude".into(),
        dropped: vec!["cache_control", "thinking"],
        // Whole milliseconds: what the format keeps.
        fresh_until: UNIX_EPOCH + Duration::from_millis(unix_ms(now) + 60_000),
        keep_until: UNIX_EPOCH + Duration::from_millis(unix_ms(now) + 120_000),
    }
}

#[test]
fn an_entry_reads_back_as_written() {
    let written = entry("{\"x\":1}".into());
    let Some(bytes) = encode(&written) else {
        panic!("not encoded");
    };
    assert_eq!(decode(&bytes), Some(written));
}

#[test]
fn repetitive_answers_are_stored_compressed() {
    let written = entry("the same words again ".repeat(5_000));
    let Some(bytes) = encode(&written) else {
        panic!("not encoded");
    };
    assert!(bytes.len() < 10_000, "{} bytes", bytes.len());
    assert_eq!(decode(&bytes), Some(written));
}

#[test]
fn an_answer_too_large_to_share_is_not_encoded() {
    let random: String = (0..MAX_ENTRY_BYTES + 1)
        .map(|_| fastrand::alphanumeric())
        .collect();
    assert_eq!(encode(&entry(random)), None);
}

#[test]
fn anything_else_under_the_key_is_a_miss() {
    let Some(good) = encode(&entry("{}".into())) else {
        panic!("not encoded");
    };
    let mut flipped = good.clone();
    if let Some(last) = flipped.last_mut() {
        *last ^= 0xff;
    }
    let mut foreign_version = good.clone();
    foreign_version[3] = b'9';
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("text", b"hello".to_vec()),
        ("magic only", MAGIC.to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("flipped", flipped),
        ("another version", foreign_version),
        ("too large", vec![0; MAX_ENTRY_BYTES + 1]),
    ];
    for (name, bytes) in cases {
        assert_eq!(decode(&bytes), None, "{name}");
    }
}

/// A few bytes claiming gigabytes once decompressed are refused before
/// anything is allocated for them.
#[test]
fn a_decompression_bomb_is_refused_unopened() {
    let mut bomb = MAGIC.to_vec();
    bomb.extend_from_slice(&u32::MAX.to_le_bytes());
    bomb.extend_from_slice(&[0x1f, 0x00, 0x01, 0x00]);
    assert_eq!(decode(&bomb), None);
}

#[test]
fn valid_json_of_unknown_names_is_a_miss() {
    let json = |format: &str, dropped: &str, reason: &str| {
        format!(
            r#"{{"format":"{format}","target":"t","dropped":["{dropped}"],"fresh_until_ms":1,"keep_until_ms":2,
            "chunks":[{{"event":null,"data":"","events":[{{"t":"finish","reason":"{reason}","stop_sequence":null}}]}}]}}"#
        )
    };
    let packed = |json: String| {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&lz4_flex::block::compress_prepend_size(json.as_bytes()));
        decode(&bytes)
    };
    assert!(packed(json("openai", "thinking", "stop")).is_some());
    assert_eq!(packed(json("cobol", "thinking", "stop")), None);
    assert_eq!(packed(json("openai", "telepathy", "stop")), None);
    assert_eq!(packed(json("openai", "thinking", "bored")), None);
}
