//! `insurup-worker`: the SQS consumer that puts each queued InsurUp event on its customer's
//! card (asking InsurUp, as the tenant's agent user, when an event lacks the customer); reports
//! only the failed messages back (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::lambda::serve_sqs_batch;
use onecrm_adapters::partner::insurup::InsurUpClient;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::insurup::worker::{InsurUpSource, InsurUpWorker};
use onecrm_domain::log::{Integration, IntegrationLog};
use onecrm_domain::ports::EventQueue;

pub struct App {
    worker: InsurUpWorker,
    log: IntegrationLog,
    /// The queue's `maxReceiveCount`: the delivery after which a failure means the DLQ.
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let max_receive_count = wiring.max_receive_count()?;
        let insurup = InsurUpClient::new(
            wiring.partner()?,
            wiring.secrets(),
            wiring.dynamo.clone(),
            wiring.settings.crm_table.clone(),
            wiring.settings.tenant_secret_prefix.clone(),
        );
        let karel = wiring.optional_queue("KAREL_QUEUE_URL");
        Ok(Self::new(
            &wiring,
            Arc::new(insurup),
            karel,
            max_receive_count,
        ))
    }

    /// `karel`: where purchased policies go as Karel opportunities (`KAREL_QUEUE_URL`).
    pub fn new(
        wiring: &Wiring,
        source: Arc<dyn InsurUpSource>,
        karel: Option<Arc<dyn EventQueue>>,
        max_receive_count: u32,
    ) -> Self {
        Self {
            worker: InsurUpWorker {
                crm: wiring.crm.clone(),
                policies: wiring.crm.clone(),
                source,
                log: wiring.log.clone(),
                tenants: wiring.crm.clone(),
                karel,
            },
            log: wiring.log.clone(),
            max_receive_count,
        }
    }
}

pub async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(serve_sqs_batch(
        event.payload,
        Integration::InsurUp,
        app.max_receive_count,
        &app.log,
        |envelope, attempt| app.worker.handle(envelope, attempt),
    )
    .await)
}
