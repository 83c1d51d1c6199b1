//! The `whatsapp-worker` use case: apply one queued WhatsApp event to the CRM, exactly once.

use std::sync::Arc;

use chrono::Duration;

use crate::batch::ProcessError;
use crate::envelope::Envelope;
use crate::idempotency::duplicate;
use crate::identity::{CardMatcher, Landing};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::party::{
    Card, CardKind, IdentityKey, LeadDetails, LeadSource, LeadStatus, Note, Touch, Utm,
};
use crate::phone::PhoneNumber;
use crate::ports::{
    CardInteraction, CrmRepository, Dedupe, NewLead, StatusOutcome, TenantDirectory, WriteOutcome,
};
use crate::task::{Task, TaskStatus};
use crate::tenant::TenantConfig;
use crate::timeline::{Channel, Direction, TimelineEntry};
use crate::whatsapp::event::{InboundMessage, MessageContent, WhatsAppEvent};
use crate::whatsapp::status::{DeliveryStatus, MessageStatusUpdate};

/// A salesperson should call a new WhatsApp lead back within the hour.
pub const NEW_LEAD_TASK_DUE_HOURS: i64 = 1;
pub const NOTE_AUTHOR: &str = "system:whatsapp";

pub struct WhatsAppWorker {
    repo: Arc<dyn CrmRepository>,
    matcher: CardMatcher,
    tenants: Arc<dyn TenantDirectory>,
    log: IntegrationLog,
}

impl WhatsAppWorker {
    pub fn new(
        repo: Arc<dyn CrmRepository>,
        tenants: Arc<dyn TenantDirectory>,
        log: IntegrationLog,
    ) -> Self {
        Self {
            matcher: CardMatcher::new(repo.clone()),
            repo,
            tenants,
            log,
        }
    }

    /// Processes one envelope. `Ok` means done (applied, duplicate or deliberately ignored,
    /// each with its log record); `Err` sends the message back to the queue.
    pub async fn handle(&self, envelope: Envelope, attempt: u32) -> Result<(), ProcessError> {
        let event: WhatsAppEvent =
            serde_json::from_value(envelope.payload.clone()).map_err(|e| {
                ProcessError::permanent("invalid_payload", format!("not a WhatsApp event: {e}"))
            })?;
        match event {
            WhatsAppEvent::Message(message) => self.message(&envelope, *message, attempt).await,
            WhatsAppEvent::Status(status) => self.status(&envelope, status, attempt).await,
        }
    }

    /// The worker's record sits beside the webhook's record of the same delivery, which holds
    /// the payload as received: an error repeats the event's payload (what failed), a success
    /// does not, so it stays one write unit.
    fn entry(
        &self,
        envelope: &Envelope,
        operation: &str,
        result: LogResult,
        attempt: u32,
    ) -> LogEntry {
        let entry = LogEntry::for_queued(
            envelope,
            Integration::WhatsApp,
            LogDirection::Inbound,
            operation,
            result,
            attempt,
        );
        match result {
            LogResult::Error => entry.payload(envelope.payload.clone()),
            _ => entry,
        }
    }

    async fn message(
        &self,
        envelope: &Envelope,
        message: InboundMessage,
        attempt: u32,
    ) -> Result<(), ProcessError> {
        const OP: &str = "whatsapp.message.process";
        let tenant = self
            .tenants
            .tenant(&envelope.tenant_id)
            .await?
            .ok_or_else(|| {
                ProcessError::permanent(
                    "unknown_tenant",
                    format!("tenant {} does not exist", envelope.tenant_id),
                )
            })?;
        let phone = PhoneNumber::from_international_digits(&message.from)
            .map_err(|e| ProcessError::permanent("invalid_phone", e.to_string()))?;
        let identity = IdentityKey::Phone(phone.clone());
        let now = self.log.clock().now();
        // The message is kept in the sender's conversation: its wamid-derived key is the dedupe.
        let dedupe = Dedupe::Conversation(identity.clone());
        let touch = Touch {
            channel: Channel::WhatsApp,
            at: message.sent_at,
            external_id: Some(message.wamid.clone()),
            referral: message.referral.clone(),
            utm: None,
        };

        let settings = tenant.integrations.whatsapp.as_ref();
        let creates_lead = settings.is_none_or(|s| s.create_lead_for_unknown_numbers);
        let opens_lead = message.content.opens_lead() && creates_lead;
        let landing = self
            .matcher
            .find_or_create_lead(&tenant.tenant_id, std::slice::from_ref(&identity), || {
                opens_lead.then(|| {
                    new_lead(
                        &tenant,
                        &message,
                        &phone,
                        dedupe.clone(),
                        touch.clone(),
                        envelope,
                        self.log.ids().new_id(),
                        self.log.ids().new_id(),
                        now,
                    )
                })
            })
            .await?;
        let entry = match landing {
            Landing::Found(found) => {
                let card = found
                    .best
                    .unwrap_or_else(|| unreachable!("found has a best card"));
                let write = CardInteraction {
                    dedupe: dedupe.clone(),
                    entry: timeline_entry(&card.card_id, &message, envelope),
                    card: card.clone(),
                    touch: touch.clone(),
                    consents: Vec::new(),
                };
                match self
                    .repo
                    .record_interaction(&tenant.tenant_id, &write)
                    .await?
                {
                    WriteOutcome::Applied => self
                        .entry(envelope, OP, LogResult::Success, attempt)
                        .card_id(card.card_id.clone())
                        .external_message(format!(
                            "added to the timeline of {} card {} ({})",
                            kind_name(card.kind),
                            card.card_id,
                            crate::mask::mask_name(&card.display_name)
                        )),
                    WriteOutcome::Duplicate => {
                        duplicate(self.entry(envelope, OP, LogResult::Duplicate, attempt))
                    }
                }
            }
            Landing::Created(card) => {
                let with_task = tenant.default_owner.is_some()
                    && settings.is_some_and(|s| s.create_task_for_new_lead);
                self.entry(envelope, OP, LogResult::Success, attempt)
                    .card_id(card.card_id.clone())
                    .external_message(format!(
                        "new WhatsApp lead {}{}",
                        crate::mask::mask_name(&card.display_name),
                        if with_task {
                            " with a task for its owner"
                        } else {
                            ""
                        }
                    ))
            }
            Landing::Duplicate => {
                duplicate(self.entry(envelope, OP, LogResult::Duplicate, attempt))
            }
            Landing::Declined => {
                let why = if creates_lead {
                    "a reaction or system notice from an unknown number opens no lead"
                } else {
                    "lead creation for unknown numbers is off for this tenant"
                };
                self.entry(envelope, OP, LogResult::Ignored, attempt)
                    .external_message(why)
            }
        };
        self.log.write(entry).await;
        Ok(())
    }

    async fn status(
        &self,
        envelope: &Envelope,
        update: MessageStatusUpdate,
        attempt: u32,
    ) -> Result<(), ProcessError> {
        const OP: &str = "whatsapp.status.apply";
        let outcome = self
            .repo
            .apply_message_status(&envelope.tenant_id, &update)
            .await?;
        let mut entry = match outcome {
            StatusOutcome::Applied if update.status == DeliveryStatus::Failed => {
                // The call worked; the message did not: shown as an error with Meta's code.
                let error = update.errors.first();
                self.entry(envelope, OP, LogResult::Error, attempt).error(
                    &error
                        .map(|e| e.code.to_string())
                        .unwrap_or_else(|| "whatsapp_failed".into()),
                    error
                        .and_then(|e| e.title.clone())
                        .unwrap_or_else(|| "message failed".into()),
                )
            }
            StatusOutcome::Applied => self.entry(envelope, OP, LogResult::Success, attempt),
            StatusOutcome::Stale => self.entry(envelope, OP, LogResult::Ignored, attempt),
        };
        entry = entry.external_message(match (outcome, update.errors.first()) {
            (StatusOutcome::Stale, _) => format!(
                "{} is not newer than the recorded status; kept the newer one",
                update.status.as_str()
            ),
            (_, Some(error)) => error
                .details
                .clone()
                .unwrap_or_else(|| update.status.as_str().to_string()),
            (_, None) => format!("message is now {}", update.status.as_str()),
        });
        self.log.write(entry).await;
        Ok(())
    }
}

fn kind_name(kind: CardKind) -> &'static str {
    match kind {
        CardKind::Lead => "lead",
        CardKind::Customer => "customer",
        CardKind::Contact => "contact",
    }
}

fn timeline_entry(card_id: &str, message: &InboundMessage, envelope: &Envelope) -> TimelineEntry {
    // Media travel as the attachment, text as the summary; everything else keeps its details.
    let details = match &message.content {
        MessageContent::Text { .. }
        | MessageContent::Image(_)
        | MessageContent::Audio(_)
        | MessageContent::Video(_)
        | MessageContent::Document(_)
        | MessageContent::Sticker(_) => serde_json::Value::Null,
        other => serde_json::to_value(other).unwrap_or_default(),
    };
    TimelineEntry {
        // Derived from the wamid: a replayed message maps onto the same entry.
        entry_id: format!("wa:{}", message.wamid),
        card_id: card_id.to_string(),
        channel: Channel::WhatsApp,
        direction: Direction::Inbound,
        kind: message.content.kind(),
        text: message.content.summary(),
        external_id: Some(message.wamid.clone()),
        attachment: message.content.attachment(),
        details,
        occurred_at: message.sent_at,
        trace_id: envelope.trace_id.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn new_lead(
    tenant: &TenantConfig,
    message: &InboundMessage,
    phone: &PhoneNumber,
    dedupe: Dedupe,
    touch: Touch,
    envelope: &Envelope,
    card_id: String,
    task_id: String,
    now: chrono::DateTime<chrono::Utc>,
) -> NewLead {
    let display_name = message
        .profile_name
        .clone()
        .unwrap_or_else(|| format!("WhatsApp {}", phone.national_display()));
    let card = Card {
        card_id: card_id.clone(),
        kind: CardKind::Lead,
        display_name: display_name.clone(),
        phones: vec![phone.clone()],
        emails: vec![],
        owner: tenant.default_owner.clone(),
        external_ids: Default::default(),
        profile: Default::default(),
        lead: Some(LeadDetails {
            source: LeadSource::WhatsApp,
            status: LeadStatus::New,
            utm: Utm::default(),
            campaign: None,
            first_touch: touch.clone(),
            last_touch: touch,
        }),
        customer: None,
        contact: None,
        created_at: now,
        updated_at: now,
    };
    let wants_task = tenant
        .integrations
        .whatsapp
        .as_ref()
        .is_some_and(|w| w.create_task_for_new_lead);
    let task = match (&tenant.default_owner, wants_task) {
        (Some(owner), true) => Some(Task {
            task_id,
            card_id: card_id.clone(),
            owner: owner.clone(),
            title: format!("Yeni WhatsApp lead'i: {display_name}"),
            status: TaskStatus::Open,
            due_at: now + Duration::hours(NEW_LEAD_TASK_DUE_HOURS),
            created_at: now,
        }),
        _ => None,
    };
    NewLead {
        dedupe,
        identities: vec![IdentityKey::Phone(phone.clone())],
        note: Some(Note {
            note_id: format!("wa:{}", message.wamid),
            card_id: card_id.clone(),
            text: message.content.summary(),
            author: NOTE_AUTHOR.into(),
            created_at: message.sent_at,
        }),
        entry: timeline_entry(&card_id, message, envelope),
        card,
        task,
        consents: Vec::new(),
    }
}
