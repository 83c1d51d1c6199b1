//! `pbx-call`: IP PBX call events (seed 002). `POST /pbx` with the token in `X-PBX-Token` (or
//! `Authorization: Bearer`), or `POST /pbx/<token>` for PBXs that cannot set headers. Answers
//! at once with the pop-up: matched cards, the action taken, the quote or ticket opened.

use std::sync::Arc;

use lambda_http::{Body, Error, Request, Response};
use onecrm_adapters::lambda::{headers, http_response, path_segment, request_id, source_ip};
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::http::HttpReply;
use onecrm_domain::ingress::{InboundRequest, IngressPorts, NoQueue};
use onecrm_domain::pbx::desk::CallDesk;
use onecrm_domain::pbx::webhook::PbxCallWebhook;
use onecrm_domain::ports::IdGenerator;
use tracing::Instrument;

pub struct App {
    webhook: PbxCallWebhook,
    ids: Arc<dyn IdGenerator>,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        Self::new(&Wiring::from_env(sdk)?)
    }

    pub fn new(wiring: &Wiring) -> Result<Self, Error> {
        let ports = IngressPorts {
            tenants: wiring.crm.clone(),
            secrets: wiring.secrets(),
            // One event per request, answered at once: its durable record is the call event
            // the desk writes (conditionally) before answering, beside the raw archive.
            queue: Arc::new(NoQueue),
            archive: wiring.archive()?,
            log: wiring.log.clone(),
        };
        let desk = CallDesk {
            tenants: wiring.crm.clone(),
            crm: wiring.crm.clone(),
            calls: wiring.crm.clone(),
            clock: Arc::new(onecrm_adapters::system::SystemClock),
            ids: wiring.ids.clone(),
        };
        Ok(Self {
            webhook: PbxCallWebhook::new(ports, desk, wiring.settings.log_retention_days),
            ids: wiring.ids.clone(),
        })
    }
}

/// This function's own path names, never a token.
const OWN_SEGMENTS: &[&str] = &["pbx", "pbx-call"];

pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let trace = TraceId::new(app.ids.new_id());
    let span =
        tracing::info_span!("pbx_call", trace_id = %trace, request_id = %request_id(&request));
    let reply = async {
        let headers = headers(&request);
        let token = path_segment(&request, "token", OWN_SEGMENTS);
        let inbound = InboundRequest {
            body: request.body().as_ref(),
            headers: &headers,
            source_ip: source_ip(&request),
            path_token: token.as_deref(),
        };
        match request.method().as_str() {
            "POST" => app.webhook.handle(&inbound, &trace).await,
            other => HttpReply::method_not_allowed(other, "POST", trace.as_str()),
        }
    }
    .instrument(span)
    .await;
    Ok(http_response(reply))
}
