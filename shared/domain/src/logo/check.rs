//! The reconciliation's phases: every cari, the last 30 days' invoices and every product's
//! stock, checked against the CRM after the sync's own phases.

use chrono::Duration;

use super::ahead::Ahead;
use super::customer::logo_key;
use super::job::{next_page, LogoSync, CHECK_DAYS};
use super::ports::{ArpFilter, InvoiceFilter, LogoTarget};
use super::run::{StockDifference, SyncRun, LISTED};
use super::stock::Product;
use crate::error::{FieldError, PortError};
use crate::page::PageRequest;
use crate::party::IdentityKey;
use crate::tenant::TenantId;

impl LogoSync {
    /// Every cari of Logo: is it on a CRM card?
    pub(super) async fn check_customers(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        ahead: &mut Ahead,
        limit: u32,
    ) -> Result<(), PortError> {
        if run.offset == 0 && run.cursor.is_none() {
            self.count_crm_only(target.tenant, run).await?;
        }
        let filter = ArpFilter::ChangedSince(None);
        let read = |offset| self.api.arps(target, &filter, offset, limit);
        let page = ahead.arps.page(run.offset, read).await?;
        let codes: Vec<String> = page
            .records
            .iter()
            .filter_map(|a| a.code.as_deref().map(str::trim))
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let keys: Vec<IdentityKey> = codes.iter().map(|c| logo_key(c)).collect();
        let (n, more) = (page.records.len(), page.more);
        let claimed = self.store.claimed(target.tenant, &keys);
        let claimed = ahead
            .arps
            .alongside((run.offset, n, more), claimed, read)
            .await?;
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
        Ok(())
    }

    /// The period's invoices of Logo against the CRM's copies, one by one and per day.
    pub(super) async fn check_invoices(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        ahead: &mut Ahead,
        limit: u32,
    ) -> Result<(), PortError> {
        let from = *run
            .report
            .reconciliation
            .invoices_from
            .get_or_insert_with(|| {
                crate::time::istanbul_today(&run.started_at) - Duration::days(CHECK_DAYS - 1)
            });
        let filter = InvoiceFilter::DatedFrom(from);
        let read = |offset| self.api.invoices(target, &filter, offset, limit);
        let page = ahead.invoices.page(run.offset, read).await?;
        let (n, more) = (page.records.len(), page.more);
        // Unreadable ones were reported by the sync step.
        let logo: Vec<_> = page
            .records
            .iter()
            .filter_map(|w| w.read().ok())
            .filter(|i| i.date >= from)
            .collect();
        let codes: Vec<IdentityKey> = logo.iter().map(|i| logo_key(&i.arp_code)).collect();
        let crm = async {
            let cards = self.store.claimed(target.tenant, &codes).await?;
            let keys: Vec<(String, String)> = logo
                .iter()
                .filter_map(|i| {
                    let card = cards.get(&logo_key(&i.arp_code).key())?;
                    Some((card.clone(), i.number.clone()))
                })
                .collect();
            self.store.invoices(target.tenant, &keys).await
        };
        let crm = ahead
            .invoices
            .alongside((run.offset, n, more), crm, read)
            .await?;
        run.report.reconciliation.compare_invoices(&logo, &crm);
        next_page(run, n, more);
        Ok(())
    }

    /// Every product's stock in Logo against the CRM's product card.
    pub(super) async fn check_stock(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        limit: u32,
    ) -> Result<(), PortError> {
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
        Ok(())
    }

    /// A page of material cards read with their stock on hand (one query for the page).
    pub(super) async fn stock_page(
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
    pub(super) async fn count_crm_only(
        &self,
        tenant: &TenantId,
        run: &mut SyncRun,
    ) -> Result<(), PortError> {
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
}
