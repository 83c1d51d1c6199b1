//! Errors shared by every use case: validation problems that become 4xx answers, and port
//! failures that decide between "retry later" and "give up".

use serde::Serialize;

/// One problem with one input field, named by its JSON path (`entry[0].changes[0].value...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn missing(field: impl Into<String>) -> Self {
        Self::new(field, "missing", "is required")
    }
}

/// A failure of an adapter behind a port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Worth retrying: throttling, timeouts, a partner or AWS service briefly down.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Retrying the same request will fail the same way.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Credentials were refused; the caller may refresh them once and retry.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A request that changes something (a create) got no clear answer: it may have been done.
    /// Sending it again could do it twice; someone has to look first.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl PortError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PortError::Unavailable(_))
    }

    /// Stable code for the integration log.
    pub fn code(&self) -> &'static str {
        match self {
            PortError::Unavailable(_) => "dependency_unavailable",
            PortError::Rejected(_) => "dependency_rejected",
            PortError::Unauthorized(_) => "dependency_unauthorized",
            PortError::OutcomeUnknown(_) => "outcome_unknown",
        }
    }
}
