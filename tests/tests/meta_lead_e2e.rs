//! End to end against the emulator and a Graph stand-in (wiremock): signed leadgen delivery ->
//! meta-lead -> SQS -> meta-lead-worker -> Graph -> DynamoDB.

use onecrm_domain::ingress::Hold;
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::meta::sign;
use onecrm_domain::page::PageRequest;
use onecrm_domain::party::{CardKind, IdentityKey, LeadSource};
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CrmRepository, EventArchive};
use onecrm_e2e::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Above 2^53: must survive as an exact string from the webhook to Graph's URL.
const LEADGEN_ID: &str = "1234567890123456789";

fn page_id() -> String {
    format!("7{}", &uuid::Uuid::new_v4().as_u128().to_string()[..14])
}

/// What Meta posts for one lead (ids as JSON numbers, as in Meta's sample), signed with the
/// tenant's app secret, as an API Gateway event.
fn leadgen_request(
    tenant: &TestTenant,
    page: &str,
    signature: Option<&str>,
) -> lambda_http::Request {
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"{page}","time":1764000000,"changes":[{{"field":"leadgen","value":{{"leadgen_id":{LEADGEN_ID},"page_id":{page},"form_id":9007199254740993,"ad_id":120210000000000002,"created_time":1764000000}}}}]}}]}}"#
    );
    let mut event = fixture("whatsapp-inbound", "text-message");
    event["rawPath"] = json!("/meta-lead");
    event["requestContext"]["http"]["path"] = json!("/meta-lead");
    event["headers"]["x-hub-signature-256"] = json!(signature
        .map(str::to_string)
        .unwrap_or_else(|| sign(tenant.app_secret.as_bytes(), body.as_bytes())));
    event["body"] = json!(body);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn graph_lead() -> Value {
    json!({
        "id": LEADGEN_ID, "created_time": "2026-11-24T08:49:14+0000",
        "campaign_id": "120210000000000001", "campaign_name": "Kasım Kasko",
        "adset_name": "İstanbul 25-45", "ad_name": "Video 1", "form_id": "9007199254740993",
        "platform": "ig", "is_organic": false,
        "field_data": [
            {"name": "full_name", "values": ["AYŞE NUR YILMAZ"]},
            {"name": "email", "values": ["Ayse@Ornek.com"]},
            {"name": "phone_number", "values": ["+90 533 123 45 67"]},
            {"name": "ilgi_alani", "values": ["Kasko", "Trafik"]}
        ],
        "custom_disclaimer_responses": [{"checkbox_key": "optional_1", "is_checked": "1"}]
    })
}

async fn graph(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{LEADGEN_ID}")))
        .and(query_param(
            "fields",
            onecrm_domain::meta_lead::lead::LEAD_FIELDS,
        ))
        .and(header("authorization", "Bearer EAAB-page-token"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_lead_ad_becomes_an_instagram_lead_and_a_redelivery_changes_nothing() {
    let (stack, tenant, queue) = setup(false).await;
    let page = page_id();
    let inbound = stack.meta_lead(&queue, &tenant, &page).await;
    let graph = graph(ResponseTemplate::new(200).set_body_json(graph_lead())).await;
    let worker = stack.meta_lead_worker(&queue, &graph.uri());
    for _ in 0..2 {
        let response = meta_lead::handle(&inbound, leadgen_request(&tenant, &page, None))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(queue.drain_meta_leads(&worker).await, 2);
    let crm = stack.crm();
    let phone = IdentityKey::Phone(PhoneNumber::parse("05331234567").unwrap());
    let card_ref = crm.find_card(&tenant.id, &phone).await.unwrap().unwrap();
    let card = crm
        .card(&tenant.id, &card_ref.card_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(card.kind, CardKind::Lead);
    assert_eq!(card.display_name, "Ayşe Nur Yılmaz");
    let lead = card.lead.unwrap();
    assert_eq!(lead.source, LeadSource::MetaLeadAds);
    assert_eq!(lead.utm.source.as_deref(), Some("instagram"));
    assert_eq!(lead.utm.campaign.as_deref(), Some("Kasım Kasko"));
    assert_eq!(
        crm.timeline(&tenant.id, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let notes = crm.notes(&tenant.id, &card.card_id).await.unwrap();
    assert!(notes[0].text.contains("ilgi_alani: Kasko, Trafik"));
    let logs = stack
        .integration_logs(&tenant.id, Integration::MetaLeadAds)
        .await;
    let count = |result: LogResult, op: &str| {
        logs.iter()
            .filter(|r| r.result == result && r.operation == op)
            .count()
    };
    assert_eq!(count(LogResult::Success, "webhook.delivery"), 2);
    assert_eq!(count(LogResult::Success, "graph.lead.get"), 2);
    assert_eq!(count(LogResult::Success, "meta.leadgen.process"), 1);
    assert_eq!(count(LogResult::Duplicate, "meta.leadgen.process"), 1);
    // The Page token never reaches a log record.
    assert!(!serde_json::to_string(&logs)
        .unwrap()
        .contains("EAAB-page-token"));
}

#[tokio::test]
async fn a_refused_page_token_parks_the_lead_with_one_clear_error() {
    let (stack, tenant, queue) = setup(false).await;
    let page = page_id();
    let inbound = stack.meta_lead(&queue, &tenant, &page).await;
    let graph = graph(ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": "Error validating access token: Session has expired", "type": "OAuthException",
        "code": 190, "error_subcode": 463, "fbtrace_id": "AbC"}})))
    .await;
    let worker = stack.meta_lead_worker(&queue, &graph.uri());
    let response = meta_lead::handle(&inbound, leadgen_request(&tenant, &page, None))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(queue.drain_meta_leads(&worker).await, 1);
    assert_eq!(queue.depth(&queue.url).await, 0, "parked, not retried");
    let parked = stack
        .archive()
        .parked(&tenant.id, Integration::MetaLeadAds, PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].hold, Hold::Parked(tenant.id.clone()));
    let errors = stack.error_logs(&tenant.id, "graph_token_invalid").await;
    assert_eq!(errors.len(), 1);
    assert!(errors[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("Graph 190/463"));
}

#[tokio::test]
async fn a_forged_leadgen_delivery_is_401_and_queues_nothing() {
    let (stack, tenant, queue) = setup(false).await;
    let page = page_id();
    let inbound = stack.meta_lead(&queue, &tenant, &page).await;
    let response = meta_lead::handle(
        &inbound,
        leadgen_request(
            &tenant,
            &page,
            Some("sha256=0000000000000000000000000000000000000000000000000000000000000000"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(queue.depth(&queue.url).await, 0);
}

/// The same person writes on WhatsApp first, then fills a lead form: one card, two entries.
#[tokio::test]
async fn whatsapp_then_a_lead_form_land_on_one_card() {
    let (stack, tenant, queue) = setup(false).await;
    let response = whatsapp_inbound::handle(
        &stack.inbound(&queue),
        signed_request("text-message", &tenant, |b| b),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    queue.drain(&stack.worker(&queue)).await;
    let page = page_id();
    let inbound = stack.meta_lead(&queue, &tenant, &page).await;
    // Filled a day after the WhatsApp message (2026-11-24 09:00 UTC).
    let mut later = graph_lead();
    later["created_time"] = json!("2026-11-25T10:00:00+0000");
    let graph = graph(ResponseTemplate::new(200).set_body_json(later)).await;
    let worker = stack.meta_lead_worker(&queue, &graph.uri());
    meta_lead::handle(&inbound, leadgen_request(&tenant, &page, None))
        .await
        .unwrap();
    queue.drain_meta_leads(&worker).await;
    let crm = stack.crm();
    let phone = IdentityKey::Phone(PhoneNumber::parse("05331234567").unwrap());
    let cards = crm.find_cards(&tenant.id, &phone).await.unwrap();
    assert_eq!(cards.len(), 1, "{cards:?}");
    let timeline = crm
        .timeline(&tenant.id, &cards[0].card_id, 10)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    let card = crm
        .card(&tenant.id, &cards[0].card_id)
        .await
        .unwrap()
        .unwrap();
    let lead = card.lead.unwrap();
    assert_eq!(lead.source, LeadSource::WhatsApp, "first touch stays");
    assert_eq!(
        lead.last_touch.channel,
        onecrm_domain::timeline::Channel::MetaLeadAds,
        "last touch moves forward"
    );
}

/// The same lead handled by two workers at once (both looked the person up and found nothing
/// before either wrote): one lead, one timeline entry, one duplicate.
#[tokio::test]
async fn the_same_lead_in_two_workers_at_once_makes_one_lead() {
    let (stack, tenant, queue) = setup(false).await;
    let page = page_id();
    let inbound = stack.meta_lead(&queue, &tenant, &page).await;
    let graph = graph(ResponseTemplate::new(200).set_body_json(graph_lead())).await;
    meta_lead::handle(&inbound, leadgen_request(&tenant, &page, None))
        .await
        .unwrap();
    let envelope = queue.peek_envelope().await;
    let wiring = stack.wiring();
    let repo = std::sync::Arc::new(BothInFlight {
        inner: wiring.crm.clone(),
        barrier: tokio::sync::Barrier::new(2),
    });
    let worker = || {
        onecrm_domain::meta_lead::worker::MetaLeadWorker::new(
            stack.graph_leads(&graph.uri()),
            repo.clone(),
            wiring.crm.clone(),
            wiring.archive().unwrap(),
            wiring.log.clone(),
            90,
        )
    };
    let (a, b) = (worker(), worker());
    let (ra, rb) = tokio::join!(a.handle(envelope.clone(), 1), b.handle(envelope.clone(), 1));
    assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
    let crm = stack.crm();
    let phone = IdentityKey::Phone(PhoneNumber::parse("05331234567").unwrap());
    let cards = crm.find_cards(&tenant.id, &phone).await.unwrap();
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!(
        crm.timeline(&tenant.id, &cards[0].card_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let results: Vec<LogResult> = stack
        .integration_logs(&tenant.id, Integration::MetaLeadAds)
        .await
        .iter()
        .filter(|r| r.operation == "meta.leadgen.process")
        .map(|r| r.result)
        .collect();
    assert_eq!(results.len(), 2);
    assert!(
        results.contains(&LogResult::Success) && results.contains(&LogResult::Duplicate),
        "{results:?}"
    );
}

/// Graph answers 500 once, then the lead: the partner client's backoff retries within the call,
/// and the call's one log record says it took two attempts.
#[tokio::test]
async fn a_graph_500_then_the_lead_lands_it_on_the_second_attempt() {
    let (stack, tenant, queue) = setup(false).await;
    let page = page_id();
    let inbound = stack.meta_lead(&queue, &tenant, &page).await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{LEADGEN_ID}")))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"message": "An unknown error has occurred.", "type": "OAuthException", "code": 1}}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{LEADGEN_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(graph_lead()))
        .mount(&server)
        .await;
    let worker = stack.meta_lead_worker(&queue, &server.uri());
    meta_lead::handle(&inbound, leadgen_request(&tenant, &page, None))
        .await
        .unwrap();
    assert_eq!(queue.drain_meta_leads(&worker).await, 1);
    let phone = IdentityKey::Phone(PhoneNumber::parse("05331234567").unwrap());
    assert!(stack
        .crm()
        .find_card(&tenant.id, &phone)
        .await
        .unwrap()
        .is_some());
    let calls: Vec<_> = stack
        .integration_logs(&tenant.id, Integration::MetaLeadAds)
        .await
        .into_iter()
        .filter(|r| r.operation == "graph.lead.get")
        .collect();
    assert_eq!(calls.len(), 1, "one record per call, not per attempt");
    assert_eq!(
        (calls[0].result, calls[0].attempt),
        (LogResult::Success, Some(2))
    );
}

/// Graph answers 100 (the lead is gone or not ours to read): an error record on every
/// delivery, then the DLQ with `dead_lettered`; no card.
#[tokio::test]
async fn a_lead_graph_will_not_give_ends_in_the_dlq_with_its_error() {
    let (stack, tenant, queue) = setup(false).await;
    let page = page_id();
    let inbound = stack.meta_lead(&queue, &tenant, &page).await;
    let graph = graph(ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": "Unsupported get request. Object with ID '1234567890123456789' does not exist",
        "type": "GraphMethodException", "code": 100, "error_subcode": 33}})))
    .await;
    let worker = stack.meta_lead_worker(&queue, &graph.uri());
    meta_lead::handle(&inbound, leadgen_request(&tenant, &page, None))
        .await
        .unwrap();
    for _ in 0..(queue.max_receive_count + 2) {
        queue
            .poll_with(Some(0), |event| async {
                meta_lead_worker::handle(
                    &worker,
                    lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
                )
                .await
                .unwrap()
            })
            .await;
    }
    assert_eq!(queue.depth(&queue.url).await, 0);
    assert_eq!(queue.depth(&queue.dlq_url).await, 1);
    let errors = stack.error_logs(&tenant.id, "lead_not_accessible").await;
    assert_eq!(errors.len() as u32, queue.max_receive_count - 1);
    assert!(errors[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("Graph 100/33"));
    assert_eq!(stack.error_logs(&tenant.id, "dead_lettered").await.len(), 1);
    let phone = IdentityKey::Phone(PhoneNumber::parse("05331234567").unwrap());
    assert!(stack
        .crm()
        .find_card(&tenant.id, &phone)
        .await
        .unwrap()
        .is_none());
}
