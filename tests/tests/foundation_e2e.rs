//! The shared ingress and write path against the emulator: what a signed delivery can and can
//! no longer lose or leak (issue: one foundation for every integration).

use std::sync::Arc;

use chrono::Utc;
use onecrm_domain::ingress::Hold;
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::page::{collect_all, PageRequest};
use onecrm_domain::party::LeadSource;
use onecrm_domain::ports::*;
use onecrm_domain::tenant::{TenantId, TenantRoute};
use onecrm_domain::whatsapp::worker::WhatsAppWorker;
use onecrm_e2e::*;
use serde_json::json;

async fn logs_of(stack: &Stack, tenant: &TenantId) -> Vec<onecrm_domain::log::LogRecord> {
    let (from, to) = around_now();
    let logs = stack.logs();
    collect_all(2, |page| {
        logs.by_integration(tenant, Integration::WhatsApp, from, to, page)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_event_that_does_not_parse_is_kept_and_its_neighbours_are_processed() {
    let (stack, tenant, queue) = setup(false).await;
    let inbound = stack.inbound(&queue);
    let request = signed_request(
        "text-message",
        &tenant,
        edit_json(|v| {
            let messages = &mut v["entry"][0]["changes"][0]["value"]["messages"];
            let mut strange = messages[0].clone();
            strange["id"] = json!("wamid.STRANGE");
            strange["type"] = json!("interactive");
            strange["interactive"] =
                json!({ "type": "carousel_reply", "carousel_reply": { "id": "c" } });
            // Twice: one held item, and no batch naming a key twice (DynamoDB refuses those).
            messages.as_array_mut().unwrap().push(strange.clone());
            messages.as_array_mut().unwrap().push(strange);
        }),
    );
    let response = whatsapp_inbound::handle(&inbound, request).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(
        body_json(&response)["held"],
        2,
        "{:?}",
        body_json(&response)
    );
    assert_eq!(
        queue.drain(&stack.worker(&queue)).await,
        1,
        "the valid message"
    );
    let crm = stack.crm();
    let card = stack
        .sender_card(&tenant.id)
        .await
        .expect("the valid message made its lead");
    assert_eq!(
        crm.timeline(&tenant.id, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let held = stack
        .archive()
        .unparsed(&tenant.id, Integration::WhatsApp, PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].path, "entry[0].changes[0].value.messages[1]");
    assert!(
        held[0].raw.contains("carousel_reply"),
        "kept whole, unmasked: {}",
        held[0].raw
    );
    assert!(held[0].raw.contains("905331234567"));
    assert!(
        held[0].reason.contains("interactive.type"),
        "{}",
        held[0].reason
    );
    let errors = stack.error_logs(&tenant.id, "unparsed_event").await;
    assert_eq!(errors.len(), 2, "each occurrence is logged");
    assert!(
        !serde_json::to_string(&errors)
            .unwrap()
            .contains("905331234567"),
        "the log is masked"
    );
    // The raw archive has the delivery as received, linked by trace id.
    let trace = errors[0].trace_id.as_str();
    let archived = stack.archive().delivery(&tenant.id, trace).await.unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0].0, "entry[0].changes[0]");
}

#[tokio::test]
async fn a_shared_app_delivery_logs_each_tenant_only_its_own_entries() {
    let (stack, first, queue) = setup(false).await;
    let second = stack.tenant_sharing_app(&first).await;
    let inbound = stack.inbound(&queue);
    let request = signed_request(
        "text-message",
        &first,
        edit_json(|v| {
            let mut other = v["entry"][0].clone();
            other["id"] = json!(second.waba_id);
            let value = &mut other["changes"][0]["value"];
            value["metadata"]["phone_number_id"] = json!(second.phone_number_id);
            value["messages"][0]["id"] = json!("wamid.SECOND");
            value["messages"][0]["text"]["body"] = json!("second-tenant-only");
            v["entry"].as_array_mut().unwrap().push(other);
        }),
    );
    let response = whatsapp_inbound::handle(&inbound, request).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(body_json(&response)["events"], 2);
    let first_logs = serde_json::to_string(&logs_of(&stack, &first.id).await).unwrap();
    let second_logs = serde_json::to_string(&logs_of(&stack, &second.id).await).unwrap();
    assert!(
        !first_logs.contains("second-tenant-only") && !first_logs.contains(&second.phone_number_id),
        "{first_logs}"
    );
    assert!(
        second_logs.contains("second-tenant-only") && !second_logs.contains(&first.phone_number_id),
        "{second_logs}"
    );
    queue.drain(&stack.worker(&queue)).await;
    for tenant in [&first, &second] {
        let (from, to) = around_now();
        let leads = stack
            .crm()
            .leads_by_source(
                &tenant.id,
                LeadSource::WhatsApp,
                from,
                to,
                PageRequest::first(10),
            )
            .await
            .unwrap();
        assert_eq!(leads.items.len(), 1, "each tenant got its own lead");
    }
}

#[tokio::test]
async fn events_for_an_unregistered_number_are_held_until_it_is_registered() {
    let (stack, tenant, queue) = setup(false).await;
    // A number of no tenant: the tenant's own with its last digit changed.
    let own = &tenant.phone_number_id;
    let last = if own.ends_with('1') { '2' } else { '1' };
    let later = format!("{}{last}", &own[..own.len() - 1]);
    let inbound = stack.inbound(&queue);
    let request = signed_request(
        "text-message",
        &tenant,
        edit_json(|v| {
            let mut other = v["entry"][0].clone();
            other["id"] = json!("555");
            other["changes"][0]["value"]["metadata"]["phone_number_id"] = json!(later);
            other["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.LATER");
            v["entry"].as_array_mut().unwrap().push(other);
        }),
    );
    let response = whatsapp_inbound::handle(&inbound, request).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(
        (
            body_json(&response)["events"].as_u64(),
            body_json(&response)["held"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let route = TenantRoute::WhatsAppPhoneNumberId(later.clone());
    let archive = stack.archive();
    let held = archive
        .unrouted(Integration::WhatsApp, Some(&route), PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].hold, Hold::Unrouted(route.clone()));
    assert!(held[0].expires_at > Utc::now().timestamp());
    // Listable across routes too (the admin CLI's `unrouted`).
    let all = archive
        .unrouted(Integration::WhatsApp, None, PageRequest::first(1000))
        .await
        .unwrap();
    assert!(all.items.iter().any(|h| h.id == held[0].id));
    queue.drain(&stack.worker(&queue)).await;

    // The number is registered to a new tenant: its held event is delivered to it.
    let mut newcomer = stack.tenant(false).await;
    newcomer.phone_number_id = later.clone();
    newcomer.app_id = tenant.app_id.clone();
    newcomer.app_secret = tenant.app_secret.clone();
    let newcomer = stack.add_tenant_for_test(newcomer).await;
    assert_eq!(inbound.webhook().release(&route).await.unwrap(), 1);
    assert_eq!(queue.drain(&stack.worker(&queue)).await, 1);
    let card = stack.sender_card(&newcomer.id).await;
    assert!(
        card.is_some(),
        "the held message became the newcomer's lead"
    );
    assert!(archive
        .unrouted(Integration::WhatsApp, Some(&route), PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn a_base64_encoded_body_is_verified_over_the_decoded_bytes() {
    let (stack, tenant, queue) = setup(false).await;
    let request = signed_request("text-message", &tenant, |b| b);
    let mut event = fixture("whatsapp-inbound", "text-message");
    let body = match request.body() {
        lambda_http::Body::Text(t) => t.clone(),
        _ => unreachable!(),
    };
    use base64::Engine;
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body.as_bytes()));
    event["isBase64Encoded"] = json!(true);
    event["headers"]["x-hub-signature-256"] =
        json!(request.headers()["x-hub-signature-256"].to_str().unwrap());
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = whatsapp_inbound::handle(&stack.inbound(&queue), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
}

#[tokio::test]
async fn a_body_over_three_megabytes_is_413_through_the_real_handler() {
    let (stack, tenant, queue) = setup(false).await;
    let request = signed_request("text-message", &tenant, |b| {
        let pad = " ".repeat(3 * 1024 * 1024);
        format!("{b}{pad}")
    });
    let response = whatsapp_inbound::handle(&stack.inbound(&queue), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(body_json(&response)["error"]["code"], "body_too_large");
    let refused = stack
        .error_logs(&TenantId::unresolved(), "body_too_large")
        .await;
    assert!(refused.iter().all(|r| r.payload.is_none()));
    assert_eq!(queue.depth(&queue.url).await, 0);
}

#[tokio::test]
async fn a_duplicate_handled_by_two_workers_in_flight_at_once_changes_nothing() {
    let (stack, tenant, queue) = setup(true).await;
    let response = whatsapp_inbound::handle(
        &stack.inbound(&queue),
        signed_request("text-message", &tenant, |b| b),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let envelope = queue.peek_envelope().await;
    let wiring = stack.wiring();
    let repo = Arc::new(BothInFlight {
        inner: wiring.crm.clone(),
        barrier: tokio::sync::Barrier::new(2),
    });
    let (a, b) = (
        WhatsAppWorker::new(repo.clone(), wiring.crm.clone(), wiring.log.clone()),
        WhatsAppWorker::new(repo.clone(), wiring.crm.clone(), wiring.log.clone()),
    );
    let (ra, rb) = tokio::join!(a.handle(envelope.clone(), 1), b.handle(envelope.clone(), 1));
    assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
    let crm = stack.crm();
    let card = stack.sender_card(&tenant.id).await.unwrap();
    assert_eq!(
        crm.timeline(&tenant.id, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(crm.tasks(&tenant.id, &card.card_id).await.unwrap().len(), 1);
    let (from, to) = around_now();
    assert_eq!(
        crm.leads_by_source(
            &tenant.id,
            LeadSource::WhatsApp,
            from,
            to,
            PageRequest::first(10)
        )
        .await
        .unwrap()
        .items
        .len(),
        1
    );
    let results: Vec<LogResult> = logs_of(&stack, &tenant.id)
        .await
        .iter()
        .map(|r| r.result)
        .collect();
    assert!(results.contains(&LogResult::Duplicate), "{results:?}");
}

#[tokio::test]
async fn listings_follow_cursors_past_the_first_page() {
    let (stack, tenant, _queue) = setup(false).await;
    let log = stack.wiring().log;
    for i in 0..7 {
        log.write(
            onecrm_domain::log::LogEntry::new(
                tenant.id.clone(),
                Integration::WhatsApp,
                onecrm_domain::log::LogDirection::Inbound,
                "test.page",
                LogResult::Success,
                onecrm_domain::envelope::TraceId::new("trace-pages"),
            )
            .external_message(format!("record {i}")),
        )
        .await;
    }
    let logs = stack.logs();
    let first = logs
        .by_trace(&tenant.id, "trace-pages", PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let cursor = first.next.clone().expect("more pages");
    let all = collect_all(3, |page| logs.by_trace(&tenant.id, "trace-pages", page))
        .await
        .unwrap();
    assert_eq!(all.len(), 7, "nothing cut at a page boundary");
    // A cursor is bound to its partition: another tenant's query refuses it.
    let other = TenantId::parse("someone-else").unwrap();
    assert!(logs
        .by_trace(&other, "trace-pages", PageRequest::after(3, cursor))
        .await
        .is_err());
}

#[tokio::test]
async fn imports_are_idempotent_and_a_lead_card_without_details_still_takes_messages() {
    use onecrm_domain::party::{Card, CardKind};
    use onecrm_domain::phone::PhoneNumber;
    let (stack, tenant, queue) = setup(false).await;
    let crm = stack.crm();
    let phone = PhoneNumber::parse("+905331234567").unwrap();
    // An imported lead with its phone written twice and no lead details (older data).
    let mut card = Card::person_customer(
        "01-imported",
        "İthal Kayıt",
        vec![phone.clone(), phone],
        Utc::now(),
    );
    card.kind = CardKind::Lead;
    card.customer = None;
    assert_eq!(
        crm.create_card(&tenant.id, &card).await.unwrap(),
        NewLeadOutcome::Created
    );
    assert_eq!(
        crm.create_card(&tenant.id, &card).await.unwrap(),
        NewLeadOutcome::Duplicate,
        "run again: nothing changes"
    );
    let response = whatsapp_inbound::handle(
        &stack.inbound(&queue),
        signed_request("text-message", &tenant, |b| b),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let worker = stack.worker(&queue);
    let poll = queue.poll(&worker, None).await;
    assert_eq!(
        (poll.received, poll.failed),
        (1, 0),
        "no endless retries on a card without lead details"
    );
    assert_eq!(
        crm.timeline(&tenant.id, "01-imported", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}
