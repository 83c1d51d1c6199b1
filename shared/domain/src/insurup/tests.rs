//! The InsurUp webhook and worker with in-memory ports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::envelope::TraceId;
use crate::error::PortError;
use crate::ingress::{InboundRequest, IngressPorts};
use crate::insurup::event::CustomerChanged;
use crate::insurup::policy::{PolicyEventKind, PolicyState};
use crate::insurup::webhook::InsurUpWebhook;
use crate::insurup::worker::{InsurUpSource, InsurUpWorker};
use crate::log::{IntegrationLog, LogResult};
use crate::meta::sign;
use crate::party::{Card, CardKind, IdentityKey, LeadSource, PartyType};
use crate::phone::PhoneNumber;
use crate::ports::{CrmRepository, PolicyRepository};
use crate::tenant::{InsurUpSettings, IntegrationSettings, TenantConfig, TenantId, TenantRoute};
use crate::testing::*;

const SECRET: &str = "whsec-demo";
const ACCOUNT: &str = "acme-sigorta";
const AYSE: &str = "7d4b2a10-0000-4000-8000-000000000001";

#[derive(Default)]
struct FakeInsurUp {
    customers: Mutex<HashMap<String, CustomerChanged>>,
    policies: Mutex<HashMap<String, String>>,
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl InsurUpSource for FakeInsurUp {
    async fn customer(
        &self,
        _: &TenantId,
        id: &str,
        _: &TraceId,
    ) -> Result<CustomerChanged, PortError> {
        self.calls.lock().unwrap().push(format!("customer {id}"));
        self.customers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| PortError::Rejected("404".into()))
    }
    async fn policy_customer(
        &self,
        _: &TenantId,
        id: &str,
        _: &TraceId,
    ) -> Result<String, PortError> {
        self.calls.lock().unwrap().push(format!("policy {id}"));
        self.policies
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| PortError::Rejected("404".into()))
    }
    async fn proposal_customer(
        &self,
        _: &TenantId,
        id: &str,
        _: &TraceId,
    ) -> Result<String, PortError> {
        self.calls.lock().unwrap().push(format!("proposal {id}"));
        Err(PortError::Rejected("404".into()))
    }
}

struct World {
    webhook: InsurUpWebhook,
    worker: InsurUpWorker,
    queue: Arc<MemoryQueue>,
    archive: Arc<MemoryArchive>,
    crm: Arc<MemoryCrm>,
    source: Arc<FakeInsurUp>,
    logs: Arc<MemoryLogSink>,
    tenant: TenantId,
}

fn world() -> World {
    let tenant = TenantId::parse("demo").unwrap();
    let tenants = Arc::new(MemoryTenants::default());
    tenants.add(
        TenantConfig {
            tenant_id: tenant.clone(),
            name: "Demo Sigorta".into(),
            default_owner: None,
            integrations: IntegrationSettings {
                insurup: Some(InsurUpSettings {
                    account_id: ACCOUNT.into(),
                }),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        },
        &[TenantRoute::InsurUpAccount(ACCOUNT.into())],
        None,
    );
    let secrets = Arc::new(MemorySecrets::default());
    secrets.set(
        "onecrm/tenants/demo/insurup",
        &format!(r#"{{"webhook_secret":"{SECRET}","email":"a@b","password":"p"}}"#),
    );
    let (queue, archive, crm, logs) = (
        Arc::new(MemoryQueue::default()),
        Arc::new(MemoryArchive::default()),
        Arc::new(MemoryCrm::default()),
        Arc::new(MemoryLogSink::default()),
    );
    let log = IntegrationLog::new(
        logs.clone(),
        Arc::new(FixedClock::at("2026-11-24T12:00:30Z")),
        Arc::new(SequentialIds::default()),
        90,
    );
    let source = Arc::new(FakeInsurUp::default());
    source.customers.lock().unwrap().insert(
        AYSE.into(),
        CustomerChanged {
            customer_id: AYSE.into(),
            customer_type: Some("INDIVIDUAL".into()),
            identity_number: Some("10000000146".into()),
            first_name: Some("Ayşe".into()),
            last_name: Some("Yılmaz".into()),
            company_title: None,
            tax_number: None,
            email: Some("ayse.yilmaz@example.com".into()),
            phone_number: Some("+905331234567".into()),
            province: None,
        },
    );
    let ports = IngressPorts {
        tenants: tenants.clone(),
        secrets,
        queue: queue.clone(),
        archive: archive.clone(),
        log: log.clone(),
    };
    World {
        webhook: InsurUpWebhook::new(ports, "onecrm/tenants/", 90),
        worker: InsurUpWorker {
            crm: crm.clone(),
            policies: crm.clone(),
            source: source.clone(),
            log,
            tenants: tenants.clone(),
            karel: None,
        },
        queue,
        archive,
        crm,
        source,
        logs,
        tenant,
    }
}

async fn post(
    w: &World,
    body: &str,
    delivery: &str,
    signature: Option<String>,
) -> (u16, serde_json::Value) {
    let signature = signature
        .unwrap_or_else(|| sign(SECRET.as_bytes(), body.as_bytes())["sha256=".len()..].to_string());
    let headers = [
        ("x-webhook-signature", signature.as_str()),
        ("x-webhook-delivery", delivery),
        ("x-webhook-event", "policy.created"),
    ];
    let request = InboundRequest {
        body: body.as_bytes(),
        headers: &headers,
        source_ip: None,
        path_token: Some(ACCOUNT),
    };
    let reply = w.webhook.deliver(&request, &TraceId::new("trace-1")).await;
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

/// Posts and processes every queued event.
async fn deliver(w: &World, body: &str, delivery: &str) {
    let (status, answer) = post(w, body, delivery, None).await;
    assert_eq!(status, 200, "{answer}");
    drain(w).await;
}

async fn drain(w: &World) {
    for envelope in w.queue.take() {
        w.worker.handle(envelope, 1).await.unwrap();
    }
}

fn policy_created(policy: &str, customer: &str, identity: &str) -> String {
    format!(
        r#"{{"$event":"policy.created","policyId":"{policy}","proposalId":"prp-1","productId":101,"installmentNumber":1,"paymentType":"SYNC_CREDIT_CARD","insuranceCompany":{{"id":3,"name":"Anadolu Sigorta"}},"startDate":"2026-11-24","endDate":"2027-11-24","renewalNumber":0,"productBranch":"KASKO","insurerCustomerId":"{customer}","insuredCustomerId":"{customer}","insuredIdentityNumber":"{identity}","fromPolicyTransfer":false,"netPremium":10250.40,"grossPremium":12095.47,"channel":"WEBSITE","insuranceCompanyPolicyNo":"AS-2026-0001"}}"#
    )
}

fn policy_updated(policy: &str, endorsement: i64, cancel: bool, gross: &str) -> String {
    format!(
        r#"{{"$event":"policy.updated","policyId":"{policy}","endorsementNumber":{endorsement},"isCancel":{cancel},"netPremium":{gross},"grossPremium":{gross},"insuranceCompanyPolicyNo":"AS-2026-0001"}}"#
    )
}

#[tokio::test]
async fn a_signed_delivery_is_queued_by_its_delivery_id_and_a_bad_one_is_401() {
    let w = world();
    let body = policy_created("pol-1", AYSE, "10000000146");
    let (status, _) = post(&w, &body, "d-1", None).await;
    assert_eq!(status, 200);
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].kind.as_str(), queued[0].external_id.as_str()),
        ("insurup.policy.created", "d-1")
    );
    let (status, answer) = post(&w, &body, "d-2", Some("00".repeat(32))).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (401, Some("x-webhook-signature"))
    );
    let (status, _) = post(&w, &body, "d-3", Some(format!("sha256={}", "0".repeat(64)))).await;
    assert_eq!(status, 401, "a prefixed signature is not InsurUp's");
    assert_eq!(
        w.queue.sent().len(),
        1,
        "nothing queued for the refused ones"
    );
}

#[tokio::test]
async fn unknown_events_are_kept_and_the_synchronous_one_is_not_supported() {
    let w = world();
    let (status, answer) = post(
        &w,
        r#"{"$event":"policy.renewed","policyId":"x"}"#,
        "d-9",
        None,
    )
    .await;
    assert_eq!(
        (status, answer["held"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    assert_eq!(w.archive.held().len(), 1);
    let (status, answer) = post(
        &w,
        r#"{"$event":"proposal_premium.purchasing","proposalId":"p"}"#,
        "d-10",
        None,
    )
    .await;
    assert_eq!((status, answer["events"].as_u64()), (200, Some(0)));
    let record = w.logs.records().into_iter().find(|r| {
        r.external_message
            .as_deref()
            .is_some_and(|m| m.contains("not supported"))
    });
    assert!(record.is_some(), "logged as not supported");
    let (status, answer) = post(
        &w,
        r#"{"$event":"policy.updated","policyId":"x","endorsementNumber":"one"}"#,
        "d-11",
        None,
    )
    .await;
    assert_eq!(
        (status, answer["held"].as_u64()),
        (200, Some(1)),
        "a known event that does not parse is kept too"
    );
}

#[tokio::test]
async fn a_policy_lands_on_the_card_of_its_identity_number_with_decimal_premiums() {
    let w = world();
    let card = Card {
        customer: Some(crate::party::CustomerDetails {
            party_type: PartyType::Person,
            tax_id: Some("10000000146".into()),
            source: None,
        }),
        ..Card::person_customer("c-ayse", "Ayşe Yılmaz", vec![], chrono::Utc::now())
    };
    w.crm.create_card(&w.tenant, &card).await.unwrap();
    deliver(
        &w,
        &policy_created("pol-1", "someone-else", "10000000146"),
        "d-1",
    )
    .await;
    let policy = w.crm.policy(&w.tenant, "pol-1").await.unwrap().unwrap();
    assert_eq!(policy.card_id, "c-ayse");
    assert_eq!(policy.state, PolicyState::Active);
    assert_eq!(policy.gross_premium.unwrap().amount.to_string(), "12095.47");
    let timeline = w.crm.timeline(&w.tenant, "c-ayse", 5).await.unwrap();
    assert!(
        timeline[0]
            .text
            .starts_with("Poliçe kesildi: Anadolu Sigorta KASKO AS-2026-0001"),
        "{}",
        timeline[0].text
    );
    // The same event again, under another delivery id: still one.
    deliver(
        &w,
        &policy_created("pol-1", "someone-else", "10000000146"),
        "d-2",
    )
    .await;
    assert_eq!(
        w.crm.timeline(&w.tenant, "c-ayse", 5).await.unwrap().len(),
        1
    );
    assert!(w
        .logs
        .records()
        .iter()
        .any(|r| r.result == LogResult::Duplicate));
}

#[tokio::test]
async fn an_unknown_customer_is_fetched_and_opened_as_an_insurup_customer() {
    let w = world();
    deliver(&w, &policy_created("pol-1", AYSE, ""), "d-1").await;
    let key = IdentityKey::External {
        system: "insurup".into(),
        id: AYSE.into(),
    };
    let card_ref = w.crm.find_cards(&w.tenant, &key).await.unwrap().remove(0);
    let card = w
        .crm
        .card(&w.tenant, &card_ref.card_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (card.kind, card.display_name.as_str()),
        (CardKind::Customer, "Ayşe Yılmaz")
    );
    assert_eq!(
        card.customer.as_ref().unwrap().source,
        Some(LeadSource::InsurUp)
    );
    assert_eq!(
        card.customer.as_ref().unwrap().tax_id.as_deref(),
        Some("10000000146")
    );
    assert_eq!(
        card.phones,
        vec![PhoneNumber::parse("05331234567").unwrap()]
    );
    assert_eq!(
        w.source.calls.lock().unwrap().as_slice(),
        ["customer 7d4b2a10-0000-4000-8000-000000000001"]
    );
    // The next event of that customer finds the card without asking InsurUp.
    deliver(&w, &policy_created("pol-2", AYSE, ""), "d-2").await;
    assert_eq!(w.source.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_cancellation_before_its_policy_still_reads_in_order_and_cancelled() {
    let w = world();
    w.source
        .policies
        .lock()
        .unwrap()
        .insert("pol-7".into(), AYSE.into());
    deliver(&w, &policy_updated("pol-7", 2, true, "-12095.47"), "d-3").await;
    deliver(&w, &policy_created("pol-7", AYSE, "10000000146"), "d-1").await;
    deliver(&w, &policy_updated("pol-7", 1, false, "12500.00"), "d-2").await;
    let policy = w.crm.policy(&w.tenant, "pol-7").await.unwrap().unwrap();
    let life: Vec<PolicyEventKind> = policy.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        life,
        [
            PolicyEventKind::Issued,
            PolicyEventKind::Endorsed,
            PolicyEventKind::Cancelled
        ]
    );
    assert_eq!(policy.state, PolicyState::Cancelled);
    assert_eq!(
        policy.gross_premium.unwrap().amount.to_string(),
        "12500.00",
        "the premium in force, not the refund"
    );
    assert!(
        policy.contract.is_some(),
        "the issue's facts arrived last but count"
    );
    assert_eq!(
        policy.events[2]
            .gross_premium
            .as_ref()
            .unwrap()
            .amount
            .to_string(),
        "-12095.47"
    );
}

#[tokio::test]
async fn etk_consent_becomes_iys_records_and_kvkk_only_a_timeline_entry() {
    let w = world();
    deliver(&w, &policy_created("pol-1", AYSE, ""), "d-1").await;
    let given = format!(
        r#"{{"$event":"customer.etk_consent_given","customerId":"{AYSE}","customerType":"INDIVIDUAL","channel":"WEB","givenAt":"2026-11-24T10:00:00+03:00"}}"#
    );
    deliver(&w, &given, "d-2").await;
    let revoked = format!(
        r#"{{"$event":"customer.etk_consent_revoked","customerId":"{AYSE}","customerType":"INDIVIDUAL","channel":"SMS","revokedAt":"2026-11-25T10:00:00+03:00"}}"#
    );
    deliver(&w, &revoked, "d-3").await;
    let kvkk = format!(
        r#"{{"$event":"customer.kvkk_consent_given","customerId":"{AYSE}","customerType":"INDIVIDUAL","channel":"WEB","givenAt":"2026-11-24T10:00:00+03:00"}}"#
    );
    deliver(&w, &kvkk, "d-4").await;
    let card = w.crm.cards(&w.tenant).remove(0);
    let consents = w.crm.consents(&w.tenant, &card.card_id);
    assert_eq!(
        consents.len(),
        6,
        "MESAJ, ARAMA, EPOSTA given, then revoked"
    );
    assert!(consents[3..]
        .iter()
        .all(|c| c.status == crate::consent::ConsentStatus::Ret));
    assert_eq!(
        consents[0].consent_date.to_rfc3339(),
        "2026-11-24T07:00:00+00:00"
    );
    let timeline = w.crm.timeline(&w.tenant, &card.card_id, 10).await.unwrap();
    assert!(timeline
        .iter()
        .any(|e| e.text.starts_with("KVKK açık rıza onayı verildi")));
}
