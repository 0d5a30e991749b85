//! The request-body scan: the `model` and `stream` the relay reads before routing.
//! The checks live in `relayrace::fuzzing::body_scan`, where stable property tests run them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| relayrace::fuzzing::body_scan(input));
