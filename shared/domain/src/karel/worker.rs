//! The Karel push: each queued opportunity change made true in Karel CRM (seed 003).
//!
//! The first change of an opportunity creates it in Karel (`POST`), later ones update it (`PUT`,
//! sending back the `CustomFieldValueId`s Karel gave, so values are updated, not added), a
//! removal deletes it. The Karel id is kept on the CRM side with the version applied, so an
//! older change arriving late changes nothing.
//!
//! A create is claimed before it is sent (a conditional write), so a redelivered or concurrent
//! message never posts twice. Karel has no idempotency key: a create that got no clear answer
//! (a timeout, a 5xx) may exist in Karel, so it is parked with its `onecrm:<id>` tag for an
//! operator instead of being sent again. Karel's "data locked" 400 is final (an error record,
//! no retry); a refused token parks the change until the token is renewed.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::batch::ProcessError;
use crate::envelope::{Envelope, TraceId};
use crate::error::PortError;
use crate::ingress::{HeldEvent, Hold, Kept};
use crate::karel::opportunity::{crm_tag, karel_body, value_ids_by_field, OpportunityChange};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::ports::{CrmRepository, EventArchive, TenantDirectory};
use crate::tenant::{KarelSettings, TenantId};

/// Karel's name for the card's external id (`RefCustomerCardId`).
pub const EXTERNAL_SYSTEM: &str = "karel";
/// How long one change holds its opportunity (a lease, or a create's claim before it counts as
/// unanswered): longer than the worker's 30 s timeout.
pub const LEASE_SECONDS: i64 = 60;

/// How Karel answered when it did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KarelFailure {
    /// 400 "data locked" (veri kilitli): final; someone in Karel has to unlock it.
    DataLocked(String),
    /// Any other failure, as the partner client classified it (retryable or not).
    Port(PortError),
}

impl From<PortError> for KarelFailure {
    fn from(error: PortError) -> Self {
        KarelFailure::Port(error)
    }
}

/// Karel's `PpOpportunities` API with the tenant's bearer token.
#[async_trait]
pub trait KarelApi: Send + Sync {
    /// The new opportunity's id.
    async fn create(
        &self,
        tenant: &TenantId,
        body: &serde_json::Value,
        trace: &TraceId,
    ) -> Result<i64, KarelFailure>;
    /// The `(CustomFieldValueId, CustomFieldFieldLabel)` pairs Karel lists for it.
    async fn custom_field_values(
        &self,
        tenant: &TenantId,
        id: i64,
        trace: &TraceId,
    ) -> Result<Vec<(i64, String)>, KarelFailure>;
    async fn update(
        &self,
        tenant: &TenantId,
        id: i64,
        body: &serde_json::Value,
        trace: &TraceId,
    ) -> Result<(), KarelFailure>;
    async fn delete(
        &self,
        tenant: &TenantId,
        id: i64,
        delete_collection: bool,
        trace: &TraceId,
    ) -> Result<(), KarelFailure>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// A create was sent and has no answer yet (or never got one).
    Creating,
    Active,
    Deleted,
}

/// The CRM opportunity's counterpart in Karel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KarelLink {
    pub opportunity_id: String,
    pub state: LinkState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub karel_id: Option<i64>,
    /// The CRM version last applied in Karel.
    pub version: i64,
    /// Custom field id → Karel's value id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_ids: BTreeMap<i64, i64>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait KarelLinks: Send + Sync {
    async fn link(
        &self,
        tenant: &TenantId,
        opportunity_id: &str,
    ) -> Result<Option<KarelLink>, PortError>;
    /// Writes `link` in state Creating only if the opportunity has no link: `false` when
    /// another delivery claimed it first.
    async fn claim(&self, tenant: &TenantId, link: &KarelLink) -> Result<bool, PortError>;
    /// Stores `link` if the stored version is older (or the stored link is the claim).
    async fn save(&self, tenant: &TenantId, link: &KarelLink) -> Result<bool, PortError>;
    /// Drops a claim whose create certainly did not happen.
    async fn release(&self, tenant: &TenantId, opportunity_id: &str) -> Result<(), PortError>;
    /// Holds an existing link until `until` for one change: `false` while another holds it.
    async fn lease(
        &self,
        tenant: &TenantId,
        opportunity_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError>;
    /// Ends a lease without a new version (the change failed or waits).
    async fn unlease(&self, tenant: &TenantId, opportunity_id: &str) -> Result<(), PortError>;
}

pub struct KarelWorker {
    pub crm: Arc<dyn CrmRepository>,
    pub tenants: Arc<dyn TenantDirectory>,
    pub links: Arc<dyn KarelLinks>,
    pub api: Arc<dyn KarelApi>,
    pub archive: Arc<dyn EventArchive>,
    pub log: IntegrationLog,
    pub retention_days: i64,
}

/// How one change ended, for its log record.
enum Done {
    Created(i64),
    Updated(i64),
    Deleted(i64),
    /// Nothing to do (stale, already deleted, never reached Karel).
    Ignored(String),
    /// Kept for an operator, with the error code and what to do.
    Parked(&'static str, String),
    /// Refused for good (data locked), not retried.
    Refused(&'static str, String),
}

impl KarelWorker {
    fn entry(&self, envelope: &Envelope, result: LogResult, attempt: u32) -> LogEntry {
        LogEntry::for_queued(
            envelope,
            Integration::Karel,
            LogDirection::Outbound,
            "karel.opportunity.push",
            result,
            attempt,
        )
    }

    pub async fn handle(&self, envelope: Envelope, attempt: u32) -> Result<(), ProcessError> {
        let change: OpportunityChange =
            serde_json::from_value(envelope.payload.clone()).map_err(|e| {
                ProcessError::permanent(
                    "invalid_payload",
                    format!("not an opportunity change: {e}"),
                )
            })?;
        let done = match self.push(&envelope, &change).await {
            Ok(done) => done,
            Err(error) => return Err(ProcessError::from(error)),
        };
        let entry = self.entry(&envelope, LogResult::Success, attempt);
        let entry = match done {
            Done::Created(id) => entry.external_message(format!(
                "created Karel opportunity {id} for {}",
                change.opportunity_id
            )),
            Done::Updated(id) => entry.external_message(format!(
                "updated Karel opportunity {id} to version {}",
                change.version
            )),
            Done::Deleted(id) => entry.external_message(format!("deleted Karel opportunity {id}")),
            Done::Ignored(why) => {
                let mut e = self.entry(&envelope, LogResult::Ignored, attempt);
                e = e.external_message(why);
                e
            }
            Done::Parked(code, why) => {
                self.park(&envelope, &why).await?;
                self.entry(&envelope, LogResult::Parked, attempt)
                    .error(code, why)
                    .payload(envelope.payload.clone())
            }
            Done::Refused(code, why) => self
                .entry(&envelope, LogResult::Error, attempt)
                .error(code, why)
                .payload(envelope.payload.clone()),
        };
        self.log.write(entry).await;
        Ok(())
    }

    async fn park(&self, envelope: &Envelope, reason: &str) -> Result<(), PortError> {
        let held = HeldEvent {
            hold: Hold::Parked(envelope.tenant_id.clone()),
            verified_by: Vec::new(),
            integration: Integration::Karel,
            id: format!("karel-{}", envelope.external_id),
            trace_id: envelope.trace_id.clone(),
            received_at: envelope.received_at,
            path: format!("opportunity:{}", envelope.external_id),
            raw: envelope.to_json(),
            context: None,
            reason: reason.to_string(),
            expires_at: (envelope.received_at + Duration::days(self.retention_days)).timestamp(),
        };
        self.archive.keep(&[Kept::Held(held)]).await
    }

    async fn settings(&self, tenant: &TenantId) -> Result<Option<KarelSettings>, PortError> {
        Ok(self
            .tenants
            .tenant(tenant)
            .await?
            .and_then(|t| t.integrations.karel))
    }

    async fn push(
        &self,
        envelope: &Envelope,
        change: &OpportunityChange,
    ) -> Result<Done, PortError> {
        let tenant = &envelope.tenant_id;
        let opportunity = &change.opportunity_id;
        let Some(settings) = self.settings(tenant).await? else {
            return Ok(Done::Parked(
                "karel_not_configured",
                format!("tenant {tenant} has no Karel settings; configure them, then replay"),
            ));
        };
        let now = self.log.clock().now();
        let link = self.links.link(tenant, opportunity).await?;
        if let Some(done) = self.settled(link.as_ref(), change, now)? {
            return Ok(done);
        }
        match link {
            Some(link) if link.state == LinkState::Active && link.karel_id.is_some() => {
                // One change of an opportunity at a time: SQS may hand two to two instances,
                // and the older must not reach Karel last.
                if !self
                    .links
                    .lease(tenant, opportunity, now + Duration::seconds(LEASE_SECONDS))
                    .await?
                {
                    return Err(PortError::Unavailable(format!(
                        "another change of {opportunity} is being applied in Karel; this one follows it"
                    )));
                }
                let current = self.links.link(tenant, opportunity).await?;
                let result = match self.settled(current.as_ref(), change, now) {
                    Ok(Some(done)) => Ok(done),
                    Ok(None) => match current {
                        Some(current) => self.apply(envelope, change, &settings, current).await,
                        None => Err(PortError::Unavailable(format!(
                            "{opportunity}'s link vanished"
                        ))),
                    },
                    Err(e) => Err(e),
                };
                // A successful change saved the link, which ends the lease; anything else ends it.
                if !matches!(result, Ok(Done::Updated(_) | Done::Deleted(_))) {
                    self.links.unlease(tenant, opportunity).await?;
                }
                result
            }
            Some(_) => Ok(Done::Ignored(
                "deleted in Karel; a removed opportunity is not created again".into(),
            )),
            None if change.deleted => {
                // Remembered, so an older change arriving later does not create it.
                let tombstone = KarelLink {
                    opportunity_id: opportunity.clone(),
                    state: LinkState::Deleted,
                    karel_id: None,
                    version: change.version,
                    value_ids: BTreeMap::new(),
                    updated_at: now,
                };
                if self.links.claim(tenant, &tombstone).await? {
                    Ok(Done::Ignored("removed before it reached Karel".into()))
                } else {
                    Err(PortError::Unavailable(format!(
                        "{opportunity} is being created in Karel; its removal follows"
                    )))
                }
            }
            None => self.create(envelope, change, &settings, now).await,
        }
    }

    /// What a change needs no call for: a create in flight (retry shortly) or without an
    /// answer (parked), a version already applied.
    fn settled(
        &self,
        link: Option<&KarelLink>,
        change: &OpportunityChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Done>, PortError> {
        let Some(link) = link else {
            return Ok(None);
        };
        if link.state == LinkState::Creating {
            if now - link.updated_at < Duration::seconds(LEASE_SECONDS) {
                return Err(PortError::Unavailable(format!(
                    "{} is being created in Karel; this change follows it",
                    change.opportunity_id
                )));
            }
            return Ok(Some(Done::Parked(
                "karel_outcome_unknown",
                format!(
                    "a create of {} got no clear answer from Karel, so it may exist there: find it by the tag {} and set its id (onecrm-admin set-karel-link), or release the claim, then replay",
                    change.opportunity_id,
                    crm_tag(&change.opportunity_id)
                ),
            )));
        }
        if link.version >= change.version {
            return Ok(Some(Done::Ignored(format!(
                "version {} is not newer than the {} applied in Karel",
                change.version, link.version
            ))));
        }
        Ok(None)
    }

    /// The customer's and the representative's Karel card ids, or why the change waits.
    async fn parties(
        &self,
        tenant: &TenantId,
        change: &OpportunityChange,
        settings: &KarelSettings,
    ) -> Result<Result<(i64, i64), Done>, PortError> {
        let card = self.crm.card(tenant, &change.card_id).await?;
        let Some(customer) = card
            .as_ref()
            .and_then(|c| c.external_ids.get(EXTERNAL_SYSTEM))
            .and_then(|id| id.parse::<i64>().ok())
            .or_else(|| settings.customers.get(&change.card_id).copied())
        else {
            return Ok(Err(Done::Parked(
                "karel_customer_unmapped",
                format!("card {} has no Karel customer card id (external id \"karel\" or onecrm-admin map-karel --card); set it, then replay", change.card_id),
            )));
        };
        let representative = change
            .owner
            .as_ref()
            .and_then(|o| settings.representatives.get(o).copied())
            .or(settings.default_representative);
        let Some(representative) = representative else {
            return Ok(Err(Done::Parked(
                "karel_representative_unmapped",
                format!("owner {:?} has no Karel representative and the tenant has no default; map it, then replay", change.owner),
            )));
        };
        Ok(Ok((customer, representative)))
    }

    /// An update or a delete of an opportunity Karel has, under the lease.
    async fn apply(
        &self,
        envelope: &Envelope,
        change: &OpportunityChange,
        settings: &KarelSettings,
        link: KarelLink,
    ) -> Result<Done, PortError> {
        let tenant = &envelope.tenant_id;
        let trace = &envelope.trace_id;
        let id = link.karel_id.unwrap_or_default();
        if change.deleted {
            return match self
                .api
                .delete(tenant, id, settings.delete_collections, trace)
                .await
            {
                Ok(()) => {
                    let deleted = KarelLink {
                        state: LinkState::Deleted,
                        version: change.version,
                        updated_at: self.log.clock().now(),
                        ..link
                    };
                    self.links.save(tenant, &deleted).await?;
                    Ok(Done::Deleted(id))
                }
                Err(failure) => self.failed(failure, "delete"),
            };
        }
        let (customer, representative) = match self.parties(tenant, change, settings).await? {
            Ok(parties) => parties,
            Err(done) => return Ok(done),
        };
        // A mapped field without Karel's value id yet (the read after the create failed): ask
        // first, or the update would add a second value.
        let mut value_ids = link.value_ids.clone();
        let missing = change.custom_fields.keys().any(|name| {
            settings
                .custom_fields
                .get(name)
                .is_some_and(|f| !value_ids.contains_key(&f.id))
        });
        if missing {
            if let Ok(listed) = self.api.custom_field_values(tenant, id, trace).await {
                value_ids.extend(value_ids_by_field(settings, &listed));
            }
        }
        let body = match karel_body(change, customer, representative, settings, &value_ids) {
            Ok(body) => body,
            Err(why) => return Ok(Done::Parked("karel_mapping", why)),
        };
        match self.api.update(tenant, id, &body, trace).await {
            Ok(()) => {
                if let Ok(listed) = self.api.custom_field_values(tenant, id, trace).await {
                    value_ids.extend(value_ids_by_field(settings, &listed));
                }
                let saved = KarelLink {
                    version: change.version,
                    value_ids,
                    updated_at: self.log.clock().now(),
                    ..link
                };
                self.links.save(tenant, &saved).await?;
                Ok(Done::Updated(id))
            }
            Err(failure) => self.failed(failure, "update"),
        }
    }

    async fn create(
        &self,
        envelope: &Envelope,
        change: &OpportunityChange,
        settings: &KarelSettings,
        now: DateTime<Utc>,
    ) -> Result<Done, PortError> {
        let tenant = &envelope.tenant_id;
        let trace = &envelope.trace_id;
        let (customer, representative) = match self.parties(tenant, change, settings).await? {
            Ok(parties) => parties,
            Err(done) => return Ok(done),
        };
        let body = match karel_body(change, customer, representative, settings, &BTreeMap::new()) {
            Ok(body) => body,
            Err(why) => return Ok(Done::Parked("karel_mapping", why)),
        };
        let claim = KarelLink {
            opportunity_id: change.opportunity_id.clone(),
            state: LinkState::Creating,
            karel_id: None,
            version: change.version,
            value_ids: BTreeMap::new(),
            updated_at: now,
        };
        if !self.links.claim(tenant, &claim).await? {
            return Err(PortError::Unavailable(format!(
                "another delivery is creating {} in Karel; this change follows it",
                change.opportunity_id
            )));
        }
        match self.api.create(tenant, &body, trace).await {
            Ok(id) => {
                let value_ids = match self.api.custom_field_values(tenant, id, trace).await {
                    Ok(listed) => value_ids_by_field(settings, &listed),
                    Err(_) => BTreeMap::new(),
                };
                let created = KarelLink {
                    state: LinkState::Active,
                    karel_id: Some(id),
                    value_ids,
                    updated_at: self.log.clock().now(),
                    ..claim
                };
                self.links.save(tenant, &created).await?;
                Ok(Done::Created(id))
            }
            // No clear answer: it may exist in Karel. The claim stays, so nothing posts it
            // again; an operator looks first.
            Err(KarelFailure::Port(PortError::OutcomeUnknown(why))) => Ok(Done::Parked(
                "karel_outcome_unknown",
                format!(
                    "{why}: Karel may have created {} (tag {}); find it and set its id (onecrm-admin set-karel-link), or release the claim, then replay",
                    change.opportunity_id,
                    crm_tag(&change.opportunity_id)
                ),
            )),
            Err(failure) => {
                // Certainly not created: the next delivery may try again.
                self.links.release(tenant, &change.opportunity_id).await?;
                self.failed(failure, "create")
            }
        }
    }

    /// Data locked: final. A refused token: parked until it is renewed. The rest as classified
    /// (retryable ones go back to the queue).
    fn failed(&self, failure: KarelFailure, what: &str) -> Result<Done, PortError> {
        match failure {
            KarelFailure::DataLocked(why) => Ok(Done::Refused(
                "karel_data_locked",
                format!("Karel refused the {what}: the opportunity's data is locked ({why}); not retried"),
            )),
            KarelFailure::Port(PortError::Unauthorized(why)) => Ok(Done::Parked(
                "karel_token_invalid",
                format!("Karel refused the tenant's token ({why}): put a new one (onecrm-admin set-karel-token), then replay"),
            )),
            KarelFailure::Port(PortError::Rejected(why)) => Ok(Done::Refused(
                "karel_rejected",
                format!("Karel rejected the {what}: {why}"),
            )),
            KarelFailure::Port(other) => Err(other),
        }
    }
}
