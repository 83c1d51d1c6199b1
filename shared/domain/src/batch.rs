//! Queue consumers: turn a batch of queued envelopes into per-message outcomes, the way an SQS
//! event source with `ReportBatchItemFailures` expects (only the failed message ids come back).

use futures::future::join_all;
use tracing::Instrument;

use crate::envelope::{Envelope, TraceId};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::tenant::TenantId;

/// One received queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

/// Why one message could not be processed now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProcessError {
    pub code: String,
    pub message: String,
    /// False when retrying cannot help; the message still goes the retry/DLQ way, so that
    /// nothing is lost and an operator can replay it after a fix.
    pub retryable: bool,
}

impl ProcessError {
    pub fn retryable(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: true,
        }
    }

    pub fn permanent(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }
}

impl From<crate::error::PortError> for ProcessError {
    fn from(error: crate::error::PortError) -> Self {
        ProcessError {
            code: error.code().into(),
            message: error.to_string(),
            retryable: error.is_retryable(),
        }
    }
}

/// Processes every message concurrently and returns the ids of those that failed. Each
/// failure writes an error log record; the one on the last allowed delivery says
/// `dead_lettered`, since the queue's redrive policy moves the message to the DLQ next.
pub async fn process_batch<F, Fut>(
    messages: Vec<QueueMessage>,
    integration: Integration,
    max_receive_count: u32,
    log: &IntegrationLog,
    handler: F,
) -> Vec<String>
where
    F: Fn(Envelope, u32) -> Fut,
    Fut: std::future::Future<Output = Result<(), ProcessError>>,
{
    let runs = messages.into_iter().map(|message| {
        let handler = &handler;
        async move {
            let outcome = match Envelope::from_json(&message.body) {
                Ok(envelope) => {
                    let span = tracing::info_span!("queue_message", trace_id = %envelope.trace_id, tenant = %envelope.tenant_id, message_id = %message.message_id);
                    let (tenant, trace) = (envelope.tenant_id.clone(), envelope.trace_id.clone());
                    let external_id = envelope.external_id.clone();
                    let kind = envelope.kind.clone();
                    handler(envelope, message.receive_count)
                        .instrument(span)
                        .await
                        .map_err(|e| (tenant, trace, Some(external_id), kind, e, None))
                }
                Err(problem) => Err((
                    TenantId::unresolved(),
                    TraceId::new(format!("sqs-{}", message.message_id)),
                    None,
                    "unknown".to_string(),
                    ProcessError::permanent("invalid_envelope", problem),
                    Some(message.body.clone()),
                )),
            };
            match outcome {
                Ok(()) => None,
                Err((tenant, trace, external_id, kind, error, raw_body)) => {
                    let last = message.receive_count >= max_receive_count;
                    let (code, text) = if last {
                        ("dead_lettered".to_string(), format!("moved to the dead-letter queue after {} deliveries; last error {}", message.receive_count, error))
                    } else {
                        (error.code.clone(), error.message.clone())
                    };
                    let mut entry = LogEntry::new(tenant, integration, LogDirection::Inbound, &format!("{kind}.process"), LogResult::Error, trace)
                        .error(&code, text)
                        .attempt(message.receive_count);
                    if let Some(id) = external_id {
                        entry = entry.external_id(id);
                    }
                    if let Some(body) = raw_body {
                        entry = entry.payload(serde_json::Value::String(body));
                    }
                    log.write(entry).await;
                    Some(message.message_id)
                }
            }
        }
    });
    join_all(runs).await.into_iter().flatten().collect()
}
