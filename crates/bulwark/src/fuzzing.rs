//! The decoders that take untrusted bytes, each behind one call, for the
//! fuzz targets (`fuzz/`, outside the workspace) and the property tests
//! that check the same properties in CI (`tests/decoders_never_panic.rs`).
//! Both call these, so a finding of one is a case of the other. Not an API:
//! hidden from the docs and free to change.
//!
//! Every call drives its decoder the way Bulwark does on real traffic
//! (a stream through the SSE decoder as `Provider::stream` does, a complete
//! answer through `provider/complete.rs`) and throws the result away: the
//! properties are that no input panics and that none makes the decoder hold
//! more than a fixed multiple of its size.

use crate::api::WireFormat;
use crate::config::{Config, ProviderKind};
use crate::sse::{SseDecoder, SseEvent};
use crate::wire::{self, UpstreamDialect};

/// The formats a front door decodes requests in.
pub const CLIENT_FORMATS: [WireFormat; 4] = [
    WireFormat::OpenAi,
    WireFormat::Anthropic,
    WireFormat::Responses,
    WireFormat::Gemini,
];

/// The formats an upstream answers in: one decoder pair each. Converse
/// (Bedrock's API for its models that are not Anthropic's) has no front
/// door.
pub const UPSTREAM_FORMATS: [WireFormat; 5] = [
    WireFormat::OpenAi,
    WireFormat::Anthropic,
    WireFormat::Responses,
    WireFormat::Gemini,
    WireFormat::Converse,
];

/// The upstream dialect whose answers arrive in `format`. The Responses API
/// has no provider kind of its own: the `openai` kind speaks it to
/// Responses clients; Converse is `bedrock`'s for its other models.
pub fn upstream(format: WireFormat) -> &'static dyn UpstreamDialect {
    let openai = wire::upstream(ProviderKind::OpenAi);
    match format {
        WireFormat::OpenAi => openai,
        WireFormat::Anthropic => wire::upstream(ProviderKind::Anthropic),
        WireFormat::Gemini => wire::upstream(ProviderKind::Gemini),
        WireFormat::Responses => openai.also_speaks(WireFormat::Responses).unwrap_or(openai),
        WireFormat::Converse => &wire::converse::Upstream,
    }
}

/// A front door's request decoder.
pub fn request(format: WireFormat, body: &[u8]) {
    if let Some(door) = wire::front_door(format) {
        let _ = door.decode_request(body);
    }
}

/// How a fuzz input is cut into the pieces a network would deliver: its
/// first byte `k` (mod 16) says how many piece lengths follow, each byte a
/// length of 1 to 256; the rest is the body, cut into pieces of those
/// lengths in turn. With `k = 0` the body arrives whole, so a seed is a
/// NUL byte and the body as captured.
pub fn split(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let k = usize::from(first % 16).min(rest.len());
    let (lengths, body) = rest.split_at(k);
    (lengths.iter().map(|&b| usize::from(b) + 1).collect(), body)
}

/// `body` in pieces of `lengths` (cycled; the whole body at once when
/// there are none).
pub fn pieces<'a>(body: &'a [u8], lengths: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = body;
    let mut turn = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let length = match lengths.get(turn % lengths.len().max(1)) {
            Some(&length) => length.clamp(1, rest.len()),
            None => rest.len(),
        };
        turn += 1;
        let (piece, tail) = rest.split_at(length);
        rest = tail;
        Some(piece)
    })
}

/// The SSE decoder, fed `body` in pieces of `lengths`.
pub fn sse(body: &[u8], lengths: &[usize]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for piece in pieces(body, lengths) {
        if decoder.try_feed(piece, &mut events).is_err() {
            break;
        }
    }
    events
}

/// An upstream's stream decoder on `body` arriving in pieces of `lengths`,
/// as `Provider::stream` runs it (stopping at a fault, an overflow or the
/// terminator), then the raw events it kept assembled into the complete
/// answer a relaying front door would give.
pub fn stream(format: WireFormat, body: &[u8], lengths: &[usize]) {
    let mut sse = SseDecoder::new();
    let mut decoder = upstream(format).stream_decoder();
    let mut raw = Vec::new();
    let mut kept: Vec<SseEvent> = Vec::new();
    'pieces: for piece in pieces(body, lengths) {
        let fed = sse.try_feed(piece, &mut raw);
        for event in raw.drain(..) {
            let mut events = Vec::new();
            if decoder.on_event(&event, &mut events).is_err() {
                break 'pieces;
            }
            kept.push(event);
            if decoder.is_done() {
                break 'pieces;
            }
        }
        if fed.is_err() {
            break;
        }
    }
    if let Some(door) = wire::front_door(format) {
        let _ = door.assemble_relayed(&mut kept.iter());
    }
}

/// An upstream's complete-answer decoder, as a JSON answer where a stream
/// was expected is read (`provider/complete.rs`).
pub fn complete(format: WireFormat, body: &[u8]) {
    let _ = crate::provider::complete::chunks(upstream(format), body);
}

/// The engine's config loader on YAML text, every `${VAR}` set.
pub fn config(text: &str) {
    let _ = Config::from_yaml(text, "fuzz.yaml", &|_| Some("x".to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fuzz_input_is_cut_as_its_header_says() {
        let (lengths, body) = split(b"\x02\x00\x02abcdefg");
        assert_eq!(lengths, [1, 3]);
        let cut: Vec<&[u8]> = pieces(body, &lengths).collect();
        assert_eq!(cut, [&b"a"[..], b"bcd", b"e", b"fg"]);
        let (lengths, body) = split(b"\x00data: x\n\n");
        assert!(lengths.is_empty());
        assert_eq!(pieces(body, &lengths).count(), 1);
        assert_eq!(sse(body, &lengths).len(), 1);
    }

    #[test]
    fn the_responses_format_has_its_own_upstream() {
        for format in UPSTREAM_FORMATS {
            assert_eq!(upstream(format).format(), format);
        }
    }
}
