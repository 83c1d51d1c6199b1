//! What the sync needs from Logo and from the CRM's store.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::arp::LogoArp;
use super::invoice::{InvoiceSummary, LogoInvoice, LogoInvoiceWire};
use super::run::SyncRun;
use super::stock::{LogoItemWire, Product};
use crate::envelope::TraceId;
use crate::error::PortError;
use crate::page::{Page, PageRequest};
use crate::party::{Card, IdentityKey};
use crate::tenant::{LogoSettings, TenantId};

/// Whose Logo, and the trace the calls are logged under.
#[derive(Clone, Copy)]
pub struct LogoTarget<'a> {
    pub tenant: &'a TenantId,
    pub settings: &'a LogoSettings,
    pub trace: &'a TraceId,
}

/// One page of a Logo list.
#[derive(Debug, Clone)]
pub struct LogoPage<T> {
    pub records: Vec<T>,
    /// Whether Logo has records past this page.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArpFilter {
    /// Changed after this moment (`None`: every cari).
    ChangedSince(Option<DateTime<Utc>>),
    Code(String),
    TaxNumber(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceFilter {
    ChangedSince(Option<DateTime<Utc>>),
    /// Dated on or after this day (the reconciliation's 30 days).
    DatedFrom(NaiveDate),
    /// One cari's invoices (the one-customer refresh).
    Customer(String),
}

/// Logo's REST service, for one tenant at a time.
#[async_trait]
pub trait LogoApi: Send + Sync {
    async fn arps(
        &self,
        target: LogoTarget<'_>,
        filter: &ArpFilter,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoArp>, PortError>;
    /// Creates a cari; the body carries the CRM-assigned code.
    async fn create_arp(&self, target: LogoTarget<'_>, body: &Value) -> Result<(), PortError>;
    /// Overwrites a cari's fields (the CRM won a conflict).
    async fn update_arp(
        &self,
        target: LogoTarget<'_>,
        reference: i64,
        body: &Value,
    ) -> Result<(), PortError>;
    async fn invoices(
        &self,
        target: LogoTarget<'_>,
        filter: &InvoiceFilter,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoInvoiceWire>, PortError>;
    async fn items(
        &self,
        target: LogoTarget<'_>,
        since: Option<DateTime<Utc>>,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoItemWire>, PortError>;
    /// Stock on hand over all warehouses, by item reference, as Logo's text.
    async fn on_hand(
        &self,
        target: LogoTarget<'_>,
        item_refs: &[i64],
    ) -> Result<HashMap<i64, String>, PortError>;
}

/// A customer card as the sync writes it, with the exclusive keys it claims (a new card's tax
/// number and Logo code; an existing card's Logo code when it had none).
#[derive(Debug, Clone)]
pub struct CustomerWrite {
    pub card: Card,
    pub claims: Vec<IdentityKey>,
}

#[derive(Debug, Clone)]
pub struct InvoiceWrite {
    pub card_id: String,
    pub invoice: LogoInvoice,
}

/// The sync's side of the CRM store. Writes are batched (25 items a request) and idempotent
/// by their keys: a page written twice leaves the same items.
#[async_trait]
pub trait LogoStore: Send + Sync {
    /// The card each exclusive key (tax number, Logo code) is claimed by, keyed by
    /// [`IdentityKey::key`].
    async fn claimed(
        &self,
        tenant: &TenantId,
        keys: &[IdentityKey],
    ) -> Result<HashMap<String, String>, PortError>;
    async fn put_customers(
        &self,
        tenant: &TenantId,
        writes: &[CustomerWrite],
    ) -> Result<(), PortError>;
    async fn put_invoices(
        &self,
        tenant: &TenantId,
        writes: &[InvoiceWrite],
    ) -> Result<(), PortError>;
    async fn put_products(&self, tenant: &TenantId, products: &[Product]) -> Result<(), PortError>;
    /// Customer cards with a tax number and no Logo code, oldest first.
    async fn customers_without_logo_code(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> Result<Page<Card>, PortError>;
    /// Puts the Logo code on the card and claims it for the card, in one transaction.
    async fn link_logo_code(
        &self,
        tenant: &TenantId,
        card_id: &str,
        code: &str,
    ) -> Result<(), PortError>;
    /// The CRM's copies of these invoices (card, number), by number; missing ones left out.
    async fn invoices(
        &self,
        tenant: &TenantId,
        keys: &[(String, String)],
    ) -> Result<HashMap<String, InvoiceSummary>, PortError>;
    /// Stock on hand of the CRM's product cards, by code (missing ones left out).
    async fn stock(
        &self,
        tenant: &TenantId,
        codes: &[String],
    ) -> Result<HashMap<String, Decimal>, PortError>;
    /// Keeps a finished run's report (newest first when listed).
    async fn save_report(&self, tenant: &TenantId, run: &SyncRun) -> Result<(), PortError>;
    async fn reports(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SyncRun>, PortError>;
}
