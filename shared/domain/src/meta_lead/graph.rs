//! What Graph's error codes mean for us ([contracts §2.7]): one place, so a code Meta changes
//! is a one-line fix.

use serde::Deserialize;

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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    /// Reads `{"error": {...}}` from an answer body, if it is one.
    pub fn from_body(body: &serde_json::Value) -> Option<GraphError> {
        serde_json::from_value(body.get("error")?.clone()).ok()
    }

    /// `Graph 190/460: Error validating access token…` for the log.
    pub fn describe(&self) -> String {
        let code = match (self.code, self.error_subcode) {
            (Some(c), Some(s)) => format!("{c}/{s}"),
            (Some(c), None) => c.to_string(),
            _ => "?".into(),
        };
        format!("Graph {code}: {}", self.message)
    }
}

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
