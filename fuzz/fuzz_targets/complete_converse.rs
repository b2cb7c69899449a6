//! The Converse upstream's complete-answer decoder on any body.
#![no_main]

use bulwark::api::WireFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bulwark::fuzzing::complete(WireFormat::Converse, data));
