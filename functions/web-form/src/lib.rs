//! `web-form`: website forms. `OPTIONS` answers the browser's CORS preflight for registered
//! origins; `POST` checks the tenant's API key (`x-api-key`), the origin, the key's rate limit
//! and an optional `Idempotency-Key`, validates the fields (JSON or urlencoded) and answers 202
//! with the trace id once the submission is queued.

use std::sync::Arc;

use lambda_http::{Body, Error, Request, Response};
use onecrm_adapters::dynamodb::FormGuardStore;
use onecrm_adapters::lambda::{headers, http_response, request_id, source_ip};
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::http::HttpReply;
use onecrm_domain::ingress::InboundRequest;
use onecrm_domain::ports::{EventQueue, IdGenerator};
use onecrm_domain::web_form::intake::WebFormIntake;
use tracing::Instrument;

pub struct App {
    intake: WebFormIntake,
    ids: Arc<dyn IdGenerator>,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let queue = wiring.queue("WEB_FORM_QUEUE_URL")?;
        Self::new(&wiring, queue)
    }

    pub fn new(wiring: &Wiring, queue: Arc<dyn EventQueue>) -> Result<Self, Error> {
        Ok(Self {
            intake: WebFormIntake {
                tenants: wiring.crm.clone(),
                queue,
                archive: wiring.archive()?,
                guard: Arc::new(FormGuardStore::new(
                    wiring.dynamo.clone(),
                    &wiring.settings.crm_table,
                )),
                log: wiring.log.clone(),
                retention_days: wiring.settings.log_retention_days,
            },
            ids: wiring.ids.clone(),
        })
    }
}

pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let trace = TraceId::new(app.ids.new_id());
    let span =
        tracing::info_span!("web_form", trace_id = %trace, request_id = %request_id(&request));
    let reply = async {
        let headers = headers(&request);
        let inbound = InboundRequest {
            // lambda_http has already decoded an `isBase64Encoded` (urlencoded) body.
            body: request.body().as_ref(),
            headers: &headers,
            source_ip: source_ip(&request),
            path_token: None,
        };
        match request.method().as_str() {
            "OPTIONS" => app.intake.preflight(&inbound, &trace).await,
            "POST" => app.intake.submit(&inbound, &trace).await,
            other => HttpReply::method_not_allowed(other, "POST or OPTIONS", trace.as_str()),
        }
    }
    .instrument(span)
    .await;
    Ok(http_response(reply))
}
