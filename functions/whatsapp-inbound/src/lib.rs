//! `whatsapp-inbound`: the WhatsApp Cloud API webhook. GET answers Meta's handshake; POST
//! verifies `X-Hub-Signature-256`, queues one envelope per event and answers 200 only after.

use std::sync::Arc;

use lambda_http::{Body, Error, Request, Response};
use onecrm_adapters::config::{self, Settings};
use onecrm_adapters::dynamodb::{CrmStore, LogStore};
use onecrm_adapters::lambda::{handshake_query, header, http_response, request_id};
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_adapters::system::{SystemClock, UuidV7Ids};
use onecrm_domain::envelope::TraceId;
use onecrm_domain::http::HttpReply;
use onecrm_domain::log::IntegrationLog;
use onecrm_domain::meta::SIGNATURE_HEADER;
use onecrm_domain::ports::{EventQueue, IdGenerator};
use onecrm_domain::whatsapp::webhook::{WebhookSettings, WhatsAppWebhook, DEFAULT_MAX_BODY_BYTES};
use tracing::Instrument;

pub struct App {
    webhook: WhatsAppWebhook,
    ids: Arc<dyn IdGenerator>,
}

impl App {
    /// Wires the real adapters from the environment `template.yaml` defines. Builds clients
    /// only: no network call happens before the first request.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let queue = SqsEventQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            config::required("WHATSAPP_QUEUE_URL")?,
        );
        Ok(Self::new(sdk, Settings::from_env()?, Arc::new(queue)))
    }

    pub fn new(
        sdk: &aws_config::SdkConfig,
        settings: Settings,
        queue: Arc<dyn EventQueue>,
    ) -> Self {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let crm = Arc::new(CrmStore::new(dynamo.clone(), &settings.crm_table));
        let ids: Arc<dyn IdGenerator> = Arc::new(UuidV7Ids);
        let log = IntegrationLog::new(
            Arc::new(LogStore::new(dynamo, &settings.log_table)),
            Arc::new(SystemClock),
            ids.clone(),
            settings.log_retention_days,
        );
        let webhook = WhatsAppWebhook::new(
            crm,
            Arc::new(SecretsManagerStore::new(
                aws_sdk_secretsmanager::Client::new(sdk),
            )),
            queue,
            log,
            WebhookSettings {
                secret_prefix: settings.tenant_secret_prefix,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            },
        );
        Self { webhook, ids }
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
                app.webhook
                    .deliver(
                        header(&request, SIGNATURE_HEADER),
                        request.body().as_ref(),
                        &trace,
                    )
                    .await
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
