//! The sync job with in-memory ports and a scripted Logo: the lease, a run cut by its deadline,
//! a create whose answer was lost, and the report's counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::arp::LogoArp;
use super::customer::{code_for, logo_key};
use super::invoice::{InvoiceSummary, LogoInvoiceWire};
use super::job::{JobOutcome, LogoJob, LogoSync};
use super::ports::*;
use super::run::{Phase, SyncRun};
use super::stock::{LogoItemWire, Product};
use crate::error::PortError;
use crate::log::{Integration, IntegrationLog};
use crate::nightly::{lease, Runs};
use crate::page::{Page, PageRequest};
use crate::party::{Card, CustomerDetails, IdentityKey, PartyType};
use crate::ports::{Clock, CrmRepository};
use crate::tenant::{IntegrationSettings, LogoSettings, TenantConfig, TenantId};
use crate::testing::*;

const NOW: &str = "2026-11-26T23:00:00Z";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Logo as a list of records; a create can be made to land without an answer.
#[derive(Default)]
struct FakeLogo {
    arps: Mutex<Vec<LogoArp>>,
    invoices: Vec<Value>,
    creates: Mutex<Vec<Value>>,
    lose_create_answers: Mutex<u32>,
}

fn page<T: Clone>(all: &[T], offset: u64, limit: u32) -> LogoPage<T> {
    let start = (offset as usize).min(all.len());
    let end = (start + limit as usize).min(all.len());
    LogoPage {
        records: all[start..end].to_vec(),
        more: end < all.len(),
    }
}

#[async_trait]
impl LogoApi for FakeLogo {
    async fn arps(
        &self,
        _: LogoTarget<'_>,
        filter: &ArpFilter,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoArp>, PortError> {
        let all = lock(&self.arps).clone();
        let found: Vec<LogoArp> = match filter {
            ArpFilter::ChangedSince(None) => all,
            ArpFilter::ChangedSince(Some(_)) => vec![],
            ArpFilter::Code(code) => all
                .into_iter()
                .filter(|a| a.code.as_deref() == Some(code))
                .collect(),
            ArpFilter::TaxNumber(tax) => all
                .into_iter()
                .filter(|a| a.tax_id.as_deref() == Some(tax))
                .collect(),
        };
        Ok(page(&found, offset, limit))
    }
    async fn create_arp(&self, _: LogoTarget<'_>, body: &Value) -> Result<(), PortError> {
        lock(&self.creates).push(body.clone());
        lock(&self.arps).push(serde_json::from_value(body.clone()).unwrap());
        let mut lose = lock(&self.lose_create_answers);
        if *lose > 0 {
            *lose -= 1;
            return Err(PortError::OutcomeUnknown("timed out".into()));
        }
        Ok(())
    }
    async fn update_arp(&self, _: LogoTarget<'_>, _: i64, _: &Value) -> Result<(), PortError> {
        Ok(())
    }
    async fn invoices(
        &self,
        _: LogoTarget<'_>,
        filter: &InvoiceFilter,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoInvoiceWire>, PortError> {
        let all: Vec<LogoInvoiceWire> = match filter {
            InvoiceFilter::ChangedSince(Some(_)) => vec![],
            _ => self
                .invoices
                .iter()
                .map(|v| serde_json::from_str(&v.to_string()).unwrap())
                .collect(),
        };
        Ok(page(&all, offset, limit))
    }
    async fn items(
        &self,
        _: LogoTarget<'_>,
        _: Option<DateTime<Utc>>,
        _: u64,
        _: u32,
    ) -> Result<LogoPage<LogoItemWire>, PortError> {
        Ok(LogoPage {
            records: vec![],
            more: false,
        })
    }
    async fn on_hand(
        &self,
        _: LogoTarget<'_>,
        _: &[i64],
    ) -> Result<HashMap<i64, String>, PortError> {
        Ok(HashMap::new())
    }
}

/// The sync's store over [`MemoryCrm`] (cards and claims) plus the run, invoices, products.
struct MemoryLogoStore {
    crm: Arc<MemoryCrm>,
    reports: Mutex<Vec<SyncRun>>,
    invoices: Mutex<HashMap<String, InvoiceSummary>>,
}

#[async_trait]
impl LogoStore for MemoryLogoStore {
    async fn claimed(
        &self,
        tenant: &TenantId,
        keys: &[IdentityKey],
    ) -> Result<HashMap<String, String>, PortError> {
        Ok(keys
            .iter()
            .filter_map(|k| Some((k.key(), self.crm.claimant(tenant, k)?)))
            .collect())
    }
    async fn put_customers(
        &self,
        tenant: &TenantId,
        writes: &[CustomerWrite],
    ) -> Result<(), PortError> {
        for w in writes {
            self.crm.upsert_card(tenant, &w.card, &w.claims);
        }
        Ok(())
    }
    async fn put_invoices(&self, _: &TenantId, writes: &[InvoiceWrite]) -> Result<(), PortError> {
        for w in writes {
            let i = &w.invoice;
            lock(&self.invoices).insert(
                i.number.clone(),
                InvoiceSummary {
                    number: i.number.clone(),
                    date: i.date,
                    gross: i.gross,
                    cancelled: i.cancelled,
                },
            );
        }
        Ok(())
    }
    async fn put_products(&self, _: &TenantId, _: &[Product]) -> Result<(), PortError> {
        Ok(())
    }
    async fn customers_without_logo_code(
        &self,
        tenant: &TenantId,
        _: PageRequest,
    ) -> Result<Page<Card>, PortError> {
        Ok(Page::last(
            self.crm
                .cards(tenant)
                .into_iter()
                .filter(super::customer::awaits_logo_code)
                .collect(),
        ))
    }
    async fn link_logo_code(
        &self,
        tenant: &TenantId,
        card_id: &str,
        code: &str,
    ) -> Result<(), PortError> {
        let mut card = self.crm.card(tenant, card_id).await?.unwrap();
        card.external_ids.insert("logo".into(), code.into());
        self.crm.upsert_card(tenant, &card, &[logo_key(code)]);
        Ok(())
    }
    async fn invoices(
        &self,
        _: &TenantId,
        keys: &[(String, String)],
    ) -> Result<HashMap<String, InvoiceSummary>, PortError> {
        let stored = lock(&self.invoices);
        Ok(keys
            .iter()
            .filter_map(|(_, n)| Some((n.clone(), stored.get(n)?.clone())))
            .collect())
    }
    async fn stock(
        &self,
        _: &TenantId,
        _: &[String],
    ) -> Result<HashMap<String, Decimal>, PortError> {
        Ok(HashMap::new())
    }
    async fn save_report(&self, _: &TenantId, run: &SyncRun) -> Result<(), PortError> {
        lock(&self.reports).push(run.clone());
        Ok(())
    }
    async fn reports(&self, _: &TenantId, limit: usize) -> Result<Vec<SyncRun>, PortError> {
        Ok(lock(&self.reports)
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }
}

struct World {
    sync: LogoSync,
    logo: Arc<FakeLogo>,
    store: Arc<MemoryLogoStore>,
    crm: Arc<MemoryCrm>,
    clock: Arc<FixedClock>,
    tenant: TenantId,
}

fn cari(n: usize) -> Vec<LogoArp> {
    // Valid VKNs (checksums) for a handful of companies.
    let vkns = [
        "4540536920",
        "1234567808",
        "8300084864",
        "6120076427",
        "3770024574",
    ];
    (0..n)
        .map(|i| LogoArp {
            internal_reference: Some(i as i64 + 1),
            code: Some(format!("120.01.{i:03}")),
            title: Some(format!("Firma {i} A.Ş.")),
            tax_id: vkns.get(i).map(|v| v.to_string()),
            ..LogoArp::default()
        })
        .collect()
}

fn world(customers: usize) -> World {
    let tenant = TenantId::parse("acme").unwrap();
    let tenants = Arc::new(MemoryTenants::default());
    let mut settings = LogoSettings::new("1", Some("1"));
    settings.page_size = 2;
    settings.sync_stock = false;
    tenants.add(
        TenantConfig {
            tenant_id: tenant.clone(),
            name: "Acme".into(),
            default_owner: None,
            integrations: IntegrationSettings {
                logo: Some(settings),
                ..IntegrationSettings::default()
            },
            created_at: Utc::now(),
        },
        &[],
        None,
    );
    let clock = Arc::new(FixedClock::at(NOW));
    let crm = Arc::new(MemoryCrm::default());
    let store = Arc::new(MemoryLogoStore {
        crm: crm.clone(),
        reports: Mutex::new(vec![]),
        invoices: Mutex::new(HashMap::new()),
    });
    let invoices = (0..customers)
        .map(|i| {
            json!({ "NUMBER": format!("SF-{i}"), "DATE": "2026-11-20", "ARP_CODE": format!("120.01.{i:03}"),
                "TOTAL_NET": 100.10, "TOTAL_VAT": 20.02, "TOTAL_GROSS": 120.12 })
        })
        .collect();
    let logo = Arc::new(FakeLogo {
        arps: Mutex::new(cari(customers)),
        invoices,
        ..FakeLogo::default()
    });
    let log = IntegrationLog::new(
        Arc::new(MemoryLogSink::default()),
        clock.clone(),
        Arc::new(SequentialIds::default()),
        30,
    );
    World {
        sync: LogoSync {
            tenants,
            api: logo.clone(),
            store: store.clone(),
            crm: crm.clone(),
            log,
            runs: Runs {
                store: Arc::new(MemoryRuns::default()),
                integration: Integration::Logo,
                lease: lease(120),
            },
        },
        logo,
        store,
        crm,
        clock,
        tenant,
    }
}

fn job(w: &World) -> LogoJob {
    LogoJob {
        tenant_id: w.tenant.clone(),
        full: false,
        refresh_card: None,
        trace_id: "trace-1".into(),
    }
}

fn later() -> Instant {
    Instant::now() + StdDuration::from_secs(3600)
}

#[tokio::test]
async fn a_run_cut_by_its_deadline_continues_where_it_stopped_and_counts_each_record_once() {
    let w = world(5);
    // Out of time at once: one page per invocation.
    let mut invocations = 0;
    loop {
        invocations += 1;
        match w.sync.run(&job(&w), Instant::now()).await.unwrap() {
            JobOutcome::OutOfTime(run) => {
                assert!(run.lease.lease_until <= w.clock.now(), "released")
            }
            JobOutcome::Finished(run) => {
                assert_eq!(run.lease.invocations, invocations);
                let r = &run.report;
                assert_eq!((r.customers.read, r.customers.created), (5, 5));
                assert_eq!((r.invoices.read, r.invoices.created), (5, 5));
                assert!(r.reconciliation.matches(), "{:?}", r.reconciliation);
                assert_eq!(
                    r.reconciliation.invoice_totals().crm_gross,
                    Decimal::new(60060, 2)
                );
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(invocations < 50);
    }
    assert!(invocations > 5, "{invocations}");
    assert_eq!(w.crm.cards(&w.tenant).len(), 5);
}

#[tokio::test]
async fn a_second_invocation_stands_back_until_the_lease_runs_out() {
    let w = world(3);
    let held = w.sync.run(&job(&w), Instant::now()).await.unwrap();
    assert!(matches!(held, JobOutcome::OutOfTime(_)));
    // A killed invocation keeps its lease: make the stored run look held.
    let mut run: SyncRun = w.sync.runs.current(&w.tenant).await.unwrap().unwrap();
    let runs = &w.sync.runs;
    assert!(runs
        .checkpoint(&w.tenant, &mut run, w.clock.now(), true)
        .await
        .unwrap());
    assert!(matches!(
        w.sync.run(&job(&w), later()).await.unwrap(),
        JobOutcome::Busy
    ));
    w.clock.advance(Duration::seconds(121));
    match w.sync.run(&job(&w), later()).await.unwrap() {
        JobOutcome::Finished(run) => assert_eq!(run.report.customers.read, 3),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_by_its_code_and_not_sent_again() {
    let w = world(1);
    let mut card = Card::person_customer("crm-7", "Anadolu Bilişim A.Ş.", vec![], w.clock.now());
    card.customer = Some(CustomerDetails {
        party_type: PartyType::Company,
        tax_id: Some("3770024574".into()),
        source: None,
    });
    w.crm.upsert_card(&w.tenant, &card, &[]);
    *lock(&w.logo.lose_create_answers) = 1;
    // The POST landed; its answer did not: the job fails and its message is retried.
    let failed = w.sync.run(&job(&w), later()).await.unwrap_err();
    assert!(matches!(failed, PortError::OutcomeUnknown(_)));
    let stored = current(&w).await;
    assert_eq!(stored.phase, Phase::CreateInLogo);
    assert!(
        stored.lease.lease_until <= w.clock.now(),
        "released for the retry"
    );
    match w.sync.run(&job(&w), later()).await.unwrap() {
        JobOutcome::Finished(run) => {
            assert_eq!(run.report.created_in_logo.updated, 1, "found, not created");
            assert_eq!(
                (run.report.created_in_logo.read, run.report.customers.read),
                (1, 1),
                "the failed attempt's counts did not outlive it"
            );
            assert_eq!(run.report.reconciliation.crm_only, 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lock(&w.logo.creates).len(), 1, "one POST");
    let linked = w.crm.card(&w.tenant, "crm-7").await.unwrap().unwrap();
    assert_eq!(linked.external_ids["logo"], code_for("CRM.", "crm-7"));
}

#[tokio::test]
async fn the_next_run_reads_from_the_last_runs_start_and_keeps_its_report() {
    let w = world(2);
    let first = match w.sync.run(&job(&w), later()).await.unwrap() {
        JobOutcome::Finished(run) => run,
        other => panic!("{other:?}"),
    };
    assert!(first.full, "the first run reads everything");
    w.clock.advance(Duration::days(1));
    let second = match w.sync.run(&job(&w), later()).await.unwrap() {
        JobOutcome::Finished(run) => run,
        other => panic!("{other:?}"),
    };
    assert_eq!(second.since, Some(first.started_at - Duration::minutes(10)));
    assert_eq!(second.last_run, Some(first.started_at));
    assert_eq!(second.report.customers.read, 0, "nothing changed in Logo");
    assert!(second.report.reconciliation.matches());
    assert_eq!(w.store.reports(&w.tenant, 5).await.unwrap().len(), 2);
    let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    assert_eq!(
        second.report.reconciliation.invoice_days[&day].logo_count,
        2
    );
}

async fn current(w: &World) -> SyncRun {
    w.sync.runs.current(&w.tenant).await.unwrap().unwrap()
}
