//! The Converse upstream's stream decoder (Bedrock's models that are not
//! Anthropic's; no client is relayed it) on any event stream, cut where
//! the input's header says (`bulwark::fuzzing::split`).
#![no_main]

use bulwark::api::WireFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (lengths, body) = bulwark::fuzzing::split(data);
    bulwark::fuzzing::stream(WireFormat::Converse, body, &lengths);
});
