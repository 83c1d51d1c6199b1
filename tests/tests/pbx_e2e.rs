//! End to end against the emulator: a PBX's call events -> pbx-call -> DynamoDB (call queue,
//! timeline, quotes, tickets, leads) and the pop-up answer, with the committed API Gateway
//! samples re-pointed at a test tenant's token.

use std::sync::Arc;

use chrono::Duration;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::ingress::InboundRequest;
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::page::PageRequest;
use onecrm_domain::party::{Card, CardKind, ContactDetails, LeadSource};
use onecrm_domain::pbx::call::Opened;
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CallRepository, CrmRepository};
use onecrm_e2e::*;
use serde_json::{json, Value};

/// A committed sample with the tenant's token and `edit` applied to its JSON body.
fn pbx_request(name: &str, token: &str, edit: impl Fn(&mut Value)) -> lambda_http::Request {
    let mut event = fixture("pbx-call", name);
    if event["headers"].get("x-pbx-token").is_some() {
        event["headers"]["x-pbx-token"] = json!(token);
    }
    if event.get("pathParameters").is_some() {
        event["pathParameters"]["token"] = json!(token);
    }
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    edit(&mut body);
    event["body"] = json!(body.to_string());
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn call(app: &pbx_call::App, request: lambda_http::Request) -> (u16, Value) {
    let response = pbx_call::handle(app, request).await.unwrap();
    (response.status().as_u16(), body_json(&response))
}

/// The seed's JSON for `call_id` from `caller` with `keypress`.
fn seed(token: &str, call_id: &str, caller: &str, keypress: &str) -> lambda_http::Request {
    let (call_id, caller, keypress) = (
        call_id.to_string(),
        caller.to_string(),
        keypress.to_string(),
    );
    pbx_request("seed-keypress-1", token, move |b| {
        b["callUniqueId"] = json!(call_id);
        b["callerId"] = json!(caller);
        b["keypress"] = json!(keypress);
    })
}

async fn customer(stack: &Stack, tenant: &TestTenant, card: Card) -> Card {
    stack.crm().create_card(&tenant.id, &card).await.unwrap();
    card
}

fn phone(p: &str) -> PhoneNumber {
    PhoneNumber::parse(p).unwrap()
}

/// A tenant with a PBX token (sources `allow`) and the customer Mehmet Demir, 0532 111 22 33,
/// whom the samples' caller is.
async fn with_mehmet(allow: &[&str]) -> (Stack, TestTenant, pbx_call::App, String) {
    let stack = stack().await;
    let tenant = stack.tenant(false).await;
    let (app, token) = stack.pbx(&tenant, allow).await;
    let mehmet = Card::person_customer(
        "c-mehmet",
        "Mehmet Demir",
        vec![phone("0532 111 22 33")],
        chrono::Utc::now(),
    );
    customer(&stack, &tenant, mehmet).await;
    (stack, tenant, app, token)
}

#[tokio::test]
async fn every_turkish_form_of_the_number_finds_the_card_and_hidden_or_short_numbers_never_do() {
    let stack = stack().await;
    let tenant = stack.tenant(false).await;
    let (app, token) = stack.pbx(&tenant, &[]).await;
    let now = chrono::Utc::now();
    customer(
        &stack,
        &tenant,
        Card::person_customer(
            "c-mehmet",
            "Mehmet Demir",
            vec![phone("0532 111 22 33")],
            now,
        ),
    )
    .await;
    customer(
        &stack,
        &tenant,
        Card::person_customer(
            "c-switch",
            "Santral A.Ş.",
            vec![phone("0212 444 00 00")],
            now,
        ),
    )
    .await;
    let forms = [
        "05321112233",
        "5321112233",
        "905321112233",
        "+90 532 111 22 33",
        "0090 532 111 2233",
        "(0532) 111-22-33",
        "0 532 111 22 33",
    ];
    for (i, form) in forms.iter().enumerate() {
        let (status, body) = call(&app, seed(&token, &format!("F{i}"), form, "1")).await;
        assert_eq!(status, 200, "{form}: {body}");
        assert_eq!(body["cards"][0]["card_id"], "c-mehmet", "{form}");
        assert_eq!(body["cards"][0]["phone"], "+90 532 *** ** 33");
        assert_eq!(body["agent"]["user_id"], PBX_AGENT_USER);
    }
    for (i, hidden) in [
        "",
        "anonymous",
        "Gizli Numara",
        "911",
        "444 00 00",
        "4440000",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = call(&app, seed(&token, &format!("H{i}"), hidden, "1")).await;
        assert_eq!(status, 200, "{hidden:?}: {body}");
        assert_eq!(body["cards"], json!([]), "{hidden:?} must match nobody");
        assert_eq!(body["caller"]["matchable"], false);
    }
    let queue = stack
        .crm()
        .call_queue(&tenant.id, None, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(
        queue.items.len(),
        forms.len() + 6,
        "every call is in the queue"
    );
    let timeline = stack
        .crm()
        .timeline(&tenant.id, "c-mehmet", 50)
        .await
        .unwrap();
    assert_eq!(
        timeline.len(),
        forms.len(),
        "each call on the card's timeline once"
    );
}

#[tokio::test]
async fn several_cards_of_a_number_come_best_first() {
    let stack = stack().await;
    let tenant = stack.tenant(false).await;
    let (app, token) = stack.pbx(&tenant, &[]).await;
    let now = chrono::Utc::now();
    let landline = phone("0212 555 44 33");
    let mut lead = Card::person_customer("a-lead", "Eski Lead", vec![landline.clone()], now);
    lead.kind = CardKind::Lead;
    lead.customer = None;
    lead.lead = Some(onecrm_domain::party::LeadDetails {
        source: LeadSource::WebForm,
        status: onecrm_domain::party::LeadStatus::New,
        utm: Default::default(),
        campaign: None,
        first_touch: onecrm_domain::party::Touch {
            channel: onecrm_domain::timeline::Channel::WebForm,
            at: now,
            external_id: None,
            referral: None,
            utm: None,
        },
        last_touch: onecrm_domain::party::Touch {
            channel: onecrm_domain::timeline::Channel::WebForm,
            at: now,
            external_id: None,
            referral: None,
            utm: None,
        },
    });
    customer(&stack, &tenant, lead).await;
    customer(
        &stack,
        &tenant,
        Card::person_customer(
            "b-old-co",
            "Eski Firma",
            vec![landline.clone()],
            now - Duration::days(30),
        ),
    )
    .await;
    customer(
        &stack,
        &tenant,
        Card::person_customer(
            "c-new-co",
            "IP Santral Firması",
            vec![landline.clone()],
            now - Duration::hours(1),
        ),
    )
    .await;
    let contact = Card {
        kind: CardKind::Contact,
        customer: None,
        contact: Some(ContactDetails {
            customer_card_id: "b-old-co".into(),
            title: Some("Satın alma".into()),
        }),
        ..Card::person_customer(
            "d-contact",
            "Ayşe Kaya",
            vec![landline],
            now - Duration::days(60),
        )
    };
    customer(&stack, &tenant, contact).await;
    let (status, body) = call(&app, seed(&token, "M1", "02125554433", "1")).await;
    assert_eq!(status, 200, "{body}");
    let order: Vec<&str> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["card_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["d-contact", "c-new-co", "b-old-co", "a-lead"],
        "contact, companies by recent touch, lead"
    );
    assert_eq!(body["cards"][0]["company_card_id"], "b-old-co");
    assert_eq!(body["open"], "/cards/d-contact");
}

#[tokio::test]
async fn keypresses_open_quotes_and_numbered_tickets_and_an_unknown_caller_becomes_a_phone_lead() {
    let (stack, tenant, app, token) = with_mehmet(&[]).await;
    let (_, quote) = call(&app, pbx_request("seed-keypress-2", &token, |_| {})).await;
    assert_eq!(
        (
            quote["action"].as_str(),
            quote["record"]["readable_number"].as_str()
        ),
        (Some("new_quote"), Some("TKL-000001"))
    );
    let (_, ticket) = call(&app, pbx_request("seed-keypress-3", &token, |_| {})).await;
    assert_eq!(ticket["record"]["readable_number"], "T-000001");
    assert_eq!(
        ticket["open"].as_str().unwrap(),
        format!(
            "/cards/c-mehmet/tickets/{}",
            ticket["record"]["id"].as_str().unwrap()
        )
    );
    let opened = stack.crm().opened_on(&tenant.id, "c-mehmet").await.unwrap();
    assert_eq!(opened.len(), 2);
    for record in &opened {
        match record {
            Opened::Quote(q) => {
                assert_eq!(q.owner.as_deref(), Some(PBX_AGENT_USER));
                assert_eq!(
                    (
                        q.total.amount.to_string().as_str(),
                        q.total.currency.as_str()
                    ),
                    ("0", "TRY")
                );
            }
            Opened::Ticket(t) => {
                assert_eq!((t.owner.as_deref(), t.number), (Some(PBX_AGENT_USER), 1))
            }
        }
    }
    let (_, unknown) = call(&app, pbx_request("seed-unknown-caller", &token, |_| {})).await;
    assert_eq!(unknown["record"]["readable_number"], "T-000002");
    let lead_id = unknown["new_lead"].as_str().unwrap();
    let lead = stack
        .crm()
        .card(&tenant.id, lead_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (lead.kind, lead.lead.unwrap().source),
        (CardKind::Lead, LeadSource::Phone)
    );
    assert_eq!(lead.phones, vec![phone("05334979714")]);
    let timeline = stack.crm().timeline(&tenant.id, lead_id, 5).await.unwrap();
    assert_eq!(
        timeline[0].text,
        "Gelen arama (dahili 911): yeni destek kaydı T-000002"
    );
    // An unknown key: stored, nothing opened, a warning record.
    let (status, odd) = call(&app, seed(&token, "K9", "05321112233", "9")).await;
    assert_eq!(
        (status, odd["action"].as_str()),
        (200, Some("unknown_keypress"))
    );
    let warnings = stack.integration_logs(&tenant.id, Integration::Pbx).await;
    assert!(warnings
        .iter()
        .any(|r| r.result == LogResult::Warning
            && r.error_code.as_deref() == Some("unknown_keypress")));
}

#[tokio::test]
async fn a_repeated_call_event_repeats_the_answer_even_when_both_deliveries_race() {
    let (stack, tenant, app, token) = with_mehmet(&[]).await;
    let (_, first) = call(&app, pbx_request("seed-keypress-3", &token, |_| {})).await;
    let (status, again) = call(&app, pbx_request("seed-keypress-3", &token, |_| {})).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("repeated")));
    assert_eq!(
        (&again["record"], &again["cards"]),
        (&first["record"], &first["cards"])
    );
    // Both deliveries of call B looked before either wrote.
    let racing = Arc::new(CallsInFlight {
        inner: Arc::new(stack.crm()),
        barrier: tokio::sync::Barrier::new(2),
    });
    let webhook = Arc::new(stack.pbx_webhook_with(racing));
    let body = json!({"callUniqueId": "B1", "extension": "911", "agentId": "911", "callerId": "05321112233", "keypress": "3"}).to_string();
    let answers = futures_join(&webhook, &token, [body.clone(), body]).await;
    let numbers: Vec<&str> = answers
        .iter()
        .map(|a| a["record"]["readable_number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["T-000002", "T-000002"],
        "one ticket, the same answer twice"
    );
    let mut statuses: Vec<&str> = answers
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["ok", "repeated"]);
    let tickets = stack.crm().opened_on(&tenant.id, "c-mehmet").await.unwrap();
    assert_eq!(tickets.len(), 2, "A000001's and B1's");
    let queue = stack
        .crm()
        .call_queue(&tenant.id, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 2);
}

/// Posts every body at once through `webhook` and returns the answers in order.
async fn futures_join<const N: usize>(
    webhook: &Arc<onecrm_domain::pbx::webhook::PbxCallWebhook>,
    token: &str,
    bodies: [String; N],
) -> Vec<Value> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let webhook = webhook.clone();
            let token = token.to_string();
            tokio::spawn(async move {
                let headers = [("x-pbx-token", token.as_str())];
                let request = InboundRequest {
                    body: body.as_bytes(),
                    headers: &headers,
                    source_ip: Some("85.111.2.3"),
                    path_token: None,
                };
                let reply = webhook
                    .handle(&request, &TraceId::new(uuid::Uuid::now_v7().to_string()))
                    .await;
                assert_eq!(reply.status, 200, "{}", reply.body);
                serde_json::from_str::<Value>(&reply.body).unwrap()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn different_calls_racing_for_the_ticket_counter_get_distinct_numbers_without_gaps() {
    let (stack, _tenant, _, token) = with_mehmet(&[]).await;
    let racing = Arc::new(CallsInFlight {
        inner: Arc::new(stack.crm()),
        barrier: tokio::sync::Barrier::new(4),
    });
    let webhook = Arc::new(stack.pbx_webhook_with(racing));
    let bodies = ["R1", "R2", "R3", "R4"].map(|id| json!({"callUniqueId": id, "extension": "911", "callerId": "05321112233", "keypress": 3}).to_string());
    let answers = futures_join(&webhook, &token, bodies).await;
    let mut numbers: Vec<String> = answers
        .iter()
        .map(|a| a["record"]["readable_number"].as_str().unwrap().to_string())
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["T-000001", "T-000002", "T-000003", "T-000004"]);
}

#[tokio::test]
async fn netgsm_pushes_and_the_path_token_work_and_the_queue_lists_per_agent_newest_first() {
    let (stack, tenant, app, token) = with_mehmet(&["85.111.2.0/24"]).await;
    let mut actions = Vec::new();
    for sample in [
        "netgsm-inbound",
        "netgsm-dtmf",
        "netgsm-hangup",
        "netgsm-cdr",
        "seed-path-token",
    ] {
        let (status, body) = call(&app, pbx_request(sample, &token, |_| {})).await;
        assert_eq!(status, 200, "{sample}: {body}");
        assert_eq!(body["cards"][0]["card_id"], "c-mehmet", "{sample}");
        actions.push(body["action"].as_str().unwrap().to_string());
    }
    assert_eq!(
        actions,
        [
            "show_card",
            "new_ticket",
            "record_only",
            "record_only",
            "show_card"
        ]
    );
    let crm = stack.crm();
    let agent = format!("USER#{PBX_AGENT_USER}");
    let first = crm
        .call_queue(&tenant.id, Some(&agent), PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let rest = crm
        .call_queue(
            &tenant.id,
            Some(&agent),
            PageRequest::after(3, first.next.unwrap()),
        )
        .await
        .unwrap();
    let all: Vec<_> = first.items.iter().chain(&rest.items).collect();
    assert_eq!(all.len(), 4, "the CDR names no extension");
    assert!(
        all.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at),
        "newest first"
    );
    assert_eq!(
        crm.call_queue(&tenant.id, Some("EXT#999"), PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
}

#[tokio::test]
async fn bad_tokens_sources_and_bodies_are_refused_with_the_field_named_and_logged() {
    let stack = stack().await;
    let tenant = stack.tenant(false).await;
    let (app, token) = stack.pbx(&tenant, &["10.20.0.0/16"]).await;
    let (status, body) = call(&app, pbx_request("bad-token", "pbx_guess", |_| {})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (401, Some("token"))
    );
    let (status, body) = call(&app, pbx_request("seed-keypress-1", &token, |_| {})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("source_not_allowed")),
        "85.111.2.3 is off the list"
    );
    let queue = stack
        .crm()
        .call_queue(&tenant.id, None, PageRequest::first(10))
        .await
        .unwrap();
    assert!(queue.items.is_empty(), "nothing stored");
    let (app, token) = stack.pbx(&tenant, &[]).await;
    let (status, body) = call(&app, pbx_request("bad-body", &token, |_| {})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("callerId"))
    );
    let (status, body) = call(&app, seed(&token, "T1", "05321112233", "1")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &app,
        pbx_request("seed-keypress-1", &token, |b| {
            b["keypress"] = json!({"key": 1})
        }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("keypress"))
    );
    let big = "x".repeat(20_000);
    let (status, _) = call(
        &app,
        pbx_request("seed-keypress-1", &token, move |b| b["pad"] = json!(big)),
    )
    .await;
    assert_eq!(status, 413);
    let errors = stack.error_logs(&tenant.id, "unparsed_event").await;
    assert_eq!(errors.len(), 2, "each bad body logged");
    assert!(errors.iter().all(|r| r.http_status == Some(400)));
}

#[tokio::test]
async fn a_repeat_puts_back_the_timeline_entry_a_stopped_first_delivery_never_wrote() {
    let (stack, tenant, app, token) = with_mehmet(&[]).await;
    let (status, _) = call(&app, seed(&token, "S1", "05321112233", "1")).await;
    assert_eq!(status, 200);
    // As if the function had stopped between the call event and its timeline entry.
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let pk = format!("T#{}#CARD#c-mehmet", tenant.id);
    let items = dynamo
        .query()
        .table_name(&stack.settings.crm_table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :tl)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()),
        )
        .expression_attribute_values(
            ":tl",
            aws_sdk_dynamodb::types::AttributeValue::S("TL#".into()),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(items.len(), 1);
    dynamo
        .delete_item()
        .table_name(&stack.settings.crm_table)
        .key("pk", items[0]["pk"].clone())
        .key("sk", items[0]["sk"].clone())
        .send()
        .await
        .unwrap();
    assert!(stack
        .crm()
        .timeline(&tenant.id, "c-mehmet", 5)
        .await
        .unwrap()
        .is_empty());
    let (status, answer) = call(&app, seed(&token, "S1", "05321112233", "1")).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("repeated")));
    let timeline = stack
        .crm()
        .timeline(&tenant.id, "c-mehmet", 5)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 1, "back, at the first delivery's time");
    let (_, _) = call(&app, seed(&token, "S1", "05321112233", "1")).await;
    assert_eq!(
        stack
            .crm()
            .timeline(&tenant.id, "c-mehmet", 5)
            .await
            .unwrap()
            .len(),
        1,
        "never doubled"
    );
}
