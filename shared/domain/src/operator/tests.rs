//! The operator API with in-memory ports: keys and scopes, parameters named when wrong, and a
//! tenant's key that never reaches another tenant's records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::api::{ApiRequest, OperatorApi};
use super::keys::{key_hash, OperatorKey, OperatorKeys, OperatorReads, Scope};
use super::replay::{DeadLetter, DeadLetters};
use crate::envelope::Envelope;
use crate::envelope::TraceId;
use crate::error::PortError;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::party::Card;
use crate::ports::{Clock, CrmRepository};
use crate::tenant::TenantId;
use crate::testing::*;

#[derive(Default)]
struct MemoryKeys(Mutex<HashMap<String, OperatorKey>>);

#[async_trait]
impl OperatorKeys for MemoryKeys {
    async fn key(&self, hash: &str) -> Result<Option<OperatorKey>, PortError> {
        Ok(self.0.lock().unwrap().get(hash).cloned())
    }
    async fn put_key(&self, hash: &str, key: &OperatorKey) -> Result<(), PortError> {
        self.0.lock().unwrap().insert(hash.into(), key.clone());
        Ok(())
    }
}

/// Reports and the archive: one archived delivery of acme's trace `t-acme`.
#[derive(Default)]
struct Reads;

#[async_trait]
impl OperatorReads for Reads {
    async fn logo_reports(
        &self,
        _: &TenantId,
        _: usize,
    ) -> Result<Vec<crate::logo::run::SyncRun>, PortError> {
        Ok(vec![])
    }
    async fn express_reports(
        &self,
        _: &TenantId,
        _: usize,
    ) -> Result<Vec<crate::express::run::PollRun>, PortError> {
        Ok(vec![])
    }
    async fn current_run(&self, _: &TenantId, _: Integration) -> Result<Option<Value>, PortError> {
        Ok(None)
    }
    async fn delivery(
        &self,
        tenant: &TenantId,
        trace: &str,
    ) -> Result<Vec<(String, String)>, PortError> {
        Ok(match (tenant.as_str(), trace) {
            ("acme", "t-acme") => vec![("entry[0]".into(), r#"{"from":"905321112233"}"#.into())],
            _ => vec![],
        })
    }
}

/// A dead-letter queue in memory: what was taken, given back and redriven.
#[derive(Default)]
pub(super) struct Letters {
    queue: Mutex<Vec<DeadLetter>>,
    redriven: Mutex<Vec<Envelope>>,
}

#[async_trait]
impl DeadLetters for Letters {
    async fn take(&self, _: Integration, max: usize) -> Result<Vec<DeadLetter>, PortError> {
        let mut queue = self.queue.lock().unwrap();
        let n = queue.len().min(max);
        Ok(queue.drain(..n).collect())
    }
    async fn give_back(&self, _: Integration, letters: &[DeadLetter]) -> Result<(), PortError> {
        self.queue.lock().unwrap().extend_from_slice(letters);
        Ok(())
    }
    async fn redrive(
        &self,
        _: Integration,
        _: &DeadLetter,
        envelope: &Envelope,
    ) -> Result<(), PortError> {
        self.redriven.lock().unwrap().push(envelope.clone());
        Ok(())
    }
}

fn letter(tenant: &str, trace: &str) -> DeadLetter {
    DeadLetter {
        message_id: format!("m-{trace}"),
        receipt: "r".into(),
        envelope: Some(Envelope {
            v: 1,
            tenant_id: TenantId::parse(tenant).unwrap(),
            integration: Integration::WhatsApp,
            kind: "whatsapp.message".into(),
            external_id: format!("wamid.{trace}"),
            trace_id: TraceId::new(trace.to_string()),
            received_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            ordering_key: None,
            replay_of: None,
            payload: Value::Null,
        }),
        sent_at: None,
    }
}

pub(super) struct World {
    pub letters: Arc<Letters>,
    pub api: OperatorApi,
    pub log: IntegrationLog,
    pub crm: Arc<MemoryCrm>,
    pub tenants: Arc<MemoryTenants>,
    pub sends: Arc<MemorySends>,
    pub queue: Arc<MemoryQueue>,
    pub clock: Arc<FixedClock>,
}

pub(super) async fn world() -> World {
    let clock = Arc::new(FixedClock::at("2026-11-26T12:00:00Z"));
    let sink = Arc::new(MemoryLogSink::default());
    let log = IntegrationLog::new(
        sink.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
        30,
    );
    let keys = Arc::new(MemoryKeys::default());
    for (key, tenant, scopes) in [
        (
            "key-a",
            "acme",
            vec![Scope::Logs, Scope::Cards, Scope::Leads, Scope::Calls],
        ),
        ("key-a-logs", "acme", vec![Scope::Logs]),
        ("key-a-send", "acme", vec![Scope::Send, Scope::Cards]),
        ("key-b", "beta", Scope::ALL.to_vec()),
    ] {
        let stored = OperatorKey {
            tenant_id: TenantId::parse(tenant).unwrap(),
            name: key.into(),
            scopes,
            created_at: clock.now(),
        };
        keys.put_key(&key_hash(key), &stored).await.unwrap();
    }
    let crm = Arc::new(MemoryCrm::default());
    let letters = Arc::new(Letters::default());
    let tenants = Arc::new(MemoryTenants::default());
    let sends = Arc::new(MemorySends::default());
    let queue = Arc::new(MemoryQueue::default());
    World {
        api: OperatorApi {
            keys,
            archive: Arc::new(MemoryArchive::default()),
            logs: sink,
            crm: crm.clone(),
            calls: crm.clone(),
            reads: Arc::new(Reads),
            dead_letters: letters.clone(),
            send: super::whatsapp::SendPorts {
                tenants: tenants.clone(),
                sends: sends.clone(),
                queue: Some(queue.clone()),
            },
            log: log.clone(),
        },
        letters,
        log,
        crm,
        tenants,
        sends,
        queue,
        clock,
    }
}

async fn get(w: &World, key: Option<&str>, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let query: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let trace = TraceId::new("req-1".to_string());
    let reply = w
        .api
        .handle(ApiRequest {
            method: "GET",
            path,
            query: &query,
            api_key: key,
            trace: &trace,
            body: "",
        })
        .await;
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

async fn record(w: &World, tenant: &str, trace: &str, result: LogResult) {
    let entry = LogEntry::new(
        TenantId::parse(tenant).unwrap(),
        Integration::WhatsApp,
        LogDirection::Inbound,
        "whatsapp.message",
        result,
        TraceId::new(trace.to_string()),
    );
    w.log.write(entry).await;
}

#[tokio::test]
async fn keys_and_scopes_are_checked_before_anything_is_read() {
    let w = world().await;
    let (status, body) = get(&w, None, "/v1/logs", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_api_key"))
    );
    let (status, body) = get(&w, Some("nope"), "/v1/logs", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, body) = get(&w, Some("key-a-logs"), "/v1/cards/c1", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("missing_scope"))
    );
    let (status, _) = get(&w, Some("key-a"), "/v1/nothing", &[]).await;
    assert_eq!(status, 404);
    let query = HashMap::new();
    let trace = TraceId::new("r".to_string());
    let post = ApiRequest {
        method: "POST",
        path: "/v1/logs",
        query: &query,
        api_key: Some("key-a"),
        trace: &trace,
        body: "",
    };
    assert_eq!(w.api.handle(post).await.status, 405);
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let w = world().await;
    for (query, field) in [
        (vec![], "integration"),
        (vec![("integration", "fax")], "integration"),
        (vec![("integration", "whatsapp"), ("limit", "0")], "limit"),
        (vec![("integration", "whatsapp"), ("from", "dün")], "from"),
        (
            vec![("integration", "whatsapp"), ("result", "maybe")],
            "result",
        ),
    ] {
        let (status, body) = get(&w, Some("key-a"), "/v1/logs", &query).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(field)),
            "{query:?}"
        );
    }
    let (status, body) = get(&w, Some("key-a"), "/v1/leads", &[("source", "fax")]).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("source"))
    );
}

#[tokio::test]
async fn a_tenants_key_reads_its_own_records_only() {
    let w = world().await;
    record(&w, "acme", "t-acme", LogResult::Success).await;
    record(&w, "acme", "t-acme", LogResult::Error).await;
    record(&w, "beta", "t-beta", LogResult::Success).await;
    let (status, body) = get(
        &w,
        Some("key-a"),
        "/v1/logs",
        &[("integration", "whatsapp")],
    )
    .await;
    assert_eq!((status, body["items"].as_array().unwrap().len()), (200, 2));
    let (_, body) = get(
        &w,
        Some("key-a"),
        "/v1/logs",
        &[("integration", "whatsapp"), ("result", "error")],
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, body) = get(&w, Some("key-a"), "/v1/traces/t-acme", &[]).await;
    assert_eq!(
        (status, body["records"].as_array().unwrap().len()),
        (200, 2)
    );
    // Another tenant's trace, card and records are not found from this key.
    assert_eq!(
        get(&w, Some("key-a"), "/v1/traces/t-beta", &[]).await.0,
        404
    );
    let (_, body) = get(&w, Some("key-a"), "/v1/logs", &[("trace_id", "t-beta")]).await;
    assert!(body["items"].as_array().unwrap().is_empty());
    let beta = TenantId::parse("beta").unwrap();
    let card = Card::person_customer("c-beta", "Ali Kaya", vec![], w.log.clock().now());
    w.crm.create_card(&beta, &card).await.unwrap();
    assert_eq!(get(&w, Some("key-a"), "/v1/cards/c-beta", &[]).await.0, 404);
    let (status, body) = get(&w, Some("key-b"), "/v1/cards/c-beta", &[]).await;
    assert_eq!(
        (status, body["card"]["display_name"].as_str()),
        (200, Some("Ali Kaya"))
    );
    let (status, body) = get(&w, Some("key-a"), "/v1/call-queue", &[]).await;
    assert_eq!((status, body["items"].as_array().unwrap().len()), (200, 0));
    let (status, _) = get(&w, Some("key-a"), "/v1/leads", &[("source", "whatsapp")]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn payloads_need_their_scope_and_every_read_is_logged() {
    let w = world().await;
    let (status, body) = get(&w, Some("key-a"), "/v1/payloads/t-acme", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("missing_scope"))
    );
    let (status, body) = get(&w, Some("key-b"), "/v1/payloads/t-acme", &[]).await;
    assert_eq!(status, 404, "another tenant's delivery: {body}");
    let admin = OperatorKey {
        tenant_id: TenantId::parse("acme").unwrap(),
        name: "ops".into(),
        scopes: vec![Scope::Logs, Scope::Payloads],
        created_at: w.log.clock().now(),
    };
    w.api
        .keys
        .put_key(&key_hash("key-ops"), &admin)
        .await
        .unwrap();
    let (status, body) = get(&w, Some("key-ops"), "/v1/payloads/t-acme", &[]).await;
    assert_eq!(
        (status, body["units"][0]["body"]["from"].as_str()),
        (200, Some("905321112233"))
    );
    let (_, body) = get(
        &w,
        Some("key-ops"),
        "/v1/logs",
        &[("integration", "crm_api")],
    )
    .await;
    let reads = body["items"].as_array().unwrap();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0]["operation"].as_str(), Some("crm_api.payload.read"));
    let (status, body) = get(&w, Some("key-a"), "/v1/express/status", &[]).await;
    assert_eq!((status, body["needs_action"].is_null()), (200, true));
    assert_eq!(get(&w, Some("key-a"), "/v1/logo/report", &[]).await.0, 200);
}

async fn post(w: &World, key: &str, body: &str) -> (u16, Value) {
    let query = HashMap::new();
    let trace = TraceId::new("req-2".to_string());
    let reply = w
        .api
        .handle(ApiRequest {
            method: "POST",
            path: "/v1/replay",
            query: &query,
            api_key: Some(key),
            trace: &trace,
            body,
        })
        .await;
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_for_their_own_tenant_only() {
    let w = world().await;
    w.letters.queue.lock().unwrap().extend([
        letter("acme", "t1"),
        letter("beta", "t2"),
        letter("acme", "t3"),
    ]);
    // key-a lacks the replay scope; key-b (beta) has every scope.
    let (status, _) = get(
        &w,
        Some("key-a"),
        "/v1/dead-letters",
        &[("integration", "whatsapp")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = get(
        &w,
        Some("key-b"),
        "/v1/dead-letters",
        &[("integration", "whatsapp")],
    )
    .await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().unwrap();
    assert_eq!(
        (items.len(), items[0]["trace_id"].as_str()),
        (1, Some("t2"))
    );
    assert_eq!(
        w.letters.queue.lock().unwrap().len(),
        3,
        "listing gives every letter back"
    );
    // beta cannot replay acme's event; it can replay its own, once.
    let (_, body) = post(&w, "key-b", r#"{"integration":"whatsapp","trace_id":"t1"}"#).await;
    assert_eq!(body["replayed"], 0);
    let (status, body) = post(&w, "key-b", r#"{"integration":"whatsapp","trace_id":"t2"}"#).await;
    assert_eq!((status, body["replayed"].as_u64()), (200, Some(1)));
    let redriven = w.letters.redriven.lock().unwrap().clone();
    assert_eq!(redriven[0].replay_of.as_deref(), Some("m-t2"));
    assert_eq!(
        redriven[0].trace_id.as_str(),
        "t2",
        "the event keeps its trace"
    );
    assert_eq!(w.letters.queue.lock().unwrap().len(), 2);
    let (status, body) = post(&w, "key-b", r#"{"integration":"whatsapp"}"#).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("trace_id"))
    );
    let (status, _) = post(&w, "key-b", "not json").await;
    assert_eq!(status, 400);
    let (status, body) = get(&w, Some("key-b"), "/v1/logs", &[("trace_id", "t2")]).await;
    assert_eq!(
        (status, body["items"][0]["operation"].as_str()),
        (200, Some("crm_api.replay"))
    );
}

#[tokio::test]
async fn health_counts_a_days_records_errors_and_dead_letters_per_integration() {
    let w = world().await;
    record(&w, "acme", "h1", LogResult::Success).await;
    record(&w, "acme", "h2", LogResult::Error).await;
    record(&w, "acme", "h3", LogResult::Error).await;
    record(&w, "beta", "h4", LogResult::Error).await;
    w.letters
        .queue
        .lock()
        .unwrap()
        .extend([letter("acme", "d1"), letter("beta", "d2")]);
    let (status, body) = get(&w, Some("key-a"), "/v1/health", &[]).await;
    assert_eq!(status, 200, "{body}");
    let items = body["integrations"].as_array().unwrap();
    let whatsapp = items
        .iter()
        .find(|i| i["integration"] == "whatsapp")
        .unwrap();
    assert_eq!(
        (
            whatsapp["records_24h"].as_u64(),
            whatsapp["errors_24h"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(whatsapp["dead_letters"].as_u64(), Some(1), "only acme's");
    assert!(whatsapp["last_success"].is_string());
    assert_eq!(w.letters.queue.lock().unwrap().len(), 2, "given back");
}

#[tokio::test]
async fn health_tells_a_partners_token_as_the_partner_last_did() {
    let w = world().await;
    let call = |result, error: Option<&str>, at: &str| {
        let mut entry = LogEntry::new(
            TenantId::parse("acme").unwrap(),
            Integration::MetaLeadAds,
            LogDirection::Outbound,
            "graph.lead.get",
            result,
            TraceId::new(format!("tok-{at}")),
        )
        .starts_trace(at.parse().unwrap());
        if let Some(code) = error {
            entry = entry.error(code, "unauthorized: Graph 190: Session has expired");
        }
        entry
    };
    w.clock.advance(chrono::Duration::minutes(1));
    w.log
        .write(call(LogResult::Success, None, "2026-11-26T09:00:00Z"))
        .await;
    // A throttled call says nothing about the token; a refused one does.
    w.clock.advance(chrono::Duration::minutes(1));
    w.log
        .write(call(
            LogResult::Error,
            Some("dependency_unavailable"),
            "2026-11-26T10:00:00Z",
        ))
        .await;
    w.clock.advance(chrono::Duration::minutes(1));
    w.log
        .write(call(
            LogResult::Error,
            Some("dependency_unauthorized"),
            "2026-11-26T11:00:00Z",
        ))
        .await;
    let (_, body) = get(&w, Some("key-a"), "/v1/health", &[]).await;
    let lead_ads = body["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["integration"] == "meta_lead_ads")
        .unwrap()
        .clone();
    assert_eq!(lead_ads["token"]["valid"], false, "{lead_ads}");
    assert_eq!(lead_ads["token"]["trace_id"], "tok-2026-11-26T11:00:00Z");
    w.clock.advance(chrono::Duration::minutes(1));
    w.log
        .write(call(LogResult::Success, None, "2026-11-26T11:30:00Z"))
        .await;
    let (_, body) = get(&w, Some("key-a"), "/v1/health", &[]).await;
    let lead_ads = &body["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["integration"] == "meta_lead_ads")
        .unwrap()["token"];
    assert_eq!(lead_ads["valid"], true);
}

#[tokio::test]
async fn attribution_counts_the_keys_tenants_leads_in_the_range() {
    let w = world().await;
    let now = w.log.clock().now();
    for (tenant, id) in [("acme", "l-a1"), ("acme", "l-a2"), ("beta", "l-b1")] {
        let card = Card::person_customer(id, "Aday", vec![], now);
        let touch = crate::party::Touch {
            channel: crate::timeline::Channel::WebForm,
            at: now,
            external_id: None,
            referral: None,
            utm: None,
        };
        let lead = Card {
            kind: crate::party::CardKind::Lead,
            lead: Some(crate::party::LeadDetails {
                source: crate::party::LeadSource::WebForm,
                status: crate::party::LeadStatus::New,
                utm: Default::default(),
                campaign: None,
                first_touch: touch.clone(),
                last_touch: touch,
            }),
            ..card
        };
        w.crm
            .create_card(&TenantId::parse(tenant).unwrap(), &lead)
            .await
            .unwrap();
    }
    let (status, body) = get(&w, Some("key-a"), "/v1/reports/attribution", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"]["leads"], 2, "only acme's: {body}");
    assert_eq!(body["by_source"]["web_form"]["leads"], 2);
    let (status, body) = get(
        &w,
        Some("key-a"),
        "/v1/reports/attribution",
        &[("from", "2026-11-27"), ("to", "2026-11-26")],
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("from"))
    );
    assert_eq!(
        get(&w, Some("key-a-logs"), "/v1/reports/attribution", &[])
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn lead_lists_mask_how_to_reach_people_and_filter_by_status_and_owner() {
    let w = world().await;
    let now = w.log.clock().now();
    let touch = crate::party::Touch {
        channel: crate::timeline::Channel::WebForm,
        at: now,
        external_id: None,
        referral: None,
        utm: None,
    };
    let phone = crate::phone::PhoneNumber::parse("0533 412 55 66").unwrap();
    let lead = Card {
        kind: crate::party::CardKind::Lead,
        emails: vec!["ayse.yilmaz@ornek.com".into()],
        owner: Some("user-7".into()),
        lead: Some(crate::party::LeadDetails {
            source: crate::party::LeadSource::WebForm,
            status: crate::party::LeadStatus::New,
            utm: Default::default(),
            campaign: None,
            first_touch: touch.clone(),
            last_touch: touch,
        }),
        ..Card::person_customer("l-mask", "Ayşe Yılmaz", vec![phone], now)
    };
    let acme = TenantId::parse("acme").unwrap();
    w.crm.create_card(&acme, &lead).await.unwrap();
    let (status, body) = get(&w, Some("key-a"), "/v1/leads", &[("source", "web_form")]).await;
    assert_eq!(status, 200, "{body}");
    let shown = &body["items"][0];
    assert_eq!(shown["display_name"], "Ayşe Yılmaz");
    let text = shown.to_string();
    assert!(!text.contains("5334125566"), "{text}");
    assert!(!text.contains("ayse.yilmaz@ornek.com"), "{text}");
    let count = |query: &'static [(&'static str, &'static str)]| {
        let w = &w;
        async move {
            get(w, Some("key-a"), "/v1/leads", query).await.1["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(
        count(&[
            ("source", "web_form"),
            ("status", "new"),
            ("owner", "user-7")
        ])
        .await,
        1
    );
    assert_eq!(
        count(&[("source", "web_form"), ("status", "converted")]).await,
        0
    );
    assert_eq!(
        count(&[("source", "web_form"), ("owner", "user-8")]).await,
        0
    );
}
