//! Use-case tests of Lead Ads with in-memory ports: Meta's webhook shape in, Graph's lead shape
//! from a fake source, stored cards, consents and log records out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::PortError;
use crate::ingress::{Hold, Parsed, Unit};
use crate::log::{Integration, IntegrationLog, LogResult};
use crate::meta_lead::lead::GraphLead;
use crate::meta_lead::webhook::{parse_unit, split, LeadgenEvent, EVENT_KIND};
use crate::meta_lead::worker::{LeadAdsSource, MetaLeadWorker};
use crate::party::{Card, CardKind, IdentityKey, LeadSource};
use crate::phone::PhoneNumber;
use crate::ports::CrmRepository;
use crate::tenant::{
    IntegrationSettings, MetaLeadAdsSettings, TenantConfig, TenantId, TenantRoute,
};
use crate::testing::*;

const PAGE: &str = "104523456789012";

#[derive(Default)]
struct FakeGraph {
    leads: Mutex<HashMap<String, Result<GraphLead, PortError>>>,
    calls: AtomicUsize,
}

impl FakeGraph {
    fn answer(&self, id: &str, answer: Result<serde_json::Value, PortError>) {
        let answer = answer.map(|v| serde_json::from_value(v).unwrap());
        self.leads.lock().unwrap().insert(id.into(), answer);
    }
}

#[async_trait]
impl LeadAdsSource for FakeGraph {
    async fn lead(
        &self,
        _tenant: &TenantId,
        leadgen_id: &str,
        _trace: &TraceId,
    ) -> Result<GraphLead, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.leads
            .lock()
            .unwrap()
            .get(leadgen_id)
            .cloned()
            .unwrap_or_else(|| Err(PortError::Rejected("Graph 100: does not exist".into())))
    }
}

struct World {
    tenant: TenantId,
    crm: Arc<MemoryCrm>,
    graph: Arc<FakeGraph>,
    archive: Arc<MemoryArchive>,
    logs: Arc<MemoryLogSink>,
    worker: MetaLeadWorker,
}

fn world() -> World {
    let tenant = TenantId::parse("demo").unwrap();
    let tenants = Arc::new(MemoryTenants::default());
    tenants.add(
        TenantConfig {
            tenant_id: tenant.clone(),
            name: "Demo".into(),
            default_owner: Some("user-1".into()),
            integrations: IntegrationSettings {
                meta_lead_ads: Some(MetaLeadAdsSettings {
                    page_ids: vec![PAGE.into()],
                    meta_app_id: "1234".into(),
                    field_mapping: [(
                        "kvkk_onay".to_string(),
                        crate::meta_lead::lead::LeadField::Consent,
                    )]
                    .into(),
                }),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        },
        &[TenantRoute::MetaPage(PAGE.into())],
        Some("1234"),
    );
    let (crm, graph, archive, logs) = (
        Arc::new(MemoryCrm::default()),
        Arc::new(FakeGraph::default()),
        Arc::new(MemoryArchive::default()),
        Arc::new(MemoryLogSink::default()),
    );
    let log = IntegrationLog::new(
        logs.clone(),
        Arc::new(FixedClock::at("2026-11-24T12:00:00Z")),
        Arc::new(SequentialIds::default()),
        90,
    );
    let worker = MetaLeadWorker::new(
        graph.clone(),
        crm.clone(),
        tenants,
        archive.clone(),
        log,
        90,
    );
    World {
        tenant,
        crm,
        graph,
        archive,
        logs,
        worker,
    }
}

fn envelope(leadgen_id: &str) -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        tenant_id: TenantId::parse("demo").unwrap(),
        integration: Integration::MetaLeadAds,
        kind: EVENT_KIND.into(),
        external_id: leadgen_id.into(),
        trace_id: TraceId::new(format!("trace-{leadgen_id}")),
        received_at: "2026-11-24T11:59:59Z".parse().unwrap(),
        ordering_key: None,
        replay_of: None,
        payload: serde_json::to_value(LeadgenEvent {
            leadgen_id: leadgen_id.into(),
            page_id: PAGE.into(),
            form_id: Some("9007199254740993".into()),
            ad_id: None,
            adgroup_id: None,
            created_time: None,
        })
        .unwrap(),
    }
}

fn graph_lead(id: &str, phone: &str, email: &str) -> serde_json::Value {
    json!({
        "id": id, "created_time": "2026-11-24T08:49:14+0000",
        "campaign_id": "120210000000000001", "campaign_name": "Kasım Kasko",
        "adset_name": "İstanbul 25-45", "ad_name": "Video 1", "form_id": "9007199254740993",
        "platform": "fb", "is_organic": false,
        "field_data": [
            {"name": "full_name", "values": ["AYŞE NUR YILMAZ"]},
            {"name": "email", "values": [email]},
            {"name": "phone_number", "values": [phone]},
            {"name": "ilgi_alani", "values": ["Kasko", "Trafik"]},
            {"name": "kvkk_onay", "values": ["Evet"]}
        ]
    })
}

fn phone_key(p: &str) -> IdentityKey {
    IdentityKey::Phone(PhoneNumber::parse(p).unwrap())
}

#[test]
fn ids_above_2_pow_53_stay_exact_and_other_fields_are_ignored() {
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":{PAGE},"time":1764000000,"changes":[
            {{"field":"leadgen","value":{{"leadgen_id":1234567890123456789,"page_id":{PAGE},"form_id":9007199254740993,"created_time":1764000000}}}},
            {{"field":"feed","value":{{"item":"post"}}}},
            {{"field":"leadgen","value":{{"page_id":"{PAGE}"}}}}]}}]}}"#
    );
    let units = split(body.as_bytes()).unwrap();
    assert_eq!(units.len(), 3);
    assert_eq!(units[0].route, TenantRoute::MetaPage(PAGE.into()));
    let parsed: Vec<Parsed> = units.iter().flat_map(parse_unit).collect();
    let Parsed::Event(event) = &parsed[0] else {
        panic!("{parsed:?}")
    };
    assert_eq!(event.external_id, "1234567890123456789");
    let lead: LeadgenEvent = serde_json::from_value(event.payload.clone()).unwrap();
    assert_eq!(lead.form_id.as_deref(), Some("9007199254740993"));
    assert_eq!(lead.created_time.unwrap().timestamp(), 1764000000);
    assert_eq!(parsed[1], Parsed::Ignored("field feed".into()));
    let Parsed::Unparsed { errors, .. } = &parsed[2] else {
        panic!("{parsed:?}")
    };
    assert_eq!(
        (errors[0].field.as_str(), errors[0].code.as_str()),
        ("entry[0].changes[2].value.leadgen_id", "missing")
    );
    assert!(split(br#"{"object":"whatsapp_business_account","entry":[]}"#).is_err());
    let unit = Unit {
        route: TenantRoute::MetaPage(PAGE.into()),
        path: "entry[0].changes[0]".into(),
        raw: r#"{"field":"leadgen","value":{"leadgen_id":{"x":1}}}"#.into(),
        context: Some(PAGE.into()),
    };
    let Parsed::Unparsed { errors, .. } = &parse_unit(&unit)[0] else {
        panic!()
    };
    assert_eq!(errors[0].field, "entry[0].changes[0].value.leadgen_id");
}

#[tokio::test]
async fn a_lead_becomes_a_meta_lead_with_fields_consent_and_campaign() {
    let w = world();
    w.graph.answer(
        "L1",
        Ok(graph_lead("L1", "+90 533 123 45 67", "Ayse@Ornek.com")),
    );
    w.worker.handle(envelope("L1"), 1).await.unwrap();
    let card = w
        .crm
        .find_cards(&w.tenant, &phone_key("05331234567"))
        .await
        .unwrap()
        .remove(0);
    let card: Card = w.crm.card(&w.tenant, &card.card_id).await.unwrap().unwrap();
    assert_eq!(card.kind, CardKind::Lead);
    assert_eq!(card.display_name, "Ayşe Nur Yılmaz");
    assert_eq!(card.emails, vec!["ayse@ornek.com"]);
    let lead = card.lead.as_ref().unwrap();
    assert_eq!(lead.source, LeadSource::MetaLeadAds);
    assert_eq!(lead.utm.campaign.as_deref(), Some("Kasım Kasko"));
    assert_eq!(lead.utm.source.as_deref(), Some("facebook"));
    assert_eq!(
        lead.campaign.as_ref().unwrap().form_id.as_deref(),
        Some("9007199254740993")
    );
    assert_eq!(card.profile.first_name.as_deref(), Some("Ayşe Nur"));
    let notes = w.crm.notes(&w.tenant, &card.card_id).await.unwrap();
    assert!(
        notes[0].text.contains("ilgi_alani: Kasko, Trafik"),
        "{}",
        notes[0].text
    );
    assert_eq!(w.crm.consents(&w.tenant, &card.card_id).len(), 3);
    let records = w.logs.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].result, LogResult::Success);
    assert!(records[0].follows);
}

#[tokio::test]
async fn the_same_lead_twice_changes_nothing_and_a_second_form_lands_on_the_same_card() {
    let w = world();
    w.graph
        .answer("L1", Ok(graph_lead("L1", "05331234567", "ayse@ornek.com")));
    w.graph.answer(
        "L2",
        Ok(graph_lead("L2", "+905331234567", "ayse@ornek.com")),
    );
    w.worker.handle(envelope("L1"), 1).await.unwrap();
    w.worker.handle(envelope("L1"), 2).await.unwrap();
    w.worker.handle(envelope("L2"), 1).await.unwrap();
    assert_eq!(
        w.crm.cards(&w.tenant).len(),
        1,
        "one card across both forms"
    );
    let card = w
        .crm
        .find_cards(&w.tenant, &phone_key("05331234567"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        w.crm
            .timeline(&w.tenant, &card.card_id, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    let results: Vec<LogResult> = w.logs.records().iter().map(|r| r.result).collect();
    assert_eq!(
        results,
        [LogResult::Success, LogResult::Duplicate, LogResult::Success]
    );
}

#[tokio::test]
async fn a_refused_token_parks_the_lead_pauses_the_tenant_and_logs_one_error() {
    let w = world();
    w.graph.answer(
        "L1",
        Err(PortError::Unauthorized(
            "Graph 190/460: Error validating access token".into(),
        )),
    );
    w.worker.handle(envelope("L1"), 1).await.unwrap();
    w.worker.handle(envelope("L2"), 1).await.unwrap();
    assert_eq!(w.graph.calls.load(Ordering::SeqCst), 1, "no retry storm");
    let held = w.archive.held();
    assert_eq!(held.len(), 2);
    assert!(held
        .iter()
        .all(|h| h.hold == Hold::Parked(w.tenant.clone())));
    assert_eq!(
        Envelope::from_json(&held[1].raw).unwrap().external_id,
        "L2",
        "the envelope is kept whole for the replay"
    );
    let records = w.logs.records();
    let errors: Vec<_> = records
        .iter()
        .filter(|r| r.result == LogResult::Error)
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].error_code.as_deref(), Some("graph_token_invalid"));
    assert_eq!(
        records
            .iter()
            .filter(|r| r.result == LogResult::Parked)
            .count(),
        1
    );
    assert!(w.crm.cards(&w.tenant).is_empty());
}

#[tokio::test]
async fn a_lead_graph_will_not_give_fails_for_good_and_a_throttled_one_is_retried() {
    let w = world();
    let gone = w.worker.handle(envelope("missing"), 1).await.unwrap_err();
    assert_eq!(
        (gone.code.as_str(), gone.retryable),
        ("lead_not_accessible", false)
    );
    w.graph.answer(
        "busy",
        Err(PortError::Unavailable(
            "Graph 4: Application request limit reached".into(),
        )),
    );
    let busy = w.worker.handle(envelope("busy"), 1).await.unwrap_err();
    assert!(busy.retryable);
    assert!(w.crm.cards(&w.tenant).is_empty());
}
