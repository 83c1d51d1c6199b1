//! `whatsapp-inbound`: the WhatsApp Cloud API webhook. GET answers Meta's handshake; POST runs
//! the shared ingress (size cap, routing, `X-Hub-Signature-256`, per-event parse, durable
//! enqueue and raw archive) and answers 200 only after.

use lambda_http::{Body, Error, Request, Response};
use onecrm_adapters::config;
use onecrm_adapters::lambda::serve_meta_webhook;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::ingress::IngressPorts;
use onecrm_domain::ports::IdGenerator;
use onecrm_domain::whatsapp::webhook::{WhatsAppWebhook, DEFAULT_MAX_BODY_BYTES};
use std::sync::Arc;

pub struct App {
    webhook: WhatsAppWebhook,
    ids: Arc<dyn IdGenerator>,
}

impl App {
    /// Wires the real adapters from the environment `template.yaml` defines.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let ports = wiring.ingress_ports(wiring.queue("WHATSAPP_QUEUE_URL")?)?;
        Ok(Self::new(&wiring, ports, config::optional("META_APP_ID")))
    }

    pub fn new(wiring: &Wiring, ports: IngressPorts, default_app_id: Option<String>) -> Self {
        let webhook = WhatsAppWebhook::new(
            ports,
            wiring.meta_webhook_settings(DEFAULT_MAX_BODY_BYTES, default_app_id),
        );
        Self {
            webhook,
            ids: wiring.ids.clone(),
        }
    }

    pub fn webhook(&self) -> &WhatsAppWebhook {
        &self.webhook
    }
}

pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let trace = TraceId::new(app.ids.new_id());
    Ok(serve_meta_webhook(&app.webhook, trace, request).await)
}
