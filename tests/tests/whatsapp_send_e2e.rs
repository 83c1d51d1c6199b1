//! Outbound WhatsApp end to end on the emulator: the committed send request through `crm-api`,
//! the real SQS queue, `whatsapp-worker` calling a Graph stand-in (wiremock) with the tenant's
//! token from Secrets Manager, and Meta's signed statuses back through `whatsapp-inbound`.
//! Each of Meta's error classes ends as users expect: failed with a clear reason, waiting to go
//! again, or uncertain and never sent twice.

use std::sync::Arc;

use onecrm_adapters::dead_letters::SqsDeadLetters;
use onecrm_adapters::partner::whatsapp::GraphMessages;
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_domain::operator::keys::{key_hash, OperatorKey, OperatorKeys, Scope};
use onecrm_domain::party::Card;
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CallRepository, CrmRepository};
use onecrm_domain::tenant::secret_name;
use onecrm_domain::timeline::{Channel, Direction, TimelineEntry};
use onecrm_domain::whatsapp::{WhatsAppSecrets, SECRET_INTEGRATION};
use onecrm_e2e::*;
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Desk {
    stack: Stack,
    tenant: TestTenant,
    queue: TestQueue,
    graph: MockServer,
    api: crm_api::App,
    worker: whatsapp_worker::App,
    key: String,
}

async fn desk() -> Desk {
    let stack = stack().await;
    let tenant = stack.tenant(false).await;
    // The tenant's system-user token, beside its verify token.
    let secrets = WhatsAppSecrets {
        verify_token: tenant.verify_token.clone(),
        access_token: Some("EAAB-test-token".into()),
    };
    stack
        .secrets()
        .put(
            &secret_name(
                &stack.settings.tenant_secret_prefix,
                &tenant.id,
                SECRET_INTEGRATION,
            ),
            &serde_json::to_string(&secrets).unwrap(),
        )
        .await
        .unwrap();
    let queue = stack.queue().await;
    let graph = MockServer::start().await;
    let wiring = stack.wiring();
    let sender = GraphMessages::new(
        wiring.partner().unwrap(),
        wiring.secrets(),
        stack.settings.tenant_secret_prefix.clone(),
        "v21.0",
        40,
    )
    .at(&graph.uri());
    let worker =
        whatsapp_worker::App::with_sender(&wiring, Arc::new(sender), queue.max_receive_count);
    let raw_events = std::env::var("RAW_EVENT_TABLE").unwrap();
    let api = crm_api::App::new(
        &wiring,
        &raw_events,
        Arc::new(SqsDeadLetters::new(&stack.sdk, Default::default())),
    )
    .sending_to(Arc::new(SqsEventQueue::new(stack.sqs(), queue.url.clone())));
    let key = format!("ocrm_{}", uuid::Uuid::new_v4().simple());
    let stored = OperatorKey {
        tenant_id: tenant.id.clone(),
        name: "satis-ayse".into(),
        scopes: vec![Scope::Send, Scope::Cards],
        created_at: chrono::Utc::now(),
    };
    stack.crm().put_key(&key_hash(&key), &stored).await.unwrap();
    Desk {
        stack,
        tenant,
        queue,
        graph,
        api,
        worker,
        key,
    }
}

impl Desk {
    async fn card(&self, id: &str, phone: &str) {
        let card = Card::person_customer(
            id,
            "Ayşe Yılmaz",
            vec![PhoneNumber::parse(phone).unwrap()],
            chrono::Utc::now(),
        );
        self.stack
            .crm()
            .create_card(&self.tenant.id, &card)
            .await
            .unwrap();
    }

    /// The committed sample request with this body (and path).
    async fn call(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut event = fixture(
            "crm-api",
            if body.is_some() {
                "whatsapp-send"
            } else {
                "whatsapp-send-status"
            },
        );
        event["headers"]["authorization"] = json!(format!("Bearer {}", self.key));
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        if let Some(body) = body {
            event["body"] = json!(body.to_string());
        }
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = crm_api::handle(&self.api, request).await.unwrap();
        (response.status().as_u16(), body_json(&response))
    }

    async fn send(&self, send_id: &str, card: &str, message: Value) -> (u16, Value) {
        self.call(
            "/v1/whatsapp/messages",
            Some(json!({ "send_id": send_id, "card_id": card, "message": message })),
        )
        .await
    }

    async fn state(&self, send_id: &str) -> Value {
        self.call(&format!("/v1/whatsapp/messages/{send_id}"), None)
            .await
            .1
    }

    /// Polls with failures back at once (visibility 0), as many rounds as asked.
    async fn work(&self, rounds: usize) {
        for _ in 0..rounds {
            self.queue.poll(&self.worker, Some(0)).await;
        }
    }

    async fn meta_answers(&self, to: &str, status: u16, body: Value) {
        Mock::given(method("POST"))
            .and(path(format!(
                "/v21.0/{}/messages",
                self.tenant.phone_number_id
            )))
            .and(body_partial_json(json!({ "to": to })))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&self.graph)
            .await;
    }
}

fn template() -> Value {
    json!({ "type": "template", "name": "randevu_hatirlatma", "language": "tr", "parameters": ["Ayşe Hanım"] })
}

fn meta_error(code: i64, details: &str) -> Value {
    json!({ "error": { "message": format!("(#{code}) {details}"), "type": "OAuthException", "code": code,
                        "error_data": { "messaging_product": "whatsapp", "details": details }, "fbtrace_id": "AbC" } })
}

#[tokio::test]
async fn a_template_is_sent_once_and_metas_statuses_follow_it() {
    let d = desk().await;
    d.card("send-card-1", "0533 412 00 01").await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{}/messages", d.tenant.phone_number_id)))
        .and(header("authorization", "Bearer EAAB-test-token"))
        .and(body_partial_json(json!({ "to": "905334120001", "type": "template",
            "template": { "name": "randevu_hatirlatma", "language": { "code": "tr" } } })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp", "contacts": [{ "input": "905334120001", "wa_id": "905334120001" }],
            "messages": [{ "id": "wamid.E2E-1", "message_status": "accepted" }] })))
        .expect(1)
        .mount(&d.graph)
        .await;
    let (status, body) = d.send("e2e-send-1", "send-card-1", template()).await;
    assert_eq!(status, 202, "{body}");
    // The caller repeats itself (a timeout on its side): the same send, one message.
    let (status, body) = d.send("e2e-send-1", "send-card-1", template()).await;
    assert_eq!((status, &body["duplicate"]), (200, &json!(true)));
    d.work(3).await;
    let state = d.state("e2e-send-1").await;
    assert_eq!(state["send"]["state"], "sent", "{state}");
    assert_eq!(state["send"]["wamid"], "wamid.E2E-1");
    // Meta's first status makes the message record.
    assert!(state["delivery"].is_null(), "{state}");
    // Meta's statuses, signed, through the webhook: the send shows read.
    let inbound = d.stack.inbound(&d.queue);
    let request = signed_request("status-read", &d.tenant, |body| {
        body.replace(
            "wamid.HBgMOTA1MzMxMjM0NTY3FQIAERgSQjFBOEM3RjRGRTYwRUE3RTAyAA==",
            "wamid.E2E-1",
        )
    });
    let response = whatsapp_inbound::handle(&inbound, request).await.unwrap();
    assert_eq!(response.status(), 200);
    d.work(2).await;
    let state = d.state("e2e-send-1").await;
    assert_eq!(state["delivery"]["status"], "read", "{state}");
    // The card shows the message and how far it got.
    let (status, card) = d.call("/v1/cards/send-card-1", None).await;
    assert_eq!(status, 200, "{card}");
    let shown = card["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["direction"] == "outbound")
        .unwrap();
    assert_eq!(shown["delivery"]["status"], "read", "{shown}");
    // The card's timeline shows the message.
    let timeline = d
        .stack
        .crm()
        .timeline(&d.tenant.id, "send-card-1", 10)
        .await
        .unwrap();
    let sent = timeline
        .iter()
        .find(|e| e.channel == Channel::WhatsApp && e.direction == Direction::Outbound)
        .unwrap();
    assert_eq!(sent.external_id.as_deref(), Some("wamid.E2E-1"));
    assert_eq!(sent.text, "[Şablon] randevu_hatirlatma (tr)");
    let logs = d
        .stack
        .integration_logs(&d.tenant.id, onecrm_domain::log::Integration::WhatsApp)
        .await;
    let operations: Vec<&str> = logs.iter().map(|r| r.operation.as_str()).collect();
    for expected in [
        "whatsapp.send.queued",
        "graph.message.send",
        "whatsapp.status.apply",
    ] {
        assert!(operations.contains(&expected), "{operations:?}");
    }
    let call = logs
        .iter()
        .find(|r| r.operation == "graph.message.send")
        .unwrap();
    assert!(
        !format!("{:?}", call.payload).contains("EAAB-test-token"),
        "the token never reaches the log"
    );
}

#[tokio::test]
async fn each_of_metas_error_classes_ends_as_users_expect() {
    let d = desk().await;
    let cases = [
        ("e2e-undeliverable", "0533 412 10 01", 400, meta_error(131026, "Message Undeliverable."), "failed", "whatsapp_not_on_whatsapp"),
        ("e2e-params", "0533 412 10 02", 400, meta_error(132000, "body: number of localizable_params (2) does not match the expected number of params (1)"), "failed", "whatsapp_template_parameters"),
        ("e2e-missing", "0533 412 10 03", 404, meta_error(132001, "template name does not exist in tr"), "failed", "whatsapp_template_missing"),
        ("e2e-throughput", "0533 412 10 04", 429, meta_error(130429, "Cloud API message throughput has been reached."), "waiting", "whatsapp_rate_limited"),
        ("e2e-pair", "0533 412 10 05", 400, meta_error(131056, "pair rate limit hit"), "waiting", "whatsapp_pair_rate_limited"),
        ("e2e-token", "0533 412 10 06", 401, meta_error(190, "Session has expired"), "waiting", "whatsapp_token_invalid"),
        ("e2e-unknown", "0533 412 10 07", 502, json!("Bad Gateway"), "uncertain", "whatsapp_outcome_unknown"),
        // A 5xx may come after Meta took the message, whatever its code: never sent again.
        ("e2e-500", "0533 412 10 08", 500, meta_error(131000, "Something went wrong"), "uncertain", "whatsapp_outcome_unknown"),
    ];
    for (i, (send_id, phone, status, body, _, _)) in cases.iter().enumerate() {
        let card = format!("err-card-{i}");
        d.card(&card, phone).await;
        let to = PhoneNumber::parse(phone).unwrap().digits().to_string();
        d.meta_answers(&to, *status, body.clone()).await;
        assert_eq!(d.send(send_id, &card, template()).await.0, 202);
    }
    d.work(1).await;
    for (send_id, _, _, _, state, code) in &cases {
        let view = d.state(send_id).await;
        assert_eq!(view["send"]["state"], *state, "{send_id}: {view}");
        assert_eq!(view["send"]["problem"]["code"], *code, "{send_id}: {view}");
        assert!(view["send"]["problem"]["message_tr"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let requests = d.graph.received_requests().await.unwrap();
    let calls_to = |digits: &str| {
        requests
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(digits))
            .count()
    };
    assert_eq!(
        calls_to("905334121006"),
        2,
        "a refused token is read again once"
    );
    // Throttled sends go again once Meta takes them; failed and uncertain ones never do.
    d.graph.reset().await;
    for (send_id, phone, ..) in &cases {
        let to = PhoneNumber::parse(phone).unwrap().digits().to_string();
        d.meta_answers(
            &to,
            200,
            json!({ "messages": [{ "id": format!("wamid.{send_id}") }] }),
        )
        .await;
    }
    d.work(3).await;
    for (send_id, _, _, _, state, _) in &cases {
        let now = d.state(send_id).await["send"]["state"].clone();
        let expected = if *state == "waiting" { "sent" } else { state };
        assert_eq!(now, expected, "{send_id}");
    }
    let requests = d.graph.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "only the three waiting sends went again");
}

#[tokio::test]
async fn texts_go_inside_the_customers_24_hours_only() {
    let d = desk().await;
    d.card("text-card", "0533 412 20 01").await;
    let text = json!({ "type": "text", "body": "Teklifiniz hazır, inceleyebilirsiniz." });
    let (status, body) = d.send("e2e-text-1", "text-card", text.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("whatsapp_template_required"))
    );
    // The customer writes: the window opens, and Meta's own 131047 is still understood.
    let entry = TimelineEntry {
        entry_id: "wa:e2e-in".into(),
        card_id: "text-card".into(),
        channel: Channel::WhatsApp,
        direction: Direction::Inbound,
        kind: "text".into(),
        text: "Merhaba".into(),
        external_id: Some("wamid.e2e-in".into()),
        attachment: None,
        details: Value::Null,
        occurred_at: chrono::Utc::now() - chrono::Duration::hours(3),
        trace_id: "t-in".into(),
    };
    d.stack
        .crm()
        .ensure_entry(&d.tenant.id, &entry)
        .await
        .unwrap();
    d.meta_answers(
        "905334122001",
        400,
        meta_error(131047, "more than 24 hours have passed"),
    )
    .await;
    assert_eq!(d.send("e2e-text-2", "text-card", text).await.0, 202);
    d.work(1).await;
    let view = d.state("e2e-text-2").await;
    assert_eq!(view["send"]["state"], "failed");
    assert_eq!(
        view["send"]["problem"]["code"],
        "whatsapp_template_required"
    );
    assert_eq!(view["send"]["problem"]["meta_code"], 131047);
}
