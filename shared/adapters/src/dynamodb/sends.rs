//! Outbound WhatsApp sends (`T#<t>#WASEND#<send id>` / `WASEND`). Every change is a conditional
//! put on the state (and attempt) that was read, so two deliveries of one send never both
//! claim it, and only the claimer writes its outcome; then the card's timeline entry. The
//! message record that Meta's statuses update (`WAMSG#<wamid>`) is made by the first status.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::whatsapp::outbound::SendStore;
use onecrm_domain::whatsapp::send::{SendRecord, SendState};

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
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.send_item(tenant, record)?))
            .condition_expression("#state = :sending AND attempts = :attempts")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s(SendState::Sending.as_str()))
            .expression_attribute_values(":attempts", n(record.attempts));
        if !put_if(put).await? {
            return Err(PortError::Rejected(format!(
                "send {} is no longer this delivery's to finish",
                record.send_id
            )));
        }
        // After the outcome, not with it: a transaction would double every unit. Should this
        // write be lost, the next delivery of the message finds the send settled and writes
        // it again ([`SendStore::ensure_entry`]).
        self.ensure_entry(tenant, record).await
    }

    async fn ensure_entry(&self, tenant: &TenantId, record: &SendRecord) -> Result<(), PortError> {
        // A send that reached Meta is an interaction with the customer; one refused before
        // (no number connected, no such card) is only the send's own record.
        let reached_meta = !record.phone_number_id.is_empty();
        if !(matches!(record.state, SendState::Sent | SendState::Failed) && reached_meta) {
            return Ok(());
        }
        let entry = record.timeline_entry(record.requested_at);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.timeline_item(tenant, &entry)?))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }
}
