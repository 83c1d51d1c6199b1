//! The nightly sync of one tenant (seed 000 §3, issue 9): cari both ways, invoices and stock
//! into the CRM, then the reconciliation. Page by page: every page is written (batched,
//! idempotent by its keys) before the checkpoint moves past it, so a run cut off anywhere
//! resumes from the last checkpoint in the next invocation and writes nothing twice.
//!
//! One invocation at a time per tenant: the run item carries a lease, taken and renewed by
//! conditional saves on its version. A second invocation finds the lease held and stops.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::arp::{LogoArp, LogoCustomer, Winner};
use super::customer::{apply, arp_body, code_for, logo_key, new_card};
use super::ports::{
    ArpFilter, CustomerWrite, InvoiceFilter, InvoiceWrite, LogoApi, LogoStore, LogoTarget,
};
use super::run::{Conflict, Phase, Problem, StockDifference, SyncReport, SyncRun, LISTED};
use super::stock::Product;
use crate::envelope::TraceId;
use crate::error::{FieldError, PortError};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::page::PageRequest;
use crate::party::{Card, IdentityKey};
use crate::ports::{CrmRepository, TenantDirectory};
use crate::tenant::TenantId;

/// Days of invoices the reconciliation compares.
pub const CHECK_DAYS: i64 = 30;
/// How often the run's checkpoint is saved (and its lease renewed) while pages go by.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// CRM customers created in Logo per checkpoint (each is a lookup and maybe a create).
const CREATE_PAGE: usize = 25;

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

/// The lease of `seconds` (at least 1).
pub fn lease(seconds: i64) -> Duration {
    Duration::seconds(seconds.max(1))
}

pub struct LogoSync {
    pub tenants: Arc<dyn TenantDirectory>,
    pub api: Arc<dyn LogoApi>,
    pub store: Arc<dyn LogoStore>,
    pub crm: Arc<dyn CrmRepository>,
    pub log: IntegrationLog,
    /// How long an invocation holds the run past its last checkpoint.
    pub lease: Duration,
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
        let (mut run, expected) = match self.store.run(tenant).await? {
            Some(run) if run.phase != Phase::Done && run.lease_until > now => {
                return Ok(JobOutcome::Busy)
            }
            Some(mut run) if run.phase != Phase::Done => {
                let version = run.version;
                run.lease_owner = owner;
                run.invocations += 1;
                (run, Some(version))
            }
            previous => {
                let last_run = previous.as_ref().map(|p| p.started_at);
                let expected = previous.as_ref().map(|p| p.version);
                let run = SyncRun {
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
                    lease_owner: owner,
                    lease_until: now,
                    version: expected.unwrap_or(0),
                    invocations: 1,
                    finished_at: None,
                };
                (run, expected)
            }
        };
        if !self.checkpoint(tenant, &mut run, expected, true).await? {
            return Ok(JobOutcome::Busy);
        }
        // At least one page per invocation, so a run always moves.
        let mut saved = Instant::now();
        let mut ahead = Ahead::default();
        loop {
            if run.phase == Phase::Done {
                return self.finish(target, run).await;
            }
            let phase0 = run.phase;
            let began = Instant::now();
            let stepped = self.step(target, &mut run, &mut ahead).await;
            *run.report.phase_ms.entry(phase0).or_default() += began.elapsed().as_millis() as u64;
            if let Err(error) = stepped {
                // Free the run for the retry; the failed page is done again from its start.
                let version = run.version;
                let _ = self
                    .checkpoint(tenant, &mut run, Some(version), false)
                    .await;
                return Err(error);
            }
            let version = run.version;
            let out_of_time = Instant::now() >= deadline && run.phase != Phase::Done;
            // Every few seconds, not every page: a resumed run redoes at most those pages
            // (idempotent writes), and the run item is not rewritten a hundred times a minute.
            let due = out_of_time || run.phase != phase0 || saved.elapsed() >= CHECKPOINT_EVERY;
            if due {
                if !self
                    .checkpoint(tenant, &mut run, Some(version), !out_of_time)
                    .await?
                {
                    return Ok(JobOutcome::Busy);
                }
                saved = Instant::now();
            }
            if out_of_time {
                return Ok(JobOutcome::OutOfTime(Box::new(run)));
            }
        }
    }

    /// Saves the run if it is still ours; `hold` renews the lease, otherwise it is released.
    async fn checkpoint(
        &self,
        tenant: &TenantId,
        run: &mut SyncRun,
        expected: Option<u64>,
        hold: bool,
    ) -> Result<bool, PortError> {
        let now = self.log.clock().now();
        run.version = expected.map_or(1, |v| v + 1);
        run.lease_until = if hold { now + self.lease } else { now };
        self.store.save_run(tenant, run, expected).await
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
                let page = match ahead.arps.take() {
                    Some((offset, page)) if offset == run.offset => page,
                    _ => self.api.arps(target, &filter, run.offset, limit).await?,
                };
                let (n, more) = (page.records.len(), page.more);
                let writes = self.customers(target, run, &page.records).await?;
                // This page is written while the next one is read.
                let next_offset = run.offset + n as u64;
                let (written, next) =
                    futures::join!(self.store.put_customers(target.tenant, &writes), async {
                        match more && n > 0 {
                            true => self
                                .api
                                .arps(target, &filter, next_offset, limit)
                                .await
                                .ok(),
                            false => None,
                        }
                    });
                written?;
                ahead.arps = next.map(|page| (next_offset, page));
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
                let page = match ahead.invoices.take() {
                    Some((offset, page)) if offset == run.offset => page,
                    _ => {
                        self.api
                            .invoices(target, &filter, run.offset, limit)
                            .await?
                    }
                };
                let (n, more) = (page.records.len(), page.more);
                let writes = self.invoices(target, &mut run.report, page.records).await?;
                // This page is written while the next one is read.
                let next_offset = run.offset + n as u64;
                let (written, next) =
                    futures::join!(self.store.put_invoices(target.tenant, &writes), async {
                        match more && n > 0 {
                            true => self
                                .api
                                .invoices(target, &filter, next_offset, limit)
                                .await
                                .ok(),
                            false => None,
                        }
                    });
                written?;
                ahead.invoices = next.map(|page| (next_offset, page));
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
            Phase::CheckCustomers => {
                if run.offset == 0 && run.cursor.is_none() {
                    self.count_crm_only(target.tenant, run).await?;
                }
                let filter = ArpFilter::ChangedSince(None);
                let page = match ahead.arps.take() {
                    Some((offset, page)) if offset == run.offset => page,
                    _ => self.api.arps(target, &filter, run.offset, limit).await?,
                };
                let codes: Vec<String> = page
                    .records
                    .iter()
                    .filter_map(|a| a.code.as_deref().map(str::trim))
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                let keys: Vec<IdentityKey> = codes.iter().map(|c| logo_key(c)).collect();
                let (n, more) = (page.records.len(), page.more);
                let next_offset = run.offset + n as u64;
                let (claimed, next) =
                    futures::join!(self.store.claimed(target.tenant, &keys), async {
                        match more && n > 0 {
                            true => self
                                .api
                                .arps(target, &filter, next_offset, limit)
                                .await
                                .ok(),
                            false => None,
                        }
                    });
                let claimed = claimed?;
                ahead.arps = next.map(|page| (next_offset, page));
                let check = &mut run.report.reconciliation;
                check.logo_customers += page.records.len() as u64;
                for code in &codes {
                    if claimed.contains_key(&logo_key(code).key()) {
                        check.logo_customers_in_crm += 1;
                    } else if check.missing_in_crm.len() < LISTED {
                        check.missing_in_crm.push(code.clone());
                    }
                }
                next_page(run, page.records.len(), page.more);
            }
            Phase::CheckInvoices => {
                let from = *run
                    .report
                    .reconciliation
                    .invoices_from
                    .get_or_insert_with(|| {
                        crate::time::istanbul_today(&run.started_at)
                            - Duration::days(CHECK_DAYS - 1)
                    });
                let filter = InvoiceFilter::DatedFrom(from);
                let page = match ahead.invoices.take() {
                    Some((offset, page)) if offset == run.offset => page,
                    _ => {
                        self.api
                            .invoices(target, &filter, run.offset, limit)
                            .await?
                    }
                };
                let (n, more) = (page.records.len(), page.more);
                // Unreadable ones were reported by the sync step.
                let logo: Vec<_> = page
                    .records
                    .iter()
                    .filter_map(|w| w.read().ok())
                    .filter(|i| i.date >= from)
                    .collect();
                let codes: Vec<IdentityKey> = logo.iter().map(|i| logo_key(&i.arp_code)).collect();
                let next_offset = run.offset + n as u64;
                let (crm, next) = futures::join!(
                    async {
                        let cards = self.store.claimed(target.tenant, &codes).await?;
                        let keys: Vec<(String, String)> = logo
                            .iter()
                            .filter_map(|i| {
                                let card = cards.get(&logo_key(&i.arp_code).key())?;
                                Some((card.clone(), i.number.clone()))
                            })
                            .collect();
                        self.store.invoices(target.tenant, &keys).await
                    },
                    async {
                        match more && n > 0 {
                            true => self
                                .api
                                .invoices(target, &filter, next_offset, limit)
                                .await
                                .ok(),
                            false => None,
                        }
                    }
                );
                let crm = crm?;
                ahead.invoices = next.map(|page| (next_offset, page));
                run.report.reconciliation.compare_invoices(&logo, &crm);
                next_page(run, n, more);
            }
            Phase::CheckStock => {
                let (read, more) = self.stock_page(target, run.offset, limit).await?;
                let n = read.len();
                // Unreadable ones were reported by the sync step.
                let products: Vec<_> = read.into_iter().filter_map(Result::ok).collect();
                let codes: Vec<String> = products.iter().map(|p| p.code.clone()).collect();
                let crm = self.store.stock(target.tenant, &codes).await?;
                let check = &mut run.report.reconciliation;
                for product in products {
                    check.products_checked += 1;
                    let ours = crm.get(&product.code).copied();
                    if ours != Some(product.on_hand) {
                        check.stock_differences += 1;
                        if check.stock_listed.len() < LISTED {
                            check.stock_listed.push(StockDifference {
                                code: product.code,
                                logo: product.on_hand,
                                crm: ours,
                            });
                        }
                    }
                }
                next_page(run, n, more);
            }
            Phase::Done => {}
        }
        Ok(())
    }

    /// A page of material cards read with their stock on hand (one query for the page).
    async fn stock_page(
        &self,
        target: LogoTarget<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Result<Product, Vec<FieldError>>>, bool), PortError> {
        let page = self.api.items(target, None, offset, limit).await?;
        let refs: Vec<i64> = page
            .records
            .iter()
            .filter_map(|i| i.internal_reference)
            .collect();
        let on_hand = self.api.on_hand(target, &refs).await?;
        let read = page
            .records
            .iter()
            .map(|item| {
                let quantity = item
                    .internal_reference
                    .and_then(|r| on_hand.get(&r))
                    .map(String::as_str);
                item.read(quantity)
            })
            .collect();
        Ok((read, page.more))
    }

    /// CRM customers that have no Logo code (what `CreateInLogo` could not create).
    async fn count_crm_only(&self, tenant: &TenantId, run: &mut SyncRun) -> Result<(), PortError> {
        let mut cursor = None;
        loop {
            let page = self
                .store
                .customers_without_logo_code(tenant, PageRequest { limit: 100, cursor })
                .await?;
            let check = &mut run.report.reconciliation;
            for card in &page.items {
                check.crm_only += 1;
                if check.crm_only_cards.len() < LISTED {
                    check.crm_only_cards.push(card.card_id.clone());
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// One page of cari onto cards: new ones created, known ones updated unless the CRM's
    /// change wins. Returns the writes (the caller writes them while reading on).
    async fn customers(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        records: &[LogoArp],
    ) -> Result<Vec<CustomerWrite>, PortError> {
        let tenant = target.tenant;
        let mut readable: Vec<(&LogoArp, LogoCustomer)> = Vec::with_capacity(records.len());
        for arp in records {
            run.report.customers.read += 1;
            match arp.read_with(&target.settings.fields) {
                Ok(customer) => readable.push((arp, customer)),
                Err(errors) => {
                    run.report.customers.skipped += 1;
                    self.skip(target, &mut run.report, "logo.arp.read", errors)
                        .await;
                }
            }
        }
        let keys: Vec<IdentityKey> = readable
            .iter()
            .flat_map(|(_, c)| [logo_key(&c.code), tax_key(c)])
            .collect();
        // Keys claimed before this page, and by the cards this page writes.
        let mut claimed = self.store.claimed(tenant, &keys).await?;
        let ids: Vec<String> = claimed
            .values()
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut cards: HashMap<String, Card> = self
            .crm
            .cards(tenant, &ids)
            .await?
            .into_iter()
            .map(|c| (c.card_id.clone(), c))
            .collect();
        let mut writes: Vec<CustomerWrite> = Vec::with_capacity(readable.len());
        for (arp, customer) in readable {
            let by_code = claimed.get(&logo_key(&customer.code).key()).cloned();
            // A card linked to another cari with the same tax number (a branch account) is
            // not this cari's card.
            let by_tax = claimed
                .get(&tax_key(&customer).key())
                .cloned()
                .filter(|id| {
                    cards.get(id).is_some_and(|card| {
                        card.external_ids
                            .get(super::customer::LOGO)
                            .is_none_or(|code| code == &customer.code)
                    })
                });
            let existing = by_code.or(by_tax).and_then(|id| cards.get(&id).cloned());
            let (card, created) = match existing {
                None => (new_card(&customer, run.started_at), true),
                Some(mut card) => {
                    let decision = match (run.last_run, customer.modified_at) {
                        (Some(last), Some(logo_at)) => target
                            .settings
                            .conflict_rule
                            .decide(last, logo_at, card.updated_at)
                            .map(|w| (w, last, logo_at)),
                        _ => None,
                    };
                    if let Some((winner, _, logo_at)) = decision {
                        self.conflict(target, run, arp, &customer, &card, winner, logo_at)
                            .await?;
                        if winner == Winner::Crm {
                            continue;
                        }
                    } else if run.last_run.is_some_and(|last| {
                        card.updated_at > last
                            && customer
                                .modified_at
                                .is_some_and(|l| l < super::arp::whole_seconds(last))
                    }) {
                        // Only the CRM changed it (a full run reads untouched cari too).
                        continue;
                    }
                    apply(&mut card, &customer, run.started_at);
                    (card, false)
                }
            };
            // Keys nobody holds yet become this card's; a key another card holds stays its.
            let mut claims = Vec::new();
            for key in [logo_key(&customer.code), tax_key(&customer)] {
                if let std::collections::hash_map::Entry::Vacant(free) = claimed.entry(key.key()) {
                    free.insert(card.card_id.clone());
                    claims.push(key);
                }
            }
            if created {
                run.report.customers.created += 1;
            } else {
                run.report.customers.updated += 1;
            }
            cards.insert(card.card_id.clone(), card.clone());
            writes.push(CustomerWrite { card, claims });
        }
        Ok(writes)
    }

    #[allow(clippy::too_many_arguments)]
    async fn conflict(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        arp: &LogoArp,
        customer: &LogoCustomer,
        card: &Card,
        winner: Winner,
        logo_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        run.report.conflict(Conflict::new(
            &customer.code,
            &card.card_id,
            winner,
            logo_at,
            card.updated_at,
        ));
        let side = if winner == Winner::Crm { "crm" } else { "logo" };
        self.log
            .write(
                LogEntry::new(
                    target.tenant.clone(),
                    Integration::Logo,
                    LogDirection::Inbound,
                    "logo.arp.conflict",
                    LogResult::Warning,
                    target.trace.clone(),
                )
                .error(
                    "both_sides_changed",
                    format!(
                        "cari {} and card {} both changed since the last run; the {} rule keeps {side}'s",
                        customer.code,
                        card.card_id,
                        serde_json::to_value(target.settings.conflict_rule)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ),
                )
                .external_id(customer.code.clone())
                .card_id(card.card_id.clone()),
            )
            .await;
        if winner == Winner::Crm {
            let body = arp_body(card, &customer.code, &target.settings.fields);
            if let (Some(reference), Some(body)) = (arp.internal_reference, body) {
                match self.api.update_arp(target, reference, &body).await {
                    Ok(()) => {}
                    // Logo refused the CRM's values: reported, the run goes on.
                    Err(PortError::Rejected(why)) => run.report.problem(Problem {
                        field: format!("Arps[{}]", customer.code),
                        code: "logo_refused_update".into(),
                        message: why,
                    }),
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }

    /// A CRM customer into Logo under the code derived from its card: Logo is asked for that
    /// code first, so a create retried after a cut-off (or an unclear answer) is not repeated.
    async fn create_in_logo(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        card: &Card,
    ) -> Result<(), PortError> {
        let code = code_for(&target.settings.code_prefix, &card.card_id);
        run.report.created_in_logo.read += 1;
        let Some(body) = arp_body(card, &code, &target.settings.fields) else {
            run.report.created_in_logo.skipped += 1;
            self.skip(
                target,
                &mut run.report,
                "logo.arp.create",
                vec![FieldError::new(
                    format!("cards[{}].tax_id", card.card_id),
                    "invalid_tax_id",
                    "a CRM customer needs a valid VKN or TCKN to become a cari",
                )],
            )
            .await;
            return Ok(());
        };
        let found = self
            .api
            .arps(target, &ArpFilter::Code(code.clone()), 0, 1)
            .await?;
        if found.records.is_empty() {
            match self.api.create_arp(target, &body).await {
                Ok(()) => run.report.created_in_logo.created += 1,
                Err(PortError::Rejected(why)) => {
                    run.report.created_in_logo.skipped += 1;
                    run.report.problem(Problem {
                        field: format!("cards[{}]", card.card_id),
                        code: "logo_refused_create".into(),
                        message: why,
                    });
                    return Ok(());
                }
                // An unclear answer: the next attempt looks the code up before creating.
                Err(other) => return Err(other),
            }
        } else {
            run.report.created_in_logo.updated += 1;
        }
        self.store
            .link_logo_code(target.tenant, &card.card_id, &code)
            .await
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
    async fn skip(
        &self,
        target: LogoTarget<'_>,
        report: &mut SyncReport,
        operation: &str,
        errors: Vec<FieldError>,
    ) {
        let Some(first) = errors.first() else {
            return;
        };
        let message = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let record = first
            .field
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string();
        self.log
            .write(
                LogEntry::new(
                    target.tenant.clone(),
                    Integration::Logo,
                    LogDirection::Inbound,
                    operation,
                    LogResult::Error,
                    target.trace.clone(),
                )
                .error(&first.code, message)
                .external_id(record),
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

    async fn finish(
        &self,
        target: LogoTarget<'_>,
        mut run: SyncRun,
    ) -> Result<JobOutcome, PortError> {
        let now = self.log.clock().now();
        run.finished_at = Some(now);
        let version = run.version;
        if !self
            .checkpoint(target.tenant, &mut run, Some(version), false)
            .await?
        {
            return Ok(JobOutcome::Busy);
        }
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

    /// The card's cari and its invoices now (the card's "Logo'dan güncelle").
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
        let stored = self.store.run(target.tenant).await?;
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
            lease_owner: String::new(),
            lease_until: now,
            version: 0,
            invocations: 1,
            finished_at: None,
        };
        let found = self.api.arps(target, &filter, 0, 10).await?;
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

fn tax_key(customer: &LogoCustomer) -> IdentityKey {
    IdentityKey::TaxId(customer.tax_id.as_str().to_string())
}

/// The next Logo page of a phase, read while the current one was written (lost with the
/// invocation: it is read again).
#[derive(Default)]
struct Ahead {
    arps: Option<(u64, super::ports::LogoPage<LogoArp>)>,
    invoices: Option<(u64, super::ports::LogoPage<super::invoice::LogoInvoiceWire>)>,
}

/// Moves past a page of `n` records; the phase ends with the last page.
fn next_page(run: &mut SyncRun, n: usize, more: bool) {
    run.offset += n as u64;
    if !more || n == 0 {
        run.advance();
    }
}
