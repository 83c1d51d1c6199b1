//! End to end against the emulator and a Karel stand-in (wiremock): queued opportunity changes
//! -> karel-push -> Karel's PpOpportunities, and InsurUp's purchase -> a Karel opportunity.

use std::time::Duration;

use onecrm_domain::envelope::TraceId;
use onecrm_domain::karel::opportunity::{OpportunityChange, Trigger};
use onecrm_domain::karel::worker::{KarelLinks, LinkState};
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::money::Money;
use onecrm_domain::party::Card;
use onecrm_domain::ports::CrmRepository;
use onecrm_e2e::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OPPORTUNITIES: &str = "/api/v1/PpOpportunities";

fn change(tenant: &TestTenant, version: i64, stage: &str) -> OpportunityChange {
    let _ = tenant;
    OpportunityChange {
        opportunity_id: "opp-1".into(),
        version,
        trigger: Trigger::CrmChange,
        deleted: false,
        card_id: "c-1".into(),
        owner: None,
        description: "Filo kasko teklifi".into(),
        price: Some(Money::new("125000.75".parse().unwrap(), "TRY")),
        stage: Some(stage.into()),
        state: Some(1),
        start_date: Some("2026-11-24".parse().unwrap()),
        estimated_end_date: Some("2026-12-31".parse().unwrap()),
        period: None,
        tags: vec![],
        custom_fields: [("proje_tipi".to_string(), "yazilim".to_string())].into(),
    }
}

async fn send(queue: &TestQueue, tenant: &TestTenant, change: &OpportunityChange) {
    let trace = TraceId::new(uuid::Uuid::now_v7().to_string());
    let envelope = onecrm_domain::karel::envelope(&tenant.id, &trace, chrono::Utc::now(), change);
    queue.send_raw(&envelope.to_json()).await;
}

async fn karel() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{OPPORTUNITIES}/12345")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "Result": {
            "OpportunityId": 12345, "CustomFields": [{ "CustomFieldValueId": 100, "CustomFieldFieldLabel": "Proje Tipi",
            "CustomFieldFieldType": "Dropdown", "CustomFieldOptionName": "Yazılım Geliştirme" }] }, "ResultMessage": "İşlem başarılı" })))
        .mount(&server)
        .await;
    server
}

fn bodies(requests: &[wiremock::Request], verb: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == verb)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

async fn setup_karel() -> (Stack, TestTenant, TestQueue) {
    let (stack, tenant, queue) = setup(false).await;
    stack.karel(&tenant, &[("c-1", 10148)]).await;
    let card = Card::person_customer("c-1", "Ahmet Yılmaz", vec![], chrono::Utc::now());
    stack.crm().create_card(&tenant.id, &card).await.unwrap();
    (stack, tenant, queue)
}

#[tokio::test]
async fn create_then_update_keeping_value_ids_then_delete() {
    let (stack, tenant, queue) = setup_karel().await;
    let server = karel().await;
    Mock::given(method("POST"))
        .and(path(OPPORTUNITIES))
        .and(header(
            "authorization",
            format!("Bearer {KAREL_TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "Result": 12345, "ResultMessage": "İşlem başarılı" })),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{OPPORTUNITIES}/12345")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "Result": 12345, "ResultMessage": "İşlem başarılı" })),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{OPPORTUNITIES}/12345")))
        .and(query_param("deleteCollection", "false"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let worker = stack.karel_push(&queue, &server.uri(), Duration::from_secs(5));
    send(&queue, &tenant, &change(&tenant, 1, "teklif")).await;
    assert_eq!(queue.drain_karel(&worker).await, 1);
    send(&queue, &tenant, &change(&tenant, 2, "kazanildi")).await;
    assert_eq!(queue.drain_karel(&worker).await, 1);
    let mut removed = change(&tenant, 3, "kazanildi");
    removed.deleted = true;
    send(&queue, &tenant, &removed).await;
    assert_eq!(queue.drain_karel(&worker).await, 1);
    let requests = server.received_requests().await.unwrap();
    let created = &bodies(&requests, "POST")[0];
    assert_eq!(created["RefCustomerCardId"], 10148);
    assert_eq!(created["RefRepresentativeCardId"], 8224);
    assert_eq!(created["OpportunityPrice"], json!(125000.75));
    assert_eq!(created["RefPipelineStageId"], 5);
    assert_eq!(created["Tags"], "onecrm:opp-1");
    let updated = &bodies(&requests, "PUT")[0];
    assert_eq!(updated["RefPipelineStageId"], 6);
    assert_eq!(
        updated["CustomFields"],
        json!([{ "CustomFieldValueId": 100, "CustomFieldId": 22, "CustomFieldOptionId": 5 }])
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .count(),
        1
    );
    let link = stack
        .crm()
        .link(&tenant.id, "opp-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (link.state, link.karel_id, link.version),
        (LinkState::Deleted, Some(12345), 3)
    );
}

#[tokio::test]
async fn data_locked_is_one_error_record_and_no_retry() {
    let (stack, tenant, queue) = setup_karel().await;
    let server = karel().await;
    Mock::given(method("POST"))
        .and(path(OPPORTUNITIES))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "Result": 12345 })))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "Result": null, "ResultMessage": "Fırsat verisi kilitli, güncelleme yapılamaz" })))
        .mount(&server)
        .await;
    let worker = stack.karel_push(&queue, &server.uri(), Duration::from_secs(5));
    send(&queue, &tenant, &change(&tenant, 1, "teklif")).await;
    send(&queue, &tenant, &change(&tenant, 2, "kazanildi")).await;
    assert_eq!(
        queue.drain_karel(&worker).await,
        2,
        "both consumed, none back on the queue"
    );
    let puts = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "PUT")
        .count();
    assert_eq!(puts, 1, "a locked opportunity is not retried");
    let errors = stack.error_logs(&tenant.id, "karel_data_locked").await;
    assert_eq!(errors.len(), 1);
    assert_eq!(queue.depth(&queue.dlq_url).await, 0);
}

#[tokio::test]
async fn a_create_that_timed_out_is_parked_and_a_retry_never_makes_a_second_opportunity() {
    let (stack, tenant, queue) = setup_karel().await;
    let server = karel().await;
    // Karel stores it, but answers after our attempt timeout.
    Mock::given(method("POST"))
        .and(path(OPPORTUNITIES))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "Result": 12345 }))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&server)
        .await;
    let worker = stack.karel_push(&queue, &server.uri(), Duration::from_millis(300));
    send(&queue, &tenant, &change(&tenant, 1, "teklif")).await;
    assert_eq!(queue.drain_karel(&worker).await, 1);
    // The same change again (a CRM retry) and a newer one, right away: the create may still be
    // running elsewhere, so they go back to the queue (after the lease they would be parked);
    // neither is posted.
    send(&queue, &tenant, &change(&tenant, 1, "teklif")).await;
    send(&queue, &tenant, &change(&tenant, 2, "kazanildi")).await;
    assert_eq!(queue.drain_karel(&worker).await, 2);
    let posts = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 1, "one create, never a second");
    let parked = stack.integration_logs(&tenant.id, Integration::Karel).await;
    let parked: Vec<_> = parked
        .iter()
        .filter(|r| r.result == LogResult::Parked)
        .collect();
    assert_eq!(parked.len(), 1, "the timed-out create itself");
    assert!(parked
        .iter()
        .all(|r| r.error_code.as_deref() == Some("karel_outcome_unknown")));
    assert!(parked[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("onecrm:opp-1"));
    let link = stack
        .crm()
        .link(&tenant.id, "opp-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.state, LinkState::Creating);
}

#[tokio::test]
async fn a_purchased_insurup_policy_becomes_a_karel_opportunity() {
    let (stack, tenant, queue) = setup(false).await;
    let karel_queue = stack.queue().await;
    let (app, account) = stack.insurup(&queue, &tenant).await;
    stack.karel(&tenant, &[]).await;
    // The customer is known to both: its card carries the Karel customer id.
    let mut card = Card {
        customer: Some(onecrm_domain::party::CustomerDetails {
            party_type: onecrm_domain::party::PartyType::Person,
            tax_id: Some("10000000146".into()),
            source: None,
        }),
        ..Card::person_customer("c-ayse", "Ayşe Yılmaz", vec![], chrono::Utc::now())
    };
    card.external_ids.insert("karel".into(), "20001".into());
    stack.crm().create_card(&tenant.id, &card).await.unwrap();
    let insurup = MockServer::start().await;
    let insurup_worker = stack.insurup_worker_feeding(&queue, &insurup.uri(), &karel_queue);
    for sample in ["premium-received", "premium-purchased"] {
        let response = insurup_policy_webhook::handle(
            &app,
            insurup_request(sample, &account, None, |b| b, None),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(queue.drain_insurup(&insurup_worker).await, 1);
    }
    let server = karel().await;
    Mock::given(method("POST"))
        .and(path(OPPORTUNITIES))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "Result": 12345 })))
        .mount(&server)
        .await;
    let worker = stack.karel_push(&karel_queue, &server.uri(), Duration::from_secs(5));
    assert_eq!(karel_queue.drain_karel(&worker).await, 1);
    let created = &bodies(&server.received_requests().await.unwrap(), "POST")[0];
    assert_eq!(created["RefCustomerCardId"], 20001);
    assert_eq!(created["Description"], "InsurUp poliçe satışı: pol-1001");
    assert_eq!(created["Tags"], "insurup,onecrm:insurup:prp-2001");
}
