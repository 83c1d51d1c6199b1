//! Identity items: `T#<t>#ID#<key>` holds one `CARD#<card id>` item per card the key belongs
//! to (a collection: switchboards, families) and, when a new lead or an exclusive key (tax id,
//! partner id) took it, one `CLAIM` item written only if absent. Possible duplicates are
//! `DUP#<other card>` items on both cards' partitions.

use chrono::Utc;
use onecrm_domain::error::PortError;
use onecrm_domain::party::{CardRef, IdentityKey};
use onecrm_domain::ports::PossibleDuplicate;
use onecrm_domain::tenant::TenantId;

use super::tx::Transaction;
use super::*;

/// The label of a claim action: its failed condition means another card took the identity.
pub(super) const CLAIM: &str = "identity claim";

impl CrmStore {
    pub(super) fn add_identity(
        &self,
        tx: &mut Transaction,
        tenant: &TenantId,
        key: &IdentityKey,
        card: &CardRef,
        claim: bool,
    ) -> Result<(), PortError> {
        let pk = keys::identity(tenant, key);
        if claim {
            let claim_item = item(
                &serde_json::json!({ "card_id": card.card_id }),
                "identity_claim",
                &[("pk", pk.clone()), ("sk", "CLAIM".into())],
            )?;
            tx.put(CLAIM, claim_item, Some("attribute_not_exists(pk)"))?;
        }
        let member = item(
            card,
            "identity",
            &[("pk", pk), ("sk", format!("CARD#{}", card.card_id))],
        )?;
        tx.put("identity", member, None)?;
        Ok(())
    }

    pub(super) async fn identity_cards(
        &self,
        tenant: &TenantId,
        key: &IdentityKey,
    ) -> Result<Vec<CardRef>, PortError> {
        self.query_as(keys::identity(tenant, key), "CARD#", false, None)
            .await
    }

    /// Both directions in one transaction; repeating it rewrites the same two items.
    pub(super) async fn flag_duplicate(
        &self,
        tenant: &TenantId,
        card: &CardRef,
        other: &CardRef,
        reason: &str,
    ) -> Result<(), PortError> {
        let mut tx = Transaction::new(&self.table);
        for (on, about) in [(card, other), (other, card)] {
            let flag = PossibleDuplicate {
                card_id: on.card_id.clone(),
                other: about.clone(),
                reason: reason.to_string(),
                flagged_at: Utc::now(),
            };
            let flag_item = item(
                &flag,
                "possible_duplicate",
                &[
                    ("pk", keys::card(tenant, &on.card_id)),
                    ("sk", format!("DUP#{}", about.card_id)),
                ],
            )?;
            tx.put("possible duplicate", flag_item, None)?;
        }
        tx.commit(&self.client).await.map(|_| ())
    }
}
