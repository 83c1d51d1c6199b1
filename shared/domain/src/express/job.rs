//! The nightly poll of one tenant's Express account (seed 001, issue 10): lists, members'
//! consent into the CRM (only what changed), campaigns and their per-person results onto the
//! cards. Page by page on the shared run loop (`nightly`): a run cut off anywhere resumes from
//! its checkpoint, and every write is keyed so a page done twice changes nothing.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::ports::{ExpressApi, ExpressStore, ExpressTarget};
use super::run::{PollReport, PollRun};
use super::steps::PollSteps;
use crate::envelope::TraceId;
use crate::error::PortError;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::nightly::{Driven, Lease, Runs};
use crate::ports::TenantDirectory;
use crate::tenant::TenantId;

/// The error code of a run stopped for want of a sending package.
pub const NO_PACKAGE: &str = "express_no_active_package";

/// A queued poll: the nightly fan-out's or an operator's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollJob {
    pub tenant_id: TenantId,
    pub trace_id: String,
}

#[derive(Debug)]
pub enum PollOutcome {
    Finished(Box<PollRun>),
    /// Out of time: saved, released, to be continued.
    OutOfTime(Box<PollRun>),
    Busy,
    NotConnected,
}

pub struct ExpressPoll {
    pub tenants: Arc<dyn TenantDirectory>,
    pub api: Arc<dyn ExpressApi>,
    pub store: Arc<dyn ExpressStore>,
    pub log: IntegrationLog,
    pub runs: Runs,
}

impl ExpressPoll {
    /// Runs the poll until it is done or `deadline` passes (checked between pages).
    pub async fn run(&self, job: &PollJob, deadline: Instant) -> Result<PollOutcome, PortError> {
        let tenant = &job.tenant_id;
        let trace = TraceId::new(job.trace_id.clone());
        let Some(settings) = self
            .tenants
            .tenant(tenant)
            .await?
            .and_then(|t| t.integrations.express)
        else {
            return Ok(PollOutcome::NotConnected);
        };
        let target = ExpressTarget {
            tenant,
            settings: &settings,
            trace: &trace,
        };
        let now = self.log.clock().now();
        let owner = self.log.ids().new_id();
        let fresh = |previous: Option<PollRun>| {
            let version = previous.map_or(0, |p| p.lease.version);
            PollRun::new(
                self.log.ids().new_id(),
                now,
                Lease::new(owner.clone(), now, version),
            )
        };
        let mut steps = PollSteps { poll: self, target };
        let clock = self.log.clock().as_ref();
        match self
            .runs
            .run(tenant, clock, owner.clone(), fresh, &mut steps, deadline)
            .await?
        {
            Driven::Done(run) => {
                self.finish(target, &run).await?;
                Ok(PollOutcome::Finished(Box::new(run)))
            }
            Driven::OutOfTime(run) => Ok(PollOutcome::OutOfTime(Box::new(run))),
            Driven::Busy => Ok(PollOutcome::Busy),
        }
    }

    /// Keeps the report and writes the run's one record: success, a warning naming what was
    /// skipped, or the error that needs the account's owner.
    async fn finish(&self, target: ExpressTarget<'_>, run: &PollRun) -> Result<(), PortError> {
        self.store.save_report(target.tenant, run).await?;
        let r = &run.report;
        let (result, error) = match (&run.needs_action, r.skipped) {
            (Some(reason), _) => (LogResult::Error, Some((NO_PACKAGE, reason.clone()))),
            (None, 0) => (LogResult::Success, None),
            (None, n) => (
                LogResult::Warning,
                Some(("records_skipped", format!("{n} records could not be read"))),
            ),
        };
        let mut entry = LogEntry::new(
            target.tenant.clone(),
            Integration::Express,
            LogDirection::Inbound,
            "express.poll.run",
            result,
            target.trace.clone(),
        )
        .external_id(run.run_id.clone())
        .payload(summary(r));
        if let Some((code, message)) = error {
            entry = entry.error(code, message);
        }
        self.log.write(entry).await;
        Ok(())
    }
}

/// The report's counts for the run's log record.
pub fn summary(r: &PollReport) -> serde_json::Value {
    serde_json::json!({
        "lists": r.lists,
        "members_read": r.members_read,
        "members_not_in_crm": r.members_not_in_crm,
        "consents_set": r.consents_set,
        "consents": { "onay": r.consents_onay, "ret": r.consents_ret },
        "campaigns": r.campaigns,
        "campaigns_reported": r.campaigns_reported,
        "report_rows": r.report_rows,
        "entries_written": r.entries_written,
        "skipped": r.skipped,
    })
}
