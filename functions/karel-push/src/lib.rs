//! `karel-push`: the SQS consumer that makes each queued CRM opportunity change true in Karel
//! CRM (create, update keeping Karel's custom-field value ids, delete); reports only the failed
//! messages back (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::lambda::serve_sqs_batch;
use onecrm_adapters::partner::karel::KarelClient;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::karel::worker::{KarelApi, KarelWorker};
use onecrm_domain::log::{Integration, IntegrationLog};

pub struct App {
    worker: KarelWorker,
    log: IntegrationLog,
    /// The queue's `maxReceiveCount`: the delivery after which a failure means the DLQ.
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let max_receive_count = wiring.max_receive_count()?;
        let karel = KarelClient::new(
            wiring.partner()?,
            wiring.secrets(),
            wiring.settings.tenant_secret_prefix.clone(),
        );
        Self::new(&wiring, Arc::new(karel), max_receive_count)
    }

    pub fn new(
        wiring: &Wiring,
        api: Arc<dyn KarelApi>,
        max_receive_count: u32,
    ) -> Result<Self, Error> {
        Ok(Self {
            worker: KarelWorker {
                crm: wiring.crm.clone(),
                tenants: wiring.crm.clone(),
                links: wiring.crm.clone(),
                api,
                archive: wiring.archive()?,
                log: wiring.log.clone(),
                retention_days: wiring.settings.log_retention_days,
            },
            log: wiring.log.clone(),
            max_receive_count,
        })
    }
}

pub async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(serve_sqs_batch(
        event.payload,
        Integration::Karel,
        app.max_receive_count,
        &app.log,
        |envelope, attempt| app.worker.handle(envelope, attempt),
    )
    .await)
}
