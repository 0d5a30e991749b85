//! The names of the configuration's choices (`type`, `auth`, `logging.format`), and an error
//! that lists the valid ones when a name is unknown.

use std::fmt;
use std::str::FromStr;

use super::{AuthStyle, LogFormat, ProviderKind};

/// A name that is none of a choice's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`, expected one of: {}", .expected.join(", "))]
pub struct UnknownChoice {
    /// What was being chosen, e.g. `provider type`.
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The valid names.
    pub expected: Vec<&'static str>,
}

/// A fieldless enum configured by name.
trait Choice: Copy + 'static {
    /// What is being chosen, for error messages.
    const WHAT: &'static str;
    /// Every value, in documentation order.
    const ALL: &'static [Self];

    /// The configuration name of the value.
    fn name(self) -> &'static str;

    /// The value named `given`, or an error listing the valid names.
    fn parse_name(given: &str) -> Result<Self, UnknownChoice> {
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.name() == given)
            .ok_or_else(|| UnknownChoice {
                what: Self::WHAT,
                given: given.to_owned(),
                expected: Self::ALL.iter().map(|value| value.name()).collect(),
            })
    }
}

/// Implements `Display`, `FromStr` and `TryFrom<String>` (used by serde) from [`Choice`].
macro_rules! by_name {
    ($($ty:ty),+) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownChoice;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse_name(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = UnknownChoice;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse_name(&value)
            }
        }
    )+};
}

by_name!(ProviderKind, AuthStyle, LogFormat);

impl Choice for ProviderKind {
    const WHAT: &'static str = "provider type";
    const ALL: &'static [Self] = &[
        ProviderKind::Anthropic,
        ProviderKind::AnthropicCompatible,
        ProviderKind::Simulated,
        ProviderKind::Bedrock,
        ProviderKind::Vertex,
    ];

    fn name(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::AnthropicCompatible => "anthropic_compatible",
            ProviderKind::Simulated => "simulated",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Vertex => "vertex",
        }
    }
}

impl Choice for AuthStyle {
    const WHAT: &'static str = "auth style";
    const ALL: &'static [Self] = &[
        AuthStyle::XApiKey,
        AuthStyle::Bearer,
        AuthStyle::Passthrough,
    ];

    fn name(self) -> &'static str {
        match self {
            AuthStyle::XApiKey => "x_api_key",
            AuthStyle::Bearer => "bearer",
            AuthStyle::Passthrough => "passthrough",
        }
    }
}

impl Choice for LogFormat {
    const WHAT: &'static str = "log format";
    const ALL: &'static [Self] = &[LogFormat::Text, LogFormat::Json];

    fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}
