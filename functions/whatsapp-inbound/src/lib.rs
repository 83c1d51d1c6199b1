//! `whatsapp-inbound`: the WhatsApp Cloud API webhook. GET answers Meta's handshake; POST runs
//! the shared ingress (size cap, routing, `X-Hub-Signature-256`, per-event parse, durable
//! enqueue and raw archive) and answers 200 only after.

use lambda_http::{Body, Error, Request, Response};
use onecrm_adapters::config;
use onecrm_adapters::lambda::{handshake_query, headers, http_response, request_id, source_ip};
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::http::HttpReply;
use onecrm_domain::ingress::{InboundRequest, IngressPorts};
use onecrm_domain::ports::IdGenerator;
use onecrm_domain::whatsapp::webhook::{WebhookSettings, WhatsAppWebhook, DEFAULT_MAX_BODY_BYTES};
use std::sync::Arc;
use tracing::Instrument;

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
            WebhookSettings {
                tenant_secret_prefix: wiring.settings.tenant_secret_prefix.clone(),
                app_secret_prefix: wiring.settings.app_secret_prefix.clone(),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                default_app_id,
                retention_days: wiring.settings.log_retention_days,
            },
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

/// Routes on the method only, so the same code serves API Gateway (`/whatsapp`) and
/// `cargo lambda watch` (`/lambda-url/whatsapp-inbound/...`).
pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let trace = TraceId::new(app.ids.new_id());
    let span = tracing::info_span!("whatsapp_inbound", trace_id = %trace, request_id = %request_id(&request));
    let reply = async {
        match request.method().as_str() {
            "GET" => {
                app.webhook
                    .handshake(&handshake_query(&request), &trace)
                    .await
            }
            "POST" => {
                let headers = headers(&request);
                let inbound = InboundRequest {
                    // lambda_http has already decoded an `isBase64Encoded` body: these are the
                    // bytes Meta signed.
                    body: request.body().as_ref(),
                    headers: &headers,
                    source_ip: source_ip(&request),
                };
                app.webhook.deliver(&inbound, &trace).await
            }
            other => HttpReply::error(
                405,
                "method_not_allowed",
                &format!("{other} is not supported; use GET or POST"),
                None,
                trace.as_str(),
            ),
        }
    }
    .instrument(span)
    .await;
    Ok(http_response(reply))
}
