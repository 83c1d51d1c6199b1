//! The PBX webhook and call desk with in-memory ports: the seed's JSON and NetGSM's pushes in,
//! pop-up answers, call-queue entries, quotes, tickets and log records out.

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;

use crate::envelope::TraceId;
use crate::http::HttpReply;
use crate::ingress::{InboundRequest, IngressPorts};
use crate::log::{IntegrationLog, LogResult};
use crate::page::PageRequest;
use crate::party::{Card, CardKind, ContactDetails};
use crate::pbx::call::{CallAction, Opened};
use crate::pbx::desk::{rank_callers, CallDesk};
use crate::pbx::event::{parse_call_event, CallEventKind, PbxFormat};
use crate::pbx::webhook::PbxCallWebhook;
use crate::phone::PhoneNumber;
use crate::ports::{CallRepository, CrmRepository};
use crate::tenant::{IntegrationSettings, PbxSettings, TenantConfig, TenantId, TenantRoute};
use crate::testing::*;

const TOKEN: &str = "pbx_demo_token";

struct World {
    webhook: PbxCallWebhook,
    crm: Arc<MemoryCrm>,
    logs: Arc<MemoryLogSink>,
    archive: Arc<MemoryArchive>,
    tenant: TenantId,
}

fn world(allowed_sources: Vec<String>) -> World {
    let tenant = TenantId::parse("demo").unwrap();
    let tenants = Arc::new(MemoryTenants::default());
    let mut pbx = PbxSettings {
        vendor: "netgsm".into(),
        allowed_sources,
        agent_ids: Default::default(),
        extensions: Default::default(),
    };
    pbx.agent_ids.insert("911".into(), "u-ayse".into());
    pbx.extensions.insert("912".into(), "u-mehmet".into());
    tenants.add(
        TenantConfig {
            tenant_id: tenant.clone(),
            name: "Demo".into(),
            default_owner: Some("u-owner".into()),
            integrations: IntegrationSettings {
                pbx: Some(pbx),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        },
        &[TenantRoute::pbx_token(TOKEN)],
        None,
    );
    let (logs, crm, archive) = (
        Arc::new(MemoryLogSink::default()),
        Arc::new(MemoryCrm::default()),
        Arc::new(MemoryArchive::default()),
    );
    let clock = Arc::new(FixedClock::at("2026-11-24T12:00:30Z"));
    let ids = Arc::new(SequentialIds::default());
    let log = IntegrationLog::new(logs.clone(), clock.clone(), ids.clone(), 90);
    let desk = CallDesk {
        tenants: tenants.clone(),
        crm: crm.clone(),
        calls: crm.clone(),
        clock,
        ids,
    };
    let ports = IngressPorts {
        tenants,
        secrets: Arc::new(MemorySecrets::default()),
        queue: Arc::new(MemoryQueue::default()),
        archive: archive.clone(),
        log,
    };
    World {
        webhook: PbxCallWebhook::new(ports, desk, 90),
        crm,
        logs,
        archive,
        tenant,
    }
}

fn phone(p: &str) -> PhoneNumber {
    PhoneNumber::parse(p).unwrap()
}

async fn post(w: &World, body: &str, headers: &[(&str, &str)], path: Option<&str>) -> HttpReply {
    let request = InboundRequest {
        body: body.as_bytes(),
        headers,
        source_ip: Some("85.111.2.3"),
        path_token: path,
    };
    w.webhook.handle(&request, &TraceId::new("trace-1")).await
}

async fn call(w: &World, body: &str) -> (u16, Value) {
    let reply = post(w, body, &[("x-pbx-token", TOKEN)], None).await;
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

fn seed(call_id: &str, caller: &str, keypress: &str) -> String {
    format!(
        r#"{{"callUniqueId": "{call_id}", "extension": "911", "agentId": "911", "callerId": "{caller}", "keypress": "{keypress}"}}"#
    )
}

async fn customer(w: &World, id: &str, name: &str, number: &str, touched_hours_ago: i64) -> Card {
    let at = chrono::Utc::now() - Duration::hours(touched_hours_ago);
    let card = Card::person_customer(id, name, vec![phone(number)], at);
    w.crm.create_card(&w.tenant, &card).await.unwrap();
    card
}

#[test]
fn the_seeds_json_reads_with_keypress_as_string_or_number() {
    let event = parse_call_event(&seed("A000001", "05334979714", "2")).unwrap();
    assert_eq!(event.format, PbxFormat::Seed);
    assert_eq!(event.call_id, "A000001");
    assert_eq!(event.keypress.as_deref(), Some("2"));
    assert_eq!(event.agent_id.as_deref(), Some("911"));
    assert_eq!(event.event_key(), "key:2");
    let numeric = parse_call_event(
        r#"{"callUniqueId": 1001, "extension": 911, "callerId": "5334979714", "keypress": 3, "extra": true}"#,
    )
    .unwrap();
    assert_eq!(numeric.call_id, "1001");
    assert_eq!(numeric.keypress.as_deref(), Some("3"));
    assert_eq!(numeric.caller_number().unwrap().as_str(), "+905334979714");
}

#[test]
fn netgsm_pushes_map_to_one_call_event_each() {
    let inbound = parse_call_event(
        r#"{"pbx_num": "8508850000", "unique_id": "1732451234.77", "internal_num": "101", "customer_num": "905334979714", "scenario": "Inbound_call", "incoming_number": "08508850000", "timestamp": "1764000000123"}"#,
    )
    .unwrap();
    assert_eq!(inbound.format, PbxFormat::NetGsm);
    assert_eq!(inbound.kind, CallEventKind::Incoming);
    assert_eq!(
        inbound.occurred_at.unwrap().timestamp_millis(),
        1764000000123
    );
    assert_eq!(inbound.extension.as_deref(), Some("101"));
    let dtmf = parse_call_event(
        r#"{"unique_id": "1732451234.77", "customer_num": "05334979714", "scenario": "DTMF", "Digit": "3", "timestamp": "1764000001000"}"#,
    )
    .unwrap();
    assert_eq!(
        (dtmf.kind, dtmf.keypress.as_deref()),
        (CallEventKind::Keypress, Some("3"))
    );
    let hangup = parse_call_event(
        r#"{"unique_id": "1732451234.77", "customer_num": "5334979714", "scenario": "Hangup", "talktime": "45", "timestamp": "1764000046000"}"#,
    )
    .unwrap();
    assert_eq!(
        (hangup.kind, hangup.duration_seconds),
        (CallEventKind::HungUp, Some(45))
    );
    let cdr = parse_call_event(
        r#"{"scenario": "cdr", "bas": "2026-11-24 15:04:05", "ortakkimlik": "1732451234.77", "clid": "\"AYSE\" <05334979714>", "aranan": "101", "sure": "52", "sondurum": "ANSWERED", "yon": "1", "timestamp": "1764000052000"}"#,
    )
    .unwrap();
    assert_eq!(cdr.kind, CallEventKind::Cdr);
    assert_eq!(cdr.call_id, "1732451234.77");
    assert_eq!(cdr.caller_number().unwrap().as_str(), "+905334979714");
    assert_eq!(
        (cdr.duration_seconds, cdr.end_state.as_deref()),
        (Some(52), Some("ANSWERED"))
    );
    let unknown = parse_call_event(
        r#"{"unique_id": "u1", "customer_num": "05334979714", "scenario": "Transfer_call"}"#,
    )
    .unwrap();
    assert_eq!(unknown.kind, CallEventKind::Other);
    assert_eq!(unknown.event_key(), "transfer_call:-");
}

#[test]
fn bad_bodies_name_the_field() {
    let field = |body: &str| parse_call_event(body).unwrap_err()[0].clone();
    assert_eq!(field("{not json").field, "body");
    assert_eq!(field("[1]").code, "invalid_type");
    let missing = field(r#"{"callUniqueId": "A1", "keypress": "1"}"#);
    assert_eq!(
        (missing.field.as_str(), missing.code.as_str()),
        ("callerId", "missing")
    );
    let typed = field(r#"{"callUniqueId": "A1", "callerId": {"n": 1}}"#);
    assert_eq!(
        (typed.field.as_str(), typed.code.as_str()),
        ("callerId", "invalid_type")
    );
    let key = field(r#"{"callUniqueId": "A1", "callerId": "05334979714", "keypress": true}"#);
    assert_eq!(key.field, "keypress");
    let number = field(r#"{"callUniqueId": "A1", "callerId": "05x3"}"#);
    assert_eq!(
        (number.field.as_str(), number.code.as_str()),
        ("callerId", "invalid_phone")
    );
    let stamp = field(
        r#"{"unique_id": "u", "customer_num": "05334979714", "scenario": "DTMF", "timestamp": "dün"}"#,
    );
    assert_eq!(stamp.field, "timestamp");
    assert_eq!(field(r#"{"hello": 1}"#).field, "callUniqueId");
}

#[test]
fn a_contact_comes_before_its_company_then_the_most_recent_touch() {
    let now = chrono::Utc::now();
    let number = phone("0212 555 44 33");
    let old = Card::person_customer(
        "c-old",
        "Eski A.Ş.",
        vec![number.clone()],
        now - Duration::days(9),
    );
    let recent = Card::person_customer("c-new", "Yeni A.Ş.", vec![number.clone()], now);
    let contact = Card {
        kind: CardKind::Contact,
        contact: Some(ContactDetails {
            customer_card_id: "c-old".into(),
            title: None,
        }),
        customer: None,
        ..Card::person_customer(
            "p-1",
            "Ayşe (Eski A.Ş.)",
            vec![number],
            now - Duration::days(30),
        )
    };
    let mut cards = vec![old, recent, contact];
    rank_callers(&mut cards);
    let order: Vec<_> = cards.iter().map(|c| c.card_id.as_str()).collect();
    assert_eq!(order, ["p-1", "c-new", "c-old"]);
}

#[tokio::test]
async fn keypress_1_shows_every_matching_card_best_first_and_writes_only_the_call() {
    let w = world(vec![]);
    customer(&w, "c-old", "Eski A.Ş.", "0212 555 44 33", 48).await;
    customer(&w, "c-new", "IP Santral Firması", "+90 212 555 44 33", 1).await;
    let (status, body) = call(&w, &seed("A000001", "2125554433", "1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "show_card");
    let names: Vec<_> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["IP Santral Firması", "Eski A.Ş."]);
    assert_eq!(body["cards"][0]["phone"], "+90 212 *** ** 33");
    assert_eq!(body["open"], "/cards/c-new");
    assert_eq!(body["agent"]["user_id"], "u-ayse");
    assert!(body["record"].is_null());
    assert!(w
        .crm
        .opened_on(&w.tenant, "c-new")
        .await
        .unwrap()
        .is_empty());
    let queue = w
        .crm
        .call_queue(&w.tenant, Some("USER#u-ayse"), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 1);
    assert_eq!(queue.items[0].cards.len(), 2);
    let timeline = w.crm.timeline(&w.tenant, "c-new", 10).await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].text, "Gelen arama (dahili 911)");
    let record = w
        .logs
        .records()
        .into_iter()
        .find(|r| r.operation == "pbx.call")
        .unwrap();
    assert_eq!(record.result, LogResult::Success);
    assert_eq!(record.http_status, Some(200));
    assert!(
        !record.payload.unwrap().to_string().contains("2125554433"),
        "the caller is masked in the log"
    );
}

#[tokio::test]
async fn keypress_2_opens_a_draft_quote_owned_by_the_agents_user() {
    let w = world(vec![]);
    customer(&w, "c-1", "IP Santral Firması", "05334979714", 1).await;
    let (status, body) = call(&w, &seed("A000001", "05334979714", "2")).await;
    assert_eq!(status, 200);
    assert_eq!(body["action"], "new_quote");
    assert_eq!(body["record"]["kind"], "quote");
    assert_eq!(body["record"]["readable_number"], "TKL-000001");
    let opened = w.crm.opened_on(&w.tenant, "c-1").await.unwrap();
    let Opened::Quote(quote) = &opened[0] else {
        panic!("a quote")
    };
    assert_eq!(quote.owner.as_deref(), Some("u-ayse"));
    assert_eq!(quote.total.currency, "TRY");
    assert_eq!(quote.total.amount, rust_decimal::Decimal::ZERO);
    assert_eq!(
        body["open"],
        format!("/cards/c-1/quotes/{}", quote.quote_id)
    );
    let timeline = w.crm.timeline(&w.tenant, "c-1", 10).await.unwrap();
    assert_eq!(
        timeline[0].text,
        "Gelen arama (dahili 911): yeni teklif TKL-000001"
    );
}

#[tokio::test]
async fn keypress_3_opens_numbered_tickets_and_an_unknown_caller_gets_a_phone_lead() {
    let w = world(vec![]);
    customer(&w, "c-1", "IP Santral Firması", "05334979714", 1).await;
    let (_, first) = call(&w, &seed("A1", "05334979714", "3")).await;
    assert_eq!(first["record"]["readable_number"], "T-000001");
    let (_, second) = call(&w, &seed("A2", "+90 533 497 97 14", "3")).await;
    assert_eq!(second["record"]["readable_number"], "T-000002");
    let (_, unknown) = call(&w, &seed("A3", "0532 111 22 33", "3")).await;
    assert_eq!(unknown["record"]["readable_number"], "T-000003");
    let lead_id = unknown["new_lead"].as_str().unwrap().to_string();
    let lead = w.crm.card(&w.tenant, &lead_id).await.unwrap().unwrap();
    assert_eq!(lead.kind, CardKind::Lead);
    assert_eq!(lead.lead.unwrap().source, crate::party::LeadSource::Phone);
    assert_eq!(lead.phones, vec![phone("05321112233")]);
    let Opened::Ticket(ticket) = &w.crm.opened_on(&w.tenant, &lead_id).await.unwrap()[0] else {
        panic!("a ticket")
    };
    assert_eq!(ticket.owner.as_deref(), Some("u-ayse"));
    // The next call from that number finds the lead it opened.
    let (_, again) = call(&w, &seed("A4", "5321112233", "1")).await;
    assert_eq!(again["cards"][0]["card_id"], lead_id.as_str());
    let lead = w.crm.card(&w.tenant, &lead_id).await.unwrap().unwrap();
    assert_eq!(
        lead.lead.unwrap().last_touch.external_id.as_deref(),
        Some("A4"),
        "the call is the lead's last touch"
    );
}

#[tokio::test]
async fn the_same_call_and_keypress_twice_is_one_entry_one_ticket_and_the_same_answer() {
    let w = world(vec![]);
    customer(&w, "c-1", "IP Santral Firması", "05334979714", 1).await;
    let (_, first) = call(&w, &seed("A000001", "05334979714", "3")).await;
    let (status, second) = call(&w, &seed("A000001", "05334979714", "3")).await;
    assert_eq!(status, 200);
    assert_eq!(second["status"], "repeated");
    assert_eq!(second["record"], first["record"]);
    assert_eq!(second["cards"], first["cards"]);
    assert_eq!(w.crm.opened_on(&w.tenant, "c-1").await.unwrap().len(), 1);
    let queue = w
        .crm
        .call_queue(&w.tenant, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 1);
    assert!(w
        .logs
        .records()
        .iter()
        .any(|r| r.result == LogResult::Duplicate));
    // Another keypress on the same call is another event.
    let (_, quote) = call(&w, &seed("A000001", "05334979714", "2")).await;
    assert_eq!(quote["action"], "new_quote");
}

#[tokio::test]
async fn hidden_extension_and_444_callers_never_match_and_open_nothing_on_keypress_1() {
    let w = world(vec![]);
    customer(&w, "c-1", "Switchboard A.Ş.", "0212 444 00 00", 1).await;
    for (i, caller) in ["", "anonymous", "911", "444 55 66", "4445566"]
        .iter()
        .enumerate()
    {
        let (status, body) = call(&w, &seed(&format!("H{i}"), caller, "1")).await;
        assert_eq!(status, 200, "{caller}: {body}");
        assert_eq!(body["cards"].as_array().unwrap().len(), 0, "{caller}");
        assert_eq!(body["caller"]["matchable"], false);
    }
    let queue = w
        .crm
        .call_queue(&w.tenant, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 5, "every call is in the queue");
}

#[tokio::test]
async fn an_unknown_keypress_is_stored_with_a_warning_and_no_action() {
    let w = world(vec![]);
    let (status, body) = call(&w, &seed("A9", "05334979714", "7")).await;
    assert_eq!(status, 200);
    assert_eq!(body["action"], "unknown_keypress");
    let record = w
        .logs
        .records()
        .into_iter()
        .find(|r| r.operation == "pbx.call")
        .unwrap();
    assert_eq!(record.result, LogResult::Warning);
    assert_eq!(record.error_code.as_deref(), Some("unknown_keypress"));
    assert_eq!(
        w.crm
            .call_queue(&w.tenant, None, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn netgsm_events_record_the_calls_life_and_an_unknown_scenario_warns() {
    let w = world(vec![]);
    customer(&w, "c-1", "IP Santral Firması", "05334979714", 1).await;
    let events = [
        r#"{"unique_id": "n1", "internal_num": "912", "customer_num": "5334979714", "scenario": "Inbound_call", "timestamp": "1764000000000"}"#,
        r#"{"unique_id": "n1", "internal_num": "912", "customer_num": "5334979714", "scenario": "DTMF", "digit": "2", "timestamp": "1764000002000"}"#,
        r#"{"unique_id": "n1", "internal_num": "912", "customer_num": "5334979714", "scenario": "Hangup", "talktime": "40", "timestamp": "1764000044000"}"#,
        r#"{"unique_id": "n1", "customer_num": "5334979714", "scenario": "Transfer_call", "timestamp": "1764000045000"}"#,
    ];
    let mut actions = Vec::new();
    for event in events {
        let (status, body) = call(&w, event).await;
        assert_eq!(status, 200, "{body}");
        actions.push(body["action"].as_str().unwrap().to_string());
    }
    assert_eq!(
        actions,
        ["show_card", "new_quote", "record_only", "record_only"]
    );
    let queue = w
        .crm
        .call_queue(&w.tenant, Some("USER#u-mehmet"), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 3, "extension 912 is u-mehmet's");
    assert_eq!(queue.items[0].kind, CallEventKind::HungUp, "newest first");
    let warning = w
        .logs
        .records()
        .into_iter()
        .find(|r| r.error_code.as_deref() == Some("unknown_scenario"));
    assert_eq!(warning.unwrap().result, LogResult::Warning);
}

#[tokio::test]
async fn the_token_may_come_as_bearer_or_path_and_anything_else_is_401_with_nothing_stored() {
    let w = world(vec![]);
    let body = seed("A1", "05334979714", "1");
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        post(&w, &body, &[("authorization", &bearer)], None)
            .await
            .status,
        200
    );
    assert_eq!(
        post(&w, &seed("A2", "05334979714", "1"), &[], Some(TOKEN))
            .await
            .status,
        200
    );
    let missing = post(&w, &seed("A3", "05334979714", "1"), &[], None).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.body.contains("\"field\":\"token\""),
        "{}",
        missing.body
    );
    let wrong = post(
        &w,
        &seed("A4", "05334979714", "1"),
        &[("x-pbx-token", "guess")],
        None,
    )
    .await;
    assert_eq!(wrong.status, 401);
    let queue = w
        .crm
        .call_queue(&w.tenant, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 2);
    let refused: Vec<_> = w
        .logs
        .records()
        .into_iter()
        .filter(|r| r.http_status == Some(401))
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(
        refused.iter().all(|r| r.payload.is_none()),
        "nothing of a refused body is kept"
    );
}

#[tokio::test]
async fn a_source_off_the_allow_list_is_refused() {
    let w = world(vec!["10.0.0.0/8".into()]);
    let reply = post(
        &w,
        &seed("A1", "05334979714", "1"),
        &[("x-pbx-token", TOKEN)],
        None,
    )
    .await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("source_not_allowed"));
    let w = world(vec!["85.111.2.0/24".into()]);
    let reply = post(
        &w,
        &seed("A1", "05334979714", "1"),
        &[("x-pbx-token", TOKEN)],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn an_authenticated_bad_body_is_a_400_naming_the_field_and_is_kept_whole() {
    let w = world(vec![]);
    let (status, body) = call(&w, r#"{"callUniqueId": "A1", "keypress": "1"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "callerId");
    let held = w.archive.held();
    assert_eq!(held.len(), 1, "kept for a replay once fixed");
    let record = w
        .logs
        .records()
        .into_iter()
        .find(|r| r.error_code.as_deref() == Some("unparsed_event"))
        .unwrap();
    assert_eq!(record.http_status, Some(400));
    let big = format!(
        r#"{{"callUniqueId": "A1", "callerId": "05334979714", "pad": "{}"}}"#,
        "x".repeat(20_000)
    );
    let reply = post(&w, &big, &[("x-pbx-token", TOKEN)], None).await;
    assert_eq!(reply.status, 413);
}

#[test]
fn every_action_follows_the_seeds_keypress_table() {
    use CallEventKind::*;
    assert_eq!(
        CallAction::for_event(Incoming, Some("1")),
        CallAction::ShowCard
    );
    assert_eq!(CallAction::for_event(Incoming, None), CallAction::ShowCard);
    assert_eq!(
        CallAction::for_event(Keypress, Some("2")),
        CallAction::NewQuote
    );
    assert_eq!(
        CallAction::for_event(Incoming, Some("3")),
        CallAction::NewTicket
    );
    assert_eq!(
        CallAction::for_event(Incoming, Some("9")),
        CallAction::UnknownKeypress
    );
    assert_eq!(
        CallAction::for_event(HungUp, Some("3")),
        CallAction::RecordOnly
    );
}

#[tokio::test]
async fn a_key_is_one_event_however_it_arrives_and_odd_caller_forms_are_kept_not_refused() {
    let w = world(vec![]);
    customer(&w, "c-1", "IP Santral Firması", "05334979714", 1).await;
    let dtmf = r#"{"unique_id": "n7", "internal_num": "911", "customer_num": "5334979714", "scenario": "DTMF", "digit": "3"}"#;
    let answer = r#"{"unique_id": "n7", "internal_num": "911", "customer_num": "5334979714", "scenario": "Answer", "digit": "3"}"#;
    let (_, first) = call(&w, dtmf).await;
    let (_, second) = call(&w, answer).await;
    assert_eq!(second["status"], "repeated", "{second}");
    assert_eq!(second["record"], first["record"]);
    assert_eq!(w.crm.opened_on(&w.tenant, "c-1").await.unwrap().len(), 1);
    let (status, sip) = call(&w, &seed("S1", "sip:05334979714@pbx.ornek.com.tr", "1")).await;
    assert_eq!(
        (status, sip["cards"][0]["card_id"].as_str()),
        (200, Some("c-1"))
    );
    for (i, odd) in [
        r#"null"#,
        r#""0444 55 66""#,
        r#""+90 444 55 66""#,
        r#""anonymous@pbx""#,
    ]
    .iter()
    .enumerate()
    {
        let body = format!(r#"{{"callUniqueId": "O{i}", "callerId": {odd}, "keypress": "1"}}"#);
        let (status, answer) = call(&w, &body).await;
        assert_eq!(
            (status, answer["caller"]["matchable"].as_bool()),
            (200, Some(false)),
            "{odd}: {answer}"
        );
    }
    let hangup = r#"{"unique_id": "n7", "scenario": "Hangup", "talktime": "12"}"#;
    let (status, body) = call(&w, hangup).await;
    assert_eq!(
        (status, body["action"].as_str()),
        (200, Some("record_only")),
        "{body}"
    );
}
