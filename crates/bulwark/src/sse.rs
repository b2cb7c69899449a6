//! Server-sent events: an incremental decoder for upstream streams and the
//! encoder for the streams Bulwark sends.
//!
//! The decoder takes bytes as they arrive, in pieces of any size. A piece may
//! end inside a multi-byte UTF-8 character or between the `\r` and `\n` of a
//! line ending; lines are only decoded once complete, so neither matters.
//!
//! What the decoder holds between pieces (a partial line, an event's data so
//! far) is capped at [`MAX_EVENT_BYTES`]: an upstream that never ends a line
//! or an event is refused, not buffered until memory runs out.

use bytes::{BufMut, Bytes, BytesMut};

/// The most one event (its partial line and the data lines gathered so far)
/// may hold: far above any real provider event, including a tool call's
/// whole arguments or a base64 image in an answer, which run to a few MiB.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// An event grew past the decoder's cap before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an event of the stream exceeded {limit} bytes before it ended")]
pub struct EventTooLarge {
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if the server named the event.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous piece ended with `\r`; a leading `\n` belongs to it.
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The most `line` and `data` may hold together.
    max_event_bytes: usize,
    /// An event went over the cap: the stream is refused from there on.
    overflowed: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::with_max_event_bytes(MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        SseDecoder::default()
    }

    /// A decoder that refuses an event larger than `max_event_bytes`.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            skip_lf: false,
            event: None,
            data: String::new(),
            has_data: false,
            max_event_bytes,
            overflowed: false,
        }
    }

    /// Feeds the next piece of the stream and appends completed events to
    /// `out`, for input that is already whole in memory and trusted
    /// (tests, benchmarks). An event over the cap is dropped with everything
    /// after it; [`SseDecoder::try_feed`] says so, and is what upstream
    /// bytes go through.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        // The refusal is remembered: every later piece is refused too.
        let _ = self.try_feed(bytes, out);
    }

    /// Feeds the next piece of the stream and appends completed events to
    /// `out`. Fails, without holding more than the cap, once one event
    /// (its unfinished line plus its data so far) would exceed it; from
    /// then on every piece is refused, since the stream cannot be resumed
    /// in the middle of an event. Events completed before the overflow are
    /// in `out`.
    pub fn try_feed(
        &mut self,
        mut bytes: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), EventTooLarge> {
        if self.overflowed {
            return Err(self.too_large());
        }
        if bytes.is_empty() {
            return Ok(()); // an empty piece must not forget a pending `\r`
        }
        if self.skip_lf {
            self.skip_lf = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.reserve(end)?;
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
        self.reserve(bytes.len())?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Checks that `more` bytes of the current line still fit the event's
    /// cap, before they are copied. On overflow the buffers are freed: the
    /// stream is over.
    fn reserve(&mut self, more: usize) -> Result<(), EventTooLarge> {
        let held = self.line.len().saturating_add(self.data.len());
        if held.saturating_add(more) <= self.max_event_bytes {
            return Ok(());
        }
        self.overflowed = true;
        self.line = Vec::new();
        self.data = String::new();
        self.event = None;
        self.has_data = false;
        Err(self.too_large())
    }

    fn too_large(&self) -> EventTooLarge {
        EventTooLarge {
            limit: self.max_event_bytes,
        }
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

    /// Bytes the decoder holds for the event in progress.
    fn held(decoder: &SseDecoder) -> usize {
        decoder.line.capacity() + decoder.data.capacity()
    }

    #[test]
    fn an_endless_line_is_refused_at_the_cap_without_buffering_beyond_it() {
        let mut decoder = SseDecoder::with_max_event_bytes(1024);
        let mut out = Vec::new();
        let piece = [b'x'; 100];
        assert_eq!(decoder.try_feed(b"data: ", &mut out), Ok(()));
        let mut fed = 6;
        let refused = loop {
            match decoder.try_feed(&piece, &mut out) {
                Ok(()) => fed += piece.len(),
                Err(error) => break error,
            }
            assert!(fed <= 1024, "{fed} bytes of one line were accepted");
            assert!(held(&decoder) <= 2048, "{} bytes held", held(&decoder));
        };
        assert_eq!(refused, EventTooLarge { limit: 1024 });
        assert!(fed > 900, "refused early, after {fed} bytes");
        assert!(out.is_empty());
        // The refusal sticks, and nothing is held any more.
        assert_eq!(held(&decoder), 0);
        assert_eq!(decoder.try_feed(b"\n\n", &mut out), Err(refused));
        assert!(out.is_empty());
    }

    #[test]
    fn an_event_of_endless_data_lines_is_refused_and_its_predecessors_kept() {
        let mut decoder = SseDecoder::with_max_event_bytes(1024);
        let mut out = Vec::new();
        assert_eq!(decoder.try_feed(b"data: first\n\n", &mut out), Ok(()));
        let line = format!("data: {}\n", "y".repeat(50));
        let mut refused = None;
        for _ in 0..100 {
            if let Err(error) = decoder.try_feed(line.as_bytes(), &mut out) {
                refused = Some(error);
                break;
            }
            assert!(decoder.data.len() <= 1024);
        }
        assert_eq!(refused, Some(EventTooLarge { limit: 1024 }));
        assert_eq!(
            out,
            vec![SseEvent {
                event: None,
                data: "first".into()
            }]
        );
    }

    #[test]
    fn an_event_up_to_the_cap_is_decoded_and_the_cap_is_per_event() {
        let mut decoder = SseDecoder::with_max_event_bytes(64);
        let mut out = Vec::new();
        // Line and data at once never pass 64 bytes; many such events do.
        let event = format!("data: {}\n\n", "z".repeat(58));
        for _ in 0..10 {
            assert_eq!(decoder.try_feed(event.as_bytes(), &mut out), Ok(()));
        }
        assert_eq!(out.len(), 10);
        assert_eq!(out[0].data.len(), 58);
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
