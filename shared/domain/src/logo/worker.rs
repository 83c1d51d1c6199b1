//! The queue side of the sync: the nightly fan-out (one job per connected tenant) and the job
//! consumer, which continues a run cut short by the invocation's time limit in a fresh
//! invocation (a continuation message) instead of letting Lambda kill it.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::job::{JobOutcome, LogoJob, LogoSync};
use crate::batch::ProcessError;
use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::PortError;
use crate::log::{Integration, LogDirection, LogEntry, LogResult};
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
    Envelope {
        v: ENVELOPE_VERSION,
        tenant_id: job.tenant_id.clone(),
        integration: Integration::Logo,
        kind: kind.into(),
        external_id,
        trace_id: TraceId::new(job.trace_id.clone()),
        received_at: at,
        ordering_key: None,
        payload: serde_json::to_value(job).unwrap_or_default(),
    }
}

pub struct LogoWorker {
    pub sync: LogoSync,
    /// The jobs queue: fan-out and continuations.
    pub queue: Arc<dyn EventQueue>,
}

impl LogoWorker {
    /// One job per tenant with a Logo connection, ten to an SQS request (the queue adapter's
    /// batches). Returns how many were queued.
    pub async fn fan_out(&self, tenants: &[TenantId], full: bool) -> Result<usize, PortError> {
        let now = self.sync.log.clock().now();
        let envelopes: Vec<Envelope> = tenants
            .iter()
            .map(|tenant| {
                let job = LogoJob {
                    tenant_id: tenant.clone(),
                    full,
                    refresh_card: None,
                    trace_id: self.sync.log.ids().new_id(),
                };
                envelope(&job, now)
            })
            .collect();
        self.queue.enqueue(&envelopes).await?;
        for e in &envelopes {
            self.sync
                .log
                .write(
                    LogEntry::new(
                        e.tenant_id.clone(),
                        Integration::Logo,
                        LogDirection::Inbound,
                        "logo.sync.scheduled",
                        LogResult::Success,
                        e.trace_id.clone(),
                    )
                    .starts_trace(now),
                )
                .await;
        }
        Ok(envelopes.len())
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
        let job: LogoJob = serde_json::from_value(envelope.payload.clone()).map_err(|e| {
            ProcessError::permanent("invalid_payload", format!("not a Logo sync job: {e}"))
        })?;
        if job.tenant_id != envelope.tenant_id {
            return Err(ProcessError::permanent(
                "invalid_payload",
                "the job names another tenant than its envelope",
            ));
        }
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
