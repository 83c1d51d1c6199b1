//! A transport-neutral HTTP answer. Function crates turn it into a `lambda_http` response, so
//! use cases decide status codes and bodies without knowing about Lambda.

use serde_json::json;

use crate::error::FieldError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Extra headers (CORS, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl HttpReply {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// `{"error": {"code", "message", "field"?, "trace_id"}}`: every 4xx/5xx looks like this.
    pub fn error(
        status: u16,
        code: &str,
        message: &str,
        field: Option<&str>,
        trace_id: &str,
    ) -> Self {
        Self::json(status, &error_body(code, message, field, trace_id))
    }

    /// 405 naming the methods the route takes.
    pub fn method_not_allowed(method: &str, allowed: &str, trace_id: &str) -> Self {
        Self::error(
            405,
            "method_not_allowed",
            &format!("{method} is not supported; use {allowed}"),
            None,
            trace_id,
        )
        .with_header("allow", allowed.replace(" or ", ", "))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_headers(mut self, headers: &[(&'static str, String)]) -> Self {
        self.headers.extend(headers.iter().cloned());
        self
    }

    /// A 400 naming every field that is wrong (the first one also as `field`).
    pub fn invalid(errors: &[FieldError], trace_id: &str) -> Self {
        Self::invalid_with(400, errors, trace_id)
    }

    /// [`Self::invalid`] with another status (a form's 422: the request was read, its fields
    /// are wrong).
    pub fn invalid_with(status: u16, errors: &[FieldError], trace_id: &str) -> Self {
        let first = errors.first();
        let mut reply = json!({
            "error": {
                "code": first.map(|e| e.code.as_str()).unwrap_or("invalid_request"),
                "message": first
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .unwrap_or_else(|| "invalid request".into()),
                "trace_id": trace_id,
                "details": errors,
            }
        });
        if let Some(first) = first {
            reply["error"]["field"] = json!(first.field);
        }
        Self::json(status, &reply)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The body of [`HttpReply::error`], for a route that adds to it (a translated message).
pub fn error_body(
    code: &str,
    message: &str,
    field: Option<&str>,
    trace_id: &str,
) -> serde_json::Value {
    let mut error = json!({ "code": code, "message": message, "trace_id": trace_id });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    json!({ "error": error })
}
