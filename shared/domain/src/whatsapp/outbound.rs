//! Sending a queued WhatsApp message, once. The send record is claimed with a conditional
//! write before Meta is called; a delivery that finds it sent, failed or uncertain changes
//! nothing, and a send whose call got no clear answer is never sent again by itself (a second
//! WhatsApp message to a customer is worse than a missing one; the operator sees it).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::refusal::{problem, MetaRefusal, RetryDecision};
use super::send::{
    last_inbound, service_window_open, SendProblem, SendRecord, SendRequest, SendState,
};
use crate::batch::ProcessError;
use crate::envelope::{Envelope, TraceId};
use crate::error::PortError;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::ports::{CrmRepository, TenantDirectory};
use crate::tenant::TenantId;

/// Timeline entries read to find the customer's last message (the 24-hour window).
const WINDOW_LOOKBACK: usize = 50;
/// A send left `sending` this long ago died mid-call: four times the worker's timeout
/// (template.yaml: 30 s), and within the send queue's redeliveries (5 × its 60 s visibility),
/// so the message settles it as uncertain before it could reach the DLQ.
const SENDING_ABANDONED_SECONDS: i64 = 120;

/// Meta accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub wamid: String,
    /// Pacing: `accepted`, `held_for_quality_assessment`, `paused`.
    pub message_status: Option<String>,
}

/// Why a send did not go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Meta answered with an error code.
    Refused(MetaRefusal),
    /// No usable answer (throttled before sending, unreachable, no clear outcome...).
    Port(PortError),
}

/// `POST /{phone_number_id}/messages` with the tenant's token.
#[async_trait]
pub trait MessageSender: Send + Sync {
    async fn send(
        &self,
        tenant: &TenantId,
        phone_number_id: &str,
        body: &Value,
        send_id: &str,
        trace: &TraceId,
    ) -> Result<Accepted, SendFailure>;
}

/// Send records (`T#<t>#WASEND#<send id>`).
#[async_trait]
pub trait SendStore: Send + Sync {
    /// Records a new send; `Some(existing)` when its id was taken (nothing changed).
    async fn create_send(
        &self,
        tenant: &TenantId,
        record: &SendRecord,
    ) -> Result<Option<SendRecord>, PortError>;
    async fn send_record(
        &self,
        tenant: &TenantId,
        send_id: &str,
    ) -> Result<Option<SendRecord>, PortError>;
    /// Takes a queued or waiting send (or one the CRM queued without a record) for sending:
    /// `Ok(claimed)` with its attempt counted, `Err(current)` when it is not claimable.
    async fn claim_send(
        &self,
        tenant: &TenantId,
        record: &SendRecord,
    ) -> Result<Result<SendRecord, SendRecord>, PortError>;
    /// Writes a claimed send's outcome (only while it is still `sending` by this claim), then
    /// [`SendStore::ensure_entry`].
    async fn finish_send(&self, tenant: &TenantId, record: &SendRecord) -> Result<(), PortError>;
    /// The card's timeline entry of a send that reached Meta (sent, or refused by Meta); its
    /// key is the send's, so writing it again changes nothing.
    async fn ensure_entry(&self, tenant: &TenantId, record: &SendRecord) -> Result<(), PortError>;
}

/// A send refused before Meta was called: the HTTP status the route answers, the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub field: Option<String>,
    pub problem: SendProblem,
}

impl Refused {
    fn new(status: u16, field: Option<&str>, problem: SendProblem) -> Self {
        Self {
            status,
            field: field.map(str::to_string),
            problem,
        }
    }
}

/// What every send goes through, at the route and again in the worker (the CRM may queue
/// directly): the tenant's number, the card, the recipient, the 24-hour window.
pub struct SendRules {
    pub crm: Arc<dyn CrmRepository>,
    pub tenants: Arc<dyn TenantDirectory>,
}

impl SendRules {
    /// The send record for a request, or why it cannot go.
    #[allow(clippy::too_many_arguments)]
    pub async fn prepare(
        &self,
        tenant: &TenantId,
        request: &SendRequest,
        send_id: &str,
        requested_by: &str,
        trace: &TraceId,
        now: DateTime<Utc>,
    ) -> Result<Result<SendRecord, Refused>, PortError> {
        let settings = self
            .tenants
            .tenant(tenant)
            .await?
            .and_then(|t| t.integrations.whatsapp);
        let Some(settings) = settings else {
            return Ok(Err(Refused::new(
                409,
                None,
                problem(
                    "whatsapp_not_connected",
                    "This tenant has no WhatsApp number connected.",
                    "Bu firmaya bağlı bir WhatsApp numarası yok.",
                ),
            )));
        };
        let Some(card) = self.crm.card(tenant, &request.card_id).await? else {
            return Ok(Err(Refused::new(
                404,
                Some("card_id"),
                problem("not_found", "No such card.", "Böyle bir kart yok."),
            )));
        };
        let to = match request.recipient(&card.phones) {
            Ok(to) => to,
            Err(e) => {
                return Ok(Err(Refused::new(
                    422,
                    Some(&e.field),
                    SendProblem {
                        code: e.code,
                        meta_code: None,
                        message: format!("{}: {}", e.field, e.message),
                        message_tr: "Kartta bu mesaj için geçerli bir telefon numarası yok.".into(),
                        details: None,
                    },
                )))
            }
        };
        if !request.message.is_template() {
            let timeline = self
                .crm
                .timeline(tenant, &card.card_id, WINDOW_LOOKBACK)
                .await?;
            if !service_window_open(last_inbound(&timeline), now) {
                return Ok(Err(Refused::new(
                    409,
                    Some("message.type"),
                    problem(
                        "whatsapp_template_required",
                        "The customer has not written in the last 24 hours: only an approved template can be sent.",
                        "Müşteri son 24 saatte yazmadı: yalnızca onaylı bir şablon gönderilebilir.",
                    ),
                )));
            }
        }
        Ok(Ok(SendRecord {
            send_id: send_id.to_string(),
            card_id: card.card_id,
            to: to.as_str().to_string(),
            phone_number_id: settings.phone_number_id,
            message: request.message.clone(),
            state: SendState::Queued,
            requested_by: requested_by.to_string(),
            requested_at: now,
            updated_at: now,
            attempts: 0,
            wamid: None,
            problem: None,
            trace_id: trace.to_string(),
        }))
    }
}

pub struct OutboundWorker {
    pub rules: SendRules,
    pub sends: Arc<dyn SendStore>,
    pub sender: Arc<dyn MessageSender>,
    pub log: IntegrationLog,
}

impl OutboundWorker {
    fn entry(
        &self,
        envelope: &Envelope,
        opened: bool,
        result: LogResult,
        attempt: u32,
    ) -> LogEntry {
        let entry = LogEntry::for_queued(
            envelope,
            Integration::WhatsApp,
            LogDirection::Outbound,
            "whatsapp.send",
            result,
            attempt,
        );
        // The route's record opened the trace; a send the CRM queued opens it here.
        if opened {
            entry
        } else {
            entry.starts_trace(envelope.received_at)
        }
    }

    /// One queued send. `Ok` when it is settled (sent, failed, uncertain or a duplicate);
    /// `Err` sends the message back to the queue (waiting: throttled, or our token).
    pub async fn handle(&self, envelope: Envelope, attempt: u32) -> Result<(), ProcessError> {
        let request: SendRequest = serde_json::from_value(envelope.payload.clone())
            .map_err(|e| ProcessError::permanent("invalid_payload", format!("not a send: {e}")))?;
        request.message.validate().map_err(|e| {
            ProcessError::permanent("invalid_payload", format!("{}: {}", e.field, e.message))
        })?;
        let tenant = &envelope.tenant_id;
        let send_id = request
            .send_id
            .clone()
            .unwrap_or_else(|| envelope.external_id.clone());
        let opened = request.requested_by.is_some();
        let requested_by = request.requested_by.clone().unwrap_or_else(|| "crm".into());
        let now = self.log.clock().now();
        let prepared = self
            .rules
            .prepare(
                tenant,
                &request,
                &send_id,
                &requested_by,
                &envelope.trace_id,
                now,
            )
            .await?;
        let record = match prepared {
            Ok(record) => record,
            Err(refused) => {
                // Refused before sending (the card lost its phone, the window closed): the
                // send is failed for good, with the reason.
                let record = SendRecord {
                    send_id: send_id.clone(),
                    card_id: request.card_id.clone(),
                    to: request.to.clone().unwrap_or_default(),
                    phone_number_id: String::new(),
                    message: request.message.clone(),
                    state: SendState::Queued,
                    requested_by,
                    requested_at: envelope.received_at,
                    updated_at: now,
                    attempts: 0,
                    wamid: None,
                    problem: None,
                    trace_id: envelope.trace_id.to_string(),
                };
                return self
                    .settle_unsent(&envelope, opened, record, refused.problem, attempt)
                    .await;
            }
        };
        let record = SendRecord {
            requested_at: envelope.received_at,
            ..record
        };
        // Built before the claim: nothing after it may fail before Meta is called.
        let body = record.message.to_meta(
            &crate::phone::PhoneNumber::parse(&record.to)
                .map_err(|e| ProcessError::permanent("invalid_payload", e.to_string()))?,
            &send_id,
        );
        let mut claimed = match self.sends.claim_send(tenant, &record).await? {
            Ok(claimed) => claimed,
            Err(current) => return self.already(&envelope, opened, current, attempt, now).await,
        };
        let outcome = self
            .sender
            .send(
                tenant,
                &claimed.phone_number_id,
                &body,
                &send_id,
                &envelope.trace_id,
            )
            .await;
        claimed.updated_at = self.log.clock().now();
        match outcome {
            // The Graph call's own record says it (status, wamid): no second record.
            Ok(accepted) => {
                claimed.state = SendState::Sent;
                claimed.wamid = Some(accepted.wamid);
                self.sends.finish_send(tenant, &claimed).await?;
                Ok(())
            }
            Err(SendFailure::Refused(refusal)) => {
                let (problem, retry) = refusal.judge();
                self.settle(&envelope, opened, claimed, problem, Some(retry), attempt)
                    .await
            }
            Err(SendFailure::Port(error)) => {
                let (problem, retry) = port_problem(&error);
                self.settle(&envelope, opened, claimed, problem, retry, attempt)
                    .await
            }
        }
    }

    /// A claimed send that did not go: failed, waiting or uncertain, with its log record.
    async fn settle(
        &self,
        envelope: &Envelope,
        opened: bool,
        mut record: SendRecord,
        problem: SendProblem,
        retry: Option<RetryDecision>,
        attempt: u32,
    ) -> Result<(), ProcessError> {
        record.state = match retry {
            Some(RetryDecision::Never) => SendState::Failed,
            Some(RetryDecision::Later { .. } | RetryDecision::AfterFix) => SendState::Waiting,
            None => SendState::Uncertain,
        };
        record.problem = Some(problem.clone());
        self.sends.finish_send(&envelope.tenant_id, &record).await?;
        match retry {
            // The message goes back to the queue; the batch's own error record tells it.
            Some(RetryDecision::Later { after_secs }) => Err(ProcessError::retryable(
                &problem.code,
                format!("{} (again in about {after_secs}s)", problem.message),
            )),
            // Until someone fixes the connection: the message ends in the DLQ for replay.
            Some(RetryDecision::AfterFix) => {
                Err(ProcessError::permanent(&problem.code, problem.message))
            }
            // Settled: this is the send's one error record.
            _ => {
                let entry = self
                    .entry(envelope, opened, LogResult::Error, attempt)
                    .card_id(record.card_id.clone())
                    .error(&problem.code, problem.message.clone())
                    .external_message(problem.details.clone().unwrap_or_default());
                self.log.write(entry).await;
                Ok(())
            }
        }
    }

    /// A send refused before it was claimed: recorded as failed (unless it is already settled).
    async fn settle_unsent(
        &self,
        envelope: &Envelope,
        opened: bool,
        record: SendRecord,
        problem: SendProblem,
        attempt: u32,
    ) -> Result<(), ProcessError> {
        let now = record.updated_at;
        match self.sends.claim_send(&envelope.tenant_id, &record).await? {
            Ok(claimed) => {
                self.settle(
                    envelope,
                    opened,
                    claimed,
                    problem,
                    Some(RetryDecision::Never),
                    attempt,
                )
                .await
            }
            Err(current) => self.already(envelope, opened, current, attempt, now).await,
        }
    }

    /// Another delivery has this send, or had it.
    async fn already(
        &self,
        envelope: &Envelope,
        opened: bool,
        mut current: SendRecord,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> Result<(), ProcessError> {
        match current.state {
            SendState::Sending
                if now - current.updated_at < Duration::seconds(SENDING_ABANDONED_SECONDS) =>
            {
                Err(ProcessError::retryable(
                    "send_in_progress",
                    "another delivery of this send is calling Meta now",
                ))
            }
            SendState::Sending => {
                // Its worker died during the call: it may have gone out.
                current.updated_at = now;
                self.settle(envelope, opened, current, abandoned(), None, attempt)
                    .await
            }
            _ => {
                // Settled, but its timeline entry may have been lost with the last delivery.
                self.sends
                    .ensure_entry(&envelope.tenant_id, &current)
                    .await?;
                let entry = self
                    .entry(envelope, opened, LogResult::Duplicate, attempt)
                    .card_id(current.card_id.clone())
                    .external_message(format!("send already {}", current.state.as_str()));
                self.log.write(entry).await;
                Ok(())
            }
        }
    }
}

fn abandoned() -> SendProblem {
    problem(
        "whatsapp_outcome_unknown",
        "The call to Meta was cut off: the message may have been sent. Check the customer's WhatsApp before sending again.",
        "Meta çağrısı yarıda kesildi: mesaj gitmiş olabilir. Yeniden göndermeden önce müşterinin WhatsApp'ına bakın.",
    )
}

/// A failure without Meta's error code. `None`: the outcome is unknown.
fn port_problem(error: &PortError) -> (SendProblem, Option<RetryDecision>) {
    match error {
        PortError::Unavailable(m) => (
            SendProblem {
                details: Some(m.clone()),
                ..problem(
                    "whatsapp_unavailable",
                    "WhatsApp could not be reached; the message goes again shortly.",
                    "WhatsApp'a ulaşılamadı; mesaj biraz sonra yeniden gönderilecek.",
                )
            },
            Some(RetryDecision::Later { after_secs: 30 }),
        ),
        PortError::Unauthorized(m) => (
            SendProblem {
                details: Some(m.clone()),
                ..problem(
                    "whatsapp_token_invalid",
                    "The tenant's WhatsApp access token is missing or refused: renew it, then replay the message.",
                    "WhatsApp erişim anahtarı (token) yok ya da reddedildi: yenileyip mesajı yeniden gönderin.",
                )
            },
            Some(RetryDecision::AfterFix),
        ),
        PortError::Rejected(m) => (
            SendProblem {
                details: Some(m.clone()),
                ..problem(
                    "whatsapp_refused",
                    "The message was refused.",
                    "Mesaj reddedildi.",
                )
            },
            Some(RetryDecision::Never),
        ),
        PortError::OutcomeUnknown(m) => (
            SendProblem {
                details: Some(m.clone()),
                ..abandoned()
            },
            None,
        ),
    }
}
