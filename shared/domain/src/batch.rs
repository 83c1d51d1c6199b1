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

/// A received message with its envelope, or why it has none.
type Received = (QueueMessage, Result<Envelope, String>);

/// Processes a batch and returns the ids of the messages that failed. Messages sharing an
/// ordering key (one sender) run one after another in queue order; different keys run
/// concurrently. Each failure writes an error log record; the one on the last allowed delivery
/// says `dead_lettered`, since the queue's redrive policy moves the message to the DLQ next.
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
    let mut groups: Vec<(Option<String>, Vec<Received>)> = Vec::new();
    for message in messages {
        let envelope = Envelope::from_json(&message.body);
        let key = envelope.as_ref().ok().and_then(|e| {
            e.ordering_key
                .as_ref()
                .map(|k| format!("{}#{k}", e.tenant_id))
        });
        match groups.iter_mut().find(|(k, _)| key.is_some() && *k == key) {
            Some((_, group)) => group.push((message, envelope)),
            None => groups.push((key, vec![(message, envelope)])),
        }
    }
    let handler = &handler;
    let runs = groups.into_iter().map(|(_, group)| async move {
        let mut failed = Vec::new();
        for (message, envelope) in group {
            if let Some(id) = process_one(
                message,
                envelope,
                integration,
                max_receive_count,
                log,
                handler,
            )
            .await
            {
                failed.push(id);
            }
        }
        failed
    });
    join_all(runs).await.into_iter().flatten().collect()
}

async fn process_one<F, Fut>(
    message: QueueMessage,
    envelope: Result<Envelope, String>,
    integration: Integration,
    max_receive_count: u32,
    log: &IntegrationLog,
    handler: &F,
) -> Option<String>
where
    F: Fn(Envelope, u32) -> Fut,
    Fut: std::future::Future<Output = Result<(), ProcessError>>,
{
    let (tenant, trace, external_id, kind, error, raw_body, started) = match envelope {
        Ok(envelope) => {
            let span = tracing::info_span!("queue_message", trace_id = %envelope.trace_id, tenant = %envelope.tenant_id, message_id = %message.message_id);
            let (tenant, trace) = (envelope.tenant_id.clone(), envelope.trace_id.clone());
            let (external_id, kind) = (envelope.external_id.clone(), envelope.kind.clone());
            let started = envelope.received_at;
            match handler(envelope, message.receive_count)
                .instrument(span)
                .await
            {
                Ok(()) => return None,
                Err(error) => (
                    tenant,
                    trace,
                    Some(external_id),
                    kind,
                    error,
                    None,
                    Some(started),
                ),
            }
        }
        Err(problem) => (
            TenantId::unresolved(),
            TraceId::new(format!("sqs-{}", message.message_id)),
            None,
            "unknown".to_string(),
            ProcessError::permanent("invalid_envelope", problem),
            Some(message.body.clone()),
            None,
        ),
    };
    let (code, text) = if message.receive_count >= max_receive_count {
        (
            "dead_lettered".to_string(),
            format!(
                "moved to the dead-letter queue after {} deliveries; last error {error}",
                message.receive_count
            ),
        )
    } else {
        (error.code.clone(), error.message.clone())
    };
    let mut entry = LogEntry::new(
        tenant,
        integration,
        LogDirection::Inbound,
        &format!("{kind}.process"),
        LogResult::Error,
        trace,
    )
    .error(&code, text)
    .attempt(message.receive_count);
    if let Some(id) = external_id {
        entry = entry.external_id(id);
    }
    // Beside the webhook's record of the same trace; an envelope we cannot read opens its own.
    if let Some(at) = started {
        entry = entry.follows_trace(at);
    }
    if let Some(body) = raw_body {
        entry = entry.payload(serde_json::Value::String(body));
    }
    log.write(entry).await;
    Some(message.message_id)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::testing::{FixedClock, MemoryLogSink, SequentialIds};

    fn message(id: &str, key: Option<&str>, receive_count: u32) -> QueueMessage {
        let envelope = Envelope {
            v: crate::envelope::ENVELOPE_VERSION,
            tenant_id: TenantId::parse("demo").unwrap(),
            integration: Integration::WhatsApp,
            kind: "whatsapp.message".into(),
            external_id: id.into(),
            trace_id: TraceId::new(format!("trace-{id}")),
            received_at: chrono::Utc::now(),
            ordering_key: key.map(str::to_string),
            replay_of: None,
            payload: serde_json::Value::Null,
        };
        QueueMessage {
            message_id: id.into(),
            body: envelope.to_json(),
            receive_count,
        }
    }

    #[tokio::test]
    async fn same_key_runs_in_order_and_only_failures_come_back() {
        let sink = Arc::new(MemoryLogSink::default());
        let log = IntegrationLog::new(
            sink.clone(),
            Arc::new(FixedClock::at("2026-11-24T12:00:00Z")),
            Arc::new(SequentialIds::default()),
            90,
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let messages = vec![
            message("a1", Some("sender-a"), 1),
            message("b1", Some("sender-b"), 1),
            message("a2", Some("sender-a"), 1),
            message("bad", None, 5),
            QueueMessage {
                message_id: "garbage".into(),
                body: "not json".into(),
                receive_count: 1,
            },
        ];
        let mut failed = process_batch(messages, Integration::WhatsApp, 5, &log, |envelope, _| {
            let (seen, id) = (seen.clone(), envelope.external_id.clone());
            seen.lock().unwrap().push(format!("start {id}"));
            async move {
                tokio::task::yield_now().await;
                seen.lock().unwrap().push(format!("end {id}"));
                if id == "bad" {
                    Err(ProcessError::retryable("boom", "failed"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        failed.sort();
        assert_eq!(failed, vec!["bad".to_string(), "garbage".to_string()]);
        let seen = seen.lock().unwrap().clone();
        let at = |x: &str| seen.iter().position(|s| s == x).unwrap();
        assert!(
            at("end a1") < at("start a2"),
            "one sender's messages run in order: {seen:?}"
        );
        assert!(
            at("start b1") < at("end a1"),
            "other senders run concurrently: {seen:?}"
        );
        let codes: Vec<String> = sink
            .records()
            .iter()
            .filter_map(|r| r.error_code.clone())
            .collect();
        assert!(
            codes.contains(&"dead_lettered".to_string())
                && codes.contains(&"invalid_envelope".to_string()),
            "{codes:?}"
        );
    }
}
