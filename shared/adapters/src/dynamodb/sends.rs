//! Outbound WhatsApp sends (`T#<t>#WASEND#<send id>` / `WASEND`). Every change is a conditional
//! put on the state (and attempt) that was read, so two deliveries of one send never both
//! claim it, and only the claimer writes its outcome. A sent send's message record (which
//! Meta's statuses update) and the card's timeline entry go in the same transaction.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::time::to_sortable;
use onecrm_domain::whatsapp::outbound::SendStore;
use onecrm_domain::whatsapp::send::{SendRecord, SendState};

use super::tx::{Committed, Transaction};
use super::*;

const SK: &str = "WASEND";

impl CrmStore {
    fn send_item(&self, tenant: &TenantId, record: &SendRecord) -> Result<Item, PortError> {
        item(
            record,
            "wa_send",
            &[
                ("pk", keys::wa_send(tenant, &record.send_id)),
                ("sk", SK.into()),
            ],
        )
    }

    /// Puts `record` if the stored send is still as `seen` (absent, or its state and attempt).
    async fn put_send_if(
        &self,
        tenant: &TenantId,
        record: &SendRecord,
        seen: Option<&SendRecord>,
    ) -> Result<bool, PortError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.send_item(tenant, record)?));
        put = match seen {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(seen) => put
                .condition_expression("#state = :seen AND attempts = :attempts")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":seen", s(seen.state.as_str()))
                .expression_attribute_values(":attempts", n(seen.attempts)),
        };
        put_if(put).await
    }
}

#[async_trait]
impl SendStore for CrmStore {
    async fn create_send(
        &self,
        tenant: &TenantId,
        record: &SendRecord,
    ) -> Result<Option<SendRecord>, PortError> {
        if self.put_send_if(tenant, record, None).await? {
            return Ok(None);
        }
        self.send_record(tenant, &record.send_id).await
    }

    async fn send_record(
        &self,
        tenant: &TenantId,
        send_id: &str,
    ) -> Result<Option<SendRecord>, PortError> {
        self.get(keys::wa_send(tenant, send_id), SK)
            .await?
            .map(from_item)
            .transpose()
    }

    async fn claim_send(
        &self,
        tenant: &TenantId,
        record: &SendRecord,
    ) -> Result<Result<SendRecord, SendRecord>, PortError> {
        let current = self.send_record(tenant, &record.send_id).await?;
        let claimed = match &current {
            Some(c) if !matches!(c.state, SendState::Queued | SendState::Waiting) => {
                return Ok(Err(c.clone()))
            }
            // The route's request stays (who asked, when); the worker's reading of the card
            // (recipient, number) is the one sent.
            Some(c) => SendRecord {
                state: SendState::Sending,
                attempts: c.attempts + 1,
                requested_by: c.requested_by.clone(),
                requested_at: c.requested_at,
                ..record.clone()
            },
            None => SendRecord {
                state: SendState::Sending,
                attempts: 1,
                ..record.clone()
            },
        };
        if self.put_send_if(tenant, &claimed, current.as_ref()).await? {
            return Ok(Ok(claimed));
        }
        // Another delivery claimed it between our read and our write.
        match self.send_record(tenant, &record.send_id).await? {
            Some(now) => Ok(Err(now)),
            None => Err(PortError::Unavailable(format!(
                "send {} changed while it was claimed",
                record.send_id
            ))),
        }
    }

    async fn finish_send(&self, tenant: &TenantId, record: &SendRecord) -> Result<(), PortError> {
        let mut tx = Transaction::new(&self.table);
        tx.put_named(
            "send",
            self.send_item(tenant, record)?,
            Some("#state = :sending AND attempts = :attempts"),
            Some([("#state".to_string(), "state".to_string())].into()),
            Some(
                [
                    (":sending".to_string(), s(SendState::Sending.as_str())),
                    (":attempts".to_string(), n(record.attempts)),
                ]
                .into(),
            ),
        )?;
        if let (SendState::Sent, Some(wamid)) = (record.state, &record.wamid) {
            // Statuses may have come first: they keep their status; the send adds who it was.
            let at = s(to_sortable(&record.updated_at));
            let update = aws_sdk_dynamodb::types::Update::builder()
                .key("pk", s(keys::wa_message(tenant, wamid)))
                .key("sk", s("WAMSG"))
                .update_expression(
                    "SET entity = :entity, wamid = :wamid, card_id = :card, send_id = :send, \
                     #status = if_not_exists(#status, :accepted), \
                     status_at = if_not_exists(status_at, :at), \
                     recipient = if_not_exists(recipient, :to)",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":entity", s("wa_message"))
                .expression_attribute_values(":wamid", s(wamid.clone()))
                .expression_attribute_values(":card", s(record.card_id.clone()))
                .expression_attribute_values(":send", s(record.send_id.clone()))
                .expression_attribute_values(":accepted", s("accepted"))
                .expression_attribute_values(":at", at)
                .expression_attribute_values(":to", s(record.to.clone()));
            tx.update("message", update)?;
        }
        // A send that reached Meta is an interaction with the customer; one refused before
        // (no number connected, no such card) is only the send's own record.
        let reached_meta = !record.phone_number_id.is_empty();
        if matches!(record.state, SendState::Sent | SendState::Failed) && reached_meta {
            let entry = record.timeline_entry(record.requested_at);
            tx.put("timeline entry", self.timeline_item(tenant, &entry)?, None)?;
        }
        match tx.commit(&self.client).await? {
            Committed::Applied => Ok(()),
            _ => Err(PortError::Rejected(format!(
                "send {} is no longer this delivery's to finish",
                record.send_id
            ))),
        }
    }
}
