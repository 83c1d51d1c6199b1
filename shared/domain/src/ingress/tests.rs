//! The pipeline with a toy integration: one unit per line `route:event`, authenticated by a
//! Meta-style signature with the route's app.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::ingress::auth::MetaSignature;
use crate::log::Integration;
use crate::meta::sign;
use crate::testing::*;

struct Lines;

impl WebhookSpec for Lines {
    fn integration(&self) -> Integration {
        Integration::Pbx
    }
    fn max_body_bytes(&self) -> usize {
        1024
    }
    fn split(&self, request: &InboundRequest<'_>) -> Result<Vec<Unit>, FieldError> {
        let text = std::str::from_utf8(request.body)
            .map_err(|_| FieldError::new("body", "invalid_encoding", "not UTF-8"))?;
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                let (route, _) = line.split_once(':').ok_or_else(|| {
                    FieldError::new(format!("line[{i}]"), "invalid_value", "no route")
                })?;
                Ok(Unit {
                    route: TenantRoute::InsurUpAccount(route.into()),
                    path: format!("line[{i}]"),
                    raw: json!(line).to_string(),
                    context: None,
                })
            })
            .collect()
    }
    fn parse(&self, unit: &Unit) -> Vec<Parsed> {
        let line: String = serde_json::from_str(&unit.raw).unwrap();
        let (_, event) = line.split_once(':').unwrap();
        if event.starts_with('?') {
            return vec![Parsed::Unparsed {
                path: unit.path.clone(),
                raw: unit.raw.clone(),
                errors: vec![FieldError::new(
                    &unit.path,
                    "invalid_value",
                    "unknown event",
                )],
            }];
        }
        vec![Parsed::Event(IngressEvent {
            kind: "pbx.call".into(),
            external_id: event.into(),
            ordering_key: None,
            payload: json!({ "event": event }),
        })]
    }
}

struct Setup {
    ingress: Ingress,
    tenants: Arc<MemoryTenants>,
    secrets: Arc<MemorySecrets>,
    queue: Arc<MemoryQueue>,
    archive: Arc<MemoryArchive>,
    logs: Arc<MemoryLogSink>,
}

fn setup(default_app_id: Option<&str>) -> Setup {
    let tenants = Arc::new(MemoryTenants::default());
    let secrets = Arc::new(MemorySecrets::default());
    let queue = Arc::new(MemoryQueue::default());
    let archive = Arc::new(MemoryArchive::default());
    let logs = Arc::new(MemoryLogSink::default());
    for (tenant, app) in [("alpha", "app-a"), ("beta", "app-b")] {
        let config = crate::tenant::TenantConfig {
            tenant_id: TenantId::parse(tenant).unwrap(),
            name: tenant.into(),
            default_owner: None,
            integrations: Default::default(),
            created_at: chrono::Utc::now(),
        };
        tenants.add(
            config,
            &[TenantRoute::InsurUpAccount(tenant.into())],
            Some(app),
        );
        secrets.set(
            &format!("apps/meta/{app}"),
            &json!({ "app_secret": format!("{app}-secret") }).to_string(),
        );
    }
    let log = IntegrationLog::new(
        logs.clone(),
        Arc::new(FixedClock::at("2026-11-25T09:00:00Z")),
        Arc::new(SequentialIds::default()),
        30,
    );
    let ingress = Ingress::new(
        Arc::new(Lines),
        Arc::new(MetaSignature {
            app_secret_prefix: "apps/".into(),
        }),
        IngressPorts {
            tenants: tenants.clone(),
            secrets: secrets.clone(),
            queue: queue.clone(),
            archive: archive.clone(),
            log,
        },
        IngressSettings {
            default_app_id: default_app_id.map(str::to_string),
            retention_days: 30,
        },
    );
    Setup {
        ingress,
        tenants,
        secrets,
        queue,
        archive,
        logs,
    }
}

/// Which entry point a request goes to.
#[derive(Clone, Copy)]
enum Route {
    Deliver,
    Answer,
}

/// `body` signed with `app_secret` (`None`: unsigned), sent to the ingress as Meta would.
async fn send(s: &Setup, route: Route, body: &str, app_secret: Option<&str>) -> HttpReply {
    let signature = app_secret.map(|secret| sign(secret.as_bytes(), body.as_bytes()));
    let headers: Vec<(&str, &str)> = signature
        .iter()
        .map(|sig| ("x-hub-signature-256", sig.as_str()))
        .collect();
    let request = InboundRequest {
        body: body.as_bytes(),
        headers: &headers,
        source_ip: None,
        path_token: None,
    };
    let trace = TraceId::new("tr");
    match route {
        Route::Deliver => s.ingress.deliver(&request, &trace).await,
        Route::Answer => s.ingress.answer(&request, &trace, &Popup).await,
    }
}

async fn post(s: &Setup, body: &str, app_secret: &str) -> HttpReply {
    send(s, Route::Deliver, body, Some(app_secret)).await
}

#[tokio::test]
async fn a_delivery_for_no_known_route_is_held_when_the_deployments_app_signed_it() {
    let s = setup(Some("app-a"));
    let reply = post(&s, "gamma:e1\ngamma:e2", "app-a-secret").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(s.queue.sent().is_empty());
    assert_eq!(s.archive.held().len(), 2);
    // Signed by anyone else, it is refused and nothing is kept.
    let forged = post(&s, "gamma:e3", "guess").await;
    assert_eq!(forged.status, 401);
    assert_eq!(s.archive.held().len(), 2);
    let s = setup(None);
    assert_eq!(post(&s, "gamma:e1", "app-a-secret").await.status, 400);
}

#[tokio::test]
async fn held_events_go_only_to_a_tenant_whose_own_app_signed_them() {
    let s = setup(Some("app-a"));
    assert_eq!(post(&s, "gamma:e1", "app-a-secret").await.status, 200);
    let held = s.archive.held();
    assert_eq!(held[0].verified_by, ["apps/meta/app-a".to_string()]);
    let config = |id: &str| crate::tenant::TenantConfig {
        tenant_id: TenantId::parse(id).unwrap(),
        name: id.into(),
        default_owner: None,
        integrations: Default::default(),
        created_at: chrono::Utc::now(),
    };
    let gamma = TenantRoute::InsurUpAccount("gamma".into());
    // Registered by a tenant of another app: not authentic for it, dropped with an error record.
    s.tenants.add(
        config("other-app"),
        std::slice::from_ref(&gamma),
        Some("app-b"),
    );
    assert_eq!(s.ingress.release_unrouted(&gamma).await.unwrap(), 0);
    assert!(s.archive.held().is_empty() && s.queue.sent().is_empty());
    let dropped = s
        .logs
        .records()
        .into_iter()
        .find(|r| r.error_code.as_deref() == Some("unrouted_credential_mismatch"));
    assert!(dropped.is_some());
    // Signed by the app of the tenant that registers it: delivered.
    assert_eq!(post(&s, "delta:e2", "app-a-secret").await.status, 200);
    let delta = TenantRoute::InsurUpAccount("delta".into());
    s.tenants.add(
        config("same-app"),
        std::slice::from_ref(&delta),
        Some("app-a"),
    );
    assert_eq!(s.ingress.release_unrouted(&delta).await.unwrap(), 1);
    assert_eq!(s.queue.sent()[0].tenant_id.as_str(), "same-app");
    let released = s
        .archive
        .kept()
        .into_iter()
        .filter_map(|k| match k {
            Kept::Delivery(d) if d.released.is_some() => Some(d),
            _ => None,
        })
        .count();
    assert_eq!(released, 1, "archived beside the original, never over it");
}

#[tokio::test]
async fn every_tenant_of_a_delivery_must_pass_its_own_apps_check() {
    let s = setup(None);
    // Signed with alpha's app only: beta's part is not proven authentic.
    assert_eq!(
        post(&s, "alpha:e1\nbeta:e2", "app-a-secret").await.status,
        401
    );
    assert!(s.queue.sent().is_empty());
    let ok = post(&s, "alpha:e1\nalpha:e2", "app-a-secret").await;
    assert_eq!(ok.status, 200);
    assert_eq!(s.queue.sent().len(), 2);
    assert_eq!(
        s.tenants.lookups.load(Ordering::SeqCst),
        3,
        "two + one distinct routes"
    );
}

#[tokio::test]
async fn a_stream_of_bad_signatures_refreshes_the_secret_once_per_request_at_most() {
    let s = setup(None);
    for _ in 0..5 {
        assert_eq!(post(&s, "alpha:e1", "wrong").await.status, 401);
    }
    // MemorySecrets counts reads of the store: the first get, then one refresh per mismatch;
    // the adapter turns those refreshes into at most one read a minute (tested against the emulator).
    assert_eq!(s.secrets.refreshes.load(Ordering::SeqCst), 6);
    assert!(s
        .logs
        .records()
        .iter()
        .all(|r| r.payload.is_none() && r.http_status == Some(401)));
}

struct Popup;

#[async_trait::async_trait]
impl SyncHandler for Popup {
    async fn answer(&self, event: &Envelope) -> Result<(HttpReply, LogEntry), PortError> {
        let entry = LogEntry::new(
            event.tenant_id.clone(),
            event.integration,
            LogDirection::Inbound,
            "pbx.popup",
            LogResult::Success,
            event.trace_id.clone(),
        );
        Ok((
            HttpReply::json(200, &json!({ "card": event.external_id })),
            entry,
        ))
    }
}

#[tokio::test]
async fn the_synchronous_route_shares_admission_and_logs_what_the_handler_did() {
    let s = setup(None);
    let reply = send(&s, Route::Answer, "alpha:call-1", Some("app-a-secret")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, r#"{"card":"call-1"}"#)
    );
    assert!(s.queue.sent().is_empty(), "answered, not queued");
    let records = s.logs.records();
    assert_eq!(records.len(), 1, "one record: the handler's");
    assert_eq!(
        (records[0].operation.as_str(), records[0].http_status),
        ("pbx.popup", Some(200))
    );
    assert_eq!(
        send(&s, Route::Answer, "alpha:call-1", None).await.status,
        401
    );
    // An authenticated event that does not parse: kept whole, and the waiting sender is told
    // which field was wrong.
    assert_eq!(
        send(&s, Route::Answer, "alpha:?", Some("app-a-secret"))
            .await
            .status,
        400
    );
    assert_eq!(s.archive.held().len(), 1, "kept whole");
    // More than one event: the first is answered, the rest are queued; none is dropped.
    let reply = send(
        &s,
        Route::Answer,
        "alpha:call-2\nalpha:call-3",
        Some("app-a-secret"),
    )
    .await;
    assert_eq!(reply.body, r#"{"card":"call-2"}"#);
    let queued: Vec<String> = s
        .queue
        .sent()
        .iter()
        .map(|e| e.external_id.clone())
        .collect();
    assert_eq!(queued, ["call-3"]);
}
