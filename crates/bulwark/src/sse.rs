//! Server-sent events: an incremental decoder for upstream streams and the
//! encoder for the streams Bulwark sends.
//!
//! The decoder takes bytes as they arrive, in pieces of any size. A piece may
//! end inside a multi-byte UTF-8 character or between the `\r` and `\n` of a
//! line ending; lines are only decoded once complete, so neither matters.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if the server named the event.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous piece ended with `\r`; a leading `\n` belongs to it.
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        SseDecoder::default()
    }

    /// Feeds the next piece of the stream and appends completed events to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        if bytes.is_empty() {
            return; // an empty piece must not forget a pending `\r`
        }
        if self.skip_lf {
            self.skip_lf = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let terminator = bytes[end];
            bytes = &bytes[end + 1..];
            if terminator == b'\r' {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
        }
        self.line.extend_from_slice(bytes);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event = None;
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return; // a comment, e.g. a keep-alive
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            _ => {} // `id:` and `retry:` mean nothing for a one-shot answer stream
        }
    }
}

/// Writes one event in SSE framing.
pub fn encode(event: Option<&str>, data: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(data.len() + 32);
    if let Some(name) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(name.as_bytes());
        buf.put_u8(b'\n');
    }
    for line in data.split('\n') {
        buf.put_slice(b"data: ");
        buf.put_slice(line.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.feed(piece, &mut out);
        }
        out
    }

    const SAMPLE: &str = "event: message_start\r\ndata: {\"t\":\"h\u{e9}llo \u{1F600}\"}\r\n\r\n: keep-alive\n\ndata: line one\ndata: line two\n\nevent: ping\rdata: {}\r\rdata: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                event: Some("message_start".into()),
                data: "{\"t\":\"h\u{e9}llo \u{1F600}\"}".into(),
            },
            SseEvent {
                event: None,
                data: "line one\nline two".into(),
            },
            SseEvent {
                event: Some("ping".into()),
                data: "{}".into(),
            },
            SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
        ]
    }

    #[test]
    fn decodes_whole_input() {
        assert_eq!(decode_all(&[SAMPLE.as_bytes()]), expected());
    }

    #[test]
    fn incomplete_trailing_event_is_not_emitted() {
        assert_eq!(decode_all(&[b"data: partial"]), vec![]);
    }

    #[test]
    fn encode_round_trips() {
        let bytes = encode(Some("content_block_delta"), "a\nb");
        assert_eq!(
            decode_all(&[&bytes]),
            vec![SseEvent {
                event: Some("content_block_delta".into()),
                data: "a\nb".into()
            }]
        );
    }

    proptest! {
        /// Any split of the byte stream, including inside a multi-byte
        /// character and between `\r` and `\n`, decodes to the same events.
        #[test]
        fn any_split_decodes_the_same(cuts in proptest::collection::vec(0usize..=SAMPLE.len(), 0..12)) {
            let bytes = SAMPLE.as_bytes();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts {
                pieces.push(&bytes[start..cut]);
                start = cut;
            }
            pieces.push(&bytes[start..]);
            prop_assert_eq!(decode_all(&pieces), expected());
        }

        #[test]
        fn byte_at_a_time_decodes_the_same(_x in 0..1u8) {
            let pieces: Vec<&[u8]> = SAMPLE.as_bytes().chunks(1).collect();
            prop_assert_eq!(decode_all(&pieces), expected());
        }
    }
}
