//! The operator API end to end against the emulator: the committed sample requests through
//! `crm-api` with real keys, records and cards; every route scoped to the key's tenant.

use onecrm_adapters::dead_letters::SqsDeadLetters;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::log::{Integration, LogDirection, LogEntry, LogResult};
use onecrm_domain::operator::keys::{key_hash, OperatorKey, OperatorKeys, Scope};
use onecrm_domain::party::Card;
use onecrm_domain::ports::CrmRepository;
use onecrm_e2e::*;
use serde_json::Value;

/// A committed sample request with this key (and this path, when given).
fn request(name: &str, key: &str, path: Option<&str>) -> lambda_http::Request {
    let mut event = fixture("crm-api", name);
    event["headers"]["authorization"] = Value::String(format!("Bearer {key}"));
    if let Some(path) = path {
        event["rawPath"] = Value::String(path.into());
        event["requestContext"]["http"]["path"] = Value::String(path.into());
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn call(app: &crm_api::App, request: lambda_http::Request) -> (u16, Value) {
    let response = crm_api::handle(app, request).await.unwrap();
    (response.status().as_u16(), body_json(&response))
}

/// `crm-api` on the emulator; `queue`: the WhatsApp queue and DLQ its replay uses.
fn api(stack: &Stack, queue: Option<&TestQueue>) -> crm_api::App {
    let raw_events = std::env::var("RAW_EVENT_TABLE").unwrap();
    let queues = queue
        .map(|q| (Integration::WhatsApp, (q.url.clone(), q.dlq_url.clone())))
        .into_iter()
        .collect();
    let dead_letters = SqsDeadLetters::new(&stack.sdk, queues);
    crm_api::App::new(
        &stack.wiring(),
        &raw_events,
        std::sync::Arc::new(dead_letters),
    )
}

/// The sample request as a POST of `body` to `path`.
fn post(key: &str, path: &str, body: &str) -> lambda_http::Request {
    let mut event = fixture("crm-api", "whatsapp-errors");
    event["headers"]["authorization"] = Value::String(format!("Bearer {key}"));
    event["rawPath"] = Value::String(path.into());
    event["rawQueryString"] = Value::String(String::new());
    event
        .as_object_mut()
        .unwrap()
        .remove("queryStringParameters");
    event["requestContext"]["http"]["path"] = Value::String(path.into());
    event["requestContext"]["http"]["method"] = Value::String("POST".into());
    event["body"] = Value::String(body.into());
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// Moves every message of the queue to its DLQ, as its last failed delivery would.
async fn dead_letter_all(stack: &Stack, queue: &TestQueue) -> usize {
    let sqs = stack.sqs();
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return moved;
        }
        for m in messages {
            sqs.send_message()
                .queue_url(&queue.dlq_url)
                .message_body(m.body.unwrap())
                .send()
                .await
                .unwrap();
            sqs.delete_message()
                .queue_url(&queue.url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
            moved += 1;
        }
    }
}

async fn key(stack: &Stack, tenant: &TestTenant, scopes: Vec<Scope>) -> String {
    let key = format!("ocrm_{}", uuid::Uuid::new_v4().simple());
    let stored = OperatorKey {
        tenant_id: tenant.id.clone(),
        name: "test".into(),
        scopes,
        created_at: chrono::Utc::now(),
    };
    stack.crm().put_key(&key_hash(&key), &stored).await.unwrap();
    key
}

#[tokio::test]
async fn every_route_answers_from_the_keys_tenant_only() {
    let stack = stack().await;
    let (a, b) = (stack.tenant(false).await, stack.tenant(false).await);
    let log = stack.wiring().log;
    for (tenant, result) in [
        (&a, LogResult::Error),
        (&a, LogResult::Success),
        (&b, LogResult::Error),
    ] {
        let trace = TraceId::new(uuid::Uuid::now_v7().to_string());
        let entry = LogEntry::new(
            tenant.id.clone(),
            Integration::WhatsApp,
            LogDirection::Inbound,
            "whatsapp.message",
            result,
            trace,
        )
        .starts_trace(chrono::Utc::now());
        let entry = match result {
            LogResult::Error => {
                entry.error("invalid_payload", "entry[0].changes[0].value: missing")
            }
            _ => entry,
        };
        log.write(entry).await;
    }
    let card = Card::person_customer("crm-api-card", "Zeynep Çelik", vec![], chrono::Utc::now());
    stack.crm().create_card(&a.id, &card).await.unwrap();
    let app = api(&stack, None);
    let key_a = key(&stack, &a, Scope::ALL.to_vec()).await;
    let key_b = key(&stack, &b, Scope::ALL.to_vec()).await;
    let logs_only = key(&stack, &a, vec![Scope::Logs]).await;

    // The sample: WhatsApp errors of the key's tenant, masked records with their trace ids.
    let (status, body) = call(&app, request("whatsapp-errors", &key_a, None)).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["tenant_id"].as_str(), Some(a.id.as_str()));
    let trace = items[0]["trace_id"].as_str().unwrap().to_string();
    let (status, path) = call(
        &app,
        request(
            "whatsapp-errors",
            &key_a,
            Some(&format!("/v1/traces/{trace}")),
        ),
    )
    .await;
    assert_eq!(
        (status, path["records"].as_array().unwrap().len()),
        (200, 1)
    );
    // Tenant B's key: its own error only; A's trace and card are not found.
    let (_, body) = call(&app, request("whatsapp-errors", &key_b, None)).await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(
        (items.len(), items[0]["tenant_id"].as_str()),
        (1, Some(b.id.as_str()))
    );
    let (status, _) = call(
        &app,
        request(
            "whatsapp-errors",
            &key_b,
            Some(&format!("/v1/traces/{trace}")),
        ),
    )
    .await;
    assert_eq!(status, 404);
    let card_path = "/v1/cards/crm-api-card";
    assert_eq!(
        call(&app, request("card", &key_b, Some(card_path))).await.0,
        404
    );
    let (status, body) = call(&app, request("card", &key_a, Some(card_path))).await;
    assert_eq!(
        (status, body["card"]["display_name"].as_str()),
        (200, Some("Zeynep Çelik"))
    );
    // Scopes and keys.
    let (status, body) = call(&app, request("card", &logs_only, Some(card_path))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("missing_scope"))
    );
    let (status, body) = call(&app, request("card", "ocrm_not-a-key", Some(card_path))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, body) = call(&app, request("whatsapp-leads", &key_a, None)).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, _) = call(
        &app,
        request("whatsapp-leads", &key_a, Some("/v1/call-queue")),
    )
    .await;
    assert_eq!(status, 200);
    // The log screen: the static page, whatever the key (it asks for one).
    let response = crm_api::handle(&app, request("card", "", Some("/ui")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        _ => String::new(),
    };
    assert!(page.contains("Entegrasyon kayıtları") && page.contains("/v1/logs"));
    // Health: tenant A's day of WhatsApp records (one error in two); no DLQ wired here.
    let (status, body) = call(&app, request("whatsapp-leads", &key_a, Some("/v1/health"))).await;
    assert_eq!(status, 200, "{body}");
    let whatsapp = &body["integrations"][0];
    assert_eq!(whatsapp["integration"], "whatsapp", "{body}");
    assert_eq!(
        (
            whatsapp["records_24h"].as_u64(),
            whatsapp["errors_24h"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert!(whatsapp["dead_letters"].is_null());
    // Nightly jobs' state, and payloads (none archived for a trace written by hand).
    let (status, body) = call(
        &app,
        request("whatsapp-leads", &key_a, Some("/v1/express/status")),
    )
    .await;
    assert_eq!((status, body["last"].is_null()), (200, true));
    let (status, _) = call(
        &app,
        request("whatsapp-leads", &key_a, Some("/v1/logo/report")),
    )
    .await;
    assert_eq!(status, 200);
    let payload = format!("/v1/payloads/{trace}");
    let (status, _) = call(&app, request("whatsapp-leads", &logs_only, Some(&payload))).await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, request("whatsapp-leads", &key_a, Some(&payload))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_dead_lettered_event_is_listed_replayed_once_and_lands() {
    let (stack, tenant, queue) = setup(false).await;
    let other = stack.tenant(false).await;
    let inbound = stack.inbound(&queue);
    let response =
        whatsapp_inbound::handle(&inbound, signed_request("text-message", &tenant, |b| b))
            .await
            .unwrap();
    let trace = body_json(&response)["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The worker could not process it (say, the tenant's token had expired): in the DLQ.
    assert_eq!(dead_letter_all(&stack, &queue).await, 1);
    let app = api(&stack, Some(&queue));
    let ops = key(&stack, &tenant, vec![Scope::Logs, Scope::Replay]).await;
    let others = key(&stack, &other, Scope::ALL.to_vec()).await;
    let list = "/v1/dead-letters";
    let listed = |key: String| request("whatsapp-leads", &key, Some(list));
    let mut listing = listed(ops.clone());
    *listing.uri_mut() = format!("https://x{list}?integration=whatsapp")
        .parse()
        .unwrap();
    let listing = lambda_http::RequestExt::with_query_string_parameters(
        listing,
        std::collections::HashMap::from([("integration".to_string(), "whatsapp".to_string())]),
    );
    let (status, body) = call(&app, listing).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"][0]["trace_id"].as_str(),
        Some(trace.as_str()),
        "{body}"
    );
    let other_listing = lambda_http::RequestExt::with_query_string_parameters(
        listed(others.clone()),
        std::collections::HashMap::from([("integration".to_string(), "whatsapp".to_string())]),
    );
    let (_, body) = call(&app, other_listing).await;
    assert_eq!(
        body["items"].as_array().map(Vec::len),
        Some(0),
        "another tenant sees none"
    );

    let replay = format!(r#"{{"integration":"whatsapp","trace_id":"{trace}"}}"#);
    let (_, body) = call(&app, post(&others, "/v1/replay", &replay)).await;
    assert_eq!(body["replayed"], 0, "another tenant cannot replay it");
    let (status, body) = call(&app, post(&ops, "/v1/replay", &replay)).await;
    assert_eq!(
        (status, body["replayed"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    assert_eq!(queue.depth(&queue.dlq_url).await, 0);
    // On the queue again, carrying `replay_of`.
    let sqs = stack.sqs();
    let out = sqs
        .receive_message()
        .queue_url(&queue.url)
        .send()
        .await
        .unwrap();
    let messages = out.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    for m in messages {
        let envelope =
            onecrm_domain::envelope::Envelope::from_json(m.body.as_deref().unwrap()).unwrap();
        assert!(envelope.replay_of.is_some());
        assert_eq!(envelope.trace_id.as_str(), trace);
        sqs.change_message_visibility()
            .queue_url(&queue.url)
            .receipt_handle(m.receipt_handle.unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    let worker = stack.worker(&queue);
    queue.drain(&worker).await;
    let card = stack
        .sender_card(&tenant.id)
        .await
        .expect("the replayed message made its lead");
    let entries = stack
        .crm()
        .timeline(&tenant.id, &card.card_id, 10)
        .await
        .unwrap()
        .len();
    // Replayed again although it had succeeded: nothing doubles.
    let response =
        whatsapp_inbound::handle(&inbound, signed_request("text-message", &tenant, |b| b))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    dead_letter_all(&stack, &queue).await;
    let again = body_json(&response)["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let replay = format!(r#"{{"integration":"whatsapp","trace_id":"{again}"}}"#);
    assert_eq!(
        call(&app, post(&ops, "/v1/replay", &replay)).await.1["replayed"],
        1
    );
    queue.drain(&worker).await;
    assert_eq!(
        stack
            .crm()
            .timeline(&tenant.id, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        entries
    );
    let logs = stack
        .integration_logs(&tenant.id, Integration::WhatsApp)
        .await;
    assert_eq!(
        logs.iter()
            .filter(|l| l.operation == "crm_api.replay")
            .count(),
        2
    );
    // The delivery as received, unmasked, for a key with the payloads scope; the read logged.
    let payloads = key(&stack, &tenant, vec![Scope::Payloads]).await;
    let path = format!("/v1/payloads/{trace}");
    let (status, body) = call(&app, request("whatsapp-leads", &payloads, Some(&path))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["units"].to_string().contains("905331234567"), "{body}");
    let (status, _) = call(&app, request("whatsapp-leads", &ops, Some(&path))).await;
    assert_eq!(status, 403);
    let reads = stack
        .integration_logs(&tenant.id, Integration::CrmApi)
        .await;
    assert_eq!(
        reads
            .iter()
            .filter(|l| l.operation == "crm_api.payload.read")
            .count(),
        1
    );
}
