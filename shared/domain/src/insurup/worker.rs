//! The InsurUp worker: each queued webhook event onto its customer's card, exactly once.
//!
//! The customer is found by InsurUp's customer id (an external id on the card), then a valid
//! TCKN/VKN, then the phone (E.164), then the e-mail; none → a new customer card (source
//! InsurUp) with those keys. When an event lacks what that needs (a `policy.updated` names only
//! the policy), the policy's earlier events, the proposal's link, or InsurUp itself (REST, as
//! the tenant's agent user) tell whose it is. Policy events are stored per endorsement (their
//! own idempotency key); every other event is one timeline entry (with consent records for ETK)
//! keyed by the delivery id.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;

use crate::batch::ProcessError;
use crate::consent::ConsentRecord;
use crate::envelope::{Envelope, TraceId};
use crate::error::PortError;
use crate::identity::CardMatcher;
use crate::insurup::event::*;
use crate::insurup::policy::*;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::money::Money;
use crate::party::{CardRef, Touch};
use crate::ports::{
    CardInteraction, CrmRepository, Dedupe, EventQueue, IdempotencyKey, PolicyRepository,
    TenantDirectory, WriteOutcome,
};
use crate::tenant::TenantId;
use crate::timeline::{Channel, Direction, TimelineEntry};

use super::customers::Customer;

/// InsurUp's name for the card's external id.
pub const EXTERNAL_SYSTEM: &str = "insurup";
pub const DELIVERY_SCOPE: &str = "insurup.delivery";
const IDEMPOTENCY_DAYS: i64 = 30;

/// What the worker asks InsurUp when a webhook lacks it (REST as the tenant's agent user).
#[async_trait]
pub trait InsurUpSource: Send + Sync {
    async fn customer(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        trace: &TraceId,
    ) -> Result<CustomerChanged, PortError>;
    /// The insured customer's id of a policy.
    async fn policy_customer(
        &self,
        tenant: &TenantId,
        policy_id: &str,
        trace: &TraceId,
    ) -> Result<String, PortError>;
    /// The insured customer's id of a proposal.
    async fn proposal_customer(
        &self,
        tenant: &TenantId,
        proposal_id: &str,
        trace: &TraceId,
    ) -> Result<String, PortError>;
}

pub struct InsurUpWorker {
    pub crm: Arc<dyn CrmRepository>,
    pub policies: Arc<dyn PolicyRepository>,
    pub source: Arc<dyn InsurUpSource>,
    pub log: IntegrationLog,
    pub tenants: Arc<dyn TenantDirectory>,
    /// Where a purchased policy becomes a Karel opportunity (tenants with Karel settings).
    pub karel: Option<Arc<dyn EventQueue>>,
}

/// What handling an event did, for its log record.
struct Handled {
    outcome: WriteOutcome,
    card: CardRef,
    created_card: bool,
    summary: String,
}

fn money(amount: Option<rust_decimal::Decimal>) -> Option<Money> {
    amount.map(|a| Money::new(a, "TRY"))
}

fn shown(money: &Option<Money>) -> String {
    money
        .as_ref()
        .map(|m| format!("{} {}", m.amount, m.currency))
        .unwrap_or_else(|| "-".into())
}

impl InsurUpWorker {
    fn entry(&self, envelope: &Envelope, result: LogResult, attempt: u32) -> LogEntry {
        LogEntry::for_queued(
            envelope,
            Integration::InsurUp,
            LogDirection::Inbound,
            "insurup.event.process",
            result,
            attempt,
        )
    }

    pub async fn handle(&self, envelope: Envelope, attempt: u32) -> Result<(), ProcessError> {
        let body = envelope
            .payload
            .get("body")
            .and_then(|b| b.as_str())
            .unwrap_or("");
        let event = InsurUpEvent::parse(body).map_err(|e| {
            ProcessError::permanent(
                "invalid_payload",
                format!("not an InsurUp event: {}: {}", e.field, e.message),
            )
        })?;
        let handled = match self.apply(&envelope, &event).await {
            Ok(handled) => handled,
            Err(e) => {
                let entry = self
                    .entry(&envelope, LogResult::Error, attempt)
                    .error(e.code(), e.to_string())
                    .payload(serde_json::from_str(body).unwrap_or_default());
                self.log.write(entry).await;
                return Err(ProcessError::from(e));
            }
        };
        let result = match handled.outcome {
            WriteOutcome::Applied => LogResult::Success,
            WriteOutcome::Duplicate => LogResult::Duplicate,
        };
        let mut message = format!("{}: {}", event.name(), handled.summary);
        if handled.created_card {
            message.push_str(" (new customer card, source InsurUp)");
        }
        self.log
            .write(
                self.entry(&envelope, result, attempt)
                    .card_id(handled.card.card_id.clone())
                    .external_message(message),
            )
            .await;
        Ok(())
    }

    fn timeline(
        &self,
        envelope: &Envelope,
        card: &CardRef,
        kind: &str,
        text: String,
        external_id: Option<String>,
        details: serde_json::Value,
    ) -> TimelineEntry {
        TimelineEntry {
            entry_id: format!("insurup:{}", envelope.external_id),
            card_id: card.card_id.clone(),
            channel: Channel::InsurUp,
            direction: Direction::Inbound,
            kind: kind.into(),
            text,
            external_id,
            attachment: None,
            details,
            occurred_at: envelope.received_at,
            trace_id: envelope.trace_id.to_string(),
        }
    }

    /// One timeline entry (and consent records) keyed by the delivery id.
    async fn note(
        &self,
        envelope: &Envelope,
        card: CardRef,
        created_card: bool,
        entry: TimelineEntry,
        consents: Vec<ConsentRecord>,
    ) -> Result<Handled, PortError> {
        let summary = entry.text.clone();
        let write = CardInteraction {
            dedupe: Dedupe::Key(IdempotencyKey {
                scope: DELIVERY_SCOPE.into(),
                key: envelope.external_id.clone(),
                expires_at: envelope.received_at + Duration::days(IDEMPOTENCY_DAYS),
            }),
            card: card.clone(),
            touch: Touch {
                channel: Channel::InsurUp,
                at: envelope.received_at,
                external_id: Some(envelope.external_id.clone()),
                referral: None,
                utm: None,
            },
            entry,
            consents,
        };
        let outcome = self
            .crm
            .record_interaction(&envelope.tenant_id, &write)
            .await?;
        Ok(Handled {
            outcome,
            card,
            created_card,
            summary,
        })
    }

    async fn policy_event(
        &self,
        envelope: &Envelope,
        card: CardRef,
        created_card: bool,
        event: PolicyEvent,
    ) -> Result<Handled, PortError> {
        let (kind, text) = match event.kind {
            PolicyEventKind::Issued => {
                let c = event.contract.as_ref();
                (
                    "policy_issued",
                    format!(
                        "Poliçe kesildi: {} {} {}, {} – {}, brüt {}",
                        c.map(|c| c.insurance_company.as_str()).unwrap_or(""),
                        c.and_then(|c| c.branch.as_deref()).unwrap_or(""),
                        event.policy_number,
                        c.map(|c| c.start_date.format("%d.%m.%Y").to_string())
                            .unwrap_or_default(),
                        c.map(|c| c.end_date.format("%d.%m.%Y").to_string())
                            .unwrap_or_default(),
                        shown(&event.gross_premium)
                    ),
                )
            }
            PolicyEventKind::Endorsed => (
                "policy_endorsed",
                format!(
                    "Zeyilname {}: poliçe {}, brüt {}",
                    event.endorsement_number,
                    event.policy_number,
                    shown(&event.gross_premium)
                ),
            ),
            PolicyEventKind::Cancelled => (
                "policy_cancelled",
                format!(
                    "Poliçe iptal edildi: {} (zeyil {}), iade {}",
                    event.policy_number,
                    event.endorsement_number,
                    shown(&event.gross_premium)
                ),
            ),
        };
        let entry = TimelineEntry {
            entry_id: format!(
                "insurup:policy:{}:{}",
                event.policy_id, event.endorsement_number
            ),
            ..self.timeline(
                envelope,
                &card,
                kind,
                text.clone(),
                Some(event.policy_id.clone()),
                serde_json::json!({
                    "policy_id": event.policy_id,
                    "endorsement_number": event.endorsement_number,
                    "policy_number": event.policy_number,
                }),
            )
        };
        let outcome = self
            .policies
            .record_policy_event(&envelope.tenant_id, &PolicyWrite { event, entry })
            .await?;
        Ok(Handled {
            outcome,
            card,
            created_card,
            summary: text,
        })
    }

    async fn apply(&self, envelope: &Envelope, event: &InsurUpEvent) -> Result<Handled, PortError> {
        let tenant = &envelope.tenant_id;
        let trace = &envelope.trace_id;
        let now = self.log.clock().now();
        match event {
            InsurUpEvent::PolicyCreated(p) => {
                let customer = Customer {
                    insurup_id: Some(p.insured_customer_id.clone()),
                    identity: p.insured_identity_number.clone(),
                    email: p.insured_customer_email.clone(),
                    ..Customer::default()
                };
                let (card, created) = self.card_for(tenant, customer, trace, now).await?;
                let event = PolicyEvent {
                    policy_id: p.policy_id.clone(),
                    endorsement_number: 0,
                    kind: PolicyEventKind::Issued,
                    card_id: card.card_id.clone(),
                    policy_number: p.insurance_company_policy_no.clone(),
                    contract: Some(PolicyContract {
                        insurance_company: p.insurance_company.name.clone(),
                        insurance_company_id: p.insurance_company.id,
                        branch: p.product_branch.clone(),
                        start_date: p.start_date,
                        end_date: p.end_date,
                        renewal_number: p.renewal_number,
                        payment_type: p.payment_type.clone(),
                        proposal_id: p.proposal_id.clone(),
                        insurup_customer_id: p.insured_customer_id.clone(),
                    }),
                    net_premium: money(p.net_premium),
                    gross_premium: money(p.gross_premium),
                    installment_number: p.installment_number,
                    received_at: envelope.received_at,
                    trace_id: trace.to_string(),
                };
                self.policy_event(envelope, card, created, event).await
            }
            InsurUpEvent::PolicyUpdated(u) if u.endorsement_number < 1 => {
                Err(PortError::Rejected(format!(
                    "policy.updated for {} with endorsement number {}: endorsements count from 1 (0 is the issue)",
                    u.policy_id, u.endorsement_number
                )))
            }
            InsurUpEvent::PolicyUpdated(u) => {
                let (card, created) = match self.policies.policy(tenant, &u.policy_id).await? {
                    Some(policy) => (self.card_ref(tenant, &policy.card_id).await?, false),
                    None => {
                        // An endorsement before its policy: by identity number, else InsurUp.
                        let by_identity = Customer {
                            identity: u.insured_identity_number.clone(),
                            ..Customer::default()
                        };
                        let found = CardMatcher::new(self.crm.clone())
                            .find(tenant, &by_identity.keys())
                            .await?;
                        match found.best {
                            Some(best) => (best, false),
                            None => {
                                let customer_id = self
                                    .source
                                    .policy_customer(tenant, &u.policy_id, trace)
                                    .await?;
                                self.card_of_customer(tenant, &customer_id, trace, now)
                                    .await?
                            }
                        }
                    }
                };
                let event = PolicyEvent {
                    policy_id: u.policy_id.clone(),
                    endorsement_number: u.endorsement_number,
                    kind: if u.is_cancel {
                        PolicyEventKind::Cancelled
                    } else {
                        PolicyEventKind::Endorsed
                    },
                    card_id: card.card_id.clone(),
                    policy_number: u.insurance_company_policy_no.clone(),
                    contract: None,
                    net_premium: money(Some(u.net_premium)),
                    gross_premium: money(Some(u.gross_premium)),
                    installment_number: u.installment_number,
                    received_at: envelope.received_at,
                    trace_id: trace.to_string(),
                };
                self.policy_event(envelope, card, created, event).await
            }
            InsurUpEvent::PremiumReceived(r) => {
                let customer = Customer::from_model(&r.insured_customer);
                let (card, created) = self.card_for(tenant, customer, trace, now).await?;
                self.policies
                    .link(tenant, "proposal", &r.proposal_id, &card.card_id)
                    .await?;
                let lowest = r.premiums.iter().map(|p| p.gross_premium).min();
                let text = format!(
                    "Teklif alındı: {}, {} prim seçeneği, en düşük brüt {}",
                    r.product_branch.as_deref().unwrap_or("-"),
                    r.premiums.len(),
                    shown(&money(lowest))
                );
                let details =
                    serde_json::json!({ "proposal_id": r.proposal_id, "premiums": r.premiums });
                let entry = self.timeline(
                    envelope,
                    &card,
                    "proposal_premium_received",
                    text,
                    Some(r.proposal_id.clone()),
                    details,
                );
                self.note(envelope, card, created, entry, vec![]).await
            }
            InsurUpEvent::PremiumPurchased(p) => {
                let (card, created) = self
                    .card_of_proposal(tenant, &p.proposal_id, trace, now)
                    .await?;
                let text = format!(
                    "Teklif satın alındı: poliçe {}{}",
                    p.policy_id,
                    p.payment_type
                        .as_deref()
                        .map(|t| format!(", ödeme {t}"))
                        .unwrap_or_default()
                );
                let details = serde_json::to_value(p).unwrap_or_default();
                let entry = self.timeline(
                    envelope,
                    &card,
                    "proposal_purchased",
                    text,
                    Some(p.proposal_id.clone()),
                    details,
                );
                let handled = self.note(envelope, card, created, entry, vec![]).await?;
                // Also after a duplicate: the first delivery may have stopped before queueing.
                self.push_purchase(envelope, &handled.card, p).await?;
                Ok(handled)
            }
            InsurUpEvent::PremiumPurchaseFailed(f) => {
                let (card, created) = self
                    .card_of_proposal(tenant, &f.proposal_id, trace, now)
                    .await?;
                let text = format!(
                    "Satın alma başarısız: {}",
                    f.failure_reason.as_deref().unwrap_or("sebep bildirilmedi")
                );
                let details = serde_json::to_value(f).unwrap_or_default();
                let entry = self.timeline(
                    envelope,
                    &card,
                    "proposal_purchase_failed",
                    text,
                    Some(f.proposal_id.clone()),
                    details,
                );
                self.note(envelope, card, created, entry, vec![]).await
            }
            InsurUpEvent::CustomerCreated(c) | InsurUpEvent::CustomerUpdated(c) => {
                let (card, created) = self
                    .card_for(tenant, Customer::from_changed(c), trace, now)
                    .await?;
                let text = match event {
                    InsurUpEvent::CustomerCreated(_) => "InsurUp müşteri kaydı oluşturuldu",
                    _ => "InsurUp müşteri kaydı güncellendi",
                };
                let entry = self.timeline(
                    envelope,
                    &card,
                    "customer_changed",
                    text.into(),
                    Some(c.customer_id.clone()),
                    serde_json::json!({ "customer_id": c.customer_id }),
                );
                self.note(envelope, card, created, entry, vec![]).await
            }
            InsurUpEvent::KvkkConsentGiven(c)
            | InsurUpEvent::KvkkConsentRevoked(c)
            | InsurUpEvent::EtkConsentGiven(c)
            | InsurUpEvent::EtkConsentRevoked(c) => {
                let (card, created) = self
                    .card_of_customer(tenant, &c.customer_id, trace, now)
                    .await?;
                let given = matches!(
                    event,
                    InsurUpEvent::KvkkConsentGiven(_) | InsurUpEvent::EtkConsentGiven(_)
                );
                let etk = matches!(
                    event,
                    InsurUpEvent::EtkConsentGiven(_) | InsurUpEvent::EtkConsentRevoked(_)
                );
                let consents = if etk {
                    self.etk_records(tenant, &card, c, given).await?
                } else {
                    Vec::new()
                };
                let text = format!(
                    "{} {} ({})",
                    if etk {
                        "Ticari elektronik ileti (ETK) onayı"
                    } else {
                        "KVKK açık rıza onayı"
                    },
                    if given { "verildi" } else { "geri alındı" },
                    c.channel.as_deref().unwrap_or("kanal bildirilmedi")
                );
                let kind = if etk { "etk_consent" } else { "kvkk_consent" };
                let details = serde_json::json!({ "given": given, "at": c.at, "channel": c.channel, "records": consents.len() });
                let entry = self.timeline(
                    envelope,
                    &card,
                    kind,
                    text,
                    Some(c.customer_id.clone()),
                    details,
                );
                self.note(envelope, card, created, entry, consents).await
            }
            InsurUpEvent::VehicleCreated(t)
            | InsurUpEvent::VehicleUpdated(t)
            | InsurUpEvent::PropertyCreated(t)
            | InsurUpEvent::PropertyUpdated(t)
            | InsurUpEvent::CaseCreated(t)
            | InsurUpEvent::CaseStateChanged(t) => {
                let (card, created) = self
                    .card_of_customer(tenant, &t.customer_id, trace, now)
                    .await?;
                let field = |name: &str| {
                    t.details
                        .get(name)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                let text = match event {
                    InsurUpEvent::VehicleCreated(_) => format!(
                        "Araç eklendi: {} {} {}",
                        field("plate"),
                        field("brandName"),
                        field("modelName")
                    ),
                    InsurUpEvent::VehicleUpdated(_) => {
                        format!("Araç güncellendi: {}", field("plate"))
                    }
                    InsurUpEvent::PropertyCreated(_) => {
                        format!("Konut eklendi: {}", field("address"))
                    }
                    InsurUpEvent::PropertyUpdated(_) => {
                        format!("Konut güncellendi: {}", field("address"))
                    }
                    InsurUpEvent::CaseCreated(_) => {
                        format!("Vaka açıldı: {} {}", field("caseRef"), field("caseType"))
                    }
                    _ => format!(
                        "Vaka {}: {} / {}",
                        field("caseRef"),
                        field("newMainState"),
                        field("newSubState")
                    ),
                };
                let kind = event.name().replace('.', "_");
                let details = serde_json::Value::Object(t.details.clone());
                let entry = self.timeline(
                    envelope,
                    &card,
                    &kind,
                    text.trim().to_string(),
                    Some(t.customer_id.clone()),
                    details,
                );
                self.note(envelope, card, created, entry, vec![]).await
            }
        }
    }
}
