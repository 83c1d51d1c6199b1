//! End to end against the emulator: signed webhook -> whatsapp-inbound -> SQS -> whatsapp-worker
//! -> DynamoDB, asserting the stored lead, note, timeline, task, statuses and log records.

use std::sync::Arc;

use chrono::{Duration, Utc};
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_domain::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::page::PageRequest;
use onecrm_domain::party::{CardKind, IdentityKey, LeadSource};
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CrmRepository, LogReader};
use onecrm_domain::whatsapp::status::DeliveryStatus;
use onecrm_e2e::*;
use serde_json::json;

const SENDER: &str = "+905331234567";

fn sender() -> IdentityKey {
    IdentityKey::Phone(PhoneNumber::parse(SENDER).unwrap())
}

#[tokio::test]
async fn signed_text_message_becomes_a_lead_with_note_timeline_task_and_logs() {
    let (stack, tenant, queue) = setup(true).await;
    let inbound = stack.inbound(&queue);

    let response =
        whatsapp_inbound::handle(&inbound, signed_request("text-message", &tenant, |b| b))
            .await
            .unwrap();
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let trace = body_json(&response)["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(queue.drain(&stack.worker(&queue)).await, 1);

    let crm = stack.crm();
    let card = crm
        .find_card(&tenant.id, &sender())
        .await
        .unwrap()
        .expect("a lead for the new number");
    assert_eq!(card.kind, CardKind::Lead);
    let lead = crm.card(&tenant.id, &card.card_id).await.unwrap().unwrap();
    assert_eq!(lead.display_name, "Ayşe Yılmaz");
    assert_eq!(lead.phones[0].as_str(), SENDER);
    assert_eq!(lead.owner.as_deref(), Some("user-sales-1"));
    assert_eq!(lead.lead.as_ref().unwrap().source, LeadSource::WhatsApp);

    let notes = crm.notes(&tenant.id, &card.card_id).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].text, "Merhaba, fiyat alabilir miyim?");
    let timeline = crm.timeline(&tenant.id, &card.card_id, 10).await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(
        (timeline[0].kind.as_str(), timeline[0].trace_id.as_str()),
        ("text", trace.as_str())
    );
    let tasks = crm.tasks(&tenant.id, &card.card_id).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].owner, "user-sales-1");

    let (from, to) = around_now();
    let leads = crm
        .leads_by_source(
            &tenant.id,
            LeadSource::WhatsApp,
            from,
            to,
            PageRequest::first(100),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(
        leads.iter().map(|l| l.card_id.as_str()).collect::<Vec<_>>(),
        vec![card.card_id.as_str()]
    );

    // Both functions logged under the same trace id, and the payload is masked.
    let logs = stack
        .logs()
        .by_trace(&tenant.id, &trace, PageRequest::first(100))
        .await
        .unwrap()
        .items;
    let operations: Vec<&str> = logs.iter().map(|r| r.operation.as_str()).collect();
    assert!(
        operations.contains(&"webhook.delivery")
            && operations.contains(&"whatsapp.message.process"),
        "{operations:?}"
    );
    assert!(logs
        .iter()
        .all(|r| r.result == LogResult::Success && r.tenant_id == tenant.id));
    // The webhook's record carries the delivery (masked); the worker's success record beside
    // it does not repeat it.
    let webhook = logs
        .iter()
        .find(|r| r.operation == "webhook.delivery")
        .unwrap();
    assert!(webhook.payload.is_some());
    for record in logs.iter().filter(|r| r.payload.is_some()) {
        let payload = record.payload.as_ref().unwrap().to_string();
        assert!(
            !payload.contains("905331234567") && !payload.contains(tenant.app_secret.as_str()),
            "{payload}"
        );
    }
    let by_integration = stack
        .integration_logs(&tenant.id, Integration::WhatsApp)
        .await;
    assert_eq!(by_integration.len(), logs.len());
}

#[tokio::test]
async fn known_customer_gets_the_message_on_its_timeline() {
    let (stack, tenant, queue) = setup(false).await;
    let crm = stack.crm();
    let now = Utc::now();
    let customer = onecrm_domain::party::Card::person_customer(
        "cust-1",
        "Ayşe Yılmaz",
        vec![PhoneNumber::parse("0533 123 45 67").unwrap()],
        now,
    );
    crm.create_card(&tenant.id, &customer).await.unwrap();
    let response = whatsapp_inbound::handle(
        &stack.inbound(&queue),
        signed_request("image-message", &tenant, |b| b),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    queue.drain(&stack.worker(&queue)).await;
    assert_eq!(
        crm.find_card(&tenant.id, &sender())
            .await
            .unwrap()
            .unwrap()
            .card_id,
        "cust-1"
    );
    let timeline = crm.timeline(&tenant.id, "cust-1", 10).await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].kind, "image");
    assert!(timeline[0].attachment.as_ref().unwrap().media_id.len() > 3);
    assert!(crm
        .leads_by_source(
            &tenant.id,
            LeadSource::WhatsApp,
            now - Duration::hours(1),
            now + Duration::hours(1),
            PageRequest::first(100)
        )
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn duplicate_delivery_changes_nothing() {
    let (stack, tenant, queue) = setup(true).await;
    let inbound = stack.inbound(&queue);
    for _ in 0..2 {
        let response =
            whatsapp_inbound::handle(&inbound, signed_request("text-message", &tenant, |b| b))
                .await
                .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        queue.drain(&stack.worker(&queue)).await,
        2,
        "Meta delivered twice"
    );
    let crm = stack.crm();
    let card = crm.find_card(&tenant.id, &sender()).await.unwrap().unwrap();
    assert_eq!(
        crm.timeline(&tenant.id, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(crm.notes(&tenant.id, &card.card_id).await.unwrap().len(), 1);
    assert_eq!(crm.tasks(&tenant.id, &card.card_id).await.unwrap().len(), 1);
    let logs = stack
        .integration_logs(&tenant.id, Integration::WhatsApp)
        .await;
    assert_eq!(
        logs.iter()
            .filter(|r| r.result == LogResult::Duplicate)
            .count(),
        1
    );
}

/// Two different first messages from one number, processed at the same time: one lead.
#[tokio::test]
async fn concurrent_first_messages_from_one_number_make_one_lead() {
    let (stack, tenant, queue) = setup(false).await;
    let inbound = stack.inbound(&queue);
    for wamid in ["wamid.CONCURRENT1", "wamid.CONCURRENT2"] {
        let request = signed_request(
            "text-message",
            &tenant,
            edit_json(|v| {
                v["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!(wamid);
            }),
        );
        assert_eq!(
            whatsapp_inbound::handle(&inbound, request)
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let worker_a = stack.worker(&queue);
    let worker_b = stack.worker(&queue);
    let client = stack.sqs();
    let messages = client
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(messages.len(), 2);
    for m in &messages {
        queue.send_raw(m.body.as_deref().unwrap()).await;
        client
            .delete_message()
            .queue_url(&queue.url)
            .receipt_handle(m.receipt_handle.clone().unwrap())
            .send()
            .await
            .unwrap();
    }
    // Each worker takes one message (max 10 per receive, so split by hand via two polls racing).
    let _ = tokio::join!(
        queue.poll(&worker_a, Some(0)),
        queue.poll(&worker_b, Some(0))
    );
    queue.drain(&worker_a).await;
    let crm = stack.crm();
    let (from, to) = around_now();
    let leads = crm
        .leads_by_source(
            &tenant.id,
            LeadSource::WhatsApp,
            from,
            to,
            PageRequest::first(100),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(leads.len(), 1, "one lead for one number");
    assert_eq!(
        crm.timeline(&tenant.id, &leads[0].card_id, 10)
            .await
            .unwrap()
            .len(),
        2,
        "both messages on its timeline"
    );
}

#[tokio::test]
async fn late_delivered_never_overwrites_read_and_failed_keeps_metas_error() {
    let (stack, tenant, queue) = setup(false).await;
    let inbound = stack.inbound(&queue);
    let worker = stack.worker(&queue);
    let status = |status: &'static str| {
        signed_request(
            "status-read",
            &tenant,
            edit_json(move |v| {
                v["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = json!(status);
            }),
        )
    };
    assert_eq!(
        whatsapp_inbound::handle(&inbound, status("read"))
            .await
            .unwrap()
            .status(),
        200
    );
    queue.drain(&worker).await;
    assert_eq!(
        whatsapp_inbound::handle(&inbound, status("delivered"))
            .await
            .unwrap()
            .status(),
        200
    );
    queue.drain(&worker).await;
    let wamid = serde_json::from_str::<serde_json::Value>(
        fixture("whatsapp-inbound", "status-read")["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap()["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let message = stack
        .crm()
        .outbound_message(&tenant.id, &wamid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.status, DeliveryStatus::Read);
    assert!(
        message.delivered_at.is_none(),
        "the stale status changed nothing"
    );

    assert_eq!(
        whatsapp_inbound::handle(&inbound, signed_request("status-failed", &tenant, |b| b))
            .await
            .unwrap()
            .status(),
        200
    );
    queue.drain(&worker).await;
    let failures = stack.error_logs(&tenant.id, "131026").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].error_message.as_deref(),
        Some("Message undeliverable")
    );
    // Meta's code and title are on the stored message record, not only in the log.
    let failed = stack
        .crm()
        .outbound_message(
            &tenant.id,
            "wamid.HBgMOTA1MzMxMjM0NTY3FQIAERgSNDI1QTc3MTFCMDNFOTg0RDA1AA==",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(
        (failed.error_code, failed.error_title.as_deref()),
        (Some(131026), Some("Message undeliverable"))
    );
    assert!(failed.failed_at.is_some());
}

#[tokio::test]
async fn bad_signature_is_401_logged_and_queues_nothing() {
    let (stack, tenant, queue) = setup(false).await;
    let mut request = signed_request("text-message", &tenant, |b| b);
    request.headers_mut().insert(
        "x-hub-signature-256",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000"
            .parse()
            .unwrap(),
    );
    let response = whatsapp_inbound::handle(&stack.inbound(&queue), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(body_json(&response)["error"]["code"], "signature_invalid");
    assert_eq!(queue.depth(&queue.url).await, 0);
    assert_eq!(
        stack
            .error_logs(&tenant.id, "signature_invalid")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn only_a_body_that_is_not_json_is_refused_with_400() {
    let (stack, tenant, queue) = setup(false).await;
    let inbound = stack.inbound(&queue);
    let broken = signed_request("text-message", &tenant, |body| {
        body[..body.len() / 2].to_string()
    });
    let response = whatsapp_inbound::handle(&inbound, broken).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(body_json(&response)["error"]["code"], "invalid_json");
    // The field is where the reader stopped.
    assert!(body_json(&response)["error"]["field"]
        .as_str()
        .unwrap()
        .starts_with("entry[0]"));
    assert_eq!(queue.depth(&queue.url).await, 0);
}

#[tokio::test]
async fn sqs_down_answers_503_so_meta_retries() {
    let stack = stack().await;
    let tenant = stack.tenant(false).await;
    // The real SQS client, pointed at a port where nothing listens.
    let dead = aws_sdk_sqs::config::Builder::from(&stack.sdk)
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let queue = Arc::new(SqsEventQueue::new(
        aws_sdk_sqs::Client::from_conf(dead),
        "http://127.0.0.1:9/123456789012/gone",
    ));
    let wiring = stack.wiring();
    let inbound = whatsapp_inbound::App::new(&wiring, wiring.ingress_ports(queue).unwrap(), None);
    let response =
        whatsapp_inbound::handle(&inbound, signed_request("text-message", &tenant, |b| b))
            .await
            .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        stack.error_logs(&tenant.id, "enqueue_failed").await.len(),
        1
    );
}

#[tokio::test]
async fn poison_message_reaches_the_dlq_with_error_log_records() {
    let (stack, tenant, queue) = setup(false).await;
    let worker = stack.worker(&queue);
    let poison = Envelope {
        v: ENVELOPE_VERSION,
        tenant_id: tenant.id.clone(),
        integration: Integration::WhatsApp,
        kind: "whatsapp.message".into(),
        external_id: "wamid.POISON".into(),
        trace_id: TraceId::new("trace-poison"),
        received_at: Utc::now(),
        ordering_key: None,
        replay_of: None,
        payload: json!({"event": "message", "nonsense": true}),
    };
    queue.send_raw(&poison.to_json()).await;
    queue.send_raw("not an envelope").await;
    for _ in 0..(queue.max_receive_count + 3) {
        queue.poll(&worker, Some(0)).await;
    }
    assert_eq!(queue.depth(&queue.url).await, 0);
    assert_eq!(
        queue.depth(&queue.dlq_url).await,
        2,
        "both poison messages were dead-lettered"
    );
    let logs = stack
        .logs()
        .by_trace(&tenant.id, "trace-poison", PageRequest::first(100))
        .await
        .unwrap()
        .items;
    assert_eq!(
        logs.len() as u32,
        queue.max_receive_count,
        "one error record per delivery"
    );
    assert!(logs.iter().all(|r| r.result == LogResult::Error));
    assert!(logs
        .iter()
        .any(|r| r.error_code.as_deref() == Some("dead_lettered")));
}

#[tokio::test]
async fn handshake_answers_the_raw_challenge_for_the_tenants_token() {
    let (stack, tenant, queue) = setup(false).await;
    let inbound = stack.inbound(&queue);
    let mut event = fixture("whatsapp-inbound", "handshake");
    event["rawQueryString"] = json!(format!(
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={}",
        tenant.verify_token
    ));
    event["queryStringParameters"] = json!({"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": tenant.verify_token});
    let response = whatsapp_inbound::handle(
        &inbound,
        lambda_http::request::from_str(&event.to_string()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response), json!(1158201444));
    event["rawQueryString"] =
        json!("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong");
    event["queryStringParameters"] = json!({"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "wrong"});
    let response = whatsapp_inbound::handle(
        &inbound,
        lambda_http::request::from_str(&event.to_string()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn committed_worker_sample_event_is_processed() {
    let (stack, tenant, queue) = setup(true).await;
    let mut event = fixture("whatsapp-worker", "sqs-text-message");
    let body = event["Records"][0]["body"].as_str().unwrap().replace(
        "\"tenant_id\":\"demo\"",
        &format!("\"tenant_id\":\"{}\"", tenant.id),
    );
    event["Records"][0]["body"] = json!(body);
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event).unwrap();
    let response = whatsapp_worker::handle(
        &stack.worker(&queue),
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let card = stack
        .crm()
        .find_card(&tenant.id, &sender())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(card.display_name, "Ayşe Yılmaz");
    // Queued straight to the worker: no webhook record opened this trace, so the worker's
    // success record is listed by integration and time (errors are also found by trace id),
    // under the time the event arrived (the sample's `received_at`).
    let (from, to) = (Utc::now() - Duration::days(3650), Utc::now());
    let logs: Vec<_> = stack
        .logs()
        .by_integration(
            &tenant.id,
            Integration::WhatsApp,
            from,
            to,
            PageRequest::first(100),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|r| r.trace_id.as_str() == "0193b5a0-7c1e-7a2b-9f3d-1c2e3f4a5b6c")
        .collect();
    assert_eq!(logs.len(), 1);
}

/// The committed samples, exactly as committed: their signatures are the demo tenant's.
#[tokio::test]
async fn committed_samples_are_accepted_as_signed_and_processed() {
    let stack = stack().await;
    let demo = stack.demo_tenant().await;
    let queue = stack.queue().await;
    let inbound = stack.inbound(&queue);
    let expected = [
        ("text-message", 1),
        ("image-message", 1),
        ("interactive-reply", 1),
        ("status-read", 1),
        ("status-failed", 1),
        ("multi-event", 7),
    ];
    for (name, events) in expected {
        let response = whatsapp_inbound::handle(&inbound, raw_request(name))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}: {:?}", body_json(&response));
        assert_eq!(body_json(&response)["events"], events, "{name}");
    }
    let response = whatsapp_inbound::handle(&inbound, raw_request("bad-signature"))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let worker = stack.worker(&queue);
    let mut failed = 0;
    for _ in 0..10 {
        let poll = queue.poll(&worker, None).await;
        failed += poll.failed;
        if poll.received == 0 {
            break;
        }
    }
    assert_eq!(failed, 0);
    let card = stack
        .crm()
        .find_card(&demo.id, &sender())
        .await
        .unwrap()
        .unwrap();
    // text, image, interactive, and from multi-event: text, location, contacts, reaction, sticker, unsupported.
    assert_eq!(
        stack
            .crm()
            .timeline(&demo.id, &card.card_id, 50)
            .await
            .unwrap()
            .len(),
        9
    );
    let response = whatsapp_inbound::handle(&inbound, raw_request("handshake"))
        .await
        .unwrap();
    assert_eq!(body_json(&response), json!(1158201444));
}

/// Messages of one lead delivered out of order: both land, the last touch stays the newest.
#[tokio::test]
async fn a_leads_last_touch_only_moves_forward() {
    let (stack, tenant, queue) = setup(false).await;
    let inbound = stack.inbound(&queue);
    let worker = stack.worker(&queue);
    let message = |wamid: &'static str, timestamp: &'static str| {
        signed_request(
            "text-message",
            &tenant,
            edit_json(move |v| {
                v["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!(wamid);
                v["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(timestamp);
            }),
        )
    };
    for (wamid, timestamp) in [
        ("wamid.FIRST", "1795510000"),
        ("wamid.NEWEST", "1795519999"),
        ("wamid.LATE", "1795515000"),
    ] {
        assert_eq!(
            whatsapp_inbound::handle(&inbound, message(wamid, timestamp))
                .await
                .unwrap()
                .status(),
            200
        );
        queue.drain(&worker).await;
    }
    let crm = stack.crm();
    let card = crm.find_card(&tenant.id, &sender()).await.unwrap().unwrap();
    assert_eq!(
        crm.timeline(&tenant.id, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    let lead = crm
        .card(&tenant.id, &card.card_id)
        .await
        .unwrap()
        .unwrap()
        .lead
        .unwrap();
    assert_eq!(lead.first_touch.external_id.as_deref(), Some("wamid.FIRST"));
    assert_eq!(lead.last_touch.external_id.as_deref(), Some("wamid.NEWEST"));
}
