//! The config loader: YAML text (and RELAYRACE__ overrides) to a validated config.
//! The checks live in `relayrace::fuzzing::config`, where stable property tests run them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| relayrace::fuzzing::config(input));
