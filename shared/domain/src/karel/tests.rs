//! The Karel push with in-memory ports and a scripted Karel.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::PortError;
use crate::karel::opportunity::{OpportunityChange, Trigger};
use crate::karel::worker::*;
use crate::log::{Integration, IntegrationLog, LogResult};
use crate::money::Money;
use crate::party::Card;
use crate::ports::CrmRepository;
use crate::tenant::{
    IntegrationSettings, KarelCustomField, KarelFieldKind, KarelSettings, TenantConfig, TenantId,
};
use crate::testing::*;

/// Karel as a script: the next answer of each call, and every call made.
#[derive(Default)]
struct FakeKarel {
    calls: Mutex<Vec<(String, Value)>>,
    next_create: Mutex<Vec<Result<i64, KarelFailure>>>,
    next_update: Mutex<Vec<Result<(), KarelFailure>>>,
}

#[async_trait]
impl KarelApi for FakeKarel {
    async fn create(&self, _: &TenantId, body: &Value, _: &TraceId) -> Result<i64, KarelFailure> {
        self.calls
            .lock()
            .unwrap()
            .push(("create".into(), body.clone()));
        self.next_create.lock().unwrap().pop().unwrap_or(Ok(12345))
    }
    async fn custom_field_values(
        &self,
        _: &TenantId,
        _: i64,
        _: &TraceId,
    ) -> Result<Vec<(i64, String)>, KarelFailure> {
        Ok(vec![(100, "Proje Tipi".into())])
    }
    async fn update(
        &self,
        _: &TenantId,
        id: i64,
        body: &Value,
        _: &TraceId,
    ) -> Result<(), KarelFailure> {
        self.calls
            .lock()
            .unwrap()
            .push((format!("update {id}"), body.clone()));
        self.next_update.lock().unwrap().pop().unwrap_or(Ok(()))
    }
    async fn delete(
        &self,
        _: &TenantId,
        id: i64,
        collections: bool,
        _: &TraceId,
    ) -> Result<(), KarelFailure> {
        self.calls
            .lock()
            .unwrap()
            .push((format!("delete {id} {collections}"), Value::Null));
        Ok(())
    }
}

struct World {
    worker: KarelWorker,
    clock: Arc<FixedClock>,
    karel: Arc<FakeKarel>,
    logs: Arc<MemoryLogSink>,
    archive: Arc<MemoryArchive>,
    tenant: TenantId,
}

async fn world() -> World {
    let tenant = TenantId::parse("demo").unwrap();
    let tenants = Arc::new(MemoryTenants::default());
    let mut settings = KarelSettings {
        default_representative: Some(8224),
        currency_id: 1,
        ..KarelSettings::default()
    };
    settings.representatives.insert("u-ayse".into(), 8300);
    settings.stages.insert("teklif".into(), 5);
    settings.stages.insert("kazanildi".into(), 6);
    settings.custom_fields.insert(
        "proje_tipi".into(),
        KarelCustomField {
            id: 22,
            label: "Proje Tipi".into(),
            kind: KarelFieldKind::Option,
            options: [("yazilim".to_string(), 5)].into(),
        },
    );
    tenants.add(
        TenantConfig {
            tenant_id: tenant.clone(),
            name: "Demo".into(),
            default_owner: None,
            integrations: IntegrationSettings {
                karel: Some(settings),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        },
        &[],
        None,
    );
    let crm = Arc::new(MemoryCrm::default());
    let mut card = Card::person_customer("c-1", "Ahmet Yılmaz", vec![], chrono::Utc::now());
    card.external_ids.insert("karel".into(), "10148".into());
    crm.create_card(&tenant, &card).await.unwrap();
    let (logs, archive, karel) = (
        Arc::new(MemoryLogSink::default()),
        Arc::new(MemoryArchive::default()),
        Arc::new(FakeKarel::default()),
    );
    let clock = Arc::new(FixedClock::at("2026-11-24T12:00:30Z"));
    let log = IntegrationLog::new(
        logs.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
        90,
    );
    World {
        worker: KarelWorker {
            crm: crm.clone(),
            tenants,
            links: crm,
            api: karel.clone(),
            archive: archive.clone(),
            log,
            retention_days: 90,
        },
        karel,
        clock,
        logs,
        archive,
        tenant,
    }
}

fn change(version: i64) -> OpportunityChange {
    OpportunityChange {
        opportunity_id: "opp-1".into(),
        version,
        trigger: Trigger::CrmChange,
        deleted: false,
        card_id: "c-1".into(),
        owner: Some("u-ayse".into()),
        description: "Kasko yenileme".into(),
        price: Some(Money::new("50000.50".parse().unwrap(), "TRY")),
        stage: Some("teklif".into()),
        state: Some(1),
        start_date: Some("2026-11-24".parse().unwrap()),
        estimated_end_date: None,
        period: None,
        tags: vec![],
        custom_fields: [("proje_tipi".to_string(), "yazilim".to_string())].into(),
    }
}

fn envelope(w: &World, change: &OpportunityChange) -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        tenant_id: w.tenant.clone(),
        integration: Integration::Karel,
        kind: crate::karel::EVENT_KIND.into(),
        external_id: format!("{}@{}", change.opportunity_id, change.version),
        trace_id: TraceId::new("trace-k"),
        received_at: chrono::Utc::now(),
        ordering_key: Some(change.opportunity_id.clone()),
        replay_of: None,
        payload: serde_json::to_value(change).unwrap(),
    }
}

async fn push(w: &World, change: &OpportunityChange) {
    w.worker.handle(envelope(w, change), 1).await.unwrap();
}

fn calls(w: &World) -> Vec<(String, Value)> {
    w.karel.calls.lock().unwrap().clone()
}

#[tokio::test]
async fn create_then_update_keeps_the_value_ids_then_delete() {
    let w = world().await;
    push(&w, &change(1)).await;
    let (op, body) = calls(&w)[0].clone();
    assert_eq!(op, "create");
    assert_eq!(body["RefCustomerCardId"], 10148);
    assert_eq!(body["RefRepresentativeCardId"], 8300);
    assert_eq!(body["OpportunityPrice"], json!(50000.5));
    assert_eq!(body["RefPipelineStageId"], 5);
    assert_eq!(body["OpportunityStartDate"], "2026-11-24T00:00:00");
    assert_eq!(body["Tags"], "onecrm:opp-1");
    assert_eq!(
        body["CustomFields"],
        json!([{ "CustomFieldId": 22, "CustomFieldOptionId": 5 }])
    );
    let mut next = change(2);
    next.stage = Some("kazanildi".into());
    push(&w, &next).await;
    let (op, body) = calls(&w)[1].clone();
    assert_eq!(op, "update 12345");
    assert_eq!(body["RefPipelineStageId"], 6);
    assert_eq!(
        body["CustomFields"][0]["CustomFieldValueId"], 100,
        "Karel's value id sent back"
    );
    // An older change arriving late changes nothing.
    push(&w, &change(1)).await;
    assert_eq!(calls(&w).len(), 2);
    let mut removed = change(3);
    removed.deleted = true;
    push(&w, &removed).await;
    assert_eq!(
        calls(&w)[2].0,
        "delete 12345 false",
        "collections kept unless the tenant says"
    );
    let results: Vec<LogResult> = w.logs.records().iter().map(|r| r.result).collect();
    assert_eq!(
        results,
        [
            LogResult::Success,
            LogResult::Success,
            LogResult::Ignored,
            LogResult::Success
        ]
    );
}

#[tokio::test]
async fn data_locked_is_an_error_record_without_retry() {
    let w = world().await;
    push(&w, &change(1)).await;
    w.karel
        .next_update
        .lock()
        .unwrap()
        .push(Err(KarelFailure::DataLocked("Veri kilitli".into())));
    push(&w, &change(2)).await;
    let record = w.logs.records().pop().unwrap();
    assert_eq!(
        (record.result, record.error_code.as_deref()),
        (LogResult::Error, Some("karel_data_locked"))
    );
}

#[tokio::test]
async fn a_create_without_a_clear_answer_is_parked_and_never_posted_twice() {
    let w = world().await;
    w.karel
        .next_create
        .lock()
        .unwrap()
        .push(Err(KarelFailure::Port(PortError::OutcomeUnknown(
            "timed out".into(),
        ))));
    push(&w, &change(1)).await;
    // Right away, the create may still be running elsewhere: back to the queue, not parked.
    let error = w
        .worker
        .handle(envelope(&w, &change(2)), 1)
        .await
        .unwrap_err();
    assert!(error.retryable, "{error}");
    // Longer than any create can take: it had no answer; parked for an operator.
    w.clock.advance(chrono::Duration::minutes(2));
    push(&w, &change(1)).await;
    push(&w, &change(2)).await;
    assert_eq!(calls(&w).iter().filter(|(op, _)| op == "create").count(), 1);
    assert_eq!(
        w.archive.held().len(),
        2,
        "each change parked once for an operator (a redelivery keeps its own hold)"
    );
    let record = w.logs.records().pop().unwrap();
    assert_eq!(record.error_code.as_deref(), Some("karel_outcome_unknown"));
    assert!(record.error_message.unwrap().contains("onecrm:opp-1"));
}

#[tokio::test]
async fn a_certain_failure_releases_the_claim_and_unmapped_things_are_parked() {
    let w = world().await;
    w.karel
        .next_create
        .lock()
        .unwrap()
        .push(Err(KarelFailure::Port(PortError::Unavailable(
            "503".into(),
        ))));
    let error = w
        .worker
        .handle(envelope(&w, &change(1)), 1)
        .await
        .unwrap_err();
    assert!(error.retryable);
    push(&w, &change(1)).await;
    assert_eq!(
        calls(&w).iter().filter(|(op, _)| op == "create").count(),
        2,
        "retried after a certain failure"
    );
    let mut other = change(1);
    other.opportunity_id = "opp-2".into();
    other.stage = Some("bilinmeyen".into());
    push(&w, &other).await;
    let record = w.logs.records().pop().unwrap();
    assert_eq!(
        (record.result, record.error_code.as_deref()),
        (LogResult::Parked, Some("karel_mapping"))
    );
    assert!(record.error_message.unwrap().contains("bilinmeyen"));
    let mut unmapped = change(1);
    unmapped.opportunity_id = "opp-3".into();
    unmapped.card_id = "nobody".into();
    push(&w, &unmapped).await;
    assert_eq!(
        w.logs.records().pop().unwrap().error_code.as_deref(),
        Some("karel_customer_unmapped")
    );
}

#[test]
fn the_committed_samples_are_changes_the_worker_reads() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/karel-push");
    let mut read = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".message.json") {
            continue;
        }
        let envelope = Envelope::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(envelope.kind, crate::karel::EVENT_KIND);
        let change: OpportunityChange = serde_json::from_value(envelope.payload).unwrap();
        assert_eq!(
            envelope.external_id,
            format!("{}@{}", change.opportunity_id, change.version)
        );
        read += 1;
    }
    assert_eq!(read, 5);
}

#[tokio::test]
async fn a_removal_before_its_create_keeps_the_older_create_out_of_karel() {
    let w = world().await;
    let mut removed = change(2);
    removed.deleted = true;
    push(&w, &removed).await;
    push(&w, &change(1)).await;
    assert!(calls(&w).is_empty(), "never created: it was removed first");
}
