//! `whatsapp-worker`: the SQS consumer that applies queued WhatsApp events to the CRM and
//! reports only the failed messages back (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::config::{self, Settings};
use onecrm_adapters::dynamodb::{CrmStore, LogStore};
use onecrm_adapters::lambda::{batch_response, queue_messages};
use onecrm_adapters::system::{SystemClock, UuidV7Ids};
use onecrm_domain::batch::process_batch;
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
        let max_receive_count = u32::try_from(config::number("MAX_RECEIVE_COUNT", 5)?).unwrap_or(5);
        Ok(Self::new(sdk, Settings::from_env()?, max_receive_count))
    }

    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings, max_receive_count: u32) -> Self {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let crm = Arc::new(CrmStore::new(dynamo.clone(), &settings.crm_table));
        let log = IntegrationLog::new(
            Arc::new(LogStore::new(dynamo, &settings.log_table)),
            Arc::new(SystemClock),
            Arc::new(UuidV7Ids),
            settings.log_retention_days,
        );
        Self {
            worker: WhatsAppWorker::new(crm.clone(), crm, log.clone()),
            log,
            max_receive_count,
        }
    }
}

pub async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let messages = queue_messages(event.payload);
    let failed = process_batch(
        messages,
        Integration::WhatsApp,
        app.max_receive_count,
        &app.log,
        |envelope, attempt| app.worker.handle(envelope, attempt),
    )
    .await;
    Ok(batch_response(failed))
}
