//! End to end against the emulator: a browser's form post -> web-form -> SQS ->
//! web-form-worker -> DynamoDB, with the committed API Gateway samples re-pointed at a test
//! tenant's key.

use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::party::{CardKind, IdentityKey, LeadSource};
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::CrmRepository;
use onecrm_e2e::*;
use serde_json::json;

const SITE: &str = "http://localhost:8080";

/// A committed sample with the tenant's key (and any header changes) swapped in.
fn form_request(
    name: &str,
    key: &str,
    edit: impl Fn(&mut serde_json::Value),
) -> lambda_http::Request {
    let mut event = fixture("web-form", name);
    if event["headers"].get("x-api-key").is_some() {
        event["headers"]["x-api-key"] = json!(key);
    }
    edit(&mut event);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn header<'a>(
    response: &'a lambda_http::Response<lambda_http::Body>,
    name: &str,
) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn json_and_urlencoded_forms_become_web_form_leads_with_cors_for_the_site() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, key) = stack.web_form(&queue, &tenant, &[SITE], 30).await;
    let preflight = web_form::handle(&app, form_request("preflight", &key, |_| {}))
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some(SITE)
    );
    for sample in ["form-json", "form-urlencoded"] {
        let response = web_form::handle(&app, form_request(sample, &key, |_| {}))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            202,
            "{sample}: {:?}",
            body_json(&response)
        );
        assert_eq!(header(&response, "access-control-allow-origin"), Some(SITE));
    }
    assert_eq!(
        queue.drain_web_forms(&stack.web_form_worker(&queue)).await,
        2
    );
    let crm = stack.crm();
    for (phone, campaign) in [
        ("05331234567", "kasim-kasko"),
        ("05321112233", "kasim-bulten"),
    ] {
        let key = IdentityKey::Phone(PhoneNumber::parse(phone).unwrap());
        let card_ref = crm.find_card(&tenant.id, &key).await.unwrap().unwrap();
        let card = crm
            .card(&tenant.id, &card_ref.card_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(card.kind, CardKind::Lead);
        let lead = card.lead.unwrap();
        assert_eq!(lead.source, LeadSource::WebForm);
        assert_eq!(lead.utm.campaign.as_deref(), Some(campaign));
    }
    let logs = stack
        .integration_logs(&tenant.id, Integration::WebForm)
        .await;
    assert_eq!(
        logs.iter()
            .filter(|r| r.operation == "web_form.submit" && r.result == LogResult::Success)
            .count(),
        2
    );
    let text = serde_json::to_string(&logs).unwrap();
    assert!(
        !text.contains("0533 123 45 67") && !text.contains(&key),
        "masked, no key"
    );
}

#[tokio::test]
async fn a_wrong_key_is_401_and_a_foreign_origin_403_with_nothing_queued() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, key) = stack.web_form(&queue, &tenant, &[SITE], 30).await;
    let wrong = web_form::handle(&app, fixture_request("bad-key"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(body_json(&wrong)["error"]["field"], "x-api-key");
    let foreign = web_form::handle(
        &app,
        form_request("form-json", &key, |e| {
            e["headers"]["origin"] = json!("https://evil.example")
        }),
    )
    .await
    .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
    assert_eq!(queue.depth(&queue.url).await, 0);
}

fn fixture_request(name: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&fixture("web-form", name).to_string()).unwrap()
}

/// Two instances share one key's limit (the counter is in DynamoDB, not in memory).
#[tokio::test]
async fn the_rate_limit_holds_across_instances() {
    let (stack, tenant, queue) = setup(false).await;
    let (a, key) = stack.web_form(&queue, &tenant, &[SITE], 3).await;
    let b = stack.web_form_app(&queue);
    let mut statuses = Vec::new();
    for app in [&a, &b, &a, &b] {
        let response = web_form::handle(app, form_request("form-json", &key, |_| {}))
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let wait: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait));
        }
    }
    // Three in one minute, unless the minute turned between two posts.
    assert!(
        statuses == [202, 202, 202, 429] || statuses.iter().all(|s| *s == 202),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_idempotency_key_makes_a_double_submit_one_lead_with_the_first_answer() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, key) = stack.web_form(&queue, &tenant, &[SITE], 30).await;
    let with_key = |e: &mut serde_json::Value| {
        e["headers"]["idempotency-key"] = json!("3f0c6b1e-double-click")
    };
    let first = web_form::handle(&app, form_request("form-json", &key, with_key))
        .await
        .unwrap();
    let second = web_form::handle(
        &stack.web_form_app(&queue),
        form_request("form-json", &key, with_key),
    )
    .await
    .unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (202, 202)
    );
    assert_eq!(
        body_json(&second)["trace_id"],
        body_json(&first)["trace_id"]
    );
    assert_eq!(body_json(&second)["replayed"], true);
    assert_eq!(
        queue.drain_web_forms(&stack.web_form_worker(&queue)).await,
        1
    );
}

/// The same person fills the form, then writes on WhatsApp: one card, both on its timeline.
#[tokio::test]
async fn a_form_then_whatsapp_land_on_one_card() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, key) = stack.web_form(&queue, &tenant, &[SITE], 30).await;
    assert_eq!(
        web_form::handle(&app, form_request("form-json", &key, |_| {}))
            .await
            .unwrap()
            .status(),
        202
    );
    queue.drain_web_forms(&stack.web_form_worker(&queue)).await;
    let response = whatsapp_inbound::handle(
        &stack.inbound(&queue),
        signed_request("text-message", &tenant, |b| b),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    queue.drain(&stack.worker(&queue)).await;
    let crm = stack.crm();
    let phone = IdentityKey::Phone(PhoneNumber::parse("05331234567").unwrap());
    let cards = crm.find_cards(&tenant.id, &phone).await.unwrap();
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!(
        crm.timeline(&tenant.id, &cards[0].card_id, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Through the real handler: a form with bad fields is 422 naming each; a bot's is 202 and
/// nothing is queued.
#[tokio::test]
async fn bad_fields_are_422_and_a_bot_is_answered_but_not_queued() {
    let (stack, tenant, queue) = setup(false).await;
    let (app, key) = stack.web_form(&queue, &tenant, &[SITE], 30).await;
    let bad = web_form::handle(
        &app,
        form_request("form-json", &key, |e| {
            e["body"] = json!(r#"{"name": "Ayşe", "phone": "0212", "email": "ayse@"}"#)
        }),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(
        header(&bad, "access-control-allow-origin"),
        Some(SITE),
        "the page can read why"
    );
    let fields: Vec<String> = body_json(&bad)["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, ["email", "phone"]);
    let bot = web_form::handle(
        &app,
        form_request("form-json", &key, |e| {
            e["body"] = json!(
                r#"{"name": "Bot", "email": "bot@spam.example", "website": "http://spam.example"}"#
            )
        }),
    )
    .await
    .unwrap();
    assert_eq!(bot.status(), 202);
    assert_eq!(queue.depth(&queue.url).await, 0);
}
