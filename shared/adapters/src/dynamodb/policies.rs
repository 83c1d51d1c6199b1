//! Policies and InsurUp links in the CRM table.
//!
//! | item          | pk                                   | sk                      |
//! |---------------|--------------------------------------|-------------------------|
//! | policy event  | `T#<t>#POLICY#<policy id>`           | `EV#<endorsement, 6 digits>` (its own idempotency key) |
//! | card's policy | `T#<t>#CARD#<card>`                  | `POLICY#<policy id>`    |
//! | InsurUp link  | `T#<t>#INSURUP#<kind>#<id>`          | `LINK` (`card_id`)      |
//!
//! A policy reads as one query of its events, in endorsement order whatever order they came in.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::insurup::policy::{Policy, PolicyEvent, PolicyWrite};
use onecrm_domain::ports::{PolicyRepository, WriteOutcome};
use onecrm_domain::tenant::TenantId;

use super::tx::{Committed, Transaction};
use super::*;

fn policy_pk(t: &TenantId, policy_id: &str) -> String {
    format!("T#{t}#POLICY#{policy_id}")
}

fn link_pk(t: &TenantId, kind: &str, id: &str) -> String {
    format!("T#{t}#INSURUP#{kind}#{id}")
}

#[async_trait]
impl PolicyRepository for CrmStore {
    async fn record_policy_event(
        &self,
        tenant: &TenantId,
        write: &PolicyWrite,
    ) -> Result<WriteOutcome, PortError> {
        let event = &write.event;
        let event_item = item(
            event,
            "policy_event",
            &[
                ("pk", policy_pk(tenant, &event.policy_id)),
                ("sk", format!("EV#{:06}", event.endorsement_number.max(0))),
            ],
        )?;
        let mut tx = Transaction::idempotent_on(&self.table, "policy event", event_item)?;
        tx.put(
            "timeline entry",
            self.timeline_item(tenant, &write.entry)?,
            None,
        )?;
        let pointer = item(
            &serde_json::json!({ "policy_id": event.policy_id, "policy_number": event.policy_number }),
            "card_policy",
            &[
                ("pk", keys::card(tenant, &event.card_id)),
                ("sk", format!("POLICY#{}", event.policy_id)),
            ],
        )?;
        tx.put("card's policy", pointer, None)?;
        match tx.commit(&self.client).await? {
            Committed::Applied => Ok(WriteOutcome::Applied),
            Committed::Duplicate => Ok(WriteOutcome::Duplicate),
            Committed::ConditionFailed(what) => {
                Err(PortError::Rejected(format!("{what} failed its condition")))
            }
        }
    }

    async fn policy(
        &self,
        tenant: &TenantId,
        policy_id: &str,
    ) -> Result<Option<Policy>, PortError> {
        let events: Vec<PolicyEvent> = self
            .query_as(policy_pk(tenant, policy_id), "EV#", false, None)
            .await?;
        Ok(Policy::from_events(events))
    }

    async fn policies_of(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<String>, PortError> {
        let items = self
            .query_prefix(keys::card(tenant, card_id), "POLICY#", false, None)
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| i.get("policy_id").and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }

    async fn link(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        card_id: &str,
    ) -> Result<(), PortError> {
        let link = item(
            &serde_json::json!({ "card_id": card_id }),
            "insurup_link",
            &[("pk", link_pk(tenant, kind, id)), ("sk", "LINK".into())],
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(link))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn linked(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, PortError> {
        Ok(self
            .get(link_pk(tenant, kind, id), "LINK")
            .await?
            .and_then(|i| i.get("card_id").and_then(|v| v.as_s().ok()).cloned()))
    }
}
