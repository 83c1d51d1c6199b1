//! The CRM's consenting people into Express lists (seed 001, Member): a CRM segment flows into
//! one Express list, created on first use. A member is found by its address first and updated,
//! or created: a create whose answer was lost is found the next time, not made twice.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::member::{ExpressList, MemberLink};
use super::ports::{ExpressApi, ExpressError, ExpressStore, ExpressTarget, IysFields, MemberPush};
use crate::consent::{ConsentRecord, ConsentStatus};
use crate::error::{FieldError, PortError};
use crate::party::Card;
use crate::ports::CrmRepository;

/// A queued push: these cards into the segment's list (created with `list_name` if the
/// segment has none), or out of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushJob {
    pub tenant_id: crate::tenant::TenantId,
    pub trace_id: String,
    pub segment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_name: Option<String>,
    #[serde(default)]
    pub card_ids: Vec<String>,
    /// Take these cards' members out of the list.
    #[serde(default)]
    pub remove_card_ids: Vec<String>,
}

/// A queued change of a segment's list: renamed, or deleted (its members stay in the account,
/// as Express keeps them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListJob {
    pub tenant_id: crate::tenant::TenantId,
    pub trace_id: String,
    pub segment: String,
    pub change: ListChange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum ListChange {
    Rename { name: String },
    Delete,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub list: Option<ExpressList>,
    pub created: u64,
    pub updated: u64,
    pub removed: u64,
    /// Cards not pushed, each with the field and the reason.
    pub refused: Vec<FieldError>,
}

pub struct ExpressPush {
    pub api: Arc<dyn ExpressApi>,
    pub store: Arc<dyn ExpressStore>,
    pub crm: Arc<dyn CrmRepository>,
}

/// The member a card makes: its first address and name, with the İYS fields when the account
/// has Express as its İYS integrator. Refused without an e-mail or without e-mail consent.
pub fn member_of(
    card: &Card,
    list_id: &str,
    consents: &[ConsentRecord],
    iys_enabled: bool,
) -> Result<MemberPush, FieldError> {
    let field = |name: &str| format!("cards[{}].{name}", card.card_id);
    let Some(email) = card.emails.first() else {
        return Err(FieldError::new(
            field("emails"),
            "missing",
            "the card has no e-mail address; Express needs one",
        ));
    };
    let consent = consents
        .iter()
        .find(|c| &c.recipient == email)
        .filter(|c| c.status == ConsentStatus::Onay);
    let Some(consent) = consent else {
        let (code, message) = match iys_enabled {
            true => ("iys_fields_missing", "no e-mail consent (İYS ONAY) on the card: the account's İYS integration needs its consent date, source and merchant status"),
            false => ("no_consent", "no e-mail consent (ONAY) on the card: only consenting people go to Express"),
        };
        return Err(FieldError::new(field("consent.EPOSTA"), code, message));
    };
    let mut names = card.display_name.rsplitn(2, ' ');
    let last = names.next().map(str::to_string);
    let first = names.next().map(str::to_string);
    Ok(MemberPush {
        list_id: list_id.to_string(),
        email: email.clone(),
        first_name: first,
        last_name: last,
        iys: iys_enabled.then(|| IysFields {
            consent_date: consent.consent_date,
            source: serde_json::to_value(consent.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            merchant_status: consent.status,
            recipient_type: consent.recipient_type,
        }),
    })
}

impl ExpressPush {
    /// The segment's list, created with `name` on first use (two racing pushes: the first link
    /// wins and the loser's list is deleted again).
    pub async fn list_for(
        &self,
        target: ExpressTarget<'_>,
        segment: &str,
        name: Option<&str>,
    ) -> Result<ExpressList, ExpressError> {
        if let Some(list) = self.store.segment_list(target.tenant, segment).await? {
            return Ok(list);
        }
        let list = self
            .api
            .create_list(target, name.unwrap_or(segment))
            .await?;
        if self
            .store
            .link_segment(target.tenant, segment, &list)
            .await?
        {
            return Ok(list);
        }
        self.api.delete_list(target, &list.id).await?;
        self.store
            .segment_list(target.tenant, segment)
            .await?
            .ok_or_else(|| PortError::Unavailable("segment list vanished".into()).into())
    }

    /// Renames or deletes the segment's list; a segment without one is left as it is.
    pub async fn change_list(
        &self,
        target: ExpressTarget<'_>,
        job: &ListJob,
    ) -> Result<Option<ExpressList>, ExpressError> {
        let Some(mut list) = self.store.segment_list(target.tenant, &job.segment).await? else {
            return Ok(None);
        };
        match &job.change {
            ListChange::Rename { name } => {
                self.api.rename_list(target, &list.id, name).await?;
                list.name = name.clone();
                self.store
                    .relink_segment(target.tenant, &job.segment, &list)
                    .await?;
            }
            ListChange::Delete => {
                self.api.delete_list(target, &list.id).await?;
                self.store
                    .unlink_segment(target.tenant, &job.segment)
                    .await?;
            }
        }
        Ok(Some(list))
    }

    pub async fn push(
        &self,
        target: ExpressTarget<'_>,
        job: &PushJob,
    ) -> Result<PushReport, ExpressError> {
        let tenant = target.tenant;
        let list = self
            .list_for(target, &job.segment, job.list_name.as_deref())
            .await?;
        let mut report = PushReport::default();
        let now = chrono::Utc::now();
        for card_id in &job.card_ids {
            let Some(card) = self.crm.card(tenant, card_id).await? else {
                report.refused.push(FieldError::new(
                    format!("cards[{card_id}]"),
                    "not_found",
                    "no such card",
                ));
                continue;
            };
            let consents = self.store.email_consents(tenant, card_id).await?;
            let push = match member_of(&card, &list.id, &consents, target.settings.iys_enabled) {
                Ok(push) => push,
                Err(refused) => {
                    report.refused.push(refused);
                    continue;
                }
            };
            let member_id = match self.api.member_by_email(target, &push.email).await? {
                Some(member) => {
                    self.api
                        .update_member(target, &member.member_id, &push)
                        .await?;
                    report.updated += 1;
                    member.member_id
                }
                None => {
                    report.created += 1;
                    self.api.create_member(target, &push).await?
                }
            };
            let consent = consents
                .iter()
                .find(|c| c.recipient == push.email)
                .map(|c| super::member::ConsentState {
                    status: c.status,
                    date: c.consent_date,
                    source: c.source,
                })
                .unwrap_or(super::member::ConsentState {
                    status: ConsentStatus::Onay,
                    date: now,
                    source: crate::consent::ConsentSource::HsEntegrasyon,
                });
            let link = MemberLink {
                member_id,
                email: push.email.clone(),
                card_ids: vec![card_id.clone()],
                consent,
            };
            self.store.put_links(tenant, &[link]).await?;
        }
        for card_id in &job.remove_card_ids {
            let Some(card) = self.crm.card(tenant, card_id).await? else {
                continue;
            };
            for email in &card.emails {
                if let Some(member) = self.api.member_by_email(target, email).await? {
                    self.api
                        .delete_member(target, &member.member_id, &list.id)
                        .await?;
                    report.removed += 1;
                }
            }
        }
        report.list = Some(list);
        Ok(report)
    }
}
