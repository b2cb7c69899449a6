//! The SSE decoder on any bytes, cut where the input's header says
//! (`bulwark::fuzzing::split`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (lengths, body) = bulwark::fuzzing::split(data);
    let _ = bulwark::fuzzing::sse(body, &lengths);
});
