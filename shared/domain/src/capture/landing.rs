//! Lands a captured lead on the right card, exactly once: found by E.164 phone, then folded
//! e-mail; a second touch from any channel adds a timeline entry (and moves a lead's last touch
//! forward, its first touch stays) instead of opening a new lead; keys that point at different
//! cards are flagged as possible duplicates on both.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::capture::CapturedLead;
use crate::envelope::TraceId;
use crate::error::PortError;
use crate::idempotency::idempotency_key;
use crate::identity::{CardMatcher, Landing};
use crate::log::{LogEntry, LogResult};
use crate::party::{
    Card, CardKind, CardRef, IdentityKey, LeadDetails, LeadSource, LeadStatus, Note, Profile, Touch,
};
use crate::ports::{CardInteraction, CrmRepository, Dedupe, NewLead, WriteOutcome};
use crate::tenant::TenantConfig;
use crate::timeline::{Channel, Direction, TimelineEntry};

/// What landing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// A new lead card.
    Created(CardRef),
    /// A timeline entry on a card that already existed (and its last touch, if a lead).
    Added(CardRef),
    /// This submission was already landed: nothing changed.
    Duplicate,
}

impl Landed {
    /// The worker's log record of what landing did; `entry` makes the worker's entry for a
    /// result, `what` names the lead ("Meta lead"), `note` ends the message.
    pub fn log_entry(
        &self,
        entry: impl Fn(LogResult) -> LogEntry,
        what: &str,
        note: &str,
    ) -> LogEntry {
        match self {
            Landed::Created(card) => entry(LogResult::Success)
                .card_id(card.card_id.clone())
                .external_message(format!(
                    "new {what} {}{note}",
                    crate::mask::mask_name(&card.display_name)
                )),
            Landed::Added(card) => entry(LogResult::Success)
                .card_id(card.card_id.clone())
                .external_message(format!(
                    "form added to the timeline of card {}{note}",
                    card.card_id
                )),
            Landed::Duplicate => crate::idempotency::duplicate(entry(LogResult::Duplicate)),
        }
    }
}

pub struct LeadLanding {
    repo: Arc<dyn CrmRepository>,
    matcher: CardMatcher,
    /// Where a requested service becomes a Karel opportunity (tenants with Karel settings).
    karel: Option<Arc<dyn crate::ports::EventQueue>>,
}

fn channel(source: LeadSource) -> Channel {
    match source {
        LeadSource::MetaLeadAds => Channel::MetaLeadAds,
        LeadSource::WhatsApp => Channel::WhatsApp,
        LeadSource::Phone => Channel::Phone,
        LeadSource::WebForm | LeadSource::Other | LeadSource::Logo => Channel::WebForm,
        LeadSource::InsurUp => Channel::InsurUp,
    }
}

impl LeadLanding {
    pub fn new(repo: Arc<dyn CrmRepository>) -> Self {
        Self {
            matcher: CardMatcher::new(repo.clone()),
            repo,
            karel: None,
        }
    }

    /// Leads asking for a service also go to Karel CRM as opportunities.
    pub fn with_karel(mut self, queue: Arc<dyn crate::ports::EventQueue>) -> Self {
        self.karel = Some(queue);
        self
    }

    /// A lead that asked for a service, queued as a Karel opportunity when the tenant uses Karel.
    /// Queued again after a duplicate landing (the first may have failed before queueing); Karel's
    /// side ignores a version it has applied.
    async fn push_opportunity(
        &self,
        tenant: &TenantConfig,
        lead: &CapturedLead,
        card_id: &str,
        trace: &TraceId,
        now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let (Some(queue), Some(service)) = (&self.karel, &lead.requested_service) else {
            return Ok(());
        };
        if tenant.integrations.karel.is_none() {
            return Ok(());
        }
        let change = crate::karel::opportunity::OpportunityChange {
            opportunity_id: format!("lead:{}:{}", lead.source.as_str(), lead.external_id),
            version: lead.captured_at.timestamp_millis(),
            trigger: crate::karel::opportunity::Trigger::LeadRequestedService,
            deleted: false,
            card_id: card_id.to_string(),
            owner: tenant.default_owner.clone(),
            description: format!(
                "{service} talebi{}",
                lead.display_name()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
            price: None,
            stage: None,
            state: None,
            start_date: Some(crate::time::istanbul_today(&lead.captured_at)),
            estimated_end_date: None,
            period: None,
            tags: vec![lead.source.as_str().to_string()],
            custom_fields: Default::default(),
        };
        queue
            .enqueue(&[crate::karel::envelope(
                &tenant.tenant_id,
                trace,
                now,
                &change,
            )])
            .await
    }

    /// `scope` names the kind of submission (`meta.leadgen`, `web_form.submission`): with the
    /// lead's external id it is the idempotency key.
    pub async fn land(
        &self,
        tenant: &TenantConfig,
        lead: &CapturedLead,
        scope: &str,
        trace: &TraceId,
        new_card_id: String,
        now: DateTime<Utc>,
    ) -> Result<Landed, PortError> {
        let landed = self
            .land_card(tenant, lead, scope, trace, new_card_id, now)
            .await?;
        let card_id = match &landed {
            Landed::Created(card) | Landed::Added(card) => Some(card.card_id.clone()),
            Landed::Duplicate if self.karel.is_some() && lead.requested_service.is_some() => self
                .matcher
                .find(&tenant.tenant_id, &lead_keys(lead))
                .await?
                .best
                .map(|c| c.card_id),
            Landed::Duplicate => None,
        };
        if let Some(card_id) = card_id {
            self.push_opportunity(tenant, lead, &card_id, trace, now)
                .await?;
        }
        Ok(landed)
    }

    async fn land_card(
        &self,
        tenant: &TenantConfig,
        lead: &CapturedLead,
        scope: &str,
        trace: &TraceId,
        new_card_id: String,
        now: DateTime<Utc>,
    ) -> Result<Landed, PortError> {
        let keys = lead_keys(lead);
        let dedupe = Dedupe::Key(idempotency_key(scope, &lead.external_id, now));
        let touch = Touch {
            channel: channel(lead.source),
            at: lead.captured_at,
            external_id: Some(lead.external_id.clone()),
            referral: None,
            utm: Some(lead.utm.clone()),
        };
        let landing = self
            .matcher
            .find_or_create_lead(&tenant.tenant_id, &keys, || {
                Some(new_lead(
                    tenant,
                    lead,
                    &keys,
                    dedupe.clone(),
                    touch.clone(),
                    scope,
                    trace,
                    new_card_id.clone(),
                    now,
                ))
            })
            .await?;
        match landing {
            Landing::Created(card) => Ok(Landed::Created(card)),
            Landing::Duplicate => Ok(Landed::Duplicate),
            Landing::Found(found) => {
                let card = found
                    .best
                    .clone()
                    .ok_or_else(|| PortError::Unavailable("matched card vanished".into()))?;
                self.matcher
                    .flag_conflicts(
                        &tenant.tenant_id,
                        &found,
                        &format!("{}: phone and e-mail point to different cards", scope),
                    )
                    .await?;
                let write = CardInteraction {
                    dedupe,
                    entry: timeline_entry(&card.card_id, lead, scope, trace),
                    card: card.clone(),
                    touch,
                    consents: lead.consents.clone(),
                };
                match self
                    .repo
                    .record_interaction(&tenant.tenant_id, &write)
                    .await?
                {
                    WriteOutcome::Applied => Ok(Landed::Added(card)),
                    WriteOutcome::Duplicate => Ok(Landed::Duplicate),
                }
            }
            // `new_lead` always offers a lead.
            Landing::Declined => Err(PortError::Rejected("lead creation declined".into())),
        }
    }
}

/// One line for the card: what was filled, and where.
fn summary(lead: &CapturedLead) -> String {
    let what = match lead.source {
        LeadSource::MetaLeadAds => match lead.campaign.as_ref().and_then(|c| c.platform.as_deref())
        {
            Some("instagram") => "Instagram formu",
            _ => "Facebook formu",
        },
        _ => "Web formu",
    };
    let from = lead
        .campaign
        .as_ref()
        .and_then(|c| c.campaign_name.clone())
        .or_else(|| lead.utm.campaign.clone());
    match from {
        Some(campaign) => format!("{what} dolduruldu ({campaign})"),
        None => format!("{what} dolduruldu"),
    }
}

fn timeline_entry(
    card_id: &str,
    lead: &CapturedLead,
    scope: &str,
    trace: &TraceId,
) -> TimelineEntry {
    TimelineEntry {
        entry_id: format!("{scope}:{}", lead.external_id),
        card_id: card_id.to_string(),
        channel: channel(lead.source),
        direction: Direction::Inbound,
        kind: "form_submitted".into(),
        text: summary(lead),
        external_id: Some(lead.external_id.clone()),
        attachment: None,
        details: serde_json::json!({
            "answers": lead.custom,
            "message": lead.message,
            "requested_service": lead.requested_service,
            "utm": lead.utm,
            "campaign": lead.campaign,
            "consents": lead.consents.len(),
        }),
        occurred_at: lead.captured_at,
        trace_id: trace.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn new_lead(
    tenant: &TenantConfig,
    lead: &CapturedLead,
    keys: &[IdentityKey],
    dedupe: Dedupe,
    touch: Touch,
    scope: &str,
    trace: &TraceId,
    card_id: String,
    now: DateTime<Utc>,
) -> NewLead {
    let display_name = lead
        .display_name()
        .or_else(|| lead.company.clone())
        .or_else(|| lead.email.clone())
        .or_else(|| lead.phone.as_ref().map(|p| p.national_display()))
        .unwrap_or_else(|| format!("Form lead'i {}", lead.external_id));
    let card = Card {
        card_id: card_id.clone(),
        kind: CardKind::Lead,
        display_name,
        phones: lead.phone.iter().cloned().collect(),
        emails: lead.email.iter().cloned().collect(),
        owner: tenant.default_owner.clone(),
        external_ids: Default::default(),
        profile: Profile {
            first_name: lead.first_name.clone(),
            last_name: lead.last_name.clone(),
            company: lead.company.clone(),
            job_title: lead.job_title.clone(),
            city: lead.city.clone(),
            address: None,
        },
        lead: Some(LeadDetails {
            source: lead.source,
            status: LeadStatus::New,
            utm: lead.utm.clone(),
            campaign: lead.campaign.clone(),
            first_touch: touch.clone(),
            last_touch: touch,
        }),
        customer: None,
        contact: None,
        created_at: now,
        updated_at: now,
    };
    let note = lead.note();
    NewLead {
        dedupe,
        identities: keys.to_vec(),
        note: (!note.is_empty()).then(|| Note {
            note_id: format!("{scope}:{}", lead.external_id),
            card_id: card_id.clone(),
            text: note,
            author: format!("system:{scope}"),
            created_at: lead.captured_at,
        }),
        entry: timeline_entry(&card_id, lead, scope, trace),
        card,
        task: None,
        consents: lead.consents.clone(),
    }
}

/// The keys a captured lead is found by: phone, then e-mail.
fn lead_keys(lead: &CapturedLead) -> Vec<IdentityKey> {
    let mut keys = Vec::new();
    if let Some(phone) = &lead.phone {
        keys.push(IdentityKey::Phone(phone.clone()));
    }
    if let Some(email) = &lead.email {
        keys.push(IdentityKey::Email(email.clone()));
    }
    keys
}
