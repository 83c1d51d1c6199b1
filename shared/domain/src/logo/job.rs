//! The nightly sync of one tenant (seed 000 §3, issue 9): cari both ways, invoices and stock
//! into the CRM, then the reconciliation. Page by page: every page is written (batched,
//! idempotent by its keys) before the checkpoint moves past it, so a run cut off anywhere
//! resumes from the last checkpoint in the next invocation and writes nothing twice.
//!
//! One invocation at a time per tenant: the run item carries a lease, taken and renewed by
//! conditional saves on its version. A second invocation finds the lease held and stops.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ahead::Ahead;
use super::customer::logo_key;
use super::ports::{ArpFilter, InvoiceFilter, InvoiceWrite, LogoApi, LogoStore, LogoTarget};
use super::run::{Phase, Problem, SyncReport, SyncRun};
use crate::envelope::TraceId;
use crate::error::{FieldError, PortError};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::nightly::{self, Driven, Lease, Runs, Steps};
use crate::page::PageRequest;
use crate::party::IdentityKey;
use crate::ports::{CrmRepository, TenantDirectory};
use crate::tenant::TenantId;

/// Days of invoices the reconciliation compares.
pub const CHECK_DAYS: i64 = 30;
/// CRM customers created in Logo per checkpoint (each is a lookup and maybe a create).
pub(super) const CREATE_PAGE: usize = 25;

/// A queued sync job: the nightly fan-out's, an operator's full resync, or the card's
/// "Logo'dan güncelle" button (`refresh_card`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoJob {
    pub tenant_id: TenantId,
    /// Read every record, not only those changed since the last run.
    #[serde(default)]
    pub full: bool,
    /// Refresh this one card (its cari and its invoices) now, outside the nightly run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_card: Option<String>,
    pub trace_id: String,
}

#[derive(Debug)]
pub enum JobOutcome {
    Finished(Box<SyncRun>),
    /// The invocation ran out of time; the checkpoint is saved and the lease released.
    OutOfTime(Box<SyncRun>),
    /// Another invocation holds the run.
    Busy,
    /// The tenant has no Logo connection.
    NotConnected,
    Refreshed(Box<SyncReport>),
}

pub struct LogoSync {
    pub tenants: Arc<dyn TenantDirectory>,
    pub api: Arc<dyn LogoApi>,
    pub store: Arc<dyn LogoStore>,
    pub crm: Arc<dyn CrmRepository>,
    pub log: IntegrationLog,
    /// The run items (checkpoint and lease) of the Logo sync.
    pub runs: Runs,
}

/// One Logo page at a time, for the shared run loop; pages read ahead live here.
struct LogoSteps<'a> {
    sync: &'a LogoSync,
    target: LogoTarget<'a>,
    ahead: Ahead,
}

#[async_trait]
impl Steps<SyncRun> for LogoSteps<'_> {
    async fn step(&mut self, run: &mut SyncRun) -> Result<(), PortError> {
        let phase = run.phase;
        let began = Instant::now();
        let stepped = self.sync.step(self.target, run, &mut self.ahead).await;
        *run.report.phase_ms.entry(phase).or_default() += began.elapsed().as_millis() as u64;
        stepped
    }
}

impl LogoSync {
    /// Runs the job until it is done or `deadline` passes (checked between pages).
    pub async fn run(&self, job: &LogoJob, deadline: Instant) -> Result<JobOutcome, PortError> {
        let tenant = &job.tenant_id;
        let trace = TraceId::new(job.trace_id.clone());
        let Some(settings) = self
            .tenants
            .tenant(tenant)
            .await?
            .and_then(|t| t.integrations.logo)
        else {
            return Ok(JobOutcome::NotConnected);
        };
        let target = LogoTarget {
            tenant,
            settings: &settings,
            trace: &trace,
        };
        if let Some(card_id) = &job.refresh_card {
            return self.refresh(target, card_id).await;
        }
        let now = self.log.clock().now();
        let owner = self.log.ids().new_id();
        let fresh = |previous: Option<SyncRun>| {
            let last_run = previous.as_ref().map(|p| p.started_at);
            SyncRun {
                run_id: self.log.ids().new_id(),
                full: job.full || last_run.is_none(),
                since: if job.full {
                    None
                } else {
                    previous.as_ref().map(SyncRun::watermark)
                },
                last_run,
                started_at: now,
                phase: Phase::Customers,
                offset: 0,
                cursor: None,
                report: SyncReport::default(),
                lease: Lease::new(owner.clone(), now, previous.map_or(0, |p| p.lease.version)),
                finished_at: None,
            }
        };
        let mut steps = LogoSteps {
            sync: self,
            target,
            ahead: Ahead::default(),
        };
        let clock = self.log.clock().as_ref();
        match self
            .runs
            .run(tenant, clock, owner.clone(), fresh, &mut steps, deadline)
            .await?
        {
            Driven::Done(run) => self.finish(target, run).await,
            Driven::OutOfTime(run) => Ok(JobOutcome::OutOfTime(Box::new(run))),
            Driven::Busy => Ok(JobOutcome::Busy),
        }
    }

    async fn step(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        ahead: &mut Ahead,
    ) -> Result<(), PortError> {
        let settings = target.settings;
        let limit = settings.page_size.clamp(1, 500);
        match run.phase {
            Phase::Customers => {
                let filter = ArpFilter::ChangedSince(run.since);
                let read = |offset| self.api.arps(target, &filter, offset, limit);
                let page = ahead.arps.page(run.offset, read).await?;
                let (n, more) = (page.records.len(), page.more);
                let writes = self.customers(target, run, &page.records).await?;
                let written = self.store.put_customers(target.tenant, &writes);
                ahead
                    .arps
                    .alongside((run.offset, n, more), written, read)
                    .await?;
                next_page(run, n, more);
            }
            Phase::CreateInLogo if !settings.create_in_logo => run.advance(),
            Phase::CreateInLogo => {
                let page = self
                    .store
                    .customers_without_logo_code(
                        target.tenant,
                        PageRequest {
                            limit: CREATE_PAGE,
                            cursor: run.cursor.clone(),
                        },
                    )
                    .await?;
                for card in &page.items {
                    self.create_in_logo(target, run, card).await?;
                }
                match page.next {
                    Some(cursor) => run.cursor = Some(cursor),
                    None => run.advance(),
                }
            }
            Phase::Invoices => {
                let filter = InvoiceFilter::ChangedSince(run.since);
                let read = |offset| self.api.invoices(target, &filter, offset, limit);
                let page = ahead.invoices.page(run.offset, read).await?;
                let (n, more) = (page.records.len(), page.more);
                let writes = self.invoices(target, &mut run.report, page.records).await?;
                let written = self.store.put_invoices(target.tenant, &writes);
                ahead
                    .invoices
                    .alongside((run.offset, n, more), written, read)
                    .await?;
                next_page(run, n, more);
            }
            Phase::Stock | Phase::CheckStock if !settings.sync_stock => run.advance(),
            Phase::Stock => {
                // Every item, every run: stock moves without its card changing.
                let (read, more) = self.stock_page(target, run.offset, limit).await?;
                let n = read.len();
                let mut products = Vec::with_capacity(n);
                for product in read {
                    run.report.products.read += 1;
                    match product {
                        Ok(product) => products.push(product),
                        Err(errors) => {
                            run.report.products.skipped += 1;
                            self.skip(target, &mut run.report, "logo.item.read", errors)
                                .await;
                        }
                    }
                }
                self.store.put_products(target.tenant, &products).await?;
                run.report.products.updated += products.len() as u64;
                next_page(run, n, more);
            }
            Phase::CheckCustomers => self.check_customers(target, run, ahead, limit).await?,
            Phase::CheckInvoices => self.check_invoices(target, run, ahead, limit).await?,
            Phase::CheckStock => self.check_stock(target, run, limit).await?,
            Phase::Done => {}
        }
        Ok(())
    }

    /// One page of invoices onto their customers' cards: the writes.
    async fn invoices(
        &self,
        target: LogoTarget<'_>,
        report: &mut SyncReport,
        records: Vec<super::invoice::LogoInvoiceWire>,
    ) -> Result<Vec<InvoiceWrite>, PortError> {
        let mut readable = Vec::with_capacity(records.len());
        for wire in &records {
            report.invoices.read += 1;
            match wire.read() {
                Ok(invoice) => readable.push(invoice),
                Err(errors) => {
                    report.invoices.skipped += 1;
                    self.skip(target, report, "logo.invoice.read", errors).await;
                }
            }
        }
        let keys: Vec<IdentityKey> = readable
            .iter()
            .map(|i| logo_key(&i.arp_code))
            .collect::<Vec<_>>();
        let claimed = self.store.claimed(target.tenant, &keys).await?;
        let mut writes = Vec::with_capacity(readable.len());
        for invoice in readable {
            match claimed.get(&logo_key(&invoice.arp_code).key()) {
                Some(card_id) => writes.push(InvoiceWrite {
                    card_id: card_id.clone(),
                    invoice,
                }),
                None => {
                    report.invoices.skipped += 1;
                    let field = format!("salesInvoices[{}].ARP_CODE", invoice.number);
                    let message = format!("no customer card has Logo code {:?}", invoice.arp_code);
                    self.skip(
                        target,
                        report,
                        "logo.invoice.read",
                        vec![FieldError::new(field, "unknown_customer", message)],
                    )
                    .await;
                }
            }
        }
        report.invoices.created += writes.len() as u64;
        Ok(writes)
    }

    /// A record left out: one error record naming it and its fields; the run goes on.
    pub(super) async fn skip(
        &self,
        target: LogoTarget<'_>,
        report: &mut SyncReport,
        operation: &str,
        errors: Vec<FieldError>,
    ) {
        nightly::log_skipped(
            &self.log,
            target.tenant,
            Integration::Logo,
            target.trace,
            operation,
            &errors,
        )
        .await;
        for error in errors {
            report.problem(Problem {
                field: error.field,
                code: error.code,
                message: error.message,
            });
        }
    }

    async fn finish(&self, target: LogoTarget<'_>, run: SyncRun) -> Result<JobOutcome, PortError> {
        self.store.save_report(target.tenant, &run).await?;
        let check = &run.report.reconciliation;
        let totals = check.invoice_totals();
        let result = if check.matches() && run.report.problems == 0 {
            LogResult::Success
        } else {
            LogResult::Warning
        };
        let mut entry = LogEntry::new(
            target.tenant.clone(),
            Integration::Logo,
            LogDirection::Inbound,
            "logo.sync.run",
            result,
            target.trace.clone(),
        )
        .external_id(run.run_id.clone())
        .payload(serde_json::json!({
            "customers": run.report.customers,
            "created_in_logo": run.report.created_in_logo,
            "invoices": run.report.invoices,
            "products": run.report.products,
            "conflicts": run.report.conflicts,
            "problems": run.report.problems,
            "logo_customers": check.logo_customers,
            "missing_in_crm": check.logo_customers - check.logo_customers_in_crm,
            "crm_only": check.crm_only,
            "invoices_30_days": { "logo": [totals.logo_count, totals.logo_gross], "crm": [totals.crm_count, totals.crm_gross] },
            "stock_differences": check.stock_differences,
        }));
        if result == LogResult::Warning {
            entry = entry.error(
                "sides_differ",
                format!(
                    "{} records skipped, {} cari missing in the CRM, {} CRM customers missing in Logo, {} invoice days and {} stock quantities differ",
                    run.report.problems,
                    check.logo_customers - check.logo_customers_in_crm,
                    check.crm_only,
                    check.invoice_mismatches().len(),
                    check.stock_differences
                ),
            );
        }
        self.log.write(entry).await;
        Ok(JobOutcome::Finished(Box::new(run)))
    }

    /// The card's cari and its invoices now (the card's "Logo'dan güncelle"); a customer Logo
    /// does not have yet is created there ("Logo'ya gönder").
    async fn refresh(
        &self,
        target: LogoTarget<'_>,
        card_id: &str,
    ) -> Result<JobOutcome, PortError> {
        let Some(card) = self.crm.card(target.tenant, card_id).await? else {
            return Err(PortError::Rejected(format!("no card {card_id}")));
        };
        let filter = match (
            card.external_ids.get(super::customer::LOGO),
            card.customer.as_ref().and_then(|c| c.tax_id.as_ref()),
        ) {
            (Some(code), _) => ArpFilter::Code(code.clone()),
            (None, Some(tax)) => ArpFilter::TaxNumber(tax.clone()),
            (None, None) => {
                return Err(PortError::Rejected(format!(
                    "card {card_id} has neither a Logo code nor a tax number"
                )))
            }
        };
        let now = self.log.clock().now();
        let stored: Option<SyncRun> = self.runs.current(target.tenant).await?;
        let mut run = SyncRun {
            run_id: self.log.ids().new_id(),
            full: false,
            since: None,
            last_run: stored.as_ref().map(|r| r.started_at),
            started_at: now,
            phase: Phase::Customers,
            offset: 0,
            cursor: None,
            report: SyncReport::default(),
            lease: Lease::new(String::new(), now, 0),
            finished_at: None,
        };
        let found = self.api.arps(target, &filter, 0, 10).await?;
        if found.records.is_empty() && target.settings.create_in_logo {
            // Not in Logo yet: the card's "Logo'ya gönder" (seed 000 §3.4), now.
            self.create_in_logo(target, &mut run, &card).await?;
            return Ok(JobOutcome::Refreshed(Box::new(run.report)));
        }
        let writes = self.customers(target, &mut run, &found.records).await?;
        self.store.put_customers(target.tenant, &writes).await?;
        for arp in &found.records {
            let Some(code) = arp.code.as_deref() else {
                continue;
            };
            let mut offset = 0;
            loop {
                let filter = InvoiceFilter::Customer(code.to_string());
                let limit = target.settings.page_size.clamp(1, 500);
                let page = self.api.invoices(target, &filter, offset, limit).await?;
                let n = page.records.len();
                let writes = self.invoices(target, &mut run.report, page.records).await?;
                self.store.put_invoices(target.tenant, &writes).await?;
                offset += n as u64;
                if !page.more || n == 0 {
                    break;
                }
            }
        }
        Ok(JobOutcome::Refreshed(Box::new(run.report)))
    }
}

/// Moves past a page of `n` records; the phase ends with the last page.
pub(super) fn next_page(run: &mut SyncRun, n: usize, more: bool) {
    run.offset += n as u64;
    if !more || n == 0 {
        run.advance();
    }
}
