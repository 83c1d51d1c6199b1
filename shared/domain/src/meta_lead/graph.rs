//! What Graph's error codes mean for us ([contracts §2.7]): one place, so a code Meta changes
//! is a one-line fix.

/// How to treat a failed Graph call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphVerdict {
    /// 190 / 102 / 463…: the token is invalid or expired. Retrying cannot help; a new token can.
    TokenInvalid,
    /// 1, 2 (transient), 4, 17, 32, 341, 613 (throttling), any 5xx: back off and retry.
    Retry,
    /// 100 (object missing or not accessible), 10 / 200–299 (permission): an operator's call.
    Final,
}

pub use crate::meta::GraphError;

/// The verdict for an HTTP status and Graph's error, when there is one.
pub fn classify(status: u16, error: Option<&GraphError>) -> GraphVerdict {
    match error.and_then(|e| e.code) {
        Some(190 | 102) => GraphVerdict::TokenInvalid,
        Some(1 | 2 | 4 | 17 | 32 | 341 | 613) => GraphVerdict::Retry,
        Some(_) if status >= 500 => GraphVerdict::Retry,
        Some(_) => GraphVerdict::Final,
        None if status == 401 => GraphVerdict::TokenInvalid,
        None if status >= 500 || status == 429 || status == 408 => GraphVerdict::Retry,
        None => GraphVerdict::Final,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verdict(status: u16, body: serde_json::Value) -> GraphVerdict {
        classify(status, GraphError::from_body(&body).as_ref())
    }

    #[test]
    fn codes_decide_before_statuses() {
        let error = |code: i64| json!({"error": {"message": "m", "type": "OAuthException", "code": code, "fbtrace_id": "A"}});
        assert_eq!(verdict(400, error(190)), GraphVerdict::TokenInvalid);
        assert_eq!(verdict(400, error(102)), GraphVerdict::TokenInvalid);
        for code in [1, 2, 4, 17, 341] {
            assert_eq!(verdict(400, error(code)), GraphVerdict::Retry, "{code}");
        }
        assert_eq!(verdict(400, error(100)), GraphVerdict::Final);
        assert_eq!(verdict(403, error(10)), GraphVerdict::Final);
        assert_eq!(verdict(500, error(100)), GraphVerdict::Retry);
        assert_eq!(
            verdict(503, json!("Service Unavailable")),
            GraphVerdict::Retry
        );
        assert_eq!(verdict(401, json!(null)), GraphVerdict::TokenInvalid);
        assert_eq!(verdict(404, json!(null)), GraphVerdict::Final);
        let e = GraphError::from_body(&json!({"error": {"message": "Error validating access token", "code": 190, "error_subcode": 460}})).unwrap();
        assert_eq!(e.describe(), "Graph 190/460: Error validating access token");
    }
}
