//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`),
//! encoded by hand so that the gateway's decoder (a maintained crate) is
//! checked against an independent writer.
//!
//! A message is `[total length u32][headers length u32][prelude CRC32]
//! [headers][payload][message CRC32]`, big-endian, CRC32 IEEE; a header is
//! `name length u8, name, type u8 (7 = string), value length u16, value`.

/// Header value type 7: a UTF-8 string.
const STRING: u8 = 7;

/// One message with string headers.
pub(crate) fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut encoded_headers = Vec::new();
    for (name, value) in headers {
        // Names and values here are the simulator's own short constants.
        encoded_headers.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        encoded_headers.extend_from_slice(name.as_bytes());
        encoded_headers.push(STRING);
        encoded_headers
            .extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        encoded_headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + encoded_headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(encoded_headers.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&encoded_headers);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// A `chunk` event: Bedrock's wrapper around one of the model's stream events.
pub(crate) fn chunk(payload: &[u8]) -> Vec<u8> {
    message(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// A named event of an API whose events carry their own JSON (Converse).
pub(crate) fn event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An exception message, e.g. `throttlingException`, ending a stream.
pub(crate) fn exception(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest message of AWS's event-stream test suite
    /// (`empty_message`): no headers, no payload.
    #[test]
    fn empty_message_matches_aws_vector() {
        assert_eq!(
            message(&[], b""),
            [
                0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff
            ]
        );
    }

    #[test]
    fn lengths_and_header_layout() {
        let m = message(&[("a", "bc")], b"xyz");
        let total = 12 + (1 + 1 + 1 + 2 + 2) + 3 + 4;
        assert_eq!(m.len(), total);
        assert_eq!(&m[0..4], &u32::try_from(total).unwrap().to_be_bytes());
        assert_eq!(&m[4..8], &7u32.to_be_bytes());
        assert_eq!(&m[12..19], &[1, b'a', 7, 0, 2, b'b', b'c']);
        assert_eq!(&m[19..22], b"xyz");
        let crc = crc32fast::hash(&m[..m.len() - 4]);
        assert_eq!(&m[m.len() - 4..], &crc.to_be_bytes());
    }
}
