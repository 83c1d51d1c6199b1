//! `whatsapp-worker`: the SQS consumer of WhatsApp's two queues. Inbound events (messages and
//! statuses) become leads, timeline entries and message statuses; queued sends
//! (`whatsapp.send`, from crm-api or the CRM) go to Meta once, paced per phone number. Only
//! the failed messages are reported back (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::config;
use onecrm_adapters::lambda::serve_sqs_batch;
use onecrm_adapters::partner::graph::DEFAULT_GRAPH_VERSION;
use onecrm_adapters::partner::whatsapp::{GraphMessages, DEFAULT_MPS_PER_NUMBER};
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::log::{Integration, IntegrationLog};
use onecrm_domain::whatsapp::outbound::{MessageSender, OutboundWorker, SendRules};
use onecrm_domain::whatsapp::send::KIND_SEND;
use onecrm_domain::whatsapp::worker::WhatsAppWorker;

pub struct App {
    worker: WhatsAppWorker,
    outbound: OutboundWorker,
    log: IntegrationLog,
    /// The queue's `maxReceiveCount`: the delivery after which a failure means the DLQ.
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        Self::new(&wiring, wiring.max_receive_count()?)
    }

    /// Sends go to Graph (`PARTNER_URL_GRAPH` in local runs and tests).
    pub fn new(wiring: &Wiring, max_receive_count: u32) -> Result<Self, Error> {
        let per_second = match config::optional("WHATSAPP_MPS_PER_NUMBER") {
            Some(text) => text
                .parse()
                .map_err(|_| format!("WHATSAPP_MPS_PER_NUMBER={text:?} is not a whole number"))?,
            None => DEFAULT_MPS_PER_NUMBER,
        };
        let sender = GraphMessages::new(
            wiring.partner()?,
            wiring.secrets(),
            wiring.settings.tenant_secret_prefix.clone(),
            config::optional("GRAPH_VERSION").unwrap_or_else(|| DEFAULT_GRAPH_VERSION.into()),
            per_second,
        );
        Ok(Self::with_sender(
            wiring,
            Arc::new(sender),
            max_receive_count,
        ))
    }

    pub fn with_sender(
        wiring: &Wiring,
        sender: Arc<dyn MessageSender>,
        max_receive_count: u32,
    ) -> Self {
        Self {
            worker: WhatsAppWorker::new(wiring.crm.clone(), wiring.crm.clone(), wiring.log.clone()),
            outbound: OutboundWorker {
                rules: SendRules {
                    crm: wiring.crm.clone(),
                    tenants: wiring.crm.clone(),
                },
                sends: wiring.crm.clone(),
                sender,
                log: wiring.log.clone(),
            },
            log: wiring.log.clone(),
            max_receive_count,
        }
    }
}

pub async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(serve_sqs_batch(
        event.payload,
        Integration::WhatsApp,
        app.max_receive_count,
        &app.log,
        |envelope, attempt| async move {
            if envelope.kind == KIND_SEND {
                app.outbound.handle(envelope, attempt).await
            } else {
                app.worker.handle(envelope, attempt).await
            }
        },
    )
    .await)
}
