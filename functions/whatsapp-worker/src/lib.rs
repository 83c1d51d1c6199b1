//! `whatsapp-worker`: the SQS consumer that applies queued WhatsApp events to the CRM and
//! reports only the failed messages back (`ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::lambda::serve_sqs_batch;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::log::{Integration, IntegrationLog};
use onecrm_domain::whatsapp::worker::WhatsAppWorker;

pub struct App {
    worker: WhatsAppWorker,
    log: IntegrationLog,
    /// The queue's `maxReceiveCount`: the delivery after which a failure means the DLQ.
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        Ok(Self::new(&wiring, wiring.max_receive_count()?))
    }

    pub fn new(wiring: &Wiring, max_receive_count: u32) -> Self {
        Self {
            worker: WhatsAppWorker::new(wiring.crm.clone(), wiring.crm.clone(), wiring.log.clone()),
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
        |envelope, attempt| app.worker.handle(envelope, attempt),
    )
    .await)
}
