//! The `meta-lead-worker` use case: fetch each queued lead from Graph, map it, land it on a card.
//!
//! Graph's verdicts: a token Graph refuses (190) parks the event for replay and pauses calls for
//! that tenant for a while (one error record per tenant and pause, no retry storm); throttling
//! and 5xx were already retried with backoff by the partner client, then SQS retries later; a
//! lead Graph will not give us (100, permissions) fails for good (error record, then the DLQ).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::batch::ProcessError;
use crate::capture::landing::LeadLanding;
use crate::envelope::{Envelope, TraceId};
use crate::error::PortError;
use crate::ingress::{HeldEvent, Hold, Kept};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::meta_lead::lead::{map_lead, GraphLead};
use crate::meta_lead::webhook::LeadgenEvent;
use crate::ports::{CrmRepository, EventArchive, TenantDirectory};
use crate::tenant::TenantId;

pub const SCOPE: &str = "meta.leadgen";
/// After Graph refuses a tenant's token, its other leads are parked without calling Graph for
/// this long: one call per tenant and minute at most, and a renewed token (the secret cache
/// re-reads at most once a minute) is used as soon as it can be seen.
pub const TOKEN_PAUSE_SECONDS: i64 = 60;

/// Where leads come from: Graph (`GET /{version}/{leadgen_id}`) with the tenant's Page token.
#[async_trait]
pub trait LeadAdsSource: Send + Sync {
    /// `Unauthorized`: the token is invalid or expired; `Unavailable`: worth retrying later;
    /// `Rejected`: this lead cannot be read (deleted, no access).
    async fn lead(
        &self,
        tenant: &TenantId,
        leadgen_id: &str,
        trace: &TraceId,
    ) -> Result<GraphLead, PortError>;
}

pub struct MetaLeadWorker {
    source: Arc<dyn LeadAdsSource>,
    landing: LeadLanding,
    tenants: Arc<dyn TenantDirectory>,
    archive: Arc<dyn EventArchive>,
    log: IntegrationLog,
    retention_days: i64,
    /// Tenants whose token Graph refused, until when calls stay paused.
    paused: Mutex<HashMap<TenantId, DateTime<Utc>>>,
}

impl MetaLeadWorker {
    pub fn new(
        source: Arc<dyn LeadAdsSource>,
        repo: Arc<dyn CrmRepository>,
        tenants: Arc<dyn TenantDirectory>,
        archive: Arc<dyn EventArchive>,
        log: IntegrationLog,
        retention_days: i64,
    ) -> Self {
        Self {
            source,
            landing: LeadLanding::new(repo),
            tenants,
            archive,
            log,
            retention_days,
            paused: Mutex::new(HashMap::new()),
        }
    }

    /// Leads asking for a service also go to Karel CRM (tenants with Karel settings).
    pub fn with_karel(mut self, queue: Arc<dyn crate::ports::EventQueue>) -> Self {
        self.landing = self.landing.with_karel(queue);
        self
    }

    fn entry(&self, envelope: &Envelope, result: LogResult, attempt: u32) -> LogEntry {
        let entry = LogEntry::for_queued(
            envelope,
            Integration::MetaLeadAds,
            LogDirection::Inbound,
            "meta.leadgen.process",
            result,
            attempt,
        );
        match result {
            LogResult::Error | LogResult::Parked => entry.payload(envelope.payload.clone()),
            _ => entry,
        }
    }

    fn paused_until(&self, tenant: &TenantId, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        match paused.get(tenant) {
            Some(until) if *until > now => Some(*until),
            Some(_) => {
                paused.remove(tenant);
                None
            }
            None => None,
        }
    }

    /// Keeps the envelope whole for a replay once the token is fixed.
    async fn park(&self, envelope: &Envelope, reason: &str) -> Result<(), PortError> {
        let held = HeldEvent {
            hold: Hold::Parked(envelope.tenant_id.clone()),
            verified_by: Vec::new(),
            integration: Integration::MetaLeadAds,
            id: format!("leadgen-{}", envelope.external_id),
            trace_id: envelope.trace_id.clone(),
            received_at: envelope.received_at,
            path: format!("leadgen:{}", envelope.external_id),
            raw: envelope.to_json(),
            context: None,
            reason: reason.to_string(),
            expires_at: (envelope.received_at + Duration::days(self.retention_days)).timestamp(),
        };
        self.archive.keep(&[Kept::Held(held)]).await
    }

    /// Processes one envelope. `Ok`: done (landed, duplicate or parked, each logged); `Err`:
    /// back to the queue.
    pub async fn handle(&self, envelope: Envelope, attempt: u32) -> Result<(), ProcessError> {
        let event: LeadgenEvent =
            serde_json::from_value(envelope.payload.clone()).map_err(|e| {
                ProcessError::permanent("invalid_payload", format!("not a leadgen event: {e}"))
            })?;
        let tenant = self
            .tenants
            .tenant(&envelope.tenant_id)
            .await?
            .ok_or_else(|| {
                ProcessError::permanent(
                    "unknown_tenant",
                    format!("tenant {} does not exist", envelope.tenant_id),
                )
            })?;
        let now = self.log.clock().now();
        if let Some(until) = self.paused_until(&tenant.tenant_id, now) {
            let reason = format!(
                "Graph refused this tenant's Page token; calls paused until {until}; parked for replay"
            );
            self.park(&envelope, &reason).await?;
            self.log
                .write(
                    self.entry(&envelope, LogResult::Parked, attempt)
                        .external_message(reason),
                )
                .await;
            return Ok(());
        }
        let graph = match self
            .source
            .lead(&tenant.tenant_id, &event.leadgen_id, &envelope.trace_id)
            .await
        {
            Ok(lead) => lead,
            Err(PortError::Unauthorized(why)) => {
                self.paused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        tenant.tenant_id.clone(),
                        now + Duration::seconds(TOKEN_PAUSE_SECONDS),
                    );
                self.park(&envelope, &why).await?;
                self.log
                    .write(
                        self.entry(&envelope, LogResult::Error, attempt)
                            .error(
                                "graph_token_invalid",
                                format!(
                                    "{}. Put a new Page token (onecrm-admin set-meta-page-token), then replay the parked leads (onecrm-admin replay-parked).",
                                    why.trim_end_matches('.')
                                ),
                            ),
                    )
                    .await;
                return Ok(());
            }
            Err(PortError::Rejected(why)) => {
                return Err(ProcessError::permanent("lead_not_accessible", why))
            }
            Err(e) => return Err(e.into()),
        };
        let mapping = tenant
            .integrations
            .meta_lead_ads
            .as_ref()
            .map(|m| m.field_mapping.clone())
            .unwrap_or_default();
        let captured = map_lead(
            &graph,
            &mapping,
            event.created_time.unwrap_or(envelope.received_at),
        );
        let landed = self
            .landing
            .land(
                &tenant,
                &captured,
                SCOPE,
                &envelope.trace_id,
                self.log.ids().new_id(),
                now,
            )
            .await?;
        let entry = landed.log_entry(
            |result| self.entry(&envelope, result, attempt),
            "Meta lead",
            &campaign_note(&captured),
        );
        self.log.write(entry).await;
        Ok(())
    }
}

fn campaign_note(lead: &crate::capture::CapturedLead) -> String {
    match lead
        .campaign
        .as_ref()
        .and_then(|c| c.campaign_name.as_deref())
    {
        Some(name) => format!(" (campaign {name})"),
        None => String::new(),
    }
}
