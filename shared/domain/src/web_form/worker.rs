//! The `web-form-worker` use case: a queued submission (already validated into a
//! [`CapturedLead`]) landed on its card, exactly once, by the same landing as Lead Ads.

use std::sync::Arc;

use crate::batch::ProcessError;
use crate::capture::landing::LeadLanding;
use crate::capture::CapturedLead;
use crate::envelope::Envelope;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::ports::{CrmRepository, TenantDirectory};
use crate::web_form::SCOPE;

pub struct WebFormWorker {
    landing: LeadLanding,
    tenants: Arc<dyn TenantDirectory>,
    log: IntegrationLog,
}

impl WebFormWorker {
    pub fn new(
        repo: Arc<dyn CrmRepository>,
        tenants: Arc<dyn TenantDirectory>,
        log: IntegrationLog,
    ) -> Self {
        Self {
            landing: LeadLanding::new(repo),
            tenants,
            log,
        }
    }

    /// Leads asking for a service also go to Karel CRM (tenants with Karel settings).
    pub fn with_karel(mut self, queue: Arc<dyn crate::ports::EventQueue>) -> Self {
        self.landing = self.landing.with_karel(queue);
        self
    }

    fn entry(&self, envelope: &Envelope, result: LogResult, attempt: u32) -> LogEntry {
        LogEntry::for_queued(
            envelope,
            Integration::WebForm,
            LogDirection::Inbound,
            "web_form.submission.process",
            result,
            attempt,
        )
    }

    pub async fn handle(&self, envelope: Envelope, attempt: u32) -> Result<(), ProcessError> {
        let lead: CapturedLead = serde_json::from_value(envelope.payload.clone()).map_err(|e| {
            ProcessError::permanent("invalid_payload", format!("not a form submission: {e}"))
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
        let landed = self
            .landing
            .land(
                &tenant,
                &lead,
                SCOPE,
                &envelope.trace_id,
                self.log.ids().new_id(),
                now,
            )
            .await?;
        let entry = landed.log_entry(
            |result| self.entry(&envelope, result, attempt),
            "web-form lead",
            "",
        );
        self.log.write(entry).await;
        Ok(())
    }
}
