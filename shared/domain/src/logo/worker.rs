//! The queue side of the sync: the nightly fan-out (one job per connected tenant) and the job
//! consumer, which continues a run cut short by the invocation's time limit in a fresh
//! invocation (a continuation message) instead of letting Lambda kill it.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::job::{JobOutcome, LogoJob, LogoSync};
use crate::batch::ProcessError;
use crate::envelope::Envelope;
use crate::error::PortError;
use crate::log::{Integration, LogDirection, LogEntry, LogResult};
use crate::nightly;
use crate::ports::EventQueue;
use crate::tenant::TenantId;

pub const SYNC_KIND: &str = "logo.sync";
pub const REFRESH_KIND: &str = "logo.refresh";

/// The queued form of a job.
pub fn envelope(job: &LogoJob, at: DateTime<Utc>) -> Envelope {
    let (kind, external_id) = match &job.refresh_card {
        Some(card) => (REFRESH_KIND, card.clone()),
        None => (SYNC_KIND, format!("{}#{}", job.tenant_id, job.trace_id)),
    };
    let payload = serde_json::to_value(job).unwrap_or_default();
    nightly::job_envelope(
        Integration::Logo,
        kind,
        &job.tenant_id,
        external_id,
        &job.trace_id,
        payload,
        at,
    )
}

pub struct LogoWorker {
    pub sync: LogoSync,
    /// The jobs queue: fan-out and continuations.
    pub queue: Arc<dyn EventQueue>,
}

impl LogoWorker {
    /// One job per tenant with a Logo connection. Returns how many were queued.
    pub async fn fan_out(&self, tenants: &[TenantId], full: bool) -> Result<usize, PortError> {
        let now = self.sync.log.clock().now();
        let job = |tenant: &TenantId, trace_id: String| {
            let job = LogoJob {
                tenant_id: tenant.clone(),
                full,
                refresh_card: None,
                trace_id,
            };
            envelope(&job, now)
        };
        nightly::fan_out(
            self.queue.as_ref(),
            &self.sync.log,
            Integration::Logo,
            tenants,
            job,
        )
        .await
    }

    fn entry(&self, envelope: &Envelope, operation: &str, result: LogResult) -> LogEntry {
        LogEntry::new(
            envelope.tenant_id.clone(),
            Integration::Logo,
            LogDirection::Inbound,
            operation,
            result,
            envelope.trace_id.clone(),
        )
    }

    /// Runs the queued job until done or `deadline`; a run out of time is queued again.
    pub async fn handle(&self, envelope: Envelope, deadline: Instant) -> Result<(), ProcessError> {
        let job: LogoJob = nightly::read_job(&envelope, |j: &LogoJob| &j.tenant_id)?;
        match self.sync.run(&job, deadline).await? {
            JobOutcome::OutOfTime(run) => {
                let continuation = LogoJob { full: false, ..job };
                self.queue
                    .enqueue(&[self::envelope(&continuation, self.sync.log.clock().now())])
                    .await?;
                tracing::info!(
                    trace_id = %envelope.trace_id,
                    run = %run.run_id,
                    phase = ?run.phase,
                    offset = run.offset,
                    "logo sync out of time; continues in the next invocation"
                );
            }
            JobOutcome::NotConnected => {
                let entry = self
                    .entry(&envelope, "logo.sync.run", LogResult::Ignored)
                    .external_message("the tenant has no Logo connection");
                self.sync.log.write(entry).await;
            }
            JobOutcome::Busy => {
                tracing::info!(trace_id = %envelope.trace_id, "logo sync already running for this tenant");
            }
            JobOutcome::Refreshed(report) => {
                let entry = self
                    .entry(&envelope, "logo.refresh", LogResult::Success)
                    .card_id(envelope.external_id.clone())
                    .payload(serde_json::json!({
                        "customers": report.customers,
                        "invoices": report.invoices,
                        "conflicts": report.conflicts,
                        "problems": report.problems_listed,
                    }));
                self.sync.log.write(entry).await;
            }
            JobOutcome::Finished(_) => {}
        }
        Ok(())
    }
}
