//! The Bedrock event-stream decoder: messages, whatever the chunking.
//! The checks live in `relayrace::fuzzing::eventstream`, where stable property tests run them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| relayrace::fuzzing::eventstream(input));
