//! Webhook handler work excluding network (budget: < 1 ms per delivery): routing, signature,
//! strict parse, envelopes and log records, over in-memory ports, on the committed samples.

use std::sync::Arc;
use std::time::Instant;

use onecrm_domain::envelope::TraceId;
use onecrm_domain::ingress::{InboundRequest, IngressPorts};
use onecrm_domain::log::IntegrationLog;
use onecrm_domain::meta::sign;
use onecrm_domain::meta_lead::webhook::MetaLeadWebhook;
use onecrm_domain::party::Card;
use onecrm_domain::pbx::desk::CallDesk;
use onecrm_domain::pbx::webhook::PbxCallWebhook;
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::CrmRepository;
use onecrm_domain::tenant::{IntegrationSettings, PbxSettings, WebFormSettings};
use onecrm_domain::tenant::{TenantConfig, TenantId, TenantRoute};
use onecrm_domain::testing::*;
use onecrm_domain::web_form::intake::WebFormIntake;
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
            integrations: IntegrationSettings {
                web_form: Some(WebFormSettings {
                    allowed_origins: vec!["http://localhost:8080".into()],
                    // The bench measures the work, not the limit.
                    submissions_per_minute: u32::MAX,
                }),
                pbx: Some(PbxSettings {
                    vendor: "netgsm".into(),
                    allowed_sources: vec![],
                    agent_ids: [("911".to_string(), "user-demo-sales".to_string())].into(),
                    extensions: Default::default(),
                }),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        },
        &[
            TenantRoute::WhatsAppPhoneNumberId("106540352242922".into()),
            TenantRoute::WhatsAppBusinessAccount("102290129340398".into()),
            TenantRoute::MetaPage("104523456789012".into()),
            TenantRoute::web_form_key("wf_demo_key"),
            TenantRoute::pbx_token("pbx_demo_token"),
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
    let ports = || IngressPorts {
        tenants: tenants.clone(),
        secrets: secrets.clone(),
        queue: Arc::new(MemoryQueue::default()),
        archive: Arc::new(MemoryArchive::default()),
        log: log.clone(),
    };
    let settings = || WebhookSettings {
        tenant_secret_prefix: "onecrm/tenants/".into(),
        app_secret_prefix: "onecrm/apps/".into(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        default_app_id: None,
        retention_days: 90,
    };
    let whatsapp = WhatsAppWebhook::new(ports(), settings());
    let lead_ads = MetaLeadWebhook::new(ports(), settings());
    let forms = WebFormIntake {
        tenants: tenants.clone(),
        queue: Arc::new(MemoryQueue::default()),
        archive: Arc::new(MemoryArchive::default()),
        guard: Arc::new(MemoryGuard::default()),
        log: log.clone(),
        retention_days: 90,
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
    let trace = TraceId::new("bench");
    let signed = |body: &[u8]| sign(b"demo-app-secret", body);
    for (function, name) in [
        ("whatsapp-inbound", "text-message"),
        ("whatsapp-inbound", "multi-event"),
        ("meta-lead", "single-lead"),
        ("meta-lead", "batch-of-leads"),
    ] {
        let body =
            std::fs::read(format!("{root}/{function}/{name}.body.json")).expect("sample body");
        let signature = signed(&body);
        let headers = [("x-hub-signature-256", signature.as_str())];
        let request = InboundRequest {
            body: &body,
            headers: &headers,
            source_ip: None,
            path_token: None,
        };
        report(name, body.len(), || {
            let reply = match function {
                "meta-lead" => runtime.block_on(lead_ads.deliver(&request, &trace)),
                _ => runtime.block_on(whatsapp.deliver(&request, &trace)),
            };
            assert_eq!(reply.status, 200, "{}", reply.body);
        });
    }
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/web-form/form-json.json")).expect("form sample"),
    )
    .expect("form sample JSON");
    let body = sample["body"]
        .as_str()
        .expect("form body")
        .as_bytes()
        .to_vec();
    let headers = [
        ("content-type", "application/json"),
        ("x-api-key", "wf_demo_key"),
        ("origin", "http://localhost:8080"),
    ];
    let request = InboundRequest {
        body: &body,
        headers: &headers,
        source_ip: None,
        path_token: None,
    };
    report("form-json", body.len(), || {
        let reply = runtime.block_on(forms.submit(&request, &trace));
        assert_eq!(reply.status, 202, "{}", reply.body);
    });

    // PBX: the whole synchronous answer (token, parse, caller match over in-memory cards, the
    // write, the pop-up); each run is a new call, so no run takes the repeat's short path.
    let crm = Arc::new(MemoryCrm::default());
    let mehmet = Card::person_customer(
        "demo-customer-mehmet",
        "Mehmet Demir",
        vec![PhoneNumber::parse("0532 111 22 33").expect("phone")],
        chrono::Utc::now(),
    );
    runtime
        .block_on(crm.create_card(&TenantId::parse("demo").expect("tenant"), &mehmet))
        .expect("demo customer");
    let pbx = PbxCallWebhook::new(
        ports(),
        CallDesk {
            tenants: tenants.clone(),
            crm: crm.clone(),
            calls: crm.clone(),
            clock: Arc::new(FixedClock::at("2026-11-24T12:00:00Z")),
            ids: Arc::new(SequentialIds::default()),
        },
        90,
    );
    let headers = [("x-pbx-token", "pbx_demo_token")];
    for keypress in ["1", "3"] {
        let mut call = 0;
        let sample = |call: usize| {
            format!(
                r#"{{"callUniqueId": "B{keypress}-{call}", "extension": "911", "agentId": "911", "callerId": "05321112233", "keypress": "{keypress}"}}"#
            )
        };
        let bytes = sample(0).len();
        report(&format!("pbx keypress {keypress}"), bytes, || {
            call += 1;
            let body = sample(call);
            let request = InboundRequest {
                body: body.as_bytes(),
                headers: &headers,
                source_ip: Some("85.111.2.3"),
                path_token: None,
            };
            let reply = runtime.block_on(pbx.handle(&request, &trace));
            assert_eq!(reply.status, 200, "{}", reply.body);
        });
    }
}

fn report(name: &str, bytes: usize, mut run: impl FnMut()) {
    let mut micros: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    micros.sort_by(f64::total_cmp);
    let (median, p99) = (micros[RUNS / 2], micros[RUNS * 99 / 100]);
    println!(
        "webhook handler work, {name:<15} ({bytes:>4} bytes): median {median:>7.1} µs, p99 {p99:>7.1} µs  {}",
        if p99 < 1000.0 { "ok (< 1 ms)" } else { "OVER BUDGET (1 ms)" }
    );
}
