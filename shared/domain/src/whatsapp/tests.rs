//! Use-case tests of the WhatsApp webhook and worker with in-memory ports: realistic Meta
//! payloads in, stored state and log records out.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::envelope::{Envelope, TraceId};
use crate::ingress::Parsed;
use crate::ingress::{Hold, InboundRequest, IngressPorts};
use crate::log::{IntegrationLog, LogResult};
use crate::meta::{sign, HandshakeQuery};
use crate::party::{Card, CardKind, IdentityKey, LeadSource};
use crate::phone::PhoneNumber;
use crate::ports::{CrmRepository, TenantDirectory};
use crate::tenant::{IntegrationSettings, TenantConfig, TenantId, TenantRoute, WhatsAppSettings};
use crate::testing::*;
use crate::whatsapp::event::{MessageContent, WhatsAppEvent};
use crate::whatsapp::parse::parse_body;
use crate::whatsapp::status::DeliveryStatus;
use crate::whatsapp::webhook::{WebhookSettings, WhatsAppWebhook};
use crate::whatsapp::worker::WhatsAppWorker;

const SECRET: &str = "demo-app-secret";
const PHONE_NUMBER_ID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const APP: &str = "1234";
const APP_SECRET_NAME: &str = "onecrm/apps/meta/1234";

fn delivery(value: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": WABA, "changes": [{ "field": "messages", "value": value }] }]
    })
    .to_string()
}

fn messages(contacts: Value, messages: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "908503031234", "phone_number_id": PHONE_NUMBER_ID },
        "contacts": contacts,
        "messages": messages
    })
}

fn text_from(from: &str, wamid: &str, body: &str) -> String {
    delivery(messages(
        json!([{ "profile": { "name": "Ayşe Yılmaz" }, "wa_id": from }]),
        json!([{ "from": from, "id": wamid, "timestamp": "1764000000", "type": "text", "text": { "body": body } }]),
    ))
}

fn status(wamid: &str, status: &str, ts: &str) -> String {
    let mut s =
        json!({ "id": wamid, "status": status, "timestamp": ts, "recipient_id": "905331234567" });
    if status == "failed" {
        s["errors"] = json!([{ "code": 131026, "title": "Message undeliverable", "message": "Message undeliverable", "error_data": { "details": "Message Undeliverable." } }]);
    }
    delivery(json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "908503031234", "phone_number_id": PHONE_NUMBER_ID },
        "statuses": [s]
    }))
}

struct World {
    tenants: Arc<MemoryTenants>,
    secrets: Arc<MemorySecrets>,
    queue: Arc<MemoryQueue>,
    crm: Arc<MemoryCrm>,
    logs: Arc<MemoryLogSink>,
    archive: Arc<MemoryArchive>,
    webhook: WhatsAppWebhook,
    worker: WhatsAppWorker,
    tenant: TenantId,
}

fn tenant_config(id: &str, phone_number_id: &str) -> TenantConfig {
    TenantConfig {
        tenant_id: TenantId::parse(id).unwrap(),
        name: "Demo".into(),
        default_owner: Some("user-1".into()),
        integrations: IntegrationSettings {
            whatsapp: Some(WhatsAppSettings {
                phone_number_id: phone_number_id.into(),
                display_phone_number: "908503031234".into(),
                meta_app_id: APP.into(),
                create_lead_for_unknown_numbers: true,
                create_task_for_new_lead: true,
            }),
            ..Default::default()
        },
        created_at: chrono::Utc::now(),
    }
}

fn world() -> World {
    let tenants = Arc::new(MemoryTenants::default());
    let tenant = TenantId::parse("demo").unwrap();
    tenants.add(
        tenant_config("demo", PHONE_NUMBER_ID),
        &[
            TenantRoute::WhatsAppPhoneNumberId(PHONE_NUMBER_ID.into()),
            TenantRoute::WhatsAppBusinessAccount(WABA.into()),
            TenantRoute::meta_verify_token("demo-verify-token"),
        ],
        Some(APP),
    );
    let secrets = Arc::new(MemorySecrets::default());
    secrets.set(
        "onecrm/tenants/demo/whatsapp",
        &json!({"verify_token": "demo-verify-token"}).to_string(),
    );
    secrets.set(
        APP_SECRET_NAME,
        &json!({ "app_secret": SECRET }).to_string(),
    );
    let archive = Arc::new(MemoryArchive::default());
    let queue = Arc::new(MemoryQueue::default());
    let crm = Arc::new(MemoryCrm::default());
    let logs = Arc::new(MemoryLogSink::default());
    let log = IntegrationLog::new(
        logs.clone(),
        Arc::new(FixedClock::at("2026-11-24T12:00:00Z")),
        Arc::new(SequentialIds::default()),
        90,
    );
    let webhook = WhatsAppWebhook::new(
        IngressPorts {
            tenants: tenants.clone(),
            secrets: secrets.clone(),
            queue: queue.clone(),
            archive: archive.clone(),
            log: log.clone(),
        },
        WebhookSettings {
            tenant_secret_prefix: "onecrm/tenants/".into(),
            app_secret_prefix: "onecrm/apps/".into(),
            max_body_bytes: 64 * 1024,
            default_app_id: None,
            retention_days: 90,
        },
    );
    let worker = WhatsAppWorker::new(crm.clone(), tenants.clone(), log);
    World {
        tenants,
        secrets,
        queue,
        crm,
        logs,
        archive,
        webhook,
        worker,
        tenant,
    }
}

impl World {
    async fn post(&self, body: &str) -> crate::http::HttpReply {
        let signature = sign(SECRET.as_bytes(), body.as_bytes());
        self.post_signed(body, Some(&signature)).await
    }

    async fn post_signed(&self, body: &str, signature: Option<&str>) -> crate::http::HttpReply {
        let headers: Vec<(&str, &str)> = signature
            .map(|s| vec![("x-hub-signature-256", s)])
            .unwrap_or_default();
        let request = InboundRequest {
            body: body.as_bytes(),
            headers: &headers,
            source_ip: None,
            path_token: None,
        };
        self.webhook
            .deliver(&request, &TraceId::new("trace-1"))
            .await
    }

    /// Every log record as stored JSON, to look for what must not be there.
    fn log_text(&self) -> String {
        serde_json::to_string(&self.logs.records()).unwrap()
    }

    /// Runs every queued envelope through the worker, as the SQS consumer would.
    async fn drain(&self) {
        for envelope in self.queue.sent() {
            self.worker.handle(envelope, 1).await.unwrap();
        }
    }

    fn last_queued(&self) -> Envelope {
        self.queue.sent().last().cloned().unwrap()
    }
}

#[tokio::test]
async fn handshake_echoes_challenge_for_the_tenants_token_only() {
    let w = world();
    let q = |token: &str| HandshakeQuery {
        mode: Some("subscribe".into()),
        verify_token: Some(token.into()),
        challenge: Some("1158201444".into()),
    };
    let ok = w
        .webhook
        .handshake(&q("demo-verify-token"), &TraceId::new("t"))
        .await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "1158201444"));
    assert_eq!(
        w.webhook
            .handshake(&q("wrong"), &TraceId::new("t"))
            .await
            .status,
        403
    );
    let no_mode = HandshakeQuery {
        mode: None,
        ..q("demo-verify-token")
    };
    assert_eq!(
        w.webhook
            .handshake(&no_mode, &TraceId::new("t"))
            .await
            .status,
        403
    );
    assert_eq!(w.logs.records().len(), 3);
}

#[tokio::test]
async fn unknown_number_becomes_a_lead_with_note_timeline_task_and_logs() {
    let w = world();
    let body = text_from("905331234567", "wamid.A1", "Merhaba, fiyat alabilir miyim?");
    let reply = w.post(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(w.queue.sent().len(), 1);
    assert_eq!(w.last_queued().trace_id.as_str(), "trace-1");
    w.drain().await;

    let phone = PhoneNumber::parse("0533 123 45 67").unwrap();
    let card = w
        .crm
        .find_cards(&w.tenant, &IdentityKey::Phone(phone.clone()))
        .await
        .unwrap()
        .pop()
        .expect("lead");
    assert_eq!(card.kind, CardKind::Lead);
    let lead = w.crm.card(&w.tenant, &card.card_id).await.unwrap().unwrap();
    assert_eq!(lead.display_name, "Ayşe Yılmaz");
    assert_eq!(lead.phones, vec![phone]);
    assert_eq!(lead.owner.as_deref(), Some("user-1"));
    let details = lead.lead.unwrap();
    assert_eq!(details.source, LeadSource::WhatsApp);
    assert_eq!(details.first_touch.external_id.as_deref(), Some("wamid.A1"));
    let notes = w.crm.notes(&w.tenant, &card.card_id).await.unwrap();
    assert_eq!(notes[0].text, "Merhaba, fiyat alabilir miyim?");
    let timeline = w.crm.timeline(&w.tenant, &card.card_id, 10).await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].trace_id, "trace-1");
    let tasks = w.crm.tasks(&w.tenant, &card.card_id).await.unwrap();
    assert_eq!(tasks[0].owner, "user-1");
    assert!(tasks[0].title.contains("Ayşe Yılmaz"));

    let logs = w.logs.records();
    assert_eq!(
        logs.len(),
        2,
        "one for the webhook call, one for the worker"
    );
    assert!(logs.iter().all(|r| r.trace_id.as_str() == "trace-1"
        && r.tenant_id == w.tenant
        && r.result == LogResult::Success));
    assert_eq!(logs[1].card_id.as_deref(), Some(card.card_id.as_str()));
}

#[tokio::test]
async fn known_customer_gets_a_timeline_entry_not_a_lead() {
    let w = world();
    let now = chrono::Utc::now();
    let customer = Card::person_customer(
        "c-1",
        "Mehmet Demir",
        vec![PhoneNumber::parse("+90 532 111 22 33").unwrap()],
        now,
    );
    w.crm.create_card(&w.tenant, &customer).await.unwrap();
    assert_eq!(
        w.post(&text_from(
            "905321112233",
            "wamid.B1",
            "Poliçem ne zaman bitiyor?"
        ))
        .await
        .status,
        200
    );
    w.drain().await;
    assert_eq!(w.crm.cards(&w.tenant).len(), 1, "no lead was created");
    let timeline = w.crm.timeline(&w.tenant, "c-1", 10).await.unwrap();
    assert_eq!(timeline[0].text, "Poliçem ne zaman bitiyor?");
}

#[tokio::test]
async fn duplicate_delivery_changes_nothing() {
    let w = world();
    let body = text_from("905331234567", "wamid.D1", "Merhaba");
    w.post(&body).await;
    w.post(&body).await;
    w.drain().await;
    assert_eq!(w.crm.cards(&w.tenant).len(), 1);
    let card = &w.crm.cards(&w.tenant)[0];
    assert_eq!(
        w.crm
            .timeline(&w.tenant, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        w.crm.tasks(&w.tenant, &card.card_id).await.unwrap().len(),
        1
    );
    let results: Vec<LogResult> = w.logs.records().iter().map(|r| r.result).collect();
    assert!(results.contains(&LogResult::Duplicate), "{results:?}");
}

#[tokio::test]
async fn second_message_from_a_new_lead_joins_its_timeline() {
    let w = world();
    w.post(&text_from("905331234567", "wamid.E1", "Merhaba"))
        .await;
    w.post(&text_from("+90 533 123 45 67", "wamid.E2", "Kasko fiyatı?"))
        .await;
    w.drain().await;
    let cards = w.crm.cards(&w.tenant);
    assert_eq!(cards.len(), 1);
    let timeline = w
        .crm
        .timeline(&w.tenant, &cards[0].card_id, 10)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 2);
}

#[tokio::test]
async fn statuses_never_regress_and_failed_keeps_the_error() {
    let w = world();
    for (s, ts) in [
        ("sent", "1764000001"),
        ("read", "1764000003"),
        ("delivered", "1764000002"),
        ("read", "1764000003"),
    ] {
        assert_eq!(w.post(&status("wamid.OUT1", s, ts)).await.status, 200);
    }
    w.drain().await;
    let message = w
        .crm
        .outbound_message(&w.tenant, "wamid.OUT1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.status, DeliveryStatus::Read);
    let ignored = w
        .logs
        .records()
        .iter()
        .filter(|r| r.result == LogResult::Ignored)
        .count();
    assert_eq!(ignored, 2, "the late delivered and the duplicate read");

    w.post(&status("wamid.OUT2", "failed", "1764000009")).await;
    w.drain().await;
    let failed = w
        .crm
        .outbound_message(&w.tenant, "wamid.OUT2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (failed.error_code, failed.error_title.as_deref()),
        (Some(131026), Some("Message undeliverable"))
    );
    let record = w
        .logs
        .records()
        .into_iter()
        .find(|r| r.error_code.as_deref() == Some("131026"))
        .unwrap();
    assert_eq!(record.result, LogResult::Error);
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_logged_and_queues_nothing() {
    let w = world();
    let body = text_from("905331234567", "wamid.S1", "Merhaba");
    let wrong = sign(b"not-the-secret", body.as_bytes());
    let reply = w.post_signed(&body, Some(&wrong)).await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("signature_invalid"));
    assert_eq!(w.post_signed(&body, None).await.status, 401);
    assert!(w.queue.sent().is_empty());
    assert_eq!(
        w.logs
            .records()
            .iter()
            .filter(|r| r.http_status == Some(401))
            .count(),
        2
    );
    // The mismatch asked for a fresh secret once (rotation), then gave up; a missing header
    // is no reason to re-read anything.
    assert_eq!(
        w.secrets.refreshes.load(Ordering::SeqCst),
        2,
        "first read + one refresh"
    );
    // Unauthenticated attempts are logged as size + hash + reason, never the body.
    for record in w.logs.records() {
        assert!(record.payload.is_none(), "{record:?}");
        assert!(record
            .external_message
            .as_deref()
            .unwrap_or("")
            .contains("sha256"));
    }
}

#[tokio::test]
async fn rotated_app_secret_is_picked_up_on_mismatch() {
    let w = world();
    w.post(&text_from("905331234567", "wamid.R0", "ilk")).await;
    // One update of the app's secret serves every tenant of the app.
    w.secrets.set(
        APP_SECRET_NAME,
        &json!({"app_secret": "rotated"}).to_string(),
    );
    let body = text_from("905331234567", "wamid.R1", "ikinci");
    let reply = w
        .post_signed(&body, Some(&sign(b"rotated", body.as_bytes())))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn only_bodies_that_are_not_a_whatsapp_notification_get_a_400() {
    let w = world();
    for (body, field, code) in [
        ("{not json", "body", "invalid_json"),
        (r#"{"object":"page","entry":[]}"#, "object", "invalid_value"),
        (
            r#"{"object":"whatsapp_business_account","entry":5}"#,
            "entry",
            "invalid_field",
        ),
    ] {
        let reply = w.post(body).await;
        assert_eq!(reply.status, 400, "{body}");
        let error: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            (
                error["error"]["field"].as_str(),
                error["error"]["code"].as_str()
            ),
            (Some(field), Some(code)),
            "{body}"
        );
    }
    assert!(w.queue.sent().is_empty(), "no partial write");
    assert!(w.logs.records().iter().all(|r| r.result == LogResult::Error
        && r.http_status == Some(400)
        && r.payload.is_none()));
}

/// Defect 1: a signed delivery with one event we do not understand used to be refused whole,
/// and Meta's retries got the same 400 until it gave up: the valid message was lost.
#[tokio::test]
async fn an_event_that_does_not_parse_is_kept_and_its_neighbours_are_queued() {
    let w = world();
    let body = delivery(messages(
        json!([{ "profile": { "name": "Ayşe Yılmaz" }, "wa_id": "905331234567" }]),
        json!([
            { "from": "905331234567", "id": "wamid.OK1", "timestamp": "1764000000", "type": "text", "text": { "body": "Merhaba" } },
            { "from": "905331234567", "id": "wamid.NEW", "timestamp": "1764000001", "type": "interactive", "interactive": { "type": "carousel_reply", "carousel_reply": { "id": "c1" } } },
            { "from": "12", "id": "wamid.BADPHONE", "timestamp": "1764000002", "type": "text", "text": { "body": "x" } },
            { "from": "905331234567", "id": "wamid.BADTS", "timestamp": 1764000003, "type": "text", "text": { "body": "x" } }
        ]),
    ));
    let reply = w.post(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].external_id, "wamid.OK1");
    let held = w.archive.held();
    let paths: Vec<&str> = held.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "entry[0].changes[0].value.messages[1]",
            "entry[0].changes[0].value.messages[2]",
            "entry[0].changes[0].value.messages[3]"
        ]
    );
    assert!(held
        .iter()
        .all(|h| h.hold == Hold::Unparsed(w.tenant.clone())));
    assert!(
        held[0].raw.contains("carousel_reply"),
        "kept whole: {}",
        held[0].raw
    );
    assert!(
        held[0].reason.contains("interactive.type"),
        "{}",
        held[0].reason
    );
    assert!(
        held[1].reason.contains("messages[2].from"),
        "{}",
        held[1].reason
    );
    assert!(held[2].reason.contains("timestamp"), "{}", held[2].reason);
    let errors: Vec<_> = w
        .logs
        .records()
        .into_iter()
        .filter(|r| r.result == LogResult::Error)
        .collect();
    assert_eq!(errors.len(), 3);
    assert!(errors
        .iter()
        .all(|r| r.error_code.as_deref() == Some("unparsed_event") && r.tenant_id == w.tenant));
    // A redelivery keeps each unparsed event once, and the message is still one lead.
    assert_eq!(w.post(&body).await.status, 200);
    assert_eq!(w.archive.held().len(), 3);
    w.drain().await;
    assert_eq!(w.crm.cards(&w.tenant).len(), 1);
}

/// Defect 2: with a shared app one delivery can carry several tenants' entries.
#[tokio::test]
async fn each_tenant_logs_only_its_own_entries_of_a_shared_delivery() {
    let w = world();
    let other = TenantId::parse("acme").unwrap();
    w.tenants.add(
        tenant_config("acme", "200000000000001"),
        &[TenantRoute::WhatsAppPhoneNumberId("200000000000001".into())],
        Some(APP),
    );
    let demo_change = json!({ "field": "messages", "value": messages(
        json!([{ "profile": { "name": "Ayşe" }, "wa_id": "905331234567" }]),
        json!([{ "from": "905331234567", "id": "wamid.DEMO", "timestamp": "1764000000", "type": "text", "text": { "body": "demo-only" } }])) });
    let mut acme_value = messages(
        json!([{ "profile": { "name": "Can" }, "wa_id": "905441112233" }]),
        json!([{ "from": "905441112233", "id": "wamid.ACME", "timestamp": "1764000000", "type": "text", "text": { "body": "acme-only" } }]),
    );
    acme_value["metadata"]["phone_number_id"] = json!("200000000000001");
    let body = json!({ "object": "whatsapp_business_account", "entry": [
        { "id": WABA, "changes": [demo_change] },
        { "id": "777", "changes": [{ "field": "messages", "value": acme_value }] }
    ]})
    .to_string();
    assert_eq!(w.post(&body).await.status, 200);
    let queued = w.queue.sent();
    assert_eq!(
        queued
            .iter()
            .map(|e| (e.tenant_id.as_str(), e.external_id.as_str()))
            .collect::<Vec<_>>(),
        [("demo", "wamid.DEMO"), ("acme", "wamid.ACME")]
    );
    for (tenant, own, foreign) in [
        (&w.tenant, "demo-only", "acme-only"),
        (&other, "acme-only", "demo-only"),
    ] {
        let records: Vec<_> = w
            .logs
            .records()
            .into_iter()
            .filter(|r| &r.tenant_id == tenant)
            .collect();
        assert_eq!(records.len(), 1);
        let text = serde_json::to_string(&records).unwrap();
        assert!(
            text.contains(own) && !text.contains(foreign),
            "{tenant}: {text}"
        );
    }
    let archived: Vec<_> = w
        .archive
        .kept()
        .into_iter()
        .filter_map(|k| match k {
            crate::ingress::Kept::Delivery(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(archived.len(), 2, "one raw record per tenant");
    assert!(archived.iter().all(|d| d.units.len() == 1));
}

/// Defect 3: an entry for a number no tenant owns used to be answered 200 and dropped.
#[tokio::test]
async fn events_for_an_unregistered_number_are_held_and_delivered_once_it_is_registered() {
    let w = world();
    let mut unknown_value = messages(
        json!([{ "profile": { "name": "Can" }, "wa_id": "905441112233" }]),
        json!([{ "from": "905441112233", "id": "wamid.LATER", "timestamp": "1764000000", "type": "text", "text": { "body": "Merhaba" } }]),
    );
    unknown_value["metadata"]["phone_number_id"] = json!("300000000000003");
    let known = json!({ "field": "messages", "value": messages(json!([]),
        json!([{ "from": "905331234567", "id": "wamid.NOW", "timestamp": "1764000000", "type": "text", "text": { "body": "x" } }])) });
    let body = json!({ "object": "whatsapp_business_account", "entry": [
        { "id": WABA, "changes": [known] },
        { "id": "333", "changes": [{ "field": "messages", "value": unknown_value }] }
    ]})
    .to_string();
    let reply = w.post(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(w.queue.sent().len(), 1);
    let route = TenantRoute::WhatsAppPhoneNumberId("300000000000003".into());
    let held = w.archive.held();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].hold, Hold::Unrouted(route.clone()));
    let unrouted_log = w
        .logs
        .records()
        .into_iter()
        .find(|r| r.error_code.as_deref() == Some("unrouted_event"))
        .unwrap();
    assert_eq!(unrouted_log.tenant_id, TenantId::unresolved());
    assert!(
        unrouted_log.payload.is_none(),
        "another business's data is not logged"
    );

    // Not registered yet: nothing to deliver.
    assert_eq!(w.webhook.release(&route).await.unwrap(), 0);
    w.tenants.add(
        tenant_config("late", "300000000000003"),
        std::slice::from_ref(&route),
        Some(APP),
    );
    assert_eq!(w.webhook.release(&route).await.unwrap(), 1);
    let late = w.queue.sent().pop().unwrap();
    assert_eq!(
        (late.tenant_id.as_str(), late.external_id.as_str()),
        ("late", "wamid.LATER")
    );
    assert_eq!(
        late.trace_id.as_str(),
        "trace-1",
        "the original trace follows the event"
    );
    assert!(w.archive.held().is_empty(), "released once delivered");
}

/// Defect 4: before the signature is checked, the work a request can cause is bounded.
#[tokio::test]
async fn a_forged_body_costs_a_few_lookups_and_leaves_no_payload() {
    let w = world();
    let changes: Vec<Value> = (0..50)
        .map(|i| json!({ "field": "messages", "value": { "metadata": { "display_phone_number": "1", "phone_number_id": format!("9{i:014}") }, "messages": [] } }))
        .chain([json!({ "field": "messages", "value": messages(json!([]), json!([])) })])
        .collect();
    let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": WABA, "changes": changes }] }).to_string();
    let forged = sign(b"guess", body.as_bytes());
    for _ in 0..3 {
        assert_eq!(
            w.post_signed(&body, Some(&forged)).await.status,
            400,
            "no known route among the first few"
        );
    }
    assert_eq!(
        w.tenants.lookups.load(Ordering::SeqCst),
        3 * crate::ingress::MAX_ROUTE_LOOKUPS_BEFORE_AUTH as u64
    );
    assert!(w.logs.records().iter().all(|r| r.payload.is_none()));
    assert_eq!(
        w.secrets.refreshes.load(Ordering::SeqCst),
        0,
        "no secret was read for an unroutable body"
    );
}

/// Before authentication a forged body cannot make the webhook copy, compare or log much.
#[tokio::test]
async fn forged_bodies_are_refused_cheaply_and_leave_no_copy_in_the_log() {
    let w = world();
    // Within the test webhook's 64 KB cap, so the parser sees them.
    let long = "9".repeat(30_000);
    let many: Vec<Value> = (0..6000).map(|_| json!({})).collect();
    for (body, code) in [
        (
            json!({ "object": "whatsapp_business_account", "entry": [{ "id": long, "changes": [{}] }] }),
            "missing",
        ),
        (
            json!({ "object": "whatsapp_business_account", "entry": [{ "id": WABA, "changes": many }] }),
            "too_many_parts",
        ),
        (
            json!({ "object": "whatsapp_business_account", "entry": "x".repeat(50_000) }),
            "invalid_field",
        ),
    ] {
        let reply = w.post(&body.to_string()).await;
        assert_eq!(reply.status, 400);
        assert!(
            reply.body.contains(code),
            "{}",
            &reply.body[..reply.body.len().min(300)]
        );
        assert!(
            reply.body.len() < 2_000,
            "the answer does not echo the body: {} bytes",
            reply.body.len()
        );
    }
    assert!(
        w.log_text().len() < 10_000,
        "no copy of a forged body in the log"
    );
    assert_eq!(w.tenants.lookups.load(Ordering::SeqCst), 0);
}

#[test]
fn a_message_gets_only_its_own_senders_profile_name() {
    let body = delivery(messages(
        json!([{ "profile": { "name": "Başkası" }, "wa_id": "905559998877" }, { "profile": { "name": "Diğeri" }, "wa_id": "905551112233" }]),
        json!([{ "from": "905331234567", "id": "wamid.N", "timestamp": "1764000000", "type": "text", "text": { "body": "x" } }]),
    ));
    let Parsed::Event(event) = &parse_body(&body).unwrap()[0] else {
        panic!()
    };
    assert!(event.payload["profile_name"].is_null(), "{}", event.payload);
}

/// Defect 5: a wamid is the sender's number in base64; logs keep only a hash of it.
#[tokio::test]
async fn logs_hold_no_wamid_and_no_profile_name() {
    let w = world();
    let wamid = "wamid.HBgMOTA1MzMxMjM0NTY3FQIAERgSQjFBOEM3RjRGRTYwRUE3RTAyAA==";
    w.post(&text_from("905331234567", wamid, "Merhaba")).await;
    w.drain().await;
    w.post(&status(wamid, "read", "1764000100")).await;
    w.drain().await;
    let text = w.log_text();
    assert!(!text.contains("HBgMOTA1"), "{text}");
    assert!(!text.contains("Ayşe") && !text.contains("Yılmaz"), "{text}");
    assert!(text.contains(&crate::mask::mask_wamid(wamid)));
    // The CRM keeps the real wamid where it is a key.
    let card = &w.crm.cards(&w.tenant)[0];
    assert_eq!(
        card.lead
            .as_ref()
            .unwrap()
            .first_touch
            .external_id
            .as_deref(),
        Some(wamid)
    );
}

#[tokio::test]
async fn unknown_tenant_and_oversized_bodies_are_rejected() {
    let w = world();
    let other = text_from("905331234567", "wamid.U1", "x")
        .replace(PHONE_NUMBER_ID, "999")
        .replace(WABA, "888");
    let reply = w.post(&other).await;
    assert_eq!(reply.status, 400, "nothing here authenticates it");
    assert!(reply.body.contains("unknown_tenant"));
    let huge = "x".repeat(64 * 1024 + 1);
    assert_eq!(w.post(&huge).await.status, 413);
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn queue_outage_answers_503_so_meta_retries() {
    let w = world();
    w.queue.failing.store(true, Ordering::SeqCst);
    let reply = w.post(&text_from("905331234567", "wamid.Q1", "x")).await;
    assert_eq!(reply.status, 503);
    let record = w.logs.records().pop().unwrap();
    assert_eq!(record.error_code.as_deref(), Some("enqueue_failed"));
    assert_eq!(record.http_status, Some(503));
    // The archive failing is just as much a reason for Meta to retry.
    w.queue.failing.store(false, Ordering::SeqCst);
    w.archive.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        w.post(&text_from("905331234567", "wamid.Q1", "x"))
            .await
            .status,
        503
    );
}

#[tokio::test]
async fn reactions_from_unknown_numbers_open_no_lead_but_are_logged() {
    let w = world();
    let body = delivery(messages(
        json!([{ "profile": { "name": "X" }, "wa_id": "905331234567" }]),
        json!([{ "from": "905331234567", "id": "wamid.RX", "timestamp": "1764000000", "type": "reaction", "reaction": { "message_id": "wamid.OUT", "emoji": "👍" } }]),
    ));
    w.post(&body).await;
    w.drain().await;
    assert!(w.crm.cards(&w.tenant).is_empty());
    assert_eq!(w.logs.records().last().unwrap().result, LogResult::Ignored);
}

#[tokio::test]
async fn tenant_lookup_is_per_phone_number_id() {
    let w = world();
    assert_eq!(
        w.tenants
            .resolve(&TenantRoute::WhatsAppPhoneNumberId(PHONE_NUMBER_ID.into()))
            .await
            .unwrap()
            .map(|t| (t.tenant_id, t.app_id)),
        Some((w.tenant.clone(), Some(APP.to_string())))
    );
    assert_eq!(
        w.tenants
            .resolve(&TenantRoute::WhatsAppPhoneNumberId("1".into()))
            .await
            .unwrap(),
        None
    );
}

/// Every message type Meta documents, in one delivery with two entries.
fn every_type() -> String {
    let from = "905331234567";
    let m = |id: &str, kind: &str, body: Value| {
        let mut v = json!({ "from": from, "id": id, "timestamp": "1764000000", "type": kind });
        if let Value::Object(extra) = body {
            for (k, x) in extra {
                v[k] = x;
            }
        }
        v
    };
    let list = json!([
        m("w1", "text", json!({"text": {"body": "Merhaba"}})),
        m(
            "w2",
            "image",
            json!({"image": {"caption": "Poliçe", "mime_type": "image/jpeg", "sha256": "SfInY0AbC=", "id": "1001"}})
        ),
        m(
            "w3",
            "audio",
            json!({"audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "a=", "id": "1002", "voice": true}})
        ),
        m(
            "w4",
            "video",
            json!({"video": {"mime_type": "video/mp4", "sha256": "b=", "id": "1003"}})
        ),
        m(
            "w5",
            "document",
            json!({"document": {"filename": "ruhsat.pdf", "mime_type": "application/pdf", "sha256": "c=", "id": "1004"}})
        ),
        m(
            "w6",
            "sticker",
            json!({"sticker": {"mime_type": "image/webp", "sha256": "d=", "id": "1005", "animated": false}})
        ),
        m(
            "w7",
            "location",
            json!({"location": {"latitude": 40.9901, "longitude": 29.0292, "name": "Kadıköy İskele", "address": "Kadıköy, İstanbul"}})
        ),
        m(
            "w8",
            "contacts",
            json!({"contacts": [{"name": {"formatted_name": "Ali Veli", "first_name": "Ali"}, "phones": [{"phone": "+90 532 000 00 00", "wa_id": "905320000000", "type": "CELL"}]}]})
        ),
        m(
            "w9",
            "interactive",
            json!({"context": {"from": "908503031234", "id": "wamid.OUR"}, "interactive": {"type": "button_reply", "button_reply": {"id": "quote_yes", "title": "Evet"}}})
        ),
        m(
            "w10",
            "interactive",
            json!({"interactive": {"type": "list_reply", "list_reply": {"id": "kasko", "title": "Kasko", "description": "Araç sigortası"}}})
        ),
        m(
            "w11",
            "button",
            json!({"context": {"from": "908503031234", "id": "wamid.TPL"}, "button": {"payload": "STOP", "text": "Durdur"}})
        ),
        m(
            "w12",
            "reaction",
            json!({"reaction": {"message_id": "wamid.OUR", "emoji": "👍"}})
        ),
        m(
            "w13",
            "order",
            json!({"order": {"catalog_id": "cat1", "text": "Acil", "product_items": [{"product_retailer_id": "SKU-1", "quantity": 2, "item_price": "__PRICE__", "currency": "try"}]}})
        ),
        m(
            "w14",
            "system",
            json!({"system": {"body": "User A changed from 905331234567 to 905339999999", "wa_id": "905339999999", "type": "user_changed_number"}})
        ),
        m(
            "w15",
            "unsupported",
            json!({"errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown", "error_data": {"details": "Message type is currently not supported."}}], "unsupported": {"type": "edit"}})
        ),
        m("w16", "poll_creation", json!({})),
    ]);
    json!({
        "object": "whatsapp_business_account",
        "entry": [
            { "id": WABA, "changes": [{ "field": "messages", "value": messages(json!([{ "profile": { "name": "Ayşe" }, "wa_id": from }]), list) }] },
            { "id": WABA, "changes": [
                { "field": "messages", "value": { "messaging_product": "whatsapp", "metadata": { "display_phone_number": "908503031234", "phone_number_id": PHONE_NUMBER_ID },
                    "statuses": [{ "id": "wamid.OUR", "status": "delivered", "timestamp": "1764000005", "recipient_id": from, "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility"} }] } },
                { "field": "account_update", "value": { "event": "VERIFIED_ACCOUNT" } }
            ] }
        ]
    })
    .to_string()
    // Meta sends prices as JSON numbers; json! would turn this one into an f64.
    .replace("\"__PRICE__\"", "1250.10")
}

#[test]
fn parses_every_message_type_and_keeps_unknown_ones() {
    let parsed = parse_body(&every_type()).unwrap();
    assert!(parsed.contains(&Parsed::Ignored("account_update".into())));
    let events: Vec<WhatsAppEvent> = parsed
        .iter()
        .filter_map(|p| match p {
            Parsed::Event(e) => Some(serde_json::from_value(e.payload.clone()).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 17, "nothing unparsed: {parsed:?}");
    let kinds: Vec<String> = events[..16]
        .iter()
        .map(|e| match e {
            WhatsAppEvent::Message(m) => m.content.kind(),
            WhatsAppEvent::Status(_) => "status".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "text",
            "image",
            "audio",
            "video",
            "document",
            "sticker",
            "location",
            "contacts",
            "interactive",
            "interactive",
            "button",
            "reaction",
            "order",
            "system",
            "unsupported:edit",
            "unsupported:poll_creation"
        ]
    );
    let message = |i: usize| match &events[i] {
        WhatsAppEvent::Message(m) => (**m).clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(message(0).from, "+905331234567");
    assert_eq!(message(0).profile_name.as_deref(), Some("Ayşe"));
    assert!(matches!(message(2).content, MessageContent::Audio(ref a) if a.voice));
    assert_eq!(message(4).content.summary(), "[Belge] ruhsat.pdf");
    assert_eq!(
        message(6).content.summary(),
        "[Konum] Kadıköy İskele, Kadıköy, İstanbul"
    );
    assert_eq!(message(8).replied_to.as_deref(), Some("wamid.OUR"));
    match message(12).content {
        MessageContent::Order { items, .. } => {
            assert_eq!(
                items[0].item_price.to_string(),
                "1250.10",
                "exact decimal, never via f64"
            );
            assert_eq!(items[0].currency, "TRY");
        }
        other => panic!("{other:?}"),
    }
    match message(14).content {
        MessageContent::Unsupported { raw_type, errors } => {
            assert_eq!(raw_type, "edit");
            assert_eq!(errors[0].code, 131051);
        }
        other => panic!("{other:?}"),
    }
    match &events[16] {
        WhatsAppEvent::Status(s) => {
            assert_eq!(s.status, DeliveryStatus::Delivered);
            assert_eq!(s.pricing_category.as_deref(), Some("utility"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_event_of_a_delivery_is_queued_and_processed() {
    let w = world();
    let reply = w.post(&every_type()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(w.queue.sent().len(), 17);
    w.drain().await;
    let cards = w.crm.cards(&w.tenant);
    assert_eq!(cards.len(), 1, "one sender, one lead");
    let timeline = w
        .crm
        .timeline(&w.tenant, &cards[0].card_id, 100)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 16);
}
