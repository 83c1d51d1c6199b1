//! The send routes: scopes, the tenant's own cards only, clear refusals, the same send id
//! sending once, and the wa.me links.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::api::ApiRequest;
use super::tests::{world, World};
use crate::envelope::TraceId;
use crate::party::Card;
use crate::phone::PhoneNumber;
use crate::ports::CrmRepository;
use crate::tenant::{IntegrationSettings, TenantConfig, TenantId, WhatsAppSettings};
use crate::whatsapp::send::SendState;

async fn call(
    w: &World,
    method: &str,
    key: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let query: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let trace = TraceId::new("req-s".to_string());
    let body = body.to_string();
    let reply = w
        .api
        .handle(ApiRequest {
            method,
            path,
            query: &query,
            api_key: Some(key),
            trace: &trace,
            body: &body,
        })
        .await;
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

async fn connected(w: &World) {
    for tenant in ["acme", "beta"] {
        w.tenants.add(
            TenantConfig {
                tenant_id: TenantId::parse(tenant).unwrap(),
                name: tenant.into(),
                default_owner: None,
                integrations: IntegrationSettings {
                    whatsapp: Some(WhatsAppSettings {
                        phone_number_id: format!("pn-{tenant}"),
                        display_phone_number: "908503031234".into(),
                        meta_app_id: "app".into(),
                        create_lead_for_unknown_numbers: true,
                        create_task_for_new_lead: false,
                    }),
                    ..Default::default()
                },
                created_at: w.log.clock().now(),
            },
            &[],
            None,
        );
    }
    let phone = PhoneNumber::parse("0533 111 22 33").unwrap();
    let card = Card::person_customer("c-acme", "Ayşe Yılmaz", vec![phone], w.log.clock().now());
    w.crm
        .create_card(&TenantId::parse("acme").unwrap(), &card)
        .await
        .unwrap();
}

fn template(send_id: &str, card: &str) -> Value {
    json!({ "send_id": send_id, "card_id": card,
            "message": { "type": "template", "name": "randevu_hatirlatma", "language": "tr", "parameters": ["Ayşe"] } })
}

#[tokio::test]
async fn a_template_is_queued_once_per_send_id() {
    let w = world().await;
    connected(&w).await;
    let (status, body) = call(
        &w,
        "POST",
        "key-a-send",
        "/v1/whatsapp/messages",
        &[],
        template("s-1", "c-acme"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["send"]["state"], "queued");
    assert_eq!(body["send"]["to"], "+905331112233");
    assert_eq!(body["send"]["phone_number_id"], "pn-acme");
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "whatsapp.send");
    assert_eq!(queued[0].payload["requested_by"], "key-a-send");
    // Asked again while still queued: queued again (the worker's claim sends it once).
    let again = call(
        &w,
        "POST",
        "key-a-send",
        "/v1/whatsapp/messages",
        &[],
        template("s-1", "c-acme"),
    )
    .await;
    assert_eq!((again.0, &again.1["duplicate"]), (200, &json!(true)));
    assert_eq!(w.queue.sent().len(), 2);
    // The same id for another message is refused, naming the field.
    let other = json!({ "send_id": "s-1", "card_id": "c-acme",
        "message": { "type": "template", "name": "hosgeldiniz", "language": "tr" } });
    let (status, body) = call(
        &w,
        "POST",
        "key-a-send",
        "/v1/whatsapp/messages",
        &[],
        other,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("send_id_reused"))
    );
    // The same send id once it left the queue: the send as it stands, nothing queued.
    let acme = TenantId::parse("acme").unwrap();
    let mut sent = w.sends.get(&acme, "s-1").unwrap();
    sent.state = SendState::Sent;
    sent.wamid = Some("wamid.1".into());
    use crate::whatsapp::outbound::SendStore;
    w.sends.claim_send(&acme, &sent).await.unwrap().unwrap();
    w.sends.finish_send(&acme, &sent).await.unwrap();
    let (status, body) = call(
        &w,
        "POST",
        "key-a-send",
        "/v1/whatsapp/messages",
        &[],
        template("s-1", "c-acme"),
    )
    .await;
    assert_eq!((status, &body["duplicate"]), (200, &json!(true)));
    assert_eq!(body["send"]["state"], "sent");
    assert_eq!(w.queue.sent().len(), 2);
    let (status, body) = call(
        &w,
        "GET",
        "key-a-send",
        "/v1/whatsapp/messages/s-1",
        &[],
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, body["send"]["wamid"].as_str()),
        (200, Some("wamid.1"))
    );
}

#[tokio::test]
async fn sends_need_their_scope_and_the_tenants_own_card() {
    let w = world().await;
    connected(&w).await;
    let (status, body) = call(
        &w,
        "POST",
        "key-a",
        "/v1/whatsapp/messages",
        &[],
        template("s-2", "c-acme"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("missing_scope"))
    );
    // Beta's key cannot send to acme's card, nor read acme's send.
    let (status, _) = call(
        &w,
        "POST",
        "key-b",
        "/v1/whatsapp/messages",
        &[],
        template("s-3", "c-acme"),
    )
    .await;
    assert_eq!(status, 404);
    call(
        &w,
        "POST",
        "key-a-send",
        "/v1/whatsapp/messages",
        &[],
        template("s-4", "c-acme"),
    )
    .await;
    assert_eq!(
        call(
            &w,
            "GET",
            "key-b",
            "/v1/whatsapp/messages/s-4",
            &[],
            Value::Null
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(
            &w,
            "GET",
            "key-a-send",
            "/v1/whatsapp/messages",
            &[],
            Value::Null
        )
        .await
        .0,
        405
    );
    assert_eq!(w.queue.sent().len(), 1);
}

#[tokio::test]
async fn refusals_name_the_field_and_say_why_in_turkish_too() {
    let w = world().await;
    connected(&w).await;
    let bad = json!({ "card_id": "c-acme", "message": { "type": "template", "name": "Randevu", "language": "tr" } });
    let (status, body) = call(&w, "POST", "key-a-send", "/v1/whatsapp/messages", &[], bad).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("message.name"))
    );
    let text = json!({ "card_id": "c-acme", "message": { "type": "text", "body": "Merhaba" } });
    let (status, body) = call(&w, "POST", "key-a-send", "/v1/whatsapp/messages", &[], text).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("whatsapp_template_required"))
    );
    assert!(body["error"]["message_tr"]
        .as_str()
        .unwrap()
        .contains("şablon"));
    let other = json!({ "card_id": "c-acme", "to": "0544 000 00 00", "message": { "type": "template", "name": "x", "language": "tr" } });
    let (status, body) = call(
        &w,
        "POST",
        "key-a-send",
        "/v1/whatsapp/messages",
        &[],
        other,
    )
    .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("to")));
    let (status, body) = call(
        &w,
        "POST",
        "key-a-send",
        "/v1/whatsapp/messages",
        &[],
        json!("x"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("body"))
    );
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_cards_phones_get_click_to_chat_links() {
    let w = world().await;
    connected(&w).await;
    let (status, body) = call(
        &w,
        "GET",
        "key-a-send",
        "/v1/whatsapp/link",
        &[("card_id", "c-acme"), ("text", "Merhaba")],
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["links"][0]["link"],
        "https://wa.me/905331112233?text=Merhaba"
    );
    assert_eq!(
        call(
            &w,
            "GET",
            "key-b",
            "/v1/whatsapp/link",
            &[("card_id", "c-acme")],
            Value::Null
        )
        .await
        .0,
        404
    );
}
