//! The SSE parser: frames, whatever the chunking, and what a frame reads as.
//! The checks live in `relayrace::fuzzing::sse`, where stable property tests run them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| relayrace::fuzzing::sse(input));
