//! End to end against the emulator and an InsurUp stand-in (wiremock): signed webhook ->
//! insurup-policy-webhook -> SQS -> insurup-worker (-> InsurUp REST as the agent user) ->
//! DynamoDB, with the committed samples re-signed for a test tenant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use onecrm_domain::consent::ConsentStatus;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::insurup::policy::{Policy, PolicyEventKind, PolicyState, PolicyWrite};
use onecrm_domain::insurup::worker::{InsurUpSource, InsurUpWorker};
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::party::{Card, CardKind, CustomerDetails, IdentityKey, LeadSource, PartyType};
use onecrm_domain::ports::WriteOutcome;
use onecrm_domain::ports::{CrmRepository, PolicyRepository};
use onecrm_domain::tenant::TenantId;
use onecrm_e2e::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const AYSE: &str = "7d4b2a10-0000-4000-8000-000000000001";

async fn post(app: &insurup_policy_webhook::App, request: lambda_http::Request) -> (u16, Value) {
    let response = insurup_policy_webhook::handle(app, request).await.unwrap();
    (response.status().as_u16(), body_json(&response))
}

fn tokens(access: &str, refresh: &str, expires_in: i64) -> Value {
    json!({ "accessToken": access, "refreshToken": refresh, "expiresIn": expires_in,
            "requiresTwoFactor": false, "userId": "agent-1" })
}

/// InsurUp with the agent user's login, Ayşe as a customer and `pol-1001` as her policy.
async fn insurup() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/authentication:agent-user/login"))
        .and(wiremock::matchers::body_json(
            json!({ "email": INSURUP_EMAIL, "password": INSURUP_PASSWORD }),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(tokens("at-1", "rt-1", 600)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/customers/{AYSE}")))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "customerId": AYSE, "customerType": "INDIVIDUAL", "identityNumber": "10000000146",
            "firstName": "Ayşe", "lastName": "Yılmaz", "email": "ayse.yilmaz@example.com",
            "phoneNumber": "+905331234567" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/policies/pol-1001"))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "pol-1001", "insuredCustomerId": AYSE })),
        )
        .mount(&server)
        .await;
    server
}

fn logins(server: &MockServer, requests: &[Request]) -> usize {
    let _ = server;
    requests
        .iter()
        .filter(|r| r.url.path() == "/api/authentication:agent-user/login")
        .count()
}

async fn ayse_card(stack: &Stack, tenant: &TestTenant) -> Card {
    let key = IdentityKey::External {
        system: "insurup".into(),
        id: AYSE.into(),
    };
    let card_ref = stack
        .crm()
        .find_cards(&tenant.id, &key)
        .await
        .unwrap()
        .remove(0);
    stack
        .crm()
        .card(&tenant.id, &card_ref.card_id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_policy_for_an_unknown_customer_opens_an_insurup_customer_with_its_life_in_order() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, account) = stack.insurup(&queue, &tenant).await;
    let server = insurup().await;
    let worker = stack.insurup_worker(&queue, &server.uri());
    // Out of order: the cancellation first, then the endorsement, then the issue.
    for sample in ["policy-cancelled", "policy-endorsed", "policy-created"] {
        let (status, answer) =
            post(&app, insurup_request(sample, &account, None, |b| b, None)).await;
        assert_eq!(status, 200, "{sample}: {answer}");
        assert_eq!(queue.drain_insurup(&worker).await, 1, "{sample}");
    }
    let card = ayse_card(&stack, &tenant).await;
    assert_eq!(
        (card.kind, card.display_name.as_str()),
        (CardKind::Customer, "Ayşe Yılmaz")
    );
    let customer = card.customer.clone().unwrap();
    assert_eq!(
        (customer.source, customer.tax_id.as_deref()),
        (Some(LeadSource::InsurUp), Some("10000000146"))
    );
    let policy = stack
        .crm()
        .policy(&tenant.id, "pol-1001")
        .await
        .unwrap()
        .unwrap();
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
        "12956.4",
        "exactly the body's text (the sample says 12956.4), the refund kept on its event"
    );
    assert_eq!(
        policy.events[2]
            .gross_premium
            .as_ref()
            .unwrap()
            .amount
            .to_string(),
        "-9717.44"
    );
    let contract = policy.contract.unwrap();
    assert_eq!(
        (
            contract.insurance_company.as_str(),
            contract.branch.as_deref()
        ),
        ("Anadolu Sigorta", Some("KASKO"))
    );
    assert_eq!(
        stack
            .crm()
            .policies_of(&tenant.id, &card.card_id)
            .await
            .unwrap(),
        ["pol-1001"]
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        logins(&server, &requests),
        1,
        "one login, the token reused for the next calls"
    );
    let logs = stack
        .integration_logs(&tenant.id, Integration::InsurUp)
        .await;
    assert!(logs.iter().any(|r| r.operation == "insurup.token.login"));
    assert!(
        logs.iter()
            .all(|r| !serde_json::to_string(r).unwrap().contains(INSURUP_PASSWORD)),
        "the password is never logged"
    );
}

#[tokio::test]
async fn a_bad_signature_is_401_and_stores_nothing_and_a_redelivery_changes_nothing() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, account) = stack.insurup(&queue, &tenant).await;
    let (status, answer) = post(
        &app,
        insurup_request(
            "bad-signature",
            &account,
            None,
            |b| b,
            Some(&"ab".repeat(32)),
        ),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (401, Some("x-webhook-signature"))
    );
    let (status, _) = post(
        &app,
        insurup_request("policy-created", &account, None, |b| b, Some("")),
    )
    .await;
    assert_eq!(status, 401, "a missing signature");
    assert_eq!(queue.depth(&queue.url).await, 0);
    // A known customer (by identity number): the webhook's facts are enough, InsurUp is not asked.
    let card = Card {
        customer: Some(CustomerDetails {
            party_type: PartyType::Person,
            tax_id: Some("10000000146".into()),
            source: None,
        }),
        ..Card::person_customer("c-ayse", "Ayşe Yılmaz", vec![], chrono::Utc::now())
    };
    stack.crm().create_card(&tenant.id, &card).await.unwrap();
    let server = MockServer::start().await;
    let worker = stack.insurup_worker(&queue, &server.uri());
    for _ in 0..2 {
        let (status, _) = post(
            &app,
            insurup_request("premium-received", &account, Some("dlv-same"), |b| b, None),
        )
        .await;
        assert_eq!(status, 200);
    }
    assert_eq!(queue.drain_insurup(&worker).await, 2);
    let timeline = stack
        .crm()
        .timeline(&tenant.id, "c-ayse", 10)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 1, "one delivery id, one entry");
    assert!(
        timeline[0]
            .text
            .starts_with("Teklif alındı: KASKO, 2 prim seçeneği, en düşük brüt 12095.47 TRY"),
        "{}",
        timeline[0].text
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    let logs = stack
        .integration_logs(&tenant.id, Integration::InsurUp)
        .await;
    assert!(logs.iter().any(|r| r.result == LogResult::Duplicate));
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_land_once() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, account) = stack.insurup(&queue, &tenant).await;
    let server = insurup().await;
    let card = Card {
        customer: Some(CustomerDetails {
            party_type: PartyType::Person,
            tax_id: Some("10000000146".into()),
            source: None,
        }),
        ..Card::person_customer("c-ayse", "Ayşe Yılmaz", vec![], chrono::Utc::now())
    };
    stack.crm().create_card(&tenant.id, &card).await.unwrap();
    // Two deliveries of policy.created (different delivery ids: InsurUp retried), two workers.
    for _ in 0..2 {
        let (status, _) = post(
            &app,
            insurup_request("policy-created", &account, None, |b| b, None),
        )
        .await;
        assert_eq!(status, 200);
    }
    let envelopes = [queue.peek_envelope().await, queue.peek_envelope().await];
    assert_ne!(
        envelopes[0].external_id, envelopes[1].external_id,
        "two deliveries"
    );
    // Both workers found the card before either wrote the policy event.
    let racing = Arc::new(PoliciesInFlight {
        inner: Arc::new(stack.crm()),
        barrier: tokio::sync::Barrier::new(2),
    });
    let wiring = stack.wiring();
    let worker = |policies: Arc<dyn PolicyRepository>| InsurUpWorker {
        crm: wiring.crm.clone(),
        policies,
        source: stack.insurup_client(&server.uri()),
        log: wiring.log.clone(),
        tenants: wiring.crm.clone(),
        karel: None,
    };
    let (a, b) = (worker(racing.clone()), worker(racing));
    let (first, second) = tokio::join!(
        a.handle(envelopes[0].clone(), 1),
        b.handle(envelopes[1].clone(), 1)
    );
    first.unwrap();
    second.unwrap();
    let policy = stack
        .crm()
        .policy(&tenant.id, "pol-1001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(policy.events.len(), 1);
    assert_eq!(
        stack
            .crm()
            .timeline(&tenant.id, "c-ayse", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Policy writes that wait until both workers got there.
struct PoliciesInFlight {
    inner: Arc<onecrm_adapters::dynamodb::CrmStore>,
    barrier: tokio::sync::Barrier,
}

#[async_trait::async_trait]
impl PolicyRepository for PoliciesInFlight {
    async fn record_policy_event(
        &self,
        t: &TenantId,
        w: &PolicyWrite,
    ) -> Result<WriteOutcome, PortError> {
        self.barrier.wait().await;
        self.inner.record_policy_event(t, w).await
    }
    async fn policy(&self, t: &TenantId, id: &str) -> Result<Option<Policy>, PortError> {
        self.inner.policy(t, id).await
    }
    async fn policies_of(&self, t: &TenantId, card: &str) -> Result<Vec<String>, PortError> {
        self.inner.policies_of(t, card).await
    }
    async fn link(&self, t: &TenantId, kind: &str, id: &str, card: &str) -> Result<(), PortError> {
        self.inner.link(t, kind, id, card).await
    }
    async fn linked(
        &self,
        t: &TenantId,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, PortError> {
        self.inner.linked(t, kind, id).await
    }
}

#[tokio::test]
async fn consent_flips_become_iys_records_and_every_sample_lands() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, account) = stack.insurup(&queue, &tenant).await;
    let server = insurup().await;
    let worker = stack.insurup_worker(&queue, &server.uri());
    let samples = [
        "customer-updated",
        "etk-consent-given",
        "etk-consent-revoked",
        "kvkk-consent-given",
        "kvkk-consent-revoked",
        "vehicle-created",
        "vehicle-updated",
        "property-created",
        "property-updated",
        "case-created",
        "case-state-changed",
        "premium-received",
        "premium-purchased",
        "premium-purchase-failed",
        "customer-created",
    ];
    for sample in samples {
        let (status, answer) =
            post(&app, insurup_request(sample, &account, None, |b| b, None)).await;
        assert_eq!(
            (status, answer["events"].as_u64()),
            (200, Some(1)),
            "{sample}: {answer}"
        );
        assert_eq!(queue.drain_insurup(&worker).await, 1, "{sample}");
    }
    let card = ayse_card(&stack, &tenant).await;
    let timeline = stack
        .crm()
        .timeline(&tenant.id, &card.card_id, 50)
        .await
        .unwrap();
    assert_eq!(
        timeline.len(),
        samples.len() - 1,
        "every event of Ayşe on her card (the company has its own)"
    );
    let company = IdentityKey::External {
        system: "insurup".into(),
        id: "7d4b2a10-0000-4000-8000-000000000002".into(),
    };
    let company = stack
        .crm()
        .find_cards(&tenant.id, &company)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(company.display_name, "Demir Lojistik A.Ş.");
    // Unsupported and unknown events: answered, never lost.
    let (status, answer) = post(
        &app,
        insurup_request("premium-purchasing", &account, None, |b| b, None),
    )
    .await;
    assert_eq!((status, answer["events"].as_u64()), (200, Some(0)));
    let (status, answer) = post(
        &app,
        insurup_request("unknown-event", &account, None, |b| b, None),
    )
    .await;
    assert_eq!((status, answer["held"].as_u64()), (200, Some(1)));
    let consent = |status| {
        timeline
            .iter()
            .filter(|e| e.kind == "etk_consent")
            .filter(|e| e.details["given"] == json!(status == ConsentStatus::Onay))
            .count()
    };
    assert_eq!(
        (consent(ConsentStatus::Onay), consent(ConsentStatus::Ret)),
        (1, 1)
    );
}

/// Answers the refresh with a new pair once; the spent refresh token is refused after.
struct RotatingRefresh(AtomicUsize);

impl Respond for RotatingRefresh {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        if body["refreshToken"] == "rt-1" && n == 0 {
            ResponseTemplate::new(200).set_body_json(tokens("at-2", "rt-2", 1))
        } else {
            ResponseTemplate::new(401)
                .set_body_json(json!({ "status": 401, "detail": "Refresh token geçersiz." }))
        }
    }
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once_and_a_spent_refresh_token_falls_back_to_login() {
    let (stack, tenant, queue) = setup(false).await;
    let _ = stack.insurup(&queue, &tenant).await;
    let server = MockServer::start().await;
    // A token that is due for refresh at once (expiresIn 1 s: refresh at 80 %).
    Mock::given(method("POST"))
        .and(path("/api/authentication:agent-user/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(tokens("at-1", "rt-1", 1)))
        .mount(&server)
        .await;
    // Two Lambda sandboxes: each its own client, one token store.
    let (one, two, trace) =
        two_instances(&stack, &server, RotatingRefresh(AtomicUsize::new(0))).await;
    one.customer(&tenant.id, AYSE, &trace).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    two.customer(&tenant.id, AYSE, &trace).await.unwrap();
    one.customer(&tenant.id, AYSE, &trace).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let count = |p: &str| requests.iter().filter(|r| r.url.path() == p).count();
    assert_eq!(
        count("/api/authentication:agent-user/refresh"),
        1,
        "one refresh, shared through the store"
    );
    assert_eq!(count("/api/authentication:agent-user/login"), 1);
    let bearer: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path().starts_with("/api/customers/"))
        .map(|r| {
            r.headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(bearer, ["Bearer at-1", "Bearer at-2", "Bearer at-2"]);
    // The stored refresh token spent elsewhere (refused): a fresh login, nothing lost.
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    // The pair at-2/rt-2 is due; the refresh endpoint refuses rt-2: log in again.
    two.customer(&tenant.id, AYSE, &trace).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.url.path() == "/api/authentication:agent-user/login")
            .count(),
        2
    );
}

/// InsurUp's agent-user tokens as they behave: a login or a refresh issues a new pair, each
/// refresh token works once, and refreshes answer slowly enough for two instances to overlap.
#[derive(Clone, Default)]
struct Issuer {
    live: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    issued: Arc<AtomicUsize>,
    refresh: bool,
}

impl Respond for Issuer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut live = self.live.lock().unwrap();
        if self.refresh {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            if !live.remove(body["refreshToken"].as_str().unwrap_or("")) {
                return ResponseTemplate::new(401)
                    .set_body_json(json!({ "status": 401, "detail": "Refresh token geçersiz." }));
            }
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        live.insert(format!("rt-{n}"));
        // A login's pair is due at once (expiresIn 1 s); a refreshed pair lasts.
        let expires = if self.refresh { 600 } else { 1 };
        ResponseTemplate::new(200)
            .set_body_json(tokens(&format!("at-{n}"), &format!("rt-{n}"), expires))
            .set_delay(std::time::Duration::from_millis(if self.refresh {
                300
            } else {
                0
            }))
    }
}

#[tokio::test]
async fn two_instances_refreshing_at_once_lose_no_token() {
    let (stack, tenant, queue) = setup(false).await;
    let _ = stack.insurup(&queue, &tenant).await;
    let server = MockServer::start().await;
    let login = Issuer::default();
    let refresh = Issuer {
        refresh: true,
        ..login.clone()
    };
    Mock::given(method("POST"))
        .and(path("/api/authentication:agent-user/login"))
        .respond_with(login.clone())
        .mount(&server)
        .await;
    let (one, two, trace) = two_instances(&stack, &server, refresh).await;
    one.customer(&tenant.id, AYSE, &trace).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    // Both find the pair due and refresh with the same refresh token at the same moment: one
    // wins the rotation, the other is refused and takes the stored pair (or logs in again).
    let (a, b) = tokio::join!(
        one.customer(&tenant.id, AYSE, &trace),
        two.customer(&tenant.id, AYSE, &trace)
    );
    a.unwrap();
    b.unwrap();
    let stored = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .get_item()
        .table_name(&stack.settings.crm_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("T#{}#TOKEN#insurup", tenant.id)),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("TOKEN".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let stored_refresh = stored["refresh_token"].as_s().unwrap().clone();
    assert!(
        login.live.lock().unwrap().contains(&stored_refresh),
        "the stored refresh token {stored_refresh} is one InsurUp still accepts"
    );
    let refreshes = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/authentication:agent-user/refresh")
        .count();
    assert_eq!(refreshes, 2, "both refreshed at once (one was refused)");
}

/// `refresh` as InsurUp's refresh endpoint, Ayşe as a customer, and two clients (two Lambda
/// sandboxes) sharing one token store.
async fn two_instances(
    stack: &Stack,
    server: &MockServer,
    refresh: impl Respond + 'static,
) -> (
    Arc<onecrm_adapters::partner::insurup::InsurUpClient>,
    Arc<onecrm_adapters::partner::insurup::InsurUpClient>,
    TraceId,
) {
    Mock::given(method("POST"))
        .and(path("/api/authentication:agent-user/refresh"))
        .respond_with(refresh)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/customers/{AYSE}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "customerId": AYSE, "firstName": "Ayşe" })),
        )
        .mount(server)
        .await;
    (
        stack.insurup_client(&server.uri()),
        stack.insurup_client(&server.uri()),
        TraceId::new(uuid::Uuid::now_v7().to_string()),
    )
}
