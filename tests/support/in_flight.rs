//! A repository whose lead creation waits until two workers got there (concurrency tests).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onecrm_domain::error::PortError;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::party::{Card, CardRef, IdentityKey, LeadSource, Note};
use onecrm_domain::ports::*;
use onecrm_domain::task::Task;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::timeline::TimelineEntry;
use onecrm_domain::whatsapp::status::{MessageStatusUpdate, OutboundMessage};

/// A repository whose writes wait until both workers got there: both looked the sender up and
/// found nothing before either wrote, so a check-then-set would make two leads.
pub struct BothInFlight {
    pub inner: Arc<onecrm_adapters::dynamodb::CrmStore>,
    pub barrier: tokio::sync::Barrier,
}

#[async_trait]
impl CrmRepository for BothInFlight {
    async fn find_cards(&self, t: &TenantId, k: &IdentityKey) -> Result<Vec<CardRef>, PortError> {
        self.inner.find_cards(t, k).await
    }
    async fn flag_possible_duplicate(
        &self,
        t: &TenantId,
        a: &CardRef,
        b: &CardRef,
        why: &str,
    ) -> Result<(), PortError> {
        self.inner.flag_possible_duplicate(t, a, b, why).await
    }
    async fn possible_duplicates(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Vec<PossibleDuplicate>, PortError> {
        self.inner.possible_duplicates(t, id).await
    }
    async fn record_interaction(
        &self,
        t: &TenantId,
        w: &CardInteraction,
    ) -> Result<WriteOutcome, PortError> {
        self.inner.record_interaction(t, w).await
    }
    async fn create_lead(&self, t: &TenantId, w: &NewLead) -> Result<NewLeadOutcome, PortError> {
        self.barrier.wait().await;
        self.inner.create_lead(t, w).await
    }
    async fn create_card(&self, t: &TenantId, c: &Card) -> Result<NewLeadOutcome, PortError> {
        self.inner.create_card(t, c).await
    }
    async fn apply_message_status(
        &self,
        t: &TenantId,
        u: &MessageStatusUpdate,
    ) -> Result<StatusOutcome, PortError> {
        self.inner.apply_message_status(t, u).await
    }
    async fn card(&self, t: &TenantId, id: &str) -> Result<Option<Card>, PortError> {
        self.inner.card(t, id).await
    }
    async fn timeline(
        &self,
        t: &TenantId,
        id: &str,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, PortError> {
        self.inner.timeline(t, id, limit).await
    }
    async fn notes(&self, t: &TenantId, id: &str) -> Result<Vec<Note>, PortError> {
        self.inner.notes(t, id).await
    }
    async fn tasks(&self, t: &TenantId, id: &str) -> Result<Vec<Task>, PortError> {
        self.inner.tasks(t, id).await
    }
    async fn leads_by_source(
        &self,
        t: &TenantId,
        s: LeadSource,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        p: PageRequest,
    ) -> Result<Page<Card>, PortError> {
        self.inner.leads_by_source(t, s, from, to, p).await
    }
    async fn outbound_message(
        &self,
        t: &TenantId,
        w: &str,
    ) -> Result<Option<OutboundMessage>, PortError> {
        self.inner.outbound_message(t, w).await
    }
}
