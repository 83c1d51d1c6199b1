//! The operator API end to end against the emulator: the committed sample requests through
//! `crm-api` with real keys, records and cards; every route scoped to the key's tenant.

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
    let raw_events = std::env::var("RAW_EVENT_TABLE").unwrap();
    let app = crm_api::App::new(&stack.wiring(), &raw_events);
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
}
