//! The Anthropic Messages API's vocabulary, shared by every part of the relay that needs it:
//! the error body, error types by status and back, and the models Claude Code asks for when
//! its user has chosen none. A leaf: it imports nothing of the relay.

use serde_json::json;

/// The models the current Claude Code release requests when its user sets none (no `/model`,
/// `--model`, `ANTHROPIC_MODEL` or `ANTHROPIC_DEFAULT_*_MODEL`): the main model, then the
/// small/fast model of its background requests (titles, token counts, summaries). `relayrace
/// check` warns about each that no enabled provider serves.
///
/// From Claude Code's model configuration (code.claude.com/docs/en/model-config, "`default`
/// model setting" and "Environment variables"): for Anthropic API users (a key, which is how
/// Claude Code reaches a relay) and Max, `default` is Opus 4.8, sent as `claude-opus-4-8`; the
/// background model is Haiku 4.5 (`ANTHROPIC_DEFAULT_HAIKU_MODEL`, formerly
/// `ANTHROPIC_SMALL_FAST_MODEL`), which Claude Code sends as the dated
/// `claude-haiku-4-5-20251001` (seen in requests of Claude Code 2.1.x:
/// anthropics/claude-code#41120, router-for-me/CLIProxyAPI#1596). Pro and Team Standard
/// subscribers (`auth: passthrough`) default to Sonnet 4.6 (`claude-sonnet-4-6`) instead.
/// Update this when Claude Code changes its defaults.
pub const CLAUDE_CODE_DEFAULT_MODELS: [&str; 2] = ["claude-opus-4-8", "claude-haiku-4-5-20251001"];

/// The JSON body of an Anthropic error: `{"type":"error","error":{"type":…,"message":…}}`.
/// Every error body the relay makes itself is written here (an upstream's own is replayed).
pub fn error_body(kind: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
}

/// The status an Anthropic error type stands for (unknown types: 502).
pub fn status_for_error_type(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "overloaded_error" => 529,
        _ => 502,
    }
}

/// The Anthropic error type of a status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_map_to_their_statuses() {
        let cases = [
            ("overloaded_error", 529),
            ("rate_limit_error", 429),
            ("api_error", 500),
            ("authentication_error", 401),
            ("permission_error", 403),
            ("not_found_error", 404),
            ("request_too_large", 413),
            ("invalid_request_error", 400),
            ("something_new", 502),
        ];
        for (kind, status) in cases {
            assert_eq!(status_for_error_type(kind), status, "{kind}");
        }
    }

    #[test]
    fn the_error_body_is_anthropics_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&error_body("overloaded_error", "busy")).unwrap();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
        );
        assert_eq!(error_type_for_status(529), "overloaded_error");
        assert_eq!(error_type_for_status(418), "api_error");
    }
}
