//! What the Express poll and push need from Express and from the CRM's store.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::campaign::{Campaign, CampaignTotals, ReportRow};
use super::member::{ConsentWrite, ExpressList, Member, MemberLink};
use super::run::PollRun;
use crate::consent::{ConsentRecord, ConsentStatus, RecipientType};
use crate::envelope::TraceId;
use crate::error::{FieldError, PortError};
use crate::tenant::{ExpressSettings, TenantId};
use crate::timeline::TimelineEntry;

/// Whose Express account, and the trace the calls are logged under.
#[derive(Clone, Copy)]
pub struct ExpressTarget<'a> {
    pub tenant: &'a TenantId,
    pub settings: &'a ExpressSettings,
    pub trace: &'a TraceId,
}

/// Express's answers, with the one refusal that needs a person rather than a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressError {
    /// The account has no active sending package (the welcome package used up, none bought):
    /// Express takes no member flow until the customer buys one (seed 001).
    #[error("no active sending package: {0}")]
    NoActivePackage(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl From<ExpressError> for PortError {
    fn from(e: ExpressError) -> Self {
        match e {
            ExpressError::NoActivePackage(m) => PortError::Rejected(m),
            ExpressError::Port(p) => p,
        }
    }
}

pub type ExpressResult<T> = Result<T, ExpressError>;

/// One page of an Express list, with each record read on its own: a record that does not read
/// is skipped and named, its neighbours go on.
#[derive(Debug, Clone)]
pub struct ExpressPage<T> {
    pub records: Vec<Result<T, Vec<FieldError>>>,
    /// Whether Express has records past this page.
    pub more: bool,
}

/// İYS fields Express requires of a member when the account has Express as its İYS integrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IysFields {
    /// Individual consent date.
    pub consent_date: DateTime<Utc>,
    /// Individual consent source (`HS_WEB`...).
    pub source: String,
    /// Merchant consent status (ONAY / RET) and the recipient type it goes with.
    pub merchant_status: ConsentStatus,
    pub recipient_type: RecipientType,
}

/// A CRM person as pushed into an Express list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPush {
    pub list_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub iys: Option<IysFields>,
}

/// Express's CRM/ERP gateway for one tenant's account at a time. Pages start at 1.
#[async_trait]
pub trait ExpressApi: Send + Sync {
    async fn lists(
        &self,
        target: ExpressTarget<'_>,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<ExpressList>>;
    async fn create_list(
        &self,
        target: ExpressTarget<'_>,
        name: &str,
    ) -> ExpressResult<ExpressList>;
    async fn rename_list(
        &self,
        target: ExpressTarget<'_>,
        id: &str,
        name: &str,
    ) -> ExpressResult<()>;
    /// The list goes; its members stay in the account.
    async fn delete_list(&self, target: ExpressTarget<'_>, id: &str) -> ExpressResult<()>;
    async fn members(
        &self,
        target: ExpressTarget<'_>,
        list_id: &str,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<Member>>;
    async fn member_by_email(
        &self,
        target: ExpressTarget<'_>,
        email: &str,
    ) -> ExpressResult<Option<Member>>;
    /// Adds a member to a list; Express's member id back.
    async fn create_member(
        &self,
        target: ExpressTarget<'_>,
        push: &MemberPush,
    ) -> ExpressResult<String>;
    async fn update_member(
        &self,
        target: ExpressTarget<'_>,
        member_id: &str,
        push: &MemberPush,
    ) -> ExpressResult<()>;
    async fn delete_member(
        &self,
        target: ExpressTarget<'_>,
        member_id: &str,
        list_id: &str,
    ) -> ExpressResult<()>;
    async fn campaigns(
        &self,
        target: ExpressTarget<'_>,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<Campaign>>;
    async fn campaign_totals(
        &self,
        target: ExpressTarget<'_>,
        campaign_id: &str,
    ) -> ExpressResult<CampaignTotals>;
    async fn report_rows(
        &self,
        target: ExpressTarget<'_>,
        campaign_id: &str,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<ReportRow>>;
}

/// The Express side of the CRM store. Writes are batched and idempotent by their keys.
#[async_trait]
pub trait ExpressStore: Send + Sync {
    /// What the CRM last learnt of these members, by member id (unknown ones left out).
    async fn links(
        &self,
        tenant: &TenantId,
        member_ids: &[String],
    ) -> Result<HashMap<String, MemberLink>, PortError>;
    async fn put_links(&self, tenant: &TenantId, links: &[MemberLink]) -> Result<(), PortError>;
    /// The cards carrying each address (folded e-mails), by address.
    async fn cards_by_email(
        &self,
        tenant: &TenantId,
        emails: &[String],
    ) -> Result<HashMap<String, Vec<String>>, PortError>;
    /// The consent records, the entries and then the links.
    async fn put_consents(
        &self,
        tenant: &TenantId,
        writes: &[ConsentWrite],
    ) -> Result<(), PortError>;
    /// A card's e-mail consents (the push's check).
    async fn email_consents(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<ConsentRecord>, PortError>;
    async fn put_campaigns(
        &self,
        tenant: &TenantId,
        campaigns: &[Campaign],
    ) -> Result<(), PortError>;
    async fn campaigns(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, Campaign>, PortError>;
    /// Writes the entries not stored yet (their keys are their identity); how many were new.
    async fn put_new_entries(
        &self,
        tenant: &TenantId,
        entries: &[TimelineEntry],
    ) -> Result<u64, PortError>;
    /// The Express list a CRM segment flows into.
    async fn segment_list(
        &self,
        tenant: &TenantId,
        segment: &str,
    ) -> Result<Option<ExpressList>, PortError>;
    /// Links the segment to the list unless it has one already (`false`: it had).
    async fn link_segment(
        &self,
        tenant: &TenantId,
        segment: &str,
        list: &ExpressList,
    ) -> Result<bool, PortError>;
    /// The segment's list as it is now (renamed), in place of the stored one.
    async fn relink_segment(
        &self,
        tenant: &TenantId,
        segment: &str,
        list: &ExpressList,
    ) -> Result<(), PortError>;
    async fn unlink_segment(&self, tenant: &TenantId, segment: &str) -> Result<(), PortError>;
    /// Keeps a finished run (newest first when listed).
    async fn save_report(&self, tenant: &TenantId, run: &PollRun) -> Result<(), PortError>;
    async fn reports(&self, tenant: &TenantId, limit: usize) -> Result<Vec<PollRun>, PortError>;
}
