//! The queue side: the nightly fan-out (one poll per connected tenant), the jobs consumer with
//! its continuations, and the pushes the CRM queues.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::job::{ExpressPoll, PollJob, PollOutcome, NO_PACKAGE};
use super::ports::{ExpressError, ExpressTarget};
use super::push::{ExpressPush, ListJob, PushJob};
use crate::batch::ProcessError;
use crate::envelope::{Envelope, TraceId};
use crate::error::PortError;
use crate::log::{Integration, LogDirection, LogEntry, LogResult};
use crate::nightly;
use crate::ports::EventQueue;
use crate::tenant::TenantId;

pub const POLL_KIND: &str = "express.poll";
pub const PUSH_KIND: &str = "express.push";
pub const LIST_KIND: &str = "express.list";

pub fn poll_envelope(job: &PollJob, at: DateTime<Utc>) -> Envelope {
    nightly::job_envelope(
        Integration::Express,
        POLL_KIND,
        &job.tenant_id,
        format!("{}#{}", job.tenant_id, job.trace_id),
        &job.trace_id,
        serde_json::to_value(job).unwrap_or_default(),
        at,
    )
}

pub fn push_envelope(job: &PushJob, at: DateTime<Utc>) -> Envelope {
    nightly::job_envelope(
        Integration::Express,
        PUSH_KIND,
        &job.tenant_id,
        format!("{}#{}", job.segment, job.trace_id),
        &job.trace_id,
        serde_json::to_value(job).unwrap_or_default(),
        at,
    )
}

pub fn list_envelope(job: &ListJob, at: DateTime<Utc>) -> Envelope {
    nightly::job_envelope(
        Integration::Express,
        LIST_KIND,
        &job.tenant_id,
        format!("{}#{}", job.segment, job.trace_id),
        &job.trace_id,
        serde_json::to_value(job).unwrap_or_default(),
        at,
    )
}

pub struct ExpressWorker {
    pub poll: ExpressPoll,
    pub push: ExpressPush,
    /// The jobs queue: fan-out and continuations.
    pub queue: Arc<dyn EventQueue>,
}

impl ExpressWorker {
    pub async fn fan_out(&self, tenants: &[TenantId]) -> Result<usize, PortError> {
        let now = self.poll.log.clock().now();
        let job = |tenant: &TenantId, trace_id: String| {
            poll_envelope(
                &PollJob {
                    tenant_id: tenant.clone(),
                    trace_id,
                },
                now,
            )
        };
        nightly::fan_out(
            self.queue.as_ref(),
            &self.poll.log,
            Integration::Express,
            tenants,
            job,
        )
        .await
    }

    fn entry(&self, envelope: &Envelope, operation: &str, result: LogResult) -> LogEntry {
        LogEntry::new(
            envelope.tenant_id.clone(),
            Integration::Express,
            LogDirection::Outbound,
            operation,
            result,
            envelope.trace_id.clone(),
        )
    }

    pub async fn handle(&self, envelope: Envelope, deadline: Instant) -> Result<(), ProcessError> {
        match envelope.kind.as_str() {
            PUSH_KIND | LIST_KIND => return self.handle_push(envelope).await,
            _ => {}
        }
        let job: PollJob = nightly::read_job(&envelope, |j: &PollJob| &j.tenant_id)?;
        match self.poll.run(&job, deadline).await? {
            PollOutcome::OutOfTime(run) => {
                self.queue
                    .enqueue(&[poll_envelope(&job, self.poll.log.clock().now())])
                    .await?;
                tracing::info!(
                    trace_id = %envelope.trace_id,
                    run = %run.run_id,
                    phase = ?run.phase,
                    page = run.page,
                    "express poll out of time; continues in the next invocation"
                );
            }
            PollOutcome::NotConnected => {
                let entry = self
                    .entry(&envelope, "express.poll.run", LogResult::Ignored)
                    .external_message("the tenant has no Express connection");
                self.poll.log.write(entry).await;
            }
            PollOutcome::Busy => {
                tracing::info!(trace_id = %envelope.trace_id, "express poll already running for this tenant");
            }
            PollOutcome::Finished(_) => {}
        }
        Ok(())
    }

    /// A push or a list change: one log record with its outcome.
    async fn handle_push(&self, envelope: Envelope) -> Result<(), ProcessError> {
        let (tenant, trace_id, segment, push, list) = match envelope.kind.as_str() {
            LIST_KIND => {
                let job: ListJob = nightly::read_job(&envelope, |j: &ListJob| &j.tenant_id)?;
                (
                    job.tenant_id.clone(),
                    job.trace_id.clone(),
                    job.segment.clone(),
                    None,
                    Some(job),
                )
            }
            _ => {
                let job: PushJob = nightly::read_job(&envelope, |j: &PushJob| &j.tenant_id)?;
                (
                    job.tenant_id.clone(),
                    job.trace_id.clone(),
                    job.segment.clone(),
                    Some(job),
                    None,
                )
            }
        };
        let operation = envelope.kind.as_str();
        let Some(settings) = self
            .poll
            .tenants
            .tenant(&tenant)
            .await?
            .and_then(|t| t.integrations.express)
        else {
            let entry = self
                .entry(&envelope, operation, LogResult::Ignored)
                .external_message("the tenant has no Express connection");
            self.poll.log.write(entry).await;
            return Ok(());
        };
        let trace = TraceId::new(trace_id);
        let target = ExpressTarget {
            tenant: &tenant,
            settings: &settings,
            trace: &trace,
        };
        if let Some(job) = list {
            let entry = match self.push.change_list(target, &job).await {
                Ok(list) => self
                    .entry(&envelope, operation, LogResult::Success)
                    .external_id(segment)
                    .payload(serde_json::json!({ "change": job.change, "list": list })),
                Err(ExpressError::NoActivePackage(reason)) => self
                    .entry(&envelope, operation, LogResult::Error)
                    .external_id(segment)
                    .error(NO_PACKAGE, reason),
                Err(ExpressError::Port(e)) => return Err(e.into()),
            };
            self.poll.log.write(entry).await;
            return Ok(());
        }
        let Some(job) = push else {
            return Ok(());
        };
        let entry = match self.push.push(target, &job).await {
            Ok(report) => {
                let result = match report.refused.is_empty() {
                    true => LogResult::Success,
                    false => LogResult::Warning,
                };
                let mut entry = self
                    .entry(&envelope, operation, result)
                    .external_id(segment)
                    .payload(serde_json::to_value(&report).unwrap_or_default());
                if let Some(first) = report.refused.first() {
                    let message = format!(
                        "{} cards not pushed; first: {}: {}",
                        report.refused.len(),
                        first.field,
                        first.message
                    );
                    entry = entry.error(&first.code, message);
                }
                entry
            }
            // Needs the account's owner, not a retry: one error record, the message is done.
            Err(ExpressError::NoActivePackage(reason)) => self
                .entry(&envelope, operation, LogResult::Error)
                .external_id(job.segment.clone())
                .error(NO_PACKAGE, reason),
            Err(ExpressError::Port(e)) => return Err(e.into()),
        };
        self.poll.log.write(entry).await;
        Ok(())
    }
}
