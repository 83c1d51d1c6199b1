//! `insurup-policy-webhook`: InsurUp's webhook deliveries. `POST /insurup/<account>` runs the
//! shared ingress (size cap, routing by the account in the URL, the tenant's
//! `x-webhook-signature`, `$event` parse, durable enqueue with the delivery id as the key, raw
//! archive) and answers 200 only after; `insurup-worker` does the rest.

use std::sync::Arc;

use lambda_http::{Body, Error, Request, Response};
use onecrm_adapters::lambda::{headers, http_response, path_segment, request_id, source_ip};
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::http::HttpReply;
use onecrm_domain::ingress::{InboundRequest, IngressPorts};
use onecrm_domain::insurup::webhook::InsurUpWebhook;
use onecrm_domain::ports::IdGenerator;
use tracing::Instrument;

pub struct App {
    webhook: InsurUpWebhook,
    ids: Arc<dyn IdGenerator>,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let ports = wiring.ingress_ports(wiring.queue("INSURUP_QUEUE_URL")?)?;
        Ok(Self::new(&wiring, ports))
    }

    pub fn new(wiring: &Wiring, ports: IngressPorts) -> Self {
        Self {
            webhook: InsurUpWebhook::new(
                ports,
                &wiring.settings.tenant_secret_prefix,
                wiring.settings.log_retention_days,
            ),
            ids: wiring.ids.clone(),
        }
    }

    pub fn webhook(&self) -> &InsurUpWebhook {
        &self.webhook
    }
}

/// This function's own path names, never an account.
const OWN_SEGMENTS: &[&str] = &["insurup", "insurup-policy-webhook"];

pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let trace = TraceId::new(app.ids.new_id());
    let span = tracing::info_span!("insurup_webhook", trace_id = %trace, request_id = %request_id(&request));
    let reply = async {
        let headers = headers(&request);
        let account = path_segment(&request, "account", OWN_SEGMENTS);
        let inbound = InboundRequest {
            // The bytes InsurUp signed (lambda_http has decoded a base64 body).
            body: request.body().as_ref(),
            headers: &headers,
            source_ip: source_ip(&request),
            path_token: account.as_deref(),
        };
        match request.method().as_str() {
            "POST" => app.webhook.deliver(&inbound, &trace).await,
            other => HttpReply::method_not_allowed(other, "POST", trace.as_str()),
        }
    }
    .instrument(span)
    .await;
    Ok(http_response(reply))
}
