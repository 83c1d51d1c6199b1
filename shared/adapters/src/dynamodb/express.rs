//! The Express poll's items in the CRM table:
//! | item            | pk                            | sk                         |
//! |-----------------|-------------------------------|----------------------------|
//! | member link     | `T#<t>#EXPRESS#MEMBER#<id>`   | `MEMBER`                   |
//! | campaign        | `T#<t>#EXPRESS#CAMPAIGNS`     | `CAMPAIGN#<id>`            |
//! | segment → list  | `T#<t>#EXPRESS#SEGMENTS`      | `SEGMENT#<segment>`        |
//! | run, reports    | see `runs.rs`                 |                            |
//! Consents and timeline entries are the cards' own items (`crm.rs`). Pages are written with
//! BatchWriteItem: every key comes from Express's ids, so a page written twice changes nothing.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use onecrm_domain::consent::ConsentRecord;
use onecrm_domain::error::PortError;
use onecrm_domain::express::campaign::Campaign;
use onecrm_domain::express::member::{ConsentWrite, ExpressList, MemberLink};
use onecrm_domain::express::ports::ExpressStore;
use onecrm_domain::express::run::PollRun;
use onecrm_domain::log::Integration;
use onecrm_domain::party::IdentityKey;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::timeline::TimelineEntry;

use super::batch;
use super::crm::consent_item;
use super::*;

const MEMBER_SK: &str = "MEMBER";
/// Addresses looked up at once (one query each).
const EMAIL_LOOKUPS: usize = 16;

fn link_item(tenant: &TenantId, link: &MemberLink) -> Result<Item, PortError> {
    item(
        link,
        "express_member",
        &[
            ("pk", keys::express_member(tenant, &link.member_id)),
            ("sk", MEMBER_SK.into()),
        ],
    )
}

fn campaign_item(tenant: &TenantId, campaign: &Campaign) -> Result<Item, PortError> {
    item(
        campaign,
        "express_campaign",
        &[
            ("pk", keys::express_campaigns(tenant)),
            ("sk", format!("CAMPAIGN#{}", campaign.campaign_id)),
        ],
    )
}

fn segment_item(tenant: &TenantId, segment: &str, list: &ExpressList) -> Result<Item, PortError> {
    item(
        list,
        "express_segment",
        &[
            ("pk", keys::express_segments(tenant)),
            ("sk", format!("SEGMENT#{segment}")),
        ],
    )
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

#[async_trait]
impl ExpressStore for CrmStore {
    async fn links(
        &self,
        tenant: &TenantId,
        member_ids: &[String],
    ) -> Result<HashMap<String, MemberLink>, PortError> {
        let wanted = member_ids
            .iter()
            .map(|id| batch::key(keys::express_member(tenant, id), MEMBER_SK))
            .collect();
        batch::get_all(&self.client, &self.table, wanted, false, None)
            .await?
            .into_iter()
            .map(|item| {
                let link: MemberLink = from_item(item)?;
                Ok((link.member_id.clone(), link))
            })
            .collect()
    }

    async fn put_links(&self, tenant: &TenantId, links: &[MemberLink]) -> Result<(), PortError> {
        let items = links
            .iter()
            .map(|l| link_item(tenant, l))
            .collect::<Result<_, _>>()?;
        batch::put_all(&self.client, &self.table, items).await
    }

    async fn cards_by_email(
        &self,
        tenant: &TenantId,
        emails: &[String],
    ) -> Result<HashMap<String, Vec<String>>, PortError> {
        stream::iter(emails.iter().cloned())
            .map(|email| async move {
                let cards = self
                    .identity_cards(tenant, &IdentityKey::Email(email.clone()))
                    .await?;
                Ok::<_, PortError>((email, cards.into_iter().map(|c| c.card_id).collect()))
            })
            .buffer_unordered(EMAIL_LOOKUPS)
            .try_filter(|(_, cards): &(String, Vec<String>)| std::future::ready(!cards.is_empty()))
            .try_collect()
            .await
    }

    async fn put_consents(
        &self,
        tenant: &TenantId,
        writes: &[ConsentWrite],
    ) -> Result<(), PortError> {
        let mut items = Vec::new();
        for write in writes {
            for (card, record) in &write.records {
                items.push(consent_item(tenant, card, record)?);
            }
            for entry in &write.entries {
                items.push(self.timeline_item(tenant, entry)?);
            }
        }
        // The cards first, the links after: a page cut between them is read as changed again
        // next time and writes the same items.
        batch::put_all(&self.client, &self.table, items).await?;
        let links: Vec<MemberLink> = writes.iter().map(|w| w.link.clone()).collect();
        self.put_links(tenant, &links).await
    }

    async fn email_consents(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<ConsentRecord>, PortError> {
        self.query_as(keys::card(tenant, card_id), "CONSENT#EPOSTA#", false, None)
            .await
    }

    async fn put_campaigns(
        &self,
        tenant: &TenantId,
        campaigns: &[Campaign],
    ) -> Result<(), PortError> {
        let items = campaigns
            .iter()
            .map(|c| campaign_item(tenant, c))
            .collect::<Result<_, _>>()?;
        batch::put_all(&self.client, &self.table, items).await
    }

    async fn campaigns(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, Campaign>, PortError> {
        let wanted = ids
            .iter()
            .map(|id| batch::key(keys::express_campaigns(tenant), &format!("CAMPAIGN#{id}")))
            .collect();
        batch::get_all(&self.client, &self.table, wanted, false, None)
            .await?
            .into_iter()
            .map(|item| {
                let campaign: Campaign = from_item(item)?;
                Ok((campaign.campaign_id.clone(), campaign))
            })
            .collect()
    }

    async fn put_new_entries(
        &self,
        tenant: &TenantId,
        entries: &[TimelineEntry],
    ) -> Result<u64, PortError> {
        let items = entries
            .iter()
            .map(|e| self.timeline_item(tenant, e))
            .collect::<Result<Vec<_>, _>>()?;
        let key_of = |item: &Item| Some((text(item, "pk")?, text(item, "sk")?));
        let wanted = items
            .iter()
            .filter_map(key_of)
            .map(|(pk, sk)| batch::key(pk, &sk))
            .collect();
        // A read is a quarter of a write: last night's entries are found, not written again.
        let stored: HashSet<(String, String)> =
            batch::get_all(&self.client, &self.table, wanted, false, Some("pk, sk"))
                .await?
                .iter()
                .filter_map(key_of)
                .collect();
        let new: Vec<Item> = items
            .into_iter()
            .filter(|item| key_of(item).is_some_and(|k| !stored.contains(&k)))
            .collect();
        let written = batch::unique_keys(new);
        let count = written.len() as u64;
        batch::put_all(&self.client, &self.table, written).await?;
        Ok(count)
    }

    async fn segment_list(
        &self,
        tenant: &TenantId,
        segment: &str,
    ) -> Result<Option<ExpressList>, PortError> {
        self.get(
            keys::express_segments(tenant),
            &format!("SEGMENT#{segment}"),
        )
        .await?
        .map(from_item)
        .transpose()
    }

    async fn link_segment(
        &self,
        tenant: &TenantId,
        segment: &str,
        list: &ExpressList,
    ) -> Result<bool, PortError> {
        let stored = segment_item(tenant, segment, list)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(stored))
            .condition_expression("attribute_not_exists(pk)");
        put_if(put).await
    }

    async fn relink_segment(
        &self,
        tenant: &TenantId,
        segment: &str,
        list: &ExpressList,
    ) -> Result<(), PortError> {
        let stored = segment_item(tenant, segment, list)?;
        self.put_item(stored).await
    }

    async fn unlink_segment(&self, tenant: &TenantId, segment: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::express_segments(tenant)))
            .key("sk", s(format!("SEGMENT#{segment}")))
            .send()
            .await
            .map_err(|e| port_error("DeleteItem", e))?;
        Ok(())
    }

    async fn save_report(&self, tenant: &TenantId, run: &PollRun) -> Result<(), PortError> {
        let finished = run.finished_at.unwrap_or_else(Utc::now);
        self.save_finished_run(tenant, Integration::Express, (&run.run_id, finished), run)
            .await
    }

    async fn reports(&self, tenant: &TenantId, limit: usize) -> Result<Vec<PollRun>, PortError> {
        self.finished_runs(tenant, Integration::Express, limit)
            .await
    }
}
