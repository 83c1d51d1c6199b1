//! The integration log: one record per integration call, the one way every function logs.
//!
//! Records are masked (phones, e-mails, identity numbers; secrets removed) before they leave
//! this module, carry the trace id, and expire after the tenant-wide retention.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::TraceId;
use crate::mask;
use crate::ports::{Clock, IdGenerator, LogSink};
use crate::tenant::TenantId;

/// KVKK: personal data in logs is destroyed within six months at the latest.
pub const MAX_RETENTION_DAYS: i64 = 180;
/// Payloads beyond this are cut so a record stays far below DynamoDB's 400 KB item limit.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// A record that is not an error keeps a payload up to this size, so the record stays under
/// 1 KB (one write unit, on the hot path of every event); a larger one is kept as a preview:
/// the whole delivery is in the raw-event archive under the same trace id.
pub const SUCCESS_PAYLOAD_BYTES: usize = 512;
/// How much of a larger success payload the preview keeps.
pub const PREVIEW_BYTES: usize = 240;
/// Messages (ours or a partner's) are cut here: they are read on a screen, and an error that
/// quotes a forged body must not carry it into the log.
pub const MAX_MESSAGE_CHARS: usize = 2000;

fn cut(text: &str) -> String {
    let masked = mask::mask_text(text);
    if masked.chars().count() <= MAX_MESSAGE_CHARS {
        return masked;
    }
    let head: String = masked.chars().take(MAX_MESSAGE_CHARS).collect();
    format!("{head}…")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    #[serde(rename = "whatsapp")]
    WhatsApp,
    MetaLeadAds,
    WebForm,
    Pbx,
    Logo,
    Express,
    #[serde(rename = "insurup")]
    InsurUp,
    Karel,
    CrmApi,
}

impl Integration {
    pub const ALL: [Integration; 9] = [
        Integration::WhatsApp,
        Integration::MetaLeadAds,
        Integration::WebForm,
        Integration::Pbx,
        Integration::Logo,
        Integration::Express,
        Integration::InsurUp,
        Integration::Karel,
        Integration::CrmApi,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Integration::WhatsApp => "whatsapp",
            Integration::MetaLeadAds => "meta_lead_ads",
            Integration::WebForm => "web_form",
            Integration::Pbx => "pbx",
            Integration::Logo => "logo",
            Integration::Express => "express",
            Integration::InsurUp => "insurup",
            Integration::Karel => "karel",
            Integration::CrmApi => "crm_api",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogDirection {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogResult {
    Success,
    Error,
    /// Seen before: nothing was changed.
    Duplicate,
    /// Understood and deliberately not acted on (stale status, unsubscribed field...).
    Ignored,
    /// Kept whole for a replay once its cause is fixed (a partner token to renew).
    Parked,
    /// Done as far as it could be, but something needs a person's look (an unknown PBX key).
    Warning,
}

impl LogResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            LogResult::Success => "success",
            LogResult::Error => "error",
            LogResult::Duplicate => "duplicate",
            LogResult::Ignored => "ignored",
            LogResult::Parked => "parked",
            LogResult::Warning => "warning",
        }
    }
}

/// What a caller knows about one call; [`IntegrationLog::write`] adds id, time, masking, expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub tenant_id: TenantId,
    pub integration: Integration,
    pub direction: LogDirection,
    /// `webhook.delivery`, `webhook.handshake`, `message.process`, `status.apply`...
    pub operation: String,
    pub result: LogResult,
    pub trace_id: TraceId,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub http_status: Option<u16>,
    pub payload: Option<serde_json::Value>,
    /// What the partner said (an error title, a response message).
    pub external_message: Option<String>,
    /// The partner's id of the event (wamid, leadgen id).
    pub external_id: Option<String>,
    /// The CRM card touched, if any.
    pub card_id: Option<String>,
    pub attempt: Option<u32>,
    pub duration_ms: Option<u64>,
    /// When the trace began (the webhook's receipt); the record's own time when not given.
    pub trace_started_at: Option<DateTime<Utc>>,
    /// See [`LogEntry::follows_trace`].
    pub follows: bool,
}

impl LogEntry {
    pub fn new(
        tenant_id: TenantId,
        integration: Integration,
        direction: LogDirection,
        operation: &str,
        result: LogResult,
        trace_id: TraceId,
    ) -> Self {
        Self {
            tenant_id,
            integration,
            direction,
            operation: operation.to_string(),
            result,
            trace_id,
            error_code: None,
            error_message: None,
            http_status: None,
            payload: None,
            external_message: None,
            external_id: None,
            card_id: None,
            attempt: None,
            duration_ms: None,
            trace_started_at: None,
            follows: false,
        }
    }

    /// A queue worker's record of one queued event: its tenant, trace, id and delivery
    /// attempt, continuing the trace the webhook's record opened.
    pub fn for_queued(
        envelope: &crate::envelope::Envelope,
        integration: Integration,
        direction: LogDirection,
        operation: &str,
        result: LogResult,
        attempt: u32,
    ) -> Self {
        LogEntry::new(
            envelope.tenant_id.clone(),
            integration,
            direction,
            operation,
            result,
            envelope.trace_id.clone(),
        )
        .external_id(envelope.external_id.clone())
        .attempt(attempt)
        .follows_trace(envelope.received_at)
    }

    /// The record opens its trace in this integration's log (the webhook's record of a
    /// delivery): it is stored under the time the trace began and found by trace id.
    pub fn starts_trace(mut self, started_at: DateTime<Utc>) -> Self {
        self.trace_started_at = Some(started_at);
        self.follows = false;
        self
    }

    /// The record continues a trace opened (with [`LogEntry::starts_trace`] at `started_at`)
    /// in the same integration's log, like the worker's record after the webhook's: it is
    /// stored beside the opening record and found through it, so it costs no trace-index copy.
    pub fn follows_trace(mut self, started_at: DateTime<Utc>) -> Self {
        self.trace_started_at = Some(started_at);
        self.follows = true;
        self
    }

    pub fn error(mut self, code: &str, message: impl Into<String>) -> Self {
        self.error_code = Some(code.to_string());
        self.error_message = Some(message.into());
        self
    }

    pub fn http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }

    pub fn external_message(mut self, message: impl Into<String>) -> Self {
        self.external_message = Some(message.into());
        self
    }

    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }

    pub fn card_id(mut self, id: impl Into<String>) -> Self {
        self.card_id = Some(id.into());
        self
    }

    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }
}

/// A stored log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub log_id: String,
    pub tenant_id: TenantId,
    pub integration: Integration,
    pub direction: LogDirection,
    pub operation: String,
    pub result: LogResult,
    pub trace_id: TraceId,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// When the trace began: records of one trace sort together under it.
    pub trace_started_at: DateTime<Utc>,
    /// Continues a trace opened by an earlier record in the same integration's log.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follows: bool,
    /// Unix seconds; DynamoDB TTL deletes the record after it.
    pub expires_at: i64,
}

/// The one logging API: every integration call ends in exactly one `write`.
#[derive(Clone)]
pub struct IntegrationLog {
    sink: Arc<dyn LogSink>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    retention: Duration,
}

impl IntegrationLog {
    /// `retention_days` is clamped to 1..=180 (KVKK destruction cycle).
    pub fn new(
        sink: Arc<dyn LogSink>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        retention_days: i64,
    ) -> Self {
        Self {
            sink,
            clock,
            ids,
            retention: Duration::days(retention_days.clamp(1, MAX_RETENTION_DAYS)),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn ids(&self) -> &Arc<dyn IdGenerator> {
        &self.ids
    }

    /// Masks, stamps and stores the record, and mirrors it as a JSON log line. A failed store
    /// never fails the caller's work: the line (with the trace id) still reaches CloudWatch.
    pub async fn write(&self, entry: LogEntry) -> LogRecord {
        let record = self.prepare(entry);
        let (code, message) = (
            record.error_code.as_deref().unwrap_or(""),
            record.error_message.as_deref().unwrap_or(""),
        );
        match record.result {
            LogResult::Error | LogResult::Warning => tracing::warn!(
                trace_id = %record.trace_id, tenant = %record.tenant_id, integration = record.integration.as_str(),
                operation = %record.operation, result = record.result.as_str(), error_code = code, error_message = message,
                http_status = record.http_status, external_id = record.external_id.as_deref(), "integration call failed"
            ),
            _ => tracing::info!(
                trace_id = %record.trace_id, tenant = %record.tenant_id, integration = record.integration.as_str(),
                operation = %record.operation, result = record.result.as_str(), http_status = record.http_status,
                external_id = record.external_id.as_deref(), card_id = record.card_id.as_deref(), "integration call"
            ),
        }
        if let Err(error) = self.sink.put(&record).await {
            tracing::error!(trace_id = %record.trace_id, tenant = %record.tenant_id, %error, "integration log record not stored");
        }
        record
    }

    /// The record an entry makes (masked and stamped), without storing it (a bench fills the
    /// log table in batches with these).
    pub fn prepare(&self, entry: LogEntry) -> LogRecord {
        let now = self.clock.now();
        LogRecord {
            log_id: self.ids.new_id(),
            tenant_id: entry.tenant_id,
            integration: entry.integration,
            direction: entry.direction,
            operation: entry.operation,
            result: entry.result,
            trace_id: entry.trace_id.clone(),
            occurred_at: now,
            error_code: entry.error_code,
            error_message: entry.error_message.map(|m| cut(&m)),
            http_status: entry.http_status,
            payload: entry.payload.map(|p| {
                if entry.result == LogResult::Error {
                    masked_payload(p, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES)
                } else {
                    masked_payload(p, SUCCESS_PAYLOAD_BYTES, PREVIEW_BYTES)
                }
            }),
            external_message: entry.external_message.map(|m| cut(&m)),
            // A wamid is the sender's number in base64: the log keeps a hash of it.
            external_id: entry.external_id.map(|id| cut(&id)),
            card_id: entry.card_id,
            attempt: entry.attempt,
            duration_ms: entry.duration_ms,
            trace_started_at: entry
                .trace_id
                .started_at()
                .or(entry.trace_started_at)
                .unwrap_or(now),
            follows: entry.follows,
            expires_at: (now + self.retention).timestamp(),
        }
    }
}

fn masked_payload(
    mut payload: serde_json::Value,
    limit: usize,
    preview: usize,
) -> serde_json::Value {
    mask::mask_json(&mut payload);
    let text = payload.to_string();
    if text.len() <= limit {
        return payload;
    }
    let mut cut = preview.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    serde_json::json!({ "truncated": true, "original_bytes": text.len(), "preview": &text[..cut] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedClock, MemoryLogSink, SequentialIds};

    fn log(sink: Arc<MemoryLogSink>, days: i64) -> IntegrationLog {
        IntegrationLog::new(
            sink,
            Arc::new(FixedClock::at("2026-11-24T12:00:00Z")),
            Arc::new(SequentialIds::default()),
            days,
        )
    }

    #[tokio::test]
    async fn records_are_masked_stamped_and_expire_within_kvkk_limit() {
        let sink = Arc::new(MemoryLogSink::default());
        let log = log(sink.clone(), 400);
        let entry = LogEntry::new(
            TenantId::parse("demo").unwrap(),
            Integration::WhatsApp,
            LogDirection::Inbound,
            "message.process",
            LogResult::Success,
            TraceId::new("trace-1"),
        )
        .payload(serde_json::json!({"from": "905331234567", "access_token": "EAAG-secret", "text": {"body": "mail: ayse@ornek.com"}}));
        let record = log.write(entry).await;
        let stored = sink.records();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0], record);
        let payload = record.payload.unwrap().to_string();
        assert!(!payload.contains("905331234567"), "{payload}");
        assert!(!payload.contains("EAAG-secret"), "{payload}");
        assert!(!payload.contains("ayse@ornek.com"), "{payload}");
        assert_eq!(
            record.expires_at - record.occurred_at.timestamp(),
            180 * 86_400
        );
        assert_eq!(record.trace_id.as_str(), "trace-1");
    }

    #[tokio::test]
    async fn a_following_record_keeps_its_traces_start_and_an_opening_one_its_own_time() {
        let sink = Arc::new(MemoryLogSink::default());
        let log = log(sink, 30);
        let entry = || {
            LogEntry::new(
                TenantId::parse("demo").unwrap(),
                Integration::WhatsApp,
                LogDirection::Inbound,
                "message.process",
                LogResult::Success,
                TraceId::new("t"),
            )
        };
        let received: DateTime<Utc> = "2026-11-24T11:59:58Z".parse().unwrap();
        let worker = log.write(entry().follows_trace(received)).await;
        assert!(worker.follows);
        assert_eq!(worker.trace_started_at, received);
        let plain = log.write(entry()).await;
        assert!(!plain.follows);
        assert_eq!(plain.trace_started_at, plain.occurred_at);
        let webhook = log.write(entry().starts_trace(received)).await;
        assert!(!webhook.follows);
        assert_eq!(webhook.trace_started_at, received);
    }

    #[tokio::test]
    async fn errors_keep_up_to_64_kb_of_payload_and_other_records_a_preview_past_512_bytes() {
        let sink = Arc::new(MemoryLogSink::default());
        let log = log(sink, 90);
        let entry = |result| {
            LogEntry::new(
                TenantId::parse("demo").unwrap(),
                Integration::WhatsApp,
                LogDirection::Inbound,
                "x",
                result,
                TraceId::new("t"),
            )
        };
        let huge = serde_json::json!({"body": "ğ".repeat(MAX_PAYLOAD_BYTES)});
        let error = log
            .write(entry(LogResult::Error).payload(huge.clone()))
            .await;
        let payload = error.payload.unwrap();
        assert_eq!(payload["truncated"], true);
        assert!(payload.to_string().len() > MAX_PAYLOAD_BYTES - 200);
        assert!(payload.to_string().len() < MAX_PAYLOAD_BYTES + 200);
        let success = log.write(entry(LogResult::Success).payload(huge)).await;
        let preview = success.payload.unwrap();
        assert_eq!(preview["truncated"], true);
        assert!(
            preview.to_string().len() < SUCCESS_PAYLOAD_BYTES,
            "{preview}"
        );
        let small = serde_json::json!({"body": "kısa"});
        let kept = log
            .write(entry(LogResult::Success).payload(small.clone()))
            .await;
        assert_eq!(kept.payload.unwrap(), small);
        assert_eq!(
            success.expires_at - success.occurred_at.timestamp(),
            90 * 86_400
        );
    }
}
