//! Outbound WhatsApp without I/O: the request's checks, Meta's body, the `wa.me` link, the
//! 24-hour window, Meta's error codes, and the worker that sends each send once.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use super::outbound::*;
use super::refusal::{MetaRefusal, RetryDecision};
use super::send::*;
use crate::envelope::{Envelope, TraceId};
use crate::error::PortError;
use crate::log::{Integration, IntegrationLog, LogResult};
use crate::party::Card;
use crate::phone::PhoneNumber;
use crate::ports::{CallRepository, Clock, CrmRepository};
use crate::tenant::{IntegrationSettings, TenantConfig, TenantId, WhatsAppSettings};
use crate::testing::*;
use crate::timeline::{Channel, Direction, TimelineEntry};

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::parse(text).unwrap()
}

#[test]
fn requests_name_the_field_that_is_wrong() {
    let field = |body: serde_json::Value| SendRequest::parse(&body.to_string()).unwrap_err().field;
    assert_eq!(
        field(json!({"message": {"type": "text", "body": "x"}})),
        "card_id"
    );
    assert_eq!(
        field(json!({"card_id": "c", "message": {"type": "text", "body": " "}})),
        "message.body"
    );
    assert_eq!(
        field(json!({"card_id": "c", "message": {"type": "text", "body": "x".repeat(4097)}})),
        "message.body"
    );
    assert_eq!(
        field(
            json!({"card_id": "c", "message": {"type": "template", "name": "Randevu Hatırlatma", "language": "tr"}})
        ),
        "message.name"
    );
    assert_eq!(
        field(
            json!({"card_id": "c", "message": {"type": "template", "name": "randevu", "language": "turkish"}})
        ),
        "message.language"
    );
    assert_eq!(
        field(
            json!({"card_id": "c", "message": {"type": "template", "name": "randevu", "language": "tr", "parameters": ["Ali", "a\nb"]}})
        ),
        "message.parameters[1]"
    );
    assert_eq!(
        field(
            json!({"card_id": "c", "send_id": "bad id!", "message": {"type": "text", "body": "x"}})
        ),
        "send_id"
    );
    assert_eq!(
        field(json!({"card_id": "c", "message": {"type": "video"}})),
        "message.type"
    );
    // A misspelt field is refused, not dropped.
    let misspelt = json!({"card_id": "c", "message": {"type": "template", "name": "randevu",
        "language": "tr", "params": ["Ali"]}});
    assert_eq!(field(misspelt), "message");
    let tab = json!({"card_id": "c", "message": {"type": "template", "name": "randevu",
        "language": "tr", "header": ["a\tb"]}});
    assert_eq!(field(tab), "message.header[0]");
    let four_spaces = json!({"card_id": "c", "message": {"type": "template", "name": "randevu",
        "language": "tr", "parameters": ["a    b"]}});
    assert!(
        SendRequest::parse(&four_spaces.to_string()).is_ok(),
        "four spaces are allowed"
    );
    let ok = SendRequest::parse(
        &json!({"card_id": "c", "message": {"type": "template", "name": "randevu_hatirlatma", "language": "en_US", "parameters": {"first_name": "Ali"}}}).to_string(),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn templates_and_texts_become_metas_body() {
    let template = OutboundContent::Template {
        name: "randevu_hatirlatma".into(),
        language: "tr".into(),
        parameters: TemplateParameters::Positional(vec!["Ayşe".into(), "27 Kasım 14:00".into()]),
        header: None,
    };
    let body = template.to_meta(&phone("0533 111 22 33"), "s-1");
    assert_eq!(body["to"], "905331112233");
    assert_eq!(body["type"], "template");
    assert_eq!(body["biz_opaque_callback_data"], "s-1");
    assert_eq!(body["template"]["language"]["code"], "tr");
    assert_eq!(
        body["template"]["components"][0]["parameters"][1],
        json!({"type": "text", "text": "27 Kasım 14:00"})
    );
    let named = OutboundContent::Template {
        name: "hosgeldin".into(),
        language: "tr".into(),
        parameters: TemplateParameters::Named([("ad".to_string(), "Ali".to_string())].into()),
        header: Some(TemplateParameters::Named(
            [("firma".to_string(), "ONE".to_string())].into(),
        )),
    };
    let body = named.to_meta(&phone("+905331112233"), "s-2");
    assert_eq!(body["template"]["components"][0]["type"], "header");
    assert_eq!(
        body["template"]["components"][0]["parameters"][0]["parameter_name"],
        "firma"
    );
    assert_eq!(
        body["template"]["components"][1]["parameters"][0]["parameter_name"],
        "ad"
    );
    let text = OutboundContent::Text {
        body: "Merhaba".into(),
    }
    .to_meta(&phone("5331112233"), "s-3");
    assert_eq!(
        text["text"],
        json!({"preview_url": false, "body": "Merhaba"})
    );
}

#[test]
fn click_to_chat_links_carry_the_number_and_the_text() {
    assert_eq!(
        wa_me_link(&phone("0533 111 22 33"), None),
        "https://wa.me/905331112233"
    );
    assert_eq!(
        wa_me_link(
            &phone("+90 533 111 22 33"),
            Some("Merhaba, teklifiniz hazır & ekte")
        ),
        "https://wa.me/905331112233?text=Merhaba%2C+teklifiniz+haz%C4%B1r+%26+ekte"
    );
}

#[test]
fn the_service_window_is_24_hours_from_the_customers_last_message() {
    let now = "2026-11-26T12:00:00Z".parse().unwrap();
    assert!(service_window_open(Some(now - Duration::hours(23)), now));
    assert!(!service_window_open(Some(now - Duration::hours(24)), now));
    assert!(!service_window_open(None, now));
}

#[test]
fn metas_codes_become_clear_problems_and_retry_decisions() {
    let judge = |code| {
        MetaRefusal {
            code,
            details: Some("d".into()),
            message: "m".into(),
        }
        .judge()
    };
    assert_eq!(judge(131026).0.code, "whatsapp_not_on_whatsapp");
    assert_eq!(judge(131026).1, RetryDecision::Never);
    assert_eq!(judge(131047).0.code, "whatsapp_template_required");
    assert_eq!(judge(132000).0.code, "whatsapp_template_parameters");
    assert_eq!(judge(132001).0.code, "whatsapp_template_missing");
    assert!(matches!(judge(130429).1, RetryDecision::Later { .. }));
    assert!(matches!(
        judge(131056).1,
        RetryDecision::Later { after_secs: 60 }
    ));
    assert_eq!(judge(190).1, RetryDecision::AfterFix);
    assert_eq!(judge(190).0.code, "whatsapp_token_invalid");
    assert_eq!(judge(999_999).0.code, "whatsapp_refused");
    let (problem, _) = judge(131026);
    assert_eq!(problem.meta_code, Some(131026));
    assert_eq!(problem.details.as_deref(), Some("d"));
    assert!(problem.message_tr.contains("WhatsApp"));
}

struct Desk {
    crm: Arc<MemoryCrm>,
    sends: Arc<MemorySends>,
    sender: Arc<ScriptedSender>,
    logs: Arc<MemoryLogSink>,
    clock: Arc<FixedClock>,
    worker: OutboundWorker,
    tenant: TenantId,
}

async fn desk() -> Desk {
    let clock = Arc::new(FixedClock::at("2026-11-26T12:00:00Z"));
    let logs = Arc::new(MemoryLogSink::default());
    let log = IntegrationLog::new(
        logs.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
        30,
    );
    let tenant = TenantId::parse("acme").unwrap();
    let tenants = Arc::new(MemoryTenants::default());
    tenants.add(
        TenantConfig {
            tenant_id: tenant.clone(),
            name: "Acme".into(),
            default_owner: None,
            integrations: IntegrationSettings {
                whatsapp: Some(WhatsAppSettings {
                    phone_number_id: "1001".into(),
                    display_phone_number: "908503031234".into(),
                    meta_app_id: "app".into(),
                    create_lead_for_unknown_numbers: true,
                    create_task_for_new_lead: false,
                }),
                ..Default::default()
            },
            created_at: clock.now(),
        },
        &[],
        None,
    );
    let crm = Arc::new(MemoryCrm::default());
    let card = Card::person_customer(
        "c-1",
        "Ayşe Yılmaz",
        vec![phone("05331112233")],
        clock.now(),
    );
    crm.create_card(&tenant, &card).await.unwrap();
    let sends = Arc::new(MemorySends::default());
    let sender = Arc::new(ScriptedSender::default());
    let worker = OutboundWorker {
        rules: SendRules {
            crm: crm.clone(),
            tenants,
        },
        sends: sends.clone(),
        sender: sender.clone(),
        log,
    };
    Desk {
        crm,
        sends,
        sender,
        logs,
        clock,
        worker,
        tenant,
    }
}

fn envelope(desk: &Desk, send_id: &str, message: serde_json::Value) -> Envelope {
    Envelope {
        v: 1,
        tenant_id: desk.tenant.clone(),
        integration: Integration::WhatsApp,
        kind: KIND_SEND.into(),
        external_id: send_id.into(),
        trace_id: TraceId::new(format!("t-{send_id}")),
        received_at: desk.clock.now(),
        ordering_key: None,
        replay_of: None,
        payload: json!({ "send_id": send_id, "card_id": "c-1", "message": message }),
    }
}

fn template() -> serde_json::Value {
    json!({"type": "template", "name": "randevu_hatirlatma", "language": "tr", "parameters": ["Ayşe"]})
}

fn refused(code: i64) -> Result<Accepted, SendFailure> {
    Err(SendFailure::Refused(MetaRefusal {
        code,
        details: None,
        message: format!("(#{code})"),
    }))
}

#[tokio::test]
async fn a_send_goes_once_however_often_it_is_delivered() {
    let d = desk().await;
    let e = envelope(&d, "s-1", template());
    d.worker.handle(e.clone(), 1).await.unwrap();
    d.worker.handle(e, 2).await.unwrap();
    assert_eq!(d.sender.calls(), 1, "a duplicate delivery sends nothing");
    let record = d.sends.get(&d.tenant, "s-1").unwrap();
    assert_eq!(
        (record.state, record.wamid.as_deref()),
        (SendState::Sent, Some("wamid.1"))
    );
    assert_eq!(record.to, "+905331112233");
    let (number, body) = d.sender.sent.lock().unwrap()[0].clone();
    assert_eq!(
        (number.as_str(), body["to"].as_str()),
        ("1001", Some("905331112233"))
    );
    // The Graph call's record (the adapter's) tells the send; the worker adds the duplicate.
    let results: Vec<_> = d.logs.records().iter().map(|r| r.result).collect();
    assert_eq!(results, vec![LogResult::Duplicate]);
}

#[tokio::test]
async fn metas_refusals_settle_the_send_with_a_clear_problem() {
    let d = desk().await;
    d.sender.then(refused(131026));
    d.worker
        .handle(envelope(&d, "s-2", template()), 1)
        .await
        .unwrap();
    let record = d.sends.get(&d.tenant, "s-2").unwrap();
    assert_eq!(record.state, SendState::Failed);
    assert_eq!(record.problem.unwrap().code, "whatsapp_not_on_whatsapp");
    let log = d.logs.records().pop().unwrap();
    assert_eq!(log.error_code.as_deref(), Some("whatsapp_not_on_whatsapp"));
    assert_eq!(log.card_id.as_deref(), Some("c-1"));
    // Failed for good: a second delivery does not try again.
    d.worker
        .handle(envelope(&d, "s-2", template()), 2)
        .await
        .unwrap();
    assert_eq!(d.sender.calls(), 1);
}

#[tokio::test]
async fn throttled_sends_wait_and_go_on_the_next_delivery() {
    let d = desk().await;
    d.sender.then(refused(130429));
    let error = d
        .worker
        .handle(envelope(&d, "s-3", template()), 1)
        .await
        .unwrap_err();
    assert!(error.retryable);
    assert_eq!(error.code, "whatsapp_rate_limited");
    assert_eq!(
        d.sends.get(&d.tenant, "s-3").unwrap().state,
        SendState::Waiting
    );
    d.worker
        .handle(envelope(&d, "s-3", template()), 2)
        .await
        .unwrap();
    let record = d.sends.get(&d.tenant, "s-3").unwrap();
    assert_eq!((record.state, record.attempts), (SendState::Sent, 2));
    // A refused token waits for an operator: not retryable, so it ends in the DLQ for replay.
    d.sender.then(refused(190));
    let error = d
        .worker
        .handle(envelope(&d, "s-4", template()), 1)
        .await
        .unwrap_err();
    assert!(!error.retryable);
    assert_eq!(
        d.sends.get(&d.tenant, "s-4").unwrap().state,
        SendState::Waiting
    );
}

#[tokio::test]
async fn a_send_without_a_clear_answer_is_never_sent_again_by_itself() {
    let d = desk().await;
    d.sender
        .then(Err(SendFailure::Port(PortError::OutcomeUnknown(
            "timed out".into(),
        ))));
    d.worker
        .handle(envelope(&d, "s-5", template()), 1)
        .await
        .unwrap();
    assert_eq!(
        d.sends.get(&d.tenant, "s-5").unwrap().state,
        SendState::Uncertain
    );
    d.worker
        .handle(envelope(&d, "s-5", template()), 2)
        .await
        .unwrap();
    assert_eq!(d.sender.calls(), 1);
    let log = d.logs.records();
    assert_eq!(
        log[0].error_code.as_deref(),
        Some("whatsapp_outcome_unknown")
    );
}

#[tokio::test]
async fn texts_go_only_inside_the_customers_24_hours() {
    let d = desk().await;
    let text = json!({"type": "text", "body": "Teklifiniz ekte."});
    d.worker
        .handle(envelope(&d, "s-6", text.clone()), 1)
        .await
        .unwrap();
    let record = d.sends.get(&d.tenant, "s-6").unwrap();
    assert_eq!(record.state, SendState::Failed);
    assert_eq!(record.problem.unwrap().code, "whatsapp_template_required");
    assert_eq!(d.sender.calls(), 0, "refused before calling Meta");
    // The customer writes: the window opens.
    let entry = TimelineEntry {
        entry_id: "wa:in".into(),
        card_id: "c-1".into(),
        channel: Channel::WhatsApp,
        direction: Direction::Inbound,
        kind: "text".into(),
        text: "Merhaba".into(),
        external_id: Some("wamid.in".into()),
        attachment: None,
        details: serde_json::Value::Null,
        occurred_at: d.clock.now() - Duration::hours(2),
        trace_id: "t-in".into(),
    };
    d.crm.ensure_entry(&d.tenant, &entry).await.unwrap();
    d.worker.handle(envelope(&d, "s-7", text), 1).await.unwrap();
    assert_eq!(
        d.sends.get(&d.tenant, "s-7").unwrap().state,
        SendState::Sent
    );
}
