//! End to end against the emulator and the Logo sandbox (over HTTP): the nightly run, bad
//! records, a run cut off and resumed, the both-sides-changed rule, CRM → Logo creates that
//! survive a retry, the one-customer refresh, and money that reconciles to the kuruş.

use std::time::{Duration, Instant};

use logo_sandbox::Sandbox;
use onecrm_domain::logo::customer::{card_id_for, code_for, logo_key};
use onecrm_domain::logo::job::LogoJob;
use onecrm_domain::logo::ports::{LogoStore, LogoTarget};
use onecrm_domain::logo::run::Phase;
use onecrm_domain::logo::worker::envelope;
use onecrm_domain::party::{Card, CustomerDetails, IdentityKey, PartyType};
use onecrm_domain::ports::{CrmRepository, TenantDirectory};
use onecrm_domain::tax_id::TaxId;
use onecrm_e2e::*;
use rust_decimal::Decimal;
use serde_json::json;

/// The card carries the code, and Logo got one create for it.
async fn linked_once(
    stack: &Stack,
    tenant: &TestTenant,
    sandbox: &Sandbox,
    card: &Card,
    code: &str,
) {
    assert_eq!(sandbox.stats()["creates_by_code"][code], 1);
    let linked = stack
        .crm()
        .card(&tenant.id, &card.card_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.external_ids["logo"], code);
}

/// The card's refresh ("Logo'dan güncelle" / "Logo'ya gönder").
fn refresh(tenant: &TestTenant, card_id: &str) -> onecrm_domain::envelope::Envelope {
    let job = LogoJob {
        tenant_id: tenant.id.clone(),
        full: false,
        refresh_card: Some(card_id.to_string()),
        trace_id: uuid::Uuid::now_v7().to_string(),
    };
    envelope(&job, chrono::Utc::now())
}

async fn report(stack: &Stack, tenant: &TestTenant) -> onecrm_domain::logo::run::SyncRun {
    stack.crm().reports(&tenant.id, 1).await.unwrap().remove(0)
}

/// A CRM customer with a tax number and no Logo code.
async fn crm_customer(stack: &Stack, tenant: &TestTenant, id: &str, vkn: &str) -> Card {
    let mut card = Card::person_customer(id, "Anadolu Bilişim A.Ş.", vec![], chrono::Utc::now());
    card.customer = Some(CustomerDetails {
        party_type: PartyType::Company,
        tax_id: Some(vkn.into()),
        source: None,
    });
    stack.crm().create_card(&tenant.id, &card).await.unwrap();
    card
}

#[tokio::test]
async fn a_nightly_run_brings_cari_invoices_and_stock_and_both_sides_agree_to_the_kurus() {
    let LogoWorld {
        stack,
        tenant,
        sandbox,
        app,
        ..
    } = logo_world((40, 12, 0), 60, |s| s.page_size = 15).await;
    let pending = crm_customer(&stack, &tenant, "crm-1", "4540536920").await;
    run_to_end(&app, job(&tenant, false)).await;

    let run = report(&stack, &tenant).await;
    let r = &run.report;
    assert_eq!(
        (r.customers.read, r.customers.created, r.customers.skipped),
        (40, 40, 0)
    );
    assert_eq!(
        r.created_in_logo.created, 1,
        "the CRM customer became a cari"
    );
    assert_eq!(
        (r.invoices.read, r.invoices.created, r.invoices.skipped),
        (120, 120, 0)
    );
    assert_eq!((r.products.read, r.products.updated), (12, 12));
    assert_eq!(r.problems, 0, "{:?}", r.problems_listed);
    let check = &r.reconciliation;
    assert_eq!(
        (
            check.logo_customers,
            check.logo_customers_in_crm,
            check.crm_only
        ),
        (41, 41, 0)
    );
    assert!(
        check.invoice_mismatches().is_empty(),
        "{:?}",
        check.invoice_days
    );
    let totals = check.invoice_totals();
    assert!(totals.logo_count > 0 && totals.logo_gross == totals.crm_gross);
    assert_eq!(check.stock_differences, 0);
    assert!(check.matches());

    // The cari is a customer card, found by its tax number and its phone like any other.
    let code = Sandbox::code(3);
    let card_id = card_id_for(&code);
    let crm = stack.crm();
    let card = crm.card(&tenant.id, &card_id).await.unwrap().unwrap();
    assert_eq!(card.external_ids["logo"], code);
    let tax = card.customer.as_ref().unwrap().tax_id.clone().unwrap();
    assert!(TaxId::parse(&tax).is_ok());
    let found = crm
        .find_cards(&tenant.id, &IdentityKey::TaxId(tax))
        .await
        .unwrap();
    assert_eq!(found[0].card_id, card_id);
    let phone = IdentityKey::Phone(card.phones[0].clone());
    assert!(crm
        .find_cards(&tenant.id, &phone)
        .await
        .unwrap()
        .iter()
        .any(|c| c.card_id == card_id));
    // Its three invoices, exact: net + VAT = gross, and a dollar invoice keeps its rate.
    let invoices = crm.invoices_of(&tenant.id, &card_id).await.unwrap();
    assert_eq!(invoices.len(), 3);
    for invoice in &invoices {
        assert_eq!(invoice.net + invoice.vat, invoice.gross);
        assert_eq!(invoice.lines.len(), 1);
    }
    let product = crm.product(&tenant.id, "STK-00003").await.unwrap().unwrap();
    assert_eq!(product.unit.as_deref(), Some("ADET"));
    // The CRM customer has its Logo code back, and Logo has it once.
    let linked = crm
        .card(&tenant.id, &pending.card_id)
        .await
        .unwrap()
        .unwrap();
    let crm_code = code_for("CRM.", &pending.card_id);
    assert_eq!(linked.external_ids["logo"], crm_code);
    assert_eq!(sandbox.stats()["creates_by_code"][&crm_code], 1);

    // The next night: only the cari the CRM created during the last run reads as changed, the
    // rest only for the checks; a run with an expired token logs in again.
    sandbox.expire_tokens();
    run_to_end(&app, job(&tenant, false)).await;
    let second = report(&stack, &tenant).await;
    assert_ne!(second.run_id, run.run_id);
    assert_eq!(
        (second.report.customers.read, second.report.invoices.read),
        (1, 0)
    );
    assert!(second.report.reconciliation.matches());
    assert_eq!(sandbox.stats()["logins"], 2);
    let runs = stack
        .integration_logs(&tenant.id, onecrm_domain::log::Integration::Logo)
        .await;
    assert_eq!(
        runs.iter()
            .filter(|r| r.operation == "logo.sync.run")
            .count(),
        2
    );
}

#[tokio::test]
async fn bad_records_are_skipped_with_the_record_and_field_named_and_the_run_goes_on() {
    let LogoWorld {
        stack, tenant, app, ..
    } = logo_world((30, 10, 25), 60, |_| {}).await;
    // Every 25th record is bad: cari 7 (VKN checksum), 13 (no tax number), invoices 11, 36, 61
    // (TOTAL_NET "on bin"), item 5 (VAT "yirmi").
    run_to_end(&app, job(&tenant, true)).await;

    let r = report(&stack, &tenant).await.report;
    assert_eq!((r.customers.read, r.customers.skipped), (30, 2));
    assert_eq!(r.products.skipped, 1);
    // 4 unreadable invoices (11, 36, 61, 86) and the 6 of the two skipped cari (unknown
    // customer: invoices 21-23 and 39-41); none overlaps.
    assert_eq!((r.invoices.read, r.invoices.skipped), (90, 10));
    let fields: Vec<&str> = r.problems_listed.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"Arps[120.01.000007].TAX_ID"), "{fields:?}");
    assert!(fields.contains(&"Arps[120.01.000013].TAX_ID"), "{fields:?}");
    assert!(
        fields.contains(&"salesInvoices[SF00000011].TOTAL_NET"),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"salesInvoices[SF00000021].ARP_CODE"),
        "{fields:?}"
    );
    assert!(fields.contains(&"items[STK-00005].VAT"), "{fields:?}");
    let check = &r.reconciliation;
    assert_eq!(check.logo_customers - check.logo_customers_in_crm, 2);
    assert_eq!(check.missing_in_crm, ["120.01.000007", "120.01.000013"]);
    assert!(!check.matches());
    let errors = stack.error_logs(&tenant.id, "invalid_vkn").await;
    assert!(errors.iter().any(|e| e
        .error_message
        .as_deref()
        .unwrap_or("")
        .contains("Arps[120.01.000007].TAX_ID")));
    assert!(!stack
        .error_logs(&tenant.id, "unknown_customer")
        .await
        .is_empty());
}

#[tokio::test]
async fn a_run_cut_off_anywhere_resumes_from_its_checkpoint_and_writes_nothing_twice() {
    let LogoWorld {
        stack,
        tenant,
        queue,
        sandbox,
        app,
        ..
    } = logo_world((200, 5, 0), 1, |s| s.page_size = 10).await;
    let pending = crm_customer(&stack, &tenant, "crm-cut", "4540536920").await;
    let first = job(&tenant, false);

    // Killed mid-flight (the future dropped wherever it was), twice.
    for _ in 0..2 {
        let cut = tokio::time::timeout(
            Duration::from_millis(400),
            app.worker()
                .handle(first.clone(), Instant::now() + Duration::from_secs(3600)),
        )
        .await;
        assert!(cut.is_err(), "the run was cut before its end");
        // The lease is still the dead invocation's: another one stands back...
        let stored: onecrm_domain::logo::run::SyncRun =
            sync(&app).runs.current(&tenant.id).await.unwrap().unwrap();
        assert_ne!(stored.phase, Phase::Done);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // ...then, out of time by its own deadline, continues through the queue.
    app.worker()
        .handle(first.clone(), Instant::now())
        .await
        .unwrap();
    let continuation = queue.peek_envelope().await;
    assert_eq!(continuation.tenant_id, tenant.id);
    run_to_end(&app, continuation).await;

    let run = report(&stack, &tenant).await;
    assert!(run.lease.invocations >= 4, "{}", run.lease.invocations);
    let r = &run.report;
    assert_eq!(r.customers.read, 200, "each cari counted once");
    assert_eq!(r.customers.created + r.customers.updated, 200);
    assert_eq!(r.invoices.created, 600);
    assert!(r.reconciliation.matches(), "{:?}", r.reconciliation);
    let keys: Vec<IdentityKey> = (0..200).map(|i| logo_key(&Sandbox::code(i))).collect();
    let claimed = stack.crm().claimed(&tenant.id, &keys).await.unwrap();
    assert_eq!(claimed.len(), 200);
    for (key, card) in &claimed {
        let code = key.strip_prefix("EXT#logo#").unwrap();
        assert_eq!(card, &card_id_for(code), "one card per cari");
    }
    let crm_code = code_for("CRM.", &pending.card_id);
    assert_eq!(
        sandbox.stats()["creates_by_code"][&crm_code],
        1,
        "one cari however often cut"
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_linked_not_made_twice() {
    let LogoWorld {
        stack,
        tenant,
        sandbox,
        app,
        ..
    } = logo_world((3, 1, 0), 60, |_| {}).await;
    let card = crm_customer(&stack, &tenant, "crm-lost", "4540536920").await;
    // The first attempt's POST reached Logo; its answer never came back.
    let code = code_for("CRM.", &card.card_id);
    let config = stack.crm().tenant(&tenant.id).await.unwrap().unwrap();
    let settings = config.integrations.logo.unwrap();
    let trace = onecrm_domain::envelope::TraceId::new("t-lost");
    let target = LogoTarget {
        tenant: &tenant.id,
        settings: &settings,
        trace: &trace,
    };
    let body = onecrm_domain::logo::customer::arp_body(&card, &code, &settings.fields).unwrap();
    sync(&app).api.create_arp(target, &body).await.unwrap();

    run_to_end(&app, job(&tenant, false)).await;
    // The nightly read of Logo's cari finds it by its tax number before anything is created.
    let r = report(&stack, &tenant).await.report;
    assert_eq!(r.created_in_logo.created, 0);
    linked_once(&stack, &tenant, &sandbox, &card, &code).await;
    assert_eq!(r.reconciliation.crm_only, 0);
}

#[tokio::test]
async fn both_sides_changed_follows_the_tenants_rule_and_is_reported() {
    let LogoWorld {
        stack,
        tenant,
        queue,
        url,
        sandbox,
        app,
    } = logo_world((5, 1, 0), 60, |_| {}).await;
    run_to_end(&app, job(&tenant, false)).await;
    let code = Sandbox::code(2);
    let card_id = card_id_for(&code);
    let crm = stack.crm();

    let edit_both = |title: &'static str, crm_title: &'static str| {
        let (crm, sandbox, tenant_id, card_id, code) =
            (&crm, &sandbox, &tenant.id, &card_id, &code);
        async move {
            // Logo's times have whole seconds.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let mut card = crm.card(tenant_id, card_id).await.unwrap().unwrap();
            card.display_name = crm_title.into();
            card.updated_at = chrono::Utc::now();
            crm.put_customers(
                tenant_id,
                &[onecrm_domain::logo::ports::CustomerWrite {
                    card,
                    claims: vec![],
                }],
            )
            .await
            .unwrap();
            let fields = json!({ "TITLE": title }).as_object().unwrap().clone();
            assert!(sandbox.touch(code, fields));
        }
    };
    // Logo wins by default: accounting's record is the legal one.
    edit_both("YENİ UNVAN A.Ş.", "CRM'de düzeltilen unvan").await;
    run_to_end(&app, job(&tenant, false)).await;
    let r = report(&stack, &tenant).await.report;
    assert_eq!(
        (r.conflicts, r.conflicts_listed[0].winner.as_str()),
        (1, "logo")
    );
    assert_eq!(r.customers.read, 1, "only what changed since the last run");
    assert_eq!(
        crm.card(&tenant.id, &card_id)
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "YENİ UNVAN A.Ş."
    );
    assert!(!stack
        .error_logs(&tenant.id, "both_sides_changed")
        .await
        .is_empty());

    // The tenant switches to crm_wins: the card keeps the CRM's title and Logo gets it.
    stack
        .logo(&tenant, &url, |s| {
            s.conflict_rule = onecrm_domain::logo::arp::ConflictRule::CrmWins
        })
        .await;
    let app = stack.logo_sync(&queue, 60);
    edit_both("BAŞKA UNVAN A.Ş.", "Satışın unvanı").await;
    run_to_end(&app, job(&tenant, false)).await;
    let r = report(&stack, &tenant).await.report;
    assert_eq!(
        (r.conflicts, r.conflicts_listed[0].winner.as_str()),
        (1, "crm")
    );
    assert_eq!(
        crm.card(&tenant.id, &card_id)
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "Satışın unvanı"
    );
    assert_eq!(
        sandbox.stats()["updates"],
        1,
        "the CRM's values went to Logo"
    );
}

#[tokio::test]
async fn the_card_button_refreshes_one_customer_and_its_invoices_now() {
    let LogoWorld {
        stack,
        tenant,
        sandbox,
        app,
        ..
    } = logo_world((4, 1, 0), 60, |_| {}).await;
    run_to_end(&app, job(&tenant, false)).await;
    let code = Sandbox::code(1);
    assert!(sandbox.touch(
        &code,
        json!({ "TITLE": "GÜNCEL UNVAN LTD. ŞTİ." })
            .as_object()
            .unwrap()
            .clone()
    ));
    run_to_end(&app, refresh(&tenant, &card_id_for(&code))).await;
    let card = stack
        .crm()
        .card(&tenant.id, &card_id_for(&code))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(card.display_name, "GÜNCEL UNVAN LTD. ŞTİ.");
    let invoices = stack
        .crm()
        .invoices_of(&tenant.id, &card.card_id)
        .await
        .unwrap();
    assert_eq!(invoices.len(), 3);
    let gross: Decimal = invoices.iter().map(|i| i.gross).sum();
    assert!(gross > Decimal::ZERO);
}

#[tokio::test]
async fn the_send_to_logo_button_creates_the_cari_now_and_the_samples_are_jobs() {
    let LogoWorld {
        stack,
        tenant,
        sandbox,
        app,
        ..
    } = logo_world((2, 1, 0), 60, |_| {}).await;
    let card = crm_customer(&stack, &tenant, "crm-send", "4540536920").await;
    run_to_end(&app, refresh(&tenant, &card.card_id)).await;
    let code = code_for("CRM.", &card.card_id);
    linked_once(&stack, &tenant, &sandbox, &card, &code).await;

    // The committed samples are jobs of the demo tenant (the refresh names cari 120.01.000001).
    for name in ["nightly-job", "full-resync-job", "refresh-card"] {
        let path = events_dir().join(format!("logo-sync/{name}.message.json"));
        let envelope =
            onecrm_domain::envelope::Envelope::from_json(&std::fs::read_to_string(path).unwrap())
                .unwrap();
        let job: LogoJob = serde_json::from_value(envelope.payload).unwrap();
        assert_eq!(job.tenant_id.as_str(), "demo");
        if let Some(card) = job.refresh_card {
            assert_eq!(card, card_id_for(&Sandbox::code(1)));
        }
    }
}
