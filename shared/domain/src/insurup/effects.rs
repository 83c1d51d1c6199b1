//! What some InsurUp events cause beyond the card: İYS consent records for ETK consent, and a
//! Karel opportunity for a purchased policy.

use crate::consent::{ConsentChannel, ConsentRecord, ConsentSource, ConsentStatus, RecipientType};
use crate::envelope::Envelope;
use crate::error::PortError;
use crate::insurup::event::*;
use crate::party::{CardRef, PartyType};
use crate::tenant::TenantId;

use super::worker::InsurUpWorker;

impl InsurUpWorker {
    /// A purchased policy as a Karel opportunity, when the tenant uses Karel.
    pub(super) async fn push_purchase(
        &self,
        envelope: &Envelope,
        card: &CardRef,
        purchase: &PremiumPurchased,
    ) -> Result<(), PortError> {
        let Some(queue) = &self.karel else {
            return Ok(());
        };
        let tenant = &envelope.tenant_id;
        let uses_karel = self
            .tenants
            .tenant(tenant)
            .await?
            .is_some_and(|t| t.integrations.karel.is_some());
        if !uses_karel {
            return Ok(());
        }
        let owner = self
            .crm
            .card(tenant, &card.card_id)
            .await?
            .and_then(|c| c.owner);
        let change = crate::karel::opportunity::OpportunityChange {
            opportunity_id: format!("insurup:{}", purchase.proposal_id),
            // A purchase happens once: a redelivery (later received) must not look newer than
            // the CRM's own edits of the opportunity since, which carry their edit times.
            version: 1,
            trigger: crate::karel::opportunity::Trigger::PolicyPurchased,
            deleted: false,
            card_id: card.card_id.clone(),
            owner,
            description: format!("InsurUp poliçe satışı: {}", purchase.policy_id),
            price: None,
            stage: None,
            state: None,
            start_date: purchase.policy_start_date,
            estimated_end_date: purchase.policy_end_date,
            period: None,
            tags: vec!["insurup".into()],
            custom_fields: Default::default(),
        };
        queue
            .enqueue(&[crate::karel::envelope(
                tenant,
                &envelope.trace_id,
                envelope.received_at,
                &change,
            )])
            .await
    }

    pub(super) async fn etk_records(
        &self,
        tenant: &TenantId,
        card: &CardRef,
        consent: &ConsentChanged,
        given: bool,
    ) -> Result<Vec<ConsentRecord>, PortError> {
        let Some(card) = self.crm.card(tenant, &card.card_id).await? else {
            return Ok(Vec::new());
        };
        let source = match consent.channel.as_deref().unwrap_or("") {
            "WEB" | "CHATBOT" => ConsentSource::HsWeb,
            "SMS" => ConsentSource::HsMesaj,
            "EMAIL" => ConsentSource::HsEposta,
            "MANUAL" => ConsentSource::HsFizikselOrtam,
            _ => ConsentSource::HsEortam,
        };
        let recipient_type = match card.customer.as_ref().map(|c| c.party_type) {
            Some(PartyType::Company) => RecipientType::Tacir,
            _ => RecipientType::Bireysel,
        };
        let status = if given {
            ConsentStatus::Onay
        } else {
            ConsentStatus::Ret
        };
        let record = |recipient: String, channel| ConsentRecord {
            recipient,
            channel,
            source,
            status,
            consent_date: consent.at,
            recipient_type,
            evidence: Some(format!(
                "InsurUp customer.etk_consent_{}",
                if given { "given" } else { "revoked" }
            )),
        };
        let mut records = Vec::new();
        for phone in &card.phones {
            records.push(record(phone.as_str().to_string(), ConsentChannel::Mesaj));
            records.push(record(phone.as_str().to_string(), ConsentChannel::Arama));
        }
        for email in &card.emails {
            records.push(record(email.clone(), ConsentChannel::Eposta));
        }
        Ok(records)
    }
}
