//! relayrace: an Anthropic Messages API relay that fails over between providers by racing them.

pub mod config;
pub mod upstream;
