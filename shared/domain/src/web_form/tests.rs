//! The web-form intake and worker with in-memory ports: a browser's posts in, answers, queued
//! envelopes, cards and log records out.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::envelope::TraceId;
use crate::http::HttpReply;
use crate::ingress::InboundRequest;
use crate::log::{IntegrationLog, LogResult};
use crate::party::{IdentityKey, LeadSource};
use crate::phone::PhoneNumber;
use crate::ports::CrmRepository;
use crate::tenant::{IntegrationSettings, TenantConfig, TenantId, TenantRoute, WebFormSettings};
use crate::testing::*;
use crate::web_form::intake::WebFormIntake;
use crate::web_form::worker::WebFormWorker;

const KEY: &str = "wf_live_demo_key";
const SITE: &str = "https://www.ornek.com.tr";

struct World {
    intake: WebFormIntake,
    queue: Arc<MemoryQueue>,
    logs: Arc<MemoryLogSink>,
    crm: Arc<MemoryCrm>,
    worker: WebFormWorker,
}

fn world(per_minute: u32) -> World {
    let tenants = Arc::new(MemoryTenants::default());
    tenants.add(
        TenantConfig {
            tenant_id: TenantId::parse("demo").unwrap(),
            name: "Demo".into(),
            default_owner: None,
            integrations: IntegrationSettings {
                web_form: Some(WebFormSettings {
                    allowed_origins: vec![format!("{SITE}/")],
                    submissions_per_minute: per_minute,
                }),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        },
        &[
            TenantRoute::web_form_key(KEY),
            TenantRoute::web_form_origin(SITE),
        ],
        None,
    );
    let (queue, logs, crm) = (
        Arc::new(MemoryQueue::default()),
        Arc::new(MemoryLogSink::default()),
        Arc::new(MemoryCrm::default()),
    );
    let log = IntegrationLog::new(
        logs.clone(),
        Arc::new(FixedClock::at("2026-11-24T12:00:30Z")),
        Arc::new(SequentialIds::default()),
        90,
    );
    World {
        intake: WebFormIntake {
            tenants: tenants.clone(),
            queue: queue.clone(),
            archive: Arc::new(MemoryArchive::default()),
            guard: Arc::new(MemoryGuard::default()),
            log: log.clone(),
            retention_days: 90,
        },
        worker: WebFormWorker::new(crm.clone(), tenants, log),
        queue,
        logs,
        crm,
    }
}

const FORM: &str = r#"{"name": "Ayşe Yılmaz", "phone": "0533 123 45 67", "email": "ayse@ornek.com", "message": "Kasko teklifi", "landing_page": "https://www.ornek.com.tr/kasko?utm_source=google&utm_medium=cpc"}"#;

async fn post(w: &World, body: &str, headers: &[(&str, &str)]) -> HttpReply {
    let request = InboundRequest {
        body: body.as_bytes(),
        headers,
        source_ip: Some("203.0.113.9"),
        path_token: None,
    };
    w.intake.submit(&request, &TraceId::new("trace-1")).await
}

fn header<'a>(reply: &'a HttpReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_form_from_the_tenants_site_is_queued_and_lands_as_a_web_form_lead() {
    let w = world(30);
    let reply = post(
        &w,
        FORM,
        &[
            ("x-api-key", KEY),
            ("origin", SITE),
            ("content-type", "application/json"),
        ],
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(header(&reply, "access-control-allow-origin"), Some(SITE));
    let sent = w.queue.sent();
    assert_eq!(sent.len(), 1);
    w.worker.handle(sent[0].clone(), 1).await.unwrap();
    let tenant = TenantId::parse("demo").unwrap();
    let phone = IdentityKey::Phone(PhoneNumber::parse("+905331234567").unwrap());
    let card_ref = w.crm.find_cards(&tenant, &phone).await.unwrap().remove(0);
    let card = w
        .crm
        .card(&tenant, &card_ref.card_id)
        .await
        .unwrap()
        .unwrap();
    let lead = card.lead.unwrap();
    assert_eq!(lead.source, LeadSource::WebForm);
    assert_eq!(lead.utm.medium.as_deref(), Some("cpc"));
    assert!(w.crm.notes(&tenant, &card.card_id).await.unwrap()[0]
        .text
        .contains("Kasko teklifi"));
    // Server-to-server (no Origin): accepted, no CORS headers.
    let reply = post(&w, FORM, &[("x-api-key", KEY)]).await;
    assert_eq!(
        (reply.status, header(&reply, "access-control-allow-origin")),
        (202, None)
    );
}

#[tokio::test]
async fn keys_and_origins_are_checked_before_anything_is_read() {
    let w = world(30);
    assert_eq!(post(&w, FORM, &[]).await.status, 401);
    let wrong = post(&w, FORM, &[("x-api-key", "wrong"), ("origin", SITE)]).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        header(&wrong, "access-control-allow-origin"),
        Some(SITE),
        "a registered site's page can read why"
    );
    let foreign = post(
        &w,
        FORM,
        &[("x-api-key", KEY), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
    let huge = "x".repeat(crate::web_form::MAX_BODY_BYTES + 1);
    assert_eq!(post(&w, &huge, &[("x-api-key", KEY)]).await.status, 413);
    assert!(w.queue.sent().is_empty());
    assert!(w
        .logs
        .records()
        .iter()
        .all(|r| r.result == LogResult::Error && r.payload.is_none()));
}

#[tokio::test]
async fn bad_fields_are_422_naming_each_and_bots_get_202_with_nothing_queued() {
    let w = world(30);
    let reply = post(
        &w,
        r#"{"name": "A", "phone": "12", "email": "x"}"#,
        &[("x-api-key", KEY)],
    )
    .await;
    assert_eq!(reply.status, 422);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "phone"]);
    assert_eq!(post(&w, "{", &[("x-api-key", KEY)]).await.status, 400);
    let bot = post(
        &w,
        r#"{"email": "a@b.com", "website": "http://spam.example"}"#,
        &[("x-api-key", KEY)],
    )
    .await;
    assert_eq!(bot.status, 202);
    assert!(w.queue.sent().is_empty());
    assert!(w
        .logs
        .records()
        .iter()
        .any(|r| r.result == LogResult::Ignored));
}

#[tokio::test]
async fn the_key_is_limited_per_minute_with_retry_after() {
    let w = world(2);
    for _ in 0..2 {
        assert_eq!(post(&w, FORM, &[("x-api-key", KEY)]).await.status, 202);
    }
    let limited = post(&w, FORM, &[("x-api-key", KEY)]).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        header(&limited, "retry-after"),
        Some("30"),
        "the clock is at :30"
    );
    assert_eq!(w.queue.sent().len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_answers_a_resubmission_with_the_first_answer() {
    let w = world(30);
    let headers = [("x-api-key", KEY), ("idempotency-key", "form-7f3a")];
    w.queue.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        post(&w, FORM, &headers).await.status,
        503,
        "not durable: not accepted"
    );
    w.queue.failing.store(false, Ordering::SeqCst);
    let first = post(&w, FORM, &headers).await;
    assert_eq!(first.status, 202, "the failed attempt gave its claim back");
    let second = w
        .intake
        .submit(
            &InboundRequest {
                body: FORM.as_bytes(),
                headers: &headers,
                source_ip: None,
                path_token: None,
            },
            &TraceId::new("trace-2"),
        )
        .await;
    assert_eq!(second.status, 202);
    let answer: serde_json::Value = serde_json::from_str(&second.body).unwrap();
    assert_eq!(
        (answer["trace_id"].as_str(), answer["replayed"].as_bool()),
        (Some("trace-1"), Some(true))
    );
    assert_eq!(w.queue.sent().len(), 1);
    let other = FORM.replace("Kasko teklifi", "Konut teklifi");
    let reused = post(&w, &other, &headers).await;
    assert_eq!(reused.status, 422, "the same key with another body");
    assert!(reused.body.contains("idempotency_key_reused"));
    assert_eq!(w.queue.sent().len(), 1);
}

#[tokio::test]
async fn a_preflight_is_answered_for_registered_origins_only() {
    let w = world(30);
    let ok = w
        .intake
        .preflight(
            &InboundRequest {
                body: b"",
                headers: &[("origin", "https://WWW.ornek.com.tr")],
                source_ip: None,
                path_token: None,
            },
            &TraceId::new("t"),
        )
        .await;
    assert_eq!(ok.status, 204);
    assert!(header(&ok, "access-control-allow-headers")
        .unwrap()
        .contains("x-api-key"));
    let refused = w
        .intake
        .preflight(
            &InboundRequest {
                body: b"",
                headers: &[("origin", "https://evil.example")],
                source_ip: None,
                path_token: None,
            },
            &TraceId::new("t"),
        )
        .await;
    assert_eq!(refused.status, 403);
}
