//! Webhook handler work excluding network (budget: < 1 ms per delivery): routing, signature,
//! strict parse, envelopes and log records, over in-memory ports, on the committed samples.

use std::sync::Arc;
use std::time::Instant;

use onecrm_domain::envelope::TraceId;
use onecrm_domain::ingress::{InboundRequest, IngressPorts};
use onecrm_domain::log::IntegrationLog;
use onecrm_domain::meta::sign;
use onecrm_domain::tenant::{TenantConfig, TenantId, TenantRoute};
use onecrm_domain::testing::*;
use onecrm_domain::whatsapp::webhook::{WebhookSettings, WhatsAppWebhook, DEFAULT_MAX_BODY_BYTES};

const RUNS: usize = 2000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tenants = Arc::new(MemoryTenants::default());
    let tenant = TenantId::parse("demo").expect("tenant id");
    tenants.add(
        TenantConfig {
            tenant_id: tenant,
            name: "Demo".into(),
            default_owner: None,
            integrations: Default::default(),
            created_at: chrono::Utc::now(),
        },
        &[
            TenantRoute::WhatsAppPhoneNumberId("106540352242922".into()),
            TenantRoute::WhatsAppBusinessAccount("102290129340398".into()),
        ],
        Some("1000000000000001"),
    );
    let secrets = Arc::new(MemorySecrets::default());
    secrets.set(
        "onecrm/apps/meta/1000000000000001",
        r#"{"app_secret":"demo-app-secret"}"#,
    );
    let log = IntegrationLog::new(
        Arc::new(MemoryLogSink::default()),
        Arc::new(FixedClock::at("2026-11-24T12:00:00Z")),
        Arc::new(SequentialIds::default()),
        90,
    );
    let webhook = WhatsAppWebhook::new(
        IngressPorts {
            tenants,
            secrets,
            queue: Arc::new(MemoryQueue::default()),
            archive: Arc::new(MemoryArchive::default()),
            log,
        },
        WebhookSettings {
            tenant_secret_prefix: "onecrm/tenants/".into(),
            app_secret_prefix: "onecrm/apps/".into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            default_app_id: None,
            retention_days: 90,
        },
    );
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/whatsapp-inbound");
    for name in ["text-message", "multi-event"] {
        let body = std::fs::read(format!("{events}/{name}.body.json")).expect("sample body");
        let signature = sign(b"demo-app-secret", &body);
        let headers = [("x-hub-signature-256", signature.as_str())];
        let request = InboundRequest {
            body: &body,
            headers: &headers,
            source_ip: None,
        };
        let trace = TraceId::new("bench");
        let mut micros: Vec<f64> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let reply = runtime.block_on(webhook.deliver(&request, &trace));
                assert_eq!(reply.status, 200, "{}", reply.body);
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        micros.sort_by(f64::total_cmp);
        let (median, p99) = (micros[RUNS / 2], micros[RUNS * 99 / 100]);
        println!(
            "webhook handler work, {name:<13} ({} bytes): median {median:>7.1} µs, p99 {p99:>7.1} µs  {}",
            body.len(),
            if p99 < 1000.0 { "ok (< 1 ms)" } else { "OVER BUDGET (1 ms)" }
        );
    }
}
