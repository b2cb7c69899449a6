//! The responses front door's request decoder on any body.
#![no_main]

use bulwark::api::WireFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bulwark::fuzzing::request(WireFormat::Responses, data));
