//! The Anthropic Messages API's error vocabulary, shared by every part of the relay that reads
//! or writes an error: the error body, and error types by status and back. A leaf: it imports
//! nothing of the relay.

use serde_json::json;

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
